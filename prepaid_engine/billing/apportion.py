"""Largest-remainder apportionment: a cost shared by weights into shares that add up to it exactly.

:func:`apportion` splits ``cost`` (money, a whole multiple of the currency ``precision``) in proportion to
non-negative ``weights``. Counted in precision steps (cents), each share first gets the whole part of its
exact proportional value ``cost * weight / total``; the steps left over (fewer than the number of shares)
go one each to the shares with the largest remainders. Hence:

- the shares add up exactly to ``cost``;
- each share is within one precision step of its exact proportional value (it is that value rounded down or
  up to the precision); a share whose proportional value is already money gets exactly that;
- a zero weight gets a zero share, and no share has the opposite sign of the cost: a positive cost (a charge)
  gives no negative share, a negative cost (a credit) is shared exactly as its opposite would be and the
  shares negated (the symmetry holds share by share).

**Tie-break** (which shares get the leftover steps when remainders are equal), deterministic and independent
of the order the weights come in: larger remainder first, then larger weight, then smaller key (for a
mapping, keys in ascending order: the keys must be mutually orderable, e.g. all ``str`` or all ``int``; for a
sequence, the lower index). So the same key -> weight mapping gives the same share per key whatever its
iteration order.

**Edge rules.** A zero cost gives zero shares whatever the weights (also when they are all zero or there are
none). A non-zero cost needs at least one weight (:class:`ConfigError` ``apportion.empty``) and a positive
total weight (``apportion.zero_weights``). Weights are ``Decimal`` (or ``int`` / decimal strings; never
floats), finite and not negative (``number.not_finite``, ``number.negative``, ``number.wrong_type``, with
``what`` naming the weight). The cost must be finite and a whole multiple of the precision
(``money.finer_than_precision``): it is money already, rounded once by whoever priced it.

Exact throughout: weights are scaled to integers and the arithmetic is on Python integers, so any weights
(1E-30 next to 1E+30) and any cost apportion exactly.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar, overload

from ..errors import ConfigError
from ..rating.numbers import to_quantity
from .money import CENT, check_precision, from_steps, to_steps

__all__ = ["apportion", "apportion_steps"]

K = TypeVar("K", bound=Hashable)


@overload
def apportion(cost: Decimal, weights: Mapping[K, Decimal], precision: Decimal = CENT) -> dict[K, Decimal]: ...


@overload
def apportion(
    cost: Decimal, weights: Sequence[Decimal], precision: Decimal = CENT
) -> tuple[Decimal, ...]: ...


def apportion(cost, weights, precision=CENT):
    """Shares of ``cost`` in proportion to ``weights``, adding up exactly to ``cost`` (see the module).

    ``weights`` is a mapping key -> weight (the result is a dict in the mapping's order) or a sequence (the
    result is a tuple in the same order). Shares are Decimals with the precision's exponent."""
    precision = check_precision(precision)
    steps = to_steps(cost, precision, "apportioned cost")
    if isinstance(weights, Mapping):
        keys = list(weights)
        values = [to_quantity(weights[key], f"weight of {key!r}") for key in keys]
        try:
            rank = {key: index for index, key in enumerate(sorted(keys))}
        except TypeError as exc:
            raise ConfigError(
                "apportionment keys must be mutually orderable (all str or all int): ties are broken by key",
                kind="apportion.keys_unorderable",
            ) from exc
        order = [rank[key] for key in keys]
        shares = apportion_steps(steps, values, order)
        return {key: from_steps(share, precision) for key, share in zip(keys, shares, strict=True)}
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence):
        raise ConfigError(
            f"weights must be a mapping key -> weight or a sequence of weights, not {type(weights).__name__}",
            kind="apportion.weights_shape",
        )
    values = [to_quantity(weight, f"weight {index}") for index, weight in enumerate(weights)]
    shares = apportion_steps(steps, values, list(range(len(values))))
    return tuple(from_steps(share, precision) for share in shares)


def _integer_weights(weights: Sequence[Decimal]) -> list[int]:
    """The weights scaled by one common power of ten to integers, exactly (same ratios)."""
    exponents = [weight.as_tuple().exponent for weight in weights if weight]
    lowest = min(exponents, default=0)
    scaled = []
    for weight in weights:
        if not weight:
            scaled.append(0)
            continue
        _, digits, exponent = weight.as_tuple()
        scaled.append(int("".join(map(str, digits))) * 10 ** (exponent - lowest))  # type: ignore[operator]
    return scaled


def apportion_steps(steps: int, weights: Sequence[Decimal], order: Sequence[int]) -> list[int]:
    """The integer core of :func:`apportion`: ``steps`` (whole precision steps, signed) shared by checked
    non-negative ``weights``; ``order`` ranks each weight for the last tie-break (lower first)."""
    if steps == 0:
        return [0] * len(weights)
    if not weights:
        raise ConfigError("a non-zero cost cannot be apportioned over nothing", kind="apportion.empty")
    scaled = _integer_weights(weights)
    total = sum(scaled)
    if total == 0:
        raise ConfigError(
            f"a non-zero cost cannot be apportioned by weights that are all zero ({len(weights)} weights)",
            kind="apportion.zero_weights",
            count=len(weights),
        )
    magnitude = abs(steps)
    shares = []
    remainders = []
    for weight in scaled:
        whole, remainder = divmod(magnitude * weight, total)
        shares.append(whole)
        remainders.append(remainder)
    left = magnitude - sum(shares)  # 0 <= left < number of positive remainders (they add up to left * total)
    if left:
        by_claim = sorted(range(len(scaled)), key=lambda i: (-remainders[i], -scaled[i], order[i]))
        for index in by_claim[:left]:
            shares[index] += 1
    if sum(shares) != magnitude:  # pragma: no cover - the arithmetic above makes this impossible
        raise AssertionError("largest-remainder shares do not add up")
    return shares if steps > 0 else [-share for share in shares]
