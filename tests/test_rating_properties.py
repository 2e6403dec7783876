"""Rating invariants, checked with hypothesis over random tariffs, zones, intervals, cuts and cycles.

- splitting an interval anywhere (one or many cuts) gives the same charge, exact charge and final state;
- per-interval charges over a cycle add up to rating the cycle at once, to the cent;
- never a negative charge, zero consumption charges zero, lines add up to the interval;
- the charge is monotone non-decreasing in consumption;
- rating does not depend on how intervals were grouped into calls;
- time-of-use segments agree with a direct wall-clock lookup of the periods, across DST changes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from prepaid_engine.calendar import SettlementCalendar
from prepaid_engine.rating import (
    BANDS,
    Bands,
    CycleState,
    Interval,
    Register,
    Tariff,
    consumption,
    rate,
    rate_cycle,
)
from prepaid_engine.rating.daily import add_day_facts
from prepaid_engine.rating.periods import to_us

ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour DST
    "America/Santiago",  # DST change at local midnight
    "Asia/Kolkata",
]
# Clock changes (zone, instant), so that many examples straddle one.
CLOCK_CHANGES = [
    ("Europe/Berlin", datetime(2024, 3, 31, 1, tzinfo=UTC)),  # forward 02:00 -> 03:00
    ("Europe/Berlin", datetime(2024, 10, 27, 1, tzinfo=UTC)),  # back 03:00 -> 02:00
    ("America/New_York", datetime(2024, 3, 10, 7, tzinfo=UTC)),
    ("America/New_York", datetime(2024, 11, 3, 6, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2024, 4, 6, 15, tzinfo=UTC)),  # back 30 minutes
    ("Australia/Lord_Howe", datetime(2024, 10, 5, 15, 30, tzinfo=UTC)),  # forward 30 minutes
    ("America/Santiago", datetime(2024, 9, 8, 4, tzinfo=UTC)),  # forward at local midnight
    ("America/Santiago", datetime(2024, 4, 7, 3, tzinfo=UTC)),
]
DST_CHANGES = [at for _, at in CLOCK_CHANGES]
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

SETTINGS = settings(deadline=None, max_examples=200)


def dec(n: int, places: int) -> Decimal:
    return Decimal(n).scaleb(-places)


prices = st.integers(0, 30_000).map(lambda n: dec(n, 4))
quantities = st.integers(0, 2_000_000).map(lambda n: dec(n, 2))
small_quantities = st.integers(0, 50_000).map(lambda n: dec(n, 3))
allowances = st.one_of(st.just(Decimal(0)), st.integers(1, 3_000).map(lambda n: dec(n, 1)))


@st.composite
def tariffs(draw, kinds=("flat", "tou", "tiered")):
    kind = draw(st.sampled_from(kinds))
    allowance = draw(allowances)
    rounding = draw(st.sampled_from([Decimal("0.01"), Decimal("0.1"), Decimal("1")]))
    if kind == "flat":
        return Tariff(
            "P", "flat", "electricity", price=draw(prices), free_allowance=allowance, rounding=rounding
        )
    if kind == "tiered":
        count = draw(st.integers(1, 4))
        thresholds = sorted(draw(st.sets(st.integers(1, 5_000), min_size=count - 1, max_size=count - 1)))
        tiers = tuple(
            zip(
                [Decimal(0), *map(Decimal, thresholds)],
                draw(st.lists(prices, min_size=count, max_size=count)),
                strict=True,
            )
        )
        return Tariff("P", "tiered", "water", tiers=tiers, free_allowance=allowance, rounding=rounding)
    count = draw(st.integers(1, 8))
    seconds = sorted(draw(st.sets(st.integers(1, 86_399), min_size=count - 1, max_size=count - 1)))
    starts = [time(0)] + [time(s // 3600, s // 60 % 60, s % 60) for s in seconds]
    bands = draw(st.lists(st.sampled_from(BANDS), min_size=count, max_size=count))
    band_prices = dict(zip(BANDS, draw(st.lists(prices, min_size=4, max_size=4)), strict=True))
    return Tariff(
        "P",
        "tou",
        "electricity",
        band_prices=band_prices,
        periods=tuple(zip(starts, bands, strict=True)),
        free_allowance=allowance,
        rounding=rounding,
        tz=draw(st.sampled_from(ZONES)),
    )


anywhere = st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)
near_changes = st.builds(
    lambda change, offset: change + timedelta(microseconds=offset),
    st.sampled_from(DST_CHANGES),
    st.integers(-2 * DAY_US, 2 * DAY_US),
)
starts = st.one_of(anywhere, near_changes)
durations = st.one_of(
    st.integers(60_000_000, 2 * HOUR_US),  # minutes
    st.integers(HOUR_US, 10 * DAY_US),  # hours to days
)


@st.composite
def band_split(draw, quantity=quantities):
    return Bands(*draw(st.lists(quantity, min_size=4, max_size=4)))


@st.composite
def intervals(draw, start=None, banded=None):
    start = draw(starts) if start is None else start
    end = start + timedelta(microseconds=draw(durations))
    if banded is None:
        banded = draw(st.booleans())
    if banded:
        bands = draw(band_split())
        return Interval(start, end, sum(bands, Decimal(0)), bands)
    return Interval(start, end, draw(quantities))


@st.composite
def states(draw, tariff: Tariff, before: datetime):
    """A state partway through a cycle: what was consumed (by band) since a cycle start up to 20 days before
    ``before``, rated; or a fresh cycle starting at ``before``."""
    gap = draw(st.integers(0, 20 * DAY_US))
    cycle_start = before - timedelta(microseconds=gap)
    state = CycleState(cycle_start)
    if not gap:
        return state
    bands = draw(band_split())
    return rate(tariff, state, Interval(cycle_start, before, sum(bands, Decimal(0)), bands)).new_state


def chain(tariff: Tariff, state: CycleState, pieces):
    out = []
    for piece in pieces:
        rated = rate(tariff, state, piece)
        state = rated.new_state
        out.append(rated)
    return out


def cut_points(draw, interval: Interval, most: int = 6):
    length = to_us(interval.end) - to_us(interval.start)
    assume(length > 1)
    offsets = draw(st.sets(st.integers(1, length - 1), min_size=1, max_size=most))
    return [interval.start + timedelta(microseconds=offset) for offset in offsets]


# -- additivity ------------------------------------------------------------------------------------------


@SETTINGS
@given(st.data(), tariffs())
def test_splitting_an_interval_anywhere_gives_the_same_charge(data, tariff):
    interval = data.draw(intervals())
    state = data.draw(states(tariff, interval.start))
    whole = rate(tariff, state, interval)
    pieces = interval.split_at(cut_points(data.draw, interval))
    rated = chain(tariff, state, pieces)
    assert sum(r.charge for r in rated) == whole.charge
    assert sum(r.exact for r in rated) == whole.exact
    assert rated[-1].new_state == whole.new_state


@SETTINGS
@given(st.data(), tariffs())
def test_cutting_pieces_again_changes_nothing(data, tariff):
    interval = data.draw(intervals())
    state = data.draw(states(tariff, interval.start))
    pieces = interval.split_at(cut_points(data.draw, interval, most=2))
    target = data.draw(st.sampled_from(range(len(pieces))))
    finer = (
        pieces[:target]
        + pieces[target].split_at(cut_points(data.draw, pieces[target], most=3))
        + pieces[target + 1 :]
    )
    assert sum(p.total for p in finer) == interval.total
    assert chain(tariff, state, finer)[-1].new_state == rate(tariff, state, interval).new_state


calendars = st.builds(
    SettlementCalendar,
    st.sampled_from(["monthly", "weekly", "daily"]),
    st.integers(1, 7),
    st.sampled_from([time(0), time(8), time(23, 30)]),
    st.sampled_from(ZONES),
)


@st.composite
def meter_history(draw, max_intervals=12):
    """Contiguous intervals of one meter (some banded, some not, some empty), spanning a few cycles."""
    at = draw(starts)
    out = []
    for _ in range(draw(st.integers(1, max_intervals))):
        interval = draw(intervals(start=at))
        out.append(interval)
        at = interval.end
    return out


@SETTINGS
@given(tariffs(), calendars, meter_history())
def test_per_interval_charges_over_a_cycle_equal_rating_the_cycle_at_once(tariff, calendar, history):
    rated = rate_cycle(tariff, history, calendar)
    cycles = defaultdict(list)
    for r in rated:
        cycles[r.new_state.cycle_start].append(r)
    for cycle_start, group in cycles.items():
        final = group[-1].new_state
        charged = sum(r.charge for r in group)
        assert charged == final.charged(tariff.rounding)
        span = (group[0].interval.start, group[-1].interval.end)
        if tariff.kind == "tou":
            at_once = Interval(*span, final.consumed_total, final.consumed_by_band)
        else:
            at_once = Interval(*span, final.consumed_total)
        whole = rate(tariff, CycleState(cycle_start), at_once)
        assert whole.charge == charged
        assert whole.exact == final.exact_charge


@SETTINGS
@given(st.data(), tariffs(), calendars)
def test_uniform_consumption_cut_into_readings_charges_as_one_reading_per_cycle(data, tariff, calendar):
    interval = data.draw(intervals())
    pieces = interval.split_at(cut_points(data.draw, interval, most=8))
    by_piece, by_whole = rate_cycle(tariff, pieces, calendar), rate_cycle(tariff, [interval], calendar)
    totals = defaultdict(Decimal)
    for r in by_piece:
        totals[r.new_state.cycle_start] += r.charge
    assert dict(totals) == {r.new_state.cycle_start: r.charge for r in by_whole}
    assert by_piece[-1].new_state == by_whole[-1].new_state


@SETTINGS
@given(st.data(), tariffs(), calendars, meter_history(max_intervals=16))
def test_rating_does_not_depend_on_how_intervals_are_grouped_into_calls(data, tariff, calendar, history):
    breaks = sorted(data.draw(st.sets(st.integers(1, len(history)), max_size=4)) | {len(history)})
    chained, state, begin = [], None, 0
    for end in breaks:
        part = rate_cycle(tariff, history[begin:end], calendar, state)
        chained += part
        state = part[-1].new_state if part else state
        begin = end
    once = rate_cycle(tariff, history, calendar)
    assert [(r.charge, r.exact, r.new_state, r.interval) for r in chained] == [
        (r.charge, r.exact, r.new_state, r.interval) for r in once
    ]


# -- sign and monotonicity -------------------------------------------------------------------------------


@SETTINGS
@given(st.data(), tariffs())
def test_charges_are_never_negative_and_lines_add_up(data, tariff):
    interval = data.draw(intervals())
    state = data.draw(states(tariff, interval.start))
    rated = rate(tariff, state, interval)
    assert rated.charge >= 0 and rated.exact >= 0
    assert rated.charge == rated.new_state.charged(tariff.rounding) - state.charged(tariff.rounding)
    assert sum((line.quantity for line in rated.lines), Decimal(0)) == interval.total
    assert sum((line.amount for line in rated.lines), Decimal(0)) == rated.exact
    assert all(line.quantity > 0 and line.amount == line.quantity * line.unit_price for line in rated.lines)
    empty = Interval(
        interval.start, interval.end, Decimal(0), Bands() if interval.bands is not None else None
    )
    nothing = rate(tariff, state, empty)
    assert (nothing.charge, nothing.exact, nothing.lines) == (0, 0, ())
    assert nothing.new_state == state


@SETTINGS
@given(st.data(), tariffs(), quantities, quantities)
def test_charge_is_monotone_in_consumption(data, tariff, a, b):
    low, high = sorted((a, b))
    start = data.draw(starts)
    end = start + timedelta(microseconds=data.draw(durations))
    state = data.draw(states(tariff, start))
    less = rate(tariff, state, Interval(start, end, low))
    more = rate(tariff, state, Interval(start, end, high))
    assert less.exact <= more.exact
    assert less.charge <= more.charge


@SETTINGS
@given(st.data(), tariffs(), band_split(), band_split(small_quantities))
def test_charge_is_monotone_in_each_band(data, tariff, base, extra):
    start = data.draw(starts)
    end = start + timedelta(microseconds=data.draw(durations))
    state = data.draw(states(tariff, start))
    more_bands = Bands(*(x + y for x, y in zip(base, extra, strict=True)))
    less = rate(tariff, state, Interval(start, end, sum(base, Decimal(0)), base))
    more = rate(tariff, state, Interval(start, end, sum(more_bands, Decimal(0)), more_bands))
    assert less.exact <= more.exact
    assert less.charge <= more.charge


# -- time-of-use tables ----------------------------------------------------------------------------------


def wall_clock_band(tariff: Tariff, us: int):
    """The oracle: the band of the period whose start is the last at or before the local wall-clock time."""
    local = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).astimezone(ZoneInfo(tariff.tz))
    starts = [start for start, _ in tariff.periods]
    return tariff.periods[bisect_right(starts, local.time().replace(tzinfo=None)) - 1][1]


@SETTINGS
@given(st.data(), tariffs(kinds=("tou",)))
def test_tou_segments_agree_with_the_wall_clock(data, tariff):
    start = data.draw(starts)
    end = start + timedelta(microseconds=data.draw(durations))
    table = tariff._table
    segments = table.segments(to_us(start), to_us(end))
    assert segments[0][0] == to_us(start) and segments[-1][1] == to_us(end)
    for (_, upto, band), (after, _, next_band) in pairwise(segments):
        assert upto == after and band != next_band
    for begin, upto, band in segments:
        for us in {begin, (begin + upto) // 2, upto - 1}:
            assert BANDS[band] == wall_clock_band(tariff, us)
        if upto < to_us(end):
            assert wall_clock_band(tariff, upto) != BANDS[band]  # a boundary is a real change of band


@SETTINGS
@given(st.lists(st.integers(0, 500_000), min_size=3, max_size=3), starts, st.booleans())
def test_consumption_adds_up_over_intermediate_readings(steps, at, wrap):
    limit = Decimal("9999.99")
    base = Decimal("9990.00") if wrap else Decimal("100.00")
    values, total = [], base
    for step in steps:
        total += dec(step % 400, 2)  # up to 3.99 units a step: plausible, may wrap past the limit
        values.append(total if total <= limit else total - limit - Decimal("0.01"))
    readings = [Register(at + timedelta(hours=i), value) for i, value in enumerate([base, *values])]
    pieces = [consumption(a, b, rollover_at=limit) for a, b in pairwise(readings)]
    whole = consumption(readings[0], readings[-1], rollover_at=limit)
    assert sum(p.total for p in pieces) == whole.total == total - base


@SETTINGS
@given(st.data(), st.sampled_from(CLOCK_CHANGES), st.lists(st.sampled_from(BANDS), min_size=4, max_size=4))
def test_tou_periods_starting_in_skipped_or_repeated_hours(data, change, bands):
    zone, at = change
    # period starts within 90 minutes (wall clock) of the change, so they fall in the skipped or repeated hour
    wall = at.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    offsets = data.draw(st.sets(st.integers(-90 * 60, 90 * 60), min_size=1, max_size=3))
    seconds = sorted(
        {(wall + timedelta(seconds=o) - wall.replace(hour=0, minute=0)).seconds for o in offsets} - {0}
    )
    starts = [time(0)] + [time(x // 3600, x // 60 % 60, x % 60) for x in seconds]
    periods = tuple(zip(starts, bands, strict=False))
    tariff = Tariff(
        "P", "tou", "electricity", band_prices=dict.fromkeys(BANDS, Decimal(1)), periods=periods, tz=zone
    )
    begin = to_us(at) - data.draw(st.integers(0, 3 * HOUR_US))
    end = to_us(at) + data.draw(st.integers(1, 3 * HOUR_US))
    segments = tariff._table.segments(begin, end)
    for first, upto, band in segments:
        for us in {first, upto - 1}:
            assert BANDS[band] == wall_clock_band(tariff, us)


# -- daily facts --------------------------------------------------------------------------------------------


@SETTINGS
@given(tariffs(), calendars, meter_history(), st.sampled_from(ZONES))
def test_daily_facts_add_up_to_the_rated_intervals_whatever_the_zone(tariff, calendar, history, zone):
    rated = rate_cycle(tariff, history, calendar)
    facts = add_day_facts(rated, zone)
    assert sum((f.quantity for f in facts.values()), Decimal(0)) == sum(
        (r.interval.total for r in rated), Decimal(0)
    )
    assert sum((f.amount for f in facts.values()), Decimal(0)) == sum((r.charge for r in rated), Decimal(0))
    assert sum(f.intervals for f in facts.values()) == len(rated)
    for day, fact in facts.items():
        assert fact.day == day
        assert all(quantity >= 0 for quantity in fact.bands.values())
        assert fact.free <= fact.quantity
        assert all(quantity <= fact.quantity for quantity in fact.bands.values())
    # Adding in pieces is adding at once: a settlement batch after another.
    half = len(rated) // 2
    pieces = add_day_facts(rated[half:], zone, add_day_facts(rated[:half], zone))
    assert {d: (f.quantity, f.amount) for d, f in pieces.items()} == {
        d: (f.quantity, f.amount) for d, f in facts.items()
    }
