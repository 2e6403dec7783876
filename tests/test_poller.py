"""Poller rules, against fake links (no sockets, no codec): serialisation per bus, concurrency across buses,
timeouts, retries, fail-fast on refused gateways, the cycle bound, cancellation, commands.

The meters speak a toy line protocol (request ``R<addr>``, reply ``A<addr>:<total>,<supply>,<count>``,
refusal ``E<addr>:<name>``, one line each) through a toy adapter, so every rule here is the poller's own. A
last group runs the real :class:`TransparentLink` against a toy TCP bus to show that a late reply after a
timeout is never taken for the next meter's answer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from conftest import LineDeframer, LocalServer

from prepaid_engine.adapters.base import CommandContext, CommandPlan, FrameStep, ReadPlan
from prepaid_engine.errors import (
    AddressError,
    ChecksumError,
    DuplicateRecharge,
    LinkError,
    LinkTimeout,
    MeterError,
    RechargeRefused,
    SecurityError,
)
from prepaid_engine.poller import Poller
from prepaid_engine.transport import TransparentLink
from prepaid_engine.types import (
    BusSpec,
    CommandKind,
    CommandStatus,
    ErrorKind,
    GatewaySpec,
    MeterCommand,
    MeterModel,
    MeterSpec,
    Protocol,
    Supply,
    Transport,
    Utility,
)

TOY = MeterModel("toy", "toy line meter", Protocol.DLT645_2007, Utility.ELECTRICITY, reads=("00000000",))


# --------------------------------------------------------------------------------------------- toy protocol


class ToyDeframer(LineDeframer):
    """Lines; a line starting with ``!`` is a frame with a bad checksum, other unknown lines are garbage."""

    checksum_message = "toy checksum"

    def accepts(self, line: bytes) -> bool:
        return line[:1] in (b"A", b"E")


def _addr(meter: MeterSpec) -> bytes:
    return meter.address.encode()


def _parse_values(addr: bytes):
    def parse(frame: bytes) -> dict:
        if frame[1 : 1 + len(addr)] != addr:
            raise AddressError(f"reply from {frame[1:3]!r}")
        body = frame[2 + len(addr) :].decode()
        if frame.startswith(b"E"):
            cls = {"duplicate_recharge": DuplicateRecharge, "recharge_count_error": RechargeRefused}.get(
                body, MeterError
            )
            raise cls(f"meter says {body}", code=1, names=(body,))
        if body == "OK":
            return {}
        total, supply, count = body.split(",")
        return {"total": Decimal(total), "supply": Supply(supply), "purchase_count": int(count)}

    return parse


def _expect(addr: bytes):
    prefix_a, prefix_e = b"A" + addr + b":", b"E" + addr + b":"
    return lambda frame: frame.startswith(prefix_a) or frame.startswith(prefix_e)


def _step(addr: bytes, request: bytes, label: str) -> FrameStep:
    return FrameStep(request, _expect(addr), _parse_values(addr), label, ToyDeframer)


class ToyAdapter:
    link_kind = "framed"

    def read_plan(self, meter: MeterSpec) -> ReadPlan:
        addr = _addr(meter)
        return ReadPlan((_step(addr, b"R" + addr + b"\n", "read"),))

    def command_plan(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        addr = _addr(meter)
        op = str(command.kind).upper()
        if command.kind is CommandKind.RECHARGE:
            if ctx.master_key is None:
                raise SecurityError("no master key: recharges cannot be signed")
            op += f"={command.purchase_count}"
        action = _step(addr, b"C" + addr + b":" + op.encode() + b"\n", op)
        confirm = self.read_plan(meter)
        if command.kind is CommandKind.TRIP:
            return CommandPlan(
                command.kind, (action,), confirm, lambda v: v.get("supply") is Supply.OFF, "supply off"
            )
        if command.kind is CommandKind.RECHARGE:
            count = command.purchase_count
            return CommandPlan(
                command.kind,
                (action,),
                confirm,
                lambda v: v.get("purchase_count") == count,
                f"purchase count {count}",
                purchase_count=count,
            )
        return CommandPlan(command.kind, (action,), None, None, "acknowledgement")


# ----------------------------------------------------------------------------------------------- fake world


@dataclass
class FakeMeter:
    total: Decimal = Decimal("1.00")
    supply: Supply = Supply.ON
    purchase_count: int = 0
    latency: float = 0.0
    dead: bool = False
    faults: list[str] = field(default_factory=list)  # consumed one per request: timeout, checksum, stray
    refuse: str = ""  # name of the error the meter answers every command with
    ignore_commands: bool = False  # acknowledges commands without acting on them
    requests: int = 0


class FakeWorld:
    """Every fake gateway, bus and meter, and what the links saw."""

    def __init__(self):
        self.meters: dict[tuple[str, str, str], FakeMeter] = {}
        self.refused: set[str] = set()
        self.in_flight: dict[tuple[str, str], int] = {}
        self.max_in_flight: dict[tuple[str, str], int] = {}
        self.total_in_flight = 0
        self.max_total_in_flight = 0
        self.events: list[tuple[str, str, str]] = []  # ("gateway/bus", meter address, "start" | "end")
        self.links: list[FakeLink] = []
        self.connect_attempts: dict[str, int] = {}
        self.sent_at: list[tuple[str, datetime]] = []

    def factory(self, gateway, bus, kind, trace):
        link = FakeLink(self, gateway, bus, trace)
        self.links.append(link)
        return link


class FakeLink:
    """A framed link without sockets: the same interface and error behaviour as TransparentLink."""

    def __init__(self, world: FakeWorld, gateway: GatewaySpec, bus: BusSpec, trace):
        self.world, self.gateway, self.bus, self.trace = world, gateway, bus, trace
        self.connected = False
        self.closed = False
        self.exchanges = 0

    async def connect(self) -> None:
        self.world.connect_attempts[self.gateway.key] = (
            self.world.connect_attempts.get(self.gateway.key, 0) + 1
        )
        if self.gateway.key in self.world.refused:
            raise LinkError(f"{self.gateway.key}: connection refused")
        self.connected = True

    async def close(self) -> None:
        self.connected = False
        self.closed = True

    async def exchange(self, request: bytes, *, timeout: float, expect=None, deframer=None):
        assert self.connected, "the poller sends only on a connected link"
        world, bus = self.world, (self.gateway.key, self.bus.key)
        world.in_flight[bus] = world.in_flight.get(bus, 0) + 1
        world.max_in_flight[bus] = max(world.max_in_flight.get(bus, 0), world.in_flight[bus])
        world.total_in_flight += 1
        world.max_total_in_flight = max(world.max_total_in_flight, world.total_in_flight)
        self.exchanges += 1
        if self.trace:
            self.trace("tx", request)
        kind, rest = request[:1], request[1:].rstrip(b"\n")
        addr, _, op = rest.partition(b":")
        world.events.append((f"{self.gateway.key}/{self.bus.key}", addr.decode(), "start"))
        world.sent_at.append((request.decode().strip(), datetime.now(UTC)))
        try:
            meter = world.meters.get((self.gateway.key, self.bus.key, addr.decode()))
            if meter is None or meter.dead:
                await asyncio.sleep(timeout)
                raise LinkTimeout(f"no reply within {timeout:g} s")
            meter.requests += 1
            fault = meter.faults.pop(0) if meter.faults else ""
            await asyncio.sleep(meter.latency)
            if fault == "timeout":
                await asyncio.sleep(timeout)
                raise LinkTimeout(f"no reply within {timeout:g} s")
            if fault == "checksum":
                raise ChecksumError("bad checksum")
            frames = []
            if fault == "stray":  # a reply of another meter only: filtered out, so a timeout
                frames.append(b"A99:9.99,on,0")
            else:
                frames.append(self._answer(meter, kind, addr, op.decode()))
            for frame in frames:
                if self.trace:
                    self.trace("rx", frame)
                if expect is None or expect(frame):
                    return frame
            await asyncio.sleep(timeout)
            raise LinkTimeout(f"no reply within {timeout:g} s")
        finally:
            world.in_flight[bus] -= 1
            world.total_in_flight -= 1
            world.events.append((f"{self.gateway.key}/{self.bus.key}", addr.decode(), "end"))

    @staticmethod
    def _answer(meter: FakeMeter, kind: bytes, addr: bytes, op: str) -> bytes:
        if kind == b"R":
            return b"A" + addr + f":{meter.total},{meter.supply},{meter.purchase_count}".encode()
        if meter.refuse:
            return b"E" + addr + b":" + meter.refuse.encode()
        if not meter.ignore_commands:
            if op == "TRIP":
                meter.supply = Supply.OFF
            elif op.startswith("RECHARGE="):
                count = int(op.split("=")[1])
                if count <= meter.purchase_count:
                    return b"E" + addr + b":duplicate_recharge"
                if count != meter.purchase_count + 1:
                    return b"E" + addr + b":recharge_count_error"
                meter.purchase_count = count
        return b"A" + addr + b":OK"


def site(world: FakeWorld, layout: dict[str, dict[str, Sequence[str]]], **gateway_kw) -> list[GatewaySpec]:
    """Gateways {key: {bus key: [addresses]}}; every meter gets a FakeMeter with total = its address."""
    gateways = []
    for gw_key, buses in layout.items():
        bus_specs = []
        for bus_key, addresses in buses.items():
            meters = []
            for address in addresses:
                meters.append(MeterSpec(f"{gw_key}/{bus_key}/{address}", address, TOY))
                world.meters[(gw_key, bus_key, address)] = FakeMeter(total=Decimal(f"{int(address)}.25"))
            bus_specs.append(BusSpec(bus_key, 0, tuple(meters)))
        gateways.append(GatewaySpec(gw_key, "fake", Transport.TRANSPARENT, tuple(bus_specs), **gateway_kw))
    return gateways


def poller_for(world: FakeWorld, **kw) -> Poller:
    kw.setdefault("backoff", 0.01)
    return Poller(link_factory=world.factory, adapters={Protocol.DLT645_2007: ToyAdapter()}, **kw)


def run(coro):
    return asyncio.run(coro)


def addresses(n: int, start: int = 1) -> list[str]:
    return [f"{i:02d}" for i in range(start, start + n)]


# ---------------------------------------------------------------------------------------------------- polls


def test_every_meter_is_read_with_its_own_values():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(3), "2": addresses(2, 10)}, "g2": {"1": addresses(2, 20)}})
    result = Poller.poll_sync(poller_for(world), gateways)
    assert result.errors == []
    got = {r.meter_key: r.total for r in result.readings}
    assert got == {
        "g1/1/01": Decimal("1.25"),
        "g1/1/02": Decimal("2.25"),
        "g1/1/03": Decimal("3.25"),
        "g1/2/10": Decimal("10.25"),
        "g1/2/11": Decimal("11.25"),
        "g2/1/20": Decimal("20.25"),
        "g2/1/21": Decimal("21.25"),
    }
    assert all(r.supply is Supply.ON and r.purchase_count == 0 for r in result.readings)
    assert {k: s.online for k, s in result.gateways.items()} == {"g1": True, "g2": True}
    assert all(link.closed for link in world.links)


def test_requests_on_one_bus_are_serialised_and_buses_run_concurrently():
    world = FakeWorld()
    gateways = site(world, {f"g{g}": {str(b): addresses(4) for b in range(1, 3)} for g in range(1, 4)})
    for meter in world.meters.values():
        meter.latency = 0.01
    result = run(poller_for(world).poll(gateways))
    assert len(result.readings) == 24 and not result.errors
    assert set(world.max_in_flight.values()) == {1}  # never two requests on one bus
    assert world.max_total_in_flight == 6  # every one of the 6 buses busy at once
    # and each bus's requests went out in the bus's meter order
    for bus in {b for b, _, _ in world.events}:
        starts = [a for b, a, what in world.events if b == bus and what == "start"]
        assert starts == addresses(4)


def test_dead_meter_costs_timeout_times_attempts_and_never_stalls_other_buses():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(3), "2": addresses(6, 10)}}, timeout=0.05, retries=2)
    world.meters[("g1", "1", "01")].dead = True
    for address in addresses(6, 10):
        world.meters[("g1", "2", address)].latency = 0.005
    result = run(poller_for(world).poll(gateways))
    assert [(e.meter_key, e.kind) for e in result.errors] == [("g1/1/01", ErrorKind.TIMEOUT)]
    assert len(result.readings) == 8
    sends = [a for b, a, what in world.events if b == "g1/1" and what == "start"]
    assert sends == ["01", "01", "01", "02", "03"]  # 1 + retries, then the bus moves on
    # bus 2 was served while bus 1 waited on its dead meter: all of bus 2 started before bus 1 gave up
    last_dead_end = max(i for i, e in enumerate(world.events) if e == ("g1/1", "01", "end"))
    bus2_starts = [i for i, e in enumerate(world.events) if e[0] == "g1/2" and e[2] == "start"]
    assert len(bus2_starts) == 6 and max(bus2_starts) < last_dead_end


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("timeout", ErrorKind.TIMEOUT), ("checksum", ErrorKind.CHECKSUM), ("stray", ErrorKind.TIMEOUT)],
)
def test_one_bad_reply_is_retried_and_the_reading_is_the_meters_own(fault, kind):
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(2)}}, timeout=0.03, retries=1)
    world.meters[("g1", "1", "01")].faults = [fault]
    result = run(poller_for(world).poll(gateways))
    assert result.errors == []
    assert {r.meter_key: r.total for r in result.readings} == {
        "g1/1/01": Decimal("1.25"),
        "g1/1/02": Decimal("2.25"),
    }
    sends = [a for _, a, what in world.events if what == "start"]
    assert sends == ["01", "01", "02"]

    # the same fault twice with retries=1 loses the meter for this cycle, with the fault's kind
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(2)}}, timeout=0.03, retries=1)
    world.meters[("g1", "1", "01")].faults = [fault, fault]
    result = run(poller_for(world).poll(gateways))
    assert [(e.meter_key, e.kind) for e in result.errors] == [("g1/1/01", kind)]
    assert [r.meter_key for r in result.readings] == ["g1/1/02"]


def test_a_meter_refusal_is_not_retried():
    class RefusingAdapter(ToyAdapter):
        def read_plan(self, meter):
            addr = _addr(meter)
            return ReadPlan((_step(addr, b"C" + addr + b":READ\n", "read"),))

    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}}, retries=3)
    world.meters[("g1", "1", "01")].refuse = "no_data"
    poller = Poller(link_factory=world.factory, adapters={Protocol.DLT645_2007: RefusingAdapter()})
    result = run(poller.poll(gateways))
    assert [(e.kind, e.meter_key) for e in result.errors] == [(ErrorKind.METER, "g1/1/01")]
    assert "no_data" in result.errors[0].message
    assert world.meters[("g1", "1", "01")].requests == 1
    assert result.gateways["g1"].online  # a refusal is still a well-formed reply


def test_a_refused_gateway_fails_fast_and_does_not_slow_the_others():
    world = FakeWorld()
    gateways = site(
        world, {"dead": {"1": addresses(5), "2": addresses(5)}, "ok": {"1": addresses(3)}}, timeout=5
    )
    world.refused.add("dead")
    result = run(poller_for(world).poll(gateways))
    dead = [e for e in result.errors if e.gateway_key == "dead"]
    assert sorted(e.meter_key for e in dead) == sorted(
        f"dead/{b}/{a}" for b in ("1", "2") for a in addresses(5)
    )
    assert {e.kind for e in dead} == {ErrorKind.LINK}
    assert world.connect_attempts["dead"] == 2  # one try per bus, not one per meter
    assert [e for e in world.events if e[0].startswith("dead/")] == []
    assert len(result.readings) == 3
    assert result.gateways["dead"].online is False and result.gateways["dead"].last_contact is None
    assert result.gateways["ok"].online is True


def test_a_gateway_whose_meters_never_answer_is_offline():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(2)}, "g2": {"1": addresses(1)}}, timeout=0.02, retries=0)
    for address in addresses(2):
        world.meters[("g1", "1", address)].dead = True
    result = run(poller_for(world).poll(gateways))
    assert result.gateways["g1"].online is False
    assert result.gateways["g2"].online is True
    assert result.gateways["g2"].last_contact == result.readings[0].read_at


def test_the_cycle_bound_cancels_what_is_left_and_keeps_the_readings():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(30), "2": addresses(2, 50)}})
    for address in addresses(30):
        world.meters[("g1", "1", address)].latency = 0.01
    result = run(poller_for(world, cycle_timeout=0.1).poll(gateways))
    read = {r.meter_key for r in result.readings}
    cancelled = {e.meter_key for e in result.errors if e.kind is ErrorKind.CANCELLED}
    all_keys = {m.key for g in gateways for b in g.buses for m in b.meters}
    assert read | cancelled == all_keys and not read & cancelled
    assert {"g1/2/50", "g1/2/51"} <= read  # the quick bus finished
    assert 1 <= len(read & {m.key for m in gateways[0].buses[0].meters}) < 30
    assert all(e.kind is ErrorKind.CANCELLED for e in result.errors)
    assert all(link.closed for link in world.links)


def test_cancelling_the_poll_closes_every_link():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(50), "2": addresses(50)}})
    for meter in world.meters.values():
        meter.latency = 0.01

    async def scenario():
        task = asyncio.create_task(poller_for(world).poll(gateways))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    assert len(world.links) == 2 and all(link.closed for link in world.links)
    assert world.total_in_flight == 0


def test_kept_links_are_reused_by_the_next_poll_and_closed_on_request():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(2), "2": addresses(2, 10)}})

    async def scenario():
        poller = poller_for(world, keep_links=True, trace=True)
        first = await poller.poll(gateways)
        open_after_first = [link.closed for link in world.links]
        second = await poller.poll(gateways)
        await poller.close()
        return first, second, open_after_first

    first, second, open_after_first = run(scenario())
    assert len(world.links) == 2  # one per bus, opened once, used by both polls
    assert open_after_first == [False, False]
    assert all(link.closed for link in world.links)
    assert world.connect_attempts == {"g1": 2}
    assert len(first.readings) == len(second.readings) == 4
    # the pooled link traces into the poll that uses it
    assert len(second.traces) == 8 and {t.meter_key for t in second.traces} == {
        r.meter_key for r in second.readings
    }


def test_links_of_a_cancelled_bus_are_closed_even_when_kept():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(30)}})
    for meter in world.meters.values():
        meter.latency = 0.01

    async def scenario():
        poller = poller_for(world, keep_links=True, cycle_timeout=0.05)
        await poller.poll(gateways)
        return poller._pool

    pool = run(scenario())
    assert pool == {} and all(link.closed for link in world.links)


@pytest.mark.parametrize("stagger", [0.0, 0.3])
def test_stagger_spreads_the_bus_starts(stagger):
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1), "2": addresses(1, 10), "3": addresses(1, 20)}})
    result = run(poller_for(world, stagger=stagger).poll(gateways))
    assert len(result.readings) == 3
    order = [(bus, what) for bus, _, what in world.events]
    if stagger:  # bus n starts 0.1 s after bus n - 1: each is done before the next begins
        assert order == [(f"g1/{b}", what) for b in "123" for what in ("start", "end")]
    else:  # all start at once
        assert [bus for bus, what in order[:3]] == ["g1/1", "g1/2", "g1/3"] and {w for _, w in order[:3]} == {
            "start"
        }


def test_read_at_is_the_time_of_the_meters_reply_with_microseconds():
    ticks = itertools.count()
    base = datetime(2026, 1, 1, tzinfo=UTC)

    def clock():
        return base + timedelta(microseconds=7 * next(ticks) + 1)

    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(3)}})
    result = run(poller_for(world, clock=clock).poll(gateways))
    stamps = [r.read_at for r in result.readings]
    assert len(set(stamps)) == 3 and stamps == sorted(stamps)
    assert all(result.started_at < s < result.finished_at for s in stamps)
    assert all(s.microsecond % 7 == 1 and s.tzinfo is UTC for s in stamps)


def test_trace_keeps_every_frame_with_its_meter():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(2)}})
    result = run(poller_for(world, trace=True).poll(gateways))
    got = [(t.meter_key, t.direction, t.data) for t in result.traces]
    assert got == [
        ("g1/1/01", "tx", b"R01\n"),
        ("g1/1/01", "rx", b"A01:1.25,on,0"),
        ("g1/1/02", "tx", b"R02\n"),
        ("g1/1/02", "rx", b"A02:2.25,on,0"),
    ]
    assert not run(poller_for(FakeWorld()).poll(site(FakeWorld(), {"g1": {"1": addresses(1)}}))).traces


def test_a_meter_whose_protocol_has_no_link_on_that_gateway_is_reported_unsupported():
    world = FakeWorld()
    meter = MeterSpec("m", "1", TOY)
    gateway = GatewaySpec("mb", "127.0.0.1", Transport.MODBUS_TCP, (BusSpec("1", 1, (meter,)),))
    result = run(Poller(adapters={Protocol.DLT645_2007: ToyAdapter()}).poll([gateway]))
    assert [(e.meter_key, e.kind) for e in result.errors] == [("m", ErrorKind.UNSUPPORTED)]
    del world


# ------------------------------------------------------------------------------------------------- commands


def command(key: str, meter_key: str, kind: CommandKind, **kw) -> MeterCommand:
    return MeterCommand(key, meter_key, kind, **kw)


def test_trip_is_done_once_the_read_back_shows_the_relay_open():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}})
    [result] = run(poller_for(world).execute(gateways, [command("c1", "g1/1/01", CommandKind.TRIP)]))
    assert (result.status, result.confirmed, result.attempts, result.supply) == (
        CommandStatus.DONE,
        True,
        1,
        Supply.OFF,
    )
    assert world.meters[("g1", "1", "01")].supply is Supply.OFF


def test_an_acknowledged_trip_that_the_read_back_contradicts_is_retried_then_failed():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}})
    world.meters[("g1", "1", "01")].ignore_commands = True
    [result] = run(
        poller_for(world).execute(gateways, [command("c1", "g1/1/01", CommandKind.TRIP, attempts=3)])
    )
    assert (result.status, result.confirmed, result.attempts) == (CommandStatus.FAILED, False, 3)
    assert "supply off" in result.message
    assert [s for s, _ in world.sent_at].count("C01:TRIP") == 3


def test_command_attempts_and_exponential_backoff_for_a_dead_meter():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}}, timeout=0.01, retries=0)
    world.meters[("g1", "1", "01")].dead = True
    slept = []

    class Recording(Poller):
        async def _sleep(self, seconds):
            slept.append(seconds)
            await super()._sleep(seconds)

    poller = Recording(
        link_factory=world.factory,
        adapters={Protocol.DLT645_2007: ToyAdapter()},
        backoff=0.01,
        backoff_max=0.03,
    )
    [result] = run(poller.execute(gateways, [command("c1", "g1/1/01", CommandKind.TRIP, attempts=4)]))
    assert (result.status, result.attempts) == (CommandStatus.FAILED, 4)
    assert "timeout" in result.message
    assert [s for s, _ in world.sent_at] == ["C01:TRIP"] * 4
    assert slept == [0.01, 0.02, 0.03]  # doubling from the base, capped at backoff_max


def test_an_expired_command_is_never_sent():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}})
    past = datetime.now(UTC) - timedelta(seconds=1)
    [result] = run(
        poller_for(world).execute(gateways, [command("c1", "g1/1/01", CommandKind.TRIP, expires_at=past)])
    )
    assert (result.status, result.attempts) == (CommandStatus.EXPIRED, 0)
    assert world.sent_at == []


def test_a_command_is_not_resent_after_it_expires():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}}, timeout=0.02, retries=0)
    world.meters[("g1", "1", "01")].dead = True
    expires = datetime.now(UTC) + timedelta(seconds=0.3)
    cmd = command("c1", "g1/1/01", CommandKind.TRIP, attempts=10, expires_at=expires)
    [result] = run(poller_for(world, backoff=0.05).execute(gateways, [cmd]))
    assert result.status is CommandStatus.EXPIRED
    assert 1 <= result.attempts < 10
    assert len(world.sent_at) == result.attempts
    assert all(at < expires for _, at in world.sent_at)


def test_a_meter_refusal_fails_the_command_at_once_with_the_meters_error_names():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}})
    world.meters[("g1", "1", "01")].refuse = "unauthorised"
    [result] = run(
        poller_for(world).execute(gateways, [command("c1", "g1/1/01", CommandKind.TRIP, attempts=5)])
    )
    assert (result.status, result.attempts) == (CommandStatus.FAILED, 1)
    assert "unauthorised" in result.message


def test_a_duplicate_recharge_for_the_count_sent_is_success_and_nothing_is_resent():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}})
    world.meters[("g1", "1", "01")].purchase_count = 4  # count 4 was applied earlier; its answer was lost
    poller = poller_for(world, master_key=bytes(16))
    cmd = command("c1", "g1/1/01", CommandKind.RECHARGE, amount=Decimal("50.00"), purchase_count=4)
    [result] = run(poller.execute(gateways, [cmd]))
    assert (result.status, result.confirmed, result.attempts, result.purchase_count) == (
        CommandStatus.DONE,
        True,
        1,
        4,
    )
    assert "duplicate" in result.message
    assert [s for s, _ in world.sent_at] == ["C01:RECHARGE=4", "R01"]


def test_a_recharge_count_error_fails_and_is_never_resent_with_another_count():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}})
    world.meters[("g1", "1", "01")].purchase_count = 2
    poller = poller_for(world, master_key=bytes(16))
    cmd = command("c1", "g1/1/01", CommandKind.RECHARGE, amount=Decimal("5"), purchase_count=9, attempts=3)
    [result] = run(poller.execute(gateways, [cmd]))
    assert (result.status, result.attempts) == (CommandStatus.FAILED, 1)
    assert "recharge_count_error" in result.message
    assert [s for s, _ in world.sent_at] == ["C01:RECHARGE=9"]


def test_a_recharge_without_a_master_key_is_refused_before_sending():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(1)}})
    cmd = command("c1", "g1/1/01", CommandKind.RECHARGE, amount=Decimal("5"), purchase_count=1)
    [result] = run(poller_for(world).execute(gateways, [cmd]))
    assert (result.status, result.attempts) == (CommandStatus.FAILED, 0)
    assert "master key" in result.message and world.sent_at == []


def test_a_command_cut_off_by_the_cycle_bound_says_whether_it_was_sent():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(2)}}, timeout=0.05, retries=0)
    world.meters[("g1", "1", "01")].dead = True
    cmds = [command("a", "g1/1/01", CommandKind.TRIP, attempts=10), command("b", "g1/1/02", CommandKind.TRIP)]
    results = run(poller_for(world, cycle_timeout=0.2, backoff=0.01).execute(gateways, cmds))
    assert [r.status for r in results] == [CommandStatus.FAILED, CommandStatus.FAILED]
    assert 1 <= results[0].attempts < 10 and "may have executed it" in results[0].message
    assert results[1].attempts == 0 and "before sending" in results[1].message
    assert len([s for s, _ in world.sent_at if s == "C01:TRIP"]) == results[0].attempts


def test_commands_keep_their_order_per_bus_run_concurrently_across_buses_and_report_in_input_order():
    world = FakeWorld()
    gateways = site(world, {"g1": {"1": addresses(2), "2": addresses(2, 10)}})
    for meter in world.meters.values():
        meter.latency = 0.01
    cmds = [
        command("a", "g1/2/10", CommandKind.TRIP),
        command("b", "g1/1/01", CommandKind.TRIP),
        command("x", "nowhere", CommandKind.TRIP),
        command("c", "g1/1/02", CommandKind.KEEP_POWER_ON),
        command("d", "g1/2/11", CommandKind.TRIP),
    ]
    results = run(poller_for(world).execute(gateways, cmds))
    assert [r.key for r in results] == ["a", "b", "x", "c", "d"]
    assert [r.status for r in results] == [
        CommandStatus.DONE,
        CommandStatus.DONE,
        CommandStatus.FAILED,
        CommandStatus.DONE,
        CommandStatus.DONE,
    ]
    assert results[3].confirmed is False  # no read-back for this kind on this model: the ack alone
    assert "unknown meter" in results[2].message
    assert set(world.max_in_flight.values()) == {1} and world.max_total_in_flight == 2
    bus1 = [s for s, _ in world.sent_at if s.startswith(("C01", "C02", "R01", "R02"))]
    assert bus1 == ["C01:TRIP", "R01", "C02:KEEP_POWER_ON"]


# -------------------------------------------------------------------------------- real link, toy TCP bus


class ToyBus(LocalServer):
    """A TCP server acting as one bus of toy meters: {address: (value, reply delay)}."""

    def __init__(self, meters: dict[str, tuple[str, float]]):
        self.meters = meters
        self.requests: list[str] = []

    async def _serve(self, reader, writer):
        try:
            while line := await reader.readline():
                addr = line[1:].strip().decode()
                self.requests.append(addr)
                value, delay = self.meters[addr]
                await asyncio.sleep(delay)  # one request at a time, like a real bus
                writer.write(f"A{addr}:{value},on,0\n".encode())
        finally:
            writer.close()


def test_a_late_reply_after_a_timeout_is_never_taken_for_the_next_meters_answer():
    """Meter 01 answers 120 ms late (timeout 50 ms); meter 02's reading must be 02's value, not 01's."""

    async def scenario():
        async with ToyBus({"01": ("111.00", 0.12), "02": ("222.00", 0.0)}) as bus:
            meters = (MeterSpec("m1", "01", TOY), MeterSpec("m2", "02", TOY))
            gateway = GatewaySpec(
                "g",
                "127.0.0.1",
                Transport.TRANSPARENT,
                (BusSpec("1", bus.port, meters),),
                timeout=0.05,
                retries=0,
            )

            def factory(gw, bus_spec, kind, trace):
                # a permissive filter: only the drain stands between the late reply and meter 02
                return TransparentLink(gw.host, bus_spec.port, trace=trace, drain_quiet=0.1)

            class AnyReply(ToyAdapter):
                def read_plan(self, meter):
                    addr = _addr(meter)
                    parse = _parse_values(b"")

                    def any_parse(frame):
                        return parse(b"A:" + frame.split(b":", 1)[1])

                    step = FrameStep(b"R" + addr + b"\n", lambda f: True, any_parse, "read", ToyDeframer)
                    return ReadPlan((step,))

            poller = Poller(link_factory=factory, adapters={Protocol.DLT645_2007: AnyReply()})
            return await poller.poll([gateway]), bus.requests

    result, requests = run(scenario())
    assert requests == ["01", "02"]
    assert [(e.meter_key, e.kind) for e in result.errors] == [("m1", ErrorKind.TIMEOUT)]
    assert [(r.meter_key, r.total) for r in result.readings] == [("m2", Decimal("222.00"))]
