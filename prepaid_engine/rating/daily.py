"""Daily consumption facts: rated intervals (or unrated ones) rolled up per local day. Pure and exact.

The reports, statements and the portal read consumption per meter and day, never the raw readings: the
settlement adds each batch's intervals to their day in the same transaction as their ledger lines. An
interval counts on the local day (in the property's time zone) its end falls on: a 15-minute interval that
spans midnight is the new day's. Band quantities are what the rating charged in each band (its band lines,
time-of-use tariffs) or, for other tariffs, what the meter's band registers say; the free allowance used is
the quantity of its ``free`` lines, outside the bands (so for a time-of-use tariff bands + free = quantity);
the amount is the rounded charge, so a day's amounts add up to exactly what the ledger deducted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from .engine import LineKind, Rated
from .interval import Interval
from .tariff import Band

__all__ = ["DayFact", "add_day_facts", "local_day"]

ZERO = Decimal(0)


@dataclass(slots=True)
class DayFact:
    """What one meter consumed and was charged on one local day."""

    day: date
    quantity: Decimal = ZERO
    bands: dict[Band, Decimal] = field(default_factory=lambda: dict.fromkeys(Band, ZERO))
    free: Decimal = ZERO
    amount: Decimal = ZERO
    intervals: int = 0

    def add(self, other: DayFact) -> DayFact:
        self.quantity += other.quantity
        for band, quantity in other.bands.items():
            self.bands[band] += quantity
        self.free += other.free
        self.amount += other.amount
        self.intervals += other.intervals
        return self


def local_day(at: datetime, tz: str | ZoneInfo) -> date:
    """The local date of the aware instant ``at`` in ``tz``."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz or "UTC")
    return at.astimezone(zone).date()


def _fact_of(item: Rated | Interval, zone: ZoneInfo) -> DayFact:
    if isinstance(item, Rated):
        interval = item.interval
        fact = DayFact(local_day(interval.end, zone), interval.total, amount=item.charge, intervals=1)
        for line in item.lines:
            if line.kind is LineKind.BAND and line.band is not None:
                fact.bands[Band(line.band)] += line.quantity
            elif line.kind is LineKind.FREE:
                fact.free += line.quantity
        if interval.bands is not None and not any(fact.bands.values()):
            for band in Band:
                fact.bands[band] = getattr(interval.bands, str(band))
        return fact
    fact = DayFact(local_day(item.end, zone), item.total, intervals=1)
    if item.bands is not None:
        for band in Band:
            fact.bands[band] = getattr(item.bands, str(band))
    return fact


def add_day_facts(
    items: Iterable[Rated | Interval], tz: str | ZoneInfo, into: dict[date, DayFact] | None = None
) -> dict[date, DayFact]:
    """Roll ``items`` (rated intervals, or intervals consumed without a charge) up per local day of ``tz``,
    adding them to ``into`` (a new dict by default); returns it."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz or "UTC")
    facts = {} if into is None else into
    for item in items:
        fact = _fact_of(item, zone)
        if fact.day in facts:
            facts[fact.day].add(fact)
        else:
            facts[fact.day] = fact
    return facts
