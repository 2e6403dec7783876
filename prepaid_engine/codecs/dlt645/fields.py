"""Wire encodings of the fields inside DL/T 645 messages (shared with DL/T 645-1997): data identifiers,
password level, password and operator code, times, and the data-length checks of decoders.

Multi-byte fields go least significant byte first, as everything in DL/T 645; the password (6 hex digits, as
printed) and the operator code (8 hex digits) too [UNCERTAIN: the worked frames only show zeros]. Encoding a
value that does not fit raises :class:`ConfigError`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from ...errors import ConfigError, FrameError
from ..bcd import bcd_to_datetime, datetime_to_bcd, to_bcd_byte
from ..framing import byte_field
from .frame import Frame

__all__ = [
    "at_least",
    "auth_bytes",
    "byte_field",
    "di_bytes",
    "di_encoder",
    "di_text",
    "hex_field",
    "hex_text",
    "minute_bytes",
    "need",
    "time_bytes",
    "time_of",
]


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


di_bytes = di_encoder(8, "DL/T 645-2007")


def hex_text(raw: bytes) -> str:
    """Wire bytes (least significant first) as hex written most significant first: DI, password, operator."""
    return raw[::-1].hex().upper()


di_text = hex_text


def hex_field(value: str, length: int, what: str) -> bytes:
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


def auth_bytes(level: int | str, password: str, operator: str | None) -> bytes:
    out = bytes((_level(level),)) + hex_field(password, 3, "password")
    if operator is not None:
        out += hex_field(operator, 4, "operator code")
    return out


def time_bytes(when: datetime, tz: tzinfo) -> bytes:
    """ss mm hh DD MM YY (BCD) in the meter's zone ``tz``; microseconds are dropped."""
    return datetime_to_bcd(when, tz)


def minute_bytes(when: datetime, tz: tzinfo) -> bytes:
    """mm hh DD MM YY (BCD); seconds are dropped."""
    return datetime_to_bcd(when, tz, seconds=False)


def time_of(raw: bytes, tz: tzinfo) -> datetime:
    """ss mm hh DD MM YY (or mm hh DD MM YY) in ``tz`` -> aware UTC datetime."""
    return bcd_to_datetime(raw, tz, century="20")


def need(frame: Frame, size: int, what: str) -> None:
    if len(frame.data) != size:
        raise FrameError(f"{what}: {len(frame.data)} data bytes, expected {size}")


def at_least(frame: Frame, size: int, what: str) -> None:
    if len(frame.data) < size:
        raise FrameError(f"{what}: {len(frame.data)} data bytes, expected at least {size}")
