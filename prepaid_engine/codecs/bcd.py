"""BCD helpers shared by the DL/T 645 and CJ/T 188 codecs.

Every multi-byte field of both protocols is transmitted least significant byte first; a BCD byte holds two
decimal digits (``0x47`` is 47). Numbers have a fixed number of decimals and, where the format is signed,
the sign in bit 7 of the most significant (last transmitted) byte [UNCERTAIN for DL/T 645, see
``docs/protocols.md``].

Addresses are strings of decimal digits written most significant first, as printed on the meter
(``"123456789012"`` is ``12 90 78 56 34 12`` on the wire). A byte may instead be the wildcard ``AA``
(written ``"AA"`` in the string): ``"AAAAAAAAAAAA"`` reaches any meter, and a *shortened* address keeps the
real low bytes and fills the high bytes with ``AA`` (``"AAAAAA789012"``). ``"999999999999"`` is the
DL/T 645 broadcast address.

Direction of errors: decoding bytes that are not BCD raises :class:`~prepaid_engine.errors.FrameError`
(they came off the wire); encoding a value that does not fit its format raises
:class:`~prepaid_engine.errors.ConfigError` (the caller asked for something impossible).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from ..errors import ConfigError, FrameError

WILDCARD_BYTE = 0xAA
DLT645_ADDRESS_BYTES = 6
CJT188_ADDRESS_BYTES = 7
DLT645_BROADCAST = "99" * DLT645_ADDRESS_BYTES
DLT645_WILDCARD = "AA" * DLT645_ADDRESS_BYTES
CJT188_WILDCARD = "AA" * CJT188_ADDRESS_BYTES

_DIGITS = frozenset("0123456789")
# the bytes an address may hold (BCD or the AA wildcard): ``raw.translate(None, ADDRESS_BYTE_VALUES)`` is
# empty exactly when every byte of ``raw`` is one (one C-level call, the deframers' header test)
ADDRESS_BYTE_VALUES = bytes(
    b for b in range(256) if b == WILDCARD_BYTE or ((b >> 4) < 10 and (b & 0x0F) < 10)
)


# --- integers -------------------------------------------------------------------------------------
def bcd_digits(raw: bytes) -> str:
    """The decimal digits of BCD bytes (least significant byte first), most significant digit first."""
    digits = raw[::-1].hex()
    if not digits.isdigit() and digits:
        raise FrameError(f"not BCD: {bytes(raw).hex(' ')}")
    return digits


def bcd_to_int(raw: bytes) -> int:
    """BCD bytes, least significant byte first, to an int. ``FrameError`` on a nibble above 9."""
    digits = raw[::-1].hex()
    if not digits.isdigit():
        if not digits:
            return 0
        raise FrameError(f"not BCD: {bytes(raw).hex(' ')}")
    return int(digits)


def int_to_bcd(value: int, length: int) -> bytes:
    """A non-negative int as ``length`` BCD bytes, least significant byte first."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"BCD needs a non-negative int, not {value!r}")
    text = f"{value:0{2 * length}d}"
    if len(text) > 2 * length:
        raise ConfigError(f"{value} does not fit in {length} BCD byte(s)")
    return bytes.fromhex(text)[::-1]


def bcd_byte(byte: int) -> int:
    """One BCD byte (0x00..0x99) to its value 0..99."""
    high, low = byte >> 4, byte & 0x0F
    if high > 9 or low > 9:
        raise FrameError(f"not BCD: {byte:02x}")
    return high * 10 + low


