"""Meters that lack identifiers of their model (issue 8, rule 6): the poller keeps what they answer.

Many real DL/T 645 meters have no block read 0001FF00; some Modbus meters have no register for one field of
their map. The simulator's ``MeterConfig.lacks`` makes a meter answer "no such data" for such identifiers
(ERR bit 1, a CJ/T 188 abnormal reply, Modbus exception 02). The poller falls back from a block to its single
identifiers, leaves out what the meter lacks, returns a reading with the rest (the total is what billing
needs), names what is missing in ``PollResult.warnings``, and does not ask again for identifiers passed back
in ``MeterSpec.skip``.
"""

from __future__ import annotations

import asyncio
import dataclasses

from prepaid_engine.adapters import adapter_for
from prepaid_engine.catalog import get_model as builtin_model
from prepaid_engine.codecs import cjt188, dlt645, dlt645_1997, modbus
from prepaid_engine.poller import Poller
from prepaid_engine.simulator import Site, default_site, generate_site
from prepaid_engine.types import ErrorKind, MeterSpec, Protocol, Supply, Transport

ELECTRIC = "sim-tg-1/1/000000001101"
NEIGHBOUR = "sim-tg-1/1/000000001102"
WATER = "sim-tg-1/2/00000000001101"
MODBUS = "sim-mb-1/1/1"


def run(coro):
    return asyncio.run(coro)


def _specs(site: Site, skip=None, models=None):
    """The site's gateway specs (short timeouts) with ``skip`` ({meter key: identifiers}) and ``models``
    ({meter key: MeterModel}) set on the meters named."""
    skip, models = skip or {}, models or {}

    def meter(m: MeterSpec) -> MeterSpec:
        return dataclasses.replace(m, skip=frozenset(skip.get(m.key, ())), model=models.get(m.key, m.model))

    return [
        dataclasses.replace(
            g,
            timeout=0.3,
            buses=tuple(dataclasses.replace(b, meters=tuple(meter(m) for m in b.meters)) for b in g.buses),
        )
        for g in site.site_map().gateway_specs()
    ]


def _asked(result, meter_key: str, decode) -> list[str]:
    """The identifiers the poller sent to ``meter_key`` (from the frame traces)."""
    return [
        decode(trace.data).di
        for trace in result.traces
        if trace.meter_key == meter_key and trace.direction == "tx"
    ]


async def _poll(config, *polls, models=None):
    """Poll the site once per entry of ``polls`` (each a {meter key: skip} mapping), clock frozen; returns
    the results and the simulator's truth per meter."""
    async with Site(config) as site:
        site.clock.freeze()
        results = [await Poller(trace=True).poll(_specs(site, skip, models)) for skip in polls]
        truth = {key: meter.reading() for key, meter in site.meters()}
        return results, truth


def _default(key: str, **changes):
    return default_site(latency=0, instant=True).with_ports(0).with_meter(key, **changes)


def test_a_meter_without_block_0001ff00_is_read_from_its_single_identifiers():
    config = _default(ELECTRIC, lacks=("0001FF00",))
    (first,), truth = run(_poll(config, {}))
    reading = {r.meter_key: r for r in first.readings}[ELECTRIC]
    assert [e for e in first.errors if e.meter_key == ELECTRIC] == []
    assert (reading.total, reading.sharp, reading.peak, reading.flat, reading.valley) == tuple(
        truth[ELECTRIC][name] for name in ("total", "sharp", "peak", "flat", "valley")
    )
    assert reading.supply is Supply.ON and reading.balance == truth[ELECTRIC]["balance"]  # the other DIs
    [warning] = first.warnings
    assert (warning.meter_key, warning.missing) == (ELECTRIC, ("0001FF00",))
    assert warning.gateway_key == "sim-tg-1" and warning.bus_key == "1"
    asked = _asked(first, ELECTRIC, dlt645.decode)
    assert asked[:6] == ["0001FF00", "00010000", "00010100", "00010200", "00010300", "00010400"]
    # the neighbours with the block were read with it, as before
    assert _asked(first, NEIGHBOUR, dlt645.decode)[0] == "0001FF00"


