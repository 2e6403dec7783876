"""Virtual gateways: asyncio TCP servers, one port per bus, answering from the virtual meters.

* Transparent gateway bus (DL/T 645 / CJ/T 188 / Modbus RTU framing): the bytes of a TCP connection are
  the bytes on the RS-485 bus. Each connection deframes with the codec's ``Deframer``; each complete request
  goes to the bus queue; the addressed meter answers (or nobody does: unknown address, broadcast, dead meter).
* Modbus-TCP gateway bus: MBAP requests (FC3, FC4, FC6, FC16), routed by unit id to the meters of the bus;
  replies carry the request's transaction id. pymodbus's ``AsyncModbusTcpClient`` works against it.

Timing (per bus, one request at a time, in arrival order across all connections of the port): the reply is
written ``request bytes x byte time + latency (+ jitter) + reply bytes x byte time`` after the request was
read, with byte time = 11 bits / baud (8E1; 0 when the site is ``instant``), request and reply bytes counted
as they are on the serial side (FE preambles included; for Modbus-TCP the RTU frame: unit + PDU + CRC).
A request nobody answers keeps the bus busy for its own bytes only. Timers are ``loop.call_later``; nothing
runs per meter between requests.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..codecs import modbus as modbus_codec
from ..errors import FrameError
from .faults import Fault, FaultInjector, flip_byte
from .meters import Exchange, ModbusMeter, SimMeter

BITS_PER_BYTE = 11  # 1 start + 8 data + 1 parity (even) + 1 stop
GATEWAY_TARGET_FAILED = 0x0B  # Modbus exception: gateway target device failed to respond


def byte_time(baud: int) -> float:
    """Seconds one byte takes on the bus at ``baud`` (8E1)."""
    return BITS_PER_BYTE / baud


def exchange_time(request_bytes: int, reply_bytes: int, baud: int, latency: float) -> float:
    """The bus time of one exchange: both frames on the wire plus the meter's latency (the timing floor)."""
    return (request_bytes + reply_bytes) * byte_time(baud) + latency


@dataclass(slots=True)
class Request:
    """One complete request read from a connection. ``wire_len`` = its bytes on the serial side."""

    frame: object
    wire_len: int
    raw: bytes = b""
    tag: int = 0  # Modbus-TCP transaction id
    arrived: float = 0.0  # loop time the request was read


@dataclass(slots=True)
class Outcome:
    """A meter's answer, before faults: ``reply`` bytes (serial side) and what to log."""

    meter: SimMeter
    reply: bytes
    said: object
    error: tuple[str, ...] = ()
    reply_obj: object = None
    start: int = 0  # where the frame proper starts in ``reply`` (after the FE preamble)


class Wire:
    """A bus's framing: parse requests, let a meter answer, spoil answers for faults, wrap for TCP."""

    def __init__(self, meters: Iterable[SimMeter]):
        self.meters: dict[str, SimMeter] = {m.address: m for m in meters}

    def new_parser(self) -> Callable[[bytes], list[Request]]:
        raise NotImplementedError

    def answer(self, request: Request) -> Outcome | None:
        raise NotImplementedError

    def wrong_address(self, outcome: Outcome) -> bytes:
        raise NotImplementedError

    def has_frame(self, data: bytes) -> bool:
        raise NotImplementedError

    def bad_checksum(self, outcome: Outcome, rng: random.Random) -> bytes:
        raise NotImplementedError

    def to_tcp(self, request: Request, serial_reply: bytes) -> bytes:
        """The bytes written to the TCP client for a serial-side reply (identity for transparent buses)."""
        return serial_reply

    def spoil(self, fault: Fault, request: Request, outcome: Outcome, faults: FaultInjector) -> bytes | None:
        if fault is Fault.GARBLED:
            return faults.garble(outcome.reply, self.has_frame, outcome.start)
        if fault is Fault.BAD_CHECKSUM:
            return self.bad_checksum(outcome, faults.rng)
        if fault is Fault.WRONG_ADDRESS:
            return self.wrong_address(outcome)
        return None


def neighbour(address: str) -> str:
    """A neighbouring decimal address of the same width (the next one; the previous one at the top)."""
    width = len(address)
    value = int(address) + 1
    if value >= 10**width:
        value = int(address) - 1
    return str(value).zfill(width)


