"""Plain data that crosses the engine's boundary.

These frozen dataclasses are the whole contract between the engine and its callers (the Odoo addons, the
edge collector, the benchmarks): callers build :class:`GatewaySpec` / :class:`MeterSpec` /
:class:`MeterCommand` values, the poller returns :class:`PollResult` and :class:`CommandResult` values.
Nothing here does I/O. Energy and money are ``Decimal``; timestamps are timezone-aware UTC ``datetime``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .load.params import EventRecord, TripReason


class Utility(enum.StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"


class Protocol(enum.StrEnum):
    DLT645_2007 = "dlt645_2007"
    DLT645_1997 = "dlt645_1997"
    CJT188 = "cjt188"
    MODBUS = "modbus"


class Transport(enum.StrEnum):
    MODBUS_TCP = "modbus_tcp"  # the gateway converts Modbus-TCP (MBAP) to RTU; unit id = meter address
    TRANSPARENT = "transparent"  # raw serial bytes over TCP: DL/T 645, CJ/T 188, or Modbus RTU framing
    SERIAL = "serial"  # a local RS-485 port through pyserial


class Supply(enum.StrEnum):
    """What the tenant gets: ``on`` = relay closed / valve open, ``off`` = relay open / valve closed."""

    ON = "on"
    OFF = "off"
    FAULT = "fault"  # valve abnormal, relay state unknown after a failed move


class CommandKind(enum.StrEnum):
    TRIP = "trip"
    CLOSE = "close"
    KEEP_POWER_ON = "keep_power_on"
    KEEP_POWER_OFF = "keep_power_off"
    SET_PRICES = "set_prices"
    SET_LOAD_PARAMETERS = "set_load_parameters"
    RECHARGE = "recharge"
    VALVE_OPEN = "valve_open"
    VALVE_CLOSE = "valve_close"


class CommandStatus(enum.StrEnum):
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


class CommandOutcome(enum.StrEnum):
    """How a command ended, as data (:attr:`CommandResult.outcome`)."""

    CONFIRMED = "confirmed"  # done, and the meter's new state was read back
    DONE_UNCONFIRMED = "done_unconfirmed"  # done; the model has no read-back
    DUPLICATE = "duplicate"  # a recharge the meter had already applied (the purchase count we sent)
    REFUSED = "refused"  # the meter refused it (CommandResult.refusal: its error bits)
    NOT_CONFIRMED = "not_confirmed"  # acknowledged, but the read-back does not show the new state
    READBACK_FAILED = "readback_failed"  # acknowledged, the read-back failed (CommandResult.error)
    NO_ANSWER = "no_answer"  # the exchanges failed (CommandResult.error: timeout, link, checksum...)
    EXPIRED = "expired"  # its expiry passed before it could be sent (again)
    CYCLE_TIME = "cycle_time"  # the cycle ran out of time (CommandResult.attempts: sent or not)
    UNKNOWN_METER = "unknown_meter"
    UNSUPPORTED = "unsupported"  # the meter model cannot do it (CommandResult.error)


class ErrorKind(enum.StrEnum):
    TIMEOUT = "timeout"
    CHECKSUM = "checksum"
    FRAME = "frame"
    ADDRESS = "address"
    METER = "meter"
    LINK = "link"
    SECURITY = "security"
    UNSUPPORTED = "unsupported"
    CANCELLED = "cancelled"


# Names a meter model may map a value to; they are the optional fields of :class:`Reading`.
READING_FIELDS = (
    "total",
    "sharp",
    "peak",
    "flat",
    "valley",
    "voltage",
    "current",
    "power",
    "power_factor",
    "frequency",
    "supply",
    "balance",
    "purchase_count",
    "battery_low",
    "reverse_total",
    "cover_open_count",
    "magnetic_count",
)


@dataclass(frozen=True, slots=True)
class RegisterField:
    """One value in a Modbus register map."""

    name: str  # a READING_FIELDS name, or a model-specific name (e.g. "model_code", "ct_ratio")
    address: int  # protocol address (0-based)
    count: int = 2  # registers
    datatype: str = "uint32"  # uint16, int16, uint32, int32, float32
    scale: Decimal = Decimal(1)  # engineering value = raw x scale
    word_order: str = "big"
    table: str = "holding"  # "holding" (FC3) or "input" (FC4)


@dataclass(frozen=True, slots=True)
class RegisterWrite:
    """A block write (FC16) a Modbus meter model uses for a command."""

    address: int
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Capacity:
    """The most a meter can pass, from its nameplate (what :mod:`prepaid_engine.plausibility` judges a
    reading's step against).

    Electricity: ``max_current`` (A, the meter's maximum current Imax per phase at its own terminals, i.e.
    on the secondary side of a current transformer), ``voltage`` (V, nominal phase-to-neutral) and
    ``phases`` (1 or 3); a meter behind a CT passes ``ct_ratio`` times more. Water: ``max_flow`` (m3/h, the
    overload flow Q4 of the meter's size). Numbers are positive, finite and exact (``Decimal``).
    """

    max_current: Decimal | None = None
    voltage: Decimal | None = None
    phases: int | None = None
    max_flow: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("max_current", "voltage", "max_flow"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ConfigError(
                    f"capacity {name} must be a positive finite Decimal, not {value!r}",
                    kind="capacity.not_positive",
                    field=name,
                    value=value,
                )
        phases = self.phases
        if phases is not None and (isinstance(phases, bool) or phases not in (1, 2, 3)):
            raise ConfigError(
                f"capacity phases must be 1, 2 or 3, not {phases!r}", kind="capacity.phases", value=phases
            )

    def check(self, utility: Utility) -> Capacity:
        """Return this capacity if it is complete for ``utility`` (electricity: current, voltage and phases;
        water: flow, and nothing electric), else raise :class:`ConfigError` (``kind="capacity.fields"``)."""
        electric = (self.max_current, self.voltage, self.phases)
        if utility == Utility.WATER:
            complete = self.max_flow is not None and electric == (None, None, None)
        else:
            complete = None not in electric and self.max_flow is None
        if not complete:
            raise ConfigError(
                "an electricity meter's capacity gives max_current, voltage and phases; a water meter's gives"
                f" max_flow only: {self.to_dict()} for {utility}",
                kind="capacity.fields",
                utility=str(utility),
            )
        return self

    def rate(self, utility: Utility, ct_ratio: int = 1) -> Decimal:
        """Units an hour at most: kWh/h (kW) = A x V x phases x CT ratio / 1000 for electricity, m3/h for
        water (a CT ratio does not apply)."""
        self.check(utility)
        if utility == Utility.WATER:
            return self.max_flow  # type: ignore[return-value]
        power = self.max_current * self.voltage * self.phases * max(int(ct_ratio), 1)  # type: ignore[operator]
        return power.scaleb(-3)

    def to_dict(self) -> dict:
        data: dict = {}
        for name in ("max_current", "voltage", "max_flow"):
            value = getattr(self, name)
            if value is not None:
                data[name] = str(value)
        if self.phases is not None:
            data["phases"] = self.phases
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> Capacity:
        if not isinstance(data, Mapping):
            raise ConfigError(f"a capacity is an object, not {data!r}", kind="capacity.shape")
        unknown = set(data) - {"max_current", "voltage", "phases", "max_flow"}
        if unknown:
            raise ConfigError(f"unknown capacity fields {sorted(unknown)}", kind="capacity.shape")

        def number(name: str) -> Decimal | None:
            value = data.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ConfigError(f"capacity {name} is not a number: {value!r}", kind="capacity.shape")
            try:
                return Decimal(str(value))
            except ArithmeticError as exc:
                raise ConfigError(
                    f"capacity {name} is not a number: {value!r}", kind="capacity.shape"
                ) from exc

        phases = data.get("phases")
        if phases is not None and (isinstance(phases, bool) or not isinstance(phases, int)):
            raise ConfigError(f"capacity phases is not an integer: {phases!r}", kind="capacity.phases")
        return cls(number("max_current"), number("voltage"), phases, number("max_flow"))


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """Where a model keeps one settable or readable parameter (load control: power limit, malicious-load
    rule, automatic restore, trip reason, event records; names in :mod:`prepaid_engine.load.params`).

    DL/T 645: ``di``, whose format (length, decimals, unit) is the DI table's. Modbus: ``register`` (a
    :class:`RegisterField` whose ``name`` is the parameter's; engineering value = raw x scale). ``access``
    is ``"rw"`` or ``"r"``; ``uncertain`` marks a location no public document confirms, and ``note`` says
    where it comes from.
    """

    name: str
    di: str = ""
    register: RegisterField | None = None
    unit: str = ""
    access: str = "rw"
    uncertain: bool = False
    note: str = ""

    def to_dict(self) -> dict:
        data: dict = {"name": self.name}
        if self.di:
            data["di"] = self.di
        if self.register is not None:
            r = self.register
            data.update(
                address=r.address,
                count=r.count,
                datatype=r.datatype,
                scale=str(r.scale),
                word_order=r.word_order,
                table=r.table,
            )
        data.update(unit=self.unit, access=self.access, uncertain=self.uncertain)
        if self.note:
            data["note"] = self.note
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> ParameterSpec:
        name = str(data["name"])
        register = None
        if "address" in data:
            register = RegisterField(
                name=name,
                address=int(data["address"]),
                count=int(data.get("count", 1)),
                datatype=str(data.get("datatype", "uint16")),
                scale=Decimal(str(data.get("scale", "1"))),
                word_order=str(data.get("word_order", "big")),
                table=str(data.get("table", "holding")),
            )
        uncertain = data.get("uncertain", False)
        if not isinstance(uncertain, bool):
            raise ConfigError(f"parameter {name}: uncertain is true or false, not {uncertain!r}")
        return cls(
            name=name,
            di=str(data.get("di", "")).upper(),
            register=register,
            unit=str(data.get("unit", "")),
            access=str(data.get("access", "rw")),
            uncertain=uncertain,
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True, slots=True)
class MeterModel:
    """A meter model as data: what to read each cycle and how to command it.

    DL/T 645 and CJ/T 188 models list data identifiers (hex strings, most significant byte first as written
    in the standards, e.g. ``"0001FF00"``, ``"901F"``) in ``reads``. Modbus models list register fields in
    ``registers`` and the block writes for commands in ``writes``. ``options`` carries protocol options as
    strings: CJ/T 188 ``meter_type`` ("10" cold water) and ``di_order`` ("msb" or "lsb"), DL/T 645
    ``password_level``/``password``/``operator``. ``capacity`` is what the model can pass at most (see
    :class:`Capacity`); ``None`` for a model that does not say, judged by its utility's default.
    ``parameters`` locate its load-control parameters (:class:`ParameterSpec`); older model documents
    without them still load.
    """

    code: str
    name: str
    protocol: Protocol
    utility: Utility
    reads: tuple[str, ...] = ()
    registers: tuple[RegisterField, ...] = ()
    writes: tuple[tuple[CommandKind, RegisterWrite], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    capacity: Capacity | None = None
    parameters: tuple[ParameterSpec, ...] = ()  # load-control parameters (absent from the JSON when none)

    def option(self, name: str, default: str = "") -> str:
        return dict(self.options).get(name, default)

    def write_for(self, kind: CommandKind) -> RegisterWrite | None:
        return dict(self.writes).get(kind)

    def parameter(self, name: str) -> ParameterSpec | None:
        for spec in self.parameters:
            if spec.name == name:
                return spec
        return None

    def to_dict(self) -> dict:
        data = {
            "code": self.code,
            "name": self.name,
            "protocol": str(self.protocol),
            "utility": str(self.utility),
            "reads": list(self.reads),
            "registers": [
                {
                    "name": r.name,
                    "address": r.address,
                    "count": r.count,
                    "datatype": r.datatype,
                    "scale": str(r.scale),
                    "word_order": r.word_order,
                    "table": r.table,
                }
                for r in self.registers
            ],
            "writes": {
                str(kind): {"address": w.address, "values": list(w.values)} for kind, w in self.writes
            },
            "options": dict(self.options),
        }
        if self.capacity is not None:
            data["capacity"] = self.capacity.to_dict()
        if self.parameters:
            data["parameters"] = [p.to_dict() for p in self.parameters]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping) -> MeterModel:
        try:
            return cls(
                code=str(data["code"]),
                name=str(data.get("name") or data["code"]),
                protocol=Protocol(data["protocol"]),
                utility=Utility(data["utility"]),
                reads=tuple(str(di).upper() for di in data.get("reads", ())),
                registers=tuple(
                    RegisterField(
                        name=str(r["name"]),
                        address=int(r["address"]),
                        count=int(r.get("count", 2)),
                        datatype=str(r.get("datatype", "uint32")),
                        scale=Decimal(str(r.get("scale", "1"))),
                        word_order=str(r.get("word_order", "big")),
                        table=str(r.get("table", "holding")),
                    )
                    for r in data.get("registers", ())
                ),
                writes=tuple(
                    (CommandKind(kind), RegisterWrite(int(w["address"]), tuple(int(v) for v in w["values"])))
                    for kind, w in dict(data.get("writes", {})).items()
                ),
                options=tuple(sorted((str(k), str(v)) for k, v in dict(data.get("options", {})).items())),
                capacity=None if data.get("capacity") is None else Capacity.from_dict(data["capacity"]),
                parameters=tuple(ParameterSpec.from_dict(p) for p in data.get("parameters") or ()),
            )
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"invalid meter model definition: {exc!r}") from exc

    @classmethod
    def from_json(cls, text: str) -> MeterModel:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"meter model definition is not JSON: {exc}") from exc
        return cls.from_dict(data)


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """One meter as the poller needs it. ``key`` is the caller's opaque id (Odoo: the record id)."""

    key: str
    address: str  # DL/T 645: 12 digits; CJ/T 188: 14 digits; Modbus: unit id "1".."247"
    model: MeterModel
    ct_ratio: int = 1
    meter_number: str = ""  # key diversification factor; empty = the address
    customer_number: str = ""  # DL/T 645 customer number (recharge payload); empty = zeros
    # Identifiers the meter is known to lack (DL/T 645 / CJ/T 188 data identifiers, Modbus register field
    # names; from earlier polls' PollWarning.missing): the poller does not ask for them, and reads a block
    # it lacks as the block's single identifiers. Ignored when it would leave nothing to read.
    skip: frozenset[str] = frozenset()
    # Meter-side load events: None (the default) reads none. A count (the ``event_count`` the caller last
    # saw, 0 for none) makes a poll of a model holding ``trip_reason`` and ``event_count`` also read them,
    # and the event records written since (``Reading.load_events``); other models read nothing more.
    load_events_seen: int | None = None

    @property
    def protocol(self) -> Protocol:
        return self.model.protocol


@dataclass(frozen=True, slots=True)
class BusSpec:
    """One RS-485 bus behind a gateway. Each bus is reached on its own TCP port (or serial device)."""

    key: str
    port: int
    meters: tuple[MeterSpec, ...]
    baud: int = 9600
    device: str = ""  # serial device path, for Transport.SERIAL


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    key: str
    host: str
    transport: Transport
    buses: tuple[BusSpec, ...]
    timeout: float = 1.0  # seconds to wait for one reply
    retries: int = 1  # extra attempts per request after a timeout or garbled reply
    connect_timeout: float = 3.0


@dataclass(frozen=True, slots=True)
class Reading:
    """What one meter said in one cycle. Absent values are ``None``.

    ``total`` and the band registers are kWh after the CT ratio (electricity) or m3 (water).
    """

    meter_key: str
    read_at: datetime
    total: Decimal | None = None
    sharp: Decimal | None = None
    peak: Decimal | None = None
    flat: Decimal | None = None
    valley: Decimal | None = None
    voltage: Decimal | None = None
    current: Decimal | None = None
    power: Decimal | None = None  # kW
    power_factor: Decimal | None = None
    frequency: Decimal | None = None
    supply: Supply | None = None
    balance: Decimal | None = None  # money held by the meter (meter-side billing)
    purchase_count: int | None = None
    battery_low: bool | None = None
    # Tamper data (prepaid_engine.anomaly.tamper): reverse active energy (kWh), cover-open and magnetic-
    # interference event counts, where the meter's model reads them.
    reverse_total: Decimal | None = None
    cover_open_count: int | None = None
    magnetic_count: int | None = None
    # Meter-side load events (only for a MeterSpec with ``load_events_seen``, on a model that holds them):
    # the meter's last trip reason, its event count, and the event records since ``load_events_seen``
    # (newest first, at most ``load.params.EVENTS``; the meter's wall clock, naive). Not stored columns.
    trip_reason: TripReason | None = None
    load_event_count: int | None = None
    load_events: tuple[EventRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class PollError:
    gateway_key: str
    bus_key: str
    meter_key: str | None  # None: the gateway or bus itself failed
    kind: ErrorKind
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PollWarning:
    """A meter that was read, but lacks some identifiers of its model: it answered "no such data" for
    ``missing`` (DL/T 645 ERR bit 1, a CJ/T 188 abnormal reply to a read, Modbus exception 02 "illegal data
    address"). The rest of its reading was kept; pass ``missing`` back in ``MeterSpec.skip`` so that the
    next polls do not ask again."""

    gateway_key: str
    bus_key: str
    meter_key: str
    missing: tuple[str, ...]
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class FrameTrace:
    """One frame on the wire, kept when the poller runs with ``trace=True`` (communication log)."""

    gateway_key: str
    bus_key: str
    meter_key: str | None
    direction: str  # "tx" or "rx"
    data: bytes
    at: datetime
    summary: str = ""  # what the frame says, in one line (prepaid_engine.describe)


@dataclass(frozen=True, slots=True)
class BusCheck:
    """What a connection test (``Poller.test_connection``) found on one bus.

    ``connected``: the bus's TCP port (or serial device) opened within the gateway's connect timeout.
    ``answered``: the bus's first meter replied to one request (a refusal is an answer too); None when the
    bus has no meter to ask. ``message`` says what happened, with the link's or the meter's error.
    """

    gateway_key: str
    bus_key: str
    connected: bool
    answered: bool | None
    meter_key: str | None
    message: str


@dataclass(frozen=True, slots=True)
class GatewayState:
    key: str
    online: bool
    last_contact: datetime | None


@dataclass(slots=True)
class PollResult:
    started_at: datetime
    finished_at: datetime
    readings: list[Reading] = field(default_factory=list)
    errors: list[PollError] = field(default_factory=list)
    warnings: list[PollWarning] = field(default_factory=list)
    gateways: dict[str, GatewayState] = field(default_factory=dict)
    traces: list[FrameTrace] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MeterCommand:
    """A command for one meter. ``key`` is the caller's id (Odoo: the command record id)."""

    key: str
    meter_key: str
    kind: CommandKind
    prices: tuple[Decimal, ...] = ()  # SET_PRICES: sharp, peak, flat, valley (4 decimals)
    # SET_LOAD_PARAMETERS: (name, value) pairs, a mapping's items: settable load-control parameters and their
    # Python values (prepaid_engine.load.params: profile_parameters, parameters_from_data)
    parameters: tuple[tuple[str, Any], ...] = ()
    amount: Decimal | None = None  # RECHARGE: money, 2 decimals
    purchase_count: int | None = None  # RECHARGE: the count this recharge carries (previous + 1)
    # (a DL/T 645 relay command's own validity is the poller's relay window on the meter's clock)
    expires_at: datetime | None = None  # give up (EXPIRED) once past this
    attempts: int = 3


@dataclass(frozen=True, slots=True)
class CommandResult:
    key: str
    status: CommandStatus
    confirmed: bool  # the new state was read back from the meter
    attempts: int
    message: str  # what happened, in English, for the technical log
    at: datetime
    supply: Supply | None = None
    balance: Decimal | None = None
    purchase_count: int | None = None
    # What happened, for people (the addons say it in the user's language): a CommandOutcome, the error
    # kind of the last failed exchange, and the meter's error bit names when it refused.
    outcome: str = ""
    error: ErrorKind | None = None
    refusal: tuple[str, ...] = ()
