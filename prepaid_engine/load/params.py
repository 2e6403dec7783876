"""Load-control parameters of a meter model, as data, and their value codecs (both directions).

Each parameter is located by a :class:`~prepaid_engine.types.ParameterSpec`: a DL/T 645-2007 data
identifier (format from :data:`~prepaid_engine.codecs.dlt645_di.DI_TABLE`) or a Modbus register field. The
built-in models' encodings ship in ``data/load_parameters.json`` (by model code, :func:`builtin_parameters`),
beside the model files and not in them, so the model JSON that the Odoo data records copy stays as it was; a
custom model may carry its own in its JSON (``"parameters"``), which win (:func:`model_parameters`).

The parameters and the Python values they carry (access rw unless it says r):

* ``power_limit``: ``Decimal`` kW (0: no limit); ``power_limit_mode``: :class:`~.classify.LimitMode`
  (wire 0 alarm, 1 trip); ``malicious_mode``: :class:`~.classify.MaliciousMode` (0 off, 1 alarm, 2 trip);
  ``pf_threshold``: ``Decimal`` X.XXX;
* ``range_N_low`` / ``range_N_high``: ``Decimal`` kW, N = 1..6 (0 / 0: the range is unused);
* ``restore_delay``: ``int`` seconds; ``restore_count``: ``int`` automatic restores per day;
* ``trip_reason`` (r): :class:`TripReason` of the last trip; ``restores_today`` (r): ``int``;
  ``event_count`` (r): ``int`` load events recorded so far;
* ``event_N`` (r): :class:`EventRecord` or None (an empty slot), N = 1..10, 1 the latest (DL/T 645 only).

``encode_parameter(model, name, value)`` gives the bytes (DL/T 645: the value after the DI, as a write
carries it and a read reply answers it) or the register words (Modbus); ``decode_parameter`` reverses it.
:func:`profile_parameters` turns a :class:`~.classify.LoadProfile` and a :class:`~.restore.RestorePolicy`
into the values to write, :func:`profile_from_parameters` reads them back.

Trip reason codes (:class:`TripReason`) and the event record layout are our choice (no public document was
found for malicious-load meters): every DL/T 645 identifier here is marked uncertain in the DI table, and the
built-in models say so per parameter.

:func:`read_plan` / :func:`write_steps` build the exchanges (the adapters' step types: DL/T 645 frames or
Modbus block reads and FC16 writes), for a caller that owns a link: the poller's link (the adapters' plan of
a ``SET_LOAD_PARAMETERS`` command, confirmed by :func:`same_values` on the read-back) or a test's.
:func:`parameters_to_data` / :func:`parameters_from_data` (and their ``_json`` forms) carry the values as
JSON-able data (a command queue stores them so), and :func:`unsettable` says which of them a model cannot
hold.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..codecs import dlt645_di
from ..errors import ConfigError, FrameError
from ..types import MeterModel, ParameterSpec, Protocol
from .classify import Action, Classification, LimitMode, LoadEvent, LoadProfile, MaliciousMode, PowerRange
from .restore import RestorePolicy

RANGES = dlt645_di.LOAD_RANGES
EVENTS = dlt645_di.LOAD_EVENTS
_ZERO = Decimal(0)


class TripReason(enum.IntEnum):
    """Why a meter opened its relay (the code a meter reports for its last trip and in its event records)."""

    NONE = 0
    MALICIOUS_LOAD = 1
    OVER_POWER = 2
    OVER_CURRENT = 3
    BALANCE = 4
    REMOTE = 5


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One load event a meter recorded: when (the meter's own wall clock, naive), why, and the total power
    then (kW, 4 decimals)."""

    at: datetime
    reason: TripReason
    power_kw: Decimal

    def to_digits(self) -> str:
        if self.at.tzinfo is not None:
            raise ConfigError("an event record's time is the meter's wall clock (naive)", kind="param.value")
        if not 2000 <= self.at.year <= 2099:
            raise ConfigError(f"an event record's year is 2000..2099, not {self.at.year}", kind="param.value")
        power = Decimal(self.power_kw).scaleb(4)
        if power != power.to_integral_value() or not 0 <= power < 10**6:
            raise ConfigError(f"an event's power is 0..99.9999 kW, not {self.power_kw}", kind="param.value")
        return f"{int(power):06d}{int(self.reason):02d}{self.at:%y%m%d%H%M%S}"

    @classmethod
    def from_digits(cls, digits: str) -> EventRecord | None:
        if len(digits) != dlt645_di.EVENT_RECORD_DIGITS or not digits.isdigit():
            raise FrameError(f"an event record is {dlt645_di.EVENT_RECORD_DIGITS} digits, not {digits!r}")
        if not int(digits):
            return None
        try:
            reason = TripReason(int(digits[6:8]))
            y, mo, d, h, mi, se = (int(digits[i : i + 2]) for i in range(8, 20, 2))
            at = datetime(2000 + y, mo, d, h, mi, se)
        except ValueError as exc:
            raise FrameError(f"event record {digits}: {exc}") from exc
        return cls(at, reason, Decimal(int(digits[:6])).scaleb(-4))


