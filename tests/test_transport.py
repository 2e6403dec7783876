"""Transports against real sockets, ptys and pymodbus servers on localhost.

The framed-link tests use a line "protocol" (one frame per line, ``!`` = a frame with a bad checksum): the
links are protocol-agnostic, so what is tested here is the link's own behaviour (filtering, timeouts, the
drain after a failure, reconnects, one request in flight). The DL/T 645 deframer is exercised end to end in
tests/test_poller_e2e.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import tty

import pytest
from conftest import LineDeframer, LocalServer
from pymodbus import FramerType
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from prepaid_engine.codecs.modbus import crc16, rtu_frame
from prepaid_engine.errors import ChecksumError, ConfigError, LinkError, LinkTimeout, MeterError
from prepaid_engine.transport import ModbusLink, SerialLink, SerialModbusLink, TransparentLink


class Lines(LineDeframer):
    """Deframer for the line test protocol: every non-empty line is a frame."""


def reply_to(tag: bytes):
    return lambda frame: frame.startswith(b"ok " + tag)


class Gateway(LocalServer):
    """A scriptable TCP peer: ``script(request) -> list of (delay, bytes | None)``; None closes the socket."""

    def __init__(self, script):
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.log: list[tuple[str, bytes]] = []

    async def _serve(self, reader, writer):
        self.connections += 1
        try:
            while line := await reader.readline():
                request = line.rstrip(b"\n")
                self.requests.append(request)
                self.log.append(("rx", request))
                for delay, data in self.script(request):
                    await asyncio.sleep(delay)
                    if data is None:
                        writer.close()
                        return
                    writer.write(data)
                    self.log.append(("tx", data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def run(coro):
    return asyncio.run(coro)


def test_exchange_returns_the_first_accepted_frame_and_discards_strays_and_garbage():
    def script(request):
        return [(0, b"\x00\xff garbage\nok other\nok " + request + b" 42\n")]

    async def scenario():
        traces = []
        async with Gateway(script) as gw:
            link = TransparentLink(
                "127.0.0.1", gw.port, deframer_factory=Lines, trace=lambda d, b: traces.append((d, b))
            )
            frame = await link.exchange(b"m1\n", timeout=1, expect=reply_to(b"m1"))
            await link.close()
            return frame, link.discarded_frames, traces

    frame, discarded, traces = run(scenario())
    assert frame == b"ok m1 42"
    assert discarded == 2  # the garbage line and the other meter's reply
    assert traces == [("tx", b"m1\n"), ("rx", b"\x00\xff garbage"), ("rx", b"ok other"), ("rx", b"ok m1 42")]


def test_a_late_reply_is_drained_and_never_answers_the_next_request():
    def script(request):
        return [(0.12, b"ok " + request + b"\n")] if request == b"slow" else [(0, b"ok " + request + b"\n")]

    async def scenario(drain_quiet):
        async with Gateway(script) as gw:
            link = TransparentLink("127.0.0.1", gw.port, deframer_factory=Lines, drain_quiet=drain_quiet)
            with pytest.raises(LinkTimeout):
                await link.exchange(b"slow\n", timeout=0.05)
            frame = await link.exchange(b"next\n", timeout=1)  # expect=None: anything would do
            await link.close()
            return frame, link.discarded_bytes

    frame, discarded = run(scenario(drain_quiet=0.2))
    assert frame == b"ok next"
    assert discarded == len(b"ok slow\n")
    # the same without the drain takes the late reply: the drain is what protects the next request
    frame, _ = run(scenario(drain_quiet=0.0))
    assert frame == b"ok slow"


def test_a_line_that_never_goes_quiet_after_a_timeout_makes_the_link_reconnect():
    def script(request):
        if request == b"noisy":
            return [(0.02, b"chatter\n")] * 30  # keeps talking for 0.6 s
        return [(0, b"ok " + request + b"\n")]

    async def scenario():
        async with Gateway(script) as gw:
            link = TransparentLink(
                "127.0.0.1", gw.port, deframer_factory=Lines, drain_quiet=0.05, max_drain=0.2
            )
            with pytest.raises(LinkTimeout):
                await link.exchange(b"noisy\n", timeout=0.05, expect=reply_to(b"noisy"))
            frame = await link.exchange(b"after\n", timeout=1, expect=reply_to(b"after"))
            await link.close()
            return frame, link.connects, gw.connections

    frame, connects, connections = run(scenario())
    assert frame == b"ok after"
    assert connects == 2 and connections == 2


def test_a_shorter_timeout_after_a_longer_one_still_expires_on_time():
    """One watchdog per link: a request with a shorter timeout than the previous one must not wait for the
    previous deadline. The reply comes at 0.5 s; the 0.1 s timeout must win."""

    def script(request):
        return [(0.5, b"ok late\n")] if request == b"late" else [(0, b"ok " + request + b"\n")]

    async def scenario():
        async with Gateway(script) as gw:
            link = TransparentLink("127.0.0.1", gw.port, deframer_factory=Lines, drain_quiet=0.6)
            first = await link.exchange(b"fast\n", timeout=5)
            with pytest.raises(LinkTimeout):
                await link.exchange(b"late\n", timeout=0.1)
            after = await link.exchange(b"again\n", timeout=5)  # the drain swallowed "ok late"
            await link.close()
            return first, after

    assert run(scenario()) == (b"ok fast", b"ok again")


def test_a_refused_connection_is_a_link_error_at_once():
    async def scenario():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        link = TransparentLink("127.0.0.1", port, deframer_factory=Lines, connect_timeout=5)
        with pytest.raises(LinkError) as info:
            await link.exchange(b"x\n", timeout=5)
        assert not isinstance(info.value, LinkTimeout)
        assert not link.connected

    run(scenario())


def test_a_dropped_connection_fails_the_request_and_the_link_reconnects_lazily():
    def script(request):
        return [(0, None)] if request == b"drop" else [(0, b"ok " + request + b"\n")]

    async def scenario():
        async with Gateway(script) as gw:
            link = TransparentLink("127.0.0.1", gw.port, deframer_factory=Lines)
            with pytest.raises(LinkError) as info:
                await link.exchange(b"drop\n", timeout=1)
            assert not isinstance(info.value, LinkTimeout)
            frame = await link.exchange(b"again\n", timeout=1)
            await link.close()
            return frame, link.connects, gw.connections

    assert run(scenario()) == (b"ok again", 2, 2)


def test_a_bad_checksum_surfaces_to_the_caller_and_the_link_stays_usable():
    def script(request):
        return [(0, b"!" + request + b"\n")] if request == b"bad" else [(0, b"ok " + request + b"\n")]

    async def scenario():
        async with Gateway(script) as gw:
            link = TransparentLink("127.0.0.1", gw.port, deframer_factory=Lines, drain_quiet=0.01)
            with pytest.raises(ChecksumError):
                await link.exchange(b"bad\n", timeout=1)
            frame = await link.exchange(b"good\n", timeout=1)
            await link.close()
            return frame, link.connects

    assert run(scenario()) == (b"ok good", 1)


def test_one_request_in_flight_per_link():
    def script(request):
        return [(0.05, b"ok " + request + b"\n")]

    async def scenario():
        async with Gateway(script) as gw:
            link = TransparentLink("127.0.0.1", gw.port, deframer_factory=Lines)
            frames = await asyncio.gather(
                *(link.exchange(b"m%d\n" % i, timeout=1, expect=reply_to(b"m%d" % i)) for i in range(3))
            )
            await link.close()
            return frames, gw.log

    frames, log = run(scenario())
    assert frames == [b"ok m0", b"ok m1", b"ok m2"]
    # the gateway saw each request only after it had answered the previous one
    assert log == [
        ("rx", b"m0"),
        ("tx", b"ok m0\n"),
        ("rx", b"m1"),
        ("tx", b"ok m1\n"),
        ("rx", b"m2"),
        ("tx", b"ok m2\n"),
    ]


def test_a_cancelled_exchange_leaves_the_link_usable_and_its_reply_is_not_taken():
    def script(request):
        return [(0.1, b"ok " + request + b"\n")] if request == b"first" else [(0, b"ok " + request + b"\n")]

    async def scenario():
        async with Gateway(script) as gw:
            link = TransparentLink("127.0.0.1", gw.port, deframer_factory=Lines, drain_quiet=0.15)
            task = asyncio.create_task(link.exchange(b"first\n", timeout=1))
            await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            frame = await link.exchange(b"second\n", timeout=1)
            await link.close()
            return frame

    assert run(scenario()) == b"ok second"


def test_an_exchange_needs_a_deframer():
    async def scenario():
        async with Gateway(lambda r: []) as gw:
            link = TransparentLink("127.0.0.1", gw.port)
            with pytest.raises(ConfigError):
                await link.exchange(b"x\n", timeout=1)
            frame_link = TransparentLink("127.0.0.1", gw.port)
            await frame_link.close()
            await link.close()

    run(scenario())


# ------------------------------------------------------------------------------------------------- serial


def test_serial_link_over_a_pty_pair():
    master, slave = os.openpty()
    tty.setraw(master)
    device = os.ttyname(slave)

    async def meter():
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(master), "rb", 0)
        )
        request = await reader.readline()
        os.write(master, b"ok other\nok " + request.rstrip(b"\n") + b" 7\n")
        return request

    async def scenario():
        meter_task = asyncio.create_task(meter())
        link = SerialLink(device, deframer_factory=Lines, baud=9600, parity="N")  # ptys may refuse parity
        frame = await link.exchange(b"m9\n", timeout=2, expect=reply_to(b"m9"))
        await link.close()
        return frame, await meter_task, link.discarded_frames

    try:
        frame, request, discarded = run(scenario())
    finally:
        os.close(master)
        os.close(slave)
    assert (frame, request, discarded) == (b"ok m9 7", b"m9\n", 1)


def test_serial_link_polls_ports_without_a_file_descriptor():
    """pyserial's ``loop://`` port echoes what is written and has no fileno: the link polls it."""

    async def scenario():
        link = SerialLink("loop://", deframer_factory=Lines, poll_interval=0.001)
        echo = await link.exchange(b"ok loop 1\n", timeout=1, expect=reply_to(b"loop"))
        assert link.connected
        with pytest.raises(LinkTimeout):
            await link.exchange(b"ignored\n", timeout=0.05, expect=reply_to(b"never"))
        await link.close()
        return echo

    assert run(scenario()) == b"ok loop 1"


