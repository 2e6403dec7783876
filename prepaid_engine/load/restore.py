"""The automatic-restore policy after a load trip (malicious load, over-power): one home for the rule.

A meter that tripped itself for its load is closed again after the profile's delay, at most
``max_per_day`` times a local day; the trip after that stays open until a manager restores it. A meter cut
off for its balance is never closed by load control, whatever its trips: the balance rule restores it once
the account is back above the cut-off (a load restore must not hand out electricity that is not paid for).

:func:`decide_restore` takes the trips of one meter as the platform counted them (times of every load trip,
the one to decide about being the latest), so a meter that restores by itself and the platform agree on the
count only when the platform sees every trip; the decision counts the trips of the latest trip's local day
in ``tz`` (its midnight to the next, :func:`prepaid_engine.calendar.local_to_utc`, so 23 and 25 hour days
count right), the latest included.

    decide_restore([t1, t2, t3, t4], RestorePolicy(timedelta(minutes=5), 3), tz="Asia/Shanghai")
    -> RestoreDecision(RestoreAction.MANAGER, None, 4, "...")      # the 4th trip of the day stays open
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..calendar import local_to_utc, zone
from ..errors import ConfigError


class RestoreAction(enum.StrEnum):
    RESTORE = "restore"  # close the relay at ``RestoreDecision.at``
    MANAGER = "manager"  # stay open until a manager restores it
    NEVER = "never"  # load control never restores it (cut off for balance)


@dataclass(frozen=True, slots=True)
class RestorePolicy:
    """``delay``: how long after a trip the meter closes again (``None``: never automatically);
    ``max_per_day``: automatic restores per local day (0: none)."""

    delay: timedelta | None = timedelta(minutes=5)
    max_per_day: int = 3

    def __post_init__(self) -> None:
        if self.delay is not None and (not isinstance(self.delay, timedelta) or self.delay < timedelta(0)):
            raise ConfigError(
                f"the restore delay is a timedelta >= 0, not {self.delay!r}", kind="restore.delay"
            )
        count = self.max_per_day
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"max_per_day is a count >= 0, not {count!r}", kind="restore.count")


@dataclass(frozen=True, slots=True)
class RestoreDecision:
    action: RestoreAction
    at: datetime | None  # RESTORE: when (UTC)
    trips_today: int  # load trips of the latest trip's local day, it included
    reason: str  # in English, for the technical log


def day_bounds(instant: datetime, tz: str | ZoneInfo) -> tuple[datetime, datetime]:
    """The local day holding ``instant`` in ``tz``: (its midnight, the next midnight), both UTC."""
    info = zone(tz) if isinstance(tz, str) else tz
    local = instant.astimezone(info).date()
    start = local_to_utc(datetime.combine(local, time(0)), info)
    end = local_to_utc(datetime.combine(local + timedelta(days=1), time(0)), info)
    return start, end


def decide_restore(
    trips: Iterable[datetime],
    policy: RestorePolicy,
    *,
    tz: str | ZoneInfo,
    balance_cut_off: bool = False,
) -> RestoreDecision:
    """What to do after the latest of ``trips`` (aware datetimes; see the module doc)."""
    times = sorted(trips)
    if not times:
        raise ConfigError("a restore decision needs the trip it is about", kind="restore.no_trip")
    if any(t.tzinfo is None for t in times):
        raise ConfigError("trip times are aware datetimes", kind="restore.naive")
    latest = times[-1]
    start, end = day_bounds(latest, tz)
    today = sum(1 for t in times if start <= t < end)
    if balance_cut_off:
        return RestoreDecision(
            RestoreAction.NEVER, None, today, "cut off for its balance: the balance rule restores it"
        )
    if policy.delay is None or policy.max_per_day == 0:
        return RestoreDecision(RestoreAction.MANAGER, None, today, "automatic restore is off")
    if today > policy.max_per_day:
        return RestoreDecision(
            RestoreAction.MANAGER,
            None,
            today,
            f"trip {today} of the day: more than {policy.max_per_day} automatic restores",
        )
    at = (latest + policy.delay).astimezone(UTC)
    return RestoreDecision(
        RestoreAction.RESTORE, at, today, f"trip {today} of {policy.max_per_day} allowed today"
    )
