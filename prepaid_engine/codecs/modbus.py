"""Modbus register maps as data: read plans, decoding, encoding and relay writes.

Sans-I/O: nothing here opens a socket or reads a clock. The poller asks :func:`read_plan` which blocks to
read (FC3 for ``holding``, FC4 for ``input``), reads them with pymodbus, and hands the register values to
:func:`decode`, which returns :data:`~prepaid_engine.types.READING_FIELDS` values. Commands become one FC16
block write through :func:`command_write`. The simulator works from the other side with the same map:
:func:`encode` turns the meter's truth into register values and :func:`command_for_write` recognises the
writes the poller sends.

A map (``MeterModel.registers``) lists :class:`~prepaid_engine.types.RegisterField` values. Engineering
value = raw x ``scale`` (x the CT ratio for energies, current and power of electricity models). Datatypes
are the :data:`DATATYPES` table; words are big-endian, ``word_order`` says which word of a 32-bit value
comes first ("big": high word at the lower address).

Model options the codec reads (all strings, all optional):

``supply_values``
    ``"0:on,1:off"`` (default): relay-state register value -> :class:`~prepaid_engine.types.Supply`. Any
    value not listed decodes as ``Supply.FAULT``.
``circuits``, ``circuit_stride``, ``device_fields``
    Multi-circuit meters (one Modbus unit, several metered circuits). A circuit is addressed as
    ``"unit/circuit"`` (:func:`parse_address`), circuit 1..``circuits``. Every field and write of circuit
    *n* sits at its listed address + (n - 1) x ``circuit_stride``, except the fields named in
    ``device_fields`` (comma separated), which belong to the whole device and are never offset.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from ..errors import ChecksumError, ConfigError, FrameError
from ..types import (
    READING_FIELDS,
    CommandKind,
    MeterModel,
    Protocol,
    RegisterField,
    RegisterWrite,
    Supply,
    Utility,
)

MAX_READ_REGISTERS = 125  # Modbus limit for one FC3/FC4 read
MAX_WRITE_REGISTERS = 123  # Modbus limit for one FC16 write
# Largest run of unused registers a block may read to save a round trip. At 9600 baud 8E1 a register costs
# 2.3 ms on the wire; a separate request costs ~15 ms of framing plus the meter's 20-150 ms latency, so
# reading up to 32 unused registers (~73 ms) is never slower than asking twice.
DEFAULT_MAX_GAP = 32
DEFAULT_SUPPLY_VALUES = "0:on,1:off"

TABLE_FUNCTION = {"holding": 3, "input": 4}
WORD_ORDERS = ("big", "little")

# Energies, current and power are measured through the CT: primary = secondary x CT ratio.
CT_SCALED_FIELDS = frozenset({"total", "sharp", "peak", "flat", "valley", "current", "power"})
# Fields whose value is a whole number (scale 1, integer datatype), with the type decode returns.
INTEGER_FIELDS = {"purchase_count": int, "model_code": int, "ct_ratio": int, "battery_low": bool}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Datatype:
    """How a value is laid out in registers: ``count`` words, ``fmt`` a big-endian :mod:`struct` code."""

    name: str
    count: int
    fmt: str

    @property
    def is_float(self) -> bool:
        return self.fmt == "f"


DATATYPES = {
    dt.name: dt
    for dt in (
        Datatype("uint16", 1, "H"),
        Datatype("int16", 1, "h"),
        Datatype("uint32", 2, "I"),
        Datatype("int32", 2, "i"),
        Datatype("float32", 2, "f"),
    )
}


@dataclass(frozen=True, slots=True, order=True)
class ReadBlock:
    """One read request: ``count`` registers from ``address`` of ``table`` ("holding" FC3, "input" FC4)."""

    table: str
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count

    @property
    def function_code(self) -> int:
        return TABLE_FUNCTION[self.table]


# ---------------------------------------------------------------------------------------------- addressing


def parse_address(address: str) -> tuple[int, int]:
    """``"5"`` -> (5, 1); ``"5/3"`` -> (5, 3): Modbus unit id 1..247 and circuit (1 for single meters)."""
    unit_text, _, circuit_text = str(address).strip().partition("/")
    try:
        unit = int(unit_text)
        circuit = int(circuit_text) if circuit_text else 1
    except ValueError as exc:
        raise ConfigError(f"Modbus address {address!r} is not 'unit' or 'unit/circuit'") from exc
    if not 1 <= unit <= 247:
        raise ConfigError(f"Modbus unit id {unit} outside 1..247")
    if circuit < 1:
        raise ConfigError(f"circuit {circuit} in {address!r} must be 1 or more")
    return unit, circuit


def _int_option(model: MeterModel, name: str, default: int) -> int:
    text = model.option(name, "")
    if not text:
        return default
    try:
        return int(text, 0)
    except ValueError as exc:
        raise ConfigError(f"model {model.code}: option {name}={text!r} is not an integer") from exc


def circuit_count(model: MeterModel) -> int:
    """How many circuits one unit of this model meters (1 unless the model says ``circuits``)."""
    count = _int_option(model, "circuits", 1)
    if count < 1:
        raise ConfigError(f"model {model.code}: circuits must be 1 or more")
    return count


def device_fields(model: MeterModel) -> frozenset[str]:
    return frozenset(name.strip() for name in model.option("device_fields").split(",") if name.strip())


def circuit_offset(model: MeterModel, circuit: int = 1) -> int:
    """Register offset of ``circuit`` (1-based) of a multi-circuit model; 0 for circuit 1."""
    circuits = circuit_count(model)
    if not 1 <= circuit <= circuits:
        raise ConfigError(f"model {model.code} has circuits 1..{circuits}, not {circuit}")
    stride = _int_option(model, "circuit_stride", 0)
    if circuits > 1 and stride < 1:
        raise ConfigError(f"model {model.code}: {circuits} circuits need a positive circuit_stride")
    return (circuit - 1) * stride


@functools.lru_cache(maxsize=8192)
def _placed(model: MeterModel, circuit: int) -> dict[str, tuple[RegisterField, int]]:
    """Field name -> (field, absolute address) for one circuit (cached: models are frozen; never mutate)."""
    offset = circuit_offset(model, circuit)
    shared = device_fields(model)
    return {f.name: (f, f.address + (0 if f.name in shared else offset)) for f in model.registers}


def register_field(model: MeterModel, name: str) -> RegisterField:
    for f in model.registers:
        if f.name == name:
            return f
    raise ConfigError(f"model {model.code} has no register field {name!r}")


def polled_fields(model: MeterModel) -> tuple[str, ...]:
    """The fields a poll cycle reads: the map's :data:`READING_FIELDS`, in that order."""
    present = {f.name for f in model.registers}
    return tuple(name for name in READING_FIELDS if name in present)


