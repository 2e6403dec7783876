"""Rating: consumption intervals -> charges, additive and exactly reproducible.

The state of a meter within a settlement cycle is a :class:`CycleState`: what was consumed so far (in total
and, for time-of-use tariffs, per band) and the exact (unrounded) charge so far. :func:`rate` prices one
interval against it and returns the next state:

- ``exact`` is the exact price of the interval's consumption given what the cycle already consumed
  (tiers and the allowance depend on that), computed with ``Decimal`` and no rounding at all;
- ``charge`` is ``round(exact_before + exact) - round(exact_before)`` (ROUND_HALF_UP to the tariff's
  ``rounding``): charges telescope, so however a cycle is cut into intervals, or intervals into calls, the
  charges add up to the cent to rating the whole cycle at once.

Pricing per tariff kind, all functions of the cycle's cumulative consumption (hence additive):

- **flat**: ``price`` per unit.
- **tiered**: a unit's price is that of the tier its cumulative position in the cycle falls in.
- **tou**: a unit's price is that of its band. Bands come from the interval's band registers when it has
  them, otherwise the interval's consumption is shared across bands in proportion to the time it spent in each
  (periods read in the tariff's time zone; see :mod:`.periods` and :meth:`Interval.split_at`).
- **free allowance**: the first ``free_allowance`` units of each cycle are free. For flat and tiered tariffs
  these are the cycle's first units (under rising tiers, the cheapest). For time-of-use tariffs the allowance
  covers the cycle's *cheapest* units, whatever their order in time: valley units first, then the next
  cheapest band. That keeps the charge a function of how much was consumed in each band, never of how the
  cycle was cut. When cheaper units arrive after the allowance already covered dearer ones, the allowance
  moves to the cheaper units and the dearer units it leaves become payable: the interval's lines show exactly
  that (a band line may bill units of another band than the interval consumed).

Never a negative charge: prices are non-negative and payable quantities only grow with consumption. Zero
consumption charges zero. A tariff changed in the middle of a cycle prices only what is rated after the
change (the state keeps the exact charge so far instead of re-pricing history).
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, DecimalException, localcontext
from typing import NamedTuple

from ..calendar import SettlementCalendar, cycle_bounds, split_by_cycle
from ..errors import ConfigError
from .interval import Interval
from .numbers import EXACT, SHARE_DIGITS, ZERO, round_money, tidy, to_quantity
from .numbers import to_decimal as _to_decimal
from .periods import to_us
from .tariff import BANDS, NO_BANDS, Band, BandPrices, Bands, Tariff, TariffKind

__all__ = ["CycleState", "Line", "LineKind", "Rated", "rate", "rate_cycle"]


class LineKind(enum.StrEnum):
    FLAT = "flat"
    BAND = "band"
    TIER = "tier"
    FREE = "free"


class Line(NamedTuple):
    """One line of a charge's explanation: ``quantity`` units at ``unit_price`` make ``amount`` (exact).

    ``band`` is set on band lines, ``tier`` (1-based) on tier lines; a ``free`` line counts the allowance
    units the interval used (price and amount zero). The quantities of an interval's lines add up to its
    total, their amounts to its exact charge.
    """

    kind: LineKind
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    band: Band | None = None
    tier: int | None = None


@dataclass(frozen=True, slots=True)
class CycleState:
    """What one meter consumed and was charged so far in the cycle starting at ``cycle_start`` (UTC).

    ``consumed_by_band`` is tracked by time-of-use tariffs only (flat and tiered tariffs leave it as is).
    Persist all four fields exactly (see :meth:`to_dict`); a new cycle starts from ``CycleState(start)``.
    """

    cycle_start: datetime
    consumed_total: Decimal = ZERO
    consumed_by_band: Bands = NO_BANDS
    exact_charge: Decimal = ZERO

    def __post_init__(self) -> None:
        start = self.cycle_start
        if (
            type(start) is datetime
            and start.tzinfo is UTC
            and type(self.consumed_total) is Decimal
            and type(self.exact_charge) is Decimal
            and type(self.consumed_by_band) is Bands
        ):
            return  # the shape rating itself produces: nothing to normalise
        if not isinstance(start, datetime) or start.tzinfo is not UTC:
            if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
                raise ConfigError(f"cycle_start must be a timezone-aware datetime, not {start!r}")
            object.__setattr__(self, "cycle_start", start.astimezone(UTC))
        if type(self.consumed_total) is not Decimal:
            object.__setattr__(self, "consumed_total", to_quantity(self.consumed_total, "consumed total"))
        if type(self.exact_charge) is not Decimal:
            object.__setattr__(self, "exact_charge", to_quantity(self.exact_charge, "exact charge"))
        if type(self.consumed_by_band) is not Bands:
            object.__setattr__(self, "consumed_by_band", Bands.of(self.consumed_by_band))

    def charged(self, rounding: Decimal = Decimal("0.01")) -> Decimal:
        """The money charged so far in the cycle: the exact charge rounded once."""
        return round_money(self.exact_charge, rounding)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able values (decimals as strings) that :meth:`from_dict` restores exactly."""
        return {
            "cycle_start": self.cycle_start.isoformat(),
            "consumed_total": str(self.consumed_total),
            "consumed_by_band": {
                str(band): str(q) for band, q in zip(BANDS, self.consumed_by_band, strict=True)
            },
            "exact_charge": str(self.exact_charge),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CycleState:
        try:
            start = datetime.fromisoformat(str(data["cycle_start"]))
            by_band = data.get("consumed_by_band") or {}
            return cls(
                start,
                to_quantity(_to_decimal(data.get("consumed_total", "0"), "consumed total"), "consumed total"),
                Bands.of(by_band),  # type: ignore[arg-type]
                to_quantity(_to_decimal(data.get("exact_charge", "0"), "exact charge"), "exact charge"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"invalid cycle state {data!r}: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class Rated:
    """One rated interval: ``charge`` (rounded, telescoping), ``exact`` (unrounded), the state after it and
    the lines explaining it. ``interval`` is the interval (or cycle piece of one) that was rated."""

    charge: Decimal
    exact: Decimal
    new_state: CycleState
    lines: tuple[Line, ...]
    interval: Interval


def _by_time(tariff: Tariff, interval: Interval) -> list[Decimal]:
    """Band quantities of an interval without band registers: its consumption shared by time in each band."""
    table = tariff._table
    assert table is not None  # a tou tariff always has one
    segments = table.segments(to_us(interval.start), to_us(interval.end))
    quantities = [ZERO, ZERO, ZERO, ZERO]
    if len(segments) == 1:
        quantities[segments[0][2]] = interval.total
        return quantities
    root = interval.basis or interval
    numerators = [0, 0, 0, 0]
    share = root._numerator
    for start, end, band in segments:
        numerators[band] += share(end) - share(start)
    total = root.total
    for band, numerator in enumerate(numerators):
        if numerator:
            quantities[band] = tidy((total * Decimal(numerator)).scaleb(-SHARE_DIGITS))
    return quantities


def _paid(
    quantities: Iterable[Decimal], allowance: Decimal, cheapest_first: tuple[int, ...]
) -> list[Decimal]:
    """Payable quantity per band once the allowance has covered the cheapest units."""
    paid = list(quantities)
    left = allowance
    for band in cheapest_first:
        if not left:
            break
        take = paid[band] if paid[band] < left else left
        paid[band] -= take
        left -= take
    return paid


def _rate_flat(tariff: Tariff, before: Decimal, after: Decimal, lines: list[Line]) -> Decimal:
    allowance = tariff.free_allowance
    paid = (after - allowance if after > allowance else ZERO) - (
        before - allowance if before > allowance else ZERO
    )
    if not paid:
        return ZERO
    price: Decimal = tariff.price  # type: ignore[assignment]
    amount = price * paid
    lines.append(Line(LineKind.FLAT, paid, price, amount))
    return amount


def _rate_tiered(tariff: Tariff, before: Decimal, after: Decimal, lines: list[Line]) -> Decimal:
    allowance = tariff.free_allowance
    low = before if before > allowance else allowance
    high = after if after > allowance else allowance
    exact = ZERO
    thresholds, prices = tariff._thresholds, tariff._tier_prices
    tier = bisect_right(thresholds, low) - 1
    position = low
    while position < high:
        upto = thresholds[tier + 1] if tier + 1 < len(thresholds) else high
        if upto > high:
            upto = high
        quantity = upto - position
        amount = prices[tier] * quantity
        exact += amount
        lines.append(Line(LineKind.TIER, quantity, prices[tier], amount, None, tier + 1))
        position = upto
        tier += 1
    return exact


def _rate_tou(tariff: Tariff, by_band: Bands, interval: Interval, lines: list[Line]) -> tuple[Decimal, Bands]:
    prices: BandPrices = tariff.band_prices  # type: ignore[assignment]
    total = interval.total
    delta: Sequence[Decimal] | None = interval.bands
    if delta is None:
        table = tariff._table
        assert table is not None  # a tou tariff always has one
        band = table.single_band(to_us(interval.start), to_us(interval.end))
        if band < 0:
            delta = _by_time(tariff, interval)
        else:  # the common case: an interval inside one period
            price = prices[band]
            if price is None:
                raise ConfigError(f"tariff {tariff.code} has no price for {BANDS[band]} consumption")
            after = list(by_band)
            after[band] += total
            allowance = tariff.free_allowance
            if not allowance or by_band[tariff._cheapest_first[0]] >= allowance:
                # No allowance, or it already sits entirely on the cheapest band: every unit is payable.
                if not total:
                    return ZERO, by_band
                amount = price * total
                lines.append(Line(LineKind.BAND, total, price, amount, BANDS[band]))
                return amount, Bands._make(after)
            delta = [ZERO, ZERO, ZERO, ZERO]
            delta[band] = total
    for band in range(4):
        if delta[band] and prices[band] is None:
            raise ConfigError(f"tariff {tariff.code} has no price for {BANDS[band]} consumption")
    new_by_band = Bands(
        by_band[0] + delta[0], by_band[1] + delta[1], by_band[2] + delta[2], by_band[3] + delta[3]
    )
    allowance = tariff.free_allowance
    if allowance and by_band[tariff._cheapest_first[0]] < allowance:
        paid_before = _paid(by_band, allowance, tariff._cheapest_first)
        paid_after = _paid(new_by_band, allowance, tariff._cheapest_first)
        paid_delta: Sequence[Decimal] = [paid_after[i] - paid_before[i] for i in range(4)]
    else:
        paid_delta = delta
    exact = ZERO
    for band in range(4):
        quantity = paid_delta[band]
        if quantity:
            price = prices[band]
            amount = price * quantity  # type: ignore[operator]
            exact += amount
            lines.append(Line(LineKind.BAND, quantity, price, amount, BANDS[band]))  # type: ignore[arg-type]
    return exact, new_by_band


def _rate(tariff: Tariff, state: CycleState, interval: Interval) -> Rated:
    if interval.start < state.cycle_start:
        raise ConfigError(
            f"interval from {interval.start.isoformat()} starts before its cycle"
            f" ({state.cycle_start.isoformat()})"
        )
    total = interval.total
    before = state.consumed_total
    after = before + total
    by_band = state.consumed_by_band
    lines: list[Line] = []
    kind = tariff.kind
    if kind is _TOU:
        exact, by_band = _rate_tou(tariff, by_band, interval, lines)
    elif kind is _FLAT:
        exact = _rate_flat(tariff, before, after, lines)
    else:
        exact = _rate_tiered(tariff, before, after, lines)
    if tariff.free_allowance:
        free = total
        for line in lines:
            free -= line.quantity
        if free:
            lines.append(Line(LineKind.FREE, free, ZERO, ZERO))
    previous = state.exact_charge
    cumulative = previous + exact
    rounding = tariff.rounding
    charge = round_money(cumulative, rounding) - round_money(previous, rounding)
    return Rated(
        charge, exact, CycleState(state.cycle_start, after, by_band, cumulative), tuple(lines), interval
    )


_TOU, _FLAT = TariffKind.TOU, TariffKind.FLAT


def rate(tariff: Tariff, state: CycleState, interval: Interval) -> Rated:
    """Price ``interval`` after ``state`` (same meter, same cycle; the interval must not start before it).

    The caller cuts intervals at cycle starts (:func:`~prepaid_engine.calendar.split_by_cycle`) or lets
    :func:`rate_cycle` do it.
    """
    try:
        with localcontext(EXACT):
            return _rate(tariff, state, interval)
    except DecimalException as exc:
        raise ConfigError(
            f"rating with {tariff.code}: a value is beyond exact decimal range ({exc!r})"
        ) from exc


def rate_cycle(
    tariff: Tariff,
    intervals: Iterable[Interval],
    calendar: SettlementCalendar,
    state: CycleState | None = None,
) -> list[Rated]:
    """Rate one meter's intervals (in time order, not overlapping) from ``state`` on.

    Intervals are cut at cycle starts of ``calendar``; each cycle starts from a fresh state, so tiers and the
    allowance reset. ``state`` is the meter's state from the previous call (``None`` for the first); when
    the intervals run into a later cycle it is simply left behind. One :class:`Rated` per interval or cycle
    piece of one, in order; the last one's ``new_state`` is the state to keep (or ``state`` if none).
    """
    out: list[Rated] = []
    bounds: tuple[datetime, datetime] | None = None
    if state is not None:
        bounds = cycle_bounds(calendar, state.cycle_start)
        if bounds[0] != state.cycle_start:
            raise ConfigError(
                f"state's cycle_start {state.cycle_start.isoformat()} is not a cycle start of {calendar!r}"
            )
    previous_end: datetime | None = None
    try:
        with localcontext(EXACT):
            for interval in intervals:
                if previous_end is not None and interval.start < previous_end:
                    raise ConfigError(
                        f"intervals must be in time order without overlap: {interval.start.isoformat()}"
                        f" starts before the previous one ends ({previous_end.isoformat()})"
                    )
                previous_end = interval.end
                if bounds is not None and bounds[0] <= interval.start and interval.end <= bounds[1]:
                    pieces: list[Interval] = [interval]
                else:
                    pieces = split_by_cycle(interval, calendar)
                for piece in pieces:
                    if bounds is None or not bounds[0] <= piece.start < bounds[1]:
                        bounds = cycle_bounds(calendar, piece.start)
                    if state is None or state.cycle_start != bounds[0]:
                        if state is not None and state.cycle_start > bounds[0]:
                            raise ConfigError(
                                f"interval from {piece.start.isoformat()} lies before the state's cycle"
                                f" ({state.cycle_start.isoformat()})"
                            )
                        state = CycleState(bounds[0])
                    rated = _rate(tariff, state, piece)
                    state = rated.new_state
                    out.append(rated)
    except DecimalException as exc:
        raise ConfigError(
            f"rating with {tariff.code}: a value is beyond exact decimal range ({exc!r})"
        ) from exc
    return out