def _enum_codec(enum_type: type[enum.Enum], codes: Sequence[enum.Enum]):
    def encode(value: Any) -> int:
        member = enum_type(value)
        return codes.index(member)

    def decode(code: int) -> Any:
        if not 0 <= code < len(codes):
            raise FrameError(f"{enum_type.__name__} code {code} is not one of 0..{len(codes) - 1}")
        return codes[code]

    return encode, decode


def _same(value: Any) -> Any:
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"a count >= 0, not {value!r}", kind="param.value")
    return value


def _kw(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ConfigError(f"kW as a Decimal, not {value!r}", kind="param.value")
    return Decimal(value)


def _reason(value: Any) -> int:
    return int(TripReason(value))


def _record_encode(value: EventRecord | None) -> str:
    return "0" * dlt645_di.EVENT_RECORD_DIGITS if value is None else value.to_digits()


_LIMIT = _enum_codec(LimitMode, (LimitMode.ALARM, LimitMode.TRIP))
_MALICIOUS = _enum_codec(MaliciousMode, (MaliciousMode.OFF, MaliciousMode.ALARM, MaliciousMode.TRIP))


def _enum_data(enum_type: type[enum.Enum]) -> Callable[[Any], Any]:
    def load(value: Any) -> Any:
        try:
            return enum_type(value)
        except ValueError as exc:
            raise ConfigError(
                f"{enum_type.__name__}: {value!r} is not one of its names", kind="param.value"
            ) from exc

    return load


def _kw_data(value: Any) -> Decimal:
    if isinstance(value, float):
        raise ConfigError(f"kW as a decimal string, not the float {value!r}", kind="param.value")
    try:
        number = _kw(value)
    except ArithmeticError as exc:
        raise ConfigError(f"kW as a decimal string, not {value!r}", kind="param.value") from exc
    if not number.is_finite():
        raise ConfigError(f"kW as a decimal string, not {value!r}", kind="param.value")
    return number


@dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter's meaning: its Python value <-> the codec's value (Decimal, int or digit string), and
    its Python value from JSON data (``from_data``: settable ones; :func:`parameters_from_data`)."""

    name: str
    to_wire: Callable[[Any], Any]
    from_wire: Callable[[Any], Any]
    access: str = "rw"
    from_data: Callable[[Any], Any] = _same


def _catalogue() -> dict[str, Parameter]:
    items = [
        Parameter("power_limit", _kw, _same, from_data=_kw_data),
        Parameter("power_limit_mode", *_LIMIT, from_data=_enum_data(LimitMode)),
        Parameter("malicious_mode", *_MALICIOUS, from_data=_enum_data(MaliciousMode)),
        Parameter("pf_threshold", _kw, _same, from_data=_kw_data),
        Parameter("restore_delay", _int, _same, from_data=_int),
        Parameter("restore_count", _int, _same, from_data=_int),
        Parameter("trip_reason", _reason, TripReason, "r"),
        Parameter("restores_today", _int, _same, "r"),
        Parameter("event_count", _int, _same, "r"),
    ]
    for n in range(1, RANGES + 1):
        items += [
            Parameter(f"range_{n}_low", _kw, _same, from_data=_kw_data),
            Parameter(f"range_{n}_high", _kw, _same, from_data=_kw_data),
        ]
    items += [
        Parameter(f"event_{n}", _record_encode, EventRecord.from_digits, "r") for n in range(1, EVENTS + 1)
    ]
    return {p.name: p for p in items}


PARAMETERS: dict[str, Parameter] = _catalogue()

# The DL/T 645-2007 identifiers of the built-in models (one home: the model JSON files are written from it).
DLT645_IDENTIFIERS: dict[str, str] = {
    "power_limit": "04000E01",
    "power_limit_mode": "04A10001",
    "malicious_mode": "04A10002",
    "pf_threshold": "04A10003",
    "restore_delay": "04A10004",
    "restore_count": "04A10005",
    "trip_reason": "04A10010",
    "restores_today": "04A10011",
    "event_count": "04A11000",
    **{f"range_{n}_low": f"04A101{n:02X}" for n in range(1, RANGES + 1)},
    **{f"range_{n}_high": f"04A102{n:02X}" for n in range(1, RANGES + 1)},
    **{f"event_{n}": f"04A110{n:02X}" for n in range(1, EVENTS + 1)},
}
UNCERTAIN_NOTE = (
    "Our choice in an identifier range no public document assigns: vendors of meters that detect malicious"
    " loads use their own identifiers; map the real one here."
)
POWER_LIMIT_NOTE = (
    "04000E01 is the forward active power upper limit of DL/T 645-2007's parameter table as vendor tables"
    " reproduce it (not checked against the standard's text); whether exceeding it trips is vendor behaviour."
)


def validate_parameters(model: MeterModel) -> None:
    """Raise :class:`ConfigError` unless ``model``'s parameters are known names, unique, and located the way
    its protocol can (a DL/T 645 DI in the DI table, not a block; a Modbus register field of a known
    datatype); a read-only parameter stays read-only."""
    from ..codecs.modbus import DATATYPES

    seen: set[str] = set()
    for spec in model.parameters:
        where = f"model {model.code}: parameter {spec.name!r}"
        meaning = PARAMETERS.get(spec.name)
        if meaning is None:
            raise ConfigError(f"{where} is unknown; known: {', '.join(PARAMETERS)}", kind="param.unknown")
        if spec.name in seen:
            raise ConfigError(f"{where} is defined twice", kind="param.duplicate")
        seen.add(spec.name)
        if spec.access not in ("r", "rw") or (meaning.access == "r" and spec.access != "r"):
            raise ConfigError(f"{where}: access is {meaning.access!r} at most, not {spec.access!r}")
        if model.protocol is Protocol.DLT645_2007:
            item = dlt645_di.DI_TABLE.get(spec.di)
            if item is None or item.kind is dlt645_di.Kind.BLOCK or spec.register is not None:
                raise ConfigError(
                    f"{where}: needs a single DL/T 645-2007 identifier of the DI table", kind="param.di"
                )
            if (
                spec.name.startswith("event_")
                and spec.name != "event_count"
                and item.kind is not dlt645_di.Kind.DIGITS
            ):
                raise ConfigError(f"{where}: an event record is a digit-string identifier", kind="param.di")
        elif model.protocol is Protocol.MODBUS:
            r = spec.register
            if r is None or spec.di or r.datatype not in DATATYPES or r.count != DATATYPES[r.datatype].count:
                raise ConfigError(
                    f"{where}: needs a register field (address, datatype, count)", kind="param.register"
                )
            if spec.name.startswith("event_") and spec.name != "event_count":
                raise ConfigError(f"{where}: Modbus maps carry no event records here", kind="param.register")
            if r.table not in ("holding", "input") or not 0 <= r.address <= 0xFFFF - r.count:
                raise ConfigError(f"{where}: register out of range", kind="param.register")
        else:
            raise ConfigError(
                f"{where}: {model.protocol} models carry no load-control parameters", kind="param.protocol"
            )


@functools.cache
def _builtin_parameters() -> dict[str, tuple[ParameterSpec, ...]]:
    from ..catalog import builtin_models

    entry = resources.files("prepaid_engine").joinpath("data", "load_parameters.json")
    data = json.loads(entry.read_text(encoding="utf-8"))
    if (
        not isinstance(data, Mapping)
        or data.get("version") != 1
        or not isinstance(data.get("models"), Mapping)
    ):
        raise ConfigError("built-in load_parameters.json: expected {'version': 1, 'models': {...}}")
    models = builtin_models()
    found = {}
    for code, entries in data["models"].items():
        if code not in models:
            raise ConfigError(f"built-in load_parameters.json: no built-in model {code!r}")
        specs = tuple(ParameterSpec.from_dict(e) for e in entries)
        validate_parameters(dataclasses.replace(models[code], parameters=specs))
        found[code] = specs
    return found


def builtin_parameters() -> dict[str, tuple[ParameterSpec, ...]]:
    """The shipped parameter encodings (``data/load_parameters.json``), by built-in model code. They live
    beside the model files, not in them, so the models' JSON (which the Odoo data records copy) is
    unchanged."""
    return dict(_builtin_parameters())


def model_parameters(model: MeterModel) -> tuple[ParameterSpec, ...]:
    """``model``'s parameters: its own (``MeterModel.parameters``) or else the shipped ones of its code."""
    return model.parameters or _builtin_parameters().get(model.code, ())


def with_parameters(model: MeterModel) -> MeterModel:
    """``model`` carrying :func:`model_parameters` in its ``parameters`` (a custom model to store as JSON)."""
    return model if model.parameters else dataclasses.replace(model, parameters=model_parameters(model))


def parameter_spec(model: MeterModel, name: str) -> ParameterSpec:
    spec = next((p for p in model_parameters(model) if p.name == name), None)
    if spec is None:
        raise ConfigError(f"model {model.code} has no parameter {name!r}", kind="param.missing", name=name)
    return spec


def encode_parameter(model: MeterModel, name: str, value: Any) -> bytes | tuple[int, ...]:
    """``value`` of parameter ``name`` as ``model`` keeps it: DL/T 645 value bytes or Modbus words."""
    spec = parameter_spec(model, name)
    wire = PARAMETERS[name].to_wire(value)
    if spec.register is None:
        return dlt645_di.encode_value(spec.di, wire)
    from ..codecs.modbus import _pack_raw

    r = spec.register
    raw = Decimal(wire) / r.scale
    if raw != raw.to_integral_value():
        raise ConfigError(
            f"{name}={value} is not a whole number of {r.scale} {spec.unit}", kind="param.value"
        )
    return _pack_raw(r, int(raw))


def decode_parameter(model: MeterModel, name: str, raw: bytes | Sequence[int]) -> Any:
    """The value of parameter ``name`` from what ``model``'s meter sent (inverse of :func:`encode_parameter`);
    :class:`FrameError` for bytes that do not fit."""
    spec = parameter_spec(model, name)
    if spec.register is None:
        wire = dlt645_di.decode_value(spec.di, bytes(raw))
    else:
        from ..codecs.modbus import _raw_value

        r = spec.register
        if len(raw) != r.count:
            raise FrameError(f"{name}: {len(raw)} registers, expected {r.count}")
        wire = _raw_value(r, tuple(raw)) * r.scale
        if name in (
            "power_limit_mode",
            "malicious_mode",
            "trip_reason",
            "restore_delay",
            "restore_count",
            "restores_today",
            "event_count",
        ):
            wire = int(wire)
    return PARAMETERS[name].from_wire(wire)


def profile_parameters(profile: LoadProfile, policy: RestorePolicy | None = None) -> dict[str, Any]:
    """The settable parameter values that make a meter enforce ``profile`` (and restore by ``policy``):
    unused ranges are 0..0, no power limit is 0 kW, automatic restore off is a count of 0."""
    values: dict[str, Any] = {
        "power_limit": profile.power_limit_kw or _ZERO,
        "power_limit_mode": profile.limit_mode,
        "malicious_mode": profile.malicious_mode,
        "pf_threshold": profile.pf_threshold,
    }
    for n in range(1, RANGES + 1):
        r = profile.ranges[n - 1] if n <= len(profile.ranges) else None
        values[f"range_{n}_low"] = Decimal(r.low_w).scaleb(-3) if r else _ZERO
        values[f"range_{n}_high"] = Decimal(r.high_w).scaleb(-3) if r else _ZERO
    if policy is not None:
        delay = policy.delay
        values["restore_delay"] = 0 if delay is None else int(delay.total_seconds())
        values["restore_count"] = 0 if delay is None else policy.max_per_day
    return values


def profile_from_parameters(values: Mapping[str, Any]) -> tuple[LoadProfile, RestorePolicy]:
    """The profile and restore policy a meter's parameter values say (whitelist: empty; the meter has no
    signatures, the platform does)."""
    ranges = []
    for n in range(1, RANGES + 1):
        low, high = values.get(f"range_{n}_low", _ZERO), values.get(f"range_{n}_high", _ZERO)
        if low or high:
            ranges.append(PowerRange(int(low * 1000), int(high * 1000)))
    limit = values.get("power_limit") or None
    profile = LoadProfile(
        power_limit_kw=limit,
        limit_mode=values.get("power_limit_mode", LimitMode.TRIP),
        malicious_mode=values.get("malicious_mode", MaliciousMode.OFF),
        ranges=tuple(ranges),
        pf_threshold=values.get("pf_threshold", Decimal("0.90")),
    )
    count = values.get("restore_count", 0)
    policy = RestorePolicy(timedelta(seconds=values.get("restore_delay", 0)) if count else None, count)
    return profile, policy


# -- values as data ---------------------------------------------------------------------------------------


# What :func:`profile_parameters` sets with a restore policy: the parameters a meter enforcing a profile
# holds.
PROFILE_PARAMETERS: tuple[str, ...] = (
    "power_limit",
    "power_limit_mode",
    "malicious_mode",
    "pf_threshold",
    *(f"range_{n}_{end}" for n in range(1, RANGES + 1) for end in ("low", "high")),
    "restore_delay",
    "restore_count",
)


def enforces_profiles(model: MeterModel) -> bool:
    """Whether ``model``'s meters can hold a whole load profile (:data:`PROFILE_PARAMETERS`) and so enforce it
    themselves; the platform enforces it for the others (from their polled power)."""
    return not unsettable(model, PROFILE_PARAMETERS)


LOAD_STATUS: tuple[str, ...] = ("trip_reason", "event_count")


def reads_load_events(model: MeterModel) -> bool:
    """Whether a poll can follow ``model``'s meter-side load events: it holds ``trip_reason`` and
    ``event_count`` (:data:`LOAD_STATUS`)."""
    names = {spec.name for spec in model_parameters(model)}
    return all(name in names for name in LOAD_STATUS)


def new_event_names(model: MeterModel, seen: int, count: int | None) -> tuple[str, ...]:
    """The event record parameters (``event_1`` the latest) holding the events a meter recorded since its
    count was ``seen``, now ``count``: at most :data:`EVENTS`, only those ``model`` holds. A count below
    ``seen`` (the meter was reset or replaced) counts from 0."""
    if count is None or count == seen:
        return ()
    new = count - seen if count > seen else count
    held = {spec.name for spec in model_parameters(model)}
    return tuple(name for n in range(1, min(new, EVENTS) + 1) if (name := f"event_{n}") in held)


def status_record(
    model: MeterModel, at: datetime, reason: TripReason, count_moved: bool
) -> EventRecord | None:
    """For a model that holds no event records (Modbus maps): the one record a poll can tell of a moved
    event count, from the trip reason the meter reports (``at``: the poll's aware time, as the meter's wall
    clock, :func:`clock_zone`; the power then unknown: 0). None when the count did not move, the meter
    reports no trip, or the model holds records (they are read instead)."""
    held = {spec.name for spec in model_parameters(model)}
    if not count_moved or reason is None or reason is TripReason.NONE or "event_1" in held:
        return None
    wall = at.astimezone(clock_zone(model)).replace(tzinfo=None, microsecond=0)
    return EventRecord(wall, TripReason(reason), _ZERO)


def clock_zone(model: MeterModel) -> ZoneInfo:
    """The zone of a meter's own wall clock (model option ``clock_timezone``, default UTC: the codecs' and
    the relay validity's zone), for an event record's time."""
    name = model.option("clock_timezone", "UTC") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"model {model.code}: unknown clock_timezone {name!r}") from exc