# ----------------------------------------------------------------------------------------------- validation


def supply_table(model: MeterModel) -> dict[int, Supply]:
    """Relay-state register value -> :class:`Supply`, from the ``supply_values`` option."""
    return dict(_supply_table(model))


@functools.lru_cache(maxsize=1024)
def _supply_table(model: MeterModel) -> dict[int, Supply]:
    text = model.option("supply_values", DEFAULT_SUPPLY_VALUES)
    table: dict[int, Supply] = {}
    try:
        for item in text.split(","):
            raw, _, state = item.partition(":")
            table[int(raw.strip(), 0)] = Supply(state.strip())
    except ValueError as exc:
        raise ConfigError(f"model {model.code}: supply_values {text!r} is not 'value:state,...'") from exc
    if len(set(table.values())) != len(table):
        raise ConfigError(f"model {model.code}: supply_values {text!r} maps two values to one state")
    return table


def validate_register_map(model: MeterModel) -> None:
    """Raise :class:`ConfigError` unless the model's register map and writes are usable."""
    if model.protocol is not Protocol.MODBUS:
        if model.registers or model.writes:
            raise ConfigError(f"model {model.code}: only Modbus models carry registers and writes")
        return
    if model.reads:
        raise ConfigError(f"model {model.code}: Modbus models list registers, not data identifiers")
    if not model.registers:
        raise ConfigError(f"model {model.code}: a Modbus model needs at least one register field")
    names = [f.name for f in model.registers]
    if len(set(names)) != len(names):
        raise ConfigError(f"model {model.code}: register field names repeat: {names}")
    for f in model.registers:
        _validate_field(model, f)
    unknown_shared = device_fields(model) - set(names)
    if unknown_shared:
        raise ConfigError(f"model {model.code}: device_fields name unknown fields {sorted(unknown_shared)}")
    supply_table(model)
    # Every circuit's fields must fit without overlapping any other field of any circuit.
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for circuit in range(1, circuit_count(model) + 1):
        for name, (f, address) in _placed(model, circuit).items():
            if circuit > 1 and name in device_fields(model):
                continue
            if address + f.count > 0x10000:
                raise ConfigError(f"model {model.code}: {name} of circuit {circuit} ends past 0xFFFF")
            spans.setdefault(f.table, []).append((address, address + f.count, f"{name}@{circuit}"))
    for table, items in spans.items():
        items.sort()
        for (_, end, a), (start, _, b) in itertools.pairwise(items):
            if start < end:
                raise ConfigError(f"model {model.code}: {table} registers of {a} and {b} overlap")
    for kind, write in model.writes:
        if not 1 <= len(write.values) <= MAX_WRITE_REGISTERS:
            raise ConfigError(
                f"model {model.code}: write for {kind} must carry 1..{MAX_WRITE_REGISTERS} words"
            )
        if any(not 0 <= v <= 0xFFFF for v in write.values):
            raise ConfigError(f"model {model.code}: write for {kind} has a value outside 0..0xFFFF")
        last = write.address + circuit_offset(model, circuit_count(model)) + len(write.values)
        if write.address < 0 or last > 0x10000:
            raise ConfigError(f"model {model.code}: write for {kind} lies outside 0..0xFFFF")


