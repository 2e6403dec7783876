"""Apportionment rules: each coefficient source, quantity x price, fixed amounts and master-meter loss."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.billing.rules import (
    ApportionmentRule,
    CoefficientSource,
    UnitBasis,
    apportion_common,
    meter_loss,
)
from prepaid_engine.errors import ConfigError

D = Decimal
UNITS = (
    UnitBasis("101", area=D("50"), consumption=D("120.5"), coefficient=D(1)),
    UnitBasis("102", area=D("70"), consumption=D("80"), coefficient=D(2)),
    UnitBasis("103", area=D("30"), consumption=D("0"), coefficient=D(1), fixed_amount=D("5")),
)


def amounts(result) -> dict[str, Decimal]:
    return {line.key: line.amount for line in result.lines}


def test_manual_coefficients_share_the_cost_by_their_ratios():
    result = apportion_common(ApportionmentRule("manual"), UNITS, cost=D("100.00"))
    assert amounts(result) == {"101": D("25.00"), "102": D("50.00"), "103": D("25.00")}
    line = result.by_key()["102"]
    assert (line.coefficient, line.basis, line.ratio) == (D(2), None, D("0.500000"))
    assert result.allocated == D("100.00")
    assert result.unallocated == D("0.00")
    assert result.total_coefficient == D(4)


def test_area_shares_by_floor_area_with_the_cent_left_by_rounding_to_the_largest_remainder():
    result = apportion_common(ApportionmentRule(CoefficientSource.AREA), UNITS, cost=D("100.00"))
    # exact: 33.333.., 46.666.., 20: 33.33 + 46.66 + 20 = 99.99, the cent goes to 102 (remainder 0.666)
    assert amounts(result) == {"101": D("33.33"), "102": D("46.67"), "103": D("20.00")}
    assert [line.basis for line in result.lines] == [D("50"), D("70"), D("30")]
    assert [line.ratio for line in result.lines] == [D("0.333333"), D("0.466667"), D("0.200000")]


def test_consumption_share_gives_a_unit_that_consumed_nothing_nothing():
    result = apportion_common(ApportionmentRule("consumption"), UNITS, cost=D("80.20"))
    # 120.5 : 80 of 80.20 -> 48.2 and 32.0 exactly
    assert amounts(result) == {"101": D("48.20"), "102": D("32.00"), "103": D("0.00")}
    assert result.by_key()["103"].basis == D(0)


def test_quantity_times_price_is_rounded_half_up_once_before_it_is_shared():
    # 123.45 kWh x 0.6512 = 80.38964 -> 80.39
    result = apportion_common(ApportionmentRule("manual"), UNITS, quantity=D("123.45"), price=D("0.6512"))
    assert result.cost == D("80.39")
    assert sum(amounts(result).values()) == D("80.39")
    assert amounts(result) == {"101": D("20.10"), "102": D("40.19"), "103": D("20.10")}


def test_fixed_amounts_charge_each_unit_its_amount_and_report_what_is_left_to_the_manager():
    result = apportion_common(ApportionmentRule("fixed", fixed_amount=D("10")), UNITS, cost=D("80.39"))
    assert amounts(result) == {"101": D("10.00"), "102": D("10.00"), "103": D("5.00")}
    assert result.allocated == D("25.00")
    assert result.unallocated == D("55.39")
    over = apportion_common(ApportionmentRule("fixed", fixed_amount=D("30")), UNITS, cost=D("50.00"))
    assert over.unallocated == D("-15.00")  # collected more than the cost
    no_cost = apportion_common(ApportionmentRule("fixed", fixed_amount=D("30")), UNITS)
    assert no_cost.unallocated is None
    assert no_cost.cost is None


def test_a_master_meter_loss_is_priced_and_shared_the_same_way_in_its_own_column():
    loss = meter_loss(D("300"), [D("120.5"), D("80"), D("0")])
    assert (loss.sub_total, loss.difference, loss.loss, loss.negative) == (
        D("200.5"),
        D("99.5"),
        D("99.5"),
        False,
    )
    result = apportion_common(ApportionmentRule("area"), UNITS, cost=D("100.00"), loss=loss, price=D("0.5"))
    assert result.loss_cost == D("49.75")  # 99.5 x 0.5
    assert [line.loss for line in result.lines] == [D("16.58"), D("23.22"), D("9.95")]
    assert sum(line.loss for line in result.lines) == D("49.75")
    assert sum(line.common for line in result.lines) == D("100.00")
    assert all(line.amount == line.common + line.loss for line in result.lines)
    assert result.allocated == D("149.75")
    assert result.anomalies == ()


def test_the_loss_can_have_its_own_price_and_be_shared_without_a_common_cost():
    loss = meter_loss(D("10"), {"m1": D("4"), "m2": D("2")})
    result = apportion_common(ApportionmentRule("manual"), UNITS, loss=loss, loss_price=D("1.2"))
    assert result.cost == D("0.00")
    assert result.loss_cost == D("4.80")
    assert [line.amount for line in result.lines] == [D("1.20"), D("2.40"), D("1.20")]


def test_a_negative_loss_is_clamped_to_zero_and_flagged_as_a_meter_problem():
    loss = meter_loss(D("190"), [D("120.5"), D("80")])
    assert (loss.difference, loss.loss, loss.negative) == (D("-10.5"), D(0), True)
    result = apportion_common(ApportionmentRule("area"), UNITS, cost=D("10.00"), loss=loss, price=D("0.5"))
    assert result.loss_cost == D("0.00")
    assert all(line.loss == 0 for line in result.lines)
    assert result.anomalies == ("loss.negative",)


def test_a_credit_is_shared_back_symmetrically():
    charge = apportion_common(ApportionmentRule("area"), UNITS, cost=D("100.00"))
    credit = apportion_common(ApportionmentRule("area"), UNITS, cost=D("-100.00"))
    assert amounts(credit) == {key: -amount for key, amount in amounts(charge).items()}


@pytest.mark.parametrize(
    ("rule", "units", "kwargs", "kind"),
    [
        (ApportionmentRule("area"), (UnitBasis("a"),), {"cost": D(1)}, "apportion.basis_missing"),
        (ApportionmentRule("fixed"), (UnitBasis("a"),), {}, "apportion.basis_missing"),
        (ApportionmentRule("area"), (UnitBasis("a", area=D(1)),), {}, "apportion.cost_missing"),
        (
            ApportionmentRule("area"),
            (UnitBasis("a", area=D(1)),),
            {"cost": D(1), "quantity": D(1)},
            "apportion.cost_twice",
        ),
        (
            ApportionmentRule("area"),
            (UnitBasis("a", area=D(1)),),
            {"quantity": D(1)},
            "apportion.price_missing",
        ),
        (
            ApportionmentRule("area"),
            (UnitBasis("a", area=D(1)),),
            {"loss": meter_loss(D(2), [D(1)])},
            "apportion.price_missing",
        ),
        (
            ApportionmentRule("fixed", fixed_amount=D(1)),
            (UnitBasis("a"),),
            {"loss": meter_loss(D(2), [D(1)]), "price": D(1)},
            "apportion.loss_with_fixed",
        ),
        (
            ApportionmentRule("area"),
            (UnitBasis("a", area=D(1)), UnitBasis("a", area=D(2))),
            {"cost": D(1)},
            "apportion.unit_twice",
        ),
        (ApportionmentRule("area"), (UnitBasis("a", area=D(-1)),), {"cost": D(1)}, "number.negative"),
        (ApportionmentRule("area"), (UnitBasis("a", area=D(0)),), {"cost": D(1)}, "apportion.zero_weights"),
        (ApportionmentRule("area"), (), {"cost": D(1)}, "apportion.empty"),
        (
            ApportionmentRule("area"),
            (UnitBasis("a", area=D(1)),),
            {"cost": D("0.001")},
            "money.finer_than_precision",
        ),
        (
            ApportionmentRule("fixed"),
            (UnitBasis("a", fixed_amount=D("0.001")),),
            {},
            "money.finer_than_precision",
        ),
    ],
)
def test_unusable_input_is_refused_with_a_named_rule(rule, units, kwargs, kind):
    with pytest.raises(ConfigError) as caught:
        apportion_common(rule, units, **kwargs)
    assert caught.value.kind == kind


def test_an_unknown_coefficient_source_is_refused():
    with pytest.raises(ConfigError) as caught:
        ApportionmentRule("headcount")
    assert caught.value.kind == "apportion.source"


quantity_st = st.decimals(min_value=0, max_value=10**5, places=3, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(quantity_st, quantity_st), min_size=1, max_size=20),
    st.sampled_from(["area", "consumption", "manual"]),
    quantity_st,
    st.decimals(min_value=0, max_value=10, places=4, allow_nan=False, allow_infinity=False),
    quantity_st,
)
def test_both_columns_add_up_exactly_whatever_the_units(data, source, quantity, price, master):
    units = [UnitBasis(f"u{i}", area=a + 1, consumption=c, coefficient=a) for i, (a, c) in enumerate(data)]
    if source != "area" and not any(
        getattr(u, "consumption" if source == "consumption" else "coefficient") for u in units
    ):
        units[0] = UnitBasis("u0", area=D(1), consumption=D(1), coefficient=D(1))
    loss = meter_loss(master, [u.consumption for u in units])
    result = apportion_common(ApportionmentRule(source), units, quantity=quantity, price=price, loss=loss)
    assert sum(line.common for line in result.lines) == result.cost
    assert sum(line.loss for line in result.lines) == result.loss_cost
    assert result.allocated == result.cost + result.loss_cost
    assert result.unallocated == 0
    assert all(line.amount >= 0 for line in result.lines)
    assert ("loss.negative" in result.anomalies) == loss.negative
