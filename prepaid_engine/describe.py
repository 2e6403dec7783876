"""One line of plain words per frame on the wire, for the communication log (sans-I/O).

The poller keeps the frames it exchanged when a gateway traces them; the log shows each one's bytes and
what they say: ``read 00010000 (forward active energy, total)``, ``reply 00010000 = 12345.67``, ``relay
control: trip, valid until 2026-12-01 20:10:00``, ``error reply: no_data``. The frames are decoded by the
same codecs as everything else; a frame they cannot decode says why (``undecodable: ...``), it never
raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .codecs import cjt188, dlt645, dlt645_1997
from .codecs.dlt645_di import DI_TABLE
from .errors import EngineError
from .types import Protocol

__all__ = ["describe_frame"]


def _value_text(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(_value_text, value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _fields(message: object, skip: tuple[str, ...] = ("address",)) -> str:
    """The fields of a message dataclass as ``name=value`` (the address is on the log line already)."""
    if not dataclasses.is_dataclass(message):
        return ""
    parts = []
    for field in dataclasses.fields(message):
        if field.name in skip:
            continue
        value = getattr(message, field.name)
        if value is None or value == b"" or value == ():
            continue
        if isinstance(value, bytes | bytearray):
            value = value.hex(" ").upper()
        parts.append(f"{field.name}={_value_text(value)}")
    return " ".join(parts)


def _words(message: object) -> str:
    """``ReadFollowUp`` -> ``read follow-up``."""
    name = type(message).__name__
    out = []
    for char in name:
        if char.isupper() and out:
            out.append(" ")
        out.append(char.lower())
    return "".join(out).replace("follow up", "follow-up")


def _dlt645(data: bytes) -> str:
    message = dlt645.decode(data)
    if isinstance(message, dlt645.ReadRequest):
        item = DI_TABLE.get(message.di)
        return f"read {message.di}" + (f" ({item.name})" if item else "")
    if isinstance(message, dlt645.ReadReply):
        item = DI_TABLE.get(message.di)
        if item is None:
            return f"reply {message.di}: {message.value.hex(' ').upper()}"
        try:
            value = _value_text(dlt645.decode_value(message.di, message.value))
        except EngineError as exc:
            value = f"undecodable value ({exc})"
        return f"reply {message.di} = {value}" + (
            " (more follows)" if getattr(message, "more", False) else ""
        )
    if isinstance(message, dlt645.RelayControl):
        code = dlt645.RelayCode(message.code).name.lower().replace("_", " ")
        return f"relay control: {code}, valid until {message.valid_until:%Y-%m-%d %H:%M:%S}"
    if isinstance(message, dlt645.ErrorReply):
        return f"error reply: {', '.join(dlt645.error_names(message.err)) or 'no error bit'}"
    if isinstance(message, dlt645.SecurityErrorReply):
        return f"security error reply: {', '.join(dlt645.serr_names(message.serr)) or 'no error bit'}"
    if isinstance(message, dlt645.AckReply):
        return "acknowledged"
    return f"{_words(message)} {_fields(message)}".strip()


def _dlt645_1997(data: bytes) -> str:
    message = dlt645_1997.decode(data)
    return f"{_words(message)} {_fields(message)}".strip()


def _cjt188(data: bytes) -> str:
    message = cjt188.decode(data)
    return f"{_words(message)} {_fields(message)}".strip()


def _modbus(data: bytes, mbap: bool = False) -> str:
    """A Modbus-TCP (``mbap``: MBAP header) or RTU (CRC trailer) frame: unit, function and, for a request to
    read or write registers, their address and count; for a reply, how many data bytes; for an exception, its
    code."""
    if mbap and len(data) >= 8:
        unit, pdu = data[6], data[7:]  # MBAP: transaction, protocol 0, length, unit
    elif not mbap and len(data) >= 4:
        unit, pdu = data[0], data[1:-2]  # RTU: unit, PDU, CRC
    else:
        return f"undecodable: {len(data)} bytes are not a Modbus frame"
    if not pdu:
        return f"unit {unit}: no function"
    function = pdu[0]
    if function & 0x80:
        code = pdu[1] if len(pdu) > 1 else 0
        return f"unit {unit}: exception to function {function & 0x7F:#04x}, code {code:#04x}"
    if function in (3, 4) and len(pdu) == 5:
        address, count = int.from_bytes(pdu[1:3], "big"), int.from_bytes(pdu[3:5], "big")
        return f"unit {unit}: read {count} register(s) at {address:#06x} (function {function:#04x})"
    if function in (6, 16) and len(pdu) >= 5:
        address = int.from_bytes(pdu[1:3], "big")
        return f"unit {unit}: write register(s) at {address:#06x} (function {function:#04x})"
    return f"unit {unit}: function {function:#04x} reply, {max(len(pdu) - 2, 0)} data bytes"


_DESCRIBERS: dict[Protocol, Callable[[bytes], str]] = {
    Protocol.DLT645_2007: _dlt645,
    Protocol.DLT645_1997: _dlt645_1997,
    Protocol.CJT188: _cjt188,
    Protocol.MODBUS: _modbus,
}


def describe_frame(protocol: Protocol | str | None, data: bytes, *, mbap: bool = False) -> str:
    """What ``data`` (one frame of ``protocol``; ``mbap``: a Modbus frame of a Modbus-TCP gateway, with its
    MBAP header) says, in one line; never raises."""
    try:
        describer = _DESCRIBERS.get(Protocol(protocol)) if protocol else None
    except ValueError:
        describer = None
    if describer is None:
        return f"{len(data)} bytes"
    try:
        if describer is _modbus:
            return _modbus(bytes(data), mbap)
        return describer(bytes(data))
    except EngineError as exc:
        return f"undecodable: {exc}"
    except (ValueError, IndexError, KeyError) as exc:  # a frame the codec cannot even split
        return f"undecodable: {exc}"
