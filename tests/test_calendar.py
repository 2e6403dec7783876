"""Settlement calendars: cycle bounds in local time (month ends, weeks, days, zones, DST) and cycle splits."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from prepaid_engine.calendar import (
    Cycle,
    SettlementCalendar,
    cycle_bounds,
    cycle_starts,
    local_to_utc,
    split_by_cycle,
)
from prepaid_engine.errors import ConfigError
from prepaid_engine.rating import Bands, Interval


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- monthly ---------------------------------------------------------------------------------------------


def test_monthly_cycle_is_local_midnight_of_the_first_in_shanghai():
    calendar = SettlementCalendar("monthly", 1, time(0), "Asia/Shanghai")
    assert cycle_bounds(calendar, utc(2024, 3, 15, 12)) == (utc(2024, 2, 29, 16), utc(2024, 3, 31, 16))


def test_monthly_cycle_start_belongs_to_its_cycle_and_the_instant_before_to_the_previous():
    calendar = SettlementCalendar("monthly", 1, time(0), "Asia/Shanghai")
    start = utc(2024, 2, 29, 16)
    assert cycle_bounds(calendar, start) == (start, utc(2024, 3, 31, 16))
    assert cycle_bounds(calendar, start - timedelta(microseconds=1)) == (utc(2024, 1, 31, 16), start)


def test_monthly_cycle_crosses_the_year_end():
    calendar = SettlementCalendar("monthly", 5, time(8, 30), "UTC")
    assert cycle_bounds(calendar, utc(2024, 1, 2)) == (utc(2023, 12, 5, 8, 30), utc(2024, 1, 5, 8, 30))
    assert cycle_bounds(calendar, utc(2023, 12, 31, 23, 59)) == (
        utc(2023, 12, 5, 8, 30),
        utc(2024, 1, 5, 8, 30),
    )


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # day 31 clamps to the last day of short months: Feb (leap and common years), April
        (utc(2024, 3, 1), (utc(2024, 2, 29), utc(2024, 3, 31))),
        (utc(2023, 3, 1), (utc(2023, 2, 28), utc(2023, 3, 31))),
        (utc(2024, 4, 15), (utc(2024, 3, 31), utc(2024, 4, 30))),
        (utc(2024, 5, 30, 23), (utc(2024, 4, 30), utc(2024, 5, 31))),
        (utc(2024, 1, 31), (utc(2024, 1, 31), utc(2024, 2, 29))),
    ],
)
def test_monthly_day_31_is_clamped_to_the_last_day_of_short_months(at, expected):
    calendar = SettlementCalendar("monthly", 31)
    assert cycle_bounds(calendar, at) == expected


def test_monthly_day_30_starts_on_the_last_of_february_then_the_30th_again():
    calendar = SettlementCalendar("monthly", 30, time(0), "UTC")
    assert cycle_bounds(calendar, utc(2023, 3, 10)) == (utc(2023, 2, 28), utc(2023, 3, 30))


def test_monthly_cycle_in_new_york_follows_the_local_offset_change():
    calendar = SettlementCalendar("monthly", 1, time(0), "America/New_York")
    # 1 March 00:00 EST = 05:00 UTC; 1 April 00:00 EDT = 04:00 UTC
    assert cycle_bounds(calendar, utc(2024, 3, 20)) == (utc(2024, 3, 1, 5), utc(2024, 4, 1, 4))


# -- weekly and daily ------------------------------------------------------------------------------------


def test_weekly_cycle_starts_on_the_iso_weekday_and_spans_a_dst_change():
    calendar = SettlementCalendar("weekly", 1, time(6), "Europe/Berlin")  # Monday 06:00
    start, end = cycle_bounds(calendar, utc(2024, 3, 31, 10))  # Sunday, the day clocks go forward
    assert (start, end) == (utc(2024, 3, 25, 5), utc(2024, 4, 1, 4))  # 06:00 CET .. 06:00 CEST
    assert end - start == timedelta(hours=167)


def test_weekly_cycle_on_its_own_weekday_before_the_start_time_is_the_previous_week():
    calendar = SettlementCalendar("weekly", 3, time(12), "UTC")  # Wednesday noon
    assert cycle_bounds(calendar, utc(2024, 5, 15, 11, 59)) == (utc(2024, 5, 8, 12), utc(2024, 5, 15, 12))
    assert cycle_bounds(calendar, utc(2024, 5, 15, 12)) == (utc(2024, 5, 15, 12), utc(2024, 5, 22, 12))


def test_daily_cycle_in_a_half_hour_offset_zone():
    calendar = SettlementCalendar("daily", 1, time(0), "Asia/Kolkata")
    # 20:00 UTC is 01:30 the next local day
    assert cycle_bounds(calendar, utc(2024, 1, 1, 20)) == (utc(2024, 1, 1, 18, 30), utc(2024, 1, 2, 18, 30))


def test_daily_cycles_are_23_and_25_hours_long_on_berlin_dst_days():
    calendar = SettlementCalendar("daily", 1, time(0), "Europe/Berlin")
    spring = cycle_bounds(calendar, utc(2024, 3, 31, 12))
    autumn = cycle_bounds(calendar, utc(2024, 10, 27, 12))
    assert spring == (utc(2024, 3, 30, 23), utc(2024, 3, 31, 22))
    assert autumn == (utc(2024, 10, 26, 22), utc(2024, 10, 27, 23))


def test_a_start_time_skipped_by_the_clock_starts_the_cycle_at_the_change():
    calendar = SettlementCalendar("daily", 1, time(2, 30), "Europe/Berlin")
    # 31 March 2024: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 never shows
    assert cycle_bounds(calendar, utc(2024, 3, 31, 12)) == (utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30))


def test_a_start_time_shown_twice_starts_the_cycle_at_its_first_occurrence():
    calendar = SettlementCalendar("daily", 1, time(2, 30), "Europe/Berlin")
    # 27 October 2024: 02:30 shows at 00:30 UTC (CEST) and again at 01:30 UTC (CET)
    assert cycle_bounds(calendar, utc(2024, 10, 27, 1, 45)) == (
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 28, 1, 30),
    )


def test_local_to_utc_reads_a_skipped_midnight_as_the_change_in_santiago():
    # Chile moves clocks forward at local midnight: 2024-09-08 00:00 does not exist (-04 -> -03 at 04:00 UTC)
    zone = ZoneInfo("America/Santiago")
    assert local_to_utc(datetime(2024, 9, 8, 0, 0), zone) == utc(2024, 9, 8, 4)
    assert local_to_utc(datetime(2024, 9, 8, 0, 30), zone) == utc(2024, 9, 8, 4)
    assert local_to_utc(datetime(2024, 9, 8, 1, 0), zone) == utc(2024, 9, 8, 4)


# -- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cycle": "yearly"},
        {"cycle": "monthly", "day": 0},
        {"cycle": "monthly", "day": 32},
        {"cycle": "weekly", "day": 8},
        {"cycle": "weekly", "day": 0},
        {"cycle": "daily", "tz": "Mars/Olympus_Mons"},
        {"cycle": "daily", "time": time(0, tzinfo=UTC)},
        {"cycle": "monthly", "day": "1"},
    ],
)
def test_invalid_calendars_are_refused(kwargs):
    with pytest.raises(ConfigError):
        SettlementCalendar(**kwargs)


def test_cycle_bounds_refuses_a_naive_instant():
    with pytest.raises(ConfigError):
        cycle_bounds(SettlementCalendar("daily"), datetime(2024, 1, 1))


def test_cycle_kind_is_normalised_to_the_enum():
    assert SettlementCalendar("weekly", 7).cycle is Cycle.WEEKLY


# -- splitting by cycle ----------------------------------------------------------------------------------


def test_split_by_cycle_shares_consumption_in_proportion_to_time():
    calendar = SettlementCalendar("monthly", 1, time(0), "UTC")
    interval = Interval(utc(2024, 1, 31, 18), utc(2024, 3, 1, 6), Decimal("120.00"))  # 6 h + 29 days + 6 h
    pieces = split_by_cycle(interval, calendar)
    assert [(p.start, p.end) for p in pieces] == [
        (utc(2024, 1, 31, 18), utc(2024, 2, 1)),
        (utc(2024, 2, 1), utc(2024, 3, 1)),
        (utc(2024, 3, 1), utc(2024, 3, 1, 6)),
    ]
    # 708 hours in all: 6/708, 696/708, 6/708 of 120 -- shares kept exact to 10**-15 of the interval
    assert sum(p.total for p in pieces) == Decimal("120.00")
    for piece, hours in zip(pieces, (6, 696, 6), strict=True):
        assert abs(piece.total - Decimal(120) * hours / 708) <= Decimal(120) * 2 / 10**15
    assert all(p.basis == interval for p in pieces)


def test_split_by_cycle_gives_exact_halves_of_a_day_across_midnight():
    calendar = SettlementCalendar("monthly", 1, time(0), "UTC")
    interval = Interval(utc(2024, 1, 31, 12), utc(2024, 2, 1, 12), Decimal("60.01"))
    first, second = split_by_cycle(interval, calendar)
    assert (first.total, second.total) == (Decimal("30.005"), Decimal("30.005"))


def test_split_by_cycle_of_banded_interval_shares_each_band():
    calendar = SettlementCalendar("daily", 1, time(0), "UTC")
    bands = Bands(Decimal(0), Decimal("4.00"), Decimal("2.00"), Decimal("6.00"))
    interval = Interval(utc(2024, 6, 1, 12), utc(2024, 6, 2, 12), Decimal("12.00"), bands)
    first, second = split_by_cycle(interval, calendar)
    assert first.bands == Bands(Decimal(0), Decimal(2), Decimal(1), Decimal(3))
    assert second.bands == first.bands
    assert first.total == second.total == Decimal(6)


def test_an_interval_inside_one_cycle_is_not_split():
    calendar = SettlementCalendar("monthly", 1, time(0), "Asia/Shanghai")
    interval = Interval(utc(2024, 3, 3), utc(2024, 3, 4), Decimal("5.5"))
    assert split_by_cycle(interval, calendar) == [interval]
    assert cycle_starts(calendar, interval.start, interval.end) == []


# -- properties ------------------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
]

calendars = st.builds(
    lambda cycle, day, minute, tz: SettlementCalendar(
        cycle, day if cycle == "monthly" else (day - 1) % 7 + 1, time(minute // 60, minute % 60), tz
    ),
    st.sampled_from(["monthly", "weekly", "daily"]),
    st.integers(1, 31),
    st.integers(0, 24 * 60 - 1),
    st.sampled_from(ZONES),
)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)


@settings(deadline=None, max_examples=300)
@given(calendars, instants)
@example(
    # Chile's clocks jump from 00:00 to 01:00 on 2 September 2012: a weekly cycle at 00:01 starts at 01:00.
    calendar=SettlementCalendar(Cycle.WEEKLY, 7, time(0, 1), "America/Santiago"),
    at=datetime(2012, 9, 1, 0, 0, tzinfo=UTC),
)
def test_cycles_contain_the_instant_and_tile_time(calendar, at):
    start, end = cycle_bounds(calendar, at)
    assert start <= at < end
    assert cycle_bounds(calendar, start) == (start, end)
    assert cycle_bounds(calendar, end)[0] == end
    assert cycle_bounds(calendar, start - timedelta(microseconds=1))[1] == start
    local = start.astimezone(ZoneInfo(calendar.tz)).replace(tzinfo=None)
    wall = local_to_utc(datetime.combine(local.date(), calendar.time), ZoneInfo(calendar.tz))
    assert (
        wall == start
    )  # the start is the configured local time on its day (or the clock change skipping it)
    if calendar.cycle is Cycle.MONTHLY:
        last_day = ((local.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
        assert local.day == min(calendar.day, last_day)
    if calendar.cycle is Cycle.WEEKLY:
        assert local.isoweekday() == calendar.day
        # A week, give or take a clock change: up to an hour shorter or longer (a configured time that a
        # change skips is read as the first instant after the gap, so a week can lose less than an hour).
        assert abs(end - start - timedelta(days=7)) <= timedelta(hours=1)