# ------------------------------------------------------------------------------------------- framed wires


class _FrameParser:
    """A connection's deframer: complete request frames, each with the bytes it took on the line.

    Bytes that are not part of a frame (FE preambles, noise) are counted with the next frame. A frame with
    a bad checksum is dropped, as a meter ignores it.
    """

    __slots__ = ("deframer", "pending")

    def __init__(self, deframer) -> None:
        self.deframer = deframer
        self.pending = 0

    def __call__(self, data: bytes) -> list[Request]:
        deframer = self.deframer
        deframer.feed(data)
        self.pending += len(data)
        out = []
        while True:
            try:
                frame = deframer.next_frame()
            except FrameError:
                continue
            if frame is None:
                break
            out.append(Request(frame=frame, wire_len=len(frame.raw), raw=frame.raw))
        if out:
            extra = self.pending - deframer.buffered - sum(r.wire_len for r in out)
            if extra > 0:
                out[0].wire_len += extra
            self.pending = deframer.buffered
        return out


class FramedWire(Wire):
    """A transparent bus of DL/T 645 (2007 and 1997 share the framing) or CJ/T 188 meters.

    The addressed meter answers; a wildcard or shortened address reaches the one meter it matches (several:
    they would collide on the bus, so nobody is heard); the broadcast address reaches every meter, which
    never answer it.
    """

    deframer_class: type = None  # set by subclasses
    broadcast = ""

    def __init__(self, meters: Iterable[SimMeter]):
        super().__init__(meters)
        self._by_low: dict[str, list[SimMeter]] = {}

    def new_parser(self):
        return _FrameParser(self.deframer_class())

    def _meter_for(self, address: str) -> SimMeter | None:
        meter = self.meters.get(address)
        if meter is not None:
            return meter
        from ..codecs.bcd import address_matches

        if address == self.broadcast:
            return None
        if "A" in address:
            found = [m for m in self.meters.values() if address_matches(address, m.address)]
            if len(found) == 1:
                return found[0]
        return None

    def answer(self, request: Request) -> Outcome | None:
        frame = request.frame
        address = frame.address
        if address == self.broadcast:
            for meter in self.meters.values():
                meter.handle(frame)  # broadcast time: every meter sets its clock, none answers
            return None
        meter = self._meter_for(address)
        if meter is None or meter.dead:
            return None
        answer = meter.handle(frame)
        if answer is None:
            return None
        reply = answer.wire or meter.encode_reply(answer.reply)
        return Outcome(meter, reply, answer.said, answer.error, answer.reply, meter.preamble)

    def has_frame(self, data: bytes) -> bool:
        deframer = self.deframer_class()
        deframer.feed(data)
        while True:
            try:
                return deframer.next_frame() is not None
            except FrameError:
                continue

    def bad_checksum(self, outcome: Outcome, rng: random.Random) -> bytes:
        return flip_byte(outcome.reply, len(outcome.reply) - 2, rng)

    def wrong_address(self, outcome: Outcome) -> bytes:
        return outcome.meter.encode_reply(outcome.reply_obj, address=neighbour(outcome.meter.address))


class DltWire(FramedWire):
    def __init__(self, meters: Iterable[SimMeter]):
        from ..codecs import dlt645

        self.deframer_class = dlt645.Deframer
        self.broadcast = dlt645.BROADCAST
        super().__init__(meters)


class CjtWire(FramedWire):
    def __init__(self, meters: Iterable[SimMeter]):
        from ..codecs import cjt188

        self.deframer_class = cjt188.Deframer
        self.broadcast = ""
        super().__init__(meters)


# ------------------------------------------------------------------------------------------ Modbus wires


