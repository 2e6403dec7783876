"""CJ/T 188-2004 codec (water, gas and heat meters), sans-I/O, for both sides of the bus.

Frame: ``FE.. 68 T A0..A6 C L DATA CS 16``. ``T`` is the meter type (0x10 cold water, 0x11 hot water, 0x12
drinking, 0x13 reclaimed, 0x20/0x21 heat, 0x30 gas, 0x40 electricity, 0xAA any), the address is 14 BCD
digits sent least significant byte first (``"AAAAAAAAAAAAAA"`` is the wildcard), data bytes are *not*
scrambled, CS is the sum from ``68`` through the last data byte, mod 256. :class:`Frame` ``(meter_type,
address, control, data)`` (``raw`` keeps the wire bytes of a decoded frame); ``encode_frame(frame,
preamble=2)`` / ``decode_frame(buf)``; :class:`Deframer` for streams (same behaviour as DL/T 645's).

DATA is ``DI(2) SER(1) payload``. Implementations disagree on the DI byte order: :class:`DIOrder` ``"msb"``
sends ``901F`` as ``90 1F``, ``"lsb"`` as ``1F 90``; every codec call takes ``di_order`` (the meter
model's ``di_order`` option). Identifiers are strings as written (``"901F"``).

Messages (``encode(message, *, di_order="msb", preamble=2, tz=UTC)`` / ``decode(buf_or_frame, *,
di_order="msb", tz=UTC)``):

- :class:`ReadRequest` (C=01: DI, SER) -> :class:`FlowReply` (81, DI 901F: cumulative flow and
  settlement-day flow, each 4-byte BCD with 2 decimals + a unit byte 0x2C m3 / 0x29 L, meter time 7 bytes
  ``ss mm hh DD MM YY YY`` least significant first, status 2 bytes) or :class:`ReadReply` (81, any other DI:
  raw payload). Flows in messages are always m3; ``total_unit`` says how the meter sends them.
- :class:`ReadAddress` (C=03, DI 810A, SER, to the wildcard) -> :class:`AddressReply` (83).
- :class:`ValveControl` (C=04, DI A017, SER, 55 open / 99 close [UNCERTAIN]) and :class:`WriteRequest`
  (C=04, any other DI) -> :class:`WriteReply` (84: DI, SER, status).
- :class:`ErrorReply`: abnormal reply (D6 set: C1, C3, C4 ...) with SER + status [UNCERTAIN layout]; it
  becomes a :class:`MeterError` (``code`` = status word, ``names`` = its bits) in :func:`parse_reply`.

Status word: byte 0 bits 0-1 valve (00 open, 01 closed, 11 abnormal), bit 2 battery low; the second byte is
vendor-defined [UNCERTAIN: some firmware puts the valve bits elsewhere]. The meter time is sent least
significant byte first like every other field (``31 01 22 11 05 15 20`` is 2015-05-11 22:01:31).
``status`` fields hold ``byte0 | byte1 << 8``; :func:`status_word` builds one,
:func:`valve_state` / :func:`battery_low` read it. :func:`reading_values` maps a reply to Reading fields:
``total`` (m3), ``supply`` (valve open -> ON, closed -> OFF, abnormal -> FAULT), ``battery_low``.

Poller side: :func:`read`, :func:`read_address`, :func:`valve`, :func:`reply_filter`, :func:`parse_reply`.
Simulator side: :class:`Deframer`, :func:`decode` the request, answer with ``encode(FlowReply(...))`` etc.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from ..errors import ConfigError, FrameError, MeterError
from ..types import Supply
from .bcd import (
    CJT188_WILDCARD,
    address_encoder,
    bcd_to_datetime,
    bcd_to_decimal,
    datetime_to_bcd,
    decimal_to_bcd,
    decode_address,
)
from .framing import (
    ABNORMAL,
    DIRECTION,
    FrameDeframer,
    Layout,
    byte_field,
    check_reply_message,
    reply_predicate,
    seal,
    unwrap,
)

__all__ = [
    "ADDRESS_BYTES",
    "LAYOUT",
    "METER_TYPES",
    "UNIT_EXPONENTS",
    "WILDCARD",
    "AddressReply",
    "DIOrder",
    "Deframer",
    "ErrorReply",
    "FlowReply",
    "Frame",
    "Message",
    "ReadAddress",
    "ReadReply",
    "ReadRequest",
    "Reply",
    "Request",
    "ValveAction",
    "ValveControl",
    "ValveState",
    "WriteReply",
    "WriteRequest",
    "battery_low",
    "decode",
    "decode_frame",
    "encode",
    "encode_frame",
    "meter_error",
    "parse_reply",
    "read",
    "read_address",
    "reading_values",
    "reply_filter",
    "status_names",
    "status_word",
    "valve",
    "valve_state",
]

ADDRESS_BYTES = 7
WILDCARD = CJT188_WILDCARD
ANY_METER_TYPE = 0xAA
# function codes (D5..D0) of CJ/T 188-2004: read, read address, write, key version, write address, write base
FUNCTIONS = frozenset((0x01, 0x03, 0x04, 0x09, 0x15, 0x16))
# every control byte the deframer accepts: a request, a reply (D7) or an abnormal reply (D7 + D6)
CONTROLS = frozenset(f | flags for f in FUNCTIONS for flags in (0x00, 0x80, 0xC0))
LAYOUT = Layout(
    "CJ/T 188",
    length_at=10,
    address_from=2,
    address_to=9,
    second_start=None,
    max_data=255,
    control_at=9,
    controls=CONTROLS,
)

METER_TYPES: dict[int, str] = {
    0x10: "cold water",
    0x11: "hot water",
    0x12: "drinking water",
    0x13: "reclaimed water",
    0x20: "heat (outlet)",
    0x21: "heat (inlet)",
    0x30: "gas",
    0x40: "electricity",
    0xAA: "any",
}

# unit byte -> power of ten that turns the unit into m3 (0x2C m3, 0x29 litre)
UNIT_EXPONENTS: dict[int, int] = {0x2C: 0, 0x29: -3}
UNIT_M3 = 0x2C
UNIT_LITRE = 0x29

DI_METER_DATA = "901F"
DI_ADDRESS = "810A"
DI_VALVE = "A017"

# control byte: D7 direction (1 = reply, DIRECTION), D6 abnormal reply (ABNORMAL), D5..D0 function
FUNCTION = 0x3F


class DIOrder(enum.StrEnum):
    MSB = "msb"  # "901F" sent 90 1F
    LSB = "lsb"  # "901F" sent 1F 90


# --- frame layer ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Frame:
    """One CJ/T 188 frame (data as on the wire: CJ/T 188 does not scramble)."""

    meter_type: int
    address: str
    control: int
    data: bytes
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def is_reply(self) -> bool:
        return bool(self.control & DIRECTION)

    @property
    def function(self) -> int:
        return self.control & FUNCTION

    @property
    def abnormal(self) -> bool:
        return self.control & (DIRECTION | ABNORMAL) == DIRECTION | ABNORMAL

    def encode(self, preamble: int = 2) -> bytes:
        return encode_frame(self, preamble)


_address_bytes = address_encoder(ADDRESS_BYTES)


def encode_frame(frame: Frame, preamble: int = 2) -> bytes:
    """The wire bytes of ``frame`` with ``preamble`` x FE (CJ/T 188 masters send 2..4)."""
    data = frame.data
    if len(data) > LAYOUT.max_data:
        raise ConfigError(f"CJ/T 188 data is at most {LAYOUT.max_data} bytes, not {len(data)}")
    if not 0 <= frame.meter_type <= 0xFF or not 0 <= frame.control <= 0xFF:
        raise ConfigError(f"meter type {frame.meter_type!r} / control {frame.control!r} is not a byte")
    body = (
        bytes((0x68, frame.meter_type))
        + _address_bytes(frame.address)
        + bytes((frame.control, len(data)))
        + data
    )
    return seal(body, preamble)


def decode_frame(buf: bytes | bytearray | memoryview) -> Frame:
    """Exactly one frame (any number of FE before it). ``ChecksumError`` for a bad CS, else ``FrameError``."""
    if isinstance(buf, Frame):
        return buf
    return _frame_of(unwrap(buf, LAYOUT))


def _frame_of(body: bytes) -> Frame:
    return Frame(body[1], decode_address(body[2:9]), body[9], body[11:-2], body)


class Deframer(FrameDeframer[Frame]):
    """Stream deframer for CJ/T 188 (``68 T A0..A6 C L DATA CS 16``), h11-style.

    ``feed(data)``; ``next_frame()`` -> :class:`Frame` or ``None``; iteration. Strips any FE, resynchronises
    on a 68 followed by a plausible header (seven BCD or AA address bytes), skips garbage, keeps partial
    frames, yields several frames per chunk, bounds its buffer (:mod:`.framing`). A complete frame with a bad
    CS raises :class:`ChecksumError`; the next call continues. Raises only :class:`FrameError` subclasses.
    """

    __slots__ = ()
    layout = LAYOUT
    frame_of = staticmethod(_frame_of)


# --- field helpers --------------------------------------------------------------------------------
_di_cache: dict[tuple[str, str], bytes] = {}


def _di_bytes(di: str, order: str) -> bytes:
    key = (di, order)
    raw = _di_cache.get(key)
    if raw is None:
        if not isinstance(di, str) or len(di) != 4:
            raise ConfigError(f"a CJ/T 188 data identifier is 4 hex digits, not {di!r}")
        try:
            raw = bytes.fromhex(di)
        except ValueError as exc:
            raise ConfigError(f"data identifier {di!r} is not hex") from exc
        if order == "lsb":
            raw = raw[::-1]
        elif order != "msb":
            _bad_order(order)
        if len(_di_cache) < 4096:
            _di_cache[key] = raw
    return raw


def _bad_order(order: object) -> DIOrder:
    raise ConfigError(f"DI order must be 'msb' or 'lsb', not {order!r}")


def _di_text(raw: bytes, order: str) -> str:
    if order == "msb":
        return raw.hex().upper()
    if order == "lsb":
        return raw[::-1].hex().upper()
    _bad_order(order)
    return ""  # pragma: no cover


def _meter_type(value: int | str) -> int:
    """A meter type as an int or as the hex text of meter models (``"10"`` = 0x10)."""
    if isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError as exc:
            raise ConfigError(f"meter type {value!r} is not hex") from exc
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ConfigError(f"meter type {value!r} is not a byte")
    return value


_byte = byte_field


def _status_bytes(status: int) -> bytes:
    if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 0xFFFF:
        raise ConfigError(f"status {status!r} is not a 16-bit word")
    return status.to_bytes(2, "little")


def _flow_bytes(value: Decimal, unit: int) -> bytes:
    exponent = UNIT_EXPONENTS.get(unit)
    if exponent is None:
        raise ConfigError(f"unit {unit!r} is not a volume unit this codec knows (0x2C m3, 0x29 L)")
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        raise ConfigError(f"a flow is a Decimal, not {value!r}")
    return decimal_to_bcd(Decimal(value).scaleb(-exponent), 4, 2) + bytes((unit,))


def _flow_of(raw: bytes) -> tuple[Decimal, int]:
    unit = raw[4]
    exponent = UNIT_EXPONENTS.get(unit)
    if exponent is None:
        raise FrameError(f"unknown CJ/T 188 volume unit {unit:02x}")
    value = bcd_to_decimal(raw[:4], 2)
    return (value.scaleb(exponent) if exponent else value), unit


def _clock_bytes(when: datetime, tz: tzinfo) -> bytes:
    """ss mm hh DD MM YY(low) YY(high), BCD, in the meter's zone."""
    return datetime_to_bcd(when, tz, century=True)


