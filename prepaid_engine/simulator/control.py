"""Controlling a running simulator: a line-oriented JSON server beside the site, and its synchronous client.

The server (``--control PORT`` on the CLI) listens on 127.0.0.1. A client sends one JSON object per line and
gets one JSON object per line back, in order::

    {"op": "kill_meter", "address": "000000001101"}        -> the meter stops answering (its dead flag)
    {"op": "revive_meter", "address": "000000001101"}      -> it answers again
    {"op": "kill_gateway", "gateway": "sim-tg-1", "mode": "silent"}   (or "refuse": its ports close)
    {"op": "revive_gateway", "gateway": "sim-tg-1"}
    {"op": "meter", "address": "000000001101"}   -> its truth: relay, valve, supply, balance, purchase count,
                                                    total (and bands), dead, keep power
    {"op": "appliance_on", "address": "000000001101", "appliance": "kettle"}   -> a tenant switches it on
                                                    now (until appliance_off); the meter judges the step
    {"op": "appliance_off", "address": "000000001101", "appliance": "kettle"}
    {"op": "load", "address": "000000001101"}    -> its load control: appliances on, power, settings,
                                                    trip reason, restores today, pending restore, events
    {"op": "bypass", "address": "000000001101", "share": "0.3"}   -> theft: it counts 30 % of the true load
    {"op": "stuck", "address": "000000001101"}   -> its register freezes ("stuck": false frees it)
    {"op": "tamper", "address": "000000001101", "event": "cover_open"}   (or "magnetic"; "reverse" + "kwh")
    {"op": "save_state"}                          -> the state file written now (needs --state)
    {"op": "status"}                              -> simulated time, counters, meters, gateways, state file

Every reply has ``"ok"``: ``{"ok": true, ...}``, or ``{"ok": false, "error": "..."}`` for a line that is not
JSON, not an object, over :data:`MAX_LINE` bytes, an unknown op, a missing field, an unknown meter or gateway.
Nothing a client sends stops the server. Decimals (registers, money) are JSON text, never floats.

``address`` takes what :meth:`Site.meter <prepaid_engine.simulator.site.Site.meter>` takes: an address unique
across the site or ``"<gateway>/<bus>/<address>"``.

:func:`control` is the client (scripts, soak tests)::

    control("127.0.0.1", 16900, "kill_meter", address="000000001101")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, EngineError
from .clock import from_ms
from .profile import SLOT_MS

if TYPE_CHECKING:
    from .site import Site
    from .state import StateFile

MAX_LINE = 64 * 1024  # bytes of one request line, newline excluded
MAX_REPLY = 16 * 1024 * 1024  # what the client reads of one reply line
GATEWAY_MODES = {"silent": "silent", "refuse": "refused", "refused": "refused"}


class ControlError(EngineError):
    """The simulator's control refused a request (``reply`` holds its answer) or could not be reached."""

    def __init__(self, message: str, *, reply: dict | None = None):
        super().__init__(message)
        self.reply = reply


class _Refused(Exception):
    """A request the server answers with ``ok: false`` (the message is the error)."""


# ================================================================================================ the server


