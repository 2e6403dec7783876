"""DL/T 645-2007 codec, sans-I/O, for both sides of the bus (the poller and the meter simulator).

Layers
------
**Frame** -- ``FE.. 68 A0..A5 68 C L DATA CS 16``. :class:`Frame` ``(address, control, data)`` holds the
*de-scrambled* data (the wire carries every data byte + 0x33) and, when decoded, the wire bytes in ``raw``.
``encode_frame(frame, preamble=4)`` / ``decode_frame(buf)`` convert one frame (``decode_frame`` accepts any
number of ``FE`` before it and nothing after it). CS is the sum from the first ``68`` to the last data byte,
mod 256; ``L <= 200``. Addresses are 12-digit strings as printed on the meter (``"123456789012"``), with
``"AA"`` wildcard bytes (:mod:`.bcd`).

**Messages** -- typed frozen dataclasses, h11-style events. ``encode(message, *, preamble=4, tz=UTC)`` ->
bytes and ``decode(buf_or_frame, *, tz=UTC)`` -> message; the direction bit (D7) tells requests from replies,
an unknown control code is a :class:`FrameError`. ``tz`` is the zone of the meter's clock: times in messages
are timezone-aware datetimes, written on the wire as wall-clock time in ``tz`` (seconds; load-record starts
minutes) and read back as UTC. Chinese meters keep local time: pass ``tz=ZoneInfo("Asia/Shanghai")``.

Requests (master -> meter): :class:`ReadRequest` (11), :class:`ReadFollowUp` (12), :class:`ReadAddress` (13),
:class:`WriteRequest` (14), :class:`WriteAddress` (15), :class:`Freeze` (16), :class:`ChangeBaud` (17),
:class:`ChangePassword` (18), :class:`RelayControl` (1C), :class:`BroadcastTime` (08),
:class:`SecurityRequest` (03, ESAM; recharge is DI ``070102FF``).

Replies (meter -> master): :class:`ReadReply` (91/B1, follow-up 92/B2 with ``seq``), :class:`AddressReply`
(93), :class:`AckReply` (94 95 96 97 98 9C), :class:`ErrorReply` (D1 D4 DC ...: ERR byte),
:class:`SecurityReply` (83), :class:`SecurityErrorReply` (C3: 2-byte SERR word).

Poller side
-----------
Builders return request bytes: :func:`read`, :func:`read_follow_up`, :func:`read_address`, :func:`write`,
:func:`relay`, :func:`broadcast_time`, :func:`recharge`. Feed what comes back into a :class:`Deframer`;
:func:`reply_filter` is a cheap predicate for a link's ``expect``; :func:`parse_reply` checks a reply
(``AddressError`` for another meter, ``UnexpectedReply`` for another function or DI, ``MeterError`` with
named bits for an error reply, ``DuplicateRecharge``/``RechargeRefused`` for security errors) and returns it.
``ReadReply.more`` asks for :class:`ReadFollowUp` frames. Values: :func:`decode_value` /
:func:`reading_values` / :func:`collect_reading` (from :mod:`.dlt645_di`) on ``reply.di, reply.value``.
:data:`COMMAND_RELAY_CODES` maps trip/close/keep-power commands to N1 codes.

Simulator side
--------------
A :class:`Deframer` on the meter's port, ``decode`` every frame into a request message, answer with
``encode(ReadReply(address, di, encode_value(di, value)))``, ``AckReply``, ``ErrorReply(.., err=ERR_NO_DATA)``
or ``SecurityErrorReply(.., serr=serr_word("duplicate_recharge"))``; :class:`~.dlt645_di.StatusWord3` builds
status word 3.

Password level, password and operator code go ``PA P0 P1 P2 C0 C1 C2 C3``; the password (6 hex digits, as
printed) and the operator code (8 hex digits) are sent least significant byte first like every other
multi-byte field [UNCERTAIN: the worked frames only show zeros]; so is N (BCD) of load-record reads.
Encoding a value that does not fit raises :class:`ConfigError`; bytes that are not a valid frame or message
raise :class:`FrameError`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from ..errors import (
    ConfigError,
    DuplicateRecharge,
    FrameError,
    MeterError,
    RechargeRefused,
)
from ..types import CommandKind
from .bcd import (
    DLT645_BROADCAST,
    DLT645_WILDCARD,
    address_encoder,
    bcd_byte,
    bcd_to_datetime,
    datetime_to_bcd,
    decode_address,
    to_bcd_byte,
)
from .dlt645_di import (
    DI_TABLE,
    DataItem,
    StatusWord3,
    collect_reading,
    decode_value,
    encode_value,
    reading_values,
)
from .framing import (
    ABNORMAL,
    DIRECTION,
    PREAMBLES,
    FrameDeframer,
    Layout,
    byte_field,
    check_preamble,
    check_reply_message,
    reply_predicate,
    seal,
    unwrap,
)

__all__ = [
    "ADDRESS_BYTES",
    "BROADCAST",
    "COMMAND_RELAY_CODES",
    "DI_TABLE",
    "ERR_BITS",
    "LAYOUT",
    "MAX_DATA",
    "RECHARGE_DI",
    "SERR_BITS",
    "WILDCARD",
    "AckReply",
    "AddressReply",
    "BroadcastTime",
    "ChangeBaud",
    "ChangePassword",
    "DataItem",
    "Deframer",
    "ErrorReply",
    "Frame",
    "Freeze",
    "Message",
    "ReadAddress",
    "ReadFollowUp",
    "ReadReply",
    "ReadRequest",
    "RelayCode",
    "RelayControl",
    "Reply",
    "Request",
    "SecurityErrorReply",
    "SecurityReply",
    "SecurityRequest",
    "StatusWord3",
    "WriteAddress",
    "WriteRequest",
    "broadcast_time",
    "collect_reading",
    "decode",
    "decode_frame",
    "decode_value",
    "encode",
    "encode_frame",
    "encode_value",
    "error_names",
    "meter_error",
    "parse_reply",
    "raise_for",
    "read",
    "read_address",
    "read_follow_up",
    "reading_values",
    "recharge",
    "relay",
    "reply_filter",
    "security_error",
    "serr_names",
    "serr_word",
    "write",
]

ADDRESS_BYTES = 6
BROADCAST = DLT645_BROADCAST
WILDCARD = DLT645_WILDCARD
MAX_DATA = 200
MAX_WRITE_DATA = 50
RECHARGE_DI = "070102FF"
LAYOUT = Layout("DL/T 645", length_at=9, address_from=1, address_to=7, second_start=7, max_data=MAX_DATA)

_ADD33 = bytes((b + 0x33) & 0xFF for b in range(256))
_SUB33 = bytes((b - 0x33) & 0xFF for b in range(256))

# control byte: D7 direction (1 = reply, DIRECTION), D6 abnormal reply (ABNORMAL), D5 more frames follow,
# D4..D0 function
MORE = 0x20
FUNCTION = 0x1F


# --- frame layer ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Frame:
    """One DL/T 645 frame; ``data`` is de-scrambled, ``raw`` the wire bytes when it was decoded."""

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

    def encode(self, preamble: int = 4) -> bytes:
        return encode_frame(self, preamble)


_address_bytes = address_encoder(ADDRESS_BYTES)


def encode_frame(frame: Frame, preamble: int = 4) -> bytes:
    """The wire bytes of ``frame``: ``preamble`` x FE, header, data + 0x33, CS, 16."""
    data = frame.data
    if len(data) > MAX_DATA:
        raise ConfigError(f"DL/T 645 data is at most {MAX_DATA} bytes, not {len(data)}")
    control = frame.control
    if not 0 <= control <= 0xFF:
        raise ConfigError(f"control code {control!r} is not a byte")
    body = (
        b"\x68" + _address_bytes(frame.address) + bytes((0x68, control, len(data))) + data.translate(_ADD33)
    )
    return seal(body, preamble)


def decode_frame(buf: bytes | bytearray | memoryview) -> Frame:
    """Exactly one frame (any number of FE before it). ``ChecksumError`` for a bad CS, else ``FrameError``."""
    if isinstance(buf, Frame):
        return buf
    return _frame_of(unwrap(buf, LAYOUT))


def _frame_of(body: bytes) -> Frame:
    """A Frame from validated wire bytes (start byte through 16)."""
    return Frame(decode_address(body[1:7]), body[8], body[10:-2].translate(_SUB33), body)


class Deframer(FrameDeframer[Frame]):
    """Stream deframer for DL/T 645 (2007 and 1997 share the framing), h11-style.

    ``feed(data)``; ``next_frame()`` -> :class:`Frame` or ``None`` (needs more bytes); ``for frame in
    deframer``. Strips any number of FE, resynchronises on a 68 with a second 68 seven bytes later, skips
    garbage, keeps partial frames, yields several frames from one chunk and bounds its buffer
    (:mod:`.framing`). A complete frame with a bad CS raises :class:`ChecksumError`, and the next call
    continues after it. Raises nothing but :class:`FrameError` and its subclasses.
    """

    __slots__ = ()
    layout = LAYOUT
    frame_of = staticmethod(_frame_of)


# --- field helpers --------------------------------------------------------------------------------
def di_encoder(digits: int, edition: str) -> Callable[[str], bytes]:
    """``di`` (``digits`` hex digits, most significant first) -> its wire bytes (least significant first),
    remembering up to 4096 identifiers; ``edition`` names the standard in errors (shared with 1997)."""
    cache: dict[str, bytes] = {}

    def di_bytes(di: str) -> bytes:
        raw = cache.get(di)
        if raw is None:
            if not isinstance(di, str) or len(di) != digits:
                raise ConfigError(f"a {edition} data identifier is {digits} hex digits, not {di!r}")
            try:
                raw = bytes.fromhex(di)[::-1]
            except ValueError as exc:
                raise ConfigError(f"data identifier {di!r} is not hex") from exc
            if len(cache) < 4096:
                cache[di] = raw
        return raw

    return di_bytes


_di_bytes = di_encoder(8, "DL/T 645-2007")


def _hex_text(raw: bytes) -> str:
    """Wire bytes (least significant first) as hex written most significant first: DI, password, operator."""
    return raw[::-1].hex().upper()


_di_text = _hex_text


def _hex_field(value: str, length: int, what: str) -> bytes:
    """A hex string written most significant first (password, operator code), sent least significant first."""
    if not isinstance(value, str) or len(value) != 2 * length:
        raise ConfigError(f"{what} must be {2 * length} hex digits, not {value!r}")
    try:
        return bytes.fromhex(value)[::-1]
    except ValueError as exc:
        raise ConfigError(f"{what} {value!r} is not hex") from exc


def _level(value: int | str) -> int:
    """A password level (0..99, BCD on the wire; ``"02"`` and ``2`` are the same, ESAM uses 98)."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ConfigError(f"password level {value!r} is not decimal")
        value = int(value)
    return to_bcd_byte(value)


