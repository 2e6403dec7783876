"""Consumption intervals: from two register readings to a quantity, and from an interval to its pieces.

Readings
--------
:func:`consumption` turns two readings of one meter into an :class:`Interval`. The delta of a register is
``curr - prev``; a decrease is never silently accepted:

- **Roll-over.** With ``rollover_at`` (the largest value the register shows, written to the register's
  resolution: ``Decimal("999999.99")``), a decrease is read as a wrap through zero:
  ``delta = rollover_at - prev + resolution + curr`` (the register goes ``rollover_at -> 0`` in one
  resolution step). The wrap is accepted only if it is plausible: both readings within the register's range
  and the wrapped delta at most a tenth of the register's range (``(rollover_at + resolution) / 10``). A
  larger "wrap" is far more likely a reset or a wrong reading, and is refused.
- **Replacement.** A :class:`Replacement` (old meter's final reading, new meter's initial reading, when)
  between the two readings: ``delta = (old_final - prev) + (curr - new_initial)``, each leg checked as above.
- **Anything else** (a decrease without a configured roll-over, an implausible wrap, readings out of order)
  raises :class:`ConsumptionError` and yields no interval, so nothing is charged.

Band registers
--------------
When both readings (and both sides of a replacement) carry the same band registers, the interval carries
band deltas; bands a meter does not have count zero. A band present on one reading and missing on the other
means the split is not trusted and the interval carries no bands (it is then shared across bands by time).
Meters round each register separately, so band deltas need not add up to the total delta. **The total
wins**: a surplus of the total goes to the band with the largest delta, a deficit is taken from the largest
band (then the next largest, never below zero); ties go to the first band in sharp, peak, flat, valley
order. Band deltas of zero against a positive total carry no information and give an interval without bands.
Either way the bands of an interval always add up exactly to its total.

Pieces
------
:meth:`Interval.split_at` cuts an interval at given instants, sharing its consumption (and each band) in
proportion to time. Shares are exact decimals: the share of ``[a, b)`` in the metered interval ``[S, E)`` is
``w(b) - w(a)`` with ``w(t) = floor((t - S) / (E - S) * 10**15) / 10**15`` computed on integer microseconds,
``w(S) = 0`` and ``w(E) = 1``. Pieces keep the metered interval as their ``basis``, so cutting a piece again,
or rating a piece by time of use, uses the same ``w``: pieces always add up exactly to the whole, and each
piece's quantity is linear in the whole's, hence monotone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import reduce

from ..errors import ConfigError, EngineError
from ..types import Reading
from .numbers import EXACT, SHARE_DIGITS, SHARE_SCALE, ZERO, tidy, to_decimal
from .periods import to_us
from .tariff import BANDS, Bands

__all__ = ["ConsumptionError", "Interval", "Register", "Replacement", "consumption"]


class ConsumptionError(EngineError, ValueError):
    """Two readings that do not make a consumption: a decrease that is neither a plausible roll-over nor a
    declared replacement, or readings out of order. Nothing is charged for them."""


def _utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _sum(values: Iterable[Decimal]) -> Decimal:
    return reduce(EXACT.add, values, ZERO)


def _portion(value: Decimal, numerator: int) -> Decimal:
    """``value * numerator / 10**15``, exactly."""
    return tidy(EXACT.multiply(value, Decimal(numerator)).scaleb(-SHARE_DIGITS, EXACT))


@dataclass(frozen=True, slots=True)
class Interval:
    """Consumption between two instants (UTC): ``total`` and, when known from band registers, ``bands``.

    ``basis`` is the metered interval a piece was cut from (``None`` for a metered interval itself); see
    :meth:`split_at`. ``bands``, when present, add up exactly to ``total``.
    """

    start: datetime
    end: datetime
    total: Decimal
    bands: Bands | None = None
    basis: Interval | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        start, end = _utc(self.start, "interval start"), _utc(self.end, "interval end")
        if end <= start:
            raise ConfigError(f"an interval ends after it starts: {start.isoformat()} .. {end.isoformat()}")
        set_(self, "start", start)
        set_(self, "end", end)
        total = self.total if type(self.total) is Decimal else to_decimal(self.total, "interval total")
        if not total.is_finite() or total < 0:
            raise ConfigError(f"interval total must be a finite non-negative Decimal, not {total}")
        set_(self, "total", total)
        bands = self.bands
        if bands is not None:
            if type(bands) is not Bands or any(type(q) is not Decimal or q < 0 for q in bands):
                bands = Bands.of(bands)
                set_(self, "bands", bands)
            if _sum(bands) != total:
                raise ConfigError(
                    f"band quantities {tuple(map(str, bands))} do not add up to the total {total}"
                )
        basis = self.basis
        if basis is not None:
            if not isinstance(basis, Interval) or basis.basis is not None:
                raise ConfigError("an interval's basis is the metered interval itself (whose basis is None)")
            if start < basis.start or end > basis.end:
                raise ConfigError("a piece lies inside its basis")
            expected = basis._piece(start, end)
            if expected.total != total or expected.bands != bands:
                raise ConfigError("a piece's quantities must be its basis's time share (use split_at)")

    # -- proportional shares ------------------------------------------------------------------------------

    def _numerator(self, us: int) -> int:
        """``w(t) * 10**15`` on this (metered) interval, ``t`` in microseconds."""
        start, end = to_us(self.start), to_us(self.end)
        if us >= end:
            return SHARE_SCALE
        if us <= start:
            return 0
        return (us - start) * SHARE_SCALE // (end - start)

    def _piece(self, start: datetime, end: datetime) -> _Shares:
        """Quantities of ``[start, end)`` as a share of this metered interval (validation helper)."""
        share = self._numerator(to_us(end)) - self._numerator(to_us(start))
        bands = None if self.bands is None else Bands(*(_portion(q, share) for q in self.bands))
        return _Shares(_portion(self.total, share), bands)

    def split_at(self, cuts: Iterable[datetime]) -> list[Interval]:
        """Pieces of this interval cut at ``cuts`` (instants strictly inside it), in time order.

        Quantities are shared in proportion to time on the metered interval (see the module notes), so the
        pieces' totals and bands add up exactly to this interval's.
        """
        points = sorted({_utc(cut, "cut") for cut in cuts})
        if not points:
            return [self]
        if points[0] <= self.start or points[-1] >= self.end:
            raise ConfigError(
                f"cuts must lie strictly inside {self.start.isoformat()} .. {self.end.isoformat()}"
            )
        root = self.basis or self
        bounds = [self.start, *points, self.end]
        numerators = [root._numerator(to_us(at)) for at in bounds]
        pieces = []
        for k in range(len(points) + 1):
            share = numerators[k + 1] - numerators[k]
            bands = None if root.bands is None else Bands(*(_portion(q, share) for q in root.bands))
            pieces.append(Interval(bounds[k], bounds[k + 1], _portion(root.total, share), bands, root))
        return pieces


@dataclass(frozen=True, slots=True)
class _Shares:
    total: Decimal
    bands: Bands | None


@dataclass(frozen=True, slots=True)
class Register:
    """A meter's energy (or volume) registers at one instant: ``total`` and optional band registers."""

    at: datetime
    total: Decimal
    sharp: Decimal | None = None
    peak: Decimal | None = None
    flat: Decimal | None = None
    valley: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at, "reading time"))
        for name in ("total", *BANDS):
            value = getattr(self, name)
            if value is None and name != "total":
                continue
            value = to_decimal(value, f"{name} register")
            if value < 0:
                raise ConsumptionError(f"{name} register reads {value}, below zero")
            object.__setattr__(self, name, value)

    @classmethod
    def from_reading(cls, reading: Reading) -> Register:
        if reading.total is None:
            raise ConsumptionError(
                f"reading of {reading.meter_key} at {reading.read_at} has no total register"
            )
        return cls(reading.read_at, reading.total, reading.sharp, reading.peak, reading.flat, reading.valley)

    def band_registers(self) -> tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]:
        return (self.sharp, self.peak, self.flat, self.valley)