class ControlServer:
    """The control server of ``site``; ``state_file`` (or ``None``) is what ``save_state`` saves to."""

    def __init__(self, site: Site, state_file: StateFile | None = None):
        self.site = site
        self.state_file = state_file
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.requests = 0
        self.refused = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen (port 0: the OS picks one); returns the bound port."""
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and close the connections still open (a client may keep one for many requests)."""
        server, self.server = self.server, None
        if server is not None:
            server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            async for reply in self._replies(reader):
                writer.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass  # the client went away
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _replies(self, reader: asyncio.StreamReader):
        """One reply per request line; a line over MAX_LINE gets one refusal and its rest is skipped."""
        buffer = bytearray()
        skipping = False  # inside a line already refused as too long
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    if len(buffer) > MAX_LINE:
                        if not skipping:
                            skipping = True
                            yield self._refusal(f"a request line is at most {MAX_LINE} bytes")
                        buffer.clear()
                    break
                line = bytes(buffer[:end]).strip()
                del buffer[: end + 1]
                if skipping:
                    skipping = False
                    continue
                if len(line) > MAX_LINE:
                    yield self._refusal(f"a request line is at most {MAX_LINE} bytes")
                elif line:
                    yield await self.handle(line)

    def _refusal(self, error: str) -> dict:
        self.requests += 1
        self.refused += 1
        return {"ok": False, "error": error}

    async def handle(self, line: bytes | str) -> dict:
        """The reply to one request line (never raises)."""
        try:
            try:
                request = json.loads(line)
            except (UnicodeDecodeError, ValueError) as exc:
                raise _Refused(f"not JSON: {exc}") from None
            if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                raise _Refused('a request is a JSON object with an "op"')
            op = OPS.get(request["op"])
            if op is None:
                raise _Refused(f"unknown op {request['op']!r}; ops: {', '.join(OPS)}")
            reply = await op(self, request)
        except _Refused as exc:
            return self._refusal(str(exc))
        except ConfigError as exc:  # an unknown meter or gateway, a bad mode
            return self._refusal(str(exc))
        except Exception as exc:  # a bug: say it, keep serving
            traceback.print_exc(file=sys.stderr)
            return self._refusal(f"internal error: {exc!r}")
        self.requests += 1
        return {"ok": True, **reply}

    # -- ops ------------------------------------------------------------------------------------------------
    def _meter(self, request: dict):
        return self.site.find(_text(request, "address"))

    async def _kill_meter(self, request: dict) -> dict:
        key, meter = self._meter(request)
        meter.dead = True
        return {"key": key, "dead": True}

    async def _revive_meter(self, request: dict) -> dict:
        key, meter = self._meter(request)
        meter.dead = False
        return {"key": key, "dead": False}

    async def _bypass(self, request: dict) -> dict:
        """Theft by bypass: the meter registers only ``share`` (0-1, text) of the true load from now on."""
        key, meter = self._meter(request)
        try:
            share = Decimal(str(request.get("share", "0.3")))
        except (ArithmeticError, ValueError):
            raise _Refused("bypass needs 'share' between 0 and 1") from None
        if not share.is_finite() or not 0 <= share <= 1:
            raise _Refused("bypass needs 'share' between 0 and 1")
        meter.advance()
        meter.registered_permille = int(share * 1000)
        return {"key": key, "registered_permille": meter.registered_permille}

    async def _stuck(self, request: dict) -> dict:
        """A stuck register: the meter counts nothing from now on (``stuck: false`` frees it)."""
        key, meter = self._meter(request)
        meter.advance()
        meter.stuck = bool(request.get("stuck", True))
        return {"key": key, "stuck": meter.stuck}

    async def _tamper(self, request: dict) -> dict:
        """A tamper event the meter records: ``event`` cover_open or magnetic (its counter + 1), or reverse
        (``kwh`` of reverse active energy, text, default 1)."""
        key, meter = self._meter(request)
        event = request.get("event")
        if event == "cover_open":
            meter.cover_open_count += 1
        elif event == "magnetic":
            meter.magnetic_count += 1
        elif event == "reverse":
            try:
                kwh = Decimal(str(request.get("kwh", "1")))
            except (ArithmeticError, ValueError):
                raise _Refused("tamper reverse needs 'kwh' > 0") from None
            if not kwh.is_finite() or kwh <= 0 or kwh > 1_000_000:
                raise _Refused("tamper reverse needs 'kwh' > 0")
            meter.reverse_units += int(kwh * 100)
        else:
            raise _Refused("tamper needs 'event': cover_open, magnetic or reverse")
        meter._read_cache.clear()
        return {
            "key": key,
            "cover_open_count": meter.cover_open_count,
            "magnetic_count": meter.magnetic_count,
            "reverse_total": str(Decimal(meter.reverse_units).scaleb(-2)),
        }

    async def _kill_gateway(self, request: dict) -> dict:
        gateway = self.site.gateway(_text(request, "gateway"))
        mode = request.get("mode", "silent")
        if mode not in GATEWAY_MODES:
            raise _Refused(f"mode is 'silent' or 'refuse', not {mode!r}")
        await self.site.kill_gateway(gateway.key, GATEWAY_MODES[mode])
        return {"gateway": gateway.key, "state": gateway.state}

    async def _revive_gateway(self, request: dict) -> dict:
        gateway = self.site.gateway(_text(request, "gateway"))
        await self.site.revive_gateway(gateway.key)
        return {"gateway": gateway.key, "state": gateway.state}

    async def _meter_truth(self, request: dict) -> dict:
        key, meter = self._meter(request)
        return {"key": key, **meter_truth(meter)}

    async def _appliance_on(self, request: dict) -> dict:
        key, meter = self._meter(request)
        meter.appliance_on(_text(request, "appliance"))
        return {"key": key, **load_truth(meter)}

    async def _appliance_off(self, request: dict) -> dict:
        key, meter = self._meter(request)
        code = _text(request, "appliance")
        if not meter.appliance_off(code):
            raise _Refused(f"appliance {code!r} was not switched on through the control on {key}")
        return {"key": key, **load_truth(meter)}

    async def _load(self, request: dict) -> dict:
        key, meter = self._meter(request)
        return {"key": key, **load_truth(meter)}

    async def _save_state(self, request: dict) -> dict:
        if self.state_file is None:
            raise _Refused("the simulator runs without --state: nothing to save to")
        try:
            return await self.state_file.save(self.site)
        except OSError as exc:
            raise _Refused(f"cannot write state file {self.state_file.path}: {exc.strerror or exc}") from None

    async def _status(self, request: dict) -> dict:
        site = self.site
        now = site.clock.now_ms()
        return {
            "site": site.config.name,
            "seed": site.config.seed,
            "simulated_at": from_ms(now).isoformat(),
            "simulated_ms": now,
            "speed": site.clock.speed,
            "meters": sum(1 for _ in site.meters()),
            "dead_meters": sorted(key for key, meter in site.meters() if meter.dead),
            "gateways": {key: gateway.state for key, gateway in site.gateways.items()},
            "counters": dict(sorted(site.counters.items())),
            "control": {"requests": self.requests, "refused": self.refused},
            "state": None if self.state_file is None else self.state_file.status(),
        }