def _auth(level: int | str, password: str, operator: str | None) -> bytes:
    out = bytes((_level(level),)) + _hex_field(password, 3, "password")
    if operator is not None:
        out += _hex_field(operator, 4, "operator code")
    return out


def _time_bytes(when: datetime, tz: tzinfo) -> bytes:
    """ss mm hh DD MM YY (BCD) in the meter's zone ``tz``; microseconds are dropped."""
    return datetime_to_bcd(when, tz)


def _minute_bytes(when: datetime, tz: tzinfo) -> bytes:
    """mm hh DD MM YY (BCD); seconds are dropped."""
    return datetime_to_bcd(when, tz, seconds=False)


def _time_of(raw: bytes, tz: tzinfo) -> datetime:
    """ss mm hh DD MM YY (or mm hh DD MM YY) in ``tz`` -> aware UTC datetime."""
    return bcd_to_datetime(raw, tz, century="20")


def _need(frame: Frame, size: int, what: str) -> None:
    if len(frame.data) != size:
        raise FrameError(f"{what}: {len(frame.data)} data bytes, expected {size}")


def _at_least(frame: Frame, size: int, what: str) -> None:
    if len(frame.data) < size:
        raise FrameError(f"{what}: {len(frame.data)} data bytes, expected at least {size}")