@dataclass(frozen=True, slots=True)
class Replacement:
    """A meter swapped between two readings: the old meter's last registers, the new one's first, when."""

    old_final: Register
    new_initial: Register
    at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at, "replacement time"))


def _delta(before: Decimal, after: Decimal, rollover_at: Decimal | None, what: str) -> Decimal:
    if rollover_at is not None and (before > rollover_at or after > rollover_at):
        raise ConsumptionError(f"{what} reads {max(before, after)}, above the register's limit {rollover_at}")
    if after >= before:
        return EXACT.subtract(after, before)
    if rollover_at is None:
        raise ConsumptionError(f"{what} decreased from {before} to {after} (no roll-over configured)")
    modulus = EXACT.add(rollover_at, Decimal(1).scaleb(rollover_at.as_tuple().exponent))
    delta = EXACT.add(EXACT.subtract(modulus, before), after)
    if delta > modulus.scaleb(-1):
        raise ConsumptionError(
            f"{what} went from {before} to {after}: a roll-over at {rollover_at} would mean {delta},"
            f" more than a tenth of the register's range; refused"
        )
    return delta


def _band_deltas(
    legs: list[tuple[Register, Register]], total: Decimal, rollover_at: Decimal | None
) -> Bands | None:
    deltas: list[Decimal] = []
    for index, band in enumerate(BANDS):
        values = [(a.band_registers()[index], b.band_registers()[index]) for a, b in legs]
        present = [a is not None and b is not None for a, b in values]
        if all(present):
            deltas.append(_sum(_delta(a, b, rollover_at, f"{band} register") for a, b in values))  # type: ignore[arg-type]
        elif any(a is not None or b is not None for a, b in values):
            return None  # a band register on one reading only: the split is not trusted
        else:
            deltas.append(ZERO)
    found = _sum(deltas)
    if found == total:
        return Bands(*deltas)
    if found == 0:
        return None
    # The total wins: largest band first, ties in band order.
    order = sorted(range(4), key=lambda i: (-deltas[i], i))
    if found < total:
        deltas[order[0]] = EXACT.add(deltas[order[0]], EXACT.subtract(total, found))
    else:
        excess = EXACT.subtract(found, total)
        for i in order:
            take = min(deltas[i], excess)
            deltas[i] = EXACT.subtract(deltas[i], take)
            excess = EXACT.subtract(excess, take)
            if not excess:
                break
    return Bands(*deltas)


