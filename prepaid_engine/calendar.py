"""Settlement calendars: when a billing cycle starts and ends, in a property's local time.

A cycle starts at a local wall-clock time (``time``) on a local day: the ``day``-th of the month (monthly; a
day past the month's end is clamped to its last day, so ``day=31`` starts on 28/29 February and 30 April),
the ``day``-th ISO weekday (weekly; 1 = Monday ... 7 = Sunday) or every day (daily; ``day`` is ignored).
Tiers and free allowances reset at each cycle start.

Local times are turned into instants the DST-safe way, shared with the time-of-use tables of the rating
engine (:func:`local_to_utc`): a wall-clock time that occurs twice (clocks set back) means its first
occurrence; a wall-clock time that does not exist (clocks set forward) means the first instant the clock
shows a later time, i.e. the moment of the change. Bounds are returned as UTC datetimes.

Pure functions, no clock: the caller says which instant it asks about.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

if TYPE_CHECKING:  # the rating module imports this one; the interval type is only named here
    from .rating import Interval

__all__ = [
    "Cycle",
    "SettlementCalendar",
    "cycle_bounds",
    "cycle_starts",
    "local_to_utc",
    "split_by_cycle",
    "zone",
]

_ONE_DAY = timedelta(days=1)
_ONE_US = timedelta(microseconds=1)
_MAX_KNOWN = 1024  # cached cycle boundaries per calendar


class Cycle(enum.StrEnum):
    MONTHLY = "monthly"
    WEEKLY = "weekly"
    DAILY = "daily"


_ZONES: dict[str, ZoneInfo] = {}


def zone(tz: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; :class:`ConfigError` for an unknown or malformed name."""
    found = _ZONES.get(tz)
    if found is None:
        if not isinstance(tz, str) or not tz:
            raise ConfigError(f"time zone must be an IANA name such as 'Asia/Shanghai', not {tz!r}")
        try:
            found = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {tz!r}") from exc
        _ZONES[tz] = found
    return found


def local_to_utc(naive: datetime, tzinfo: ZoneInfo) -> datetime:
    """The instant (UTC) at which the wall clock of ``tzinfo`` first shows ``naive`` or a later time.

    Ambiguous wall times (clocks set back) give their first occurrence; wall times skipped by a
    forward change give the instant of the change (the clock jumps past them there).
    """
    first = naive.replace(tzinfo=tzinfo, fold=0).astimezone(UTC)
    if first.astimezone(tzinfo).replace(tzinfo=None) == naive:
        return first
    # In a gap: fold=0 and fold=1 read the wall time with the offsets before and after the change, and the
    # change lies between the two instants. Before it the wall clock shows less than ``naive``, from it on
    # more: bisect for the first instant that shows at least ``naive``.
    other = naive.replace(tzinfo=tzinfo, fold=1).astimezone(UTC)
    lo, hi = min(first, other), max(first, other)
    while hi - lo > _ONE_US:
        mid = lo + (hi - lo) // 2
        if mid.astimezone(tzinfo).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi


def _last_day(year: int, month: int) -> int:
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return (following - _ONE_DAY).day