# ------------------------------------------------------------------------------------------------- modbus


async def modbus_server(framer=FramerType.SOCKET):
    block = ModbusSequentialDataBlock(1, list(range(100, 140)))  # protocol address 0 holds 100
    context = ModbusServerContext(devices={1: ModbusDeviceContext(hr=block, ir=block)}, single=False)
    server = ModbusTcpServer(context, framer=framer, address=("127.0.0.1", 0), ignore_missing_devices=True)
    task = asyncio.create_task(server.serve_forever())
    for _ in range(200):
        await asyncio.sleep(0.01)
        transport = getattr(server, "transport", None)
        if transport is not None and transport.sockets:
            return server, task, transport.sockets[0].getsockname()[1]
    raise AssertionError("pymodbus server did not start")


def test_modbus_tcp_link_reads_writes_and_maps_errors():
    async def scenario():
        server, task, port = await modbus_server()
        traces = []
        link = ModbusLink("127.0.0.1", port, timeout=0.2, trace=lambda d, b: traces.append(d))
        try:
            before = await link.read_block(1, "holding", 2, 3)
            await link.write_registers(1, 2, [7, 8])
            after = await link.read_block(1, "holding", 2, 3)
            with pytest.raises(MeterError) as refused:
                await link.read_block(1, "holding", 1000, 2)
            again = await link.read_block(1, "input", 0, 1)
            with pytest.raises(ConfigError):
                await link.read_block(1, "coils", 0, 1)
        finally:
            await link.close()
            await server.shutdown()
            task.cancel()
        return before, after, refused.value, again, link.connects, traces

    before, after, refused, again, connects, traces = run(scenario())
    assert before == [102, 103, 104]
    assert after == [7, 8, 104]
    assert (refused.code, refused.names) == (2, ("illegal_data_address",))
    assert again == [100]
    assert connects == 1
    assert traces[:2] == ["tx", "rx"]