def _clock_of(raw: bytes, tz: tzinfo) -> datetime:
    return bcd_to_datetime(raw, tz, not_bcd="meter time is not BCD")


# --- status word ----------------------------------------------------------------------------------
class ValveState(enum.IntEnum):
    OPEN = 0b00
    CLOSED = 0b01
    UNDEFINED = 0b10
    ABNORMAL = 0b11


VALVE_MASK = 0x03
BATTERY_LOW = 0x04
VALVE_SUPPLY: dict[ValveState, Supply] = {
    ValveState.OPEN: Supply.ON,
    ValveState.CLOSED: Supply.OFF,
    ValveState.UNDEFINED: Supply.FAULT,
    ValveState.ABNORMAL: Supply.FAULT,
}
_SUPPLY_OF_STATUS = tuple(VALVE_SUPPLY[ValveState(v)] for v in range(4))


def valve_state(status: int) -> ValveState:
    return ValveState(status & VALVE_MASK)


def battery_low(status: int) -> bool:
    return bool(status & BATTERY_LOW)


def status_word(valve: ValveState = ValveState.OPEN, low_battery: bool = False, other: int = 0) -> int:
    """A status word (byte0 | byte1 << 8) from its parts; ``other`` holds vendor bits (not bits 0-2)."""
    return (
        (other & ~(VALVE_MASK | BATTERY_LOW) & 0xFFFF)
        | ValveState(valve)
        | (BATTERY_LOW if low_battery else 0)
    )


