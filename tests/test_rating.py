"""Rating: worked examples for each tariff kind, allowance, overrides, readings (roll-over, replacement,
refused decreases), time-of-use across days and DST, cycles and state."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from prepaid_engine.calendar import SettlementCalendar
from prepaid_engine.errors import ConfigError, EngineError
from prepaid_engine.rating import (
    Band,
    BandPrices,
    Bands,
    ConsumptionError,
    CycleState,
    Interval,
    LineKind,
    Register,
    Replacement,
    Tariff,
    consumption,
    period_start,
    rate,
    rate_cycle,
)
from prepaid_engine.types import Reading, Utility

D = Decimal


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def bands(sharp="0", peak="0", flat="0", valley="0") -> Bands:
    return Bands(D(sharp), D(peak), D(flat), D(valley))


def flat(price="0.6500", **kwargs) -> Tariff:
    return Tariff("FLAT", "flat", "electricity", price=None if price is None else D(price), **kwargs)


def tiered(**kwargs) -> Tariff:
    tiers = ((D(0), D("0.5000")), (D(200), D("0.6000")), (D(400), D("0.8000")))
    return Tariff("TIER", "tiered", "electricity", tiers=tiers, **kwargs)


PRICES = {"sharp": D("1.2000"), "peak": D("1.0000"), "flat": D("0.6000"), "valley": D("0.3000")}


def tou(periods, tz="Asia/Shanghai", **kwargs) -> Tariff:
    return Tariff("TOU", "tou", "electricity", band_prices=PRICES, periods=periods, tz=tz, **kwargs)


QUARTERS = ((time(0), "valley"), (time(6), "flat"), (time(12), "peak"), (time(18), "flat"))
START = CycleState(utc(2024, 1, 1))


def chain(tariff: Tariff, intervals, state: CycleState = START):
    out = []
    for interval in intervals:
        rated = rate(tariff, state, interval)
        state = rated.new_state
        out.append(rated)
    return out


# -- flat ------------------------------------------------------------------------------------------------


def test_flat_charge_is_price_times_quantity_rounded_half_up():
    rated = rate(flat("0.6500"), START, Interval(utc(2024, 1, 2), utc(2024, 1, 3), D("10.50")))
    assert rated.exact == D("6.825")
    assert rated.charge == D("6.83")
    assert [(line.kind, line.quantity, line.unit_price, line.amount) for line in rated.lines] == [
        (LineKind.FLAT, D("10.50"), D("0.6500"), D("6.825"))
    ]
    assert rated.new_state.consumed_total == D("10.50")
    assert rated.new_state.exact_charge == D("6.825")


def test_flat_charges_telescope_so_cents_are_never_lost_or_doubled():
    tariff = flat("0.3333")
    hours = [Interval(utc(2024, 1, 2, h), utc(2024, 1, 2, h + 1), D(1)) for h in range(3)]
    rated = chain(tariff, hours)
    assert [r.charge for r in rated] == [D("0.33"), D("0.34"), D("0.33")]
    assert sum(r.charge for r in rated) == D("1.00")  # round(0.9999), not 3 x round(0.3333) = 0.99


def test_zero_consumption_charges_nothing():
    for tariff in (flat(), tiered(), tou(QUARTERS)):
        rated = rate(tariff, START, Interval(utc(2024, 1, 2), utc(2024, 1, 3), D("0.00")))
        assert (rated.charge, rated.exact, rated.lines) == (D(0), D(0), ())


def test_flat_allowance_makes_the_first_units_of_the_cycle_free():
    tariff = flat("1.0000", free_allowance=D(10))
    first, second = chain(
        tariff,
        [
            Interval(utc(2024, 1, 2), utc(2024, 1, 3), D(6)),
            Interval(utc(2024, 1, 3), utc(2024, 1, 4), D(6)),
        ],
    )
    assert (first.charge, second.charge) == (D("0.00"), D("2.00"))
    assert [(line.kind, line.quantity) for line in first.lines] == [(LineKind.FREE, D(6))]
    assert [(line.kind, line.quantity) for line in second.lines] == [
        (LineKind.FLAT, D(2)),
        (LineKind.FREE, D(4)),
    ]


# -- tiered ----------------------------------------------------------------------------------------------


def test_tiered_prices_each_unit_at_its_tier_in_the_cycle():
    rated = rate(tiered(), START, Interval(utc(2024, 1, 2), utc(2024, 1, 31), D(450)))
    assert rated.charge == D("260.00")  # 200 x 0.5 + 200 x 0.6 + 50 x 0.8
    assert [(line.tier, line.quantity, line.amount) for line in rated.lines] == [
        (1, D(200), D("100.0000")),
        (2, D(200), D("120.0000")),
        (3, D(50), D("40.0000")),
    ]


def test_tiered_interval_straddling_a_threshold_uses_cumulative_consumption():
    state = CycleState(utc(2024, 1, 1), D(190), exact_charge=D(95))
    rated = rate(tiered(), state, Interval(utc(2024, 1, 20), utc(2024, 1, 21), D(20)))
    assert rated.exact == D("11.0000")  # 10 x 0.5 + 10 x 0.6
    assert rated.charge == D("11.00")
    assert rated.new_state.consumed_total == D(210)


def test_tiered_allowance_covers_the_first_units_and_still_counts_toward_tiers():
    rated = rate(tiered(free_allowance=D(50)), START, Interval(utc(2024, 1, 2), utc(2024, 1, 31), D(450)))
    assert rated.charge == D("235.00")  # 150 x 0.5 + 200 x 0.6 + 50 x 0.8
    assert [(line.kind, line.quantity) for line in rated.lines] == [
        (LineKind.TIER, D(150)),
        (LineKind.TIER, D(200)),
        (LineKind.TIER, D(50)),
        (LineKind.FREE, D(50)),
    ]


def test_tiers_and_allowance_reset_at_each_cycle_start():
    calendar = SettlementCalendar("monthly", 1, time(0), "UTC")
    january = Interval(utc(2024, 1, 1), utc(2024, 2, 1), D(150))
    february = Interval(utc(2024, 2, 1), utc(2024, 3, 1), D(150))
    rated = rate_cycle(tiered(free_allowance=D(100)), [january, february], calendar)
    assert [r.charge for r in rated] == [D("25.00"), D("25.00")]  # 50 x 0.5 each month
    assert [r.new_state.cycle_start for r in rated] == [utc(2024, 1, 1), utc(2024, 2, 1)]


# -- time of use -----------------------------------------------------------------------------------------


def test_tou_with_band_registers_prices_the_band_deltas():
    interval = Interval(utc(2024, 1, 2), utc(2024, 1, 3), D("10.00"), bands("1.00", "2.00", "3.00", "4.00"))
    rated = rate(tou(QUARTERS), START, interval)
    assert rated.charge == D("6.20")  # 1.2 + 2.0 + 1.8 + 1.2
    assert [(line.band, line.quantity) for line in rated.lines] == [
        (Band.SHARP, D("1.00")),
        (Band.PEAK, D("2.00")),
        (Band.FLAT, D("3.00")),
        (Band.VALLEY, D("4.00")),
    ]
    assert rated.new_state.consumed_by_band == interval.bands


def test_tou_without_registers_shares_by_time_in_the_property_zone():
    # 05:00-07:00 Shanghai time (21:00-23:00 UTC the day before): one hour valley, one hour flat
    interval = Interval(utc(2024, 1, 1, 21), utc(2024, 1, 1, 23), D("4.00"))
    rated = rate(tou(QUARTERS), START, interval)
    assert rated.new_state.consumed_by_band == bands(flat="2", valley="2")
    assert rated.charge == D("1.80")


def test_tou_interval_of_a_few_minutes_inside_one_period():
    interval = Interval(utc(2024, 1, 2, 5, 0), utc(2024, 1, 2, 5, 15), D("0.25"))  # 13:00 Shanghai: peak
    rated = rate(tou(QUARTERS), START, interval)
    assert [(line.band, line.quantity, line.amount) for line in rated.lines] == [
        (Band.PEAK, D("0.25"), D("0.250000"))
    ]


def test_tou_interval_of_three_days_shares_each_day():
    interval = Interval(utc(2024, 1, 1, 16), utc(2024, 1, 4, 16), D(72))  # three whole Shanghai days
    rated = rate(tou(QUARTERS), START, interval)
    assert rated.new_state.consumed_by_band == bands(peak="18", flat="36", valley="18")
    assert rated.charge == D("45.00")


def test_tou_day_in_shanghai_has_no_dst():
    # 31 March 2024 (Europe changes clocks that day, China does not): a 24-hour local day
    interval = Interval(utc(2024, 3, 30, 16), utc(2024, 3, 31, 16), D(24))
    rated = rate(tou(QUARTERS), START, interval)
    assert rated.new_state.consumed_by_band == bands(peak="6", flat="12", valley="6")


BERLIN = ((time(0), "valley"), (time(3), "peak"))


def test_tou_on_berlin_spring_forward_day_counts_only_real_hours():
    # 00:00-05:00 local on 31 March 2024 lasts 4 hours: 00-02 valley (2 h), 03-05 peak (2 h)
    interval = Interval(utc(2024, 3, 30, 23), utc(2024, 3, 31, 3), D(4))
    rated = rate(tou(BERLIN, tz="Europe/Berlin"), START, interval)
    assert rated.new_state.consumed_by_band == bands(peak="2", valley="2")  # a fixed +01:00 would say 3/1


def test_tou_on_berlin_fall_back_day_lives_the_repeated_hour_twice():
    # 00:30-04:30 local on 27 October 2024 lasts 5 hours. With a peak from 02:30 the band goes back to
    # valley when the clock returns from 03:00 CEST to 02:00 CET: valley 00:30-02:30 (2 h) and 02:00-02:30
    # (0.5 h), peak 02:30-03:00 (0.5 h) and 02:30-04:30 (2 h)
    periods = ((time(0), "valley"), (time(2, 30), "peak"))
    interval = Interval(utc(2024, 10, 26, 22, 30), utc(2024, 10, 27, 3, 30), D(5))
    tariff = tou(periods, tz="Europe/Berlin")
    rated = rate(tariff, START, interval)
    assert rated.new_state.consumed_by_band == bands(peak="2.5", valley="2.5")  # a fixed +01:00 would say 1/4
    assert tariff.band_at(utc(2024, 10, 27, 0, 45)) is Band.PEAK  # 02:45 CEST
    assert tariff.band_at(utc(2024, 10, 27, 1, 15)) is Band.VALLEY  # 02:15 CET, the second time round


def test_tou_period_starting_in_the_skipped_hour_begins_when_the_clock_jumps():
    periods = ((time(0), "valley"), (time(2, 30), "peak"))
    tariff = tou(periods, tz="Europe/Berlin")
    assert tariff.band_at(utc(2024, 3, 31, 0, 59)) is Band.VALLEY  # 01:59 CET
    assert tariff.band_at(utc(2024, 3, 31, 1, 0)) is Band.PEAK  # 03:00 CEST


def test_tou_allowance_covers_the_cheapest_units_of_the_cycle():
    tariff = tou(QUARTERS, free_allowance=D(5))
    peak = Interval(utc(2024, 1, 2, 5), utc(2024, 1, 2, 6), D(10), bands(peak="10"))
    valley = Interval(utc(2024, 1, 2, 17), utc(2024, 1, 2, 18), D(10), bands(valley="10"))
    first, second = chain(tariff, [peak, valley])
    assert first.charge == D("5.00")  # 5 of 10 peak units free: no cheaper units yet
    # the valley units take over the allowance; the 5 peak units it leaves become payable
    assert second.charge == D("6.50")
    assert [(line.band, line.quantity, line.amount) for line in second.lines] == [
        (Band.PEAK, D(5), D("5.0000")),
        (Band.VALLEY, D(5), D("1.5000")),
    ]
    whole = Interval(utc(2024, 1, 2, 5), utc(2024, 1, 2, 18), D(20), bands(peak="10", valley="10"))
    assert rate(tariff, START, whole).charge == first.charge + second.charge == D("11.50")


def test_tou_band_registers_in_a_band_without_price_are_refused():
    tariff = Tariff(
        "TOU2",
        "tou",
        "electricity",
        band_prices={"peak": D(1), "valley": D("0.3")},
        periods=((time(0), "valley"), (time(8), "peak")),
    )
    with pytest.raises(ConfigError, match="no price for sharp"):
        rate(tariff, START, Interval(utc(2024, 1, 2), utc(2024, 1, 3), D(1), bands(sharp="1")))


# -- tariff validation and overrides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: flat("0.12345"),  # 5 decimals
        lambda: flat(price=None),
        lambda: Tariff("F", "flat", "electricity", price=0.65),  # float
        lambda: flat("-0.1000"),
        lambda: flat(rounding=D("0.05")),
        lambda: flat(tz="Nowhere/City"),
        lambda: flat(periods=QUARTERS),
        lambda: Tariff("F", "hourly", "electricity", price=D(1)),
        lambda: Tariff("F", "flat", "gas", price=D(1)),
        lambda: tou(((time(1), "valley"),)),  # does not start at midnight
        lambda: tou(((time(0), "valley"), (time(8), "peak"), (time(8), "flat"))),  # duplicate start
        lambda: tou(((time(0), "valley"), (time(12), "peak"), (time(8), "flat"))),  # unsorted
        lambda: tou(tuple((time(h), "flat") for h in range(9))),  # 9 periods
        lambda: tou(((time(0), "valley"), (time(8), "midday"))),
        lambda: tou(((time(0), "valley"), (time(8, tzinfo=UTC), "peak"))),
        lambda: tou(()),
        lambda: Tariff("T", "tou", "electricity", band_prices={"peak": D(1)}, periods=((time(0), "valley"),)),
        lambda: Tariff("T", "tiered", "water", tiers=((D(10), D(1)),)),  # first tier not at 0
        lambda: Tariff("T", "tiered", "water", tiers=((D(0), D(1)), (D(10), D(2)), (D(10), D(3)))),
        lambda: Tariff("T", "tiered", "water", tiers=((D(0), D("1.00001")),)),
        lambda: Tariff("T", "tiered", "water", tiers=()),
    ],
)
def test_invalid_tariffs_are_refused(make):
    with pytest.raises(ConfigError):
        make()


@pytest.mark.parametrize(
    ("make", "kind", "params"),
    [
        (lambda: tou(()), "tariff.periods_empty", {}),
        (
            lambda: tou(tuple((time(h), "flat") for h in range(9))),
            "tariff.periods_too_many",
            {"count": 9, "max": 8},
        ),
        (lambda: tou(((time(1), "valley"),)), "tariff.period_first_not_midnight", {"start": time(1)}),
        (
            lambda: tou(((time(0), "valley"), (time(8), "peak"), (time(8), "flat"))),
            "tariff.period_starts_not_increasing",
            {"start": time(8), "before": time(8)},
        ),
        (
            lambda: Tariff(
                "T", "tou", "electricity", band_prices={"peak": D(1)}, periods=((time(0), "valley"),)
            ),
            "tariff.period_band_unpriced",
            {"start": time(0), "band": "valley"},
        ),
        (lambda: Tariff("T", "tiered", "water", tiers=()), "tariff.tiers_empty", {}),
        (
            lambda: Tariff("T", "tiered", "water", tiers=((D(10), D(1)),)),
            "tariff.tier_first_not_zero",
            {"threshold": D(10)},
        ),
        (
            lambda: Tariff("T", "tiered", "water", tiers=((D(0), D(1)), (D(10), D(2)), (D(10), D(3)))),
            "tariff.tier_thresholds_not_increasing",
            {"threshold": D(10), "before": D(10)},
        ),
        (lambda: flat("-0.1000"), "number.negative", {"what": "price", "value": D("-0.1000")}),
        (
            lambda: Tariff("T", "tiered", "water", tiers=((D(0), D(-1)),)),
            "number.negative",
            {"what": "tier price", "value": D(-1)},
        ),
        (lambda: flat("0.12345"), "number.too_many_decimals", {"what": "price", "value": D("0.12345")}),
        (lambda: flat("NaN"), "number.not_finite", {"what": "price", "value": D("NaN")}),
    ],
)
def test_tariff_errors_say_which_rule_with_its_numbers(make, kind, params):
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.kind == kind
    if kind == "number.not_finite":
        assert info.value.params["what"] == "price" and info.value.params["value"].is_nan()
    else:
        assert info.value.params == params


def test_period_start_is_a_minute_of_the_day():
    assert period_start(0) == time(0)
    assert period_start(8 * 60 + 30) == time(8, 30)
    assert period_start(24 * 60 - 1) == time(23, 59)
    for minutes in (-1, 24 * 60, True, 8.5):
        with pytest.raises(ConfigError) as info:
            period_start(minutes)
        assert info.value.kind == "tariff.period_start_outside_day"


def test_prices_with_trailing_zeros_beyond_four_places_are_accepted():
    assert flat("0.650000").price == D("0.65")


def test_overrides_replace_only_the_named_prices():
    base = tou(QUARTERS)
    meter = base.with_overrides(band_prices={"peak": D("1.1000")})
    assert meter.band_prices == BandPrices(D("1.2000"), D("1.1000"), D("0.6000"), D("0.3000"))
    assert base.band_prices.peak == D("1.0000")
    interval = Interval(utc(2024, 1, 2, 4), utc(2024, 1, 2, 5), D(10))  # 12:00-13:00 Shanghai: peak
    assert rate(meter, START, interval).charge == D("11.00")
    assert rate(base, START, interval).charge == D("10.00")


def test_flat_and_tier_and_allowance_overrides():
    assert flat().with_overrides(price=D("0.7000")).price == D("0.7000")
    tiers = tiered().with_overrides(tier_prices=[None, D("0.6500"), None]).tiers
    assert [price for _, price in tiers] == [D("0.5000"), D("0.6500"), D("0.8000")]
    assert tiered().with_overrides(free_allowance=D(30)).free_allowance == D(30)
    assert flat().with_overrides() == flat()


@pytest.mark.parametrize(
    "override",
    [
        lambda: tou(QUARTERS).with_overrides(price=D(1)),
        lambda: flat().with_overrides(band_prices={"peak": D(1)}),
        lambda: flat().with_overrides(tier_prices=[D(1)]),
        lambda: tiered().with_overrides(tier_prices=[D(1)]),  # 3 tiers
        lambda: flat().with_overrides(price=D("0.00001")),
        lambda: tou(QUARTERS).with_overrides(band_prices={"noon": D(1)}),
    ],
)
def test_invalid_overrides_are_refused(override):
    with pytest.raises(ConfigError):
        override()


def test_tariff_fields_are_normalised():
    tariff = Tariff("W", "flat", "water", price="3.2000")
    assert tariff.utility is Utility.WATER
    assert tariff.price == D("3.2")


# -- consumption from readings ---------------------------------------------------------------------------


def test_consumption_is_the_register_delta():
    interval = consumption(Register(utc(2024, 1, 1), D("1200.00")), Register(utc(2024, 1, 2), D("1212.34")))
    assert (interval.start, interval.end, interval.total, interval.bands) == (
        utc(2024, 1, 1),
        utc(2024, 1, 2),
        D("12.34"),
        None,
    )


def test_consumption_with_band_registers_carries_band_deltas():
    prev = Register(utc(2024, 1, 1), D("100.00"), D("10.00"), D("20.00"), D("30.00"), D("40.00"))
    curr = Register(utc(2024, 1, 2), D("110.00"), D("11.00"), D("23.00"), D("32.00"), D("44.00"))
    assert consumption(prev, curr).bands == bands("1.00", "3.00", "2.00", "4.00")


def test_band_surplus_goes_to_the_largest_band():
    prev = Register(utc(2024, 1, 1), D("100.00"), D(0), D("20.00"), D("30.00"), D("40.00"))
    curr = Register(utc(2024, 1, 2), D("110.02"), D(0), D("23.00"), D("33.00"), D("44.00"))  # bands: 10.00
    assert consumption(prev, curr).bands == bands("0", "3.00", "3.00", "4.02")


def test_band_deficit_is_taken_from_the_largest_band_then_the_next():
    prev = Register(utc(2024, 1, 1), D("100.00"), D(0), D(0), D("0.00"), D("0.00"))
    curr = Register(utc(2024, 1, 2), D("100.05"), D(0), D(0), D("0.03"), D("0.04"))  # bands 0.07 > 0.05
    assert consumption(prev, curr).bands == bands("0", "0", "0.03", "0.02")
    curr = Register(utc(2024, 1, 2), D("100.01"), D(0), D(0), D("0.03"), D("0.04"))  # bands 0.07 > 0.01
    assert consumption(prev, curr).bands == bands("0", "0", "0.01", "0.00")


def test_band_deltas_that_say_nothing_leave_the_interval_to_be_shared_by_time():
    prev = Register(utc(2024, 1, 1), D("100.00"), peak=D(5), valley=D(5))
    curr = Register(utc(2024, 1, 2), D("100.50"), peak=D(5), valley=D(5))
    assert consumption(prev, curr).bands is None


def test_band_register_on_one_reading_only_is_not_trusted():
    prev = Register(utc(2024, 1, 1), D("100.00"), peak=D(5), valley=D(5))
    curr = Register(utc(2024, 1, 2), D("101.00"))
    assert consumption(prev, curr).bands is None


def test_meters_with_two_band_registers_count_the_others_as_zero():
    prev = Register(utc(2024, 1, 1), D("100.00"), peak=D(5), valley=D(5))
    curr = Register(utc(2024, 1, 2), D("101.00"), peak=D("5.25"), valley=D("5.75"))
    assert consumption(prev, curr).bands == bands(peak="0.25", valley="0.75")


def test_rollover_wraps_through_zero_by_one_resolution_step():
    prev = Register(utc(2024, 1, 1), D("999999.50"))
    curr = Register(utc(2024, 1, 2), D("0.70"))
    assert consumption(prev, curr, rollover_at=D("999999.99")).total == D("1.20")


def test_rollover_of_band_registers_too():
    prev = Register(utc(2024, 1, 1), D("9999.90"), peak=D("9999.95"), valley=D("100.00"))
    curr = Register(utc(2024, 1, 2), D("0.40"), peak=D("0.25"), valley=D("100.20"))
    assert consumption(prev, curr, rollover_at=D("9999.99")).bands == bands(peak="0.30", valley="0.20")


def test_implausible_rollover_is_refused():
    prev = Register(utc(2024, 1, 1), D("500000.00"))
    curr = Register(utc(2024, 1, 2), D("10.00"))
    with pytest.raises(ConsumptionError, match="roll-over"):
        consumption(prev, curr, rollover_at=D("999999.99"))


def test_reading_above_the_rollover_limit_is_refused():
    with pytest.raises(ConsumptionError, match="above"):
        consumption(
            Register(utc(2024, 1, 1), D("5.00")),
            Register(utc(2024, 1, 2), D("10000.00")),
            rollover_at=D("9999.99"),
        )


def test_decreasing_reading_is_refused_and_charges_nothing():
    tariff = flat()
    readings = [
        Register(utc(2024, 1, 1), D("100.00")),
        Register(utc(2024, 1, 2), D("110.00")),
        Register(utc(2024, 1, 3), D("105.00")),  # decreased, no roll-over configured
    ]
    charged = []
    for prev, curr in pairwise(readings):
        try:
            interval = consumption(prev, curr)
        except ConsumptionError:
            continue
        charged.append(rate(tariff, START, interval).charge)
    assert charged == [D("6.50")]
    with pytest.raises(ConsumptionError, match=r"decreased from 110\.00 to 105\.00"):
        consumption(readings[1], readings[2])
    assert issubclass(ConsumptionError, EngineError)


def test_readings_out_of_order_are_refused():
    with pytest.raises(ConsumptionError):
        consumption(Register(utc(2024, 1, 2), D(1)), Register(utc(2024, 1, 1), D(2)))


def test_replacement_adds_the_old_meters_last_units_and_the_new_meters_first():
    prev = Register(utc(2024, 1, 1), D("1200.00"))
    swap = Replacement(Register(utc(2024, 1, 1, 10), D("1250.50")), Register(utc(2024, 1, 1, 10), D("3.00")),
                       utc(2024, 1, 1, 10))  # fmt: skip
    curr = Register(utc(2024, 1, 2), D("10.25"))
    assert consumption(prev, curr, replacement=swap).total == D("57.75")  # 50.50 + 7.25


def test_replacement_with_band_registers():
    prev = Register(utc(2024, 1, 1), D(100), peak=D(40), valley=D(60))
    old = Register(utc(2024, 1, 1, 12), D(110), peak=D(44), valley=D(66))
    new = Register(utc(2024, 1, 1, 12), D(0), peak=D(0), valley=D(0))
    curr = Register(utc(2024, 1, 2), D(5), peak=D(2), valley=D(3))
    interval = consumption(prev, curr, replacement=Replacement(old, new, utc(2024, 1, 1, 12)))
    assert (interval.total, interval.bands) == (D(15), bands(peak="6", valley="9"))


def test_replacement_outside_the_interval_or_with_a_decrease_is_refused():
    prev = Register(utc(2024, 1, 1), D(100))
    curr = Register(utc(2024, 1, 2), D(5))
    late = Replacement(Register(utc(2024, 1, 3), D(110)), Register(utc(2024, 1, 3), D(0)), utc(2024, 1, 3))
    with pytest.raises(ConsumptionError, match="not between"):
        consumption(prev, curr, replacement=late)
    backwards = Replacement(
        Register(utc(2024, 1, 1, 5), D(90)), Register(utc(2024, 1, 1, 5), D(0)), utc(2024, 1, 1, 5)
    )
    with pytest.raises(ConsumptionError, match="decreased"):
        consumption(prev, curr, replacement=backwards)
    with pytest.raises(ConsumptionError, match="decreased"):
        consumption(prev, curr)  # the same readings without the declared replacement


def test_register_from_reading_and_reading_without_total():
    reading = Reading("m1", utc(2024, 1, 1), total=D("12.5"), peak=D("5"), valley=D("7.5"))
    register = Register.from_reading(reading)
    assert (register.at, register.total, register.peak, register.sharp) == (
        utc(2024, 1, 1),
        D("12.5"),
        D(5),
        None,
    )
    with pytest.raises(ConsumptionError):
        Register.from_reading(Reading("m1", utc(2024, 1, 1)))


# -- intervals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Interval(utc(2024, 1, 2), utc(2024, 1, 1), D(1)),
        lambda: Interval(utc(2024, 1, 1), utc(2024, 1, 1), D(1)),
        lambda: Interval(datetime(2024, 1, 1), utc(2024, 1, 2), D(1)),
        lambda: Interval(utc(2024, 1, 1), utc(2024, 1, 2), D(-1)),
        lambda: Interval(utc(2024, 1, 1), utc(2024, 1, 2), 1.5),
        lambda: Interval(utc(2024, 1, 1), utc(2024, 1, 2), D(3), bands(peak="1", valley="1")),
        lambda: Interval(
            utc(2024, 1, 1), utc(2024, 1, 2), D(1), basis=Interval(utc(2024, 1, 1), utc(2024, 1, 3), D(4))
        ),
    ],
)
def test_invalid_intervals_are_refused(make):
    with pytest.raises(ConfigError):
        make()


def test_interval_split_pieces_add_up_and_keep_their_basis():
    whole = Interval(utc(2024, 1, 1), utc(2024, 1, 5), D("10.00"), bands(peak="4.00", valley="6.00"))
    pieces = whole.split_at([utc(2024, 1, 2), utc(2024, 1, 4)])
    assert [p.total for p in pieces] == [D("2.5"), D(5), D("2.5")]
    assert [p.bands for p in pieces] == [
        bands(peak="1", valley="1.5"),
        bands(peak="2", valley="3"),
        bands(peak="1", valley="1.5"),
    ]
    assert pieces[1].split_at([utc(2024, 1, 3)])[0] == whole.split_at([utc(2024, 1, 2), utc(2024, 1, 3)])[1]
    with pytest.raises(ConfigError):
        whole.split_at([utc(2024, 1, 5)])


def test_interval_in_another_zone_is_stored_in_utc():
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    interval = Interval(
        datetime(2024, 1, 2, 8, tzinfo=shanghai), datetime(2024, 1, 2, 9, tzinfo=shanghai), D(1)
    )
    assert interval.start == utc(2024, 1, 2) and interval.start.tzinfo is UTC


# -- cycles and state ------------------------------------------------------------------------------------


def test_rate_cycle_continues_from_the_state_of_the_previous_call():
    calendar = SettlementCalendar("monthly", 1, time(0), "UTC")
    day = [Interval(utc(2024, 1, 2 + i), utc(2024, 1, 3 + i), D(100)) for i in range(3)]
    once = rate_cycle(tiered(), day, calendar)
    first = rate_cycle(tiered(), day[:2], calendar)
    rest = rate_cycle(tiered(), day[2:], calendar, first[-1].new_state)
    assert (
        [r.charge for r in first + rest] == [r.charge for r in once] == [D("50.00"), D("50.00"), D("60.00")]
    )


def test_rate_cycle_cuts_an_interval_at_the_cycle_start():
    calendar = SettlementCalendar("monthly", 1, time(0), "UTC")
    interval = Interval(utc(2024, 1, 31), utc(2024, 2, 2), D(400))  # 200 in each month
    rated = rate_cycle(tiered(), [interval], calendar)
    assert [(r.interval.start, r.interval.total, r.charge) for r in rated] == [
        (utc(2024, 1, 31), D(200), D("100.00")),
        (utc(2024, 2, 1), D(200), D("100.00")),
    ]


def test_rate_cycle_refuses_overlaps_and_states_of_other_cycles():
    calendar = SettlementCalendar("monthly", 1, time(0), "UTC")
    a = Interval(utc(2024, 1, 2), utc(2024, 1, 4), D(1))
    b = Interval(utc(2024, 1, 3), utc(2024, 1, 5), D(1))
    with pytest.raises(ConfigError, match="overlap"):
        rate_cycle(flat(), [a, b], calendar)
    with pytest.raises(ConfigError, match="not a cycle start"):
        rate_cycle(flat(), [a], calendar, CycleState(utc(2024, 1, 2)))
    with pytest.raises(ConfigError, match="before the state's cycle"):
        rate_cycle(flat(), [a], calendar, CycleState(utc(2024, 2, 1)))
    with pytest.raises(ConfigError, match="before its cycle"):
        rate(flat(), CycleState(utc(2024, 2, 1)), a)


def test_rate_cycle_leaves_a_finished_cycle_behind():
    calendar = SettlementCalendar("monthly", 1, time(0), "UTC")
    january = CycleState(utc(2024, 1, 1), D(500), exact_charge=D(300))
    rated = rate_cycle(tiered(), [Interval(utc(2024, 2, 3), utc(2024, 2, 4), D(10))], calendar, january)
    assert rated[0].charge == D("5.00")
    assert rated[0].new_state == CycleState(utc(2024, 2, 1), D(10), exact_charge=D("5.0000"))


def test_a_tariff_change_mid_cycle_prices_only_what_follows():
    state = rate(flat("1.0000"), START, Interval(utc(2024, 1, 2), utc(2024, 1, 3), D(10))).new_state
    rated = rate(flat("2.0000"), state, Interval(utc(2024, 1, 3), utc(2024, 1, 4), D(10)))
    assert rated.charge == D("20.00")
    assert rated.new_state.exact_charge == D(30)


def test_cycle_state_round_trips_through_plain_values():
    tariff = tou(QUARTERS, free_allowance=D(1))
    rated = rate(tariff, START, Interval(utc(2024, 1, 1, 21), utc(2024, 1, 2, 1, 7), D("3.17")))
    state = rated.new_state
    data = state.to_dict()
    assert all(isinstance(value, str) for value in data["consumed_by_band"].values())
    assert CycleState.from_dict(data) == state
    assert state.charged() == rated.charge
    with pytest.raises(ConfigError):
        CycleState.from_dict({"consumed_total": "1"})
    with pytest.raises(ConfigError):
        CycleState.from_dict({"cycle_start": "2024-01-01T00:00:00+00:00", "consumed_total": "-1"})


def test_a_day_fact_counts_an_interval_on_the_local_day_it_ends_with_its_bands_and_free_allowance():
    from prepaid_engine.rating.daily import add_day_facts

    tariff = Tariff(
        "TOU",
        "tou",
        "electricity",
        band_prices={"peak": Decimal("1.00"), "valley": Decimal("0.50")},
        periods=((time(0), "valley"), (time(8), "peak"), (time(22), "valley")),
        free_allowance=Decimal("1"),
        tz="Asia/Shanghai",
    )
    # 23:45 -> 00:15 Shanghai time (15:45 -> 16:15 UTC): counted on the new local day.
    start = datetime(2026, 3, 1, 15, 45, tzinfo=UTC)
    rated = rate(
        tariff,
        CycleState(datetime(2026, 2, 28, 16, tzinfo=UTC)),
        Interval(start, start + timedelta(minutes=30), Decimal("3")),
    )
    [fact] = add_day_facts([rated], "Asia/Shanghai").values()
    assert fact.day == date(2026, 3, 2)
    assert (fact.quantity, fact.free, fact.amount) == (Decimal("3"), Decimal("1"), rated.charge)
    assert fact.bands["valley"] == Decimal("2")  # charged in the valley band; the free unit is apart
