"""DL/T 645-2007 messages: typed frozen dataclasses, h11-style events, for both directions.

``encode(message, *, preamble=4, tz=UTC)`` -> bytes and ``decode(buf_or_frame, *, tz=UTC)`` -> message; the
direction bit (D7) tells requests from replies, an unknown control code is a :class:`FrameError`. ``tz`` is
the zone of the meter's clock: times in messages are timezone-aware datetimes, written on the wire as
wall-clock time in ``tz`` (seconds; load-record starts minutes) and read back as UTC. Chinese meters keep
local time: pass ``tz=ZoneInfo("Asia/Shanghai")``.

Requests (master -> meter): :class:`ReadRequest` (11), :class:`ReadFollowUp` (12), :class:`ReadAddress` (13),
:class:`WriteRequest` (14), :class:`WriteAddress` (15), :class:`Freeze` (16), :class:`ChangeBaud` (17),
:class:`ChangePassword` (18), :class:`RelayControl` (1C), :class:`BroadcastTime` (08),
:class:`SecurityRequest` (03, ESAM; recharge is DI ``070102FF``).

Replies (meter -> master): :class:`ReadReply` (91/B1, follow-up 92/B2 with ``seq``), :class:`AddressReply`
(93), :class:`AckReply` (94 95 96 97 98 9C), :class:`ErrorReply` (D1 D4 DC ...: ERR byte),
:class:`SecurityReply` (83), :class:`SecurityErrorReply` (C3: 2-byte SERR word).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from ...errors import ConfigError, FrameError
from ...types import CommandKind
from ..bcd import bcd_byte, decode_address, to_bcd_byte
from ..framing import ABNORMAL, DIRECTION
from .error_bits import error_names, serr_names
from .fields import (
    at_least,
    auth_bytes,
    byte_field,
    di_bytes,
    di_text,
    hex_field,
    hex_text,
    minute_bytes,
    need,
    time_bytes,
    time_of,
)
from .frame import BROADCAST, FUNCTION, MORE, WILDCARD, Frame, address_bytes, decode_frame, encode_frame

MAX_WRITE_DATA = 50
RECHARGE_DI = "070102FF"


class Message:
    """Base of every DL/T 645-2007 message."""

    __slots__ = ()

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        raise NotImplementedError


class Request(Message):
    """A master -> meter message (D7 = 0)."""

    __slots__ = ()


class Reply(Message):
    """A meter -> master message (D7 = 1). Every reply has ``address`` and ``function`` (the request's
    function code, e.g. 0x11 for a read)."""

    __slots__ = ()


class RelayCode(enum.IntEnum):
    """N1 of relay control (C=1C)."""

    TRIP = 0x1A
    CLOSE_ALLOWED = 0x1B  # the customer closes the relay with the meter's button
    CLOSE = 0x1C  # close directly
    TRIP_AUTO_RESTORE = 0x1D  # trip, the meter restores by itself
    TRIP_AUTO_RESTORE_2 = 0x1E  # second trip-with-automatic-restore variant
    ALARM = 0x2A
    ALARM_CLEAR = 0x2B
    KEEP_POWER = 0x3A  # keep power: trips are blocked
    KEEP_POWER_CLEAR = 0x3B


# which N1 carries a poller command (CLOSE: close directly; a site that wants the customer to press the
# button sends CLOSE_ALLOWED itself)
COMMAND_RELAY_CODES: dict[CommandKind, RelayCode] = {
    CommandKind.TRIP: RelayCode.TRIP,
    CommandKind.CLOSE: RelayCode.CLOSE,
    CommandKind.KEEP_POWER_ON: RelayCode.KEEP_POWER,
    CommandKind.KEEP_POWER_OFF: RelayCode.KEEP_POWER_CLEAR,
}


@dataclass(frozen=True, slots=True)
class ReadRequest(Request):
    """C=11: read ``di``; ``count`` (N) and ``time`` (from when, minute resolution) for load records."""

    address: str
    di: str
    count: int | None = None
    time: datetime | None = None

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        data = di_bytes(self.di)
        if self.count is not None:
            data += bytes((to_bcd_byte(self.count),))  # N: BCD [UNCERTAIN]
            if self.time is not None:
                data += minute_bytes(self.time, tz)
        elif self.time is not None:
            raise ConfigError("a load-record read with a time needs a count")
        return Frame(self.address, 0x11, data)


@dataclass(frozen=True, slots=True)
class ReadFollowUp(Request):
    """C=12: the next frame (``seq``) of a reply that had ``more`` set."""

    address: str
    di: str
    seq: int

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x12, di_bytes(self.di) + byte_field(self.seq, "seq"))


@dataclass(frozen=True, slots=True)
class ReadAddress(Request):
    """C=13, L=0, normally to the wildcard address: the one meter on the bus answers with its address."""

    address: str = WILDCARD

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x13, b"")


@dataclass(frozen=True, slots=True)
class WriteRequest(Request):
    """C=14: write ``value`` (encoded bytes, see ``encode_value``) to ``di``."""

    address: str
    di: str
    value: bytes
    password_level: int = 2
    password: str = "000000"
    operator: str = "00000000"

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        data = di_bytes(self.di) + auth_bytes(self.password_level, self.password, self.operator) + self.value
        if len(data) > MAX_WRITE_DATA:
            raise ConfigError(f"a DL/T 645 write carries at most {MAX_WRITE_DATA} bytes, not {len(data)}")
        return Frame(self.address, 0x14, data)


@dataclass(frozen=True, slots=True)
class WriteAddress(Request):
    """C=15: set the communication address of the one meter on the bus (sent to the wildcard)."""

    new_address: str
    address: str = WILDCARD

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x15, address_bytes(self.new_address))


@dataclass(frozen=True, slots=True)
class BroadcastTime(Request):
    """C=08 to 99x6: set every meter's clock (ss mm hh DD MM YY in the meters' zone). No reply."""

    when: datetime
    address: str = BROADCAST

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x08, time_bytes(self.when, tz))


@dataclass(frozen=True, slots=True)
class Freeze(Request):
    """C=16: freeze at mm hh DD MM; 99 in a field means "every" (99 99 99 99 = freeze now)."""

    address: str
    minute: int = 99
    hour: int = 99
    day: int = 99
    month: int = 99

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(
            self.address, 0x16, bytes(to_bcd_byte(v) for v in (self.minute, self.hour, self.day, self.month))
        )


BAUD_CODES: dict[int, int] = {600: 0x02, 1200: 0x04, 2400: 0x08, 4800: 0x10, 9600: 0x20, 19200: 0x40}
_BAUD_OF_CODE = {code: baud for baud, code in BAUD_CODES.items()}


@dataclass(frozen=True, slots=True)
class ChangeBaud(Request):
    """C=17: change the meter's baud rate (one bit per rate). The meter answers 97 with the same byte."""

    address: str
    baud: int

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x17, baud_byte(self.baud))


