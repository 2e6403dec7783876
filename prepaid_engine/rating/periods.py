"""Time-of-use period tables: which band applies at which instant, precomputed per UTC day.

A tariff's periods are wall-clock start times in the property's time zone (``(00:00, valley), (08:00, flat),
...``): the band at an instant is the band of the last period that started at or before the local wall-clock
time of that instant. This is the rule a meter with a local clock follows, and it is what makes the tables
DST-safe: on a day with a skipped hour the skipped wall times simply never occur (a period starting at a
skipped time begins when the clock jumps past it), on a day with a repeated hour the repeated wall times are
lived twice, each time in their band.

A :class:`PeriodTable` turns that rule into, for each UTC day, the sorted instants (integer microseconds
since the epoch) at which the band changes, built once per day on first use and shared by every tariff with
the same periods and zone. Rating an interval then needs only integer comparisons and a bisection.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DAY_US", "PeriodTable", "period_table", "to_us"]

DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)
_MAX_CACHED_DAYS = 8192  # about 22 years of days per table; the cache is cleared past that


def to_us(at: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (at - _EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _tod_us(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


class PeriodTable:
    """Band changes of one set of periods in one zone. Bands are indexes (into the caller's band tuple)."""

    __slots__ = ("_band_of_start", "_days", "_starts", "_times", "zone")

    def __init__(self, periods: tuple[tuple[time, int], ...], zone: ZoneInfo):
        # ``periods`` is validated by the tariff: sorted, unique, first at 00:00.
        self.zone = zone
        self._times = tuple(start for start, _ in periods)
        self._starts = [_tod_us(start) for start, _ in periods]
        self._band_of_start = [band for _, band in periods]
        self._days: dict[int, tuple[list[int], list[int]]] = {}

    def band_at_us(self, us: int) -> int:
        local = _from_us(us).astimezone(self.zone)
        tod = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond
        return self._band_of_start[bisect_right(self._starts, tod) - 1]

    def day(self, day: int) -> tuple[list[int], list[int]]:
        """``(starts, bands)`` for UTC day number ``day``: ``starts[0]`` is the day's first instant."""
        found = self._days.get(day)
        if found is None:
            if len(self._days) >= _MAX_CACHED_DAYS:
                self._days.clear()
            found = self._days[day] = self._build(day)
        return found

    def _offset_changes(self, first: int, last: int) -> list[int]:
        """Instants in ``[first, last)`` at which the zone's UTC offset changes (to the microsecond)."""
        changes = []
        zone = self.zone

        def offset(us: int) -> timedelta | None:
            return _from_us(us).astimezone(zone).utcoffset()

        before = offset(first)
        for probe in range(first + _HOUR_US, last + _HOUR_US, _HOUR_US):
            probe = min(probe, last)
            now = offset(probe)
            if now != before:
                lo, hi = probe - _HOUR_US, probe  # offset(lo) == before, offset(hi) != before
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if offset(mid) == before:
                        lo = mid
                    else:
                        hi = mid
                if first <= hi < last:
                    changes.append(hi)
                before = now
        return changes

    def _build(self, day: int) -> tuple[list[int], list[int]]:
        first, last = day * DAY_US, (day + 1) * DAY_US
        # The band changes where the local wall clock reaches a period start, or where the clock itself jumps.
        # Wall clock (L, p) maps to one instant, or two when the hour repeats (folds 0 and 1); the local day L
        # of an instant of this UTC day is the UTC date or a neighbour.
        candidates = {first, *self._offset_changes(first, last)}
        utc_date = date.fromordinal(_EPOCH.date().toordinal() + day)
        for local_day in (utc_date - _ONE_DAY, utc_date, utc_date + _ONE_DAY):
            for start in self._times:
                wall = datetime.combine(local_day, start, tzinfo=self.zone)
                for fold in (0, 1):
                    us = to_us(wall.replace(fold=fold))
                    if first <= us < last:
                        candidates.add(us)
        starts: list[int] = []
        bands: list[int] = []
        for us in sorted(candidates):
            band = self.band_at_us(us)
            if not bands or bands[-1] != band:
                starts.append(us)
                bands.append(band)
        return starts, bands

    def single_band(self, start: int, end: int) -> int:
        """The band of ``[start, end)`` when no period boundary or UTC midnight falls inside it, else -1."""
        day = start // DAY_US
        found = self._days.get(day)
        starts, bands = found if found is not None else self.day(day)
        index = bisect_right(starts, start) - 1
        if index + 1 < len(starts):
            return bands[index] if end <= starts[index + 1] else -1
        return bands[index] if end <= (day + 1) * DAY_US else -1

    def segments(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """``(from, to, band)`` pieces covering ``[start, end)`` in order; neighbours differ in band."""
        out: list[tuple[int, int, int]] = []
        at = start
        while at < end:
            day = at // DAY_US
            starts, bands = self.day(day)
            index = bisect_right(starts, at) - 1
            band = bands[index]
            upto = starts[index + 1] if index + 1 < len(starts) else (day + 1) * DAY_US
            if upto > end:
                upto = end
            if out and out[-1][2] == band:
                out[-1] = (out[-1][0], upto, band)
            else:
                out.append((at, upto, band))
            at = upto
        return out


_TABLES: dict[tuple[tuple[tuple[time, int], ...], str], PeriodTable] = {}


def period_table(periods: tuple[tuple[time, int], ...], zone: ZoneInfo) -> PeriodTable:
    """The shared table for these periods in this zone (tariffs with equal periods share their day cache)."""
    key = (periods, zone.key)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = PeriodTable(periods, zone)
    return table