# --- messages -------------------------------------------------------------------------------------
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
        data = _di_bytes(self.di)
        if self.count is not None:
            data += bytes((to_bcd_byte(self.count),))  # N: BCD [UNCERTAIN]
            if self.time is not None:
                data += _minute_bytes(self.time, tz)
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
        return Frame(self.address, 0x12, _di_bytes(self.di) + _byte(self.seq, "seq"))


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
        data = _di_bytes(self.di) + _auth(self.password_level, self.password, self.operator) + self.value
        if len(data) > MAX_WRITE_DATA:
            raise ConfigError(f"a DL/T 645 write carries at most {MAX_WRITE_DATA} bytes, not {len(data)}")
        return Frame(self.address, 0x14, data)


@dataclass(frozen=True, slots=True)
class WriteAddress(Request):
    """C=15: set the communication address of the one meter on the bus (sent to the wildcard)."""

    new_address: str
    address: str = WILDCARD

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x15, _address_bytes(self.new_address))


@dataclass(frozen=True, slots=True)
class BroadcastTime(Request):
    """C=08 to 99x6: set every meter's clock (ss mm hh DD MM YY in the meters' zone). No reply."""

    when: datetime
    address: str = BROADCAST

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x08, _time_bytes(self.when, tz))


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
        return Frame(self.address, 0x17, _baud_byte(self.baud))