def baud_byte(baud: int) -> bytes:
    """The one-byte baud code of ``baud`` (shared with DL/T 645-1997)."""
    code = BAUD_CODES.get(baud)
    if code is None:
        raise ConfigError(f"DL/T 645 has no baud code for {baud}")
    return bytes((code,))


def baud_of(code: int) -> int:
    """The baud rate a change-baud request's data byte names (shared with DL/T 645-1997)."""
    baud = _BAUD_OF_CODE.get(code)
    if baud is None:
        raise FrameError(f"baud code {code:02x} names no single rate")
    return baud


@dataclass(frozen=True, slots=True)
class ChangePassword(Request):
    """C=18: DI 04000C(new level + 1), old PA+password, new PA+password."""

    address: str
    old_level: int
    old_password: str
    new_level: int
    new_password: str

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        if not 0 <= self.new_level <= 9:
            raise ConfigError(f"password level {self.new_level} is outside 0..9")
        data = (
            di_bytes(f"04000C{self.new_level + 1:02X}")
            + auth_bytes(self.old_level, self.old_password, None)
            + auth_bytes(self.new_level, self.new_password, None)
        )
        return Frame(self.address, 0x18, data)


@dataclass(frozen=True, slots=True)
class RelayControl(Request):
    """C=1C, L=16: PA P0P1P2 C0..C3 N1 N2 N3..N8; N1 = ``code``, N2 = 00, N3..N8 = ``valid_until``."""

    address: str
    code: RelayCode
    valid_until: datetime
    password_level: int = 2
    password: str = "000000"
    operator: str = "00000000"

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        data = (
            auth_bytes(self.password_level, self.password, self.operator)
            + bytes((_relay_code(self.code), 0))
            + time_bytes(self.valid_until, tz)
        )
        return Frame(self.address, 0x1C, data)


@dataclass(frozen=True, slots=True)
class SecurityRequest(Request):
    """C=03 (ESAM security command): DI + operator code + payload (recharge: DI 070102FF)."""

    address: str
    di: str
    operator: str = "00000000"
    payload: bytes = b""

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(
            self.address,
            0x03,
            di_bytes(self.di) + hex_field(self.operator, 4, "operator code") + self.payload,
        )


@dataclass(frozen=True, slots=True)
class ReadReply(Reply):
    """91 (B1: ``more`` frames follow): DI + value. With ``seq`` it answers a follow-up: 92/B2, DI + value
    + SEQ."""

    address: str
    di: str
    value: bytes
    more: bool = False
    seq: int | None = None

    @property
    def function(self) -> int:
        return 0x11 if self.seq is None else 0x12

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        control = (0x91 if self.seq is None else 0x92) | (MORE if self.more else 0)
        data = di_bytes(self.di) + self.value
        if self.seq is not None:
            data += byte_field(self.seq, "seq")
        return Frame(self.address, control, data)