def _validate_field(model: MeterModel, f: RegisterField) -> None:
    where = f"model {model.code}: field {f.name!r}"
    if not _NAME.match(f.name):
        raise ConfigError(f"{where}: names are lower-case identifiers")
    datatype = DATATYPES.get(f.datatype)
    if datatype is None:
        raise ConfigError(f"{where}: datatype {f.datatype!r} is not one of {sorted(DATATYPES)}")
    if f.count != datatype.count:
        raise ConfigError(f"{where}: {f.datatype} takes {datatype.count} register(s), not {f.count}")
    if f.table not in TABLE_FUNCTION:
        raise ConfigError(f"{where}: table {f.table!r} is not one of {sorted(TABLE_FUNCTION)}")
    if f.word_order not in WORD_ORDERS:
        raise ConfigError(f"{where}: word_order {f.word_order!r} is not one of {WORD_ORDERS}")
    if not 0 <= f.address <= 0xFFFF:
        raise ConfigError(f"{where}: address {f.address} outside 0..0xFFFF")
    if not f.scale.is_finite() or f.scale <= 0:
        raise ConfigError(f"{where}: scale must be a positive number")
    if (f.name in INTEGER_FIELDS or f.name == "supply") and (datatype.is_float or f.scale != 1):
        raise ConfigError(f"{where}: a whole-number field needs an integer datatype and scale 1")


# ----------------------------------------------------------------------------------------------- read plan


def read_plan(
    model: MeterModel,
    names: Iterable[str] | None = None,
    *,
    circuit: int = 1,
    max_gap: int = DEFAULT_MAX_GAP,
    max_count: int = MAX_READ_REGISTERS,
) -> tuple[ReadBlock, ...]:
    """The fewest block reads that cover ``names`` (default: :func:`polled_fields`) of one circuit.

    Fields of one table are merged, in address order, into one block while the block stays within
    ``max_count`` registers and no run of unused registers inside it exceeds ``max_gap``. (Both limits
    only get harder to meet as a block grows, so filling each block greedily gives the minimum number.)
    """
    if not 1 <= max_count <= MAX_READ_REGISTERS:
        raise ConfigError(f"max_count must be 1..{MAX_READ_REGISTERS}")
    if max_gap < 0:
        raise ConfigError("max_gap must be 0 or more")
    placed = _placed(model, circuit)
    wanted = polled_fields(model) if names is None else tuple(dict.fromkeys(names))
    spans: dict[str, list[tuple[int, int]]] = {}
    for name in wanted:
        if name not in placed:
            raise ConfigError(f"model {model.code} has no register field {name!r}")
        f, address = placed[name]
        spans.setdefault(f.table, []).append((address, address + f.count))
    blocks: list[ReadBlock] = []
    for table in sorted(spans):
        start = end = None
        for lo, hi in sorted(spans[table]):
            if hi - lo > max_count:
                raise ConfigError(f"a field of {hi - lo} registers does not fit a read of {max_count}")
            if start is not None and lo - end <= max_gap and max(hi, end) - start <= max_count:
                end = max(end, hi)
                continue
            if start is not None:
                blocks.append(ReadBlock(table, start, end - start))
            start, end = lo, hi
        if start is not None:
            blocks.append(ReadBlock(table, start, end - start))
    return tuple(blocks)


