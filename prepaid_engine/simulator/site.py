"""A whole simulated site: meters, gateways and clock, in-process (``Site``) or in a thread (``SiteThread``).

Tests and the Odoo side run the simulator inside their own process::

    site = Site(default_site(latency=0, instant=True).with_ports(0))
    await site.start()
    specs = site.site_map().gateway_specs()          # the poller's input, with the ports actually bound
    site.meter("000000001101").total                 # the truth, advanced to the simulated now
    site.clock.freeze(); site.clock.advance(900)     # move simulated time
    site.set_faults(FaultRates(timeout=0.1))
    await site.stop()
    data = dump_state(site)                          # the truth to save (prepaid_engine.simulator.state)
    site = Site(config, state=data)                  # ... and restored: meters and clock go on from there

or, from synchronous code (Odoo tests), ``SiteThread(config)``: ``start()`` returns the site map once every
port listens, ``call(fn)`` runs ``fn(site)`` on the simulator's loop and returns its result, ``stop()``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import ConfigError
from ..sitemap import SiteMap, _model_table, model_of
from ..types import MeterModel, Protocol, Transport
from .clock import SimClock
from .config import WIRE_FAMILY, SiteConfig
from .faults import FaultInjector, FaultRates
from .gateways import BusServer, MbapWire, RtuWire, Wire
from .meters import MeterEnv, SimMeter
from .profile import Calendar, stable_seed, unit
from .state import StateLoad, load_state


def _meter_classes() -> dict[Protocol, type[SimMeter]]:
    from . import meters

    names = {
        Protocol.MODBUS: "ModbusMeter",
        Protocol.DLT645_2007: "Dlt645Meter",
        Protocol.DLT645_1997: "Dlt1997Meter",
        Protocol.CJT188: "CjtMeter",
    }
    return {protocol: getattr(meters, name) for protocol, name in names.items() if hasattr(meters, name)}


def _wire(transport: Transport, family: str | None, meters: list[SimMeter]) -> Wire:
    if family == "modbus" or (family is None and transport == Transport.MODBUS_TCP):
        return MbapWire(meters) if transport == Transport.MODBUS_TCP else RtuWire(meters)
    from .gateways import CjtWire, DltWire

    return CjtWire(meters) if family == "cjt188" else DltWire(meters)


class GatewayServer:
    """A gateway and its buses. ``state``: "up", "silent" (accepts, never answers) or "refused" (closed)."""

    def __init__(self, key: str, host: str, buses: list[BusServer]):
        self.key = key
        self.host = host
        self.buses = buses
        self.state = "up"

    def bus(self, key: str) -> BusServer:
        for bus in self.buses:
            if bus.key == key:
                return bus
        raise ConfigError(f"gateway {self.key} has no bus {key!r}")

    def set_state(self, state: str) -> None:
        """Take ``state`` before the site starts (a restored state, a configured dead gateway): "silent"
        buses never answer; "refused" ones stop listening once the site has bound their ports."""
        if state not in ("up", "silent", "refused"):
            raise ConfigError(f"a gateway is 'up', 'silent' or 'refused', not {state!r}")
        for bus in self.buses:
            bus.silent = state != "up"
        self.state = state


class Site:
    """A simulated site (see the module doc). Build it from a :class:`SiteConfig`; ``models`` defaults to the
    catalogue's built-in models; ``clock`` defaults to a :class:`SimClock` at ``config.start`` and
    ``config.speed``; ``state`` (a :func:`~.state.dump_state` document) restores the meters, the gateways'
    states and the clock's time (:class:`~.state.StateError` for a document that does not fit;
    :attr:`restored` says what was restored)."""

    def __init__(
        self,
        config: SiteConfig,
        *,
        models: Mapping[str, MeterModel] | None = None,
        clock: SimClock | None = None,
        state: Mapping | None = None,
    ):
        models = _model_table(models)
        self.config = config
        self.clock = clock or SimClock(config.start, config.speed)
        self.calendar = Calendar(config.timezone, config.tou)
        self.env = MeterEnv(self.clock, self.calendar, config)
        self.counters: collections.Counter = collections.Counter()
        self.gateways: dict[str, GatewayServer] = {}
        self._meters: dict[str, SimMeter] = {}
        self._by_address: dict[str, list[tuple[str, SimMeter]]] = collections.defaultdict(list)
        classes = _meter_classes()
        for gateway_cfg in config.gateways:
            buses = []
            for bus_cfg in gateway_cfg.buses:
                meters = []
                for meter_cfg in bus_cfg.meters:
                    model = model_of(models, meter_cfg, f"{gateway_cfg.key}/{bus_cfg.key}")
                    cls = classes.get(meter_cfg.protocol)
                    if cls is None:
                        raise ConfigError(f"{meter_cfg.protocol} meters cannot be simulated yet")
                    meter = cls(meter_cfg, model, self.env)
                    if config.faults.dead_meters and unit(stable_seed(config.seed, "dead", meter.address)) < (
                        config.faults.dead_meters
                    ):
                        meter.dead = True
                    meters.append(meter)
                    key = f"{gateway_cfg.key}/{bus_cfg.key}/{meter.address}"
                    self._meters[key] = meter
                    self._by_address[meter.address].append((key, meter))
                families = {WIRE_FAMILY[m.protocol] for m in bus_cfg.meters}
                wire = _wire(gateway_cfg.transport, families.pop() if families else None, meters)
                rng = random.Random(stable_seed(config.seed, "bus", gateway_cfg.key, bus_cfg.key))
                buses.append(
                    BusServer(
                        gateway_cfg.key,
                        bus_cfg.key,
                        bus_cfg.port,
                        bus_cfg.baud,
                        wire,
                        FaultInjector(config.faults, rng),
                        instant=config.instant,
                        jitter=config.jitter,
                        counters=self.counters,
                    )
                )
            gateway = GatewayServer(gateway_cfg.key, gateway_cfg.host, buses)
            if gateway_cfg.dead:
                gateway.set_state("silent")
            self.gateways[gateway_cfg.key] = gateway
        self.started = False
        self.restored: StateLoad | None = None  # what restoring ``state`` did
        if state is not None:
            self.restored = load_state(self, state)

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> SiteMap:
        """Listen on every bus port; returns the site map with the ports actually bound."""
        try:
            for gateway in self.gateways.values():
                for bus in gateway.buses:
                    await bus.start(gateway.host)
                if gateway.state == "refused":  # restored so: its ports are known, and closed
                    for bus in gateway.buses:
                        await bus.stop()
        except OSError:
            await self.stop()
            raise
        self.started = True
        return self.site_map()

    async def stop(self) -> None:
        for gateway in self.gateways.values():
            for bus in gateway.buses:
                await bus.stop()
        self.started = False

    async def __aenter__(self) -> Site:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- views ----------------------------------------------------------------------------------------------
    def site_map(self) -> SiteMap:
        ports = {(g.key, b.key): b.port for g in self.gateways.values() for b in g.buses}
        return self.config.site_map(ports)

    def meter(self, address: str) -> SimMeter:
        """A meter by address (unique across the site) or by ``"<gateway>/<bus>/<address>"``."""
        return self.find(address)[1]

    def find(self, address: str) -> tuple[str, SimMeter]:
        """(``"<gateway>/<bus>/<address>"``, meter) of a meter named as :meth:`meter` takes it."""
        meter = self._meters.get(address)
        if meter is not None:
            return address, meter
        found = self._by_address.get(address, [])
        if len(found) == 1:
            return found[0]
        if not found:
            raise ConfigError(f"no meter {address!r} in site {self.config.name!r}")
        raise ConfigError(f"address {address!r} is used on several buses: use '<gateway>/<bus>/{address}'")

    def meters(self) -> Iterator[tuple[str, SimMeter]]:
        """(``"<gateway>/<bus>/<address>"``, meter) for every meter (the site map's default meter keys)."""
        return iter(self._meters.items())

    def bus(self, gateway: str, bus: str) -> BusServer:
        return self.gateway(gateway).bus(bus)

    def gateway(self, key: str) -> GatewayServer:
        try:
            return self.gateways[key]
        except KeyError:
            raise ConfigError(f"no gateway {key!r}") from None

    # -- faults ---------------------------------------------------------------------------------------------
    def set_faults(self, rates: FaultRates) -> None:
        """New per-request fault rates for every bus (``dead_meters`` only counts at construction)."""
        for gateway in self.gateways.values():
            for bus in gateway.buses:
                bus.faults.set_rates(rates)

    async def kill_gateway(self, key: str, mode: str = "silent") -> None:
        """Make a gateway dead. ``"silent"``: it accepts connections and never answers (clients time out);
        ``"refused"``: its ports stop listening and open connections are dropped (clients get refused)."""
        gateway = self.gateway(key)
        if mode not in ("silent", "refused"):
            raise ConfigError(f"a dead gateway is 'silent' or 'refused', not {mode!r}")
        for bus in gateway.buses:
            bus.silent = True
            bus.queue.clear()
            if mode == "refused":
                await bus.stop()
        gateway.state = mode

    async def revive_gateway(self, key: str) -> None:
        gateway = self.gateway(key)
        for bus in gateway.buses:
            bus.silent = False
            bus.busy = False
            if bus.server is None and self.started:
                await bus.start(gateway.host)
        gateway.state = "up"


class SiteThread:
    """A :class:`Site` running in a background thread with its own event loop (for synchronous callers)."""

    def __init__(self, config: SiteConfig, **site_kwargs: Any):
        self.config = config
        self._site_kwargs = site_kwargs
        self.site: Site | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    def start(self, timeout: float = 30.0) -> SiteMap:
        """Start the thread; returns the site map once every port listens (raises what start raised)."""
        if self._thread is not None:
            raise ConfigError("this SiteThread was already started")
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="prepaid-simulator", daemon=True
        )
        self._thread.start()
        return ready.result(timeout)

    def _run(self, ready: concurrent.futures.Future) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: concurrent.futures.Future) -> None:
        self._stopped = asyncio.Event()
        try:
            self.site = Site(self.config, **self._site_kwargs)
            site_map = await self.site.start()
        except BaseException as exc:  # handed to the caller of start(), which raises it
            ready.set_exception(exc)
            return
        ready.set_result(site_map)
        await self._stopped.wait()
        await self.site.stop()

    def call(self, fn: Callable[[Site], Any], timeout: float = 30.0) -> Any:
        """Run ``fn(site)`` on the simulator's loop and return its result (awaited if it is a coroutine)."""
        if self._loop is None or self.site is None:
            raise ConfigError("the simulator thread is not running")

        async def run():
            result = fn(self.site)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> SiteThread:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
