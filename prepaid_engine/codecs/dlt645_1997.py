"""DL/T 645-1997 codec, sans-I/O, both directions, on the DL/T 645-2007 framing.

The 1997 edition frames exactly like 2007 (``FE.. 68 A0..A5 68 C L DATA CS 16``, data + 0x33), so it reuses
:class:`.dlt645.Frame`, :func:`.dlt645.encode_frame`, :func:`.dlt645.decode_frame` and
:class:`.dlt645.Deframer` (re-exported here). What differs: 2-byte data identifiers (``"9010"``, sent
``10 90``), no operator code, and the control codes:

===========  ================================  ==============================
C            request                           reply ok / error
===========  ================================  ==============================
01           :class:`ReadRequest`              81 (A1 more follows) / C1 ERR
02           :class:`ReadFollowUp`             82 / A2 / C2
03           :class:`ReReadRequest` (L=0)      83 / A3 / C3 (the last reply again)
04           :class:`WriteRequest`             84 (L=0) / C4
08           :class:`BroadcastTime` to 99x6    none
0A           :class:`WriteAddress`             8A / CA
0C           :class:`ChangeBaud`               8C (+ the baud byte) / CC
0F           :class:`ChangePassword`           8F (+ the new password) / CF
===========  ================================  ==============================

Replies: :class:`ReadReply` (``function`` 01, 02 or 03), :class:`AckReply`, :class:`ErrorReply`.
``encode(message)``/``decode(buf_or_frame)``; builders :func:`read`, :func:`read_follow_up`, :func:`write`,
:func:`broadcast_time`; :func:`reply_filter` and :func:`parse_reply` as in 2007. The identifier table
:data:`DI_TABLE` (energies 9010..9014 and block 901F, voltages B611..B613 XXX V, currents B621..B623
XX.XX A, powers B630..B633 XX.XXXX kW, power factor B650 X.XXX, date C010, time C011, meter number C032)
feeds :func:`decode_value`, :func:`encode_value` and :func:`reading_values`.

The ERR bit names of 1997 (bit0 illegal data, bit1 wrong identifier, bit2 wrong password, bits 4-6 too many
year zones / day periods / tariffs) are from memory [UNCERTAIN]; so are the baud codes (as in 2007) and the
wildcard address for write-address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from ..errors import ConfigError, FrameError, MeterError
from .bcd import bcd_byte, decode_address
from .dlt645.error_bits import bit_names
from .dlt645.fields import auth_bytes, byte_field, di_encoder, di_text, hex_text, time_bytes, time_of
from .dlt645.frame import (
    BROADCAST,
    FUNCTION,
    LAYOUT,
    MORE,
    WILDCARD,
    Deframer,
    Frame,
    address_bytes,
    decode_frame,
    encode_frame,
)
from .dlt645.master import check_reply, frame_filter
from .dlt645.messages import baud_byte, baud_of
from .dlt645_di import DataItem, Kind, compile_table, encode_item, lookup
from .framing import ABNORMAL, DIRECTION

__all__ = [
    "BROADCAST",
    "DI_TABLE",
    "ERR_BITS",
    "LAYOUT",
    "WILDCARD",
    "AckReply",
    "BroadcastTime",
    "ChangeBaud",
    "ChangePassword",
    "Deframer",
    "ErrorReply",
    "Frame",
    "Message",
    "ReReadRequest",
    "ReadFollowUp",
    "ReadReply",
    "ReadRequest",
    "Reply",
    "Request",
    "WriteAddress",
    "WriteRequest",
    "broadcast_time",
    "decode",
    "decode_frame",
    "decode_value",
    "encode",
    "encode_frame",
    "encode_value",
    "error_names",
    "meter_error",
    "parse_reply",
    "read",
    "read_follow_up",
    "reading_values",
    "reply_filter",
    "write",
]


# --- identifiers ------------------------------------------------------------------------------------------
def _build_table() -> dict[str, DataItem]:
    bands = ("total", "sharp", "peak", "flat", "valley")
    energy = [
        DataItem(f"901{n}", f"forward active energy {band}", 4, 2, False, "kWh", band)
        for n, band in enumerate(bands)
    ]
    voltage = [
        DataItem(f"B61{n}", f"voltage {p}", 2, 0, False, "V", "voltage" if n == 1 else None)
        for n, p in enumerate("ABC", start=1)
    ]
    current = [
        DataItem(f"B62{n}", f"current {p}", 2, 2, False, "A", "current" if n == 1 else None)
        for n, p in enumerate("ABC", start=1)
    ]
    power = [
        DataItem(f"B63{n}", f"active power {p}", 3, 4, False, "kW", "power" if n == 0 else None)
        for n, p in enumerate(("total", "A", "B", "C"))
    ]
    items: list[DataItem] = []
    for group, di, label, unit in (
        (energy, "901F", "forward active energy block", "kWh"),
        (voltage, "B61F", "voltage block", "V"),
        (current, "B62F", "current block", "A"),
        (power, "B63F", "active power block", "kW"),
    ):
        items += group
        members = tuple(i.di for i in group)
        items.append(
            DataItem(di, label, sum(i.length for i in group), unit=unit, kind=Kind.BLOCK, members=members)
        )
    items.append(DataItem("B650", "power factor total", 2, 3, False, "", "power_factor"))
    items.append(DataItem("C010", "date and weekday", 4, kind=Kind.DATE))
    items.append(DataItem("C011", "time", 3, kind=Kind.TIME))
    items.append(DataItem("C032", "meter number", 6, kind=Kind.DIGITS))
    return {item.di: item for item in items}


DI_TABLE: dict[str, DataItem] = _build_table()
_COMPILED = compile_table(DI_TABLE)


def _item(di: str) -> DataItem:
    return lookup(di, DI_TABLE, what="DL/T 645-1997 data identifier")


def decode_value(di: str, raw: bytes):
    """The typed value of a 1997 reply's data (after the DI): Decimal, int, date, time, str or tuple."""
    decoder = _COMPILED.decoders.get(di)
    if decoder is None:
        decoder = _COMPILED.decoders[_item(di).di]
    return decoder(raw)