def status_names(status: int) -> tuple[str, ...]:
    names = [f"valve_{valve_state(status).name.lower()}"]
    if status & BATTERY_LOW:
        names.append("battery_low")
    names += [f"bit{bit}" for bit in range(3, 16) if status >> bit & 1]
    return tuple(names)


# --- messages -------------------------------------------------------------------------------------
class Message:
    """Base of every CJ/T 188 message."""

    __slots__ = ()

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        raise NotImplementedError


class Request(Message):
    __slots__ = ()


class Reply(Message):
    """Every reply has ``meter_type``, ``address``, ``ser`` and ``function`` (the request's control code)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ReadRequest(Request):
    """C=01: read ``di`` (``"901F"``: the meter data)."""

    meter_type: int
    address: str
    di: str = DI_METER_DATA
    ser: int = 0

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        return Frame(
            self.meter_type, self.address, 0x01, _di_bytes(self.di, di_order) + _byte(self.ser, "SER")
        )


@dataclass(frozen=True, slots=True)
class ReadAddress(Request):
    """C=03: DI 810A + SER, normally to the wildcard address and any meter type."""

    meter_type: int = ANY_METER_TYPE
    address: str = WILDCARD
    ser: int = 0

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        return Frame(
            self.meter_type, self.address, 0x03, _di_bytes(DI_ADDRESS, di_order) + _byte(self.ser, "SER")
        )


class ValveAction(enum.IntEnum):
    OPEN = 0x55
    CLOSE = 0x99


@dataclass(frozen=True, slots=True)
class ValveControl(Request):
    """C=04, DI A017, SER, 55 (open) or 99 (close)."""

    meter_type: int
    address: str
    action: ValveAction
    ser: int = 0

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        try:
            action = ValveAction(self.action)
        except ValueError as exc:
            raise ConfigError(f"{self.action!r} is not a valve action") from exc
        data = _di_bytes(DI_VALVE, di_order) + _byte(self.ser, "SER") + bytes((action,))
        return Frame(self.meter_type, self.address, 0x04, data)


@dataclass(frozen=True, slots=True)
class WriteRequest(Request):
    """C=04 with any DI but the valve's: DI + SER + ``value`` bytes."""

    meter_type: int
    address: str
    di: str
    value: bytes
    ser: int = 0

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        if self.di.upper() == DI_VALVE:
            raise ConfigError("use ValveControl for DI A017")
        data = _di_bytes(self.di, di_order) + _byte(self.ser, "SER") + self.value
        return Frame(self.meter_type, self.address, 0x04, data)


