"""Anomaly detectors (prepaid_engine.anomaly): examples of each kind, and properties (a clean, noisy but
regular meter never alarms; a spike far above its history always does; re-ordering inputs changes nothing)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.anomaly import (
    DayUse,
    TamperState,
    balance_mismatch,
    expected_meter_balance,
    line_loss,
    not_read,
    spike,
    tamper,
    zero_consumption,
)
from prepaid_engine.errors import ConfigError

D = Decimal
DAY0 = date(2026, 1, 1)


def _days(quantities):
    return [DayUse(DAY0 + timedelta(days=i), D(q)) for i, q in enumerate(quantities)]


# zero consumption ----------------------------------------------------------------------------------------


def test_zero_consumption_on_occupied_unit_for_n_days_is_found():
    found = zero_consumption("m1", _days(["3", "2", "0", "0", "0"]), True, 3)
    assert found.kind == "zero_consumption"
    assert found.evidence == {"zero_days": "3", "n_days": "3"}
    assert (found.period_start, found.period_end) == (DAY0 + timedelta(days=2), DAY0 + timedelta(days=4))


def test_zero_consumption_on_vacant_unit_or_short_run_is_not_found():
    assert zero_consumption("m1", _days(["0"] * 10), False, 3) is None
    assert zero_consumption("m1", _days(["1", "0", "0"]), True, 3) is None
    assert zero_consumption("m1", [], True, 3) is None


def test_zero_consumption_a_missing_day_breaks_the_run():
    days = _days(["0", "0", "0", "0"])
    del days[1]
    assert zero_consumption("m1", days, True, 3) is None


def test_zero_consumption_order_of_days_does_not_matter():
    days = _days(["5", "0", "0", "0"])
    assert zero_consumption("m1", list(reversed(days)), True, 3) == zero_consumption("m1", days, True, 3)


def test_zero_consumption_refuses_bad_n():
    with pytest.raises(ConfigError):
        zero_consumption("m1", [], True, 0)


# spike ---------------------------------------------------------------------------------------------------


def test_spike_far_above_history_is_found_with_evidence():
    history = [
        D(v) for v in ["10", "11", "9", "10", "12", "10", "9", "11", "10", "10", "11", "9", "10", "10"]
    ]
    found = spike("m1", history, D("60"), day=DAY0)
    assert found.kind == "consumption_spike"
    assert found.evidence["median"] == "10"
    assert found.evidence["history_days"] == "14"
    assert found.period_start == DAY0


def test_spike_needs_minimum_history():
    assert spike("m1", [D(10)] * 5, D(1000)) is None


def test_spike_absolute_floor_keeps_tiny_meter_quiet():
    # a perfectly regular tiny meter (MAD 0): a step below the floor is no spike
    assert spike("m1", [D("0.2")] * 20, D("3")) is None
    assert spike("m1", [D("0.2")] * 20, D("6")) is not None


def test_spike_refuses_bad_parameters():
    with pytest.raises(ConfigError):
        spike("m1", [], D(1), min_history=0)
    with pytest.raises(ConfigError):
        spike("m1", [], D(1), floor=D(-1))


@settings(max_examples=200, deadline=None)
@given(
    base=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_property_regular_noisy_meter_never_spikes(base, seed):
    """Daily use within +-20 % of a base load: today within the same band never alarms."""
    rnd = random.Random(seed)

    def noisy():
        return (D(base) * D(rnd.uniform(0.8, 1.2))).quantize(D("0.01"))

    history = [noisy() for _ in range(30)]
    assert spike("m", history, noisy()) is None


@settings(max_examples=200, deadline=None)
@given(
    base=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_property_tenfold_day_always_spikes(base, seed):
    rnd = random.Random(seed)
    history = [(D(base) * D(rnd.uniform(0.8, 1.2))).quantize(D("0.01")) for _ in range(30)]
    assert spike("m", history, D(base) * 10 + 10) is not None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=1000, places=2), min_size=14, max_size=40), st.randoms())
def test_property_spike_does_not_depend_on_history_order(history, rnd):
    shuffled = list(history)
    rnd.shuffle(shuffled)
    today = max(history) * 3 + 10
    assert spike("m", history, today) == spike("m", shuffled, today)


# not read ------------------------------------------------------------------------------------------------

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)
CYCLE = timedelta(minutes=15)


def test_not_read_beyond_n_cycles_is_found():
    found = not_read("m1", NOW - timedelta(hours=2), CYCLE, 4, NOW)
    assert found.kind == "not_read"
    assert found.evidence["cycles_missed"] == "8"


def test_not_read_within_n_cycles_or_never_read():
    assert not_read("m1", NOW - timedelta(minutes=60), CYCLE, 4, NOW) is None
    assert not_read("m1", None, CYCLE, 4, NOW).evidence["cycles_missed"] == "never"


def test_not_read_refuses_bad_cycle():
    with pytest.raises(ConfigError):
        not_read("m1", None, timedelta(0), 4, NOW)


# line loss -----------------------------------------------------------------------------------------------


def test_line_loss_above_threshold_is_found():
    found = line_loss("master", D(100), [D(40), D(40)], D("0.05"))
    assert found.kind == "line_loss"
    assert found.evidence["loss"] == "20"
    assert found.evidence["loss_share"] == "20.00"


def test_line_loss_within_threshold_or_below_floor_is_not_found():
    assert line_loss("master", D(100), [D(50), D(47)], D("0.05")) is None
    assert line_loss("master", D("2"), [D("1")], D("0.05")) is None  # 50 % but only 1 kWh
    assert line_loss("master", D(0), [], D("0.05")) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=1000, places=2), min_size=1, max_size=20))
def test_property_subs_that_sum_to_master_never_lose(subs):
    assert line_loss("master", sum(subs, D(0)), subs, D("0.01")) is None


# balance mismatch ----------------------------------------------------------------------------------------


def test_balance_mismatch_beyond_tolerance_is_found():
    found = balance_mismatch("m1", D("80.00"), D("100.00"), D("1.00"))
    assert found.evidence["difference"] == "-20.00"
    assert balance_mismatch("m1", D("99.50"), D("100.00"), D("1.00")) is None
    assert balance_mismatch("m1", None, D("100.00"), D("1.00")) is None


def test_expected_meter_balance_is_the_meters_own_earlier_balance_less_its_use_plus_recharges():
    # a clean meter-side meter: 100.00, then 12.34 kWh at 0.60 and a 50.00 recharge -> 142.596
    expected = expected_meter_balance(D("100.00"), D("12.34"), D("0.6000"), D("50.00"))
    assert expected == D("142.596")
    assert balance_mismatch("m1", D("142.59"), expected, D("1.00")) is None  # the meter shows 0.01 steps
    drifted = balance_mismatch("m1", D("102.59"), expected, D("1.00"))
    assert D(drifted.evidence["difference"]) == D("-40.006")
    with pytest.raises(ConfigError):
        expected_meter_balance(D("100"), D("-1"), D("0.6"))


# tamper --------------------------------------------------------------------------------------------------


def test_tamper_counters_that_increased_and_reverse_energy_that_grew():
    before = TamperState(reverse_total=D("0.10"), cover_open_count=2, magnetic_count=0)
    after = TamperState(reverse_total=D("1.10"), cover_open_count=3, magnetic_count=1)
    events = sorted(f.evidence["event"] for f in tamper("m1", before, after))
    assert events == ["cover_open", "magnetic", "reverse_energy"]


def test_tamper_nothing_when_unchanged_absent_or_reset():
    state = TamperState(reverse_total=D(1), cover_open_count=2, magnetic_count=1)
    assert tamper("m1", state, state) == []
    assert tamper("m1", TamperState(), state) == []
    assert tamper("m1", state, TamperState(cover_open_count=0, magnetic_count=0, reverse_total=D(0))) == []