OPS: dict[str, Callable[[ControlServer, dict], Awaitable[dict]]] = {
    "kill_meter": ControlServer._kill_meter,
    "revive_meter": ControlServer._revive_meter,
    "kill_gateway": ControlServer._kill_gateway,
    "bypass": ControlServer._bypass,
    "stuck": ControlServer._stuck,
    "tamper": ControlServer._tamper,
    "revive_gateway": ControlServer._revive_gateway,
    "meter": ControlServer._meter_truth,
    "appliance_on": ControlServer._appliance_on,
    "appliance_off": ControlServer._appliance_off,
    "load": ControlServer._load,
    "save_state": ControlServer._save_state,
    "status": ControlServer._status,
}


def _text(request: dict, name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise _Refused(f"{request['op']} needs {name!r} (text)")
    return value


def meter_truth(meter) -> dict[str, Any]:
    """A meter's truth now as JSON values (decimals as text)."""
    registers = meter.registers()
    return {
        "address": meter.address,
        "model": meter.model.code,
        "utility": str(meter.utility),
        "dead": meter.dead,
        "total": str(registers["total"]),
        "bands": {name: str(value) for name, value in registers.items() if name != "total"},
        "supply": str(meter.supply),
        "relay_open": None if meter.is_water else meter.relay_open,
        "valve": meter.valve,
        "keep_power": meter.keep_power,
        "billing": meter.billing,
        "balance": str(meter.balance),
        "purchase_count": meter.purchase_count,
        "simulated_at": meter.now().isoformat(),
    }


def load_truth(meter) -> dict[str, Any]:
    """A meter's load control now as JSON values (see :mod:`.loadctl`); refused for a water meter."""
    from ..load.params import TripReason

    lc = meter.lc
    if lc is None:
        raise _Refused(f"meter {meter.address} is a water meter: it has no load control")
    meter.advance()
    now = meter.now_ms()
    on = lc.on_at(now) if not meter.relay_open else ()
    return {
        "supply": str(meter.supply),
        "appliances_on": [a.code for a in lc.on_at(now)],
        "forced": list(lc.forced),
        "power_w": sum(a.power_w for a in on)
        + (meter.load.slot(now // SLOT_MS)[0] if not meter.relay_open else 0),
        "settings": {
            "limit_w": lc.limit_w,
            "limit_mode": lc.limit_mode,
            "malicious_mode": lc.malicious_mode,
            "pf_threshold": str(Decimal(lc.pf_milli).scaleb(-3)),
            "ranges_w": [[lc.ranges[2 * n], lc.ranges[2 * n + 1]] for n in range(len(lc.ranges) // 2)],
            "restore_delay_s": lc.restore_delay_s,
            "restore_max": lc.restore_max,
        },
        "trip_reason": TripReason(lc.trip_reason).name.lower(),
        "restores_today": lc.restores_on(meter.env.calendar.local(now).toordinal()),
        "restore_at": None if meter.restore_at >= 1 << 62 else from_ms(meter.restore_at).isoformat(),
        "event_count": lc.event_count,
        "events": [
            {"meter_time_ms": ms, "reason": TripReason(reason).name.lower(), "power_w": power}
            for ms, reason, power in lc.events
        ],
    }


# ================================================================================================ the client


def control(host: str, port: int, op: str, timeout: float = 5, **fields: Any) -> dict:
    """Send one request to a simulator's control server and return its reply (``ok`` true).

    :class:`ControlError` when the server cannot be reached, does not answer within ``timeout`` seconds,
    answers something that is not a JSON object, or refuses the request (``ok`` false: the error is in the
    message and the reply in ``.reply``)."""
    request = json.dumps({"op": op, **fields}, separators=(",", ":")).encode() + b"\n"
    where = f"simulator control at {host}:{port}"
    buffer = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request)
            while b"\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ControlError(f"{where} closed the connection before answering {op!r}")
                buffer += chunk
                if len(buffer) > MAX_REPLY:
                    raise ControlError(f"{where} answered {op!r} with more than {MAX_REPLY} bytes")
    except OSError as exc:
        raise ControlError(f"{where}: {exc}") from exc
    try:
        reply = json.loads(buffer.split(b"\n", 1)[0])
    except (UnicodeDecodeError, ValueError) as exc:
        raise ControlError(f"{where} answered {op!r} with something that is not JSON: {exc}") from None
    if not isinstance(reply, dict):
        raise ControlError(f"{where} answered {op!r} with {reply!r}")
    if reply.get("ok") is not True:
        raise ControlError(f"{op}: {reply.get('error', 'refused')}", reply=reply)
    return reply