def encode_value(di: str, value, *, rounding: str | None = None) -> bytes:
    """The bytes a 1997 meter sends for ``value`` of ``di``."""
    return encode_item(_item(di), value, rounding=rounding, table=DI_TABLE)


def reading_values(di: str, raw: bytes) -> dict[str, object]:
    """``{READING_FIELDS name: value}`` of a 1997 reply: 9010..9014/901F energies, B611 voltage, B621 current,
    B630 power, B650 power factor."""
    reader = _COMPILED.readers.get(di)
    if reader is None:
        reader = _COMPILED.readers[_item(di).di]
    return reader(raw)


_di_bytes = di_encoder(4, "DL/T 645-1997")


# --- messages -----------------------------------------------------------------------------------------------
class Message:
    """Base of every DL/T 645-1997 message."""

    __slots__ = ()

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        raise NotImplementedError


class Request(Message):
    __slots__ = ()


class Reply(Message):
    """Every reply has ``address`` and ``function`` (the request's control code)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ReadRequest(Request):
    """C=01: read ``di``."""

    address: str
    di: str

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x01, _di_bytes(self.di))


@dataclass(frozen=True, slots=True)
class ReadFollowUp(Request):
    """C=02: the next frame of a reply that had ``more`` set."""

    address: str
    di: str

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x02, _di_bytes(self.di))


@dataclass(frozen=True, slots=True)
class ReReadRequest(Request):
    """C=03, L=0: send the last reply again."""

    address: str

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x03, b"")


@dataclass(frozen=True, slots=True)
class WriteRequest(Request):
    """C=04: DI + PA P0 P1 P2 + value (no operator code in 1997)."""

    address: str
    di: str
    value: bytes
    password_level: int = 2
    password: str = "000000"

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(
            self.address,
            0x04,
            _di_bytes(self.di) + auth_bytes(self.password_level, self.password, None) + self.value,
        )


@dataclass(frozen=True, slots=True)
class BroadcastTime(Request):
    """C=08 to 99x6: ss mm hh DD MM YY. No reply."""

    when: datetime
    address: str = BROADCAST

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x08, time_bytes(self.when, tz))


@dataclass(frozen=True, slots=True)
class WriteAddress(Request):
    """C=0A: set the address of the one meter on the bus."""

    new_address: str
    address: str = WILDCARD

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x0A, address_bytes(self.new_address))


@dataclass(frozen=True, slots=True)
class ChangeBaud(Request):
    """C=0C: one bit per rate, as in 2007."""

    address: str
    baud: int

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x0C, baud_byte(self.baud))


@dataclass(frozen=True, slots=True)
class ChangePassword(Request):
    """C=0F: old PA+password, new PA+password."""

    address: str
    old_level: int
    old_password: str
    new_level: int
    new_password: str

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        data = auth_bytes(self.old_level, self.old_password, None) + auth_bytes(
            self.new_level, self.new_password, None
        )
        return Frame(self.address, 0x0F, data)


READ_FUNCTIONS = frozenset((0x01, 0x02, 0x03))
ACK_FUNCTIONS = frozenset((0x04, 0x0A, 0x0C, 0x0F))
ERROR_FUNCTIONS = frozenset((0x01, 0x02, 0x03, 0x04, 0x0A, 0x0C, 0x0F))


@dataclass(frozen=True, slots=True)
class ReadReply(Reply):
    """81/82/83 (A1/A2/A3 with ``more``): DI + value; ``function`` is the read (01), follow-up (02) or
    re-read (03) it answers."""

    address: str
    di: str
    value: bytes
    more: bool = False
    function: int = 0x01

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        if self.function not in READ_FUNCTIONS:
            raise ConfigError(f"function {self.function:#04x} is not a read")
        control = DIRECTION | self.function | (MORE if self.more else 0)
        return Frame(self.address, control, _di_bytes(self.di) + self.value)


@dataclass(frozen=True, slots=True)
class AckReply(Reply):
    """84 / 8A / 8C / 8F: done; ``data`` is the baud byte (8C) or the new PA+password (8F)."""

    address: str
    function: int
    data: bytes = b""

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        if self.function not in ACK_FUNCTIONS:
            raise ConfigError(f"function {self.function:#04x} has no acknowledgement in DL/T 645-1997")
        return Frame(self.address, DIRECTION | self.function, self.data)


@dataclass(frozen=True, slots=True)
class ErrorReply(Reply):
    """C1 / C4 / ...: ``err`` is the ERR byte (:data:`ERR_BITS`)."""

    address: str
    function: int
    err: int

    @property
    def names(self) -> tuple[str, ...]:
        return error_names(self.err)

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        if self.function not in ERROR_FUNCTIONS:
            raise ConfigError(f"function {self.function:#04x} has no error reply in DL/T 645-1997")
        return Frame(self.address, DIRECTION | ABNORMAL | self.function, byte_field(self.err, "ERR"))


# --- decoding ----------------------------------------------------------------------------------------------
def _need(frame: Frame, size: int, what: str) -> None:
    if len(frame.data) != size:
        raise FrameError(f"DL/T 645-1997 {what}: {len(frame.data)} data bytes, expected {size}")


def _d_read(frame: Frame, tz: tzinfo) -> ReadRequest:
    _need(frame, 2, "read")
    return ReadRequest(frame.address, di_text(frame.data))


def _d_follow_up(frame: Frame, tz: tzinfo) -> ReadFollowUp:
    _need(frame, 2, "read follow-up")
    return ReadFollowUp(frame.address, di_text(frame.data))


def _d_reread(frame: Frame, tz: tzinfo) -> ReReadRequest:
    _need(frame, 0, "re-read")
    return ReReadRequest(frame.address)


def _d_write(frame: Frame, tz: tzinfo) -> WriteRequest:
    data = frame.data
    if len(data) < 6:
        raise FrameError(f"DL/T 645-1997 write: {len(data)} data bytes, expected at least 6")
    return WriteRequest(frame.address, di_text(data[:2]), data[6:], bcd_byte(data[2]), hex_text(data[3:6]))


def _d_broadcast_time(frame: Frame, tz: tzinfo) -> BroadcastTime:
    _need(frame, 6, "broadcast time")
    return BroadcastTime(time_of(frame.data, tz), frame.address)


def _d_write_address(frame: Frame, tz: tzinfo) -> WriteAddress:
    _need(frame, 6, "write address")
    return WriteAddress(decode_address(frame.data), frame.address)


def _d_baud(frame: Frame, tz: tzinfo) -> ChangeBaud:
    _need(frame, 1, "change baud")
    return ChangeBaud(frame.address, baud_of(frame.data[0]))


def _d_password(frame: Frame, tz: tzinfo) -> ChangePassword:
    _need(frame, 8, "change password")
    data = frame.data
    return ChangePassword(
        frame.address,
        bcd_byte(data[0]),
        hex_text(data[1:4]),
        bcd_byte(data[4]),
        hex_text(data[5:8]),
    )


def _d_read_reply(frame: Frame, tz: tzinfo) -> ReadReply:
    data = frame.data
    if len(data) < 2:
        raise FrameError(f"DL/T 645-1997 read reply: {len(data)} data bytes, expected at least 2")
    return ReadReply(
        frame.address, di_text(data[:2]), data[2:], bool(frame.control & MORE), frame.control & FUNCTION
    )


def _d_ack(frame: Frame, tz: tzinfo) -> AckReply:
    return AckReply(frame.address, frame.control & FUNCTION, frame.data)


def _d_error(frame: Frame, tz: tzinfo) -> ErrorReply:
    _need(frame, 1, "error reply")
    return ErrorReply(frame.address, frame.control & FUNCTION, frame.data[0])


_DECODERS: dict[int, Callable[[Frame, tzinfo], Message]] = {
    0x01: _d_read,
    0x02: _d_follow_up,
    0x03: _d_reread,
    0x04: _d_write,
    0x08: _d_broadcast_time,
    0x0A: _d_write_address,
    0x0C: _d_baud,
    0x0F: _d_password,
    **{DIRECTION | f | more: _d_read_reply for f in READ_FUNCTIONS for more in (0, MORE)},
    **{DIRECTION | f: _d_ack for f in ACK_FUNCTIONS},
    **{DIRECTION | ABNORMAL | f: _d_error for f in ERROR_FUNCTIONS},
}


def encode(message: Message, *, preamble: int = 4, tz: tzinfo = UTC) -> bytes:
    """The wire bytes of a DL/T 645-1997 ``message``."""
    if not isinstance(message, Message):
        raise ConfigError(f"not a DL/T 645-1997 message: {message!r}")
    return encode_frame(message.to_frame(tz), preamble)


def decode(buf_or_frame: bytes | Frame, *, tz: tzinfo = UTC) -> Message:
    """The 1997 message in one frame (bytes with any FE preamble, or a :class:`Frame`)."""
    frame = buf_or_frame if isinstance(buf_or_frame, Frame) else decode_frame(buf_or_frame)
    decoder = _DECODERS.get(frame.control)
    if decoder is None:
        raise FrameError(f"unknown DL/T 645-1997 control code {frame.control:02x}")
    return decoder(frame, tz)


# --- errors ------------------------------------------------------------------------------------------------
ERR_BITS: tuple[str, ...] = (
    "illegal_data",
    "no_data",  # wrong data identifier
    "unauthorised",  # wrong password
    "bit3",
    "year_zones",
    "day_periods",
    "tariffs",
)


def error_names(err: int) -> tuple[str, ...]:
    return bit_names(err, ERR_BITS)


def meter_error(reply: ErrorReply) -> MeterError:
    names = error_names(reply.err)
    reason = ", ".join(names) or "no reason given"
    return MeterError(
        f"meter {reply.address} refused function {reply.function:02X}: {reason}", code=reply.err, names=names
    )


def _raise_for(message: object) -> None:
    if isinstance(message, ErrorReply):
        raise meter_error(message)


# --- poller side --------------------------------------------------------------------------------------------
def read(address: str, di: str, *, preamble: int = 4) -> bytes:
    """Read request bytes for a 1997 identifier (``"901F"``)."""
    return encode_frame(Frame(address, 0x01, _di_bytes(di)), preamble)


def read_follow_up(address: str, di: str, *, preamble: int = 4) -> bytes:
    return encode_frame(Frame(address, 0x02, _di_bytes(di)), preamble)


def write(
    address: str,
    di: str,
    value: object,
    *,
    password_level: int | str = 2,
    password: str = "000000",
    preamble: int = 4,
    rounding: str | None = None,
) -> bytes:
    raw = value if isinstance(value, bytes) else encode_value(di, value, rounding=rounding)
    return encode(WriteRequest(address, di, raw, password_level, password), preamble=preamble)


def broadcast_time(when: datetime, *, preamble: int = 4, tz: tzinfo = UTC) -> bytes:
    return encode(BroadcastTime(when), preamble=preamble, tz=tz)


def reply_filter(expect_address: str, function: int, di: str | None = None) -> Callable[[Frame], bool]:
    """Predicate for a link's ``expect``: a reply from ``expect_address`` to ``function`` for ``di``."""
    return frame_filter(expect_address, function, _di_bytes(di) if di is not None else None)


def parse_reply(
    buf_or_frame: bytes | Frame,
    expect_address: str,
    expect_di: str | None = None,
    *,
    function: int | None = None,
    tz: tzinfo = UTC,
) -> Reply:
    """Decode and check a 1997 reply: :class:`AddressError`, :class:`UnexpectedReply`, :class:`MeterError`
    as in :func:`.dlt645.parse_reply`."""
    message = decode(buf_or_frame, tz=tz)
    return check_reply(message, Reply, expect_address, expect_di, function, _raise_for)
