"""The poller against the whole-site simulator, end to end over real localhost sockets.

Every site runs with zero latency and instant byte times unless a test needs time to pass on the wire, and
with the simulator's clock frozen, so the truth the meters report does not move between the poll and the
comparison: a reading must equal the simulator's truth exactly, field by field.
"""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import ROUND_DOWN, Decimal

import pytest

from prepaid_engine.poller import Poller
from prepaid_engine.simulator import FaultRates, Site, default_site, generate_site
from prepaid_engine.types import ErrorKind, GatewaySpec, Protocol, Reading, Supply, Transport

FIELDS = tuple(f.name for f in dataclasses.fields(Reading) if f.name not in ("meter_key", "read_at"))


def run(coro):
    return asyncio.run(coro)


def specs(site: Site, **overrides) -> list[GatewaySpec]:
    return [dataclasses.replace(g, **overrides) for g in site.site_map().gateway_specs()]


# Instantaneous values the simulator keeps finer than some registers hold (a Modbus current register of
# 0.01 A shows 2.091 A as 2.09) are compared at the register's resolution on the meter's own (secondary) side,
# truncated as the meter truncates: primary = register x CT ratio.
INSTANTANEOUS = frozenset({"voltage", "current", "power", "power_factor", "frequency"})


def _same(name: str, read, truth, ct: int) -> bool:
    if read == truth:
        return True
    if name in INSTANTANEOUS and isinstance(read, Decimal) and isinstance(truth, Decimal):
        scale = ct if name in ("current", "power") else 1
        shown = read / scale
        return (truth / scale).quantize(shown, rounding=ROUND_DOWN) == shown
    return False


def assert_truth(site: Site, reading: Reading) -> None:
    """Every value the reading carries is the simulator's truth for that meter, exactly.

    Fields the simulator's truth leaves out (a non-billing meter's balance register) are not compared.
    """
    meter = site.meter(reading.meter_key)
    truth, ct = meter.reading(), meter.ct_ratio
    carried = {name: getattr(reading, name) for name in FIELDS if getattr(reading, name) is not None}
    assert carried.get("total") is not None, reading
    wrong = {
        name: (value, truth[name])
        for name, value in carried.items()
        if name in truth and not _same(name, value, truth[name], ct)
    }
    assert not wrong, f"{reading.meter_key}: (read, truth) {wrong}"


async def poll_site(config, poller: Poller | None = None, **overrides):
    async with Site(config) as site:
        site.clock.freeze()
        result = await (poller or Poller()).poll(specs(site, **overrides))
        for reading in result.readings:
            assert_truth(site, reading)
        return result, {key for key, _ in site.meters()}


def test_the_default_site_reads_every_meter_as_the_simulator_knows_it():
    config = default_site(latency=0, instant=True).with_ports(0)
    result, keys = run(poll_site(config))
    assert result.errors == []
    assert {r.meter_key for r in result.readings} == keys and len(keys) == 50
    by_key = {r.meter_key: r for r in result.readings}
    electricity = by_key["sim-tg-1/1/000000001101"]
    assert electricity.total == electricity.sharp + electricity.peak + electricity.flat + electricity.valley
    assert (electricity.supply, electricity.balance, electricity.purchase_count) == (
        Supply.ON,
        Decimal("100.00"),
        0,
    )
    water = by_key["sim-tg-1/2/00000000001101"]
    assert water.total is not None and water.supply is Supply.ON and water.battery_low is not None
    assert by_key["sim-mb-1/1/1"].total is not None
    assert all(state.online for state in result.gateways.values())
    stamps = [r.read_at for r in result.readings]
    assert len(set(stamps)) == len(stamps)  # one per reply, microseconds kept: no two readings collide


@pytest.mark.parametrize(
    ("protocol", "model", "transport"),
    [
        (Protocol.DLT645_2007, "dlt645_2007_prepaid", None),
        (Protocol.DLT645_2007, "dlt645_2007_basic", None),
        (Protocol.DLT645_1997, "dlt645_1997", None),
        (Protocol.CJT188, "cjt188_water_lsb", None),
        (Protocol.MODBUS, "acrel_dtsy1352", Transport.MODBUS_TCP),
        (Protocol.MODBUS, "acrel_ddsy1352", Transport.TRANSPARENT),  # Modbus RTU over a transparent gateway
    ],
)
def test_a_generated_site_reads_as_the_simulator_knows_it(protocol, model, transport):
    config = generate_site(3, 2, 4, protocol=protocol, model=model, transport=transport, base_port=0)
    config = dataclasses.replace(config, latency=0, instant=True)
    result, keys = run(poll_site(config))
    assert result.errors == []
    assert {r.meter_key for r in result.readings} == keys and len(keys) == 24
    if protocol is not Protocol.DLT645_1997:  # the 1997 edition has no relay status word
        assert all(r.supply is Supply.ON for r in result.readings)


@pytest.mark.parametrize("model", ["dlt645_2007_prepaid", "acrel_ddsy1352"])
def test_ct_meters_read_primary_energies_as_the_simulator_knows_them(model):
    protocol = Protocol.MODBUS if model.startswith("acrel") else Protocol.DLT645_2007
    config = generate_site(1, 1, 3, protocol=protocol, model=model, base_port=0)
    gateway = config.gateways[0]
    bus = gateway.buses[0]
    meters = tuple(dataclasses.replace(m, ct_ratio=ct) for m, ct in zip(bus.meters, (1, 5, 40), strict=True))
    gateway = dataclasses.replace(gateway, buses=(dataclasses.replace(bus, meters=meters),))
    config = dataclasses.replace(config, gateways=(gateway,), latency=0, instant=True)

    async def scenario():
        async with Site(config) as site:
            site.clock.freeze()
            result = await Poller().poll(specs(site))
            for reading in result.readings:
                assert_truth(site, reading)
            registers = {key: meter.secondary_registers()[0] for key, meter in site.meters()}
            return result, registers

    result, registers = run(scenario())
    assert not result.errors and len(result.readings) == 3
    by_ct = dict(zip((1, 5, 40), result.readings, strict=True))
    for ct, reading in by_ct.items():  # the meter's own register is the CT's secondary side
        assert reading.total == registers[reading.meter_key] * ct


