"""``Poller.test_connection``: one request per bus, an answer within seconds (issue 9: Test Connection)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

from prepaid_engine.poller import Poller
from prepaid_engine.simulator import Site, default_site
from prepaid_engine.types import BusSpec, GatewaySpec, Transport


def run(coro):
    return asyncio.run(coro)


def _config():
    return default_site(latency=0, instant=True).with_ports(0)


async def _checks(config, change=None, **gateway_changes):
    async with Site(config) as site:
        site.clock.freeze()
        if change is not None:
            await change(site)
        results = {}
        for gateway in site.site_map().gateway_specs():
            gateway = dataclasses.replace(gateway, timeout=0.3, connect_timeout=1.0, **gateway_changes)
            results[gateway.key] = await Poller(trace=True).test_connection(gateway)
        requests = site.counters["requests"]
        return results, requests


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_bus_of_the_demo_site_connects_and_its_first_meter_answers():
    results, requests = run(_checks(_config()))
    transparent = results["sim-tg-1"]
    assert [(c.bus_key, c.connected, c.answered) for c in transparent] == [
        ("1", True, True),
        ("2", True, True),
    ]
    assert transparent[0].meter_key == "sim-tg-1/1/000000001101"
    assert [(c.connected, c.answered) for c in results["sim-mb-1"]] == [(True, True)]
    assert requests == 3  # one request per bus, nothing more


def test_a_dead_first_meter_shows_as_connected_without_an_answer():
    async def kill(site):
        site.meter("sim-tg-1/1/000000001101").dead = True

    results, _requests = run(_checks(_config(), kill))
    bus_1, bus_2 = results["sim-tg-1"]
    assert (bus_1.connected, bus_1.answered) == (True, False) and "timeout" in bus_1.message
    assert (bus_2.connected, bus_2.answered) == (True, True)


def test_a_gateway_that_refuses_connections_is_reported_within_the_connect_timeout():
    async def refuse(site):
        await site.kill_gateway("sim-tg-1", "refused")

    started = time.monotonic()
    results, _requests = run(_checks(_config(), refuse))
    assert time.monotonic() - started < 5
    assert [(c.connected, c.answered) for c in results["sim-tg-1"]] == [(False, None), (False, None)]
    assert all("onnect" in c.message for c in results["sim-tg-1"]), results["sim-tg-1"]
    assert [(c.connected, c.answered) for c in results["sim-mb-1"]] == [(True, True)]


def test_a_silent_gateway_answers_nothing_within_its_timeouts():
    async def silence(site):
        await site.kill_gateway("sim-tg-1", "silent")

    started = time.monotonic()
    results, _requests = run(_checks(_config(), silence))
    assert time.monotonic() - started < 5
    assert [(c.connected, c.answered) for c in results["sim-tg-1"]] == [(True, False), (True, False)]


def test_a_closed_port_and_a_bus_without_meters():
    gateway = GatewaySpec(
        "g",
        "127.0.0.1",
        Transport.TRANSPARENT,
        (BusSpec("closed", _closed_port(), ()),),
        timeout=0.3,
        connect_timeout=1.0,
    )
    [closed] = Poller().test_connection_sync(gateway)
    assert (closed.bus_key, closed.connected, closed.answered, closed.meter_key) == (
        "closed",
        False,
        None,
        None,
    )
    assert f"127.0.0.1:{gateway.buses[0].port}" in closed.message and "onnect" in closed.message

    async def empty_bus():
        async with Site(_config()) as site:
            port = site.site_map().gateway_specs()[0].buses[0].port
            spec = dataclasses.replace(gateway, buses=(BusSpec("empty", port, ()),))
            return await Poller().test_connection(spec)

    [empty] = run(empty_bus())
    assert (empty.connected, empty.answered) == (True, None) and "no meter" in empty.message


def test_a_modbus_gateway_on_a_closed_port():
    gateway = GatewaySpec(
        "m", "127.0.0.1", Transport.MODBUS_TCP, (BusSpec("1", _closed_port(), ()),), connect_timeout=1.0
    )
    [check] = Poller().test_connection_sync(gateway)
    assert (check.connected, check.answered) == (False, None)
