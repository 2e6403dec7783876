"""The site map: which gateways, buses and meters a site has, as plain data and as JSON.

The simulator prints a site map when it starts (``python -m prepaid_engine.simulator``), the Odoo side imports
it to create its gateway and meter records, and tests and benchmarks turn it into the poller's input with
:meth:`SiteMap.gateway_specs`. The JSON mirrors :class:`~prepaid_engine.types.GatewaySpec`::

    {"version": 1, "name": "default", "seed": 1,
     "gateways": [{"key": "sim-tg-1", "name": "Building A transparent gateway", "host": "127.0.0.1",
                   "transport": "transparent", "timeout": 1.0,
                   "buses": [{"key": "1", "port": 16101, "baud": 9600,
                              "meters": [{"address": "000000001101", "model": "dlt645_2007_prepaid",
                                          "protocol": "dlt645_2007", "utility": "electricity",
                                          "meter_number": "000000001101", "ct_ratio": 1}]}]}]}

A meter may also carry ``"name"`` (a human label) and ``"customer_number"`` (DL/T 645, 12 digits); both are
optional and written only when set. Loading checks the whole document and raises
:class:`~prepaid_engine.errors.ConfigError` naming the first offending item.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .types import BusSpec, GatewaySpec, MeterModel, MeterSpec, Protocol, Transport, Utility

SITE_MAP_VERSION = 1

# Address shape per protocol: (number of decimal digits, or None for a Modbus unit id).
_ADDRESS_DIGITS = {
    Protocol.DLT645_2007: 12,
    Protocol.DLT645_1997: 12,
    Protocol.CJT188: 14,
    Protocol.MODBUS: None,
}
MODBUS_UNIT_MAX = 247  # Modbus unit ids 1..247 (0 is broadcast, 248..255 reserved)
MODBUS_CIRCUIT_MAX = 999  # circuits of a multi-circuit meter, as "unit/circuit"

# Which meter protocols each gateway transport can carry.
_TRANSPORT_PROTOCOLS = {
    Transport.MODBUS_TCP: frozenset({Protocol.MODBUS}),
    Transport.TRANSPARENT: frozenset(Protocol),
    Transport.SERIAL: frozenset(Protocol),
}


def _digits(text: str) -> bool:
    """ASCII decimal digits only (``str.isdecimal`` also takes other scripts' digits)."""
    return text.isascii() and text.isdecimal()


def check_address(protocol: Protocol | str, address: str) -> str:
    """Return ``address`` if it has the protocol's shape, else raise :class:`ConfigError`: the one home of
    the meter addressing rule (site maps, the Odoo meter records).

    DL/T 645: 12 decimal digits; CJ/T 188: 14 decimal digits (``kind="address.digits"``, ``digits``);
    Modbus: a unit id "1".."247", or "unit/circuit" for one circuit of a multi-circuit meter (circuit 1..999),
    without leading zeros (``kind="address.modbus"``, ``unit_max``, ``circuit_max``). Every error carries
    ``protocol`` and ``address`` too.
    """
    try:
        protocol = Protocol(protocol)
    except ValueError:
        raise ConfigError(
            f"unknown protocol {protocol!r}", kind="address.protocol", protocol=protocol, address=address
        ) from None
    digits = _ADDRESS_DIGITS[protocol]
    text = address if isinstance(address, str) else ""
    if digits is None:
        unit, slash, circuit = text.partition("/")
        parts = (unit, circuit) if slash else (unit,)
        limits = (MODBUS_UNIT_MAX, MODBUS_CIRCUIT_MAX)
        if not all(
            _digits(part) and part[0] != "0" and int(part) <= limit
            for part, limit in zip(parts, limits, strict=False)
        ):
            raise ConfigError(
                f"Modbus address must be a unit id 1..{MODBUS_UNIT_MAX} or unit/circuit, without leading"
                f" zeros, not {address!r}",
                kind="address.modbus",
                protocol=str(protocol),
                address=address,
                unit_max=MODBUS_UNIT_MAX,
                circuit_max=MODBUS_CIRCUIT_MAX,
            )
    elif len(text) != digits or not _digits(text):
        raise ConfigError(
            f"{protocol} address must be {digits} decimal digits, not {address!r}",
            kind="address.digits",
            protocol=str(protocol),
            address=address,
            digits=digits,
        )
    return address


@dataclass(frozen=True, slots=True)
class SiteMeter:
    """One meter of the site map. ``model`` is a meter model code (see ``catalog.builtin_models()``)."""

    address: str
    model: str
    protocol: Protocol
    utility: Utility
    meter_number: str = ""  # empty = the address
    ct_ratio: int = 1
    name: str = ""
    customer_number: str = ""

    def to_dict(self) -> dict:
        data = {
            "address": self.address,
            "model": self.model,
            "protocol": str(self.protocol),
            "utility": str(self.utility),
            "meter_number": self.meter_number or self.address,
            "ct_ratio": self.ct_ratio,
        }
        if self.name:
            data["name"] = self.name
        if self.customer_number:
            data["customer_number"] = self.customer_number
        return data


@dataclass(frozen=True, slots=True)
class SiteBus:
    """One bus of a gateway, reached on its own TCP ``port``."""

    key: str
    port: int
    baud: int = 9600
    meters: tuple[SiteMeter, ...] = ()

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "port": self.port,
            "baud": self.baud,
            "meters": [m.to_dict() for m in self.meters],
        }


