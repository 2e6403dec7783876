"""Fee periods on a settlement calendar (cycle days at month ends, leap years, quarters, years, one-off) and
the amount each period charges (fixed, per m2, per quantity; proration by days, half-up rounding)."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.billing.fees import (
    BillingPeriod,
    FeeItem,
    billing_periods,
    fee_charges,
    period_charge,
    period_containing,
)
from prepaid_engine.calendar import SettlementCalendar
from prepaid_engine.errors import ConfigError

D = Decimal
DAY1 = SettlementCalendar("monthly", 1, tz="Asia/Shanghai")
DAY31 = SettlementCalendar("monthly", 31, tz="Asia/Shanghai")


def keys(charges) -> list[str]:
    return [charge.period.key for charge in charges]


def spans(periods) -> list[tuple[date, date]]:
    return [(p.start, p.end) for p in periods]


# -- periods ---------------------------------------------------------------------------------------------


def test_monthly_periods_on_cycle_day_1_are_calendar_months_keyed_by_month():
    item = FeeItem("rent", "fixed", D("3000"), "monthly")
    periods = billing_periods(item, DAY1, date(2026, 10, 1), None, date(2027, 1, 1))
    assert [p.key for p in periods] == ["2026-10", "2026-11", "2026-12", "2027-01"]
    assert spans(periods)[1] == (date(2026, 11, 1), date(2026, 12, 1))


def test_cycle_day_31_clamps_to_february_29_in_a_leap_year_and_28_otherwise():
    item = FeeItem("rent", "fixed", D("3000"), "monthly")
    leap = billing_periods(item, DAY31, date(2024, 1, 31), None, date(2024, 4, 30))
    assert spans(leap) == [
        (date(2024, 1, 31), date(2024, 2, 29)),
        (date(2024, 2, 29), date(2024, 3, 31)),
        (date(2024, 3, 31), date(2024, 4, 30)),
        (date(2024, 4, 30), date(2024, 5, 31)),
    ]
    assert [p.key for p in leap] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    common = billing_periods(item, DAY31, date(2023, 2, 1), None, date(2023, 3, 1))
    assert spans(common) == [(date(2023, 1, 31), date(2023, 2, 28)), (date(2023, 2, 28), date(2023, 3, 31))]
    assert [p.key for p in common] == ["2023-01", "2023-02"]


def test_the_day_before_a_clamped_cycle_start_belongs_to_the_previous_period():
    assert period_containing(DAY31, "monthly", date(2023, 2, 27)).key == "2023-01"
    assert period_containing(DAY31, "monthly", date(2023, 2, 28)).key == "2023-02"
    assert period_containing(DAY31, "monthly", date(2023, 3, 30)).key == "2023-02"
    assert period_containing(DAY31, "monthly", date(2023, 3, 31)).key == "2023-03"


def test_quarterly_periods_group_the_cycles_starting_in_each_calendar_quarter():
    item = FeeItem("service", "fixed", D("900"), "quarterly")
    periods = billing_periods(item, DAY1, date(2024, 2, 10), None, date(2025, 1, 1))
    assert [p.key for p in periods] == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1"]
    assert [p.days for p in periods[:4]] == [91, 91, 92, 92]  # 2024 is a leap year: Q1 has 91 days
    assert period_containing(DAY1, "quarterly", date(2023, 3, 31)).days == 90
    q4 = period_containing(DAY31, "quarterly", date(2026, 12, 15))
    assert (q4.key, q4.start, q4.end) == ("2026-Q4", date(2026, 10, 31), date(2027, 1, 31))


def test_yearly_periods_have_366_days_in_a_leap_year():
    assert period_containing(DAY1, "yearly", date(2024, 7, 1)) == BillingPeriod(
        "2024", date(2024, 1, 1), date(2025, 1, 1)
    )
    assert period_containing(DAY1, "yearly", date(2024, 7, 1)).days == 366
    assert period_containing(DAY1, "yearly", date(2025, 7, 1)).days == 365
    # on cycle day 31 the year runs from 31 January; a date in January before it is still last year's
    assert period_containing(DAY31, "yearly", date(2026, 1, 30)) == BillingPeriod(
        "2025", date(2025, 1, 31), date(2026, 1, 31)
    )


def test_a_period_is_due_on_its_first_billed_day_in_advance_and_on_its_end_in_arrears():
    advance = FeeItem("rent", "fixed", D("100"), "monthly")
    arrears = FeeItem("rent", "fixed", D("100"), "monthly", timing="arrears")
    assert keys(fee_charges(advance, DAY1, date(2026, 11, 1), None, date(2026, 12, 1))) == [
        "2026-11",
        "2026-12",
    ]
    assert keys(fee_charges(arrears, DAY1, date(2026, 11, 1), None, date(2026, 11, 30))) == []
    charges = fee_charges(arrears, DAY1, date(2026, 11, 1), None, date(2026, 12, 1))
    assert keys(charges) == ["2026-11"]
    assert charges[0].due == date(2026, 12, 1)


def test_a_tenancy_ending_mid_period_is_due_in_arrears_the_day_after_its_last_day():
    arrears = FeeItem("rent", "fixed", D("300"), "monthly", timing="arrears")
    charges = fee_charges(arrears, DAY1, date(2026, 11, 1), date(2026, 12, 10), date(2026, 12, 11))
    assert keys(charges) == ["2026-11", "2026-12"]
    assert charges[-1].due == date(2026, 12, 11)
    assert (charges[-1].days, charges[-1].amount) == (10, D("96.77"))  # 300 x 10 / 31


def test_a_calendar_in_another_zone_and_time_keeps_its_local_dates_across_dst():
    # Berlin skips 02:00-03:00 on 31 March 2024: the cycle due at 02:30 that day starts at 03:00, same day
    berlin = SettlementCalendar("monthly", 31, time(2, 30), "Europe/Berlin")
    assert period_containing(berlin, "monthly", date(2024, 3, 31)) == BillingPeriod(
        "2024-03", date(2024, 3, 31), date(2024, 4, 30)
    )
    assert period_containing(berlin, "monthly", date(2024, 10, 31)).start == date(2024, 10, 31)


def test_fees_need_a_monthly_calendar():
    weekly = SettlementCalendar("weekly", 1)
    with pytest.raises(ConfigError) as caught:
        billing_periods(
            FeeItem("f", "fixed", D(1), "monthly"), weekly, date(2026, 1, 1), None, date(2026, 2, 1)
        )
    assert caught.value.kind == "fee.calendar_not_monthly"


# -- amounts and proration -------------------------------------------------------------------------------


def test_a_tenancy_starting_mid_period_is_prorated_by_days_and_rounded_half_up():
    item = FeeItem("fee", "fixed", D("1.25"), "monthly")
    first = fee_charges(item, DAY1, date(2026, 4, 16), None, date(2026, 4, 30))
    assert len(first) == 1
    charge = first[0]
    assert (charge.start, charge.end, charge.days, charge.period_days) == (
        date(2026, 4, 16),
        date(2026, 5, 1),
        15,
        30,
    )
    assert charge.prorated
    assert charge.full == D("1.25")
    assert charge.amount == D("0.63")  # 1.25 x 15 / 30 = 0.625, half up
    assert charge.due == date(2026, 4, 16)


def test_without_proration_a_partial_period_charges_the_full_amount():
    item = FeeItem("fee", "fixed", D("3000"), "monthly", prorate=False)
    charges = fee_charges(item, DAY1, date(2026, 4, 16), date(2026, 5, 3), date(2026, 6, 1))
    assert [(ch.period.key, ch.days, ch.amount, ch.prorated) for ch in charges] == [
        ("2026-04", 15, D("3000.00"), False),
        ("2026-05", 3, D("3000.00"), False),
    ]


def test_whole_periods_are_never_prorated():
    item = FeeItem("rent", "fixed", D("3000"), "monthly")
    charges = fee_charges(item, DAY31, date(2024, 1, 31), date(2024, 3, 30), date(2024, 12, 31))
    assert [(ch.period.key, ch.days, ch.amount, ch.prorated) for ch in charges] == [
        ("2024-01", 29, D("3000.00"), False),  # 31 Jan - 28 Feb, a whole (short) period
        ("2024-02", 31, D("3000.00"), False),  # 29 Feb - 30 Mar inclusive, the whole period
    ]


def test_the_item_effective_dates_clip_the_tenancy():
    item = FeeItem(
        "fee", "fixed", D("310"), "monthly", date_from=date(2026, 1, 11), date_to=date(2026, 2, 14)
    )
    charges = fee_charges(item, DAY1, date(2025, 6, 1), None, date(2026, 12, 31))
    assert [(ch.period.key, ch.start, ch.end, ch.amount) for ch in charges] == [
        ("2026-01", date(2026, 1, 11), date(2026, 2, 1), D("210.00")),  # 21 of 31 days
        ("2026-02", date(2026, 2, 1), date(2026, 2, 15), D("155.00")),  # 14 of 28 days
    ]
    assert fee_charges(item, DAY1, date(2026, 3, 1), None, date(2026, 12, 31)) == ()


def test_a_leap_year_prorates_a_yearly_fee_by_366_days():
    item = FeeItem("fee", "fixed", D("366"), "yearly")
    charges = fee_charges(item, DAY1, date(2024, 12, 2), None, date(2024, 12, 31))
    assert [(ch.period.key, ch.days, ch.period_days, ch.amount) for ch in charges] == [
        ("2024", 30, 366, D("30.00"))
    ]


def test_a_one_off_fee_charges_once_the_full_amount_on_the_first_day_it_applies():
    item = FeeItem("deposit handling", "fixed", D("50"), "one_off", date_from=date(2026, 3, 10))
    assert fee_charges(item, DAY1, date(2026, 3, 1), None, date(2026, 3, 9)) == ()
    charges = fee_charges(item, DAY1, date(2026, 3, 1), date(2026, 3, 20), date(2030, 1, 1))
    assert [(ch.period.key, ch.start, ch.due, ch.amount, ch.prorated) for ch in charges] == [
        ("once", date(2026, 3, 10), date(2026, 3, 10), D("50.00"), False)
    ]


def test_a_per_area_fee_multiplies_the_rate_by_the_unit_area():
    item = FeeItem("property fee", "per_area", D("2.5000"), "monthly")
    (charge,) = fee_charges(item, DAY1, date(2026, 11, 1), None, date(2026, 11, 1), area=D("88.37"))
    assert (charge.basis, charge.amount) == (D("88.37"), D("220.93"))  # 220.925, half up
    (partial,) = fee_charges(item, DAY1, date(2026, 11, 21), None, date(2026, 11, 30), area=D("88.37"))
    assert partial.amount == D("73.64")  # 220.925 x 10 / 30 = 73.6416..


def test_a_per_quantity_fee_prorates_a_constant_quantity_but_not_a_measured_one():
    item = FeeItem("parking", "per_quantity", D("150"), "monthly")
    (constant,) = fee_charges(item, DAY1, date(2026, 11, 16), None, date(2026, 11, 30), quantity=D(2))
    assert constant.amount == D("150.00")  # 300 x 15 / 30
    measured = {"2026-11": D("12.5")}
    (per_period,) = fee_charges(item, DAY1, date(2026, 11, 16), None, date(2026, 11, 30), quantity=measured)
    assert (per_period.amount, per_period.prorated) == (D("1875.00"), False)


@pytest.mark.parametrize(
    ("item", "kwargs", "kind"),
    [
        (FeeItem("f", "per_area", D(1), "monthly"), {}, "fee.area_missing"),
        (FeeItem("f", "per_quantity", D(1), "monthly"), {}, "fee.quantity_missing"),
        (
            FeeItem("f", "per_quantity", D(1), "monthly"),
            {"quantity": {"2026-10": D(1)}},
            "fee.quantity_missing",
        ),
        (FeeItem("f", "per_area", D(1), "monthly"), {"area": D(-1)}, "number.negative"),
    ],
)
def test_missing_or_bad_bases_are_refused(item, kwargs, kind):
    with pytest.raises(ConfigError) as caught:
        fee_charges(item, DAY1, date(2026, 11, 1), None, date(2026, 11, 1), **kwargs)
    assert caught.value.kind == kind


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"amount_kind": "per_head"}, "fee.amount_kind"),
        ({"frequency": "weekly"}, "fee.frequency"),
        ({"timing": "whenever"}, "fee.timing"),
        ({"rate": D("-1")}, "number.negative"),
        ({"rate": D("0.00001")}, "number.too_many_decimals"),
        ({"date_from": date(2026, 2, 1), "date_to": date(2026, 1, 31)}, "fee.range_reversed"),
    ],
)
def test_an_unusable_fee_item_is_refused(kwargs, kind):
    fields = {"key": "f", "amount_kind": "fixed", "rate": D(1), "frequency": "monthly", **kwargs}
    with pytest.raises(ConfigError) as caught:
        FeeItem(**fields)
    assert caught.value.kind == kind


def test_a_tenancy_ending_before_it_starts_is_refused_and_one_outside_the_item_bills_nothing():
    item = FeeItem("f", "fixed", D(1), "monthly", date_to=date(2026, 1, 31))
    with pytest.raises(ConfigError) as caught:
        fee_charges(item, DAY1, date(2026, 3, 1), date(2026, 2, 1), date(2026, 12, 1))
    assert caught.value.kind == "fee.range_reversed"
    assert fee_charges(item, DAY1, date(2026, 3, 1), None, date(2026, 12, 1)) == ()


def test_billed_days_must_lie_in_their_period():
    item = FeeItem("f", "fixed", D(1), "monthly")
    period = BillingPeriod("2026-11", date(2026, 11, 1), date(2026, 12, 1))
    with pytest.raises(ConfigError) as caught:
        period_charge(item, period, date(2026, 10, 31), date(2026, 11, 5))
    assert caught.value.kind == "fee.days_outside_period"


# -- properties ------------------------------------------------------------------------------------------

calendars = st.builds(
    SettlementCalendar,
    st.just("monthly"),
    st.integers(1, 31),
    st.sampled_from([time(0), time(8, 30), time(23, 59)]),
    st.sampled_from(["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York"]),
)
days = st.dates(date(2019, 1, 1), date(2031, 12, 31))


@settings(max_examples=150, deadline=None)
@given(
    calendars,
    st.sampled_from(["monthly", "quarterly", "yearly"]),
    days,
    st.integers(0, 900),
    st.integers(0, 900),
    st.booleans(),
)
def test_periods_are_contiguous_uniquely_keyed_and_bill_every_day_once(
    calendar, frequency, start, length, horizon, prorate
):
    end = start + timedelta(days=length)
    until = end + timedelta(days=horizon)
    item = FeeItem("f", "fixed", D("100"), frequency, prorate=prorate)
    charges = fee_charges(item, calendar, start, end, until)
    assert len({ch.period.key for ch in charges}) == len(charges)
    for before, after in pairwise(charges):
        assert before.period.end == after.period.start
        assert before.end == after.start
    assert charges[0].start == start
    assert charges[-1].end == end + timedelta(days=1)
    assert sum(ch.days for ch in charges) == length + 1
    for ch in charges:
        assert ch.period.start <= ch.start < ch.end <= ch.period.end
        assert ch.period_days in {"monthly": (28, 29, 30, 31), "quarterly": (89, 90, 91, 92)}.get(
            frequency, (365, 366)
        )
        if ch.days == ch.period_days or not prorate:
            assert (ch.amount, ch.prorated) == (D("100.00"), False)
        else:
            assert ch.prorated
            assert abs(ch.amount - D(100) * ch.days / ch.period_days) <= D("0.005")
        assert ch.period == period_containing(calendar, frequency, ch.start)


@settings(max_examples=100, deadline=None)
@given(calendars, days, st.integers(0, 400))
def test_monthly_periods_start_on_the_cycle_day_clamped_to_the_month_end(calendar, start, horizon):
    item = FeeItem("f", "fixed", D(1), "monthly")
    for period in billing_periods(item, calendar, start, None, start + timedelta(days=horizon)):
        first_of_next = date(period.start.year + period.start.month // 12, period.start.month % 12 + 1, 1)
        last_day = (first_of_next - timedelta(days=1)).day
        assert period.start.day == min(calendar.day, last_day)
        assert period.key == f"{period.start.year:04d}-{period.start.month:02d}"
