"""Money at a currency's precision, exactly: amounts as whole numbers of precision steps, one rounding rule.

The billing arithmetic never rounds in passing. A quantity times a price, a prorated fee or a proportional
share is an exact rational number (:class:`fractions.Fraction`) until it becomes money, and it becomes money
in one place, :func:`round_half_up`: to the nearest multiple of the precision, halves away from zero
(``Decimal``'s ROUND_HALF_UP, so ``2.675 -> 2.68`` and ``-2.675 -> -2.68``: a credit rounds like a charge).

``precision`` is the currency's smallest amount (``Decimal('0.01')``; any positive finite step such as
``Decimal('0.05')`` or ``Decimal(1)`` works). Amounts that are already money (a ledger line, a common meter's
cost) must be whole multiples of it: :func:`to_steps` refuses anything finer instead of rounding it silently.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from ..errors import ConfigError
from ..rating.numbers import to_decimal

__all__ = ["CENT", "check_precision", "from_steps", "round_half_up", "to_steps"]

CENT = Decimal("0.01")


def check_precision(precision: object) -> Decimal:
    """``precision`` as a positive finite Decimal (:class:`ConfigError` ``money.precision`` otherwise)."""
    if not isinstance(precision, Decimal) or not precision.is_finite() or precision <= 0:
        raise ConfigError(
            f"the currency precision must be a positive finite Decimal (such as 0.01), not {precision!r}",
            kind="money.precision",
            value=precision,
        )
    return precision


def to_steps(amount: object, precision: Decimal, what: str) -> int:
    """``amount`` as a whole number of ``precision`` steps; :class:`ConfigError`
    ``money.finer_than_precision`` when it is not a multiple of the precision (its owner rounds it first)."""
    value = to_decimal(amount, what)
    steps = Fraction(value) / Fraction(precision)
    if steps.denominator != 1:
        raise ConfigError(
            f"{what} {value} is not a whole multiple of the currency precision {precision}",
            kind="money.finer_than_precision",
            what=what,
            value=value,
            precision=precision,
        )
    return steps.numerator


def from_steps(steps: int, precision: Decimal) -> Decimal:
    """``steps`` times ``precision`` as a Decimal with the precision's exponent, exactly (no context)."""
    _, digits, exponent = precision.as_tuple()
    coefficient = abs(steps) * int("".join(map(str, digits)))
    return Decimal((1 if steps < 0 else 0, tuple(int(d) for d in str(coefficient)), exponent))


def round_half_up(value: Fraction | Decimal | int, precision: Decimal) -> Decimal:
    """``value`` rounded to the nearest multiple of ``precision``, halves away from zero."""
    steps = Fraction(value) / Fraction(precision)
    magnitude = abs(steps)
    whole = magnitude.numerator // magnitude.denominator
    if magnitude - whole >= Fraction(1, 2):
        whole += 1
    return from_steps(-whole if steps < 0 else whole, precision)
