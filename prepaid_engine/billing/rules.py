"""Common-area apportionment rules: whose coefficient, what cost, which lines.

A common meter (corridor lights, lifts, the pump room) has a cost for the period, given as money or as its
quantity times a price. An :class:`ApportionmentRule` says how that cost is shared over the units
(:class:`UnitBasis`) of a building, by its coefficient source (:class:`CoefficientSource`):

=============== ===========================================================================================
source          each unit's coefficient
=============== ===========================================================================================
``manual``      its ``coefficient`` as set by staff (weights: only their ratios matter, they need not add
                up to 1 or 100)
``consumption`` its ``consumption`` of the common meter's utility in the same period (its share of what the
                units consumed)
``area``        its floor ``area`` (m2)
``fixed``       none: each unit owes a fixed amount (its ``fixed_amount``, else the rule's), whatever the
                cost; what the fixed amounts do not cover (or cover twice) is reported as ``unallocated``
=============== ===========================================================================================

For the proportional sources the cost is shared with :func:`~.apportion.apportion` (largest remainder: the
unit amounts add up to the cost exactly, each within one precision step of its exact proportional share).

**Loss.** Optionally the loss between a master meter and its sub-meters (:func:`meter_loss`: master quantity
minus the sum of the sub-meter quantities) is priced and shared the same way, as a second column that also
adds up exactly. A negative loss (the sub-meters add up to more than the master) cannot be a loss: it is
evidence of a meter problem (a wrong CT ratio, a stuck or replaced master, readings of different instants),
so it is clamped to zero, nothing is charged for it, and the result carries the anomaly
``"loss.negative"`` for someone to look at.

**Rounding.** A cost given as quantity x price is rounded once, half away from zero, to the currency
precision before it is shared (:func:`~.money.round_half_up`); so is the loss quantity x its price. A cost
given as money must already be a multiple of the precision. The amounts are what each unit owes (positive
for a charge); the ledger line that deducts them is their negation. ``ratio`` is for display only: the
coefficient over the total, rounded half up to 6 decimals.

Pure: no I/O, no clock, nothing looked up.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from ..errors import ConfigError
from ..rating.numbers import ZERO, to_quantity
from .apportion import apportion
from .money import CENT, check_precision, from_steps, round_half_up, to_steps

__all__ = [
    "RATIO_PRECISION",
    "Apportionment",
    "ApportionmentLine",
    "ApportionmentRule",
    "CoefficientSource",
    "MeterLoss",
    "UnitBasis",
    "apportion_common",
    "meter_loss",
]

RATIO_PRECISION = Decimal("0.000001")
ANOMALY_NEGATIVE_LOSS = "loss.negative"


class CoefficientSource(enum.StrEnum):
    MANUAL = "manual"
    CONSUMPTION = "consumption"
    AREA = "area"
    FIXED = "fixed"


# Which UnitBasis attribute each proportional source reads (one home for the rule).
_BASIS_FIELD = {
    CoefficientSource.MANUAL: "coefficient",
    CoefficientSource.CONSUMPTION: "consumption",
    CoefficientSource.AREA: "area",
}


@dataclass(frozen=True, slots=True)
class UnitBasis:
    """One unit as an apportionment sees it; only the field of the rule's source is needed.

    ``consumption`` is the unit's quantity of the common meter's utility (kWh or m3) in the period being
    apportioned; ``area`` its floor area (m2); ``coefficient`` its manual coefficient; ``fixed_amount`` its
    own fixed amount (overrides the rule's)."""

    key: str
    area: Decimal | None = None
    consumption: Decimal | None = None
    coefficient: Decimal | None = None
    fixed_amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ApportionmentRule:
    """How a common cost is shared: the coefficient ``source``, and for ``fixed`` the amount per unit."""

    source: CoefficientSource
    fixed_amount: Decimal | None = None

    def __post_init__(self) -> None:
        try:
            source = CoefficientSource(self.source)
        except ValueError as exc:
            raise ConfigError(
                f"coefficient source must be one of {[str(s) for s in CoefficientSource]}, "
                f"not {self.source!r}",
                kind="apportion.source",
                value=self.source,
            ) from exc
        object.__setattr__(self, "source", source)
        if self.fixed_amount is not None:
            object.__setattr__(self, "fixed_amount", to_quantity(self.fixed_amount, "fixed amount per unit"))


@dataclass(frozen=True, slots=True)
class MeterLoss:
    """A master meter against its sub-meters over one period (quantities in kWh or m3).

    ``difference`` is ``master - sub_total`` as measured; ``loss`` is the part that can be charged:
    ``difference`` when it is not negative, else zero with ``negative`` set (a meter problem)."""

    master: Decimal
    sub_total: Decimal
    difference: Decimal
    loss: Decimal
    negative: bool


def meter_loss(master: Decimal, sub_meters: Sequence[Decimal] | Mapping[str, Decimal]) -> MeterLoss:
    """The loss between a master meter's ``master`` quantity and its ``sub_meters``' quantities."""
    master = to_quantity(master, "master meter quantity")
    values = sub_meters.items() if isinstance(sub_meters, Mapping) else enumerate(sub_meters)
    sub_total = sum((to_quantity(q, f"sub-meter {key!r} quantity") for key, q in values), ZERO)
    difference = master - sub_total
    negative = difference < 0
    return MeterLoss(master, sub_total, difference, ZERO if negative else difference, negative)


@dataclass(frozen=True, slots=True)
class ApportionmentLine:
    """One unit's part: ``coefficient`` used (for ``fixed``: the fixed amount), ``basis`` (the consumption or
    area it came from; None for manual and fixed), ``ratio`` (display), shares of the ``common`` cost and of
    the ``loss`` cost, and ``amount`` = common + loss, what the unit owes."""

    key: str
    coefficient: Decimal
    basis: Decimal | None
    ratio: Decimal | None
    common: Decimal
    loss: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Apportionment:
    """The lines of one apportionment and its summary.

    ``cost`` is the common cost shared (money), ``loss_cost`` the priced loss shared (zero without a loss),
    ``allocated`` the sum of the lines' amounts and ``unallocated = cost + loss_cost - allocated`` (zero for
    the proportional sources; for ``fixed`` what the fixed amounts leave to the manager, negative when they
    collect more than the cost; None when a fixed rule was given no cost). ``anomalies`` names what needs a
    look (``"loss.negative"``)."""

    source: CoefficientSource
    lines: tuple[ApportionmentLine, ...]
    cost: Decimal | None
    quantity: Decimal | None
    price: Decimal | None
    loss: MeterLoss | None
    loss_cost: Decimal
    total_coefficient: Decimal
    allocated: Decimal
    unallocated: Decimal | None
    anomalies: tuple[str, ...]

    def by_key(self) -> dict[str, ApportionmentLine]:
        return {line.key: line for line in self.lines}


def _common_cost(
    cost: Decimal | None, quantity: Decimal | None, price: Decimal | None, precision: Decimal
) -> Decimal | None:
    if cost is not None:
        if quantity is not None:
            raise ConfigError(
                "give the common cost either as money or as quantity x price, not both",
                kind="apportion.cost_twice",
            )
        return from_steps(to_steps(cost, precision, "common cost"), precision)
    if quantity is None:
        return None
    if price is None:
        raise ConfigError("a common quantity needs a price", kind="apportion.price_missing")
    exact = Fraction(to_quantity(quantity, "common quantity")) * Fraction(to_quantity(price, "common price"))
    return round_half_up(exact, precision)


def _weights(rule: ApportionmentRule, units: Sequence[UnitBasis]) -> dict[str, Decimal]:
    name = _BASIS_FIELD[rule.source]
    weights: dict[str, Decimal] = {}
    for unit in units:
        value = getattr(unit, name)
        if value is None:
            raise ConfigError(
                f"unit {unit.key!r} has no {name}, which a {rule.source} apportionment needs",
                kind="apportion.basis_missing",
                unit=unit.key,
                field=name,
            )
        weights[unit.key] = to_quantity(value, f"{name} of unit {unit.key!r}")
    return weights


def _check_keys(units: Sequence[UnitBasis]) -> None:
    seen: set[str] = set()
    for unit in units:
        if not isinstance(unit, UnitBasis):
            raise ConfigError(f"units must be UnitBasis values, not {unit!r}", kind="apportion.unit_shape")
        if unit.key in seen:
            raise ConfigError(f"unit {unit.key!r} appears twice", kind="apportion.unit_twice", unit=unit.key)
        seen.add(unit.key)


def apportion_common(
    rule: ApportionmentRule,
    units: Sequence[UnitBasis],
    *,
    cost: Decimal | None = None,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    loss: MeterLoss | None = None,
    loss_price: Decimal | None = None,
    precision: Decimal = CENT,
) -> Apportionment:
    """Share a common meter's cost (``cost``, or ``quantity`` x ``price``) and optionally a master meter's
    ``loss`` (priced at ``loss_price``, default ``price``) over ``units`` by ``rule`` (see the module)."""
    precision = check_precision(precision)
    _check_keys(units)
    common = _common_cost(cost, quantity, price, precision)
    anomalies: list[str] = []
    nothing = from_steps(0, precision)
    loss_cost = nothing
    if loss is not None:
        if rule.source is CoefficientSource.FIXED:
            raise ConfigError(
                "a fixed-amount apportionment has no coefficients to share a loss by",
                kind="apportion.loss_with_fixed",
            )
        if loss.negative:
            anomalies.append(ANOMALY_NEGATIVE_LOSS)
        unit_price = loss_price if loss_price is not None else price
        if unit_price is None:
            raise ConfigError("a loss needs a price (loss_price or price)", kind="apportion.price_missing")
        loss_cost = round_half_up(
            Fraction(loss.loss) * Fraction(to_quantity(unit_price, "loss price")), precision
        )
    if rule.source is CoefficientSource.FIXED:
        return _fixed(rule, units, common, quantity, price, precision, nothing)
    if common is None and loss is None:
        raise ConfigError(
            "a proportional apportionment needs a cost (cost, or quantity and price) or a loss",
            kind="apportion.cost_missing",
        )
    common = common if common is not None else nothing
    weights = _weights(rule, units)
    total = sum(weights.values(), ZERO)
    common_shares = apportion(common, weights, precision)
    loss_shares = apportion(loss_cost, weights, precision)
    name = _BASIS_FIELD[rule.source]
    lines = tuple(
        ApportionmentLine(
            key=key,
            coefficient=weight,
            basis=None if name == "coefficient" else weight,
            ratio=round_half_up(Fraction(weight) / Fraction(total), RATIO_PRECISION) if total else None,
            common=common_shares[key],
            loss=loss_shares[key],
            amount=common_shares[key] + loss_shares[key],
        )
        for key, weight in weights.items()
    )
    allocated = sum((line.amount for line in lines), ZERO)
    if allocated != common + loss_cost:  # pragma: no cover - apportion() adds up exactly
        raise AssertionError("apportioned amounts do not add up to the cost")
    return Apportionment(
        source=rule.source,
        lines=lines,
        cost=common,
        quantity=quantity,
        price=price,
        loss=loss,
        loss_cost=loss_cost,
        total_coefficient=total,
        allocated=allocated,
        unallocated=common + loss_cost - allocated,
        anomalies=tuple(anomalies),
    )


def _fixed(
    rule: ApportionmentRule,
    units: Sequence[UnitBasis],
    common: Decimal | None,
    quantity: Decimal | None,
    price: Decimal | None,
    precision: Decimal,
    nothing: Decimal,
) -> Apportionment:
    lines = []
    for unit in units:
        amount = unit.fixed_amount if unit.fixed_amount is not None else rule.fixed_amount
        if amount is None:
            raise ConfigError(
                f"unit {unit.key!r} has no fixed amount and the rule has none",
                kind="apportion.basis_missing",
                unit=unit.key,
                field="fixed_amount",
            )
        what = f"fixed amount of unit {unit.key!r}"
        amount = from_steps(to_steps(to_quantity(amount, what), precision, what), precision)
        lines.append(ApportionmentLine(unit.key, amount, None, None, amount, nothing, amount))
    allocated = sum((line.amount for line in lines), nothing)
    return Apportionment(
        source=rule.source,
        lines=tuple(lines),
        cost=common,
        quantity=quantity,
        price=price,
        loss=None,
        loss_cost=nothing,
        total_coefficient=allocated,
        allocated=allocated,
        unallocated=None if common is None else common - allocated,
        anomalies=(),
    )