def fields_in(
    model: MeterModel, block: ReadBlock, names: Iterable[str] | None = None, *, circuit: int = 1
) -> tuple[str, ...]:
    """The fields of ``names`` (default: :func:`polled_fields`) that lie wholly inside ``block``, in order."""
    placed = _placed(model, circuit)
    wanted = polled_fields(model) if names is None else names
    found = []
    for name in wanted:
        f, address = placed[name]
        if f.table == block.table and block.address <= address and address + f.count <= block.end:
            found.append(name)
    return tuple(found)


def read_image(
    blocks: Iterable[ReadBlock], image: Mapping[int, int], fill: int = 0
) -> dict[ReadBlock, tuple]:
    """Answer ``blocks`` from a register image (address -> value), as a meter would; absent -> ``fill``."""
    return {b: tuple(image.get(a, fill) for a in range(b.address, b.end)) for b in blocks}


# ------------------------------------------------------------------------------------------- values <-> raw


def _words_to_bytes(words: Sequence[int], word_order: str) -> bytes:
    ordered = words if word_order == "big" else tuple(reversed(words))
    return b"".join(w.to_bytes(2, "big") for w in ordered)


def _bytes_to_words(data: bytes, word_order: str) -> tuple[int, ...]:
    words = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    return words if word_order == "big" else tuple(reversed(words))


def float32_decimal(value: float) -> Decimal:
    """The shortest decimal that reads back as the same float32 (so 230.1 stays 230.1, not 230.100006)."""
    packed = struct.pack(">f", value)
    (value,) = struct.unpack(">f", packed)  # the float32 itself, not the double handed in
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        try:
            if struct.pack(">f", float(text)) == packed:
                return Decimal(text)
        except OverflowError:  # near float32's maximum a short decimal can round past it: try more digits
            continue
    return Decimal(repr(value))  # unreachable: 9 significant digits always round-trip a float32


def _raw_value(f: RegisterField, words: Sequence[int]) -> int | Decimal:
    datatype = DATATYPES[f.datatype]
    (raw,) = struct.unpack(">" + datatype.fmt, _words_to_bytes(words, f.word_order))
    if datatype.is_float:
        if not math.isfinite(raw):
            raise FrameError(f"register field {f.name} holds a non-finite float")
        return float32_decimal(raw)
    return raw


def _pack_raw(f: RegisterField, raw: int | float) -> tuple[int, ...]:
    datatype = DATATYPES[f.datatype]
    try:
        data = struct.pack(">" + datatype.fmt, raw)
    except (struct.error, OverflowError) as exc:
        raise ConfigError(f"value for {f.name} does not fit {f.datatype}: {raw}") from exc
    return _bytes_to_words(data, f.word_order)


def _factor(model: MeterModel, f: RegisterField, ct_ratio: int) -> Decimal:
    if model.utility is Utility.ELECTRICITY and f.name in CT_SCALED_FIELDS:
        return f.scale * ct_ratio
    return f.scale