def test_with_20_percent_faults_no_reading_is_wrong_and_every_meter_is_read_within_three_cycles():
    config = default_site(latency=0, instant=True, faults=FaultRates.uniform(0.2), seed=7).with_ports(0)

    async def scenario():
        async with Site(config) as site:
            site.clock.freeze()
            poller = Poller(drain_quiet=0.01)
            gateways = specs(site, timeout=0.08, retries=2)
            read: set[str] = set()
            kinds: set[ErrorKind] = set()
            for _ in range(3):
                result = await poller.poll(gateways)
                for reading in result.readings:
                    assert_truth(site, reading)  # never a wrong value, whatever the fault
                read |= {r.meter_key for r in result.readings}
                kinds |= {e.kind for e in result.errors}
            return read, {key for key, _ in site.meters()}, kinds, dict(site.counters)

    read, keys, kinds, counters = run(scenario())
    assert read == keys
    assert kinds <= {
        ErrorKind.TIMEOUT,
        ErrorKind.CHECKSUM,
        ErrorKind.FRAME,
        ErrorKind.ADDRESS,
        ErrorKind.LINK,
    }
    # the faults really happened, of every kind
    assert all(counters.get(kind, 0) > 0 for kind in ("timeout", "garbled", "bad_checksum", "wrong_address"))


def _live_finish(result, live: set[str]) -> float:
    """Seconds from the cycle start to the last reply from the live gateways."""
    last = max(r.read_at for r in result.readings if r.meter_key.split("/")[0] in live)
    return (last - result.started_at).total_seconds()


@pytest.mark.parametrize("mode", ["silent", "refused"])
def test_a_dead_gateway_does_not_slow_the_others(mode):
    """The live gateways finish as fast with a dead one in the cycle as without it (a ratio, not a time)."""
    config = dataclasses.replace(
        generate_site(4, 1, 6, model="dlt645_2007_basic", base_port=0), latency=0.005
    )

    async def scenario():
        async with Site(config) as site:
            site.clock.freeze()
            gateways = specs(site, timeout=0.2, retries=1)
            live = {g.key for g in gateways[1:]}
            poller = Poller(trace=True)
            await poller.poll(gateways[1:])  # warm-up
            alone = await poller.poll(gateways[1:])
            await site.kill_gateway(gateways[0].key, mode)
            together = await poller.poll(gateways)
            return alone, together, live, gateways[0].key

    alone, together, live, dead = run(scenario())
    assert not alone.errors
    dead_errors = [e for e in together.errors if e.gateway_key == dead]
    assert len(dead_errors) == 6 and not [e for e in together.errors if e.gateway_key != dead]
    expected = ErrorKind.TIMEOUT if mode == "silent" else ErrorKind.LINK
    assert {e.kind for e in dead_errors} == {expected}
    assert together.gateways[dead].online is False
    assert len(together.readings) == len(alone.readings) == 18
    live_finish = _live_finish(together, live)
    dead_finish = max((e.at - together.started_at).total_seconds() for e in dead_errors)
    if mode == "silent":
        # the dead bus needs at least 6 meters x 2 attempts x 0.2 s; the live buses are done long before it,
        # so they never waited for it (an ordering against the dead bus's own timeouts, not a wall time)
        assert dead_finish >= 6 * 2 * 0.2
        assert live_finish < dead_finish / 2, (live_finish, dead_finish)
    else:
        # refused: the dead gateway fails fast, before a single request timeout could have elapsed
        assert dead_finish < 0.2, dead_finish
    # what the dead gateway cost: silent, each of its 6 meters got 1 + retries requests and no more (a meter
    # is given up after its first failed read); refused, not one request was sent
    sent = [t for t in together.traces if t.gateway_key == dead and t.direction == "tx"]
    assert len(sent) == (12 if mode == "silent" else 0)


def test_the_cycle_bound_keeps_what_was_read_and_cancels_the_rest():
    config = dataclasses.replace(
        generate_site(1, 1, 40, model="dlt645_2007_basic", base_port=0), latency=0.01
    )

    async def scenario():
        async with Site(config) as site:
            site.clock.freeze()
            result = await Poller(cycle_timeout=0.3).poll(specs(site))
            for reading in result.readings:
                assert_truth(site, reading)
            return result

    result = run(scenario())
    assert 0 < len(result.readings) < 40
    assert len(result.readings) + len(result.errors) == 40
    assert {e.kind for e in result.errors} == {ErrorKind.CANCELLED}


def test_poll_sync_runs_from_plain_code():
    """The Odoo cron's entry point: a synchronous call in a thread without an event loop."""
    from prepaid_engine.simulator import SiteThread

    config = default_site(latency=0, instant=True).with_ports(0)
    with SiteThread(config) as thread:
        thread.call(lambda site: site.clock.freeze())
        gateways = thread.call(lambda site: site.site_map().gateway_specs())
        result = Poller().poll_sync(gateways)
        truths = thread.call(
            lambda site: {r.meter_key: site.meter(r.meter_key).reading() for r in result.readings}
        )
    assert len(result.readings) == 50 and not result.errors
    assert all(truths[r.meter_key]["total"] == r.total for r in result.readings)
