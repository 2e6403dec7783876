"""Site configuration for the simulator: gateways, buses, meters and the knobs of the simulation.

A :class:`SiteConfig` is plain frozen data. Build one with :func:`default_site` (the demo site the Odoo demo
data points at), :func:`generate_site` (big sites for benchmarks), :func:`load_config` (a JSON file: a site
map plus an optional ``"simulator"`` object of settings, see below), or :func:`config_from_args` (the CLI).

JSON file format: exactly the site map (:mod:`prepaid_engine.sitemap`), where each meter may also carry
``profile`` (a :data:`~prepaid_engine.simulator.profile.PROFILES` name), ``preamble`` (FE bytes before each
reply, 0-4), ``dead`` (never answers), ``billing`` (meter-side balance and self-trip at zero), ``latency``
(seconds, this meter's answer delay), ``balance`` and ``total`` (starting values, decimal strings), ``lacks``
(identifiers of its model it answers "no such data" for: DL/T 645 / CJ/T 188 data identifiers, Modbus register
field names), ``clock_offset`` (seconds its own clock runs ahead of simulated time; negative: behind) and
``appliances`` (appliance catalogue codes its tenants switch on and off, :mod:`.loadctl`), and
each gateway may carry ``dead``; plus a top-level ``"simulator"`` object with any of the :class:`SiteConfig`
settings: ``latency`` (seconds), ``jitter``, ``instant``, ``speed``, ``start`` (ISO 8601 with offset),
``timezone``, ``meter_timezone``, ``faults`` (:class:`FaultRates` as an object), ``master_key`` (hex),
``preamble``, ``tou`` (``[[minute, "band"], ...]``), ``prices`` (four decimal strings: sharp, peak, flat,
valley), ``initial_balance``, ``hoarding_limit``, ``log_size``, ``button``, ``auto_restore``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..errors import ConfigError
from ..sitemap import (
    SITE_MAP_VERSION,
    SiteBus,
    SiteGateway,
    SiteMap,
    SiteMeter,
    _MeterTree,
    checked_buses,
    checked_meters,
    json_object,
    load_site_map,
)
from ..types import Protocol, Transport, Utility
from .faults import FaultRates
from .profile import BANDS, DEFAULT_TOU, PROFILES

DEFAULT_MASTER_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
DEFAULT_LATENCY = 0.060  # seconds between the last request byte and the first reply byte
DEFAULT_PRICES = (Decimal("1.2000"), Decimal("0.9000"), Decimal("0.6000"), Decimal("0.3000"))
DEFAULT_BALANCE = Decimal("100.00")
DEFAULT_HOST = "127.0.0.1"

# The model a generated site uses for each protocol unless --model says otherwise.
DEFAULT_MODEL = {
    Protocol.DLT645_2007: "dlt645_2007_prepaid",
    Protocol.DLT645_1997: "dlt645_1997",
    Protocol.CJT188: "cjt188_water",
    Protocol.MODBUS: "acrel_ddsy1352",
}
# Transparent buses carry one framing family: meters of one family can share a bus.
WIRE_FAMILY = {
    Protocol.DLT645_2007: "dlt645",
    Protocol.DLT645_1997: "dlt645",
    Protocol.CJT188: "cjt188",
    Protocol.MODBUS: "modbus",
}
BUTTON_MODES = ("immediate", "manual")


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """One virtual meter. ``None`` settings take the site's default."""

    address: str
    model: str
    protocol: Protocol
    utility: Utility
    meter_number: str = ""  # empty = the address (normalised)
    ct_ratio: int = 1
    name: str = ""
    customer_number: str = ""
    profile: str = ""  # a PROFILES name; empty = "residential" for electricity, "water" for water
    preamble: int | None = None  # FE bytes before each reply; None = the site's setting
    latency: float | None = None  # seconds; None = the site's latency
    dead: bool = False  # never answers
    billing: bool | None = None  # meter-side balance; None = the model says (DL/T 645 remaining money)
    balance: Decimal | None = None  # starting meter-side balance; None = the site's initial_balance
    total: Decimal | None = None  # starting total register; None = drawn from the seed
    lacks: tuple[str, ...] = ()  # identifiers answered "no such data" (DIs; Modbus: register field names)
    clock_offset: float = 0.0  # seconds the meter's own clock is ahead of simulated time (drift)
    appliances: tuple[str, ...] = ()  # catalogue codes its tenants switch on a seeded schedule (.loadctl)

    def __post_init__(self) -> None:
        if not self.meter_number:
            object.__setattr__(self, "meter_number", self.address)

    @property
    def number(self) -> str:
        return self.meter_number

    @property
    def profile_name(self) -> str:
        return self.profile or ("water" if self.utility == Utility.WATER else "residential")