def to_bcd_byte(value: int) -> int:
    """0..99 to one BCD byte."""
    if not isinstance(value, int) or not 0 <= value <= 99:
        raise ConfigError(f"{value!r} is not a two-digit BCD value")
    return (value // 10) << 4 | value % 10


# --- fixed-point numbers --------------------------------------------------------------------------
def bcd_to_decimal(raw: bytes, decimals: int = 0, *, signed: bool = False) -> Decimal:
    """BCD bytes to a Decimal with ``decimals`` decimals; ``signed``: bit 7 of the top byte is the sign."""
    negative = False
    if signed and raw and raw[-1] & 0x80:
        negative = True
        raw = bytes(raw[:-1]) + bytes((raw[-1] & 0x7F,))
    digits = raw[::-1].hex()
    if not digits.isdigit():
        raise FrameError(f"not BCD: {bytes(raw).hex(' ')}")
    value = int(digits)
    if negative:
        value = -value
    return Decimal(value).scaleb(-decimals) if decimals else Decimal(value)


def decimal_to_bcd(
    value: Decimal | int,
    length: int,
    decimals: int = 0,
    *,
    signed: bool = False,
    rounding: str | None = None,
) -> bytes:
    """A number as ``length`` BCD bytes with ``decimals`` fixed decimals (least significant byte first).

    A value with more decimals than the format holds is refused unless ``rounding`` (a ``decimal`` rounding
    mode such as ``ROUND_DOWN``) says how to drop them. Negative values need ``signed`` and leave the top
    nibble free for the sign bit.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ConfigError(f"BCD needs a Decimal or int, not {value!r}")
    try:
        scaled = Decimal(value).scaleb(decimals)
        if not scaled.is_finite():
            raise ConfigError(f"{value!r} is not a finite number")
        integral = scaled.to_integral_value(rounding=rounding) if rounding else scaled.to_integral_value()
    except InvalidOperation as exc:
        raise ConfigError(f"{value!r} is not a number BCD can hold") from exc
    if integral != scaled and rounding is None:
        raise ConfigError(f"{value} has more than {decimals} decimal(s)")
    number = int(integral)
    negative = number < 0
    if negative and not signed:
        raise ConfigError(f"{value} is negative and the format is unsigned")
    number = -number if negative else number
    limit = 10 ** (2 * length - (1 if signed else 0))
    if number >= limit:
        raise ConfigError(f"{value} does not fit in {length} BCD byte(s) with {decimals} decimal(s)")
    raw = bytes.fromhex(f"{number:0{2 * length}d}")[::-1]
    if negative and number:
        raw = raw[:-1] + bytes((raw[-1] | 0x80,))
    return raw


# --- addresses ------------------------------------------------------------------------------------
def encode_address(address: str, length: int) -> bytes:
    """An address string (digits, ``AA`` wildcard bytes) as ``length`` bytes, least significant first."""
    if not isinstance(address, str) or len(address) != 2 * length:
        raise ConfigError(f"address must be {2 * length} digits, not {address!r}")
    if address.isascii() and address.isdigit():
        return bytes.fromhex(address)[::-1]
    upper = address.upper()
    for i in range(0, 2 * length, 2):
        pair = upper[i : i + 2]
        if pair != "AA" and not (pair[0] in _DIGITS and pair[1] in _DIGITS):
            raise ConfigError(f"address {address!r}: byte {pair!r} is neither BCD nor the wildcard AA")
    return bytes.fromhex(upper)[::-1]


def address_encoder(length: int) -> Callable[[str], bytes]:
    """:func:`encode_address` for ``length`` bytes, remembering up to 65536 addresses (a hot path)."""
    cache: dict[str, bytes] = {}

    def address_bytes(address: str) -> bytes:
        raw = cache.get(address)
        if raw is None:
            raw = encode_address(address, length)
            if len(cache) < 65536:
                cache[address] = raw
        return raw

    return address_bytes


def decode_address(raw: bytes) -> str:
    """Address bytes (least significant first) to the printed string; ``AA`` bytes stay ``"AA"``."""
    text = raw[::-1].hex()
    if text.isdigit():
        return text
    for i in range(0, len(text), 2):
        pair = text[i : i + 2]
        if pair != "aa" and not (pair[0] in _DIGITS and pair[1] in _DIGITS):
            raise FrameError(f"address byte {pair} is neither BCD nor the wildcard AA")
    return text.upper()


def valid_address_bytes(raw: bytes) -> bool:
    """Whether every byte is BCD or the wildcard ``AA`` (a cheap plausibility test for deframers)."""
    return not bytes(raw).translate(None, ADDRESS_BYTE_VALUES)


def shortened_address(address: str, keep: int) -> str:
    """The shortened form of ``address``: its ``keep`` low bytes, the high bytes replaced by ``AA``."""
    length = len(address) // 2
    if not 0 <= keep <= length:
        raise ConfigError(f"cannot keep {keep} of {length} address bytes")
    return "AA" * (length - keep) + address[2 * (length - keep) :]


def address_matches(pattern: str, address: str) -> bool:
    """Whether ``address`` (a full address from a reply) is one ``pattern`` reaches.

    A pattern byte ``AA`` matches any byte; other bytes must be equal. A broadcast pattern (all ``99``)
    matches every address.
    """
    if pattern == address:
        return True
    if len(pattern) != len(address):
        return False
    upper = pattern.upper()
    if upper == "99" * (len(upper) // 2):
        return True
    return all(upper[i : i + 2] in ("AA", address[i : i + 2].upper()) for i in range(0, len(upper), 2))


def is_wildcard(address: str) -> bool:
    return "A" in address.upper()


def is_broadcast(address: str) -> bool:
    return address == "99" * (len(address) // 2) and len(address) % 2 == 0 and bool(address)


# --- meter clocks ---------------------------------------------------------------------------------
def datetime_to_bcd(when: datetime, tz: tzinfo, *, century: bool = False, seconds: bool = True) -> bytes:
    """``when`` as wall-clock time in the meter's zone ``tz``: ``ss mm hh DD MM YY`` BCD, least significant
    first (``seconds=False``: no ``ss``; ``century``: a second year byte ``YY(high)`` last, any year, else
    the year must be 2000..2099). Microseconds are dropped."""
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ConfigError(f"a timezone-aware datetime is needed, not {when!r}")
    local = when.astimezone(tz)
    if not century and not 2000 <= local.year <= 2099:
        raise ConfigError(f"year {local.year} is outside 2000..2099")
    digits = (
        f"{local.year:04d}{local.month:02d}{local.day:02d}"
        f"{local.hour:02d}{local.minute:02d}{local.second:02d}"
    )
    return bytes.fromhex(digits[0 if century else 2 : None if seconds else 12])[::-1]


def bcd_to_datetime(
    raw: bytes, tz: tzinfo, *, century: str = "", not_bcd: str = "date and time are not BCD"
) -> datetime:
    """``[ss] mm hh DD MM YY[YY]`` BCD (least significant first) in ``tz`` -> aware UTC datetime; ``century``
    (``"20"``) goes in front of a two-digit year. :class:`FrameError` when the bytes are not one."""
    digits = century + raw[::-1].hex()  # YYYYMMDDhhmm[ss]
    if not digits.isdigit():
        raise FrameError(f"{not_bcd}: {raw.hex(' ')}")
    try:
        moment = datetime(
            int(digits[0:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            int(digits[12:14] or 0),
            tzinfo=tz,
        )
        return moment if tz is UTC else moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise FrameError(f"{raw.hex(' ')} is not a date and time") from exc