def event_time(model: MeterModel, record: EventRecord) -> datetime:
    """``record``'s time (the meter's wall clock) as an aware UTC datetime (:func:`clock_zone`)."""
    return record.at.replace(tzinfo=clock_zone(model)).astimezone(UTC)


# What a meter's event record is as a load event: the reasons that are not load (balance, remote) are none.
EVENT_CLASSIFICATION: dict[TripReason, Classification] = {
    TripReason.MALICIOUS_LOAD: Classification.MALICIOUS,
    TripReason.OVER_POWER: Classification.OVERLOAD,
    TripReason.OVER_CURRENT: Classification.OVERLOAD,
}


def meter_load_event(model: MeterModel, record: EventRecord) -> LoadEvent | None:
    """The :class:`~.classify.LoadEvent` of a meter's event record (the meter tripped itself: action trip,
    the time in UTC by :func:`event_time`, ``level_w`` the total power then, the step unknown: 0), or None
    for a trip that is not for the load (balance, remote)."""
    classification = EVENT_CLASSIFICATION.get(record.reason)
    if classification is None:
        return None
    return LoadEvent(
        at=event_time(model, record),
        step_w=_ZERO,
        level_w=Decimal(record.power_kw).scaleb(3),
        power_factor=None,
        classification=classification,
        appliance=None,
        action=Action.TRIP,
    )


