"""The balance-level rule and the supervision rule (prepaid_engine.levels)."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_engine.errors import ConfigError
from prepaid_engine.levels import (
    SEVERITY,
    Level,
    Levels,
    level_function,
    level_of,
    quantum_of,
    supervise,
)

DEFAULT = Levels.of(50, 20, 10, 0)
CENT = Decimal("0.01")


@pytest.mark.parametrize(
    ("balance", "expected"),
    [
        ("50.01", Level.NORMAL),
        ("50.00", Level.WARNING_1),
        ("20.01", Level.WARNING_1),
        ("20", Level.WARNING_2),
        ("10", Level.WARNING_3),
        ("0.01", Level.WARNING_3),
        ("0", Level.CUTOFF),
        ("-3.19", Level.CUTOFF),
    ],
)
def test_a_balance_is_at_the_most_severe_level_whose_threshold_it_is_at_or_below(balance, expected):
    assert level_of(Decimal(balance), DEFAULT) == expected


def test_the_overdraft_allowance_moves_the_cutoff_down():
    levels = Levels.of(50, 20, 10, 0, overdraft_limit=5)
    assert level_of(Decimal("-4.99"), levels) == Level.WARNING_3
    assert level_of(Decimal("-5"), levels) == Level.CUTOFF
    assert levels.cutoff_threshold == Decimal(-5)


def test_half_a_cent_above_a_threshold_counts_as_at_it_like_compare_amounts():
    # Odoo's compare_amounts rounds the difference half away from zero: 0.005 rounds to 0.01 (above), 0.0049
    # to 0.00 (at). The rule decides the same way for every caller (one account or a settlement batch).
    assert level_of(Decimal("10.0049"), DEFAULT) == Level.WARNING_3
    assert level_of(Decimal("10.005"), DEFAULT) == Level.WARNING_2


def test_levels_of_floats_and_texts_are_exact():
    assert Levels.of(0.1, "0.05", Decimal("0.01"), 0).warn_level_1 == Decimal("0.1")


def test_levels_out_of_order_or_negative_overdraft_are_refused():
    assert DEFAULT.check() is DEFAULT
    with pytest.raises(ConfigError):
        Levels.of(20, 50, 10, 0).check()
    with pytest.raises(ConfigError):
        Levels.of(50, 20, 10, 10.01).check()
    with pytest.raises(ConfigError):
        Levels.of(50, 20, 10, 0, -1).check()
    with pytest.raises(ConfigError):
        Levels.of("NaN", 20, 10, 0)
    with pytest.raises(ConfigError):
        Levels.of("x", 20, 10, 0)


amounts = st.decimals(min_value=-10_000, max_value=10_000, places=4, allow_nan=False, allow_infinity=False)


def _compare_amounts_level(balance, levels, quantum):
    """The rule written the slow way: compare_amounts on each threshold, most severe first."""
    for level, threshold in (
        (Level.CUTOFF, levels.cutoff_threshold),
        (Level.WARNING_3, levels.warn_level_3),
        (Level.WARNING_2, levels.warn_level_2),
        (Level.WARNING_1, levels.warn_level_1),
    ):
        if (balance - threshold).quantize(quantum, rounding=ROUND_HALF_UP) <= 0:
            return level
    return Level.NORMAL


@given(
    balance=amounts,
    base=st.decimals(min_value=-100, max_value=100, places=2),
    gaps=st.tuples(*(st.decimals(min_value="0.01", max_value=100, places=2) for _ in range(3))),
    overdraft=st.decimals(min_value=0, max_value=100, places=2),
    places=st.sampled_from([0, 2, 3]),
)
def test_the_fast_level_function_agrees_with_compare_amounts_everywhere(
    balance, base, gaps, overdraft, places
):
    levels = Levels(
        base + gaps[0] + gaps[1] + gaps[2], base + gaps[0] + gaps[1], base + gaps[0], base, overdraft
    )
    quantum = quantum_of(places)
    assert level_function(levels, quantum)(balance) == _compare_amounts_level(balance, levels, quantum)


@given(low=amounts, high=amounts)
def test_a_lower_balance_is_never_at_a_milder_level(low, high):
    low, high = sorted((low, high))
    assert SEVERITY[level_of(low, DEFAULT)] >= SEVERITY[level_of(high, DEFAULT)]


# -- supervision: a rule on states, not on crossings ------------------------------------------------------


def test_an_account_already_at_the_cutoff_is_alerted_and_cut_without_any_crossing():
    action = supervise(Level.CUTOFF, Level.NORMAL, supply_cut=False)
    assert (action.notify, action.cut, action.supply_cut, action.alerted) == (
        Level.CUTOFF,
        True,
        True,
        Level.CUTOFF,
    )


def test_an_account_already_in_a_warning_level_is_alerted_once():
    first = supervise(Level.WARNING_2, Level.NORMAL, supply_cut=False)
    assert (first.notify, first.cut) == (Level.WARNING_2, None)
    again = supervise(Level.WARNING_2, first.alerted, supply_cut=False)
    assert again.notify is None


def test_rising_resets_the_alerted_level_so_the_next_descent_alerts_again():
    risen = supervise(Level.NORMAL, Level.WARNING_3, supply_cut=False)
    assert (risen.alerted, risen.notify) == (Level.NORMAL, None)
    assert supervise(Level.WARNING_1, risen.alerted, supply_cut=False).notify == Level.WARNING_1


def test_a_rise_from_the_cutoff_restores_the_supply_at_once():
    action = supervise(Level.WARNING_3, Level.CUTOFF, supply_cut=True)
    assert (action.cut, action.supply_cut, action.notify, action.alerted) == (
        False,
        False,
        None,
        Level.WARNING_3,
    )


def test_keep_power_never_cuts_and_switching_it_on_restores():
    assert supervise(Level.CUTOFF, Level.NORMAL, False, keep_power=True).cut is None
    assert supervise(Level.CUTOFF, Level.CUTOFF, True, keep_power=True).cut is False


def test_an_unsupervised_account_is_neither_alerted_nor_cut():
    action = supervise(Level.CUTOFF, Level.NORMAL, False, supervised=False)
    assert (action.notify, action.cut, action.alerted) == (None, None, Level.NORMAL)


@given(
    level=st.sampled_from(list(Level)),
    alerted=st.sampled_from(list(Level)),
    cut=st.booleans(),
    keep_power=st.booleans(),
    supervised=st.booleans(),
)
def test_supervising_twice_does_nothing_the_second_time(level, alerted, cut, keep_power, supervised):
    first = supervise(level, alerted, cut, keep_power=keep_power, supervised=supervised)
    second = supervise(level, first.alerted, first.supply_cut, keep_power=keep_power, supervised=supervised)
    assert (second.notify, second.cut) == (None, None)
    assert (second.alerted, second.supply_cut) == (first.alerted, first.supply_cut)
    assert first.supply_cut == (level == Level.CUTOFF and not keep_power and supervised)


# -- days left ---------------------------------------------------------------------------------------------


def test_days_left_averages_the_window():
    from prepaid_engine.levels import days_left

    # 30 days of history, 60 charged: 2 a day; 10 spendable lasts 5 days.
    assert days_left(Decimal("10"), Decimal("60"), 45) == 5
    # a short history averages over its own days: 5 charged over 3 days, 10 spendable -> 6 days exactly
    assert days_left(Decimal("10"), Decimal("5"), 3) == 6
    assert days_left(10.0, 5.0, 3) == 6  # floats from the ORM give the same exact answer
    # the floor: 9.99 at 5 per 3 days is 5.994 days
    assert days_left(Decimal("9.99"), Decimal("5"), 3) == 5


def test_days_left_says_nothing_without_usage_or_money():
    from prepaid_engine.levels import days_left

    assert days_left(Decimal("10"), Decimal("0"), 30) == 0
    assert days_left(Decimal("-3"), Decimal("30"), 30) == 0
    assert days_left(Decimal("0"), Decimal("30"), 30) == 0
    # a first day counts as one day, not zero
    assert days_left(Decimal("10"), Decimal("2"), 0) == 5


def test_days_left_refuses_nonsense():
    from prepaid_engine.errors import ConfigError
    from prepaid_engine.levels import days_left

    with pytest.raises(ConfigError):
        days_left(float("nan"), Decimal("1"), 3)
    with pytest.raises(ConfigError):
        days_left(Decimal("1"), Decimal("1"), 3, window=0)