@dataclass(frozen=True, slots=True)
class SiteGateway:
    key: str
    host: str
    transport: Transport
    buses: tuple[SiteBus, ...] = ()
    name: str = ""
    timeout: float = 1.0

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "name": self.name or self.key,
            "host": self.host,
            "transport": str(self.transport),
            "timeout": self.timeout,
            "buses": [b.to_dict() for b in self.buses],
        }


class _MeterTree:
    """What a site map and a simulator configuration share: gateways with buses with meters."""

    __slots__ = ()

    def meters(self) -> Iterator[tuple[Any, Any, Any]]:
        """Every meter with its gateway and bus, in document order."""
        for gateway in self.gateways:
            for bus in gateway.buses:
                for meter in bus.meters:
                    yield gateway, bus, meter

    @property
    def meter_count(self) -> int:
        return sum(len(bus.meters) for gateway in self.gateways for bus in gateway.buses)


def default_meter_key(gateway: SiteGateway, bus: SiteBus, meter: SiteMeter) -> str:
    """The default :attr:`MeterSpec.key`: ``"<gateway key>/<bus key>/<address>"``."""
    return f"{gateway.key}/{bus.key}/{meter.address}"


@dataclass(frozen=True, slots=True)
class SiteMap(_MeterTree):
    name: str = "default"
    seed: int = 1
    gateways: tuple[SiteGateway, ...] = ()
    version: int = SITE_MAP_VERSION

    def __post_init__(self) -> None:
        _check_site(self)

    # -- views (and ``meters()``, ``meter_count``) -----------------------------------------------------------
    def gateway(self, key: str) -> SiteGateway:
        for gateway in self.gateways:
            if gateway.key == key:
                return gateway
        raise ConfigError(f"no gateway {key!r} in site map {self.name!r}")

    # -- serialisation -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "name": self.name,
            "seed": self.seed,
            "gateways": [g.to_dict() for g in self.gateways],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    # -- poller input --------------------------------------------------------------------------------------
    def gateway_specs(
        self,
        models: Mapping[str, MeterModel] | Iterable[MeterModel] | None = None,
        key: Callable[[SiteGateway, SiteBus, SiteMeter], str] = default_meter_key,
    ) -> list[GatewaySpec]:
        """The poller's input for this site.

        ``models`` maps model codes to :class:`MeterModel` (a mapping, or an iterable of models); by default
        the catalog's built-in models. ``key(gateway, bus, meter)`` names each :class:`MeterSpec`; by default
        ``"<gateway key>/<bus key>/<address>"``. An unknown model code, or a model whose protocol differs
        from the meter's, raises :class:`ConfigError`.
        """
        table = _model_table(models)
        specs = []
        for gateway in self.gateways:
            buses = []
            for bus in gateway.buses:
                meters = []
                for meter in bus.meters:
                    model = model_of(table, meter, f"{gateway.key}/{bus.key}")
                    meters.append(
                        MeterSpec(
                            key=key(gateway, bus, meter),
                            address=meter.address,
                            model=model,
                            ct_ratio=meter.ct_ratio,
                            meter_number=meter.meter_number or meter.address,
                            customer_number=meter.customer_number,
                        )
                    )
                buses.append(BusSpec(key=bus.key, port=bus.port, meters=tuple(meters), baud=bus.baud))
            specs.append(
                GatewaySpec(
                    key=gateway.key,
                    host=gateway.host,
                    transport=gateway.transport,
                    buses=tuple(buses),
                    timeout=gateway.timeout,
                )
            )
        return specs


