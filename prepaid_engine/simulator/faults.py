"""Fault injection: which request goes wrong, and how the reply is spoiled.

Each bus draws from its own RNG, seeded from the site seed and the bus, so a bus sees the same sequence of
faults for the same sequence of requests whatever the other buses do. Faults act on the *reply only*: the
meter has already executed the request (a dropped reply to a trip still trips, as real meters do).

Per-request faults, at the rates of :class:`FaultRates` (probabilities per answered request):

``timeout``
    the reply is dropped (the meter executed the request; the bus stays silent).
``garbled``
    random bytes instead of the reply, or a random run of bytes overwritten inside it. The result is
    checked to contain no decodable frame, so a garbled reply can never be taken for a valid one.
``bad_checksum``
    the reply with its checksum byte (CRC for Modbus RTU) changed.
``wrong_address``
    a well-formed reply carrying a neighbouring meter's address (Modbus: unit id).
``disconnect``
    the gateway closes the TCP connection instead of replying.

Site-level faults: ``dead_meters`` is the fraction of meters (chosen once from the seed) that never answer,
and gateways can be killed and revived at run time (``Site.kill_gateway``).

On a Modbus-TCP gateway the RTU side is hidden: ``garbled`` and ``bad_checksum`` become the gateway's
exception 0x0B ("gateway target device failed to respond") as a real converter answers after a CRC error on
its serial side, ``wrong_address`` answers with another unit id in the MBAP header.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, fields

from ..errors import ConfigError


class Fault(enum.StrEnum):
    TIMEOUT = "timeout"
    GARBLED = "garbled"
    BAD_CHECKSUM = "bad_checksum"
    WRONG_ADDRESS = "wrong_address"
    DISCONNECT = "disconnect"


PER_REQUEST_FAULTS = tuple(Fault)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probabilities per request (each 0..1, their sum at most 1) and the dead-meter fraction."""

    timeout: float = 0.0
    garbled: float = 0.0
    bad_checksum: float = 0.0
    wrong_address: float = 0.0
    disconnect: float = 0.0
    dead_meters: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"fault rate {f.name} must be within 0..1, not {value!r}")
        if self.total > 1.0 + 1e-9:
            raise ConfigError(f"per-request fault rates add up to {self.total}, more than 1")

    @classmethod
    def uniform(cls, rate: float, *, dead_meters: float = 0.0) -> FaultRates:
        """A total per-request fault rate split evenly over the five kinds (``--fault-rate``)."""
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"fault rate must be within 0..1, not {rate!r}")
        share = rate / len(PER_REQUEST_FAULTS)
        return cls(**{str(kind): share for kind in PER_REQUEST_FAULTS}, dead_meters=dead_meters)

    @property
    def total(self) -> float:
        return sum(getattr(self, str(kind)) for kind in PER_REQUEST_FAULTS)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> FaultRates:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown fault kinds: {sorted(unknown)}")
        try:
            return cls(**{k: float(v) for k, v in data.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid fault rates: {exc}") from exc


class FaultInjector:
    """One bus's fault dice. ``pick()`` is called once per answered request."""

    __slots__ = ("_thresholds", "rates", "rng")

    def __init__(self, rates: FaultRates, rng: random.Random):
        self.rng = rng
        self.set_rates(rates)

    def set_rates(self, rates: FaultRates) -> None:
        self.rates = rates
        acc = 0.0
        thresholds = []
        for kind in PER_REQUEST_FAULTS:
            rate = getattr(rates, str(kind))
            if rate > 0.0:
                acc += rate
                thresholds.append((acc, kind))
        self._thresholds = tuple(thresholds)

    def pick(self) -> Fault | None:
        if not self._thresholds:
            return None
        u = self.rng.random()
        for threshold, kind in self._thresholds:
            if u < threshold:
                return kind
        return None

    def garble(self, reply: bytes, has_frame: Callable[[bytes], bool], start: int = 0) -> bytes:
        """Spoil ``reply``: random bytes instead of it, or random bytes written over a run inside it.

        ``has_frame(data)`` says whether ``data`` still holds a decodable frame; the result never does.
        ``start`` is where the frame proper begins (after any preamble).
        """
        rng = self.rng
        length = max(len(reply), 4)
        for _ in range(16):
            if rng.random() < 0.5 or len(reply) - start < 4:
                out = bytes(rng.randrange(256) for _ in range(length))
            else:
                body = bytearray(reply)
                run = rng.randrange(1, min(4, len(body) - start - 2) + 1)
                at = rng.randrange(start + 1, len(body) - run)
                for i in range(at, at + run):
                    body[i] = (body[i] + rng.randrange(1, 256)) & 0xFF
                out = bytes(body)
            if not has_frame(out):
                return out
        # Sixteen unlucky draws in a row: bytes that are no frame of any protocol here.
        return bytes(rng.choice((0x00, 0x55, 0xAA, 0xFF)) for _ in range(length))


def flip_byte(data: bytes, index: int, rng: random.Random) -> bytes:
    """``data`` with the byte at ``index`` changed to a different value."""
    out = bytearray(data)
    out[index] = (out[index] + rng.randrange(1, 256)) & 0xFF
    return bytes(out)