class SilentGateway(LocalServer):
    """Accepts connections and never answers: every request times out."""

    def __init__(self):
        self.connections = 0

    async def _serve(self, reader, writer):
        self.connections += 1
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass
        writer.close()


def test_modbus_tcp_timeouts_are_link_timeouts_and_keep_the_connection():
    async def scenario():
        async with SilentGateway() as gateway:
            link = ModbusLink("127.0.0.1", gateway.port, timeout=0.05)
            for _ in range(5):  # more than pymodbus's own "close after retries + 3 silences"
                with pytest.raises(LinkTimeout):
                    await link.read_block(1, "holding", 0, 1)
            connected = link.connected
            await link.close()
            return connected, link.connects, gateway.connections

    # Modbus-TCP replies carry the transaction id, so a late one cannot be mistaken: no reconnect needed
    assert run(scenario()) == (True, 1, 1)


def test_modbus_link_to_a_refusing_gateway_is_a_link_error():
    async def scenario():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        link = ModbusLink("127.0.0.1", port, timeout=0.2, connect_timeout=1)
        with pytest.raises(LinkError) as info:
            await link.read_block(1, "holding", 0, 1)
        assert not isinstance(info.value, LinkTimeout)

    run(scenario())


class SlowRtuSlave(LocalServer):
    """RTU over TCP: answers FC3 for unit 1 after ``delays[n]`` seconds (n = request number)."""

    def __init__(self, delays):
        self.delays = list(delays)
        self.connections = 0

    async def _serve(self, reader, writer):
        self.connections += 1
        try:
            while True:
                request = await reader.readexactly(8)
                unit, function, address, count = struct.unpack(">BBHH", request[:6])
                assert crc16(request[:6]).to_bytes(2, "little") == request[6:]
                delay = self.delays.pop(0) if self.delays else 0
                values = [self.connections * 1000 + address + i for i in range(count)]
                reply = rtu_frame(unit, bytes([function, 2 * count]) + struct.pack(f">{count}H", *values))
                await asyncio.sleep(delay)
                writer.write(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def test_rtu_over_tcp_reconnects_after_a_timeout_so_a_late_reply_is_never_taken():
    async def scenario():
        async with SlowRtuSlave([0.3, 0, 0]) as slave:
            link = ModbusLink("127.0.0.1", slave.port, framer=FramerType.RTU, timeout=0.1)
            with pytest.raises(LinkTimeout):
                await link.read_block(1, "holding", 5, 2)
            value = await link.read_block(1, "holding", 7, 1)
            await asyncio.sleep(0.3)  # the late reply of the first request would have arrived by now
            value2 = await link.read_block(1, "holding", 9, 1)
            await link.close()
            return value, value2, link.connects, slave.connections

    value, value2, connects, connections = run(scenario())
    assert value == [2007]  # the second connection's answer to address 7, not the first request's reply
    assert value2 == [2009]
    assert connects == 2 and connections == 2


def test_serial_link_reports_a_port_it_cannot_open_as_a_link_error():
    async def scenario():
        with pytest.raises(LinkError):
            await SerialLink("/dev/does-not-exist-prepaid", deframer_factory=Lines).connect()
        with pytest.raises(LinkError):
            await SerialLink("loop://", deframer_factory=Lines, baud=-5).connect()

    run(scenario())


def test_serial_modbus_link_reads_a_meter_over_a_pty_pair():
    master, slave = os.openpty()
    tty.setraw(master)

    async def meter():
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        pipe = os.fdopen(os.dup(master), "rb", 0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        request = await reader.readexactly(8)
        unit, function, address, count = struct.unpack(">BBHH", request[:6])
        values = [address + i for i in range(count)]
        os.write(master, rtu_frame(unit, bytes([function, 2 * count]) + struct.pack(f">{count}H", *values)))
        return request

    async def scenario():
        meter_task = asyncio.create_task(meter())
        link = SerialModbusLink(os.ttyname(slave), baud=9600, parity="N", timeout=2)  # ptys may refuse parity
        registers = await link.read_block(7, "holding", 0x20, 2)
        await link.close()
        return registers, await meter_task

    try:
        registers, request = run(scenario())
    finally:
        os.close(master)
        os.close(slave)
    assert registers == [0x20, 0x21]
    assert request == rtu_frame(7, bytes([3, 0x00, 0x20, 0x00, 0x02]))


def test_serial_modbus_link_refuses_a_missing_port():
    async def scenario():
        link = SerialModbusLink("/dev/does-not-exist-prepaid", baud=9600, timeout=0.1, connect_timeout=0.5)
        with pytest.raises(LinkError):
            await link.read_block(1, "holding", 0, 1)

    run(scenario())