def _model_table(models: Mapping[str, MeterModel] | Iterable[MeterModel] | None) -> dict[str, MeterModel]:
    if models is None:
        from .catalog import builtin_models  # imported late: the catalog is data the site map does not need

        models = builtin_models()
    if isinstance(models, Mapping):
        return dict(models)
    return {model.code: model for model in models}


def model_of(table: Mapping[str, MeterModel], meter, where: str) -> MeterModel:
    """The model of ``meter`` (anything with ``address``, ``model`` and ``protocol``) on bus ``where``
    ("<gateway key>/<bus key>"); :class:`ConfigError` for an unknown code or a model of another protocol."""
    model = table.get(meter.model)
    if model is None:
        raise ConfigError(f"meter {meter.address} on {where}: unknown model {meter.model!r}")
    if model.protocol != meter.protocol:
        raise ConfigError(
            f"meter {meter.address}: model {model.code} speaks {model.protocol}, "
            f"the site map says {meter.protocol}"
        )
    return model


# -- loading ------------------------------------------------------------------------------------------


def load_site_map(source: str | bytes | Mapping) -> SiteMap:
    """Parse a site map from JSON text (or bytes) or from an already decoded dict."""
    data = json_object(source, "site map")
    version = data.get("version", SITE_MAP_VERSION)
    if version != SITE_MAP_VERSION:
        raise ConfigError(f"site map version {version!r} is not supported (expected {SITE_MAP_VERSION})")
    try:
        return SiteMap(
            name=str(data.get("name", "default")),
            seed=_int(data.get("seed", 1), "seed"),
            gateways=tuple(_gateway(g) for g in _list(data.get("gateways"), "gateways")),
            version=version,
        )
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"invalid site map: {exc!r}") from exc


def json_object(source: str | bytes | Mapping, what: str) -> Mapping:
    """``source`` as a JSON object: JSON text (or bytes) decoded, or an already decoded mapping as it is;
    :class:`ConfigError` naming ``what`` for text that is not JSON or a value that is not an object."""
    if isinstance(source, str | bytes | bytearray):
        try:
            data = json.loads(source)
        except ValueError as exc:
            raise ConfigError(f"{what} is not JSON: {exc}") from exc
    else:
        data = source
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be a JSON object")
    return data


def _gateway(data: Mapping) -> SiteGateway:
    key = _str(_required(data, "key", "gateway"), "gateway key")
    where = f"gateway {key}"
    try:
        transport = Transport(data.get("transport", "transparent"))
    except ValueError as exc:
        raise ConfigError(f"{where}: unknown transport {data.get('transport')!r}") from exc
    timeout = float(data.get("timeout", 1.0))
    if not timeout > 0:
        raise ConfigError(f"{where}: timeout must be positive")
    return SiteGateway(
        key=key,
        name=str(data.get("name") or key),
        host=_str(_required(data, "host", where), f"{where} host"),
        transport=transport,
        timeout=timeout,
        buses=tuple(_bus(b, where) for b in _list(data.get("buses"), f"{where} buses")),
    )


