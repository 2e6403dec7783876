"""Meter commands end to end: the poller sends them to the simulated site and confirms them by reading back.

The demo site (zero latency, instant bytes, frozen clock): DL/T 645-2007 prepaid meters on sim-tg-1 bus 1,
CJ/T 188 water meters on bus 2, Acrel DDSY1352 Modbus meters on sim-mb-1. The simulator's truth is checked
after each command: the relay or valve really moved, the money was credited exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prepaid_engine.poller import Poller
from prepaid_engine.simulator import DEFAULT_MASTER_KEY, Site, default_site
from prepaid_engine.types import CommandKind, CommandOutcome, CommandStatus, ErrorKind, MeterCommand, Supply

ELECTRIC = "sim-tg-1/1/000000001101"
ELECTRIC_2 = "sim-tg-1/1/000000001102"
WATER = "sim-tg-1/2/00000000001101"
MODBUS = "sim-mb-1/1/1"


def run(coro):
    return asyncio.run(coro)


async def with_site(scenario, *, master_key: bytes | None = DEFAULT_MASTER_KEY, models=None, **poller_kw):
    config = default_site(latency=0, instant=True).with_ports(0)
    async with Site(config) as site:
        site.clock.freeze()
        site_map = site.site_map()
        gateways = site_map.gateway_specs(models=models) if models else site_map.gateway_specs()
        gateways = [dataclasses.replace(g, timeout=0.2) for g in gateways]
        poller = Poller(master_key=master_key, backoff=0.01, **poller_kw)

        async def execute(*commands):
            return await poller.execute(gateways, list(commands))

        return await scenario(site, execute)


def cmd(key: str, meter: str, kind: CommandKind, **kw) -> MeterCommand:
    return MeterCommand(key, meter, kind, **kw)


def test_trip_opens_the_simulated_relay_and_the_read_back_confirms_it_then_close_restores_it():
    async def scenario(site, execute):
        [trip] = await execute(cmd("t", ELECTRIC, CommandKind.TRIP))
        after_trip = site.meter(ELECTRIC).supply
        [close] = await execute(cmd("c", ELECTRIC, CommandKind.CLOSE))
        return trip, after_trip, close, site.meter(ELECTRIC).supply, site.meter(ELECTRIC_2).supply

    trip, after_trip, close, after_close, neighbour = run(with_site(scenario))
    assert (trip.status, trip.confirmed, trip.attempts, trip.supply) == (
        CommandStatus.DONE,
        True,
        1,
        Supply.OFF,
    )
    assert after_trip is Supply.OFF
    assert (trip.outcome, trip.error, trip.refusal) == (CommandOutcome.CONFIRMED, None, ())
    assert (close.status, close.confirmed, close.supply) == (CommandStatus.DONE, True, Supply.ON)
    assert after_close is Supply.ON
    assert neighbour is Supply.ON  # only the addressed meter moved


def test_keep_power_blocks_a_trip_and_is_acknowledged_without_a_keep_power_bit():
    async def scenario(site, execute):
        results = await execute(
            cmd("k", ELECTRIC, CommandKind.KEEP_POWER_ON),
            cmd("t", ELECTRIC, CommandKind.TRIP, attempts=3),
            cmd("k0", ELECTRIC, CommandKind.KEEP_POWER_OFF),
            cmd("t2", ELECTRIC, CommandKind.TRIP),
        )
        return results, site.meter(ELECTRIC).keep_power, site.meter(ELECTRIC).supply

    (keep, blocked, release, trip), keep_power, supply = run(with_site(scenario))
    # the catalogue model has no keep-power status bit: the acknowledgement alone completes it
    assert (keep.status, keep.confirmed) == (CommandStatus.DONE, False)
    assert (blocked.status, blocked.attempts) == (
        CommandStatus.FAILED,
        1,
    )  # refused by the meter: not retried
    assert "other" in blocked.message
    # ... and says so as data, for the screens to say it in the user's language
    assert (blocked.outcome, blocked.error, blocked.refusal) == (
        CommandOutcome.REFUSED,
        ErrorKind.METER,
        ("other",),
    )
    assert keep.outcome == CommandOutcome.DONE_UNCONFIRMED
    assert (release.status, trip.status, trip.confirmed) == (CommandStatus.DONE, CommandStatus.DONE, True)
    assert keep_power is False and supply is Supply.OFF


def test_keep_power_is_confirmed_by_status_word_3_where_the_model_has_the_bit():
    from prepaid_engine.catalog import builtin_models

    models = builtin_models()
    model = models["dlt645_2007_prepaid"]
    models["dlt645_2007_prepaid"] = dataclasses.replace(
        model, options=tuple(sorted({**dict(model.options), "keep_power_bit": "12"}.items()))
    )

    async def scenario(site, execute):
        results = await execute(cmd("k", ELECTRIC, CommandKind.KEEP_POWER_ON))
        return results, site.meter(ELECTRIC).keep_power

    [keep], keep_power = run(with_site(scenario, models=models))
    assert (keep.status, keep.confirmed) == (CommandStatus.DONE, True)
    assert keep_power is True


def test_set_prices_writes_the_four_prices_and_reads_them_back():
    prices = (Decimal("1.2345"), Decimal("0.9876"), Decimal("0.6500"), Decimal("0.3100"))

    async def scenario(site, execute):
        [result] = await execute(cmd("p", ELECTRIC, CommandKind.SET_PRICES, prices=prices))
        return result, site.meter(ELECTRIC).prices

    result, meter_prices = run(with_site(scenario))
    assert (result.status, result.confirmed) == (CommandStatus.DONE, True)
    assert meter_prices == prices


def test_recharge_credits_the_meter_once_and_a_replay_is_success_without_a_second_credit():
    async def scenario(site, execute):
        meter = site.meter(ELECTRIC)
        before = meter.balance
        [first] = await execute(
            cmd("r1", ELECTRIC, CommandKind.RECHARGE, amount=Decimal("50.00"), purchase_count=1)
        )
        after_first = (meter.balance, meter.purchase_count)
        [replay] = await execute(
            cmd("r1-again", ELECTRIC, CommandKind.RECHARGE, amount=Decimal("50.00"), purchase_count=1)
        )
        after_replay = (meter.balance, meter.purchase_count)
        [second] = await execute(
            cmd("r2", ELECTRIC, CommandKind.RECHARGE, amount=Decimal("20.00"), purchase_count=2)
        )
        [late_replay] = await execute(
            cmd("r1-late", ELECTRIC, CommandKind.RECHARGE, amount=Decimal("50.00"), purchase_count=1)
        )
        after_late = (meter.balance, meter.purchase_count)
        return before, first, after_first, replay, after_replay, (second, late_replay, after_late)

    before, first, after_first, replay, after_replay, later = run(with_site(scenario))
    assert (first.status, first.confirmed, first.attempts) == (CommandStatus.DONE, True, 1)
    assert (first.purchase_count, first.balance) == (1, before + Decimal("50.00"))
    assert after_first == (before + Decimal("50.00"), 1)
    # the meter refuses count 1 as a duplicate: reported as success, and nothing more is credited
    assert (replay.status, replay.confirmed, replay.attempts) == (CommandStatus.DONE, True, 1)
    assert "duplicate" in replay.message
    assert (first.outcome, replay.outcome) == (CommandOutcome.CONFIRMED, CommandOutcome.DUPLICATE)
    assert after_replay == after_first
    # count 2 is applied; replaying count 1 after it is still "already applied", and still credits nothing
    second, late_replay, after_late = later
    assert (second.status, second.purchase_count) == (CommandStatus.DONE, 2)
    assert (late_replay.status, late_replay.confirmed, late_replay.purchase_count) == (
        CommandStatus.DONE,
        True,
        2,
    )
    assert after_late == (before + Decimal("70.00"), 2)


def test_a_recharge_out_of_sequence_or_with_the_wrong_key_is_refused_and_credits_nothing():
    async def scenario(site, execute):
        meter = site.meter(ELECTRIC)
        before = meter.balance
        [jump] = await execute(
            cmd("r", ELECTRIC, CommandKind.RECHARGE, amount=Decimal("5"), purchase_count=3)
        )
        return before, jump, meter.balance, meter.purchase_count

    before, jump, balance, count = run(with_site(scenario))
    assert (jump.status, jump.attempts) == (CommandStatus.FAILED, 1)
    assert "recharge_count_error" in jump.message
    assert (balance, count) == (before, 0)

    async def wrong_key(site, execute):
        meter = site.meter(ELECTRIC)
        before = meter.balance
        [result] = await execute(
            cmd("r", ELECTRIC, CommandKind.RECHARGE, amount=Decimal("5"), purchase_count=1)
        )
        return before, result, meter.balance, meter.purchase_count

    before, result, balance, count = run(with_site(wrong_key, master_key=bytes(range(16))))
    assert result.status is CommandStatus.FAILED and result.attempts == 1
    assert (balance, count) == (before, 0)


def test_valve_close_and_open_on_a_cjt188_water_meter():
    async def scenario(site, execute):
        [close] = await execute(cmd("vc", WATER, CommandKind.VALVE_CLOSE))
        closed = site.meter(WATER).supply
        [opened] = await execute(cmd("vo", WATER, CommandKind.VALVE_OPEN))
        return close, closed, opened, site.meter(WATER).supply

    close, closed, opened, supply = run(with_site(scenario))
    assert (close.status, close.confirmed, close.supply) == (CommandStatus.DONE, True, Supply.OFF)
    assert closed is Supply.OFF
    assert (opened.status, opened.confirmed, opened.supply) == (CommandStatus.DONE, True, Supply.ON)
    assert supply is Supply.ON


def test_modbus_trip_and_close_through_the_register_map():
    async def scenario(site, execute):
        [trip] = await execute(cmd("t", MODBUS, CommandKind.TRIP))
        tripped = site.meter(MODBUS).supply
        [close] = await execute(cmd("c", MODBUS, CommandKind.CLOSE))
        return trip, tripped, close, site.meter(MODBUS).supply

    trip, tripped, close, supply = run(with_site(scenario))
    assert (trip.status, trip.confirmed, tripped) == (CommandStatus.DONE, True, Supply.OFF)
    assert (close.status, close.confirmed, supply) == (CommandStatus.DONE, True, Supply.ON)


def test_a_command_the_meter_cannot_take_is_unsupported_and_never_sent():
    async def scenario(site, execute):
        before = site.counters["requests"]
        results = await execute(
            cmd("a", WATER, CommandKind.TRIP),
            cmd("b", ELECTRIC, CommandKind.VALVE_OPEN),
            cmd("c", MODBUS, CommandKind.SET_PRICES, prices=(Decimal(1),)),
        )
        return results, site.counters["requests"] - before

    results, sent = run(with_site(scenario))
    assert [(r.status, r.attempts) for r in results] == [(CommandStatus.FAILED, 0)] * 3
    assert all("unsupported" in r.message for r in results)
    assert {(r.outcome, r.error) for r in results} == {(CommandOutcome.UNSUPPORTED, ErrorKind.UNSUPPORTED)}
    assert sent == 0


def test_an_expired_command_is_never_sent():
    async def scenario(site, execute):
        before = site.counters["requests"]
        past = datetime.now(UTC) - timedelta(seconds=1)
        [result] = await execute(cmd("t", ELECTRIC, CommandKind.TRIP, expires_at=past))
        return result, site.counters["requests"] - before, site.meter(ELECTRIC).supply

    result, sent, supply = run(with_site(scenario))
    assert (result.status, result.attempts, result.outcome) == (
        CommandStatus.EXPIRED,
        0,
        CommandOutcome.EXPIRED,
    )
    assert sent == 0 and supply is Supply.ON


def test_commands_to_a_dead_meter_are_retried_with_backoff_then_fail():
    async def scenario(site, execute):
        site.meter(ELECTRIC).dead = True
        before = site.counters["requests"]
        [result] = await execute(cmd("t", ELECTRIC, CommandKind.TRIP, attempts=3))
        return result, site.counters["requests"] - before

    result, sent = run(with_site(scenario))
    assert (result.status, result.attempts) == (CommandStatus.FAILED, 3)
    assert "timeout" in result.message
    assert (result.outcome, result.error) == (CommandOutcome.NO_ANSWER, ErrorKind.TIMEOUT)
    assert sent == 3