def unsettable(model: MeterModel, names: Iterable[str]) -> tuple[str, ...]:
    """The parameters of ``names`` that ``model`` cannot be set to (it has no such parameter, or only reads
    it), in order: ``()`` for a model whose meters hold them all (they enforce them themselves)."""
    specs = {spec.name: spec for spec in model_parameters(model)}
    return tuple(n for n in dict.fromkeys(names) if n not in specs or specs[n].access != "rw")


def _settable(name: str) -> Parameter:
    meaning = PARAMETERS.get(name)
    if meaning is None or meaning.access != "rw":
        raise ConfigError(
            f"{name!r} is not a settable load-control parameter", kind="param.unknown", name=name
        )
    return meaning


def parameters_to_data(values: Mapping[str, Any]) -> dict[str, str | int]:
    """Settable parameter ``values`` as JSON-able data: kW and the power factor as decimal strings, modes by
    name (``"trip"``), seconds and counts as integers; :class:`ConfigError` for a name or value that is not
    one. :func:`parameters_from_data` reverses it."""
    data: dict[str, str | int] = {}
    for name, value in values.items():
        _settable(name).to_wire(value)  # raises for a value it cannot carry
        if isinstance(value, enum.Enum):
            data[name] = value.value
        elif isinstance(value, int):
            data[name] = value
        else:
            data[name] = str(Decimal(value))
    return data


