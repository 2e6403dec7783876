"""Tariffs as data: flat, time-of-use (four bands, up to 8 periods a day) and tiered, with a free allowance.

A :class:`Tariff` is validated when it is built (:class:`ConfigError` says what is wrong) and carries its
precomputed tables (period table per zone, tier thresholds, cheapest-first band order), so rating does
no set-up per interval.
Per-meter price overrides are :meth:`Tariff.with_overrides`, which returns another validated tariff.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from decimal import Decimal
from itertools import pairwise
from typing import NamedTuple

from ..calendar import zone as _zone
from ..errors import ConfigError
from ..types import Utility
from .numbers import ZERO, to_decimal, to_price, to_quantity
from .periods import PeriodTable, period_table, to_us

__all__ = [
    "BANDS",
    "MAX_PERIODS",
    "NO_BANDS",
    "Band",
    "BandPrices",
    "Bands",
    "Tariff",
    "TariffKind",
    "period_start",
]

MAX_PERIODS = 8  # day periods a meter's daily table holds (DL/T 645 and common Modbus meters)


class TariffKind(enum.StrEnum):
    FLAT = "flat"
    TOU = "tou"
    TIERED = "tiered"


class Band(enum.StrEnum):
    """Time-of-use bands, in the order meters number their tariff registers (tariff 1..4)."""

    SHARP = "sharp"
    PEAK = "peak"
    FLAT = "flat"
    VALLEY = "valley"


BANDS: tuple[Band, ...] = tuple(Band)
_BAND_INDEX = {band: index for index, band in enumerate(BANDS)}


def _band(value: object) -> Band:
    try:
        return Band(value)
    except ValueError as exc:
        raise ConfigError(f"unknown band {value!r}; bands are {[str(b) for b in BANDS]}") from exc


class Bands(NamedTuple):
    """Quantities per band (kWh or m3), in :data:`BANDS` order; absent bands are zero."""

    sharp: Decimal = ZERO
    peak: Decimal = ZERO
    flat: Decimal = ZERO
    valley: Decimal = ZERO

    @classmethod
    def of(cls, value: Bands | Mapping[str, object] | Sequence[object]) -> Bands:
        """From a :class:`Bands`, a mapping ``{"peak": Decimal(...), ...}`` or four values; checked >= 0."""
        if isinstance(value, Mapping):
            items = [ZERO] * 4
            for key, quantity in value.items():
                items[_BAND_INDEX[_band(key)]] = quantity
        else:
            items = list(value)
            if len(items) != 4:
                raise ConfigError(f"band quantities need 4 values (sharp, peak, flat, valley), got {value!r}")
        return cls(*(to_quantity(q, f"{band} quantity") for band, q in zip(BANDS, items, strict=True)))

    def get(self, band: Band | str) -> Decimal:
        return self[_BAND_INDEX[_band(band)]]


NO_BANDS = Bands()


class BandPrices(NamedTuple):
    """Unit price per band; ``None`` for a band the tariff does not use."""

    sharp: Decimal | None = None
    peak: Decimal | None = None
    flat: Decimal | None = None
    valley: Decimal | None = None

    @classmethod
    def of(cls, value: BandPrices | Mapping[str, object]) -> BandPrices:
        items: list[object] = list(value) if isinstance(value, BandPrices) else [None] * 4
        if not isinstance(value, BandPrices):
            if not isinstance(value, Mapping):
                raise ConfigError(f"band prices must be a mapping band -> price, not {value!r}")
            for key, price in value.items():
                items[_BAND_INDEX[_band(key)]] = price
        return cls(
            *(
                None if price is None else to_price(price, f"{band} price")
                for band, price in zip(BANDS, items, strict=True)
            )
        )

    def get(self, band: Band | str) -> Decimal | None:
        return self[_BAND_INDEX[_band(band)]]


def period_start(minutes: int) -> time:
    """The wall-clock start of a daily period ``minutes`` after midnight (0 .. 1439), as a period's
    ``datetime.time``; :class:`ConfigError` (kind ``tariff.period_start_outside_day``) outside the day."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes < 24 * 60:
        raise ConfigError(
            f"a daily period starts between 00:00 and 23:59, not {minutes!r} minutes after midnight",
            kind="tariff.period_start_outside_day",
            minutes=minutes,
        )
    return time(minutes // 60, minutes % 60)


def _periods(value: object, prices: BandPrices) -> tuple[tuple[time, Band], ...]:
    try:
        pairs = [(start, _band(band)) for start, band in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(
            f"periods must be (datetime.time, band) pairs, got {value!r}", kind="tariff.periods_shape"
        ) from exc
    if not pairs:
        raise ConfigError("a time-of-use tariff needs at least one period", kind="tariff.periods_empty")
    if len(pairs) > MAX_PERIODS:
        raise ConfigError(
            f"{len(pairs)} periods in a day; meters hold at most {MAX_PERIODS}",
            kind="tariff.periods_too_many",
            count=len(pairs),
            max=MAX_PERIODS,
        )
    for start, band in pairs:
        if not isinstance(start, time) or start.tzinfo is not None:
            raise ConfigError(
                f"a period starts at a naive local datetime.time, not {start!r}", kind="tariff.periods_shape"
            )
        if prices.get(band) is None:
            raise ConfigError(
                f"period at {start} uses band {band!s}, which has no price",
                kind="tariff.period_band_unpriced",
                start=start,
                band=str(band),
            )
    if pairs[0][0] != time(0):
        raise ConfigError(
            f"periods must cover the day: the first starts at 00:00, not {pairs[0][0]}",
            kind="tariff.period_first_not_midnight",
            start=pairs[0][0],
        )
    for (before, _), (after, _) in pairwise(pairs):
        if after <= before:
            raise ConfigError(
                f"periods must be sorted by start with unique starts: {after} after {before}",
                kind="tariff.period_starts_not_increasing",
                start=after,
                before=before,
            )
    return tuple(pairs)


def _tiers(value: object) -> tuple[tuple[Decimal, Decimal], ...]:
    try:
        pairs = [
            (to_quantity(threshold, "tier threshold"), to_price(price, "tier price"))
            for threshold, price in value  # type: ignore[attr-defined]
        ]
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(
            f"tiers must be (threshold, price) pairs, got {value!r}", kind="tariff.tiers_shape"
        ) from exc
    if not pairs:
        raise ConfigError("a tiered tariff needs at least one tier", kind="tariff.tiers_empty")
    if pairs[0][0] != 0:
        raise ConfigError(
            f"the first tier starts at 0 (thresholds are where each tier starts), not {pairs[0][0]}",
            kind="tariff.tier_first_not_zero",
            threshold=pairs[0][0],
        )
    for (before, _), (after, _) in pairwise(pairs):
        if after <= before:
            raise ConfigError(
                f"tier thresholds must increase: {after} after {before}",
                kind="tariff.tier_thresholds_not_increasing",
                threshold=after,
                before=before,
            )
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class Tariff:
    """A price schedule for one utility.

    - ``flat``: one unit ``price``.
    - ``tou``: ``band_prices`` and ``periods`` (``(start, band)`` pairs, local wall-clock starts in ``tz``,
      sorted, the first at 00:00, at most 8; each period lasts until the next start, the last until midnight).
    - ``tiered``: ``tiers`` as ``(threshold, price)`` pairs, ``threshold`` being where the tier starts in the
      cycle's cumulative consumption: ``((0, p1), (200, p2), (400, p3))`` prices 0-200 at p1, 200-400 at p2,
      above 400 at p3.

    ``free_allowance`` units per settlement cycle are free (see :func:`~prepaid_engine.rating.rate`).
    Prices have at most 4 decimals; ``rounding`` is the money quantum (a power of ten) charges round to.
    ``tz`` is the property's IANA time zone, in which periods are read.
    """

    code: str
    kind: TariffKind
    utility: Utility
    currency: str = "CNY"
    price: Decimal | None = None
    band_prices: BandPrices | None = None
    periods: tuple[tuple[time, Band], ...] = ()
    tiers: tuple[tuple[Decimal, Decimal], ...] = ()
    free_allowance: Decimal = ZERO
    rounding: Decimal = Decimal("0.01")
    tz: str = "UTC"
    # Precomputed for rating (not part of equality):
    _table: PeriodTable | None = field(init=False, repr=False, compare=False, default=None)
    _thresholds: tuple[Decimal, ...] = field(init=False, repr=False, compare=False, default=())
    _tier_prices: tuple[Decimal, ...] = field(init=False, repr=False, compare=False, default=())
    _cheapest_first: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            kind = TariffKind(self.kind)
        except ValueError as exc:
            raise ConfigError(f"tariff kind must be flat, tou or tiered, not {self.kind!r}") from exc
        try:
            set_(self, "utility", Utility(self.utility))
        except ValueError as exc:
            raise ConfigError(f"unknown utility {self.utility!r}") from exc
        set_(self, "kind", kind)
        if not isinstance(self.code, str) or not self.code:
            raise ConfigError(f"tariff code must be a non-empty string, not {self.code!r}")
        if not isinstance(self.currency, str) or len(self.currency) != 3:
            raise ConfigError(f"currency must be an ISO 4217 code such as 'CNY', not {self.currency!r}")
        zone = _zone(self.tz)
        set_(self, "free_allowance", to_quantity(self.free_allowance, "free allowance"))
        rounding = to_decimal(self.rounding, "rounding")
        if rounding <= 0 or rounding != Decimal(1).scaleb(rounding.adjusted()):
            raise ConfigError(f"rounding must be a power of ten such as 0.01, not {rounding}")
        set_(self, "rounding", rounding)

        unused = {
            "price": self.price is not None and kind is not TariffKind.FLAT,
            "band_prices": self.band_prices is not None and kind is not TariffKind.TOU,
            "periods": bool(self.periods) and kind is not TariffKind.TOU,
            "tiers": bool(self.tiers) and kind is not TariffKind.TIERED,
        }
        extra = [name for name, flagged in unused.items() if flagged]
        if extra:
            raise ConfigError(f"a {kind} tariff does not use {', '.join(extra)}; leave them empty")

        if kind is TariffKind.FLAT:
            if self.price is None:
                raise ConfigError("a flat tariff needs a price")
            set_(self, "price", to_price(self.price, "price"))
        elif kind is TariffKind.TOU:
            if self.band_prices is None:
                raise ConfigError("a time-of-use tariff needs band prices")
            prices = BandPrices.of(self.band_prices)
            periods = _periods(self.periods, prices)
            set_(self, "band_prices", prices)
            set_(self, "periods", periods)
            set_(self, "_table", period_table(tuple((s, _BAND_INDEX[b]) for s, b in periods), zone))
            priced = [i for i, p in enumerate(prices) if p is not None]
            set_(self, "_cheapest_first", tuple(sorted(priced, key=lambda i: (prices[i], i))))
        else:
            tiers = _tiers(self.tiers)
            set_(self, "tiers", tiers)
            thresholds = tuple(t for t, _ in tiers)
            prices_ = tuple(p for _, p in tiers)
            set_(self, "_thresholds", thresholds)
            set_(self, "_tier_prices", prices_)

    # -- queries ------------------------------------------------------------------------------------------

    def band_at(self, at: datetime) -> Band:
        """The time-of-use band in force at ``at`` (aware datetime)."""
        if self._table is None:
            raise ConfigError(f"tariff {self.code} is {self.kind}, it has no bands")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ConfigError(f"band_at needs a timezone-aware datetime, got {at!r}")
        return BANDS[self._table.band_at_us(to_us(at))]

    # -- overrides ----------------------------------------------------------------------------------------

    def with_overrides(
        self,
        *,
        price: Decimal | None = None,
        band_prices: Mapping[str, Decimal] | None = None,
        tier_prices: Sequence[Decimal | None] | None = None,
        free_allowance: Decimal | None = None,
    ) -> Tariff:
        """This tariff with some prices replaced (per-meter overrides); ``None`` keeps the tariff's value.

        ``band_prices`` replaces only the bands it names; ``tier_prices`` is one entry per tier, ``None``
        keeping that tier's price. Overriding a price the tariff's kind does not use is a
        :class:`ConfigError`.
        """
        changes: dict[str, object] = {}
        if price is not None:
            if self.kind is not TariffKind.FLAT:
                raise ConfigError(f"price override on a {self.kind} tariff ({self.code})")
            changes["price"] = price
        if band_prices:
            if self.kind is not TariffKind.TOU or self.band_prices is None:
                raise ConfigError(f"band price override on a {self.kind} tariff ({self.code})")
            merged: list[object] = list(self.band_prices)
            for key, value in band_prices.items():
                merged[_BAND_INDEX[_band(key)]] = value
            changes["band_prices"] = BandPrices(*merged)  # type: ignore[arg-type]
        if tier_prices is not None:
            if self.kind is not TariffKind.TIERED:
                raise ConfigError(f"tier price override on a {self.kind} tariff ({self.code})")
            if len(tier_prices) != len(self.tiers):
                raise ConfigError(f"{len(tier_prices)} tier prices for {len(self.tiers)} tiers ({self.code})")
            changes["tiers"] = tuple(
                (threshold, old if new is None else new)
                for (threshold, old), new in zip(self.tiers, tier_prices, strict=True)
            )
        if free_allowance is not None:
            changes["free_allowance"] = free_allowance
        return replace(self, **changes) if changes else self