def _baud_byte(baud: int) -> bytes:
    """The one-byte baud code of ``baud`` (shared with DL/T 645-1997)."""
    code = BAUD_CODES.get(baud)
    if code is None:
        raise ConfigError(f"DL/T 645 has no baud code for {baud}")
    return bytes((code,))


def _baud_of(code: int) -> int:
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
            _di_bytes(f"04000C{self.new_level + 1:02X}")
            + _auth(self.old_level, self.old_password, None)
            + _auth(self.new_level, self.new_password, None)
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
            _auth(self.password_level, self.password, self.operator)
            + bytes((_relay_code(self.code), 0))
            + _time_bytes(self.valid_until, tz)
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
            _di_bytes(self.di) + _hex_field(self.operator, 4, "operator code") + self.payload,
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
        data = _di_bytes(self.di) + self.value
        if self.seq is not None:
            data += _byte(self.seq, "seq")
        return Frame(self.address, control, data)


@dataclass(frozen=True, slots=True)
class AddressReply(Reply):
    """93: the meter's address (in the header and as data)."""

    address: str

    @property
    def function(self) -> int:
        return 0x13

    def to_frame(self, tz: tzinfo = UTC) -> Frame:
        return Frame(self.address, 0x93, _address_bytes(self.address))


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
        return Frame(self.address, DIRECTION | ABNORMAL | self.function, _byte(self.err, "ERR"))


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
        return Frame(self.address, 0x83, _di_bytes(self.di) + self.payload)


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


_byte = byte_field


# --- decoding: control code -> decoder ------------------------------------------------------------
def _d_read(frame: Frame, tz: tzinfo) -> ReadRequest:
    data = frame.data
    size = len(data)
    if size == 4:
        return ReadRequest(frame.address, _di_text(data))
    if size == 5:
        return ReadRequest(frame.address, _di_text(data[:4]), bcd_byte(data[4]))
    if size == 10:
        return ReadRequest(frame.address, _di_text(data[:4]), bcd_byte(data[4]), _time_of(data[5:], tz))
    raise FrameError(f"read request: {size} data bytes, expected 4, 5 or 10")


def _d_follow_up(frame: Frame, tz: tzinfo) -> ReadFollowUp:
    _need(frame, 5, "read follow-up")
    return ReadFollowUp(frame.address, _di_text(frame.data[:4]), frame.data[4])