def _is_word(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF


def _check_ct(ct_ratio: int) -> int:
    if isinstance(ct_ratio, bool) or not isinstance(ct_ratio, int) or ct_ratio < 1:
        raise ConfigError(f"CT ratio must be a whole number >= 1, not {ct_ratio!r}")
    return ct_ratio


def _engineering(model: MeterModel, f: RegisterField, words: Sequence[int], ct_ratio: int) -> object:
    raw = _raw_value(f, words)
    if f.name == "supply":
        return _supply_table(model).get(int(raw), Supply.FAULT)
    if f.name in INTEGER_FIELDS:
        return INTEGER_FIELDS[f.name](raw)
    return raw * _factor(model, f, ct_ratio)


def decode(
    model: MeterModel,
    blocks: Mapping[ReadBlock, Sequence[int]],
    ct_ratio: int = 1,
    *,
    names: Iterable[str] | None = None,
    circuit: int = 1,
) -> dict[str, object]:
    """Register values read for ``blocks`` -> field values, by name.

    ``names`` defaults to :func:`polled_fields` (so the result's keys are :data:`READING_FIELDS`). Values:
    ``Decimal`` (scaled; energies, current and power of electricity models x ``ct_ratio``), ``Supply`` for
    ``supply``, ``int`` for ``purchase_count``/``model_code``/``ct_ratio``, ``bool`` for ``battery_low``.
    Raises :class:`FrameError` when a block's values are not ``count`` words of 0..0xFFFF, and
    :class:`ConfigError` when a requested field is not inside the blocks given.
    """
    _check_ct(ct_ratio)
    for block, words in blocks.items():
        if len(words) != block.count or not all(_is_word(w) for w in words):
            raise FrameError(f"{block} answered with {len(words)} values, not {block.count} words")
    placed = _placed(model, circuit)
    wanted = polled_fields(model) if names is None else tuple(dict.fromkeys(names))
    out: dict[str, object] = {}
    for name in wanted:
        if name not in placed:
            raise ConfigError(f"model {model.code} has no register field {name!r}")
        f, address = placed[name]
        for block, words in blocks.items():
            if block.table == f.table and block.address <= address and address + f.count <= block.end:
                start = address - block.address
                out[name] = _engineering(model, f, words[start : start + f.count], ct_ratio)
                break
        else:
            raise ConfigError(f"register field {name!r} of model {model.code} is not inside the blocks read")
    return out


def _to_raw(model: MeterModel, f: RegisterField, value: object, ct_ratio: int, exact: bool) -> int | float:
    if f.name == "supply":
        by_state = {state: raw for raw, state in supply_table(model).items()}
        try:
            return by_state[Supply(value)]
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"model {model.code} has no relay-state value for supply {value!r}") from exc
    if f.name == "battery_low":
        return int(bool(value))
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ConfigError(f"value for {f.name} must be a Decimal or int, not {type(value).__name__}")
    try:
        raw = Decimal(value) / _factor(model, f, ct_ratio)
    except InvalidOperation as exc:
        raise ConfigError(f"value for {f.name} is not a number: {value!r}") from exc
    if not raw.is_finite():
        raise ConfigError(f"value for {f.name} is not finite: {value!r}")
    if DATATYPES[f.datatype].is_float:
        as_float = float(raw)
        if not math.isfinite(as_float):
            raise ConfigError(f"value for {f.name} does not fit float32: {value}")
        packed = _pack_raw(f, as_float)
        if exact and _raw_value(f, packed) != raw:
            raise ConfigError(f"value for {f.name} is not exactly representable as float32: {value}")
        return as_float
    whole = raw.to_integral_value(rounding=ROUND_DOWN)
    if exact and whole != raw:
        raise ConfigError(f"value for {f.name} is not a multiple of its resolution: {value}")
    return int(whole)


def encode_tables(
    model: MeterModel,
    values: Mapping[str, object],
    ct_ratio: int = 1,
    *,
    circuit: int = 1,
    exact: bool = True,
) -> dict[str, dict[int, int]]:
    """The meter's side of :func:`decode`: field values -> {table: {address: word}}.

    ``None`` values and :data:`READING_FIELDS` names the map does not carry are skipped (a simulator keeps
    more truth than a small meter shows); any other unknown name is a :class:`ConfigError`. With ``exact``
    a value that the register cannot hold exactly is a :class:`ConfigError`; without it, integer registers
    truncate toward zero (meters show whole resolution steps) and floats round to float32.
    """
    _check_ct(ct_ratio)
    placed = _placed(model, circuit)
    out: dict[str, dict[int, int]] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name not in placed:
            if name in READING_FIELDS:
                continue
            raise ConfigError(f"model {model.code} has no register field {name!r}")
        f, address = placed[name]
        words = _pack_raw(f, _to_raw(model, f, value, ct_ratio, exact))
        table = out.setdefault(f.table, {})
        table.update(zip(range(address, address + f.count), words, strict=True))
    return out


