"""The simulated meters' load control: tenants' appliances, the power limit, the malicious-load rule, trip
reasons, event records and automatic restore. Everything stays a pure function of (seed, meter, time) plus
the meter's truth, so the lazy, exact-integer integration of :mod:`.meters` holds.

**Appliances.** A meter configured with ``appliances`` (catalogue codes, :class:`~.config.MeterConfig`) has
tenants who switch them on and off on a seeded schedule: in each 15-minute slot each appliance is on with a
probability (allowed ones 25 %, forbidden ones 4 %) from a seeded offset for a seeded duration, both whole
milliseconds inside the slot. Each appliance of a meter draws a seeded, constant power (whole watts) and
power factor (0.001) within its catalogue signature. The control channel forces appliances on and off
(``appliance_on`` / ``appliance_off``); forced ones run until switched off. The load between two edges
(slot boundaries, appliance switches) is constant, so the meter integrates it exactly, as before. A meter
without appliances and with load control off behaves exactly as before.

**The meter's rules**, judged at every edge while the relay is closed (and when it closes):

* malicious load (mode alarm or trip): an appliance that *switches on* with its own power inside one of the
  controlled ranges and its own PF at or above the threshold (the meter holds no whitelist; the base load of
  the profile changes per slot in the simulator where a real room's changes gradually, so only appliance
  switches are judged);
* over-power (a limit > 0): the total active power above the limit; over-current: the total current above
  the model's maximum current (``capacity``, times the CT ratio).

Tripping for either opens the relay and records the reason (:class:`~prepaid_engine.load.params.TripReason`);
alarm mode only records an event. A balance self-trip and a remote trip record theirs too. The last
:data:`~prepaid_engine.load.params.EVENTS` events (meter clock time, reason, total power) are kept, newest
first, with a running count.

**Automatic restore** after a load trip: after ``restore_delay_s`` simulated seconds, at most
``restore_max`` times a local day of the site's time zone (the day of the trip); the trip after that stays
open until a close command. When the relay closes, every appliance still on counts as switching on, so a
kettle left on trips again at once (and uses up the day's restores). A restore never closes a meter cut off
for its balance (its trip is a balance trip, not a load trip).
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass
from math import isqrt

from ..errors import ConfigError
from ..load.appliances import Appliance, Category, builtin_appliances
from ..load.params import EVENTS, RANGES, TripReason
from .profile import SLOT_MS, mix64, stable_seed, unit

NEVER = 1 << 62
P_ON = {Category.ALLOWED: 0.25, Category.FORBIDDEN: 0.04}


@dataclass(frozen=True, slots=True)
class SimAppliance:
    """One appliance of one meter: its catalogue code, drawn power (W) and power factor (0.001)."""

    code: str
    power_w: int
    pf_milli: int
    p_on: float

    @property
    def reactive_milli(self) -> int:
        """Reactive power in mvar (inductive): P x sqrt(1 - PF^2) / PF."""
        pf = self.pf_milli
        return self.power_w * isqrt((1_000_000 - pf * pf) * 1_000_000) // pf


@functools.cache
def _catalogue() -> dict[str, Appliance]:
    return builtin_appliances()


def sim_appliance(code: str, seed: int) -> SimAppliance:
    """Appliance ``code`` as a meter of ``seed`` has it (power and PF drawn within its signature)."""
    appliance = _catalogue().get(code)
    if appliance is None:
        raise ConfigError(f"unknown appliance {code!r}", kind="appliance.unknown", code=code)
    h = stable_seed(seed, "appliance", code)
    power = appliance.power_min + round(unit(h) * (appliance.power_max - appliance.power_min))
    pf_low, pf_high = int(appliance.pf_min * 1000), int(appliance.pf_max * 1000)
    pf = pf_low + round(unit(h ^ 0xF) * (pf_high - pf_low))
    return SimAppliance(code, max(power, 1), max(pf, 1), P_ON[appliance.category])


class LoadControl:
    """One meter's load-control settings and records, and its tenants' appliances."""

    __slots__ = (
        "_slot",
        "event_count",
        "events",
        "forced",
        "limit_mode",
        "limit_w",
        "malicious_mode",
        "pf_milli",
        "ranges",
        "restore_day",
        "restore_delay_s",
        "restore_max",
        "restores_today",
        "scheduled",
        "seed",
        "trip_reason",
    )

    def __init__(self, seed: int, appliances: tuple[str, ...] = ()):
        self.seed = seed
        self.scheduled = tuple(sim_appliance(code, seed) for code in appliances)
        # settings (what the parameters write): all off by default
        self.limit_w = 0  # 0: no limit
        self.limit_mode = 1  # 0 alarm, 1 trip
        self.malicious_mode = 0  # 0 off, 1 alarm, 2 trip
        self.pf_milli = 900
        self.ranges = [0] * (2 * RANGES)  # low, high W per range; 0/0 unused
        self.restore_delay_s = 300
        self.restore_max = 3
        # records
        self.trip_reason = int(TripReason.NONE)
        self.restores_today = 0
        self.restore_day = 0  # local date ordinal the count is of
        self.event_count = 0
        self.events: collections.deque[list[int]] = collections.deque(maxlen=EVENTS)  # [meter ms, reason, W]
        self.forced: list[str] = []
        self._slot: tuple[int, tuple[tuple[int, int, int], ...]] = (-1, ())

    # -- appliances ----------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether anything here can change the meter's load or trip it."""
        return bool(self.scheduled or self.forced or self.limit_w or self.malicious_mode)

    def _intervals(self, slot: int) -> tuple[tuple[int, int, int], ...]:
        """(start ms, end ms, index) of the scheduled appliances on during ``slot``."""
        if self._slot[0] == slot:
            return self._slot[1]
        base = slot * SLOT_MS
        found = []
        for index, appliance in enumerate(self.scheduled):
            h = mix64(
                self.seed ^ (slot * 0x9E3779B97F4A7C15 & ((1 << 64) - 1)) ^ (index + 1) * 0xA24BAED4963EE407
            )
            if unit(h) >= appliance.p_on:
                continue
            start = int(unit(h ^ 0x51A7) * SLOT_MS * 0.8)
            length = 60_000 + int(unit(h ^ 0xD0E5) * (SLOT_MS - start - 60_000))
            found.append((base + start, base + start + length, index))
        intervals = tuple(found)
        self._slot = (slot, intervals)
        return intervals

    def on_at(self, t: int) -> tuple[SimAppliance, ...]:
        """The appliances drawing power at ``t`` (scheduled or forced; one of each code)."""
        on: dict[str, SimAppliance] = {}
        if self.scheduled:
            for start, end, index in self._intervals(t // SLOT_MS):
                if start <= t < end:
                    appliance = self.scheduled[index]
                    on[appliance.code] = appliance
        for code in self.forced:
            on.setdefault(code, sim_appliance(code, self.seed))
        return tuple(on.values())

    def power_at(self, t: int) -> int:
        return sum(a.power_w for a in self.on_at(t))

    def next_edge(self, t: int) -> int:
        """The next instant after ``t`` at which the scheduled appliances change or (with a power limit) the
        base load changes (a slot boundary); NEVER when nothing can change."""
        if not self.scheduled and not self.limit_w:
            return NEVER
        slot = t // SLOT_MS
        edge = (slot + 1) * SLOT_MS
        for start, end, _ in self._intervals(slot) if self.scheduled else ():
            if t < start < edge:
                edge = start
            if t < end < edge:
                edge = end
        return edge

    # -- settings ------------------------------------------------------------------------------------------
    def in_range(self, power_w: int) -> bool:
        ranges = self.ranges
        return any(ranges[2 * n] <= power_w <= ranges[2 * n + 1] for n in range(RANGES) if ranges[2 * n + 1])

    def malicious(self, appliance: SimAppliance) -> bool:
        return (
            bool(self.malicious_mode)
            and appliance.pf_milli >= self.pf_milli
            and self.in_range(appliance.power_w)
        )

    def restores_on(self, day: int) -> int:
        return self.restores_today if day == self.restore_day else 0

    # -- records -------------------------------------------------------------------------------------------
    def record(self, meter_ms: int, reason: TripReason, power_w: int) -> None:
        self.events.appendleft([meter_ms, int(reason), max(power_w, 0)])
        self.event_count += 1

    # -- state ---------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, object]:
        return {
            "limit_w": self.limit_w,
            "limit_mode": self.limit_mode,
            "malicious_mode": self.malicious_mode,
            "pf_milli": self.pf_milli,
            "ranges": list(self.ranges),
            "restore_delay_s": self.restore_delay_s,
            "restore_max": self.restore_max,
            "trip_reason": self.trip_reason,
            "restores_today": self.restores_today,
            "restore_day": self.restore_day,
            "event_count": self.event_count,
            "events": [list(e) for e in self.events],
            "forced": list(self.forced),
        }

    @staticmethod
    def parse_state(data: object, where: str) -> dict[str, object]:
        """The values of a :meth:`to_state` object, checked (``StateError`` names the field)."""
        from .state import StateError

        if not isinstance(data, dict):
            raise StateError(f"{where}: expected an object")

        def integer(name: str, low: int = 0, high: int = 1 << 62) -> int:
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise StateError(f"{where}: {name}: expected an integer {low}..{high}, not {value!r}")
            return value

        values: dict[str, object] = {
            name: integer(name)
            for name in (
                "limit_w",
                "pf_milli",
                "restore_delay_s",
                "restore_max",
                "restores_today",
                "restore_day",
            )
        }
        values["limit_mode"] = integer("limit_mode", 0, 1)
        values["malicious_mode"] = integer("malicious_mode", 0, 2)
        values["trip_reason"] = integer("trip_reason", 0, max(TripReason))
        values["event_count"] = integer("event_count")
        ranges = data.get("ranges")
        if (
            not isinstance(ranges, list)
            or len(ranges) != 2 * RANGES
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in ranges)
        ):
            raise StateError(f"{where}: ranges: expected {2 * RANGES} integers >= 0")
        values["ranges"] = list(ranges)
        events = data.get("events")
        if (
            not isinstance(events, list)
            or len(events) > EVENTS
            or any(
                not isinstance(e, list)
                or len(e) != 3
                or any(isinstance(v, bool) or not isinstance(v, int) for v in e)
                for e in events
            )
        ):
            raise StateError(f"{where}: events: expected at most {EVENTS} [time, reason, power] lists")
        values["events"] = [list(e) for e in events]
        forced = data.get("forced")
        if not isinstance(forced, list) or any(c not in _catalogue() for c in forced):
            raise StateError(f"{where}: forced: expected a list of appliance codes")
        values["forced"] = list(forced)
        return values

    def apply_state(self, values: dict[str, object]) -> None:
        for name, value in values.items():
            if name == "events":
                self.events = collections.deque(value, maxlen=EVENTS)  # type: ignore[arg-type]
            else:
                setattr(self, name, value)