def consumption(
    prev: Register,
    curr: Register,
    *,
    rollover_at: Decimal | None = None,
    replacement: Replacement | None = None,
) -> Interval:
    """The consumption between two readings of one meter (see the module notes for roll-over, replacement and
    band reconciliation). Raises :class:`ConsumptionError` when the readings do not make a consumption."""
    if curr.at <= prev.at:
        raise ConsumptionError(f"readings out of order: {prev.at.isoformat()} then {curr.at.isoformat()}")
    if rollover_at is not None:
        rollover_at = to_decimal(rollover_at, "rollover_at")
        if rollover_at <= 0:
            raise ConfigError(f"rollover_at must be positive, not {rollover_at}")
    if replacement is None:
        legs = [(prev, curr)]
    else:
        if not prev.at <= replacement.at <= curr.at:
            raise ConsumptionError(
                f"replacement at {replacement.at.isoformat()} is not between the readings"
                f" {prev.at.isoformat()} and {curr.at.isoformat()}"
            )
        legs = [(prev, replacement.old_final), (replacement.new_initial, curr)]
    if replacement is None:
        total = _delta(prev.total, curr.total, rollover_at, "total register")
        if prev.band_registers() == _NO_REGISTERS == curr.band_registers():
            return Interval(prev.at, curr.at, total)
    else:
        total = _sum(_delta(a.total, b.total, rollover_at, "total register") for a, b in legs)
    return Interval(prev.at, curr.at, total, _band_deltas(legs, total, rollover_at))


_NO_REGISTERS = (None, None, None, None)