@dataclass(frozen=True, slots=True)
class FlowReply(Reply):
    """81 to a 901F read: flows in m3 (sent in ``total_unit`` / ``settlement_unit``), meter time, status."""

    meter_type: int
    address: str
    total: Decimal
    settlement: Decimal
    time: datetime
    status: int = 0
    ser: int = 0
    total_unit: int = UNIT_M3
    settlement_unit: int = UNIT_M3

    @property
    def function(self) -> int:
        return 0x01

    @property
    def di(self) -> str:
        return DI_METER_DATA

    @property
    def valve(self) -> ValveState:
        return valve_state(self.status)

    @property
    def battery_low(self) -> bool:
        return battery_low(self.status)

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        data = (
            _di_bytes(DI_METER_DATA, di_order)
            + _byte(self.ser, "SER")
            + _flow_bytes(self.total, self.total_unit)
            + _flow_bytes(self.settlement, self.settlement_unit)
            + _clock_bytes(self.time, tz)
            + _status_bytes(self.status)
        )
        return Frame(self.meter_type, self.address, 0x81, data)


@dataclass(frozen=True, slots=True)
class ReadReply(Reply):
    """81 to a read of any DI but 901F: DI + SER + ``payload`` (raw)."""

    meter_type: int
    address: str
    di: str
    payload: bytes = b""
    ser: int = 0

    @property
    def function(self) -> int:
        return 0x01

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        if self.di.upper() == DI_METER_DATA:
            raise ConfigError("use FlowReply for DI 901F")
        data = _di_bytes(self.di, di_order) + _byte(self.ser, "SER") + self.payload
        return Frame(self.meter_type, self.address, 0x81, data)