def _d_read_address(frame: Frame, tz: tzinfo) -> ReadAddress:
    _need(frame, 0, "read address")
    return ReadAddress(frame.address)


def _d_write(frame: Frame, tz: tzinfo) -> WriteRequest:
    _at_least(frame, 12, "write")
    data = frame.data
    return WriteRequest(
        frame.address,
        _di_text(data[:4]),
        data[12:],
        bcd_byte(data[4]),
        _hex_text(data[5:8]),
        _hex_text(data[8:12]),
    )


def _d_write_address(frame: Frame, tz: tzinfo) -> WriteAddress:
    _need(frame, 6, "write address")
    return WriteAddress(decode_address(frame.data), frame.address)


def _d_broadcast_time(frame: Frame, tz: tzinfo) -> BroadcastTime:
    _need(frame, 6, "broadcast time")
    return BroadcastTime(_time_of(frame.data, tz), frame.address)


def _d_freeze(frame: Frame, tz: tzinfo) -> Freeze:
    _need(frame, 4, "freeze")
    minute, hour, day, month = (bcd_byte(b) for b in frame.data)
    return Freeze(frame.address, minute, hour, day, month)


def _d_baud(frame: Frame, tz: tzinfo) -> ChangeBaud:
    _need(frame, 1, "change baud")
    return ChangeBaud(frame.address, _baud_of(frame.data[0]))


def _d_password(frame: Frame, tz: tzinfo) -> ChangePassword:
    _need(frame, 12, "change password")
    data = frame.data
    di = _di_text(data[:4])
    new_level = bcd_byte(data[8])
    if di != f"04000C{new_level + 1:02X}":
        raise FrameError(f"change password: DI {di} does not match the new level {new_level}")
    return ChangePassword(
        frame.address,
        bcd_byte(data[4]),
        _hex_text(data[5:8]),
        new_level,
        _hex_text(data[9:12]),
    )


def _d_relay(frame: Frame, tz: tzinfo) -> RelayControl:
    _need(frame, 16, "relay control")
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
        _time_of(data[10:16], tz),
        bcd_byte(data[0]),
        _hex_text(data[1:4]),
        _hex_text(data[4:8]),
    )


def _d_security(frame: Frame, tz: tzinfo) -> SecurityRequest:
    _at_least(frame, 8, "security request")
    data = frame.data
    return SecurityRequest(frame.address, _di_text(data[:4]), _hex_text(data[4:8]), data[8:])


def _d_read_reply(frame: Frame, tz: tzinfo) -> ReadReply:
    data = frame.data
    more = bool(frame.control & MORE)
    if frame.control & FUNCTION == 0x12:
        _at_least(frame, 5, "read follow-up reply")
        return ReadReply(frame.address, _di_text(data[:4]), data[4:-1], more, data[-1])
    _at_least(frame, 4, "read reply")
    return ReadReply(frame.address, _di_text(data[:4]), data[4:], more)


def _d_address_reply(frame: Frame, tz: tzinfo) -> AddressReply:
    _need(frame, 6, "address reply")
    address = decode_address(frame.data)
    if address != frame.address:
        raise FrameError(f"address reply: header {frame.address} but data {address}")
    return AddressReply(address)


def _d_ack(frame: Frame, tz: tzinfo) -> AckReply:
    return AckReply(frame.address, frame.control & FUNCTION, frame.data)


def _d_error(frame: Frame, tz: tzinfo) -> ErrorReply:
    _need(frame, 1, "error reply")
    return ErrorReply(frame.address, frame.control & FUNCTION, frame.data[0])


def _d_security_reply(frame: Frame, tz: tzinfo) -> SecurityReply:
    _at_least(frame, 4, "security reply")
    return SecurityReply(frame.address, _di_text(frame.data[:4]), frame.data[4:])


def _d_security_error(frame: Frame, tz: tzinfo) -> SecurityErrorReply:
    _need(frame, 2, "security error reply")
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