def parameters_from_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter values (Python values, as :func:`profile_parameters` gives them) of
    :func:`parameters_to_data`'s data; :class:`ConfigError` for anything else."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"load parameters are an object, not {data!r}", kind="param.value")
    values = {}
    for name, value in data.items():
        meaning = _settable(str(name))
        values[meaning.name] = parsed = meaning.from_data(value)
        meaning.to_wire(parsed)
    return values


def parameters_to_json(values: Mapping[str, Any]) -> str:
    """:func:`parameters_to_data` as JSON text (keys sorted: the same values give the same text)."""
    return json.dumps(parameters_to_data(values), sort_keys=True)


def parameters_from_json(text: str) -> dict[str, Any]:
    """The parameter values of :func:`parameters_to_json`'s text; :class:`ConfigError` for anything else."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"load parameters are not JSON: {exc}", kind="param.value") from exc
    return parameters_from_data(data)


def same_values(sent: Mapping[str, Any], read: Mapping[str, Any]) -> bool:
    """Whether ``read`` (a read-back) holds every parameter of ``sent`` at the value sent, compared as the
    meter keeps them (2.2 kW is 2.2000 kW)."""
    try:
        return all(
            name in read and PARAMETERS[name].to_wire(read[name]) == PARAMETERS[name].to_wire(value)
            for name, value in sent.items()
        )
    except (ConfigError, KeyError, TypeError, ValueError):
        return False


# -- exchanges -------------------------------------------------------------------------------------------

MODBUS_READ_MAX = 125  # registers in one FC3/FC4 read
MODBUS_WRITE_MAX = 123  # registers in one FC16 write


def read_plan(meter, names: Iterable[str]):
    """A :class:`~prepaid_engine.adapters.base.ReadPlan` reading ``names`` from a meter (``MeterSpec``):
    one DL/T 645-2007 read per parameter, or Modbus block reads of their registers (neighbours in one);
    its fold gives ``{name: value}``."""
    from ..adapters.base import ReadPlan
    from ..adapters.dlt645 import Dlt645Adapter, _pairs

    model = meter.model
    names = tuple(dict.fromkeys(names))
    if model.protocol is Protocol.MODBUS:
        return _modbus_read_plan(meter, names)
    specs = {parameter_spec(model, name).di: name for name in names}
    adapter = Dlt645Adapter()
    steps = tuple(adapter._read_step(meter.address, di) for di in specs)

    def fold(steps, replies) -> dict[str, Any]:
        return {specs[di]: decode_parameter(model, specs[di], raw) for di, raw in _pairs(replies)}

    return ReadPlan(steps, fold)


def write_steps(meter, values: Mapping[str, Any]) -> tuple:
    """The writes that set ``values`` on a meter: DL/T 645-2007 writes (C=14, the model's password), one
    :class:`~prepaid_engine.adapters.base.FrameStep` per parameter, or Modbus FC16 writes
    (:class:`~prepaid_engine.adapters.base.BlockWrite`) of whole parameter registers, neighbours in one."""
    from ..adapters.base import FrameStep
    from ..adapters.dlt645 import WRITE, _ack_parser, _auth
    from ..codecs import dlt645

    model = meter.model
    for name in values:
        spec = parameter_spec(model, name)
        if spec.access != "rw":
            raise ConfigError(f"parameter {name} is read-only", kind="param.read_only", name=name)
    if model.protocol is Protocol.MODBUS:
        return _modbus_writes(meter, values)
    steps = []
    for name, value in values.items():
        spec = parameter_spec(model, name)
        raw = encode_parameter(model, name, value)
        steps.append(
            FrameStep(
                dlt645.write(meter.address, spec.di, raw, **_auth(model)),
                dlt645.reply_filter(meter.address, WRITE),
                _ack_parser(meter.address, WRITE),
                f"write {spec.di} ({name})",
                dlt645.Deframer,
            )
        )
    return tuple(steps)


def command_plan(meter, values: Mapping[str, Any]):
    """The :class:`~prepaid_engine.adapters.base.CommandPlan` of a ``SET_LOAD_PARAMETERS`` command (what the
    DL/T 645-2007 and Modbus adapters return): :func:`write_steps`, confirmed by :func:`read_plan` of the
    same parameters showing the values sent (:func:`same_values`). :class:`ConfigError` (the command is
    unsupported) for no values, or a parameter the model does not hold or only reads."""
    from ..adapters.base import CommandPlan
    from ..types import CommandKind

    values = dict(values)
    if not values:
        raise ConfigError("SET_LOAD_PARAMETERS carries no parameter values", kind="param.missing")
    missing = unsettable(meter.model, values)
    if missing:
        raise ConfigError(
            f"model {meter.model.code} cannot be set to {', '.join(missing)}", kind="param.missing"
        )
    actions = write_steps(meter, values)
    return CommandPlan(
        CommandKind.SET_LOAD_PARAMETERS,
        actions,
        read_plan(meter, values),
        lambda read: same_values(values, read),
        f"{len(values)} load parameters as sent",
    )


def _modbus_runs(meter, names: Sequence[str], limit: int):
    """(unit, runs) of ``names`` on a Modbus meter: each run ``(table, address, count, specs)`` is parameters
    of one table whose registers follow each other (at most ``limit`` registers), circuit offset applied."""
    from ..codecs import modbus as mb

    unit, circuit = mb.parse_address(meter.address)
    offset = mb.circuit_offset(meter.model, circuit)
    placed = sorted(
        (spec.register.table, spec.register.address + offset, spec.name, spec)
        for spec in (parameter_spec(meter.model, name) for name in names)
    )
    runs: list[list] = []
    for table, address, _, spec in placed:
        count = spec.register.count
        last = runs[-1] if runs else None
        if last and last[0] == table and last[1] + last[2] == address and last[2] + count <= limit:
            last[2] += count
            last[3].append(spec)
        else:
            runs.append([table, address, count, [spec]])
    return unit, runs


def _modbus_read_plan(meter, names: Sequence[str]):
    from ..adapters.base import BlockRead, ReadPlan
    from ..codecs import modbus as mb

    model = meter.model
    unit, runs = _modbus_runs(meter, names, MODBUS_READ_MAX)
    steps = tuple(
        BlockRead(
            unit,
            mb.ReadBlock(table, address, count),
            f"{table} {address:#06x}+{count}",
            tuple(spec.name for spec in specs),
        )
        for table, address, count, specs in runs
    )

    def fold(steps, replies) -> dict[str, Any]:
        values = {}
        for step, words in zip(steps, replies, strict=True):
            at = 0
            for name in step.names:
                count = parameter_spec(model, name).register.count
                values[name] = decode_parameter(model, name, tuple(words[at : at + count]))
                at += count
        return values

    return ReadPlan(steps, fold)


def _modbus_writes(meter, values: Mapping[str, Any]) -> tuple:
    from ..adapters.base import BlockWrite

    model = meter.model
    unit, runs = _modbus_runs(meter, tuple(values), MODBUS_WRITE_MAX)
    steps = []
    for table, address, count, specs in runs:
        if table != "holding":
            raise ConfigError(
                f"model {model.code}: {specs[0].name} is an input register (not writable)",
                kind="param.register",
            )
        words = tuple(w for spec in specs for w in encode_parameter(model, spec.name, values[spec.name]))
        names = ", ".join(spec.name for spec in specs)
        steps.append(BlockWrite(unit, address, words, f"write {address:#06x}+{count} ({names})"))
    return tuple(steps)


def builtin_dlt645_parameters() -> tuple[ParameterSpec, ...]:
    """The parameter entries of the built-in DL/T 645-2007 models (all uncertain)."""
    specs = []
    for name, di in DLT645_IDENTIFIERS.items():
        item = dlt645_di.DI_TABLE[di]
        specs.append(
            ParameterSpec(
                name=name,
                di=di,
                unit=item.unit,
                access=PARAMETERS[name].access,
                uncertain=True,
                note=POWER_LIMIT_NOTE if di == "04000E01" else UNCERTAIN_NOTE,
            )
        )
    return tuple(specs)
