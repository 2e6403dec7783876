"""Load profiles, the time-of-use calendar and the seeded noise the virtual meters draw from.

Everything here is a pure function of (seed, meter, simulated time slot): a meter's consumption between two
simulated instants is the same however often it was read in between. Time is cut into 15-minute slots; in a
slot the load (W for electricity, L/h for water) and the tariff band are constant, so accumulation is exact
integer arithmetic (load x milliseconds).

Profiles are data (:data:`PROFILES`): a mean load range to draw each meter's mean from, 24 hourly
multipliers (the day/night shape, evaluated in the site's time zone), and a noise amplitude.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError

SLOT_MS = 15 * 60 * 1000

# Band indices follow DL/T 645 tariff numbering: tariff 1..4 = sharp, peak, flat, valley.
BANDS = ("sharp", "peak", "flat", "valley")
SHARP, PEAK, FLAT, VALLEY = range(4)

# A common Chinese residential time-of-use schedule: (minute of the local day the band starts, band).
DEFAULT_TOU: tuple[tuple[int, int], ...] = (
    (0, VALLEY),
    (7 * 60, FLAT),
    (8 * 60, PEAK),
    (10 * 60, SHARP),
    (11 * 60, PEAK),
    (12 * 60, FLAT),
    (17 * 60, PEAK),
    (19 * 60, SHARP),
    (21 * 60, PEAK),
    (22 * 60, FLAT),
    (23 * 60, VALLEY),
)

_MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def unit(x: int) -> float:
    """A float in [0, 1) from a 64-bit hash."""
    return (mix64(x) >> 11) / float(1 << 53)


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from any printable parts, stable across processes (unlike ``hash(str)``)."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of load. Rates are W (electricity) or L/h (water)."""

    name: str
    mean_low: int
    mean_high: int
    shape: tuple[float, ...]  # 24 hourly multipliers, local time; their mean is about 1
    noise: float  # +- fraction of the slot's rate drawn per slot
    idle: float = 0.0  # probability that a slot draws nothing (water taps, pumps)

    def __post_init__(self) -> None:
        if len(self.shape) != 24:
            raise ConfigError(f"profile {self.name}: the shape needs 24 hourly values")


def _hours(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split())


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "residential",
            150,
            900,
            _hours(
                "0.45 0.38 0.34 0.32 0.32 0.38 0.62 1.05 1.10 0.85 0.78 0.92 "
                "1.05 0.90 0.82 0.82 0.95 1.25 1.70 1.95 1.85 1.60 1.20 0.75"
            ),
            0.45,
        ),
        Profile(
            "lighting",
            300,
            1200,
            _hours(
                "1.6 1.6 1.6 1.6 1.6 1.6 1.2 0.3 0.2 0.2 0.2 0.2 "
                "0.2 0.2 0.2 0.2 0.3 0.9 1.8 1.9 1.9 1.8 1.7 1.6"
            ),
            0.05,
        ),
        Profile(
            "pump",
            1500,
            3000,
            _hours(
                "0.3 0.2 0.2 0.2 0.3 0.8 1.6 1.9 1.5 1.0 0.9 1.1 "
                "1.2 0.9 0.8 0.8 1.0 1.4 1.8 1.9 1.6 1.2 0.8 0.5"
            ),
            0.30,
            0.25,
        ),
        Profile(
            "water",
            6,
            25,
            _hours(
                "0.15 0.10 0.08 0.08 0.10 0.40 1.60 2.20 1.70 1.00 0.80 1.10 "
                "1.30 0.90 0.70 0.70 0.90 1.30 1.80 2.10 1.80 1.40 0.90 0.40"
            ),
            0.60,
            0.30,
        ),
        Profile("flat", 500, 500, (1.0,) * 24, 0.0),
    )
}


class Calendar:
    """The site's local time: slot -> (local hour, tariff band), cached because every meter asks the same."""

    __slots__ = ("_band_of_minute", "_info", "tou", "tz")

    def __init__(self, timezone: str = "Asia/Shanghai", tou: tuple[tuple[int, int], ...] = DEFAULT_TOU):
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {timezone!r}") from exc
        if not tou or tou[0][0] != 0:
            raise ConfigError("the TOU schedule must start at minute 0")
        for (start, band), (nxt, _) in zip(tou, (*tou[1:], (1440, 0)), strict=True):
            if not 0 <= start < nxt <= 1440 or band not in range(4):
                raise ConfigError(f"bad TOU schedule entry {(start, band)!r}")
        self.tou = tou
        band_of_minute = []
        for (start, band), (nxt, _) in zip(tou, (*tou[1:], (1440, 0)), strict=True):
            band_of_minute.extend([band] * (nxt - start))
        self._band_of_minute = tuple(band_of_minute)
        self._info = lru_cache(maxsize=8192)(self._slot_info)

    def _slot_info(self, slot: int) -> tuple[int, int]:
        local = datetime.fromtimestamp(slot * (SLOT_MS // 1000), UTC).astimezone(self.tz)
        return local.hour, self._band_of_minute[local.hour * 60 + local.minute]

    def slot_info(self, slot: int) -> tuple[int, int]:
        """(local hour, band index) of a 15-minute slot (slot = epoch milliseconds // SLOT_MS)."""
        return self._info(slot)

    def local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.tz)

    def month_start_ms(self, ms: int, months_ahead: int = 0) -> int:
        """Epoch ms of local midnight on the 1st of the month holding ``ms`` (plus ``months_ahead``)."""
        local = self.local(ms)
        index = local.year * 12 + local.month - 1 + months_ahead
        start = datetime(index // 12, index % 12 + 1, 1, tzinfo=self.tz)
        return int(start.timestamp()) * 1000


class MeterLoad:
    """One meter's draw: its mean, its power factor, and the per-slot rate with seeded noise."""

    __slots__ = ("_last", "calendar", "mean", "pf_milli", "profile", "seed")

    def __init__(self, profile: Profile, seed: int, calendar: Calendar):
        self.profile = profile
        self.seed = seed
        self.calendar = calendar
        span = profile.mean_high - profile.mean_low
        self.mean = profile.mean_low + round(span * unit(seed ^ 0x5EED))
        self.pf_milli = 880 + int(110 * unit(seed ^ 0xF00D))  # 0.880 .. 0.989
        self._last = (-1, 0, 0)

    def slot(self, slot: int) -> tuple[int, int]:
        """(rate, band) during ``slot``: rate in W or L/h, an integer."""
        last = self._last
        if last[0] == slot:
            return last[1], last[2]
        hour, band = self.calendar.slot_info(slot)
        profile = self.profile
        h = self.seed ^ (slot * 0x9E3779B97F4A7C15 & _MASK64)
        if profile.idle and unit(h ^ 0x1D1E) < profile.idle:
            rate = 0
        else:
            factor = profile.shape[hour] * (1.0 + profile.noise * (2.0 * unit(h) - 1.0))
            rate = max(0, round(self.mean * factor))
        self._last = (slot, rate, band)
        return rate, band

    def voltage_deci(self, slot: int) -> int:
        """Phase voltage in 0.1 V during ``slot`` (216.0 .. 228.0 V)."""
        return 2160 + int(120 * unit(self.seed ^ slot ^ 0x7017))

    def frequency_centi(self, slot: int) -> int:
        """Grid frequency in 0.01 Hz during ``slot`` (49.95 .. 50.05 Hz)."""
        return 4995 + int(11 * unit(self.seed ^ (slot * 31) ^ 0xF4E9))