# --- meter errors ---------------------------------------------------------------------------------
# ERR byte of an abnormal reply: bit n -> name
ERR_BITS: tuple[str, ...] = (
    "other",
    "no_data",
    "unauthorised",  # wrong password / not authorised
    "baud_fixed",
    "year_zones",
    "day_periods",
    "tariffs",
)
ERR_NO_DATA = 1 << 1
ERR_UNAUTHORISED = 1 << 2

# SERR word of a security error reply (C3), State Grid extension, from memory [UNCERTAIN]
SERR_BITS: tuple[str, ...] = (
    "other",
    "duplicate_recharge",
    "esam_verify_failed",
    "authentication_failed",  # MAC
    "customer_number_mismatch",
    "recharge_count_error",
    "over_hoarding_limit",
    "address_error",
    "meter_suspended",
)
# which SERR bit becomes which exception, first match wins: a duplicate is success for the caller
SERR_ERRORS: tuple[tuple[str, type[MeterError]], ...] = (
    ("duplicate_recharge", DuplicateRecharge),
    ("recharge_count_error", RechargeRefused),
    ("over_hoarding_limit", RechargeRefused),
    ("esam_verify_failed", RechargeRefused),
    ("authentication_failed", RechargeRefused),
    ("customer_number_mismatch", RechargeRefused),
)


def _bit_names(word: int, table: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        table[bit] if bit < len(table) else f"bit{bit}" for bit in range(word.bit_length()) if word >> bit & 1
    )


def error_names(err: int) -> tuple[str, ...]:
    """Names of the bits set in an ERR byte, e.g. ``0x04`` -> ``("unauthorised",)``."""
    return _bit_names(err, ERR_BITS)


def serr_names(serr: int) -> tuple[str, ...]:
    return _bit_names(serr, SERR_BITS)


def serr_word(*names: str) -> int:
    """The SERR word with the named bits set (the simulator's side)."""
    try:
        return sum(1 << SERR_BITS.index(name) for name in set(names))
    except ValueError as exc:
        raise ConfigError(f"unknown SERR bit in {names!r}") from exc


def meter_error(reply: ErrorReply) -> MeterError:
    """The :class:`MeterError` an ERR reply stands for (``code`` = ERR byte, ``names`` = its bits)."""
    names = error_names(reply.err)
    reason = ", ".join(names) or "no reason given"
    return MeterError(
        f"meter {reply.address} refused function {reply.function:02X}: {reason}",
        code=reply.err,
        names=names,
    )


def security_error(reply: SecurityErrorReply) -> MeterError:
    """The exception a SERR reply stands for: :class:`DuplicateRecharge`, :class:`RechargeRefused` or
    :class:`MeterError`."""
    names = serr_names(reply.serr)
    cls = next((error for name, error in SERR_ERRORS if name in names), MeterError)
    return cls(
        f"meter {reply.address} refused the security command: {', '.join(names) or 'no reason given'}",
        code=reply.serr,
        names=names,
    )


def raise_for(reply: object) -> None:
    """Raise the reply's :class:`MeterError` if it is an error reply."""
    if isinstance(reply, ErrorReply):
        raise meter_error(reply)
    if isinstance(reply, SecurityErrorReply):
        raise security_error(reply)


# --- poller side ----------------------------------------------------------------------------------
_read_cache: dict[str, tuple[bytes, int]] = {}
_prefix_cache: dict[str, tuple[bytes, int]] = {}


def read(address: str, di: str, *, preamble: int = 4) -> bytes:
    """Read request bytes for ``di`` (hex, as the standard writes it, e.g. ``"0001FF00"``)."""
    # the poller's most frequent call: header and scrambled DI (with their sums) are cached
    head = _prefix_cache.get(address)
    if head is None:
        prefix = b"\x68" + _address_bytes(address) + b"\x68\x11\x04"
        head = (prefix, sum(prefix))
        if len(_prefix_cache) < 65536:
            _prefix_cache[address] = head
    tail = _read_cache.get(di)
    if tail is None:
        scrambled = _di_bytes(di).translate(_ADD33)
        tail = (scrambled, sum(scrambled))
        if len(_read_cache) < 4096:
            _read_cache[di] = tail
    check_preamble(preamble)
    return PREAMBLES[preamble] + head[0] + tail[0] + bytes(((head[1] + tail[1]) & 0xFF, 0x16))


