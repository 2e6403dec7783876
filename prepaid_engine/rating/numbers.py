"""Exact decimal arithmetic for rating: one context, value checks shared by tariffs, readings and states.

Every rating computation runs under :data:`EXACT`: enough precision for any realistic quantity times price,
and ``Inexact`` trapped, so a result is either exact or an error, never silently rounded. Money is rounded in
one place only (:func:`round_money`, ROUND_HALF_UP, its own context).
"""

from __future__ import annotations

from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from ..errors import ConfigError

ZERO = Decimal(0)
ONE = Decimal(1)
PRICE_QUANTUM = Decimal("0.0001")  # prices keep at most 4 decimals

#: Time shares are fractions of the metered interval with this many decimals (see ``Interval.split_at``).
SHARE_DIGITS = 15
SHARE_SCALE = 10**SHARE_DIGITS

EXACT = Context(prec=80, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
_ROUNDING = Context(prec=80, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])


def to_decimal(value: object, what: str) -> Decimal:
    """``value`` as a finite Decimal; ints and decimal strings are accepted, floats never (inexact)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ConfigError(
                f"{what} is not a decimal number: {value!r}",
                kind="number.not_decimal",
                what=what,
                value=value,
            ) from exc
    else:
        raise ConfigError(
            f"{what} must be a Decimal (or int / decimal string), not {type(value).__name__}",
            kind="number.wrong_type",
            what=what,
            value=value,
        )
    if not result.is_finite():
        raise ConfigError(
            f"{what} must be finite, not {result}", kind="number.not_finite", what=what, value=result
        )
    return result


def to_quantity(value: object, what: str) -> Decimal:
    result = to_decimal(value, what)
    if result < 0:
        raise ConfigError(
            f"{what} must not be negative, got {result}", kind="number.negative", what=what, value=result
        )
    return result


def to_price(value: object, what: str) -> Decimal:
    result = to_quantity(value, what)
    if result.as_tuple().exponent < -4 and result.quantize(PRICE_QUANTUM, context=_ROUNDING) != result:
        raise ConfigError(
            f"{what} has more than 4 decimals: {result}",
            kind="number.too_many_decimals",
            what=what,
            value=result,
        )
    return result


def round_money(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, context=_ROUNDING)


def tidy(value: Decimal) -> Decimal:
    """The same number without trailing fractional zeros (``6.170000`` -> ``6.17``, ``500.0`` -> ``500``)."""
    if value.as_tuple().exponent >= 0:
        return value
    normal = value.normalize(EXACT)
    return normal if normal.as_tuple().exponent <= 0 else normal.quantize(ONE, context=EXACT)
