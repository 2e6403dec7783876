"""A simulated site's truth saved to a file and restored from it: meters survive a restart of the simulator.

The state is one versioned JSON document::

    {"version": 1, "site": "default", "seed": 1,
     "simulated_ms": 1741017600000, "simulated_at": "2025-03-03T16:00:00+00:00",
     "gateways": {"sim-tg-1": "up", "sim-mb-1": "silent"},
     "meters": {"sim-tg-1/1/000000001101": {"model": "dlt645_2007_prepaid", "acc": [...], "t_ms": ..., ...}}}

* ``simulated_ms`` is the simulated clock when the state was taken (every meter was advanced to it first);
  ``simulated_at`` says the same for people and is not read back. A restored site's clock resumes there,
  at whatever speed the new run has: not at the wall clock's now, which a site run at ``--speed 60`` is far
  ahead of (or, after a long stop, behind).
* Meters are keyed by the site's meter key ``"<gateway>/<bus>/<address>"``: addresses are unique per bus
  only (a generated Modbus site numbers unit ids 1..N on every bus). Each entry holds the meter's truth as
  :data:`~prepaid_engine.simulator.meters.STATE_FIELDS` lists it (registers, relay and valve, meter-side
  money, thresholds, prices, the recharge ledger, timers, its clock offset, the ``dead`` flag), all integers
  exact, money in integer micro-yuan or decimal text, never a float; ``model`` names the model it was.
* The state is the meters' truth and wins over the configuration's starting values (``total``,
  ``balance``, ``dead``) of the meters it holds, and the gateways' states (``up``, ``silent``, ``refused``)
  over a configured dead gateway. Meters of the site that the file lacks, or that it holds under another
  model, start fresh at the restored time; meters and gateways of the file that the site lacks are ignored
  (:class:`StateLoad` names both).

A file of another site name or seed, another version, or anything not shaped as above is refused with a
:class:`StateError`, before anything of the site changes. :func:`write_state` replaces the file atomically
(a temporary file in the same directory, then ``os.replace``), so a reader sees the old state or the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .clock import from_ms

if TYPE_CHECKING:
    from .site import Site

STATE_VERSION = 1
GATEWAY_STATES = ("up", "silent", "refused")
NEVER = 1 << 62  # as meters.NEVER: a timer that is not set (null in the file)


class StateError(ConfigError):
    """A state file that cannot be restored: unreadable, not JSON, another version, site or seed, or a value
    that is not what the field holds. Nothing was changed."""


# -- values: kind -> (to JSON, from JSON) --------------------------------------------------------------------


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateError(f"an integer, not {value!r}")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise StateError(f"true or false, not {value!r}")
    return value


def _ints4(value: object) -> list[int]:
    if not isinstance(value, list) or len(value) != 4:
        raise StateError(f"a list of four integers, not {value!r}")
    ints = [_int(v) for v in value]
    if any(v < 0 for v in ints):
        raise StateError(f"four non-negative integers, not {value!r}")
    return ints


def _time(value: object) -> int:
    return NEVER if value is None else _int(value)


def _decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise StateError(f"a decimal as text, not {value!r}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise StateError(f"a decimal as text, not {value!r}") from None
    if not result.is_finite():
        raise StateError(f"a finite decimal, not {value!r}")
    return result


def _optional(decode):
    return lambda value: None if value is None else decode(value)


def _valve(value: object) -> str | None:
    if value is None or value in ("open", "closed", "abnormal"):
        return value
    raise StateError(f"null, 'open', 'closed' or 'abnormal', not {value!r}")


def _same(value: object) -> object:
    return value


KINDS: dict[str, tuple[Any, Any]] = {
    "int": (_same, _int),
    "bool": (_same, _bool),
    "ints4": (list, _ints4),
    "time": (lambda ms: None if ms >= NEVER else ms, _time),  # null: never
    "decimal": (str, _decimal),
    "decimal?": (lambda d: None if d is None else str(d), _optional(_decimal)),
    "valve": (_same, _valve),
}


def encode(kind: str, value: object) -> object:
    return KINDS[kind][0](value)


def decode(kind: str, value: object, where: str) -> object:
    try:
        return KINDS[kind][1](value)
    except StateError as exc:
        raise StateError(f"{where}: expected {exc}") from None


# -- the document ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateLoad:
    """What :func:`load_state` did: meter keys restored and started fresh, and what the file held that the
    site does not have (meter keys, gateway keys)."""

    simulated_ms: int
    restored: tuple[str, ...]
    fresh: tuple[str, ...]
    ignored: tuple[str, ...]
    ignored_gateways: tuple[str, ...] = ()


def dump_state(site: Site) -> dict:
    """The site's truth now as the state document (every meter advanced to the clock's now first)."""
    now = site.clock.now_ms()
    meters = {}
    for key, meter in site.meters():
        meter.advance(now)
        meters[key] = meter.to_state()
    return {
        "version": STATE_VERSION,
        "site": site.config.name,
        "seed": site.config.seed,
        "simulated_ms": now,
        "simulated_at": from_ms(now).isoformat(),
        "gateways": {key: gateway.state for key, gateway in site.gateways.items()},
        "meters": meters,
    }


def check_state(data: object, site_name: str, seed: int) -> None:
    """Refuse (:class:`StateError`) a document of another version, site or seed, or not shaped as one."""
    if not isinstance(data, Mapping):
        raise StateError("the state is not a JSON object")
    version = data.get("version")
    if version != STATE_VERSION:
        raise StateError(f"state version {version!r}; this simulator reads version {STATE_VERSION}")
    if data.get("site") != site_name or data.get("seed") != seed:
        raise StateError(
            f"the state is of site {data.get('site')!r} seed {data.get('seed')!r}, "
            f"not of this site {site_name!r} seed {seed!r}"
        )
    simulated_ms = decode("int", data.get("simulated_ms"), "simulated_ms")
    if simulated_ms < 0:
        raise StateError("simulated_ms: expected a time after 1970")
    for name in ("meters", "gateways"):
        if not isinstance(data.get(name), Mapping):
            raise StateError(f"{name}: expected an object")


def load_state(site: Site, data: Mapping) -> StateLoad:
    """Restore ``site`` (not started yet) from a state document: its clock resumes at the saved simulated
    time, each meter the document holds takes its saved truth, the others start fresh at that time.

    Everything is checked before anything changes: a :class:`StateError` leaves the site as it was."""
    if site.started:
        raise StateError("a state is restored before the site starts")
    check_state(data, site.config.name, site.config.seed)
    simulated_ms = data["simulated_ms"]
    saved = data["meters"]
    restored: dict[str, tuple[object, dict]] = {}
    fresh = []
    for key, meter in site.meters():
        entry = saved.get(key)
        if entry is None:
            fresh.append(key)
            continue
        if not isinstance(entry, Mapping):
            raise StateError(f"meter {key}: expected an object")
        if entry.get("model") != meter.model.code:  # another meter now: its truth does not carry over
            fresh.append(key)
            continue
        values = meter.parse_state(entry, f"meter {key}")
        if values["t_ms"] > simulated_ms:
            raise StateError(f"meter {key}: its time is after the state's simulated time")
        restored[key] = (meter, values)
    gateways = {}
    for key, state in data["gateways"].items():
        if key in site.gateways:
            if state not in GATEWAY_STATES:
                raise StateError(f"gateway {key}: expected one of {', '.join(GATEWAY_STATES)}, not {state!r}")
            gateways[key] = state
    # -- checked: now change the site -----------------------------------------------------------------------
    site.clock.resume_at(simulated_ms)
    for meter, values in restored.values():
        meter.apply_state(values)
    for key in fresh:
        site.meter(key).start_at(simulated_ms)
    for key, state in gateways.items():
        site.gateway(key).set_state(state)
    return StateLoad(
        simulated_ms=simulated_ms,
        restored=tuple(restored),
        fresh=tuple(fresh),
        ignored=tuple(sorted(set(saved) - {key for key, _ in site.meters()})),
        ignored_gateways=tuple(sorted(set(data["gateways"]) - set(site.gateways))),
    )


# -- the file ----------------------------------------------------------------------------------------------


def read_state(path: str | Path) -> dict | None:
    """The state document in ``path``, ``None`` when there is no such file; :class:`StateError` when it
    cannot be read or is not a JSON object (the message leaves the path to the caller; the content is not
    checked here: :func:`check_state` and :func:`load_state` do)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise StateError("not a JSON object")
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def write_state(path: str | Path, data: Mapping) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, flushed to disk, then renamed over
    it (``OSError`` if the directory is not writable; the old file is then untouched)."""
    path = Path(path)
    text = json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class StateFile:
    """The state file of a running site: :meth:`save` takes the state on the loop and writes it in a
    thread, one save at a time (the periodic save, the control server's ``save_state`` and the last save at
    stop never interleave)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.saves = 0
        self.saved_ms: int | None = None  # simulated time of the last save
        self._lock = asyncio.Lock()

    async def save(self, site: Site) -> dict:
        """Save the site's state now; returns what was saved (``file``, ``simulated_at``, ``meters``)."""
        async with self._lock:
            data = dump_state(site)  # on the loop: no request changes a meter meanwhile
            await asyncio.to_thread(write_state, self.path, data)
            self.saves += 1
            self.saved_ms = data["simulated_ms"]
            meters = len(data["meters"])
            return {"file": str(self.path), "simulated_at": data["simulated_at"], "meters": meters}

    def status(self) -> dict:
        return {
            "file": str(self.path),
            "saves": self.saves,
            "saved_at": None if self.saved_ms is None else from_ms(self.saved_ms).isoformat(),
        }