def encode(
    model: MeterModel,
    values: Mapping[str, object],
    ct_ratio: int = 1,
    *,
    circuit: int = 1,
    exact: bool = True,
) -> dict[int, int]:
    """Like :func:`encode_tables` for a map that uses one address space: {address: word}.

    A map whose holding and input fields share an address cannot be flattened: :class:`ConfigError`
    (use :func:`encode_tables`).
    """
    merged: dict[int, int] = {}
    for table in encode_tables(model, values, ct_ratio, circuit=circuit, exact=exact).values():
        clash = merged.keys() & table.keys()
        if clash:
            raise ConfigError(
                f"model {model.code}: holding and input share {sorted(clash)}; use encode_tables"
            )
        merged.update(table)
    return merged


# --------------------------------------------------------------------------------------------------- writes


def command_write(model: MeterModel, kind: CommandKind, *, circuit: int = 1) -> RegisterWrite:
    """The FC16 block write performing ``kind`` on ``circuit``; :class:`ConfigError` if the model has none."""
    write = model.write_for(CommandKind(kind))
    if write is None:
        raise ConfigError(f"model {model.code} has no register write for {kind}")
    return RegisterWrite(write.address + circuit_offset(model, circuit), write.values)


def command_for_write(
    model: MeterModel, address: int, values: Sequence[int]
) -> tuple[CommandKind, int] | None:
    """Meter side: which command (and circuit) an FC16 write of ``values`` at ``address`` is, or ``None``."""
    stride = _int_option(model, "circuit_stride", 0)
    circuits = circuit_count(model)
    words = tuple(int(v) for v in values)
    for kind, write in model.writes:
        if words != write.values:
            continue
        delta = address - write.address
        if delta == 0:
            return kind, 1
        if stride > 0 and delta > 0 and delta % stride == 0 and delta // stride < circuits:
            return kind, delta // stride + 1
    return None


# ------------------------------------------------------------------------------------------------ RTU frame

_CRC_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ 0xA001 if _crc & 1 else _crc >> 1
    _CRC_TABLE.append(_crc)
del _byte, _crc


def crc16(data: bytes) -> int:
    """Modbus RTU CRC-16 (reflected polynomial 0xA001, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def read_pdu(block: ReadBlock) -> bytes:
    """The request PDU for ``block``: FC3/FC4, start address, register count."""
    return bytes([block.function_code]) + block.address.to_bytes(2, "big") + block.count.to_bytes(2, "big")


def write_pdu(write: RegisterWrite) -> bytes:
    """The FC16 (write multiple registers) request PDU for ``write``."""
    count = len(write.values)
    head = bytes([16]) + write.address.to_bytes(2, "big") + count.to_bytes(2, "big") + bytes([2 * count])
    return head + b"".join(v.to_bytes(2, "big") for v in write.values)


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    """An RTU frame: unit id + PDU + CRC (low byte first)."""
    if not 0 <= unit <= 247:
        raise ConfigError(f"Modbus unit id {unit} outside 0..247")
    body = bytes([unit]) + bytes(pdu)
    return body + crc16(body).to_bytes(2, "little")


def rtu_unframe(frame: bytes) -> tuple[int, bytes]:
    """(unit id, PDU) of one complete RTU frame; :class:`ChecksumError` on a bad CRC."""
    if len(frame) < 4:
        raise FrameError(f"an RTU frame has at least 4 bytes, got {len(frame)}")
    body, crc = bytes(frame[:-2]), int.from_bytes(frame[-2:], "little")
    if crc16(body) != crc:
        raise ChecksumError(f"RTU CRC {crc:04X} does not match {crc16(body):04X}")
    return body[0], body[1:]
