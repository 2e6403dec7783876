"""Largest-remainder apportionment: exact sums, bounded shares, deterministic and order-independent ties."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.billing.apportion import apportion
from prepaid_engine.billing.money import round_half_up
from prepaid_engine.errors import ConfigError

CENT = Decimal("0.01")

weights_st = st.decimals(
    min_value=0, max_value=Decimal("1E6"), places=4, allow_nan=False, allow_infinity=False
)
wide_weights_st = st.one_of(
    weights_st,
    st.integers(0, 10**12).map(Decimal),
    st.builds(lambda m, e: Decimal(m).scaleb(e), st.integers(0, 999), st.integers(-30, 30)),
)
cost_steps_st = st.integers(-(10**9), 10**9)
precision_st = st.sampled_from(
    [Decimal("0.01"), Decimal("0.05"), Decimal(1), Decimal("0.001"), Decimal("1E+2")]
)


@st.composite
def cases(draw, keyed: bool = True):
    precision = draw(precision_st)
    cost = draw(cost_steps_st) * precision
    weights = draw(st.lists(wide_weights_st, min_size=1, max_size=30))
    if not any(weights):
        weights[draw(st.integers(0, len(weights) - 1))] = Decimal(1)
    if not keyed:
        return cost, weights, precision
    keys = draw(
        st.lists(st.text(min_size=1, max_size=4), min_size=len(weights), max_size=len(weights), unique=True)
    )
    return cost, dict(zip(keys, weights, strict=True)), precision


def exact_share(cost: Decimal, weight: Decimal, total: Decimal) -> Fraction:
    return Fraction(cost) * Fraction(weight) / Fraction(total)


# -- properties ------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(cases())
def test_shares_add_up_exactly_to_the_cost_at_the_precision(case):
    cost, weights, precision = case
    shares = apportion(cost, weights, precision)
    assert sum(shares.values()) == cost
    assert list(shares) == list(weights)
    for share in shares.values():
        assert share.as_tuple().exponent == precision.as_tuple().exponent
        assert Fraction(share) / Fraction(precision) == int(Fraction(share) / Fraction(precision))


@settings(max_examples=400, deadline=None)
@given(cases())
def test_each_share_is_within_one_precision_step_of_its_exact_proportional_value(case):
    cost, weights, precision = case
    shares = apportion(cost, weights, precision)
    total = sum(weights.values())
    for key, share in shares.items():
        assert abs(Fraction(share) - exact_share(cost, weights[key], total)) < Fraction(precision)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_no_share_has_the_opposite_sign_of_the_cost_and_zero_weights_get_nothing(case):
    cost, weights, precision = case
    shares = apportion(cost, weights, precision)
    for key, share in shares.items():
        if cost >= 0:
            assert share >= 0
        else:
            assert share <= 0
        if weights[key] == 0:
            assert share == 0


@settings(max_examples=300, deadline=None)
@given(cases())
def test_a_credit_is_shared_as_the_negated_shares_of_the_charge(case):
    cost, weights, precision = case
    assert apportion(-cost, weights, precision) == {
        k: -v for k, v in apportion(cost, weights, precision).items()
    }


@settings(max_examples=300, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_shares_per_key_do_not_depend_on_the_order_of_the_input(case, random):
    cost, weights, precision = case
    items = list(weights.items())
    random.shuffle(items)
    assert apportion(cost, dict(items), precision) == apportion(cost, weights, precision)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_apportioning_is_deterministic(case):
    cost, weights, precision = case
    assert apportion(cost, weights, precision) == apportion(cost, dict(weights), precision)


@settings(max_examples=200, deadline=None)
@given(cases(keyed=False))
def test_a_sequence_of_weights_gives_a_tuple_in_the_same_order_with_index_tie_break(case):
    cost, weights, precision = case
    shares = apportion(cost, weights, precision)
    assert isinstance(shares, tuple)
    assert shares == tuple(apportion(cost, dict(enumerate(weights)), precision).values())


@settings(max_examples=200, deadline=None)
@given(cases())
def test_a_share_whose_proportional_value_is_money_gets_exactly_that(case):
    cost, weights, precision = case
    shares = apportion(cost, weights, precision)
    total = sum(weights.values())
    for key, share in shares.items():
        exact = exact_share(cost, weights[key], total)
        if (exact / Fraction(precision)).denominator == 1:
            assert Fraction(share) == exact
        # otherwise it is the exact value rounded down or up to the precision
        else:
            assert abs(Fraction(round_half_up(exact, precision)) - Fraction(share)) <= Fraction(precision)


# -- examples and tie-breaks -----------------------------------------------------------------------------


def test_a_hundred_in_three_equal_shares_gives_the_extra_cent_to_the_first_key():
    shares = apportion(Decimal("100.00"), {"c": Decimal(1), "a": Decimal(1), "b": Decimal(1)})
    assert shares == {"c": Decimal("33.33"), "a": Decimal("33.34"), "b": Decimal("33.33")}


def test_the_largest_remainder_wins_before_weight_and_key():
    # exact: a 3.333.., b 6.666..: b's remainder (0.666) beats a's (0.333) in cents
    assert apportion(Decimal("0.10"), {"a": Decimal(1), "b": Decimal(2)}) == {
        "a": Decimal("0.03"),
        "b": Decimal("0.07"),
    }


def test_equal_remainders_go_to_the_larger_weight_even_against_the_key_order():
    # 2 cents by 3 : 1 -> 1.5 and 0.5 cents: equal remainders, the leftover cent goes to the weight 3
    assert apportion(Decimal("0.02"), {"b": Decimal(3), "a": Decimal(1)}) == {
        "b": Decimal("0.02"),
        "a": Decimal("0.00"),
    }


def test_equal_remainders_and_weights_go_to_the_smaller_key_whatever_the_input_order():
    # 3 cents by 1 : 1 : 4 -> 0.5, 0.5 and 2 cents: a and b tie on remainder and weight, "a" < "b"
    expected = {"a": Decimal("0.01"), "b": Decimal("0.00"), "z": Decimal("0.02")}
    assert apportion(Decimal("0.03"), {"b": Decimal(1), "a": Decimal(1), "z": Decimal(4)}) == expected
    assert apportion(Decimal("0.03"), {"z": Decimal(4), "a": Decimal(1), "b": Decimal(1)}) == expected


def test_integer_keys_break_ties_in_numeric_order():
    assert apportion(Decimal("0.01"), {10: Decimal(1), 9: Decimal(1)}) == {
        10: Decimal("0.00"),
        9: Decimal("0.01"),
    }


def test_a_negative_cost_is_a_credit_shared_symmetrically():
    assert apportion(Decimal("-100.00"), [Decimal(1), Decimal(1), Decimal(1)]) == (
        Decimal("-33.34"),
        Decimal("-33.33"),
        Decimal("-33.33"),
    )


def test_other_precisions_share_in_their_own_steps():
    assert apportion(Decimal("10.00"), [Decimal(1), Decimal(2)], Decimal("0.05")) == (
        Decimal("3.35"),
        Decimal("6.65"),
    )
    assert apportion(Decimal(10), [Decimal(1), Decimal(1), Decimal(1)], Decimal(1)) == (
        Decimal(4),
        Decimal(3),
        Decimal(3),
    )


def test_a_zero_cost_gives_zero_shares_even_with_no_or_zero_weights():
    assert apportion(Decimal(0), {"a": Decimal(0), "b": Decimal(0)}) == {
        "a": Decimal("0.00"),
        "b": Decimal("0.00"),
    }
    assert apportion(Decimal(0), []) == ()
    assert apportion(Decimal(0), {}) == {}


@pytest.mark.parametrize(
    ("cost", "weights", "kind"),
    [
        (Decimal("1.00"), [], "apportion.empty"),
        (Decimal("1.00"), {}, "apportion.empty"),
        (Decimal("1.00"), [Decimal(0), Decimal(0)], "apportion.zero_weights"),
        (Decimal("1.00"), [Decimal(1), Decimal(-1)], "number.negative"),
        (Decimal("1.00"), [Decimal("NaN")], "number.not_finite"),
        (Decimal("1.00"), [Decimal("Infinity")], "number.not_finite"),
        (Decimal("1.00"), [1.5], "number.wrong_type"),
        (Decimal("1.005"), [Decimal(1)], "money.finer_than_precision"),
        (Decimal("NaN"), [Decimal(1)], "number.not_finite"),
        (Decimal("-Infinity"), [Decimal(1)], "number.not_finite"),
        (Decimal("1.00"), {"a": Decimal(1), 2: Decimal(1)}, "apportion.keys_unorderable"),
        (Decimal("1.00"), "12", "apportion.weights_shape"),
    ],
)
def test_bad_input_is_refused_with_a_named_rule(cost, weights, kind):
    with pytest.raises(ConfigError) as caught:
        apportion(cost, weights)
    assert caught.value.kind == kind


def test_a_bad_weight_error_names_the_key():
    with pytest.raises(ConfigError, match="'b'"):
        apportion(Decimal("1.00"), {"a": Decimal(1), "b": Decimal(-2)})


@pytest.mark.parametrize("precision", [Decimal(0), Decimal(-1), Decimal("NaN"), 0.01, "0.01"])
def test_the_precision_must_be_a_positive_finite_decimal(precision):
    with pytest.raises(ConfigError) as caught:
        apportion(Decimal(1), [Decimal(1)], precision)
    assert caught.value.kind == "money.precision"


def test_extreme_weight_ratios_apportion_exactly():
    shares = apportion(Decimal("1.00"), {"tiny": Decimal("1E-30"), "huge": Decimal("1E+30")})
    assert shares == {"tiny": Decimal("0.00"), "huge": Decimal("1.00")}


def test_round_half_up_rounds_halves_away_from_zero():
    assert round_half_up(Decimal("2.675"), CENT) == Decimal("2.68")
    assert round_half_up(Decimal("-2.675"), CENT) == Decimal("-2.68")
    assert round_half_up(Fraction(1, 3), CENT) == Decimal("0.33")
    assert round_half_up(Decimal("-0.004"), CENT) == Decimal("0.00")