def test_the_next_poll_does_not_ask_for_what_the_meter_lacks():
    config = _default(ELECTRIC, lacks=("0001FF00",))
    (first, second), truth = run(_poll(config, {}, {ELECTRIC: ("0001FF00",)}))
    assert second.warnings == []
    asked = _asked(second, ELECTRIC, dlt645.decode)
    assert "0001FF00" not in asked
    assert asked[:5] == ["00010000", "00010100", "00010200", "00010300", "00010400"]
    reading = {r.meter_key: r for r in second.readings}[ELECTRIC]
    assert reading.total == truth[ELECTRIC]["total"]
    assert {r.meter_key for r in second.readings} == {r.meter_key for r in first.readings}


def test_a_single_identifier_the_meter_lacks_is_left_out_and_the_rest_kept():
    config = _default(ELECTRIC, lacks=("0001FF00", "00010400", "00900200"))
    (result,), truth = run(_poll(config, {}))
    reading = {r.meter_key: r for r in result.readings}[ELECTRIC]
    assert reading.total == truth[ELECTRIC]["total"] and reading.flat == truth[ELECTRIC]["flat"]
    assert reading.valley is None and reading.balance is None
    assert reading.purchase_count == truth[ELECTRIC]["purchase_count"]
    [warning] = result.warnings
    assert warning.missing == ("0001FF00", "00010400", "00900200")
    # the skip set names a block's members as well: the next plan reads only the members it has
    spec = MeterSpec(ELECTRIC, "000000001101", builtin_model("dlt645_2007_prepaid"))
    plan = adapter_for(Protocol.DLT645_2007).read_plan(
        dataclasses.replace(spec, skip=frozenset(warning.missing))
    )
    assert [step.label for step in plan.steps][:4] == ["00010000", "00010100", "00010200", "00010300"]
    assert not {"0001FF00", "00010400", "00900200"} & {step.label for step in plan.steps}


def test_a_meter_that_has_none_of_its_identifiers_fails_as_before():
    model = builtin_model("dlt645_2007_prepaid")
    members = dlt645.DI_TABLE["0001FF00"].members
    config = _default(ELECTRIC, lacks=tuple(model.reads) + members)
    (result,), _truth = run(_poll(config, {}))
    assert ELECTRIC not in {r.meter_key for r in result.readings}
    [error] = [e for e in result.errors if e.meter_key == ELECTRIC]
    assert error.kind is ErrorKind.METER and "no_data" in error.message
    assert result.warnings == []


def test_skipping_everything_a_model_reads_asks_again():
    model = builtin_model("dlt645_2007_basic")
    adapter = adapter_for(Protocol.DLT645_2007)
    spec = MeterSpec("m", "000000001101", model, skip=frozenset(model.reads))
    # the block is read as its members ...
    assert [step.label for step in adapter.read_plan(spec).steps] == [*dlt645.DI_TABLE["0001FF00"].members]
    # ... and a meter said to lack those too is asked for its model's identifiers again
    spec = dataclasses.replace(spec, skip=spec.skip | set(dlt645.DI_TABLE["0001FF00"].members))
    assert [step.label for step in adapter.read_plan(spec).steps] == list(model.reads)


def test_a_dlt645_1997_meter_without_block_901f_is_read_from_9010_to_9014():
    config = generate_site(
        gateways=1, buses=1, meters=2, protocol=Protocol.DLT645_1997, latency=0, instant=True
    ).with_ports(0)
    key = next(f"{g.key}/{b.key}/{m.address}" for g, b, m in config.meters())
    config = config.with_meter(key, lacks=("901F", "9014"))
    (first, second), truth = run(_poll(config, {}, {key: ("901F", "9014")}))
    reading = {r.meter_key: r for r in first.readings}[key]
    assert reading.total == truth[key]["total"] and reading.valley is None
    assert [w.missing for w in first.warnings] == [("901F", "9014")]
    assert _asked(first, key, dlt645_1997.decode)[:6] == ["901F", "9010", "9011", "9012", "9013", "9014"]
    asked = _asked(second, key, dlt645_1997.decode)
    assert "901F" not in asked and "9014" not in asked and second.warnings == []


