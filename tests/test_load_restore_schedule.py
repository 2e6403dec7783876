"""Restore policy after load trips, time-control schedules (midnight, DST), and signature learning."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.errors import ConfigError
from prepaid_engine.load import (
    SCHOOL_NIGHTS,
    Category,
    LoadProfile,
    MaliciousMode,
    PowerRange,
    RestoreAction,
    RestorePolicy,
    Sample,
    Schedule,
    Window,
    classify,
    decide_restore,
    learn_signature,
    next_edge,
    supply_at,
)
from prepaid_engine.types import Supply

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
D = Decimal


def local(zone, *args):
    return datetime(*args, tzinfo=zone)


# ------------------------------------------------------------------------------------------------ restore

POLICY = RestorePolicy(timedelta(minutes=5), 3)


def test_the_first_three_trips_of_the_day_restore_after_the_delay_and_the_fourth_stays_open():
    trips = [local(SHANGHAI, 2025, 3, 3, h, 0) for h in (9, 11, 14, 20)]
    for n in range(1, 4):
        decision = decide_restore(trips[:n], POLICY, tz="Asia/Shanghai")
        assert decision.action is RestoreAction.RESTORE
        assert decision.at == trips[n - 1] + timedelta(minutes=5)
        assert decision.trips_today == n
    fourth = decide_restore(trips, POLICY, tz="Asia/Shanghai")
    assert (fourth.action, fourth.at, fourth.trips_today) == (RestoreAction.MANAGER, None, 4)


def test_trips_of_yesterday_do_not_count_against_today():
    trips = [local(SHANGHAI, 2025, 3, 3, 23, m) for m in (0, 20, 40)] + [local(SHANGHAI, 2025, 3, 4, 0, 5)]
    decision = decide_restore(trips, POLICY, tz="Asia/Shanghai")
    assert (decision.action, decision.trips_today) == (RestoreAction.RESTORE, 1)
    # the same instants counted in UTC all fall on 3 March (15:00-16:05 UTC): the fourth stays open
    assert decide_restore(trips, POLICY, tz="UTC").action is RestoreAction.MANAGER


def test_a_balance_cut_off_is_never_restored_by_load_control():
    trip = [local(SHANGHAI, 2025, 3, 3, 9, 0)]
    decision = decide_restore(trip, POLICY, tz="Asia/Shanghai", balance_cut_off=True)
    assert (decision.action, decision.at) == (RestoreAction.NEVER, None)


@settings(max_examples=100, deadline=None)
@given(
    minutes=st.lists(st.integers(0, 3 * 1440), min_size=1, max_size=12),
    delay=st.integers(0, 120),
    count=st.integers(0, 5),
)
def test_balance_cut_off_always_wins_and_restores_never_exceed_the_daily_count(minutes, delay, count):
    start = local(NEW_YORK, 2025, 3, 8, 0, 0)
    trips = [start + timedelta(minutes=m) for m in minutes]
    policy = RestorePolicy(timedelta(minutes=delay), count)
    assert decide_restore(trips, policy, tz=NEW_YORK, balance_cut_off=True).action is RestoreAction.NEVER
    decision = decide_restore(trips, policy, tz=NEW_YORK)
    assert (decision.action is RestoreAction.RESTORE) == (0 < decision.trips_today <= count)
    if decision.at is not None:
        assert decision.at == max(trips) + timedelta(minutes=delay)


def test_automatic_restore_off_waits_for_a_manager():
    trip = [local(SHANGHAI, 2025, 3, 3, 9, 0)]
    assert decide_restore(trip, RestorePolicy(None, 3), tz="Asia/Shanghai").action is RestoreAction.MANAGER
    assert (
        decide_restore(trip, RestorePolicy(timedelta(0), 0), tz="Asia/Shanghai").action
        is RestoreAction.MANAGER
    )
    with pytest.raises(ConfigError):
        decide_restore([], POLICY, tz="Asia/Shanghai")


def test_a_23_hour_day_counts_its_trips_by_local_midnights():
    # New York, 9 March 2025: clocks go from 02:00 to 03:00
    trips = [local(NEW_YORK, 2025, 3, 9, 0, 30), local(NEW_YORK, 2025, 3, 9, 23, 30)]
    assert decide_restore(trips, RestorePolicy(timedelta(minutes=1), 1), tz=NEW_YORK).trips_today == 2


# ---------------------------------------------------------------------------------------------- schedules

SCHOOL = Schedule(windows=(Window(time(23, 30), time(6, 0), SCHOOL_NIGHTS),))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ((2025, 3, 3, 23, 29), Supply.ON),  # Monday evening
        ((2025, 3, 3, 23, 30), Supply.OFF),
        ((2025, 3, 4, 2, 0), Supply.OFF),  # Tuesday small hours: Monday's window
        ((2025, 3, 4, 5, 59), Supply.OFF),
        ((2025, 3, 4, 6, 0), Supply.ON),
        ((2025, 3, 7, 23, 45), Supply.ON),  # Friday night: no school the next day
        ((2025, 3, 8, 2, 0), Supply.ON),
        ((2025, 3, 9, 23, 45), Supply.OFF),  # Sunday night
        ((2025, 3, 10, 1, 0), Supply.OFF),
    ],
)
def test_school_nights_are_off_from_2330_to_0600_across_midnight(when, expected):
    assert supply_at(SCHOOL, local(SHANGHAI, *when), "Asia/Shanghai") is expected


def test_the_next_edge_is_the_next_change_of_the_desired_state():
    assert next_edge(SCHOOL, local(SHANGHAI, 2025, 3, 3, 12, 0), "Asia/Shanghai") == local(
        SHANGHAI, 2025, 3, 3, 23, 30
    )
    assert next_edge(SCHOOL, local(SHANGHAI, 2025, 3, 3, 23, 30), "Asia/Shanghai") == local(
        SHANGHAI, 2025, 3, 4, 6, 0
    )
    # Friday noon: no window Friday or Saturday night; the next is Sunday 23:30
    assert next_edge(SCHOOL, local(SHANGHAI, 2025, 3, 7, 12, 0), "Asia/Shanghai") == local(
        SHANGHAI, 2025, 3, 9, 23, 30
    )
    assert next_edge(Schedule(), local(SHANGHAI, 2025, 3, 7, 12, 0), "Asia/Shanghai") is None


def test_holidays_have_their_own_rule_and_the_effective_range_bounds_the_windows():
    schedule = Schedule(
        windows=SCHOOL.windows,
        holidays=frozenset({date(2025, 3, 4)}),  # a Tuesday off
        holiday_windows=(Window(time(1, 0), time(7, 0)),),
        effective_from=date(2025, 3, 3),
        effective_until=date(2025, 3, 5),
    )
    tz = "Asia/Shanghai"
    assert supply_at(schedule, local(SHANGHAI, 2025, 3, 4, 5, 0), tz) is Supply.OFF  # Monday's window
    assert supply_at(schedule, local(SHANGHAI, 2025, 3, 4, 23, 45), tz) is Supply.ON  # holiday: no 23:30 rule
    assert supply_at(schedule, local(SHANGHAI, 2025, 3, 5, 6, 30), tz) is Supply.ON
    assert supply_at(schedule, local(SHANGHAI, 2025, 3, 4, 1, 30), tz) is Supply.OFF  # holiday window
    assert supply_at(schedule, local(SHANGHAI, 2025, 3, 5, 23, 45), tz) is Supply.OFF  # last effective day
    assert supply_at(schedule, local(SHANGHAI, 2025, 3, 6, 23, 45), tz) is Supply.ON  # past the range
    assert supply_at(schedule, local(SHANGHAI, 2025, 3, 2, 23, 45), tz) is Supply.ON  # before it
    assert next_edge(schedule, local(SHANGHAI, 2025, 3, 6, 12, 0), tz) is None


def test_an_on_window_in_an_off_by_default_schedule_and_off_winning_overlaps():
    schedule = Schedule(
        windows=(Window(time(6, 0), time(23, 0), supply=Supply.ON), Window(time(12, 0), time(13, 0))),
        default=Supply.OFF,
    )
    tz = SHANGHAI
    assert supply_at(schedule, local(tz, 2025, 3, 3, 5, 0), tz) is Supply.OFF
    assert supply_at(schedule, local(tz, 2025, 3, 3, 7, 0), tz) is Supply.ON
    assert supply_at(schedule, local(tz, 2025, 3, 3, 12, 30), tz) is Supply.OFF
    assert next_edge(schedule, local(tz, 2025, 3, 3, 7, 0), tz) == local(tz, 2025, 3, 3, 12, 0)


def test_across_spring_forward_the_night_window_is_one_hour_shorter_and_ends_at_0600_local():
    tz = "America/New_York"
    start = local(NEW_YORK, 2025, 3, 8, 23, 30)  # Saturday night; DST starts Sunday 02:00
    schedule = Schedule(windows=(Window(time(23, 30), time(6, 0)),))
    end = next_edge(schedule, start, tz)
    assert end == local(NEW_YORK, 2025, 3, 9, 6, 0)
    assert end - start == timedelta(hours=5, minutes=30)
    assert end.utcoffset() == timedelta(0)  # results are UTC
    assert supply_at(schedule, datetime(2025, 3, 9, 7, 30, tzinfo=UTC), tz) is Supply.OFF  # 03:30 EDT


def test_across_fall_back_the_night_window_is_one_hour_longer():
    tz = "America/New_York"
    start = local(NEW_YORK, 2025, 11, 1, 23, 30)  # DST ends Sunday 2 November 02:00
    schedule = Schedule(windows=(Window(time(23, 30), time(6, 0)),))
    assert next_edge(schedule, start, tz) - start == timedelta(hours=7, minutes=30)


def test_a_window_inside_the_skipped_hour_does_not_happen_and_an_ambiguous_time_is_its_first_occurrence():
    tz = "America/New_York"
    skipped = Schedule(windows=(Window(time(2, 15), time(2, 45)),))
    day_start = local(NEW_YORK, 2025, 3, 9, 0, 0)
    edge = next_edge(skipped, day_start, tz)
    assert edge.astimezone(NEW_YORK).date() == date(2025, 3, 10)  # not on the 9th
    ambiguous = Schedule(windows=(Window(time(1, 15), time(1, 45)),))
    first = next_edge(ambiguous, local(NEW_YORK, 2025, 11, 2, 0, 0), tz)
    assert first == datetime(2025, 11, 2, 5, 15, tzinfo=UTC)  # 01:15 EDT, the first 01:15


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 1439),
    end=st.integers(0, 1439),
    days=st.frozensets(st.integers(0, 6), min_size=1),
    minute=st.integers(0, 60 * 24 * 14),
)
def test_the_state_is_constant_between_an_instant_and_its_next_edge(start, end, days, minute):
    tz = "America/New_York"
    schedule = Schedule(windows=(Window(time(start // 60, start % 60), time(end // 60, end % 60), days),))
    at = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
    edge = next_edge(schedule, at, tz)
    state = supply_at(schedule, at, tz)
    if edge is None:
        return
    assert edge > at
    assert supply_at(schedule, edge - timedelta(microseconds=1), tz) is state
    assert supply_at(schedule, edge, tz) is not state
    middle = at + (edge - at) / 2
    assert supply_at(schedule, middle, tz) is state


# ------------------------------------------------------------------------------------------------ learning

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def test_a_learnt_kettle_signature_is_resistive_and_classifies_the_next_kettle_as_it():
    base = [Sample(T0 + timedelta(seconds=i), D(200), D("0.6")) for i in range(5)]
    on = []
    for i in range(20):
        p = D(200 + 1800 + (i % 5) * 4 - 8)
        q = D(200) * (1 / (D("0.6") ** 2) - 1).sqrt()
        on.append(Sample(T0 + timedelta(seconds=5 + i), p, reactive_var=q))
    signature = learn_signature(on, code="my_kettle", name="Our kettle", baseline=base)
    assert signature.resistive and signature.pf_max == 1
    assert signature.power_min <= 1792 and signature.power_max >= 1808
    assert signature.power_min >= 1550 and signature.power_max <= 2050
    assert signature.category is Category.ALLOWED
    profile = LoadProfile(
        malicious_mode=MaliciousMode.TRIP, ranges=(PowerRange(300, 6000),), whitelist=(signature,)
    )
    [event] = classify(
        [Sample(T0, D(0), D(1))] * 3 + [Sample(T0 + timedelta(seconds=9), D(1800), D(1))] * 3, profile
    )
    assert (event.classification, event.appliance) == ("whitelisted", "my_kettle")


def test_learning_skips_a_start_surge_and_keeps_the_pf_of_a_motor():
    samples = [Sample(T0, D(600), D("0.7")), Sample(T0 + timedelta(seconds=1), D(450), D("0.7"))]
    samples += [Sample(T0 + timedelta(seconds=2 + i), D(120 + i % 3), D("0.7")) for i in range(10)]
    signature = learn_signature(samples, code="fridge2", name="Fridge")
    assert signature.surge_ratio >= D(3)
    assert signature.power_max < 200
    assert signature.pf_min <= D("0.7") <= signature.pf_max and not signature.resistive


def test_learning_needs_samples_that_draw_power():
    with pytest.raises(ConfigError):
        learn_signature([Sample(T0, D(0), D(1))] * 5, code="x", name="X")
