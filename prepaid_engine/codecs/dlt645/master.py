"""The DL/T 645-2007 master's side (the poller): request builders and reply checks.

Builders return request bytes: :func:`read`, :func:`read_follow_up`, :func:`read_address`, :func:`write`,
:func:`relay`, :func:`broadcast_time`, :func:`recharge`. Feed what comes back into a
:class:`~.frame.Deframer`; :func:`reply_filter` is a cheap predicate for a link's ``expect``;
:func:`parse_reply` checks a reply (``AddressError`` for another meter, ``UnexpectedReply`` for another
function or DI, ``MeterError`` with named bits for an error reply, ``DuplicateRecharge``/``RechargeRefused``
for security errors) and returns it. ``ReadReply.more`` asks for :class:`~.messages.ReadFollowUp` frames.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from ..dlt645_di import encode_value
from ..framing import PREAMBLES, check_preamble, check_reply_message, reply_predicate
from .error_bits import meter_error, security_error
from .fields import di_bytes
from .frame import ADD33, FUNCTION, WILDCARD, Frame, address_bytes, encode_frame
from .messages import (
    RECHARGE_DI,
    BroadcastTime,
    ErrorReply,
    ReadFollowUp,
    RelayCode,
    RelayControl,
    Reply,
    SecurityErrorReply,
    SecurityRequest,
    WriteRequest,
    decode,
    encode,
)

_read_cache: dict[str, tuple[bytes, int]] = {}
_prefix_cache: dict[str, tuple[bytes, int]] = {}


def read(address: str, di: str, *, preamble: int = 4) -> bytes:
    """Read request bytes for ``di`` (hex, as the standard writes it, e.g. ``"0001FF00"``)."""
    # the poller's most frequent call: header and scrambled DI (with their sums) are cached
    head = _prefix_cache.get(address)
    if head is None:
        prefix = b"\x68" + address_bytes(address) + b"\x68\x11\x04"
        head = (prefix, sum(prefix))
        if len(_prefix_cache) < 65536:
            _prefix_cache[address] = head
    tail = _read_cache.get(di)
    if tail is None:
        scrambled = di_bytes(di).translate(ADD33)
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
    return frame_filter(expect_address, function, di_bytes(di) if di is not None else None)


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


def raise_for(reply: object) -> None:
    """Raise the reply's :class:`MeterError` if it is an error reply."""
    if isinstance(reply, ErrorReply):
        raise meter_error(reply)
    if isinstance(reply, SecurityErrorReply):
        raise security_error(reply)