@dataclass(frozen=True, slots=True)
class SettlementCalendar:
    """When cycles start: ``cycle``, ``day`` (month day 1-31 or ISO weekday 1-7), local ``time``, ``tz``."""

    cycle: Cycle
    day: int = 1
    time: clock_time = clock_time(0)
    tz: str = "UTC"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    # Contiguous cycle boundaries found so far (UTC): rating asks about the same few cycles again and again.
    _known: tuple[datetime, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        try:
            cycle = Cycle(self.cycle)
        except ValueError as exc:
            raise ConfigError(f"cycle must be one of {[str(c) for c in Cycle]}, not {self.cycle!r}") from exc
        object.__setattr__(self, "cycle", cycle)
        if not isinstance(self.day, int) or isinstance(self.day, bool):
            raise ConfigError(f"settlement day must be an int, not {self.day!r}")
        limits = {Cycle.MONTHLY: (1, 31), Cycle.WEEKLY: (1, 7), Cycle.DAILY: (self.day, self.day)}
        low, high = limits[cycle]
        if not low <= self.day <= high:
            raise ConfigError(f"settlement day {self.day} out of range {low}..{high} for a {cycle} cycle")
        if not isinstance(self.time, clock_time) or self.time.tzinfo is not None:
            raise ConfigError(f"settlement time must be a naive datetime.time (local), not {self.time!r}")
        object.__setattr__(self, "_zone", zone(self.tz))

    def _start_of(self, anchor: date) -> datetime:
        """Local naive start of the cycle labelled by ``anchor`` (see ``_anchor``)."""
        if self.cycle is Cycle.MONTHLY:
            anchor = anchor.replace(day=min(self.day, _last_day(anchor.year, anchor.month)))
        return datetime.combine(anchor, self.time)

    def _anchor(self, local_day: date) -> date:
        """The label of the cycle whose start falls on the same local period as ``local_day``."""
        if self.cycle is Cycle.MONTHLY:
            return local_day.replace(day=1)
        if self.cycle is Cycle.WEEKLY:
            return local_day - timedelta(days=(local_day.isoweekday() - self.day) % 7)
        return local_day

    def _step(self, anchor: date, steps: int) -> date:
        if self.cycle is Cycle.MONTHLY:
            months = anchor.year * 12 + anchor.month - 1 + steps
            return date(months // 12, months % 12 + 1, 1)
        return anchor + timedelta(days=steps * (7 if self.cycle is Cycle.WEEKLY else 1))

    def bounds(self, at: datetime) -> tuple[datetime, datetime]:
        """Same as :func:`cycle_bounds`."""
        return cycle_bounds(self, at)


def cycle_bounds(calendar: SettlementCalendar, at: datetime) -> tuple[datetime, datetime]:
    """The cycle containing ``at``: ``(start, end)`` in UTC with ``start <= at < end``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ConfigError(f"cycle_bounds needs a timezone-aware datetime, got {at!r}")
    known = calendar._known
    if known and known[0] <= at < known[-1]:
        index = bisect_right(known, at)
        return known[index - 1], known[index]
    start, end = _compute_bounds(calendar, at)
    if known and start == known[-1] and len(known) < _MAX_KNOWN:
        known = (*known, end)
    elif known and end == known[0] and len(known) < _MAX_KNOWN:
        known = (start, *known)
    else:
        known = (start, end)
    object.__setattr__(calendar, "_known", known)  # a cache swap, not a change of the calendar's value
    return start, end


def _compute_bounds(calendar: SettlementCalendar, at: datetime) -> tuple[datetime, datetime]:
    tzinfo = calendar._zone
    at = at.astimezone(UTC)
    anchor = calendar._anchor(at.astimezone(tzinfo).date())
    start = local_to_utc(calendar._start_of(anchor), tzinfo)
    while start > at:  # the local cycle start of this month/week/day is still ahead
        anchor = calendar._step(anchor, -1)
        start = local_to_utc(calendar._start_of(anchor), tzinfo)
    following = calendar._step(anchor, 1)
    end = local_to_utc(calendar._start_of(following), tzinfo)
    while end <= at:  # only for exotic zones whose wall clock moves back across a cycle start
        anchor, start = following, end
        following = calendar._step(anchor, 1)
        end = local_to_utc(calendar._start_of(following), tzinfo)
    return start, end


def cycle_starts(calendar: SettlementCalendar, start: datetime, end: datetime) -> Sequence[datetime]:
    """Cycle starts strictly inside ``(start, end)``, in order (UTC)."""
    cuts: list[datetime] = []
    _, cut = cycle_bounds(calendar, start)
    while cut < end:
        cuts.append(cut)
        _, cut = cycle_bounds(calendar, cut)
    return cuts


def split_by_cycle(interval: Interval, calendar: SettlementCalendar) -> list[Interval]:
    """Cut ``interval`` at every cycle start inside it; consumption is shared in proportion to time.

    The pieces are :meth:`Interval.split_at` pieces: they add up exactly to the interval (total and bands)
    and keep the interval as their ``basis``, so rating the pieces equals rating the whole.
    """
    cuts = cycle_starts(calendar, interval.start, interval.end)
    return interval.split_at(cuts) if cuts else [interval]