class _RtuParser:
    """Splits a byte stream into Modbus RTU *requests* (FC3/4/6: 8 bytes; FC16: 9 + byte count)."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def __call__(self, data: bytes) -> list[Request]:
        buf = self.buf
        buf += data
        out = []
        while len(buf) >= 8:
            fc = buf[1]
            if fc in (3, 4, 6):
                size = 8
            elif fc in (15, 16):
                size = 9 + buf[6]
            else:
                size = 0
            if size and len(buf) < size:
                break
            frame = bytes(buf[:size]) if size else b""
            if size and modbus_codec.crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little"):
                del buf[:size]
                out.append(Request(frame=(frame[0], frame[1:-2]), wire_len=size, raw=frame))
            else:
                del buf[:1]  # not a request here: resynchronise one byte on
        return out


class RtuWire(Wire):
    """Modbus RTU over TCP through a transparent gateway: unit id + PDU + CRC16 on both sides."""

    def __init__(self, meters: Iterable[SimMeter]):
        super().__init__(meters)
        self.units: dict[int, ModbusMeter] = {m.unit_id: m for m in self.meters.values()}

    def new_parser(self):
        return _RtuParser()

    def answer(self, request: Request) -> Outcome | None:
        unit, pdu = request.frame
        meter = self.units.get(unit)
        if meter is None or meter.dead:
            return None  # unit 0 (broadcast) and unknown units are silent
        reply_pdu, said, error = meter.handle_pdu(pdu)
        return Outcome(meter, modbus_codec.rtu_frame(unit, reply_pdu), said, error, reply_obj=reply_pdu)

    def has_frame(self, data: bytes) -> bool:
        return len(data) >= 4 and modbus_codec.crc16(data[:-2]) == int.from_bytes(data[-2:], "little")

    def bad_checksum(self, outcome: Outcome, rng: random.Random) -> bytes:
        return flip_byte(outcome.reply, len(outcome.reply) - 1 - rng.randrange(2), rng)

    def wrong_address(self, outcome: Outcome) -> bytes:
        unit = outcome.meter.unit_id % 247 + 1
        return modbus_codec.rtu_frame(unit, outcome.reply_obj)


class _MbapParser:
    """Splits a byte stream into MBAP requests: tid(2) pid(2) len(2) unit(1) PDU."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def __call__(self, data: bytes) -> list[Request]:
        buf = self.buf
        buf += data
        out = []
        while len(buf) >= 7:
            length = int.from_bytes(buf[4:6], "big")
            if length < 2 or length > 254 or buf[2:4] != b"\x00\x00":
                raise FrameError("not a Modbus-TCP (MBAP) stream")
            if len(buf) < 6 + length:
                break
            tid = int.from_bytes(buf[0:2], "big")
            unit = buf[6]
            pdu = bytes(buf[7 : 6 + length])
            del buf[: 6 + length]
            out.append(Request(frame=(unit, pdu), wire_len=1 + len(pdu) + 2, tag=tid))
        return out


class MbapWire(RtuWire):
    """A Modbus-TCP gateway's bus: MBAP on the TCP side, RTU timing on the serial side.

    The RTU side is hidden from the client: a garbled or bad-CRC reply from the meter becomes the gateway's
    exception 0x0B (target device failed to respond); a wrong address is a reply under another unit id.
    """

    def new_parser(self):
        return _MbapParser()

    def to_tcp(self, request: Request, serial_reply: bytes) -> bytes:
        unit, pdu = serial_reply[0], serial_reply[1:-2]
        return _mbap(request.tag, unit, pdu)

    def spoil(self, fault: Fault, request: Request, outcome: Outcome, faults: FaultInjector) -> bytes | None:
        if fault in (Fault.GARBLED, Fault.BAD_CHECKSUM):
            unit, pdu = request.frame
            fc = pdu[0] if pdu else 0
            return modbus_codec.rtu_frame(unit, bytes(((fc | 0x80) & 0xFF, GATEWAY_TARGET_FAILED)))
        return super().spoil(fault, request, outcome, faults)


def _mbap(tid: int, unit: int, pdu: bytes) -> bytes:
    return tid.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes((unit,)) + pdu


# ------------------------------------------------------------------------------------------------ servers