@dataclass(frozen=True, slots=True)
class AddressReply(Reply):
    """83: the meter's type and address in the header; data DI 810A + SER."""

    meter_type: int
    address: str
    ser: int = 0

    @property
    def function(self) -> int:
        return 0x03

    @property
    def di(self) -> str:
        return DI_ADDRESS

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        return Frame(
            self.meter_type, self.address, 0x83, _di_bytes(DI_ADDRESS, di_order) + _byte(self.ser, "SER")
        )


@dataclass(frozen=True, slots=True)
class WriteReply(Reply):
    """84: DI + SER + status (after a valve command: the valve bits show the new state)."""

    meter_type: int
    address: str
    di: str
    status: int = 0
    ser: int = 0

    @property
    def function(self) -> int:
        return 0x04

    @property
    def valve(self) -> ValveState:
        return valve_state(self.status)

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        data = _di_bytes(self.di, di_order) + _byte(self.ser, "SER") + _status_bytes(self.status)
        return Frame(self.meter_type, self.address, 0x84, data)


@dataclass(frozen=True, slots=True)
class ErrorReply(Reply):
    """Abnormal reply (D6 set: C1, C3, C4 ...) to ``function``: SER + status."""

    meter_type: int
    address: str
    function: int
    status: int = 0
    ser: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return status_names(self.status)

    def to_frame(self, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Frame:
        if self.function not in FUNCTIONS:
            raise ConfigError(f"function {self.function!r} is not a CJ/T 188 function code")
        data = _byte(self.ser, "SER") + _status_bytes(self.status)
        return Frame(self.meter_type, self.address, DIRECTION | ABNORMAL | self.function, data)


# --- decoding -------------------------------------------------------------------------------------
def _need(frame: Frame, size: int, what: str) -> None:
    if len(frame.data) != size:
        raise FrameError(f"CJ/T 188 {what}: {len(frame.data)} data bytes, expected {size}")


def _at_least(frame: Frame, size: int, what: str) -> None:
    if len(frame.data) < size:
        raise FrameError(f"CJ/T 188 {what}: {len(frame.data)} data bytes, expected at least {size}")


def _d_read(frame: Frame, order: str, tz: tzinfo) -> ReadRequest:
    _need(frame, 3, "read request")
    return ReadRequest(frame.meter_type, frame.address, _di_text(frame.data[:2], order), frame.data[2])


def _d_read_address(frame: Frame, order: str, tz: tzinfo) -> ReadAddress:
    _need(frame, 3, "read address")
    di = _di_text(frame.data[:2], order)
    if di != DI_ADDRESS:
        raise FrameError(f"CJ/T 188 read address with DI {di}, expected {DI_ADDRESS}")
    return ReadAddress(frame.meter_type, frame.address, frame.data[2])


def _d_write(frame: Frame, order: str, tz: tzinfo) -> ValveControl | WriteRequest:
    _at_least(frame, 3, "write request")
    data = frame.data
    di = _di_text(data[:2], order)
    if di == DI_VALVE:
        _need(frame, 4, "valve control")
        try:
            action = ValveAction(data[3])
        except ValueError as exc:
            raise FrameError(f"CJ/T 188 valve control with unknown action {data[3]:02x}") from exc
        return ValveControl(frame.meter_type, frame.address, action, data[2])
    return WriteRequest(frame.meter_type, frame.address, di, data[3:], data[2])


def _d_read_reply(frame: Frame, order: str, tz: tzinfo) -> FlowReply | ReadReply:
    _at_least(frame, 3, "read reply")
    data = frame.data
    di = _di_text(data[:2], order)
    if di != DI_METER_DATA:
        return ReadReply(frame.meter_type, frame.address, di, data[3:], data[2])
    _need(frame, 22, "901F reply")
    total, total_unit = _flow_of(data[3:8])
    settlement, settlement_unit = _flow_of(data[8:13])
    return FlowReply(
        frame.meter_type,
        frame.address,
        total,
        settlement,
        _clock_of(data[13:20], tz),
        data[20] | data[21] << 8,
        data[2],
        total_unit,
        settlement_unit,
    )


def _d_address_reply(frame: Frame, order: str, tz: tzinfo) -> AddressReply:
    # L=3 (DI + SER); some meters add their address again (L=10), which must then match the header
    data = frame.data
    if len(data) not in (3, 10):
        raise FrameError(f"CJ/T 188 address reply: {len(data)} data bytes, expected 3 or 10")
    di = _di_text(data[:2], order)
    if di != DI_ADDRESS:
        raise FrameError(f"CJ/T 188 address reply with DI {di}, expected {DI_ADDRESS}")
    if len(data) == 10 and decode_address(data[3:10]) != frame.address:
        raise FrameError(f"CJ/T 188 address reply: header {frame.address}, data {decode_address(data[3:10])}")
    return AddressReply(frame.meter_type, frame.address, data[2])


def _d_write_reply(frame: Frame, order: str, tz: tzinfo) -> WriteReply:
    _need(frame, 5, "write reply")
    data = frame.data
    return WriteReply(
        frame.meter_type, frame.address, _di_text(data[:2], order), data[3] | data[4] << 8, data[2]
    )


def _d_error(frame: Frame, order: str, tz: tzinfo) -> ErrorReply:
    _need(frame, 3, "abnormal reply")
    data = frame.data
    return ErrorReply(
        frame.meter_type, frame.address, frame.control & FUNCTION, data[1] | data[2] << 8, data[0]
    )


_DECODERS: dict[int, Callable[[Frame, str, tzinfo], Message]] = {
    0x01: _d_read,
    0x03: _d_read_address,
    0x04: _d_write,
    0x81: _d_read_reply,
    0x83: _d_address_reply,
    0x84: _d_write_reply,
    **{DIRECTION | ABNORMAL | f: _d_error for f in FUNCTIONS},
}


def encode(message: Message, *, di_order: str = DIOrder.MSB, preamble: int = 2, tz: tzinfo = UTC) -> bytes:
    """The wire bytes of ``message`` (``tz``: the zone of the meter's clock)."""
    if not isinstance(message, Message):
        raise ConfigError(f"not a CJ/T 188 message: {message!r}")
    return encode_frame(message.to_frame(di_order, tz), preamble)


def decode(buf_or_frame: bytes | Frame, *, di_order: str = DIOrder.MSB, tz: tzinfo = UTC) -> Message:
    """The message in one frame (bytes with any FE preamble, or a :class:`Frame` from a Deframer)."""
    frame = buf_or_frame if isinstance(buf_or_frame, Frame) else decode_frame(buf_or_frame)
    decoder = _DECODERS.get(frame.control)
    if decoder is None:
        raise FrameError(f"unknown CJ/T 188 control code {frame.control:02x}")
    return decoder(frame, di_order, tz)


# --- poller side ----------------------------------------------------------------------------------
def read(
    address: str,
    *,
    meter_type: int | str = 0x10,
    di: str = DI_METER_DATA,
    ser: int = 0,
    di_order: str = DIOrder.MSB,
    preamble: int = 2,
) -> bytes:
    """Read request bytes (default: 901F of a cold water meter); ``meter_type`` may be hex text ("10")."""
    frame = Frame(_meter_type(meter_type), address, 0x01, _di_bytes(di, di_order) + _byte(ser, "SER"))
    return encode_frame(frame, preamble)


def read_address(
    *, meter_type: int | str = ANY_METER_TYPE, ser: int = 0, di_order: str = DIOrder.MSB, preamble: int = 2
) -> bytes:
    return encode(ReadAddress(_meter_type(meter_type), WILDCARD, ser), di_order=di_order, preamble=preamble)


def valve(
    address: str,
    open_valve: bool,
    *,
    meter_type: int | str = 0x10,
    ser: int = 0,
    di_order: str = DIOrder.MSB,
    preamble: int = 2,
) -> bytes:
    """Valve control bytes: open (55) when ``open_valve`` else close (99)."""
    action = ValveAction.OPEN if open_valve else ValveAction.CLOSE
    return encode(
        ValveControl(_meter_type(meter_type), address, action, ser), di_order=di_order, preamble=preamble
    )


def meter_error(reply: ErrorReply) -> MeterError:
    names = status_names(reply.status)
    return MeterError(
        f"meter {reply.address} answered function {reply.function:02X} abnormally: {', '.join(names)}",
        code=reply.status,
        names=names,
    )


def reply_filter(
    expect_address: str, function: int, di: str | None = None, *, di_order: str = DIOrder.MSB
) -> Callable[[Frame], bool]:
    """A cheap predicate for a link's ``expect``: a reply from ``expect_address`` to ``function``, for ``di``
    when given (abnormal replies carry no DI and always pass)."""
    return reply_predicate(
        expect_address, function, _di_bytes(di, di_order) if di is not None else None, FUNCTION
    )


def parse_reply(
    buf_or_frame: bytes | Frame,
    expect_address: str,
    expect_di: str | None = None,
    *,
    function: int | None = None,
    di_order: str = DIOrder.MSB,
    tz: tzinfo = UTC,
) -> Reply:
    """Decode and check a reply to a request sent to ``expect_address``.

    :class:`AddressError` for another meter's reply, :class:`UnexpectedReply` for a request (echo), a reply
    to another ``function`` (the request's control code) or DI, :class:`MeterError` for an abnormal reply.
    """
    message = decode(buf_or_frame, di_order=di_order, tz=tz)
    return check_reply_message(message, Reply, expect_address, expect_di, function, _raise_for, FUNCTION)


def _raise_for(message: object) -> None:
    if isinstance(message, ErrorReply):
        raise meter_error(message)


def reading_values(reply: Reply) -> dict[str, object]:
    """Reading fields of a reply: a 901F reply gives ``total`` (m3), ``supply`` and ``battery_low``; a write
    reply (valve command) ``supply`` and ``battery_low``; anything else nothing."""
    if isinstance(reply, FlowReply):
        status = reply.status
        return {
            "total": reply.total,
            "supply": _SUPPLY_OF_STATUS[status & VALVE_MASK],
            "battery_low": bool(status & BATTERY_LOW),
        }
    if isinstance(reply, WriteReply):
        status = reply.status
        return {"supply": _SUPPLY_OF_STATUS[status & VALVE_MASK], "battery_low": bool(status & BATTERY_LOW)}
    return {}
