"""DL/T 645-2007 codec, sans-I/O, for both sides of the bus (the poller and the meter simulator).

One module per layer; this package is the namespace every caller uses (``from prepaid_engine.codecs import
dlt645``; ``dlt645.read(address, "0001FF00")``, ``dlt645.decode(frame)``):

- :mod:`.frame` -- **frame**: ``FE.. 68 A0..A5 68 C L DATA CS 16``; :class:`Frame` (de-scrambled data),
  :func:`encode_frame` / :func:`decode_frame`, the stream :class:`Deframer` (DL/T 645-1997 shares all of it).
- :mod:`.fields` -- the wire encodings of message fields: data identifiers, password level, password and
  operator code (``PA P0 P1 P2 C0 C1 C2 C3``), times (shared with DL/T 645-1997).
- :mod:`.messages` -- **messages**: typed frozen dataclasses, h11-style events, for both directions, and
  :func:`encode` / :func:`decode` (``tz``: the zone of the meter's clock); :data:`COMMAND_RELAY_CODES` maps
  trip/close/keep-power commands to N1 codes.
- :mod:`.error_bits` -- the ERR byte and SERR word bit by bit, and the engine exceptions they stand for.
- :mod:`.master` -- **the poller's side**: request builders (:func:`read`, :func:`write`, :func:`relay`,
  :func:`recharge`, ...), :func:`reply_filter` for a link's ``expect``, :func:`parse_reply` (``AddressError``
  for another meter, ``UnexpectedReply`` for another function or DI, ``MeterError`` with named bits for an
  error reply, ``DuplicateRecharge`` / ``RechargeRefused`` for security errors).

Values: :func:`decode_value` / :func:`reading_values` / :func:`collect_reading` (from :mod:`..dlt645_di`) on
``reply.di, reply.value``.

**The simulator's side** uses the same modules from the meter: a :class:`Deframer` on the meter's port,
``decode`` every frame into a request message, answer with ``encode(ReadReply(address, di, encode_value(di,
value)))``, :class:`AckReply`, ``ErrorReply(.., err=ERR_NO_DATA)`` or ``SecurityErrorReply(..,
serr=serr_word("duplicate_recharge"))``; :class:`~..dlt645_di.StatusWord3` builds status word 3.

Encoding a value that does not fit raises :class:`ConfigError`; bytes that are not a valid frame or message
raise :class:`FrameError`.
"""

from __future__ import annotations

from ..dlt645_di import (
    DI_TABLE,
    DataItem,
    StatusWord3,
    collect_reading,
    decode_value,
    encode_value,
    reading_values,
)
from .error_bits import (
    ERR_BITS,
    ERR_NO_DATA,
    ERR_UNAUTHORISED,
    SERR_BITS,
    SERR_ERRORS,
    error_names,
    meter_error,
    security_error,
    serr_names,
    serr_word,
)
from .frame import (
    ADDRESS_BYTES,
    BROADCAST,
    FUNCTION,
    LAYOUT,
    MAX_DATA,
    MORE,
    WILDCARD,
    Deframer,
    Frame,
    decode_frame,
    encode_frame,
)
from .master import (
    broadcast_time,
    check_reply,
    frame_filter,
    parse_reply,
    raise_for,
    read,
    read_address,
    read_follow_up,
    recharge,
    relay,
    reply_filter,
    write,
)
from .messages import (
    ACK_FUNCTIONS,
    BAUD_CODES,
    COMMAND_RELAY_CODES,
    ERROR_FUNCTIONS,
    MAX_WRITE_DATA,
    RECHARGE_DI,
    AckReply,
    AddressReply,
    BroadcastTime,
    ChangeBaud,
    ChangePassword,
    ErrorReply,
    Freeze,
    Message,
    ReadAddress,
    ReadFollowUp,
    ReadReply,
    ReadRequest,
    RelayCode,
    RelayControl,
    Reply,
    Request,
    SecurityErrorReply,
    SecurityReply,
    SecurityRequest,
    WriteAddress,
    WriteRequest,
    decode,
    encode,
)

__all__ = [
    "ACK_FUNCTIONS",
    "ADDRESS_BYTES",
    "BAUD_CODES",
    "BROADCAST",
    "COMMAND_RELAY_CODES",
    "DI_TABLE",
    "ERROR_FUNCTIONS",
    "ERR_BITS",
    "ERR_NO_DATA",
    "ERR_UNAUTHORISED",
    "FUNCTION",
    "LAYOUT",
    "MAX_DATA",
    "MAX_WRITE_DATA",
    "MORE",
    "RECHARGE_DI",
    "SERR_BITS",
    "SERR_ERRORS",
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
    "check_reply",
    "collect_reading",
    "decode",
    "decode_frame",
    "decode_value",
    "encode",
    "encode_frame",
    "encode_value",
    "error_names",
    "frame_filter",
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