@dataclass(frozen=True, slots=True)
class BusConfig:
    """One bus. ``port`` 0 asks the OS for a free port when the site starts."""

    key: str
    port: int
    baud: int = 9600
    meters: tuple[MeterConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    key: str
    transport: Transport
    buses: tuple[BusConfig, ...] = ()
    name: str = ""
    host: str = DEFAULT_HOST
    timeout: float = 1.0  # what the site map tells the poller
    dead: bool = False  # accepts connections, never answers


@dataclass(frozen=True, slots=True)
class SiteConfig(_MeterTree):
    """A whole simulated site and the knobs of its simulation.

    Timing: each reply is written ``request bytes x byte time + latency (+ jitter) + reply bytes x byte
    time`` after the request arrived, with byte time = 11 bits / baud (8E1), one request at a time per bus.
    ``instant`` makes the byte time 0 (CPU benchmarks, fast tests); with ``latency`` 0 as well a reply is
    written as soon as the request is read.
    """

    name: str = "default"
    seed: int = 1
    gateways: tuple[GatewayConfig, ...] = ()
    latency: float = DEFAULT_LATENCY
    jitter: float = 0.0  # latency x (1 + jitter x u), u uniform in [-1, 1) from the bus's seeded RNG
    instant: bool = False
    speed: float = 1.0
    start: datetime | None = None  # simulated time at start; None = the wall clock's now
    timezone: str = "Asia/Shanghai"  # local time of the load profiles, TOU bands and water settlement day
    meter_timezone: str = "UTC"  # zone of the meters' own clocks on the wire (date/time, relay validity)
    faults: FaultRates = field(default_factory=FaultRates)
    master_key: bytes = DEFAULT_MASTER_KEY
    preamble: int | None = None  # FE bytes before replies; None = drawn per meter from the seed (0..4)
    tou: tuple[tuple[int, int], ...] = DEFAULT_TOU
    prices: tuple[Decimal, ...] = DEFAULT_PRICES  # sharp, peak, flat, valley (DL/T 645 tariffs 1..4)
    initial_balance: Decimal = DEFAULT_BALANCE
    hoarding_limit: Decimal | None = Decimal("99999.99")
    log_size: int = 16  # answered requests kept per meter
    button: str = "immediate"  # 1B "closing allowed": the tenant presses the button at once, or "manual"
    auto_restore: float = 300.0  # simulated seconds a 1D/1E trip lasts when the command gives no time

    def __post_init__(self) -> None:
        _check_config(self)

    def site_map(self, ports: Mapping[tuple[str, str], int] | None = None) -> SiteMap:
        """The site map of this configuration; ``ports`` maps (gateway key, bus key) to the bound port."""
        return SiteMap(name=self.name, seed=self.seed, gateways=self._site_gateways(ports or {}))

    def _site_gateways(self, ports: Mapping[tuple[str, str], int]) -> tuple[SiteGateway, ...]:
        """The gateways of :meth:`site_map`, unchecked (a site map checks them; ports 0 do not pass)."""
        return tuple(
            SiteGateway(
                key=g.key,
                name=g.name or g.key,
                host=g.host,
                transport=g.transport,
                timeout=g.timeout,
                buses=tuple(
                    SiteBus(
                        key=b.key,
                        port=ports.get((g.key, b.key), b.port),
                        baud=b.baud,
                        meters=tuple(_meter_site(m) for m in b.meters),
                    )
                    for b in g.buses
                ),
            )
            for g in self.gateways
        )

    def with_ports(self, base_port: int) -> SiteConfig:
        """The same site with its bus ports renumbered from ``base_port`` in site order (0: OS-chosen)."""
        counter = iter(range(base_port, base_port + 1_000_000))
        return replace(
            self,
            gateways=tuple(
                replace(g, buses=tuple(replace(b, port=next(counter) if base_port else 0) for b in g.buses))
                for g in self.gateways
            ),
        )

    def with_meter(self, key: str, **changes) -> SiteConfig:
        """The same site with the :class:`MeterConfig` fields ``changes`` set on meter ``key``
        ("gateway/bus/address"), e.g. ``lacks=("0001FF00",)``; :class:`ConfigError` for an unknown key."""
        found = False

        def meter(g: GatewayConfig, b: BusConfig, m: MeterConfig) -> MeterConfig:
            nonlocal found
            if f"{g.key}/{b.key}/{m.address}" != key:
                return m
            found = True
            return replace(m, **changes)

        site = replace(
            self,
            gateways=tuple(
                replace(
                    g,
                    buses=tuple(replace(b, meters=tuple(meter(g, b, m) for m in b.meters)) for b in g.buses),
                )
                for g in self.gateways
            ),
        )
        if not found:
            raise ConfigError(f"the site has no meter {key!r}")
        return site

    def with_host(self, host: str) -> SiteConfig:
        return replace(self, gateways=tuple(replace(g, host=host) for g in self.gateways))


# -- the default site: a contract with the Odoo demo data -------------------------------------------------


def default_site(**settings) -> SiteConfig:
    """The demo site (a contract with the Odoo demo data; do not change it lightly).

    * ``sim-tg-1`` (transparent, 127.0.0.1): bus "1" on port 16101 at 9600 baud with 24 DL/T 645-2007
      prepaid electricity meters 000000001101..1108, 1201..1208, 1301..1308 (Building A, floors 1-3, units
      01-08); bus "2" on port 16102 at 2400 baud with 24 CJ/T 188 cold-water meters 00000000001101.. likewise.
    * ``sim-mb-1`` (Modbus-TCP, 127.0.0.1): bus "1" on port 16201 with two Acrel DDSY1352 meters, unit ids 1
      (lobby lighting) and 2 (water pump).

    Meter numbers equal addresses. ``settings`` override :class:`SiteConfig` fields (seed, latency, ...).
    """

    def building(digits: int, model: str, protocol: Protocol, utility: Utility, what: str):
        """One meter per unit of floors 1-3, units 01-08: address "1FUU" zero-filled to ``digits``."""
        return tuple(
            MeterConfig(
                address=f"1{floor}{unit:02d}".zfill(digits),
                model=model,
                protocol=protocol,
                utility=utility,
                name=f"Building A {floor}-{unit:02d} {what}",
            )
            for floor in (1, 2, 3)
            for unit in range(1, 9)
        )

    electricity = building(
        12, "dlt645_2007_prepaid", Protocol.DLT645_2007, Utility.ELECTRICITY, "electricity"
    )
    water = building(14, "cjt188_water", Protocol.CJT188, Utility.WATER, "cold water")
    common = (
        MeterConfig(
            address="1",
            model="acrel_ddsy1352",
            protocol=Protocol.MODBUS,
            utility=Utility.ELECTRICITY,
            name="Building A lobby lighting",
            profile="lighting",
        ),
        MeterConfig(
            address="2",
            model="acrel_ddsy1352",
            protocol=Protocol.MODBUS,
            utility=Utility.ELECTRICITY,
            name="Building A water pump",
            profile="pump",
        ),
    )
    gateways = (
        GatewayConfig(
            key="sim-tg-1",
            name="Building A transparent gateway",
            transport=Transport.TRANSPARENT,
            buses=(
                BusConfig(key="1", port=16101, baud=9600, meters=electricity),
                BusConfig(key="2", port=16102, baud=2400, meters=water),
            ),
        ),
        GatewayConfig(
            key="sim-mb-1",
            name="Building A Modbus gateway (common areas)",
            transport=Transport.MODBUS_TCP,
            buses=(BusConfig(key="1", port=16201, baud=9600, meters=common),),
        ),
    )
    return SiteConfig(**{"name": "default", "seed": 1, "gateways": gateways, **settings})


# -- generated sites ----------------------------------------------------------------------------------------


def generated_address(protocol: Protocol, gateway: int, bus: int, meter: int) -> str:
    """Address of meter ``meter`` (1-based) on bus ``bus`` of gateway ``gateway``, unique across the site.

    DL/T 645: ``GGGGGBBMMMMM`` (12 digits); CJ/T 188: ``GGGGGGBBMMMMMM`` (14 digits); Modbus: the meter's
    index on its bus (unit id).
    """
    if protocol == Protocol.MODBUS:
        return str(meter)
    if protocol == Protocol.CJT188:
        return f"{gateway:06d}{bus:02d}{meter:06d}"
    return f"{gateway:05d}{bus:02d}{meter:05d}"


def generate_site(
    gateways: int,
    buses: int,
    meters: int,
    *,
    protocol: Protocol | str = Protocol.DLT645_2007,
    model: str = "",
    base_port: int = 17000,
    baud: int | None = None,
    transport: Transport | str | None = None,
    host: str = DEFAULT_HOST,
    name: str = "generated",
    **settings,
) -> SiteConfig:
    """A site of ``gateways`` x ``buses`` buses with ``meters`` meters each (all of one protocol and model).

    Bus *b* of gateway *g* (both 0-based) listens on ``base_port + g x buses + b`` (``base_port`` 0: ports
    chosen by the OS at start). Baud defaults to 9600 (2400 for CJ/T 188); replies carry 4 FE bytes unless
    ``preamble`` says otherwise. Modbus meters go behind
    Modbus-TCP gateways unless ``transport`` says "transparent" (RTU over TCP); at most 247 per bus.
    """
    protocol = Protocol(protocol)
    if gateways < 1 or buses < 1 or meters < 1:
        raise ConfigError("a generated site needs at least one gateway, one bus and one meter")
    if protocol == Protocol.MODBUS and meters > 247:
        raise ConfigError("a Modbus bus holds at most 247 meters (unit ids 1..247)")
    model = model or DEFAULT_MODEL[protocol]
    utility = _model_utility(model, protocol)
    if transport is None:
        transport = Transport.MODBUS_TCP if protocol == Protocol.MODBUS else Transport.TRANSPARENT
    transport = Transport(transport)
    baud = baud or (2400 if protocol == Protocol.CJT188 else 9600)
    gateway_configs = []
    for g in range(gateways):
        bus_configs = []
        for b in range(buses):
            bus_configs.append(
                BusConfig(
                    key=str(b + 1),
                    port=base_port + g * buses + b if base_port else 0,
                    baud=baud,
                    meters=tuple(
                        MeterConfig(
                            address=generated_address(protocol, g + 1, b + 1, m + 1),
                            model=model,
                            protocol=protocol,
                            utility=utility,
                        )
                        for m in range(meters)
                    ),
                )
            )
        gateway_configs.append(
            GatewayConfig(
                key=f"gen-{g + 1}",
                name=f"Generated gateway {g + 1}",
                transport=transport,
                host=host,
                buses=tuple(bus_configs),
            )
        )
    # Fixed FE preambles keep every read of a generated site the same length (benchmarks compute floors).
    settings.setdefault("preamble", 4)
    return SiteConfig(**{"name": name, "gateways": tuple(gateway_configs), **settings})


def _model_utility(code: str, protocol: Protocol) -> Utility:
    from ..catalog import get_model

    model = get_model(code)
    if model.protocol != protocol:
        raise ConfigError(f"model {code} speaks {model.protocol}, not {protocol}")
    return model.utility


# -- JSON ----------------------------------------------------------------------------------------------------


_DECIMAL_SETTINGS = ("initial_balance", "hoarding_limit")
_FLOAT_SETTINGS = ("latency", "jitter", "speed", "auto_restore")
_INT_SETTINGS = ("log_size",)
_STR_SETTINGS = ("timezone", "meter_timezone", "button")


def load_config(source: str | bytes | Path | Mapping) -> SiteConfig:
    """A site configuration from a JSON file path, JSON text, or a decoded dict (see the module doc)."""
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        try:
            source = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read site configuration {source}: {exc}") from exc
    data = json_object(source, "site configuration")
    site_map = load_site_map({k: v for k, v in data.items() if k != "simulator"} | {"gateways": []})
    try:
        gateways = tuple(_gateway_config(g) for g in data.get("gateways") or ())
        settings = _settings(dict(data.get("simulator") or {}))
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ConfigError(f"invalid site configuration: {exc!r}") from exc
    return SiteConfig(name=site_map.name, seed=site_map.seed, gateways=gateways, **settings)


def _gateway_config(data: Mapping) -> GatewayConfig:
    from ..sitemap import _bus, _gateway  # the site map's parser checks the shared fields

    parsed = _gateway({**data, "buses": []})
    buses = []
    for bus_data in data.get("buses") or ():
        bus = _bus({**bus_data, "meters": []}, f"gateway {parsed.key}")
        meters = tuple(_meter_config(m, parsed.transport) for m in bus_data.get("meters") or ())
        buses.append(BusConfig(key=bus.key, port=bus.port, baud=bus.baud, meters=meters))
    return GatewayConfig(
        key=parsed.key,
        name=parsed.name,
        host=parsed.host,
        transport=parsed.transport,
        timeout=parsed.timeout,
        buses=tuple(buses),
        dead=bool(data.get("dead", False)),
    )


def _meter_config(data: Mapping, transport: Transport) -> MeterConfig:
    from ..sitemap import _meter

    meter = _meter(data, "meter")
    return MeterConfig(
        address=meter.address,
        model=meter.model,
        protocol=meter.protocol,
        utility=meter.utility,
        meter_number=meter.meter_number,
        ct_ratio=meter.ct_ratio,
        name=meter.name,
        customer_number=meter.customer_number,
        profile=str(data.get("profile") or ""),
        preamble=None if data.get("preamble") is None else int(data["preamble"]),
        latency=None if data.get("latency") is None else float(data["latency"]),
        dead=bool(data.get("dead", False)),
        billing=None if data.get("billing") is None else bool(data["billing"]),
        balance=_decimal(data.get("balance"), "balance"),
        total=_decimal(data.get("total"), "total"),
        lacks=tuple(str(name) for name in data.get("lacks") or ()),
        clock_offset=float(data.get("clock_offset") or 0.0),
        appliances=tuple(str(code) for code in data.get("appliances") or ()),
    )


def _decimal(value, what: str) -> Decimal | None:
    if value is None:
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ConfigError(f"{what} must be a decimal number, not {value!r}") from exc
    if not result.is_finite():
        raise ConfigError(f"{what} must be finite")
    return result


def _settings(data: dict) -> dict:
    known = {f.name for f in dataclasses.fields(SiteConfig)} - {"name", "seed", "gateways"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown simulator settings: {sorted(unknown)}")
    out: dict = {}
    for name, value in data.items():
        if name in _FLOAT_SETTINGS:
            out[name] = float(value)
        elif name in _INT_SETTINGS:
            out[name] = int(value)
        elif name in _STR_SETTINGS:
            out[name] = str(value)
        elif name in _DECIMAL_SETTINGS:
            out[name] = _decimal(value, name)
        elif name == "instant":
            out[name] = bool(value)
        elif name == "preamble":
            out[name] = None if value is None else int(value)
        elif name == "start":
            out[name] = None if value is None else _datetime(value)
        elif name == "faults":
            out[name] = FaultRates.from_dict(dict(value))
        elif name == "master_key":
            out[name] = parse_master_key(str(value))
        elif name == "prices":
            out[name] = tuple(_decimal(v, "price") for v in value)
        elif name == "tou":
            out[name] = tuple((int(minute), _band(band)) for minute, band in value)
    return out


def _band(value) -> int:
    if isinstance(value, int) and value in range(4):
        return value
    try:
        return BANDS.index(str(value))
    except ValueError as exc:
        raise ConfigError(f"unknown band {value!r}; bands are {', '.join(BANDS)}") from exc


def _datetime(value) -> datetime:
    try:
        result = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"start must be an ISO 8601 time, not {value!r}") from exc
    if result.tzinfo is None:
        raise ConfigError("start must carry a UTC offset")
    return result


def config_from_overrides(config: SiteConfig, **overrides) -> SiteConfig:
    """``config`` with the given settings replaced; ``None`` values leave a setting alone. ``start`` may be
    ISO 8601 text and ``master_key`` hex text (as the CLI passes them)."""
    changes = {name: value for name, value in overrides.items() if value is not None}
    if isinstance(changes.get("start"), str):
        changes["start"] = _datetime(changes["start"])
    if isinstance(changes.get("master_key"), str):
        changes["master_key"] = parse_master_key(changes["master_key"])
    unknown = set(changes) - {f.name for f in dataclasses.fields(SiteConfig)}
    if unknown:
        raise ConfigError(f"unknown site settings: {sorted(unknown)}")
    return replace(config, **changes)


def parse_master_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigError(f"master key must be hex, not {text!r}") from exc
    if len(key) not in (16, 24):
        raise ConfigError(f"master key must be 16 or 24 bytes, not {len(key)}")
    return key


def config_to_dict(config: SiteConfig) -> dict:
    """The JSON shape :func:`load_config` reads (site map plus the ``simulator`` settings)."""
    if all(b.port for _, b, _ in config.meters()):
        data = config.site_map().to_dict()
    else:  # OS-chosen ports (0) do not make a valid site map; write the same structure unchecked
        gateways = [g.to_dict() for g in config._site_gateways({})]
        data = {"version": SITE_MAP_VERSION, "name": config.name, "seed": config.seed, "gateways": gateways}
    for g_data, g in zip(data["gateways"], config.gateways, strict=True):
        if g.dead:
            g_data["dead"] = True
        for b_data, b in zip(g_data["buses"], g.buses, strict=True):
            for m_data, m in zip(b_data["meters"], b.meters, strict=True):
                m_data.update(_meter_extras(m))
    data["simulator"] = {
        "latency": config.latency,
        "jitter": config.jitter,
        "instant": config.instant,
        "speed": config.speed,
        "start": config.start.isoformat() if config.start else None,
        "timezone": config.timezone,
        "meter_timezone": config.meter_timezone,
        "faults": config.faults.to_dict(),
        "master_key": config.master_key.hex().upper(),
        "preamble": config.preamble,
        "tou": [[minute, BANDS[band]] for minute, band in config.tou],
        "prices": [str(p) for p in config.prices],
        "initial_balance": str(config.initial_balance),
        "hoarding_limit": None if config.hoarding_limit is None else str(config.hoarding_limit),
        "log_size": config.log_size,
        "button": config.button,
        "auto_restore": config.auto_restore,
    }
    return data


def _meter_site(m: MeterConfig) -> SiteMeter:
    return SiteMeter(
        m.address, m.model, m.protocol, m.utility, m.number, m.ct_ratio, m.name, m.customer_number
    )


def _meter_extras(m: MeterConfig) -> dict:
    extras: dict = {}
    if m.profile:
        extras["profile"] = m.profile
    for name in ("preamble", "latency", "billing"):
        if getattr(m, name) is not None:
            extras[name] = getattr(m, name)
    if m.dead:
        extras["dead"] = True
    for name in ("balance", "total"):
        if getattr(m, name) is not None:
            extras[name] = str(getattr(m, name))
    if m.lacks:
        extras["lacks"] = list(m.lacks)
    if m.clock_offset:
        extras["clock_offset"] = m.clock_offset
    if m.appliances:
        extras["appliances"] = list(m.appliances)
    return extras


# -- checks ------------------------------------------------------------------------------------------------


def _check_config(config: SiteConfig) -> None:
    if config.latency < 0 or config.jitter < 0 or config.jitter > 1:
        raise ConfigError("latency must be >= 0 and jitter within 0..1")
    if not config.speed > 0:
        raise ConfigError("speed must be positive")
    if len(config.master_key) not in (16, 24):
        raise ConfigError("the master key is 16 or 24 bytes")
    if config.preamble is not None and not 0 <= config.preamble <= 4:
        raise ConfigError("preamble must be 0..4 FE bytes")
    if len(config.prices) != 4 or any(p < 0 for p in config.prices):
        raise ConfigError("prices are four non-negative decimals (sharp, peak, flat, valley)")
    if config.button not in BUTTON_MODES:
        raise ConfigError(f"button must be one of {BUTTON_MODES}")
    if config.log_size < 0 or config.auto_restore < 0:
        raise ConfigError("log_size and auto_restore must be >= 0")
    if config.start is not None and config.start.tzinfo is None:
        raise ConfigError("start must be timezone-aware")
    endpoints: set[tuple[str, int]] = set()
    for gateway, bus, where in checked_buses(config.gateways):
        if not 0 <= bus.port < 65536 or bus.baud <= 0:
            raise ConfigError(f"{where}: port must be 0..65535 and baud positive")
        if bus.port:
            if (gateway.host, bus.port) in endpoints:
                raise ConfigError(f"{where}: {gateway.host}:{bus.port} is used twice")
            endpoints.add((gateway.host, bus.port))
        families = {WIRE_FAMILY[m.protocol] for m in bus.meters}
        if len(families) > 1:
            raise ConfigError(f"{where}: one bus carries one framing ({', '.join(sorted(families))})")
        if gateway.transport == Transport.MODBUS_TCP and families - {"modbus"}:
            raise ConfigError(f"{where}: a Modbus-TCP gateway carries Modbus meters only")
        if gateway.transport == Transport.SERIAL:
            raise ConfigError(f"{where}: the simulator serves TCP gateways only, not serial ones")
        for meter in checked_meters(bus.meters, where):
            if meter.profile and meter.profile not in PROFILES:
                raise ConfigError(f"meter {meter.address}: unknown profile {meter.profile!r}")
            if meter.preamble is not None and not 0 <= meter.preamble <= 4:
                raise ConfigError(f"meter {meter.address}: preamble must be 0..4")
            if meter.ct_ratio < 1:
                raise ConfigError(f"meter {meter.address}: ct_ratio must be >= 1")
            if meter.appliances:
                from ..load.appliances import builtin_appliances

                unknown = set(meter.appliances) - set(builtin_appliances())
                if unknown or meter.utility == Utility.WATER:
                    raise ConfigError(
                        f"meter {meter.address}: appliances are catalogue codes on an electricity meter"
                        f" ({', '.join(sorted(unknown)) or 'water meter'})"
                    )
