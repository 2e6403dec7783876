"""Relay commands keep working for as long as the product runs (issue 9).

A DL/T 645 relay control carries a validity time (N3..N8) that the meter checks against its own clock. The
product used to send "our clock + a window" (or the queue's expiry), which a meter whose clock drifts, or the
simulator running 60 times faster than the wall clock, sees in the past after a while: the meter refused the
trip with ERR "other" 24 minutes into the demo. The validity now counts on the meter's clock, read before each
attempt; a meter that cannot tell its time gets our clock + the window and the result says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from prepaid_engine.codecs import dlt645
from prepaid_engine.poller import Poller
from prepaid_engine.simulator import Site, default_site
from prepaid_engine.types import CommandKind, CommandStatus, MeterCommand, Supply

ELECTRIC = "sim-tg-1/1/000000001101"
DAY = 86_400


def run(coro):
    return asyncio.run(coro)


def site_config(**settings):
    return default_site(latency=0, instant=True, **settings).with_ports(0)


async def with_site(config, scenario, *, frozen=True, skip=None, **poller_kw):
    async with Site(config) as site:
        if frozen:
            site.clock.freeze()
        specs = site.site_map().gateway_specs()
        if skip:
            specs = [
                dataclasses.replace(
                    g,
                    buses=tuple(
                        dataclasses.replace(
                            b,
                            meters=tuple(
                                dataclasses.replace(m, skip=frozenset(skip)) if m.key == ELECTRIC else m
                                for m in b.meters
                            ),
                        )
                        for b in g.buses
                    ),
                )
                for g in specs
            ]
        specs = [dataclasses.replace(g, timeout=0.3) for g in specs]
        poller = Poller(backoff=0.01, trace=True, **poller_kw)

        async def command(kind: CommandKind, key: str = "c"):
            [result] = await poller.execute(specs, [MeterCommand(key, ELECTRIC, kind)])
            return result, site.meter(ELECTRIC).supply

        return await scenario(site, command)


def _done(result, supply, wanted: Supply) -> bool:
    return (result.status, result.confirmed, supply) == (CommandStatus.DONE, True, wanted)


def test_trip_and_close_are_accepted_days_and_months_of_simulated_time_later():
    """The regression: with the validity counted on our clock, the first trip after the simulated clock ran
    a few days ahead (the demo at --speed 60 gets there in an hour) was refused."""

    async def scenario(site, command):
        outcomes = []
        for days in (0, 1, 3, 30, 400):
            site.clock.advance(days * DAY)
            outcomes.append((days, "trip", *await command(CommandKind.TRIP)))
            site.clock.advance(3600)
            outcomes.append((days, "close", *await command(CommandKind.CLOSE)))
        return outcomes

    for days, kind, result, supply in run(with_site(site_config(), scenario)):
        wanted = Supply.OFF if kind == "trip" else Supply.ON
        assert _done(result, supply, wanted), (days, kind, result)
        assert "our clock" not in result.message


def test_trip_and_close_keep_working_with_the_simulator_at_speed_3600():
    """One simulated hour per real second, the clock running: the relay window (10 simulated minutes) is
    about 170 ms of real time, and the commands are still accepted hour after hour."""

    async def scenario(site, command):
        outcomes = []
        start = site.clock.now()
        for n in range(4):
            kind = CommandKind.TRIP if n % 2 == 0 else CommandKind.CLOSE
            outcomes.append((kind, *await command(kind, f"c{n}")))
            await asyncio.sleep(0.5)  # half a simulated hour
        site.clock.advance(5 * DAY)
        outcomes.append((CommandKind.TRIP, *await command(CommandKind.TRIP, "late-trip")))
        outcomes.append((CommandKind.CLOSE, *await command(CommandKind.CLOSE, "late-close")))
        return outcomes, site.clock.now() - start

    outcomes, elapsed = run(with_site(site_config(speed=3600), scenario, frozen=False))
    assert elapsed > timedelta(days=5, hours=1)
    for kind, result, supply in outcomes:
        assert _done(result, supply, Supply.OFF if kind is CommandKind.TRIP else Supply.ON), (kind, result)


@pytest.mark.parametrize("offset_hours", [5, -5, 26, -26])
def test_meters_whose_clocks_are_hours_off_take_trip_and_close(offset_hours):
    config = site_config().with_meter(ELECTRIC, clock_offset=offset_hours * 3600.0)

    async def scenario(site, command):
        trip = await command(CommandKind.TRIP, "t")
        close = await command(CommandKind.CLOSE, "c")
        return trip, close

    (trip, after_trip), (close, after_close) = run(with_site(config, scenario))
    assert _done(trip, after_trip, Supply.OFF), trip
    assert _done(close, after_close, Supply.ON), close


def test_meters_keeping_local_time_take_trip_and_close():
    """Chinese meters keep Beijing time on the wire; the validity read from the meter is in its own zone."""
    config = site_config(meter_timezone="Asia/Shanghai")

    async def scenario(site, command):
        return await command(CommandKind.TRIP), await command(CommandKind.CLOSE)

    (trip, after_trip), (close, after_close) = run(with_site(config, scenario))
    assert _done(trip, after_trip, Supply.OFF) and _done(close, after_close, Supply.ON)


def test_the_validity_sent_is_the_meter_clock_plus_the_window():
    config = site_config().with_meter(ELECTRIC, clock_offset=-3 * 3600.0)

    async def scenario(site, command):
        result, _supply = await command(CommandKind.TRIP)
        meter = site.meter(ELECTRIC)
        relays = [
            dlt645.decode(exchange.request)
            for exchange in meter.log
            if isinstance(dlt645.decode(exchange.request), dlt645.RelayControl)
        ]
        return result, relays, meter.meter_local()

    result, [relay], meter_now = run(with_site(config, scenario, relay_window=timedelta(minutes=7)))
    assert result.status is CommandStatus.DONE
    assert relay.valid_until == meter_now.replace(microsecond=0) + timedelta(minutes=7)


def test_a_meter_that_cannot_tell_its_time_gets_our_clock_and_the_result_says_so():
    config = site_config().with_meter(ELECTRIC, lacks=("04000101", "04000102"))

    async def scenario(site, command):
        return await command(CommandKind.TRIP)

    result, supply = run(with_site(config, scenario))
    assert _done(result, supply, Supply.OFF)
    assert "the meter did not tell its time: validity counted on our clock" in result.message


def test_a_meter_known_to_lack_its_clock_is_not_asked_for_it():
    config = site_config().with_meter(ELECTRIC, lacks=("04000101", "04000102"))

    async def scenario(site, command):
        result = await command(CommandKind.TRIP)
        asked = [dlt645.decode(exchange.request) for exchange in site.meter(ELECTRIC).log]
        return result, asked

    (result, supply), asked = run(with_site(config, scenario, skip=("04000101",)))
    assert _done(result, supply, Supply.OFF)
    assert not [m for m in asked if isinstance(m, dlt645.ReadRequest) and m.di.startswith("040001")]
    assert "our clock" in result.message


def test_the_simulated_meter_clock_runs_at_the_simulator_speed_plus_its_offset():
    config = site_config(speed=60).with_meter(ELECTRIC, clock_offset=120.0)

    async def scenario():
        async with Site(config) as site:
            site.clock.freeze()
            meter = site.meter(ELECTRIC)
            before = (site.clock.now(), meter.meter_local())
            site.clock.advance(3600)
            return before, (site.clock.now(), meter.meter_local())

    (sim_0, meter_0), (sim_1, meter_1) = run(scenario())
    assert meter_0 - sim_0 == timedelta(seconds=120) == meter_1 - sim_1
    assert meter_1 - meter_0 == timedelta(hours=1)


def test_a_model_clock_timezone_must_be_a_time_zone():
    from prepaid_engine.catalog import get_model, validate_model
    from prepaid_engine.errors import ConfigError

    model = get_model("dlt645_2007_prepaid")
    zoned = dataclasses.replace(model, options=(*model.options, ("clock_timezone", "Asia/Shanghai")))
    assert validate_model(zoned) is zoned
    with pytest.raises(ConfigError, match="clock_timezone"):
        validate_model(dataclasses.replace(model, options=(*model.options, ("clock_timezone", "Mars/Base"))))


def test_our_clock_fallback_is_written_in_the_model_clock_timezone():
    """A meter keeping Beijing time that cannot tell it: our clock + the window, as Beijing wall time."""
    from prepaid_engine.adapters import adapter_for
    from prepaid_engine.adapters.base import CommandContext
    from prepaid_engine.catalog import get_model
    from prepaid_engine.types import MeterSpec, Protocol

    model = get_model("dlt645_2007_prepaid")
    model = dataclasses.replace(model, options=(*model.options, ("clock_timezone", "Asia/Shanghai")))
    meter = MeterSpec("m", "000000001101", model)
    now = datetime(2026, 3, 2, 16, 0, 30, tzinfo=UTC)
    plan = adapter_for(Protocol.DLT645_2007).command_plan(
        meter, MeterCommand("c", "m", CommandKind.TRIP), CommandContext(now=now)
    )
    [action], note = plan.actions_for(None, now)
    sent = dlt645.decode(action.request)
    assert sent.valid_until == datetime(2026, 3, 3, 0, 10, 30, tzinfo=UTC)  # 00:00:30 Beijing + 10 min
    assert "our clock" in note
    [action], note = plan.actions_for({"meter_clock": datetime(2030, 1, 1, 23, 55)}, now)
    assert dlt645.decode(action.request).valid_until == datetime(2030, 1, 2, 0, 5, tzinfo=UTC)
    assert note == ""
