"""SET_LOAD_PARAMETERS end to end: a load profile's parameter values travel as one command through the real
poller and links to the simulated site (DL/T 645-2007 writes, Modbus FC16 writes), are read back and the
command is confirmed only when the meter holds them; a model without those parameters cannot take it
(never sent); a refusal, an acknowledgement the read-back belies and garbled replies are not confirmed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from prepaid_engine.adapters import adapter_for
from prepaid_engine.adapters.base import CommandContext
from prepaid_engine.catalog import builtin_models
from prepaid_engine.errors import ConfigError
from prepaid_engine.load import LimitMode, LoadProfile, MaliciousMode, PowerRange, RestorePolicy
from prepaid_engine.load.params import (
    DLT645_IDENTIFIERS,
    PROFILE_PARAMETERS,
    builtin_parameters,
    enforces_profiles,
    parameters_from_data,
    parameters_from_json,
    parameters_to_data,
    parameters_to_json,
    profile_parameters,
    read_plan,
    same_values,
    unsettable,
    write_steps,
)
from prepaid_engine.poller import Poller
from prepaid_engine.simulator import FaultRates, Site, default_site
from prepaid_engine.simulator.meters import load_parameter
from prepaid_engine.types import (
    CommandKind,
    CommandOutcome,
    CommandStatus,
    ErrorKind,
    MeterCommand,
    MeterSpec,
)

ELECTRIC = "sim-tg-1/1/000000001101"
ELECTRIC_2 = "sim-tg-1/1/000000001102"
WATER = "sim-tg-1/2/00000000001101"
MODBUS = "sim-mb-1/1/1"
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
PROFILE = LoadProfile(
    power_limit_kw=Decimal("2.2"),
    limit_mode=LimitMode.TRIP,
    malicious_mode=MaliciousMode.TRIP,
    ranges=(PowerRange(300, 6000), PowerRange(7000, 9000)),
    pf_threshold=Decimal("0.90"),
)
POLICY = RestorePolicy(timedelta(seconds=120), 2)
VALUES = profile_parameters(PROFILE, POLICY)


def run(coro):
    return asyncio.run(coro)


async def with_site(scenario, *, models=None, **settings):
    config = default_site(latency=0, instant=True, start=START, **settings).with_ports(0)
    async with Site(config) as site:
        site.clock.freeze()
        site_map = site.site_map()
        gateways = site_map.gateway_specs(models=models) if models else site_map.gateway_specs()
        gateways = [dataclasses.replace(g, timeout=0.2, retries=0) for g in gateways]
        poller = Poller(backoff=0.01)

        async def execute(*commands):
            return await poller.execute(gateways, list(commands))

        return await scenario(site, execute)


def load_command(key: str, meter: str, values=VALUES, **kw) -> MeterCommand:
    return MeterCommand(key, meter, CommandKind.SET_LOAD_PARAMETERS, parameters=tuple(values.items()), **kw)


def held(site, key: str, names=VALUES) -> dict:
    """What the simulated meter holds now, by parameter name."""
    meter = site.meter(key)
    return {name: load_parameter(meter, name) for name in names}


def test_the_command_writes_a_dlt645_meters_parameters_and_the_read_back_confirms_them():
    async def scenario(site, execute):
        before = site.counters["requests"]
        [result] = await execute(load_command("p", ELECTRIC))
        return result, site.counters["requests"] - before, held(site, ELECTRIC), held(site, ELECTRIC_2)

    result, sent, holds, neighbour = run(with_site(scenario))
    assert (result.status, result.confirmed, result.attempts) == (CommandStatus.DONE, True, 1)
    assert (result.outcome, result.error, result.refusal) == (CommandOutcome.CONFIRMED, None, ())
    assert "load parameters" in result.message
    assert same_values(VALUES, holds)
    assert holds["power_limit"] == Decimal("2.2") and holds["malicious_mode"] is MaliciousMode.TRIP
    assert (holds["range_2_low"], holds["range_2_high"], holds["range_3_high"]) == (7, 9, 0)
    assert (holds["restore_delay"], holds["restore_count"]) == (120, 2)
    assert sent == 2 * len(VALUES)  # one write and one read-back per parameter
    assert neighbour["power_limit"] == 0  # only the addressed meter changed


def test_the_command_writes_a_modbus_meters_parameter_registers_in_few_writes_and_confirms_them():
    async def scenario(site, execute):
        before = site.counters["requests"]
        [result] = await execute(load_command("p", MODBUS))
        return result, site.counters["requests"] - before, held(site, MODBUS)

    result, sent, holds = run(with_site(scenario))
    assert (result.status, result.confirmed, result.outcome) == (
        CommandStatus.DONE,
        True,
        CommandOutcome.CONFIRMED,
    )
    assert same_values(VALUES, holds) and holds["power_limit"] == Decimal("2.2")
    assert sent == 4  # the limit/mode/restore block and the ranges block, each written and read back


def test_a_command_carrying_the_values_as_json_data_sets_the_same_values():
    data = json.loads(json.dumps(parameters_to_data(VALUES)))
    assert data["power_limit"] == "2.2" and data["malicious_mode"] == "trip" and data["restore_delay"] == 120
    values = parameters_from_data(data)
    assert values == VALUES
    text = parameters_to_json(VALUES)
    assert parameters_from_json(text) == VALUES and text == parameters_to_json(dict(reversed(VALUES.items())))

    async def scenario(site, execute):
        [result] = await execute(load_command("p", ELECTRIC, values))
        return result, held(site, ELECTRIC)

    result, holds = run(with_site(scenario))
    assert result.outcome == CommandOutcome.CONFIRMED and same_values(values, holds)


def test_values_as_data_refuse_unknown_read_only_and_garbled_entries():
    for data in (
        {"nonsense": 1},
        {"trip_reason": 0},
        {"power_limit": 2.2},
        {"power_limit": "x"},
        {"malicious_mode": "sometimes"},
        {"restore_count": -1},
        [("power_limit", "1")],
    ):
        with pytest.raises(ConfigError):
            parameters_from_data(data)
    with pytest.raises(ConfigError):
        parameters_to_data({"event_count": 3})
    for text in ("", "{", "null", '{"power_limit": null}'):
        with pytest.raises(ConfigError):
            parameters_from_json(text)


def test_which_models_hold_the_parameters():
    models = builtin_models()
    assert set(PROFILE_PARAMETERS) == set(VALUES)
    for code in ("dlt645_2007_prepaid", "dlt645_2007_basic", "acrel_ddsy1352", "acrel_dtsy1352"):
        assert unsettable(models[code], VALUES) == () and enforces_profiles(models[code]), code
    for code in ("dlt645_1997", "modbus_generic", "acrel_adf300", "cjt188_water"):
        assert unsettable(models[code], VALUES) == tuple(VALUES), code
        assert not enforces_profiles(models[code]), code
    assert unsettable(models["dlt645_2007_prepaid"], ("power_limit", "trip_reason")) == ("trip_reason",)


def test_a_model_without_the_parameters_is_unsupported_and_nothing_is_sent():
    models = builtin_models()
    plain = dataclasses.replace(models["dlt645_2007_prepaid"], code="dlt645_2007_plain")  # no shipped ones
    only_limit = dataclasses.replace(  # its own parameters win: it holds the power limit only
        models["acrel_ddsy1352"],
        code="acrel_limit_only",
        parameters=tuple(p for p in builtin_parameters()["acrel_ddsy1352"] if p.name == "power_limit"),
    )
    models = {**models, "dlt645_2007_prepaid": plain, "acrel_ddsy1352": only_limit}

    async def scenario(site, execute):
        before = site.counters["requests"]
        results = await execute(
            load_command("a", ELECTRIC),
            load_command("b", WATER),
            load_command("c", MODBUS),
            load_command("d", MODBUS, {"trip_reason": 0}),
            load_command("e", MODBUS, {}),
        )
        return results, site.counters["requests"] - before

    results, sent = run(with_site(scenario, models=models))
    assert [(r.status, r.attempts, r.confirmed) for r in results] == [(CommandStatus.FAILED, 0, False)] * 5
    assert {(r.outcome, r.error) for r in results} == {(CommandOutcome.UNSUPPORTED, ErrorKind.UNSUPPORTED)}
    assert "malicious_mode" in results[2].message
    assert sent == 0

    async def limit_only(site, execute):
        [result] = await execute(load_command("f", MODBUS, {"power_limit": Decimal("3.5")}))
        return result, load_parameter(site.meter(MODBUS), "power_limit")

    result, limit = run(with_site(limit_only, models=models))
    assert result.outcome == CommandOutcome.CONFIRMED and limit == Decimal("3.5")


def test_a_refused_write_is_not_confirmed_and_not_retried():
    models = builtin_models()
    model = models["dlt645_2007_prepaid"]
    models["dlt645_2007_prepaid"] = dataclasses.replace(
        model, options=tuple(sorted({**dict(model.options), "password": "123456"}.items()))
    )

    async def refused_password(site, execute):
        [result] = await execute(load_command("p", ELECTRIC, attempts=3))
        return result, held(site, ELECTRIC)

    result, holds = run(with_site(refused_password, models=models))
    assert (result.status, result.confirmed, result.attempts) == (CommandStatus.FAILED, False, 1)
    assert (result.outcome, result.refusal) == (CommandOutcome.REFUSED, ("unauthorised",))
    assert holds["power_limit"] == 0

    async def refused_value(site, execute):
        [result] = await execute(load_command("p", ELECTRIC, {"pf_threshold": Decimal("0")}))
        return result, held(site, ELECTRIC, ("pf_threshold",))

    result, holds = run(with_site(refused_value))
    assert (result.status, result.confirmed, result.outcome, result.refusal) == (
        CommandStatus.FAILED,
        False,
        CommandOutcome.REFUSED,
        ("other",),
    )
    assert holds["pf_threshold"] != 0


def test_an_acknowledged_write_the_meter_did_not_keep_is_not_confirmed():
    async def scenario(site, execute):
        meter = site.meter(ELECTRIC)
        meter.writers = {**meter.writers, DLT645_IDENTIFIERS["power_limit"]: lambda m, value: None}
        [result] = await execute(load_command("p", ELECTRIC, attempts=2))
        return result, held(site, ELECTRIC)

    result, holds = run(with_site(scenario))
    assert (result.status, result.confirmed, result.attempts) == (CommandStatus.FAILED, False, 2)
    assert (result.outcome, result.error) == (CommandOutcome.NOT_CONFIRMED, None)
    assert "read-back does not show" in result.message
    assert holds["power_limit"] == 0 and holds["malicious_mode"] is MaliciousMode.TRIP


def test_garbled_replies_are_no_answer_and_not_confirmed():
    async def scenario(site, execute):
        [result] = await execute(load_command("p", ELECTRIC, attempts=2))
        return result

    result = run(with_site(scenario, faults=FaultRates(garbled=1.0)))
    assert (result.status, result.confirmed, result.attempts) == (CommandStatus.FAILED, False, 2)
    assert result.outcome == CommandOutcome.NO_ANSWER and result.error is not None


def test_the_plan_writes_through_write_steps_and_reads_back_through_read_plan():
    models = builtin_models()
    dlt = MeterSpec("m", "000000001101", models["dlt645_2007_prepaid"])
    mb = MeterSpec("m", "1", models["acrel_ddsy1352"])
    command = load_command("p", "m")
    ctx = CommandContext(now=START)
    for spec in (dlt, mb):
        plan = adapter_for(spec.protocol).command_plan(spec, command, ctx)
        assert plan.kind is CommandKind.SET_LOAD_PARAMETERS
        assert [s.label for s in plan.actions] == [s.label for s in write_steps(spec, VALUES)]
        assert [s.label for s in plan.confirm.steps] == [s.label for s in read_plan(spec, VALUES).steps]
        assert plan.check(VALUES) and not plan.check({**VALUES, "power_limit": Decimal("2.3")})
        assert not plan.check({k: v for k, v in VALUES.items() if k != "restore_count"})
    old = MeterSpec("m", "000000001101", models["dlt645_1997"])
    with pytest.raises(ConfigError):
        adapter_for(old.protocol).command_plan(old, command, ctx)