class _Connection(asyncio.Protocol):
    __slots__ = ("bus", "closed", "parse", "transport")

    def __init__(self, bus: BusServer):
        self.bus = bus
        self.parse = bus.wire.new_parser()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.bus.connections.add(self)

    def data_received(self, data: bytes) -> None:
        bus = self.bus
        if bus.silent:
            return
        try:
            requests = self.parse(data)
        except FrameError:
            self.close()  # a stream we cannot follow (e.g. not MBAP): a real gateway drops it too
            return
        if requests:
            now = bus.now()
            for request in requests:
                request.arrived = now
                bus.submit(self, request)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.bus.connections.discard(self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()


class BusServer:
    """One bus behind a gateway: a TCP port, a queue, its meters and its fault dice."""

    def __init__(
        self,
        gateway_key: str,
        key: str,
        port: int,
        baud: int,
        wire: Wire,
        faults: FaultInjector,
        *,
        instant: bool,
        jitter: float,
        counters: collections.Counter,
    ):
        self.gateway_key = gateway_key
        self.key = key
        self.port = port
        self.baud = baud
        self.wire = wire
        self.faults = faults
        self.byte_time = 0.0 if instant else byte_time(baud)
        self.jitter = jitter
        self.counters = counters
        self.queue: collections.deque[tuple[_Connection, Request]] = collections.deque()
        self.busy = False
        self.free_at = 0.0  # loop time the last exchange was scheduled to end
        self.silent = False
        self.connections: set[_Connection] = set()
        self.server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self, host: str) -> int:
        self._loop = asyncio.get_running_loop()
        self.server = await self._loop.create_server(
            lambda: _Connection(self), host, self.port, reuse_address=True, backlog=256
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        self.drop_connections()
        if server is not None:
            await server.wait_closed()

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            conn.close()
        self.connections.clear()
        self.queue.clear()

    # -- requests -------------------------------------------------------------------------------------------
    def submit(self, conn: _Connection, request: Request) -> None:
        self.queue.append((conn, request))
        if not self.busy:
            self._pump()

    def now(self) -> float:
        return self._loop.time()

    def _pump(self) -> None:
        """Start queued requests while the bus is free. A request starts when it arrived or when the bus
        became free (the previous exchange's scheduled end), whichever is later; its reply is due ``delay``
        after that start, so late timers never shorten an exchange and never accumulate along a queue."""
        queue = self.queue
        while queue and not self.busy:
            conn, request = queue.popleft()
            if conn.closed:
                continue
            out, action, delay = self._process(request)
            if delay > 0.0:
                start = request.arrived if request.arrived > self.free_at else self.free_at
                self.free_at = start + delay
                self.busy = True
                self._loop.call_at(self.free_at, self._done, conn, out, action)
            else:
                self._deliver(conn, out, action)

    def _done(self, conn: _Connection, out: bytes | None, action: Fault | None) -> None:
        self.busy = False
        self._deliver(conn, out, action)
        self._pump()

    def _deliver(self, conn: _Connection, out: bytes | None, action: Fault | None) -> None:
        if conn.closed or self.silent:
            return
        if action is Fault.DISCONNECT:
            conn.close()
        elif out is not None:
            conn.transport.write(out)

    def _process(self, request: Request) -> tuple[bytes | None, Fault | None, float]:
        """Let the meter answer now; return (bytes to write, fault action, seconds until then)."""
        counters = self.counters
        counters["requests"] += 1
        bt = self.byte_time
        outcome = self.wire.answer(request)
        if outcome is None:
            counters["silent"] += 1
            return None, None, request.wire_len * bt
        meter = outcome.meter
        fault = self.faults.pick()
        latency = meter.latency
        if self.jitter and latency:
            latency *= 1.0 + self.jitter * (2.0 * self.faults.rng.random() - 1.0)
        delay = (request.wire_len + len(outcome.reply)) * bt + latency
        serial = outcome.reply
        if fault is None:
            counters["answered"] += 1
        else:
            counters[str(fault)] += 1
            if fault is Fault.TIMEOUT or fault is Fault.DISCONNECT:
                serial = None
                delay = request.wire_len * bt + latency
            else:
                serial = self.wire.spoil(fault, request, outcome, self.faults)
        if meter.log.maxlen:
            meter.log.append(
                Exchange(
                    at=meter.now(),
                    request=request.raw,
                    reply=outcome.reply,
                    said=outcome.said,
                    fault=None if fault is None else str(fault),
                    error=outcome.error,
                )
            )
        out = None if serial is None else self.wire.to_tcp(request, serial)
        return out, fault, delay