@dataclass(frozen=True, slots=True)
class AddressReply(Reply):
    """93: the meter's address (in the header and as data)."""

    address: str

    @property
    def function(self) -> int:
        return 0x13

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x93, address_bytes(self.address))


ACK_FUNCTIONS = frozenset((0x14, 0x15, 0x16, 0x17, 0x18, 0x1C))
ERROR_FUNCTIONS = frozenset((0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x1C))


@dataclass(frozen=True, slots=True)
class AckReply(Reply):
    """94 / 95 / 96 / 97 / 98 / 9C: the request ``function`` was done. ``data``: 97 the baud byte, 98 the new
    PA+password; empty otherwise."""

    address: str
    function: int
    data: bytes = b""

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        if self.function not in ACK_FUNCTIONS:
            raise ConfigError(f"function {self.function:#04x} has no normal acknowledgement")
        return Frame(self.address, DIRECTION | self.function, self.data)


@dataclass(frozen=True, slots=True)
class ErrorReply(Reply):
    """D1 / D2 / D4 / DC ...: the request ``function`` failed; ``err`` is the ERR byte (:data:`ERR_BITS`)."""

    address: str
    function: int
    err: int

    @property
    def names(self) -> tuple[str, ...]:
        return error_names(self.err)

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        if self.function not in ERROR_FUNCTIONS:
            raise ConfigError(f"function {self.function:#04x} has no ERR reply (security errors: SERR)")
        return Frame(self.address, DIRECTION | ABNORMAL | self.function, byte_field(self.err, "ERR"))


@dataclass(frozen=True, slots=True)
class SecurityReply(Reply):
    """83: DI + payload of a security command's answer."""

    address: str
    di: str
    payload: bytes = b""

    @property
    def function(self) -> int:
        return 0x03

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x83, di_bytes(self.di) + self.payload)


@dataclass(frozen=True, slots=True)
class SecurityErrorReply(Reply):
    """C3: a security command failed; ``serr`` is the 2-byte SERR word (see :data:`SERR_BITS`)."""

    address: str
    serr: int

    @property
    def function(self) -> int:
        return 0x03

    @property
    def names(self) -> tuple[str, ...]:
        return serr_names(self.serr)

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        if not 0 <= self.serr <= 0xFFFF:
            raise ConfigError(f"SERR {self.serr!r} is not a 16-bit word")
        return Frame(self.address, 0xC3, self.serr.to_bytes(2, "little"))


def _relay_code(code: int) -> int:
    try:
        return RelayCode(code)
    except ValueError as exc:
        raise ConfigError(f"{code!r} is not a relay control code (N1)") from exc


# --- decoding: control code -> decoder ------------------------------------------------------------
def _d_read(frame: Frame, tz: tzinfo) -> ReadRequest:
    data = frame.data
    size = len(data)
    if size == 4:
        return ReadRequest(frame.address, di_text(data))
    if size == 5:
        return ReadRequest(frame.address, di_text(data[:4]), bcd_byte(data[4]))
    if size == 10:
        return ReadRequest(frame.address, di_text(data[:4]), bcd_byte(data[4]), time_of(data[5:], tz))
    raise FrameError(f"read request: {size} data bytes, expected 4, 5 or 10")


def _d_follow_up(frame: Frame, tz: tzinfo) -> ReadFollowUp:
    need(frame, 5, "read follow-up")
    return ReadFollowUp(frame.address, di_text(frame.data[:4]), frame.data[4])


def _d_read_address(frame: Frame, tz: tzinfo) -> ReadAddress:
    need(frame, 0, "read address")
    return ReadAddress(frame.address)


def _d_write(frame: Frame, tz: tzinfo) -> WriteRequest:
    at_least(frame, 12, "write")
    data = frame.data
    return WriteRequest(
        frame.address,
        di_text(data[:4]),
        data[12:],
        bcd_byte(data[4]),
        hex_text(data[5:8]),
        hex_text(data[8:12]),
    )


def _d_write_address(frame: Frame, tz: tzinfo) -> WriteAddress:
    need(frame, 6, "write address")
    return WriteAddress(decode_address(frame.data), frame.address)


def _d_broadcast_time(frame: Frame, tz: tzinfo) -> BroadcastTime:
    need(frame, 6, "broadcast time")
    return BroadcastTime(time_of(frame.data, tz), frame.address)


def _d_freeze(frame: Frame, tz: tzinfo) -> Freeze:
    need(frame, 4, "freeze")
    minute, hour, day, month = (bcd_byte(b) for b in frame.data)
    return Freeze(frame.address, minute, hour, day, month)