def test_a_modbus_meter_without_one_register_keeps_the_others():
    config = _default(MODBUS, lacks=("frequency",))
    (first, second), truth = run(_poll(config, {}, {MODBUS: ("frequency",)}))
    reading = {r.meter_key: r for r in first.readings}[MODBUS]
    assert reading.frequency is None
    assert reading.total == truth[MODBUS]["total"] and reading.supply is truth[MODBUS]["supply"]
    [warning] = first.warnings
    assert (warning.meter_key, warning.missing) == (MODBUS, ("frequency",))
    assert [e for e in first.errors if e.meter_key == MODBUS] == []
    # the next poll reads the map without the field: the same values, in as few blocks as before
    again = {r.meter_key: r for r in second.readings}[MODBUS]
    assert second.warnings == [] and again == dataclasses.replace(reading, read_at=again.read_at)
    model = builtin_model("acrel_ddsy1352")
    plan = adapter_for(Protocol.MODBUS).read_plan(MeterSpec("m", "1", model, skip=frozenset({"frequency"})))
    assert [step.block for step in plan.steps] == list(
        modbus.read_plan(model, [n for n in modbus.polled_fields(model) if n != "frequency"])
    )


def test_a_cjt188_meter_without_a_second_identifier_keeps_901f():
    model = dataclasses.replace(builtin_model("cjt188_water"), reads=("901F", "907F"))
    config = default_site(latency=0, instant=True).with_ports(0)
    (first, second), truth = run(_poll(config, {}, {WATER: ("907F",)}, models={WATER: model}))
    reading = {r.meter_key: r for r in first.readings}[WATER]
    assert reading.total == truth[WATER]["total"]
    assert [(w.meter_key, w.missing) for w in first.warnings] == [(WATER, ("907F",))]
    assert _asked(second, WATER, lambda data: cjt188.decode(data)) == ["901F"]


def test_the_simulator_lacks_the_identifiers_it_is_told_to():
    config = _default(ELECTRIC, lacks=("0001ff00",))

    async def scenario():
        async with Site(config) as site:
            meter = site.meter(ELECTRIC)
            refused = meter.handle(dlt645.decode_frame(dlt645.read(meter.address, "0001FF00")))
            answered = meter.handle(dlt645.decode_frame(dlt645.read(meter.address, "00010000")))
            return refused, answered

    refused, answered = run(scenario())
    assert isinstance(refused.reply, dlt645.ErrorReply) and refused.error == ("no_data",)
    assert isinstance(answered.reply, dlt645.ReadReply)


def test_a_modbus_rtu_meter_behind_a_transparent_gateway_falls_back_the_same_way():
    config = generate_site(
        gateways=1,
        buses=1,
        meters=1,
        protocol=Protocol.MODBUS,
        transport=Transport.TRANSPARENT,
        latency=0,
        instant=True,
    ).with_ports(0)
    key = next(f"{g.key}/{b.key}/{m.address}" for g, b, m in config.meters())
    (result,), truth = run(_poll(config.with_meter(key, lacks=("valley",)), {}))
    [reading] = result.readings
    assert reading.valley is None and reading.total == truth[key]["total"]
    assert [w.missing for w in result.warnings] == [("valley",)]


def test_lacks_and_clock_offset_survive_the_json_configuration():
    from prepaid_engine.simulator import load_config
    from prepaid_engine.simulator.config import config_to_dict

    config = default_site().with_meter(ELECTRIC, lacks=("0001FF00",), clock_offset=-7200.0)
    again = load_config(config_to_dict(config))
    meter = next(m for g, b, m in again.meters() if f"{g.key}/{b.key}/{m.address}" == ELECTRIC)
    assert (meter.lacks, meter.clock_offset) == (("0001FF00",), -7200.0)
    assert again == config
