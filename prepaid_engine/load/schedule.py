"""Time control: when a meter's supply should be on or off by the clock (dormitory lights-out, school nights).

A :class:`Schedule` is weekly :class:`Window` rules, holiday dates with their own windows, and an effective
date range; outside every window the supply is the schedule's ``default`` (on). Two pure functions::

    supply_at(schedule, instant, "Asia/Shanghai")    -> Supply.ON / Supply.OFF: the desired state then
    next_edge(schedule, instant, "Asia/Shanghai")    -> the next instant the desired state changes (a cron
                                                        sleeps until then), or None

Choices (one home for each):

* A window is wall-clock ``start``..``end`` of the day it *starts* on; ``end <= start`` ends the next day
  (23:30-06:00), ``end == start`` lasts until the same time the next day. ``weekdays`` are the days it starts
  on (0 = Monday .. 6 = Sunday): "off 23:30-06:00 on school nights" is Sunday to Thursday.
* A holiday replaces the weekly windows *starting* that day by ``holiday_windows`` (their weekdays are
  ignored); a window that started the evening before runs to its end.
* ``effective_from``/``effective_until`` (inclusive local dates) bound the days windows start on.
* Overlapping windows: ``off`` wins (a lights-out rule is never overridden by an ``on`` window).
* DST: wall times become instants the way :func:`prepaid_engine.calendar.local_to_utc` does. A wall time the
  clock skips (02:30 on a spring-forward night) means the instant of the change; one it shows twice
  (01:30 on a fall-back night) means its first occurrence. So a window inside a skipped hour does not happen,
  and 23:30-06:00 lasts 5.5 or 7.5 hours across a change, always ending when the clock shows 06:00.

Instants are aware datetimes; results are UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..calendar import local_to_utc, zone
from ..errors import ConfigError
from ..types import Supply

ALL_DAYS = frozenset(range(7))
SCHOOL_NIGHTS = frozenset({6, 0, 1, 2, 3})  # Sunday .. Thursday evenings
_DAY = timedelta(days=1)
_SEARCH_CHUNK = 8  # days of window edges looked at per round of next_edge


@dataclass(frozen=True, slots=True)
class Window:
    """A daily window (see the module doc): the supply is ``supply`` from ``start`` to ``end``."""

    start: time
    end: time
    weekdays: frozenset[int] = ALL_DAYS
    supply: Supply = Supply.OFF

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ConfigError(
                    f"a window's {name} is a naive wall-clock time, not {value!r}", kind="time.window"
                )
        days = frozenset(self.weekdays)
        if not days or not days <= ALL_DAYS:
            raise ConfigError(
                f"weekdays are 0 (Monday) .. 6 (Sunday), not {sorted(days)}", kind="time.weekdays"
            )
        object.__setattr__(self, "weekdays", days)
        supply = Supply(self.supply)
        if supply not in (Supply.ON, Supply.OFF):
            raise ConfigError(f"a window's supply is on or off, not {supply}", kind="time.supply")
        object.__setattr__(self, "supply", supply)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def interval(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC instants of this window starting on local ``day``."""
        start = local_to_utc(datetime.combine(day, self.start), tz)
        end_day = day + _DAY if self.crosses_midnight else day
        return start, local_to_utc(datetime.combine(end_day, self.end), tz)


@dataclass(frozen=True, slots=True)
class Schedule:
    windows: tuple[Window, ...] = ()
    holidays: frozenset[date] = frozenset()
    holiday_windows: tuple[Window, ...] = ()
    effective_from: date | None = None
    effective_until: date | None = None
    default: Supply = Supply.ON
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", tuple(self.windows))
        object.__setattr__(self, "holiday_windows", tuple(self.holiday_windows))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "default", Supply(self.default))
        if self.default not in (Supply.ON, Supply.OFF):
            raise ConfigError(f"a schedule's default is on or off, not {self.default}", kind="time.supply")
        if (
            self.effective_from is not None
            and self.effective_until is not None
            and self.effective_until < self.effective_from
        ):
            raise ConfigError("a schedule's effective range ends before it starts", kind="time.effective")

    def effective(self, day: date) -> bool:
        return (self.effective_from is None or day >= self.effective_from) and (
            self.effective_until is None or day <= self.effective_until
        )

    def windows_of(self, day: date) -> tuple[Window, ...]:
        """The windows starting on local ``day``."""
        if not self.effective(day):
            return ()
        if day in self.holidays:
            return self.holiday_windows
        weekday = day.weekday()
        return tuple(w for w in self.windows if weekday in w.weekdays)

    def intervals(self, day: date, tz: ZoneInfo) -> tuple[tuple[datetime, datetime, Supply], ...]:
        """(start, end, supply) in UTC of the windows starting on local ``day`` (empty ones left out)."""
        key = (day, tz.key)
        found = self._cache.get(key)
        if found is None:
            found = tuple(
                (start, end, w.supply)
                for w in self.windows_of(day)
                for start, end in (w.interval(day, tz),)
                if end > start
            )
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[key] = found
        return found


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return zone(tz) if isinstance(tz, str) else tz


def _aware(instant: datetime) -> datetime:
    if not isinstance(instant, datetime) or instant.tzinfo is None:
        raise ConfigError(f"an instant is an aware datetime, not {instant!r}", kind="time.naive")
    return instant.astimezone(UTC)


def _state(schedule: Schedule, at: datetime, info: ZoneInfo) -> Supply:
    local_day = at.astimezone(info).date()
    found: set[Supply] = set()
    for day in (local_day - _DAY, local_day):
        for start, end, supply in schedule.intervals(day, info):
            if start <= at < end:
                found.add(supply)
    if Supply.OFF in found:
        return Supply.OFF
    if Supply.ON in found:
        return Supply.ON
    return schedule.default


def supply_at(schedule: Schedule, instant: datetime, tz: str | ZoneInfo) -> Supply:
    """The supply ``schedule`` wants at ``instant``, its windows read in ``tz``."""
    return _state(schedule, _aware(instant), _zone(tz))


def _edges(schedule: Schedule, days: Iterable[date], info: ZoneInfo) -> list[datetime]:
    edges = set()
    for day in days:
        for start, end, _ in schedule.intervals(day, info):
            edges.add(start)
            edges.add(end)
    return sorted(edges)


def next_edge(
    schedule: Schedule, instant: datetime, tz: str | ZoneInfo, *, horizon_days: int = 400
) -> datetime | None:
    """The first instant after ``instant`` at which :func:`supply_at` changes (UTC), or None if it does not
    change within ``horizon_days`` (a schedule without windows, or past its effective range)."""
    at = _aware(instant)
    info = _zone(tz)
    state = _state(schedule, at, info)
    first = at.astimezone(info).date()
    floor = at
    for offset in range(0, horizon_days + _SEARCH_CHUNK, _SEARCH_CHUNK):
        # edges up to the midnight after the chunk's last day, from every window that can reach before it
        # (windows last at most a day: those starting the day before the chunk are included)
        start_day = first + timedelta(days=offset)
        ceiling = local_to_utc(datetime.combine(start_day + timedelta(days=_SEARCH_CHUNK), time(0)), info)
        days = [start_day + timedelta(days=n) for n in range(-1, _SEARCH_CHUNK)]
        for edge in _edges(schedule, days, info):
            if edge <= floor or edge > ceiling:
                continue
            new = _state(schedule, edge, info)
            if new != state:
                return edge
            # an edge where nothing changes (adjacent windows): the search goes on from there
        floor = max(floor, ceiling)
    return None
