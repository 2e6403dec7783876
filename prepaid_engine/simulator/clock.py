"""The simulated clock every virtual meter of a site reads.

``now = start + (elapsed real time) x speed`` while running; frozen, it stands still until a test moves it
with :meth:`SimClock.advance` or :meth:`SimClock.set_time`. Meters accumulate lazily up to the clock's
"now" when a request arrives or their truth is read, so the readings depend only on the simulated times at
which they were asked for, never on how long the process took to get there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..errors import ConfigError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(dt: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime (exact integer arithmetic)."""
    if dt.tzinfo is None:
        raise ConfigError(f"simulated time must be timezone-aware, not {dt!r}")
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class SimClock:
    """Simulated UTC time. ``speed`` 1 is real time, 60 is one simulated minute per real second.

    ``monotonic`` is the real-time source (``time.monotonic``); tests may pass their own.
    """

    __slots__ = ("_base_ms", "_frozen", "_monotonic", "_t0", "speed")

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        *,
        frozen: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if not speed > 0:
            raise ConfigError(f"clock speed must be positive, not {speed!r}")
        self.speed = float(speed)
        self._monotonic = monotonic
        self._base_ms = to_ms(start or datetime.now(UTC))
        self._t0 = monotonic()
        self._frozen = frozen

    # -- reading -------------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Simulated milliseconds since the Unix epoch."""
        if self._frozen:
            return self._base_ms
        return self._base_ms + int((self._monotonic() - self._t0) * self.speed * 1000)

    def now(self) -> datetime:
        return from_ms(self.now_ms())

    @property
    def frozen(self) -> bool:
        return self._frozen

    # -- moving (tests, demos) -----------------------------------------------------------------------------
    def freeze(self) -> datetime:
        """Stop the clock at the current simulated time and return that time."""
        self._base_ms = self.now_ms()
        self._frozen = True
        return from_ms(self._base_ms)

    def resume(self) -> None:
        """Let the clock run again from where it stands."""
        self._base_ms = self.now_ms()
        self._t0 = self._monotonic()
        self._frozen = False

    def advance(self, seconds: float) -> datetime:
        """Move simulated time forward (frozen or running). Time never goes backwards."""
        if seconds < 0:
            raise ConfigError("the simulated clock does not go backwards")
        self._base_ms = self.now_ms() + round(seconds * 1000)
        self._t0 = self._monotonic()
        return self.now()

    def resume_at(self, ms: int) -> None:
        """Stand at simulated ``ms`` (milliseconds since the epoch), earlier or later than now, and go on
        from there at this clock's speed (a frozen clock stays frozen there). For a site about to restore its
        meters from a saved state (:func:`~prepaid_engine.simulator.state.load_state`): a meter whose time is
        ahead of the clock stands still until the clock catches up, so nothing else moves the clock back."""
        self._base_ms = int(ms)
        self._t0 = self._monotonic()

    def set_time(self, dt: datetime) -> None:
        """Jump to ``dt`` (not earlier than now: meters only accumulate forwards)."""
        target = to_ms(dt)
        if target < self.now_ms():
            raise ConfigError(f"cannot set the simulated clock back to {dt.isoformat()}")
        self._base_ms = target
        self._t0 = self._monotonic()