def _d_baud(frame: Frame, tz: tzinfo) -> ChangeBaud:
    need(frame, 1, "change baud")
    return ChangeBaud(frame.address, baud_of(frame.data[0]))


def _d_password(frame: Frame, tz: tzinfo) -> ChangePassword:
    need(frame, 12, "change password")
    data = frame.data
    di = di_text(data[:4])
    new_level = bcd_byte(data[8])
    if di != f"04000C{new_level + 1:02X}":
        raise FrameError(f"change password: DI {di} does not match the new level {new_level}")
    return ChangePassword(
        frame.address,
        bcd_byte(data[4]),
        hex_text(data[5:8]),
        new_level,
        hex_text(data[9:12]),
    )


def _d_relay(frame: Frame, tz: tzinfo) -> RelayControl:
    need(frame, 16, "relay control")
    data = frame.data
    try:
        code = RelayCode(data[8])
    except ValueError as exc:
        raise FrameError(f"relay control: unknown N1 {data[8]:02x}") from exc
    if data[9]:
        raise FrameError(f"relay control: N2 is {data[9]:02x}, expected 00")
    return RelayControl(
        frame.address,
        code,
        time_of(data[10:16], tz),
        bcd_byte(data[0]),
        hex_text(data[1:4]),
        hex_text(data[4:8]),
    )


def _d_security(frame: Frame, tz: tzinfo) -> SecurityRequest:
    at_least(frame, 8, "security request")
    data = frame.data
    return SecurityRequest(frame.address, di_text(data[:4]), hex_text(data[4:8]), data[8:])


def _d_read_reply(frame: Frame, tz: tzinfo) -> ReadReply:
    data = frame.data
    more = bool(frame.control & MORE)
    if frame.control & FUNCTION == 0x12:
        at_least(frame, 5, "read follow-up reply")
        return ReadReply(frame.address, di_text(data[:4]), data[4:-1], more, data[-1])
    at_least(frame, 4, "read reply")
    return ReadReply(frame.address, di_text(data[:4]), data[4:], more)


def _d_address_reply(frame: Frame, tz: tzinfo) -> AddressReply:
    need(frame, 6, "address reply")
    address = decode_address(frame.data)
    if address != frame.address:
        raise FrameError(f"address reply: header {frame.address} but data {address}")
    return AddressReply(address)


def _d_ack(frame: Frame, tz: tzinfo) -> AckReply:
    return AckReply(frame.address, frame.control & FUNCTION, frame.data)


def _d_error(frame: Frame, tz: tzinfo) -> ErrorReply:
    need(frame, 1, "error reply")
    return ErrorReply(frame.address, frame.control & FUNCTION, frame.data[0])


def _d_security_reply(frame: Frame, tz: tzinfo) -> SecurityReply:
    at_least(frame, 4, "security reply")
    return SecurityReply(frame.address, di_text(frame.data[:4]), frame.data[4:])


def _d_security_error(frame: Frame, tz: tzinfo) -> SecurityErrorReply:
    need(frame, 2, "security error reply")
    return SecurityErrorReply(frame.address, int.from_bytes(frame.data, "little"))


_DECODERS: dict[int, Callable[[Frame, tzinfo], Message]] = {
    0x11: _d_read,
    0x12: _d_follow_up,
    0x13: _d_read_address,
    0x14: _d_write,
    0x15: _d_write_address,
    0x08: _d_broadcast_time,
    0x16: _d_freeze,
    0x17: _d_baud,
    0x18: _d_password,
    0x1C: _d_relay,
    0x03: _d_security,
    0x91: _d_read_reply,
    0xB1: _d_read_reply,
    0x92: _d_read_reply,
    0xB2: _d_read_reply,
    0x93: _d_address_reply,
    0x83: _d_security_reply,
    0xC3: _d_security_error,
    **{DIRECTION | f: _d_ack for f in ACK_FUNCTIONS},
    **{DIRECTION | ABNORMAL | f: _d_error for f in ERROR_FUNCTIONS},
}


def encode(message: Message, *, preamble: int = 4, tz: tzinfo = UTC) -> bytes:
    """The wire bytes of ``message`` (``preamble`` x FE first; ``tz``: the meter clock's zone)."""
    if not isinstance(message, Message):
        raise ConfigError(f"not a DL/T 645 message: {message!r}")
    return encode_frame(message.to_frame(tz), preamble)


def decode(buf_or_frame: bytes | Frame, *, tz: tzinfo = UTC) -> Message:
    """The message in one frame (bytes with any FE preamble, or a :class:`Frame` from a Deframer)."""
    frame = buf_or_frame if isinstance(buf_or_frame, Frame) else decode_frame(buf_or_frame)
    decoder = _DECODERS.get(frame.control)
    if decoder is None:
        raise FrameError(f"unknown DL/T 645-2007 control code {frame.control:02x}")
    return decoder(frame, tz)