def _bus(data: Mapping, where: str) -> SiteBus:
    key = _str(_required(data, "key", f"{where} bus"), f"{where} bus key")
    where = f"{where} bus {key}"
    return SiteBus(
        key=key,
        port=_int(_required(data, "port", where), f"{where} port"),
        baud=_int(data.get("baud", 9600), f"{where} baud"),
        meters=tuple(_meter(m, where) for m in _list(data.get("meters"), f"{where} meters")),
    )


def _meter(data: Mapping, where: str) -> SiteMeter:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a meter must be an object")
    address = _str(_required(data, "address", f"{where} meter"), f"{where} meter address")
    where = f"{where} meter {address}"
    try:
        protocol = Protocol(_required(data, "protocol", where))
        utility = Utility(data.get("utility") or ("water" if protocol == Protocol.CJT188 else "electricity"))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return SiteMeter(
        address=address,
        model=_str(_required(data, "model", where), f"{where} model"),
        protocol=protocol,
        utility=utility,
        meter_number=str(data.get("meter_number") or address),
        ct_ratio=_int(data.get("ct_ratio", 1), f"{where} ct_ratio"),
        name=str(data.get("name") or ""),
        customer_number=str(data.get("customer_number") or ""),
    )


def _required(data: Mapping, name: str, where: str):
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected an object")
    if name not in data:
        raise ConfigError(f"{where}: missing {name!r}")
    return data[name]


def _list(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list")
    return list(value)


def _str(value, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ConfigError(f"{where} must be a non-empty string")
    return str(value)


def _int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where} must be an integer, not {value!r}")
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{where} must be an integer, not {value!r}") from exc


def _check_site(site: SiteMap) -> None:
    """Cross-checks: unique keys, unique host:port, address shapes, transports fit protocols."""
    endpoints: dict[tuple[str, int], str] = {}
    for gateway, bus, where in checked_buses(site.gateways):
        if not 0 < bus.port < 65536:
            raise ConfigError(f"{where}: port {bus.port} out of range")
        if not bus.baud > 0:
            raise ConfigError(f"{where}: baud must be positive")
        endpoint = (gateway.host, bus.port)
        if endpoint in endpoints:
            raise ConfigError(f"{where}: {gateway.host}:{bus.port} is already used by {endpoints[endpoint]}")
        endpoints[endpoint] = where
        for meter in checked_meters(bus.meters, where):
            if meter.protocol not in _TRANSPORT_PROTOCOLS[gateway.transport]:
                raise ConfigError(
                    f"{where}: a {gateway.transport} gateway cannot carry {meter.protocol} "
                    f"meter {meter.address}"
                )
            if meter.ct_ratio < 1:
                raise ConfigError(f"{where}: meter {meter.address} ct_ratio must be >= 1")


def checked_buses(gateways: Iterable) -> Iterator[tuple[Any, Any, str]]:
    """``(gateway, bus, "gateway G bus B")`` for every bus of ``gateways`` (site map or simulator config),
    each yielded once its gateway key and its bus key are known to be unique; :class:`ConfigError` if not."""
    gateway_keys: set[str] = set()
    for gateway in gateways:
        if gateway.key in gateway_keys:
            raise ConfigError(f"gateway key {gateway.key!r} is used twice")
        gateway_keys.add(gateway.key)
        bus_keys: set[str] = set()
        for bus in gateway.buses:
            where = f"gateway {gateway.key} bus {bus.key}"
            if bus.key in bus_keys:
                raise ConfigError(f"{where}: bus key used twice")
            bus_keys.add(bus.key)
            yield gateway, bus, where


def checked_meters(meters: Iterable, where: str) -> Iterator[Any]:
    """Every meter of one bus, each yielded once its address has its protocol's shape and is not a repeat."""
    addresses: set[str] = set()
    for meter in meters:
        check_address(meter.protocol, meter.address)
        if meter.address in addresses:
            raise ConfigError(f"{where}: meter address {meter.address} used twice")
        addresses.add(meter.address)
        yield meter