def read_follow_up(address: str, di: str, seq: int, *, preamble: int = 4) -> bytes:
    return encode(ReadFollowUp(address, di, seq), preamble=preamble)


def read_address(address: str = WILDCARD, *, preamble: int = 4) -> bytes:
    return encode_frame(Frame(address, 0x13, b""), preamble)


def write(
    address: str,
    di: str,
    value: object,
    *,
    password_level: int | str = 2,
    password: str = "000000",
    operator: str = "00000000",
    preamble: int = 4,
    rounding: str | None = None,
) -> bytes:
    """Write request bytes; ``value`` is raw bytes or a value :func:`encode_value` knows for ``di``."""
    raw = value if isinstance(value, bytes) else encode_value(di, value, rounding=rounding)
    return encode(WriteRequest(address, di, raw, password_level, password, operator), preamble=preamble)


def relay(
    address: str,
    code: RelayCode,
    valid_until: datetime,
    *,
    password_level: int | str = 2,
    password: str = "000000",
    operator: str = "00000000",
    preamble: int = 4,
    tz: tzinfo = UTC,
) -> bytes:
    """Relay control bytes (trip, close, keep power, ...), valid until ``valid_until``."""
    message = RelayControl(address, code, valid_until, password_level, password, operator)
    return encode(message, preamble=preamble, tz=tz)


def broadcast_time(when: datetime, *, preamble: int = 4, tz: tzinfo = UTC) -> bytes:
    return encode(BroadcastTime(when), preamble=preamble, tz=tz)


def recharge(
    address: str, payload: bytes, *, operator: str = "00000000", di: str = RECHARGE_DI, preamble: int = 4
) -> bytes:
    """Recharge request bytes: C=03, DI 070102FF, operator, ``payload`` (built by :mod:`..security`)."""
    return encode(SecurityRequest(address, di, operator, payload), preamble=preamble)


def reply_filter(expect_address: str, function: int, di: str | None = None) -> Callable[[Frame], bool]:
    """A cheap predicate for a link's ``expect``: a reply frame from ``expect_address`` (``AA`` bytes match
    any) to ``function`` (the request's control code), for ``di`` when given (error replies always pass)."""
    return frame_filter(expect_address, function, _di_bytes(di) if di is not None else None)


def frame_filter(expect_address: str, function: int, di_wire: bytes | None) -> Callable[[Frame], bool]:
    """:func:`reply_filter` on the identifier's wire bytes (shared with DL/T 645-1997's 2-byte DIs)."""
    return reply_predicate(expect_address, function, di_wire, FUNCTION)


def parse_reply(
    buf_or_frame: bytes | Frame,
    expect_address: str,
    expect_di: str | None = None,
    *,
    function: int | None = None,
    tz: tzinfo = UTC,
) -> Reply:
    """Decode and check a reply to a request sent to ``expect_address``.

    Raises :class:`AddressError` for a reply from another meter, :class:`UnexpectedReply` for a request
    (an echo) or a reply to another ``function`` (the request's control code, when given) or data
    identifier, and the meter's refusal as :class:`MeterError` (:class:`DuplicateRecharge` /
    :class:`RechargeRefused` for security errors). Returns the reply message.
    """
    message = decode(buf_or_frame, tz=tz)
    return check_reply(message, Reply, expect_address, expect_di, function, raise_for)


def check_reply(
    message: object,
    reply_type: type,
    expect_address: str,
    expect_di: str | None,
    function: int | None,
    raise_error: Callable[[object], None],
):
    """The checks of :func:`parse_reply` on a decoded message (shared with DL/T 645-1997)."""
    return check_reply_message(
        message, reply_type, expect_address, expect_di, function, raise_error, FUNCTION
    )
