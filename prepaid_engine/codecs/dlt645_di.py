"""DL/T 645 data identifiers as data, and their value codecs (both directions).

:data:`DI_TABLE` maps a data identifier (hex string, most significant byte first as the standard writes it:
``"0001FF00"``) to a :class:`DataItem`: name, byte length, decimals, sign, unit, value kind and the
:data:`~prepaid_engine.types.READING_FIELDS` name it fills. The value bytes are the *de-scrambled* data
that follows the DI in a reply (``ReadReply.value``), least significant byte first.

- ``decode_value(di, raw)`` -> ``Decimal`` (numbers), ``int`` (counts, status words), ``date`` / ``time``
  (meter clock), ``str`` (addresses, meter and customer numbers) or ``tuple`` (blocks such as
  ``0001FF00``: total, sharp, peak, flat, valley).
- ``encode_value(di, value)`` -> bytes: the meter's side (the simulator). Strict: a value with more decimals
  than the format holds is refused unless ``rounding`` is given.
- ``reading_values(di, raw)`` -> ``{reading field: value}`` for :class:`~prepaid_engine.types.Reading`;
  ``collect_reading(pairs)`` merges several identifiers order-independently (remaining/overdraft money).
- :class:`StatusWord3`: running status word 3 (``04000503``), decoded and built.

The same machinery serves DL/T 645-1997, whose table lives in :mod:`.dlt645_1997`.

Items marked ``uncertain`` follow protocols.md's [UNCERTAIN] notes: the sign bit in the top byte of signed
values, the State Grid prepaid extension (``009001xx``/``009002xx``, ``040010xx``, ``03330201`` as a
2-byte count) and status word 3 bit 12 (keep power).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, time
from decimal import Decimal

from ..errors import ConfigError, FrameError
from ..types import Supply
from .bcd import bcd_byte, bcd_digits, bcd_to_decimal, decimal_to_bcd, int_to_bcd, to_bcd_byte


class Kind(enum.StrEnum):
    NUMBER = "number"  # fixed-point BCD -> Decimal
    COUNT = "count"  # BCD integer -> int
    DATE = "date"  # YYMMDDWW (sent WW DD MM YY) -> date
    TIME = "time"  # hhmmss (sent ss mm hh) -> time
    DIGITS = "digits"  # BCD digit string (address, meter number) -> str
    WORD = "word"  # binary word, least significant byte first -> int
    BLOCK = "block"  # consecutive members -> tuple


@dataclass(frozen=True, slots=True)
class DataItem:
    """One data identifier: how its value is encoded and what it means."""

    di: str
    name: str
    length: int  # bytes of the value (a block: the nominal length, all members)
    decimals: int = 0
    signed: bool = False
    unit: str = ""
    field: str | None = None  # the READING_FIELDS name it fills
    kind: Kind = Kind.NUMBER
    members: tuple[str, ...] = ()  # BLOCK: member identifiers, in order
    uncertain: bool = False

    @property
    def wire(self) -> bytes:
        """The identifier as sent (least significant byte first, not scrambled)."""
        return bytes.fromhex(self.di)[::-1]


def _energy(di: str, name: str, field: str | None, *, signed: bool = False) -> DataItem:
    return DataItem(di, name, 4, 2, signed, "kWh", field, uncertain=signed)


def _block(di: str, name: str, members: tuple[str, ...], unit: str = "") -> DataItem:
    return DataItem(di, name, 0, unit=unit, kind=Kind.BLOCK, members=members)


_BANDS = ("total", "sharp", "peak", "flat", "valley")


def _energy_family(prefix: str, label: str, *, signed: bool) -> list[DataItem]:
    items = [
        _energy(f"{prefix}{tariff:02X}00", f"{label} {band}", band, signed=signed)
        for tariff, band in enumerate(_BANDS)
    ]
    items.append(_block(f"{prefix}FF00", f"{label} block", tuple(i.di for i in items), "kWh"))
    return items


def _money(di: str, name: str, field: str | None = None) -> DataItem:
    return DataItem(di, name, 4, 2, False, "CNY", field, uncertain=True)


def _build_table() -> dict[str, DataItem]:
    items: list[DataItem] = []
    items += _energy_family("0000", "combined active energy", signed=True)
    items += _energy_family("0001", "forward active energy", signed=False)
    items.append(_energy("00020000", "reverse active energy total", "reverse_total"))
    # Event counts of DL/T 645-2007's event-record table (NNNNNN, 3 bytes): 03300D00 cover-open total count,
    # 03350000 constant-magnetic-interference total count. [UNCERTAIN]: identifiers as vendor tables
    # reproduce them, not checked against the standard's text here.
    items.append(
        DataItem(
            "03300D00",
            "cover-open total count",
            3,
            0,
            False,
            "",
            "cover_open_count",
            Kind.COUNT,
            uncertain=True,
        )
    )
    items.append(
        DataItem(
            "03350000",
            "constant magnetic interference total count",
            3,
            0,
            False,
            "",
            "magnetic_count",
            Kind.COUNT,
            uncertain=True,
        )
    )
    # voltage XXX.X V, current XXX.XXX A (signed), per phase; blocks ..FF00
    voltage = [
        DataItem(f"0201{n:02X}00", f"voltage {p}", 2, 1, False, "V", "voltage" if n == 1 else None)
        for n, p in enumerate("ABC", start=1)
    ]
    current = [
        DataItem(
            f"0202{n:02X}00", f"current {p}", 3, 3, True, "A", "current" if n == 1 else None, uncertain=True
        )
        for n, p in enumerate("ABC", start=1)
    ]
    # active power XX.XXXX kW and power factor X.XXX: total then phases (signed)
    power = [
        DataItem(
            f"0203{n:02X}00",
            f"active power {p}",
            3,
            4,
            True,
            "kW",
            "power" if n == 0 else None,
            uncertain=True,
        )
        for n, p in enumerate(("total", "A", "B", "C"))
    ]
    factor = [
        DataItem(
            f"0206{n:02X}00",
            f"power factor {p}",
            2,
            3,
            True,
            "",
            "power_factor" if n == 0 else None,
            uncertain=True,
        )
        for n, p in enumerate(("total", "A", "B", "C"))
    ]
    for group, di, label in (
        (voltage, "0201FF00", "voltage block"),
        (current, "0202FF00", "current block"),
        (power, "0203FF00", "active power block"),
        (factor, "0206FF00", "power factor block"),
    ):
        items += group
        items.append(_block(di, label, tuple(i.di for i in group), group[0].unit))
    items.append(DataItem("02800002", "grid frequency", 2, 2, False, "Hz", "frequency"))
    items.append(DataItem("04000101", "date and weekday", 4, kind=Kind.DATE))
    items.append(DataItem("04000102", "time", 3, kind=Kind.TIME))
    items.append(DataItem("04000401", "communication address", 6, kind=Kind.DIGITS))
    items.append(DataItem("04000402", "meter number", 6, kind=Kind.DIGITS))
    items.append(DataItem("0400040E", "customer number", 6, kind=Kind.DIGITS))
    words = [
        DataItem(
            f"040005{n:02X}",
            f"running status word {n}",
            2,
            field="supply" if n == 3 else None,
            kind=Kind.WORD,
            uncertain=n == 3,
        )
        for n in range(1, 8)
    ]
    items += words
    items.append(_block("040005FF", "running status words block", tuple(w.di for w in words)))
    # State Grid prepaid extension
    items.append(_energy("00900100", "remaining energy", None))
    items.append(_energy("00900101", "overdraft energy", None))
    items.append(_money("00900200", "remaining money", "balance"))
    items.append(_money("00900201", "overdraft money", "balance"))
    items.append(_money("04001001", "alarm threshold 1"))
    items.append(_money("04001002", "alarm threshold 2"))
    items.append(_money("04001003", "overdraft limit"))
    items.append(_money("04001004", "hoarding limit"))
    items.append(_money("04001005", "balance needed before closing"))
    items += [
        DataItem(
            f"040501{n:02X}", f"price of tariff {n} ({band})", 4, 4, False, "CNY/kWh", None, uncertain=True
        )
        for n, band in enumerate(_BANDS[1:], start=1)
    ]
    items.append(
        DataItem(
            "03330201",
            "purchase count after the last purchase",
            2,
            0,
            False,
            "",
            "purchase_count",
            Kind.COUNT,
            uncertain=True,
        )
    )
    items += _load_control_items()
    table = {item.di: item for item in items}
    for item in items:  # a block's nominal length is the sum of its members'
        if item.kind is Kind.BLOCK:
            table[item.di] = replace(item, length=sum(table[m].length for m in item.members))
    return table


# Load-control identifiers (power limit, malicious-load rule, automatic restore, trip reason, load event
# records). 04000E01 is the forward active power upper limit of DL/T 645-2007's parameter table as vendor
# tables reproduce it (not checked against the standard's text here); everything in 04A1xxxx is OUR choice
# in a range no public document assigns: vendors that detect malicious loads use their own identifiers,
# which a model maps by its ``parameters`` (prepaid_engine.load.params). All are marked uncertain.
LOAD_RANGES = 6  # controlled power ranges a meter holds
LOAD_EVENTS = 10  # load event records a meter keeps (1 = the latest)
EVENT_RECORD_DIGITS = 20  # PPPPPP RR YYMMDDhhmmss: power XX.XXXX kW, trip reason, meter wall-clock time


def _load_control_items() -> list[DataItem]:
    def item(di: str, name: str, length: int, decimals: int = 0, unit: str = "", kind: Kind = Kind.NUMBER):
        return DataItem(di, name, length, decimals, False, unit, None, kind, uncertain=True)

    items = [
        item("04000E01", "forward active power upper limit", 3, 4, "kW"),
        item("04A10001", "power limit mode (0 alarm, 1 trip)", 1, kind=Kind.COUNT),
        item("04A10002", "malicious-load mode (0 off, 1 alarm, 2 trip)", 1, kind=Kind.COUNT),
        item("04A10003", "malicious-load power factor threshold", 2, 3),
        item("04A10004", "automatic restore delay", 2, unit="s", kind=Kind.COUNT),
        item("04A10005", "automatic restores per day", 1, kind=Kind.COUNT),
        item("04A10010", "last trip reason", 1, kind=Kind.COUNT),
        item("04A10011", "automatic restores today", 1, kind=Kind.COUNT),
        item("04A11000", "load event count", 3, kind=Kind.COUNT),
    ]
    for n in range(1, LOAD_RANGES + 1):
        items.append(item(f"04A101{n:02X}", f"controlled power range {n} low", 3, 4, "kW"))
        items.append(item(f"04A102{n:02X}", f"controlled power range {n} high", 3, 4, "kW"))
    # An event record is 10 BCD bytes; as a digit string (most significant first) PPPPPP RR YYMMDDhhmmss,
    # i.e. on the wire ss mm hh DD MM YY (as 04000101/02 send them), the reason byte, then the power least
    # significant byte first. All zeros: an empty slot.
    items += [
        item(f"04A110{n:02X}", f"load event record {n}", EVENT_RECORD_DIGITS // 2, kind=Kind.DIGITS)
        for n in range(1, LOAD_EVENTS + 1)
    ]
    return items


DI_TABLE: dict[str, DataItem] = _build_table()


def lookup(di: str, table: Mapping[str, DataItem] = DI_TABLE, *, what: str = "data identifier") -> DataItem:
    """The :class:`DataItem` of ``di`` (any case); :class:`ConfigError` (``unknown {what}``) for an identifier
    not in ``table``."""
    item = table.get(di)
    if item is None:
        item = table.get(di.upper()) if isinstance(di, str) else None
        if item is None:
            raise ConfigError(f"unknown {what} {di!r}")
    return item


# --- value codecs (tables of functions per kind) --------------------------------------------------
def _dec_number(item: DataItem, raw: bytes, table: Mapping[str, DataItem]) -> Decimal:
    _expect_length(item, raw)
    return bcd_to_decimal(raw, item.decimals, signed=item.signed)


def _dec_count(item: DataItem, raw: bytes, table: Mapping[str, DataItem]) -> int:
    _expect_length(item, raw)
    return int(bcd_digits(raw) or "0")


def _dec_date(item: DataItem, raw: bytes, table: Mapping[str, DataItem]) -> date:
    _expect_length(item, raw)
    _weekday, day, month, year = (bcd_byte(b) for b in raw)
    try:
        return date(2000 + year, month, day)
    except ValueError as exc:
        raise FrameError(f"{item.di}: {bytes(raw).hex(' ')} is not a date") from exc


def _dec_time(item: DataItem, raw: bytes, table: Mapping[str, DataItem]) -> time:
    _expect_length(item, raw)
    second, minute, hour = (bcd_byte(b) for b in raw)
    try:
        return time(hour, minute, second)
    except ValueError as exc:
        raise FrameError(f"{item.di}: {bytes(raw).hex(' ')} is not a time of day") from exc


def _dec_digits(item: DataItem, raw: bytes, table: Mapping[str, DataItem]) -> str:
    _expect_length(item, raw)
    return bcd_digits(raw)


def _dec_word(item: DataItem, raw: bytes, table: Mapping[str, DataItem]) -> int:
    _expect_length(item, raw)
    return int.from_bytes(raw, "little")


def _dec_block(item: DataItem, raw: bytes, table: Mapping[str, DataItem]) -> tuple:
    members = [table[di] for di in item.members]
    size = members[0].length
    if not raw or len(raw) % size:
        raise FrameError(f"{item.di}: {len(raw)} bytes is not a whole number of {size}-byte values")
    count = len(raw) // size
    # a meter with more tariffs sends more values than the table names: decode them like the last member
    return tuple(
        _DECODERS[m.kind](m, raw[k * size : (k + 1) * size], table)
        for k, m in enumerate(members[:count] + [members[-1]] * (count - len(members)))
    )


def _expect_length(item: DataItem, raw: bytes) -> None:
    if len(raw) != item.length:
        raise FrameError(f"{item.di} ({item.name}): {len(raw)} bytes, expected {item.length}")


_DECODERS: dict[Kind, Callable[[DataItem, bytes, Mapping[str, DataItem]], object]] = {
    Kind.NUMBER: _dec_number,
    Kind.COUNT: _dec_count,
    Kind.DATE: _dec_date,
    Kind.TIME: _dec_time,
    Kind.DIGITS: _dec_digits,
    Kind.WORD: _dec_word,
    Kind.BLOCK: _dec_block,
}


def _enc_number(item: DataItem, value, rounding, table) -> bytes:
    return decimal_to_bcd(value, item.length, item.decimals, signed=item.signed, rounding=rounding)


def _enc_count(item: DataItem, value, rounding, table) -> bytes:
    return int_to_bcd(value, item.length)


def _enc_date(item: DataItem, value, rounding, table) -> bytes:
    if not isinstance(value, date):
        raise ConfigError(f"{item.di} needs a date, not {value!r}")
    if not 2000 <= value.year <= 2099:
        raise ConfigError(f"{item.di}: year {value.year} is outside 2000..2099")
    return bytes(to_bcd_byte(v) for v in (value.isoweekday() % 7, value.day, value.month, value.year - 2000))


def _enc_time(item: DataItem, value, rounding, table) -> bytes:
    if not isinstance(value, time):
        raise ConfigError(f"{item.di} needs a time, not {value!r}")
    return bytes(to_bcd_byte(v) for v in (value.second, value.minute, value.hour))


def _enc_digits(item: DataItem, value, rounding, table) -> bytes:
    if (
        not isinstance(value, str)
        or len(value) != 2 * item.length
        or not (value.isascii() and value.isdigit())
    ):
        raise ConfigError(f"{item.di} needs {2 * item.length} decimal digits, not {value!r}")
    return bytes.fromhex(value)[::-1]


def _enc_word(item: DataItem, value, rounding, table) -> bytes:
    if isinstance(value, StatusWord3):
        value = value.to_word()
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << (8 * item.length):
        raise ConfigError(f"{item.di} needs an int of {item.length} bytes, not {value!r}")
    return value.to_bytes(item.length, "little")


def _enc_block(item: DataItem, value, rounding, table) -> bytes:
    if not isinstance(value, tuple | list) or not value:
        raise ConfigError(f"{item.di} needs a non-empty tuple of values")
    members = [table[di] for di in item.members]
    members += [members[-1]] * (len(value) - len(members))
    return b"".join(_ENCODERS[m.kind](m, v, rounding, table) for m, v in zip(members, value, strict=False))


_ENCODERS: dict[Kind, Callable] = {
    Kind.NUMBER: _enc_number,
    Kind.COUNT: _enc_count,
    Kind.DATE: _enc_date,
    Kind.TIME: _enc_time,
    Kind.DIGITS: _enc_digits,
    Kind.WORD: _enc_word,
    Kind.BLOCK: _enc_block,
}


def decode_item(item: DataItem, raw: bytes, table: Mapping[str, DataItem] = DI_TABLE):
    """Decode ``raw`` (de-scrambled value bytes) as ``item``; :class:`FrameError` if they do not fit."""
    return _DECODERS[item.kind](item, raw, table)


def encode_item(
    item: DataItem, value, *, rounding: str | None = None, table: Mapping[str, DataItem] = DI_TABLE
):
    """Encode ``value`` as ``item``'s bytes; :class:`ConfigError` if it does not fit the format."""
    return _ENCODERS[item.kind](item, value, rounding, table)


def decode_value(di: str, raw: bytes) -> Decimal | int | date | time | str | tuple:
    """The value of a DL/T 645-2007 reply's data (after the DI), typed per :data:`DI_TABLE`."""
    decoder = _COMPILED.decoders.get(di)
    if decoder is None:
        decoder = _COMPILED.decoders[lookup(di).di]
    return decoder(raw)


def encode_value(di: str, value, *, rounding: str | None = None) -> bytes:
    """The bytes a meter sends for ``value`` of ``di`` (inverse of :func:`decode_value`)."""
    item = DI_TABLE.get(di) or lookup(di)
    return _ENCODERS[item.kind](item, value, rounding, DI_TABLE)


# --- running status word 3 ------------------------------------------------------------------------
# field -> (first bit, width); every other bit is kept in ``other``
STATUS3_BITS: dict[str, tuple[int, int]] = {
    "relay_open": (4, 1),  # relay actual state: 1 = open (supply off)
    "relay_command": (6, 1),  # relay command state: 1 = trip commanded
    "pretrip_alarm": (7, 1),
    "meter_type": (8, 2),  # 0 postpaid, 1 prepaid by energy, 2 prepaid by money
    "keep_power": (12, 1),  # State Grid extension [UNCERTAIN]
}
_STATUS3_MASK = sum(((1 << width) - 1) << bit for bit, width in STATUS3_BITS.values())
RELAY_OPEN_BIT = 1 << STATUS3_BITS["relay_open"][0]


class MeterType(enum.IntEnum):
    POSTPAID = 0
    PREPAID_ENERGY = 1
    PREPAID_MONEY = 2


@dataclass(frozen=True, slots=True)
class StatusWord3:
    """Running status word 3 (``04000503``). ``other`` keeps the bits this class does not name."""

    relay_open: bool = False
    relay_command: bool = False
    pretrip_alarm: bool = False
    meter_type: int = MeterType.POSTPAID
    keep_power: bool = False
    other: int = 0

    @classmethod
    def from_word(cls, word: int) -> StatusWord3:
        values = {
            name: (word >> bit) & ((1 << width) - 1) if width > 1 else bool(word >> bit & 1)
            for name, (bit, width) in STATUS3_BITS.items()
        }
        return cls(**values, other=word & ~_STATUS3_MASK & 0xFFFF)

    def to_word(self) -> int:
        word = self.other & ~_STATUS3_MASK & 0xFFFF
        for name, (bit, width) in STATUS3_BITS.items():
            value = int(getattr(self, name))
            if not 0 <= value < 1 << width:
                raise ConfigError(f"status word 3: {name}={value} does not fit {width} bit(s)")
            word |= value << bit
        return word

    @classmethod
    def decode(cls, raw: bytes) -> StatusWord3:
        if len(raw) != 2:
            raise FrameError(f"status word 3 is 2 bytes, not {len(raw)}")
        return cls.from_word(int.from_bytes(raw, "little"))

    def encode(self) -> bytes:
        return self.to_word().to_bytes(2, "little")

    @property
    def supply(self) -> Supply:
        return Supply.OFF if self.relay_open else Supply.ON


def supply_from_status3(word: int) -> Supply:
    return Supply.OFF if word & RELAY_OPEN_BIT else Supply.ON


# --- reading values -------------------------------------------------------------------------------
OVERDRAFT_MONEY = "00900201"
REMAINING_MONEY = "00900200"


def _block_reader(item: DataItem, value: tuple, table: Mapping[str, DataItem]) -> dict[str, object]:
    values: dict[str, object] = {}
    for member_di, member_value in zip(item.members, value, strict=False):
        values.update(values_of(table[member_di], member_value, table))
    return values


def _overdraft_reader(item: DataItem, value: Decimal) -> dict[str, object]:
    # overdraft money is owed: a negative balance, meaningful only when something is owed
    return {"balance": -value} if value else {}


def _status3_reader(item: DataItem, value: int) -> dict[str, object]:
    return {"supply": supply_from_status3(value)}


# identifiers whose reading value is not simply ``{item.field: value}``
_SPECIAL_READERS: dict[str, Callable[[DataItem, object], dict[str, object]]] = {
    OVERDRAFT_MONEY: _overdraft_reader,
    "04000503": _status3_reader,
}


def values_of(item: DataItem, value, table: Mapping[str, DataItem] = DI_TABLE) -> dict[str, object]:
    """The reading values of an already decoded ``value`` of ``item`` (members of a block looked up in
    ``table``)."""
    if item.kind is Kind.BLOCK:
        return _block_reader(item, value, table)
    special = _SPECIAL_READERS.get(item.di)
    if special is not None:
        return special(item, value)
    return {item.field: value} if item.field else {}


def reading_values(di: str, raw: bytes) -> dict[str, object]:
    """What ``raw`` (a reply's value for ``di``) contributes to a Reading: ``{READING_FIELDS name: value}``.

    Energies fill total/sharp/peak/flat/valley (both the combined ``0000xx00`` and the forward ``0001xx00``
    families, and their blocks); ``02010100`` voltage, ``02020100`` current, ``02030000`` power,
    ``02060000`` power_factor, ``02800002`` frequency; ``00900200`` balance; ``00900201`` a negative balance
    when the overdraft is not zero (use :func:`collect_reading` when both are read); ``03330201``
    purchase_count; ``04000503`` (and the block ``040005FF``) supply from the relay bit. Identifiers that
    fill no field return ``{}``.
    """
    reader = _COMPILED.readers.get(di)
    if reader is None:
        reader = _COMPILED.readers[lookup(di).di]
    return reader(raw)


def collect_reading(pairs: Iterable[tuple[str, bytes]]) -> dict[str, object]:
    """Merge :func:`reading_values` of several ``(di, raw)`` pairs, independent of their order.

    The balance is the remaining money, or minus the overdraft when the remaining money is zero (or not
    read) and the overdraft is not.
    """
    values: dict[str, object] = {}
    overdraft: object = None
    for di, raw in pairs:
        item = DI_TABLE.get(di) or lookup(di)
        got = reading_values(item.di, raw)
        if item.di == OVERDRAFT_MONEY:
            overdraft = got.get("balance")
            continue
        values.update(got)
    if overdraft is not None and not values.get("balance"):
        values["balance"] = overdraft
    return values


# --- compiled tables: one closure per identifier, built once (the poller's hot path) --------------
@dataclass(frozen=True, slots=True)
class CompiledTable:
    """Per-identifier decoders (raw -> value) and readers (raw -> reading values) of one table."""

    items: Mapping[str, DataItem]
    decoders: dict[str, Callable[[bytes], object]]
    readers: dict[str, Callable[[bytes], dict[str, object]]]

    def decode(self, di: str, raw: bytes):
        decoder = self.decoders.get(di)
        if decoder is None:
            decoder = self.decoders[lookup(di, self.items).di]
        return decoder(raw)

    def reading(self, di: str, raw: bytes) -> dict[str, object]:
        reader = self.readers.get(di)
        if reader is None:
            reader = self.readers[lookup(di, self.items).di]
        return reader(raw)


def _number_decoder(item: DataItem) -> Callable[[bytes], Decimal]:
    length, decimals, signed = item.length, item.decimals, item.signed
    suffix = f"E-{decimals}" if decimals else ""  # Decimal("01234567E-2") == Decimal("12345.67"), parsed in C

    def decode(raw: bytes) -> Decimal:
        if len(raw) != length:
            _expect_length(item, raw)
        if signed and raw[-1] & 0x80:
            return bcd_to_decimal(raw, decimals, signed=True)
        digits = raw[::-1].hex()
        if not digits.isdigit():
            raise FrameError(f"{item.di} ({item.name}): not BCD: {bytes(raw).hex(' ')}")
        return Decimal(digits + suffix)

    return decode


def _block_decoder(item: DataItem, decoders: Mapping[str, Callable], table: Mapping[str, DataItem]):
    members = [table[m] for m in item.members]
    size = members[0].length
    first = members[0]
    if all(
        m.kind is Kind.NUMBER and not m.signed and m.length == size and m.decimals == first.decimals
        for m in members
    ):
        return _uniform_block_decoder(item, size, f"E-{first.decimals}" if first.decimals else "")
    fns = [decoders[m.di] for m in members]
    named = len(fns)

    def decode(raw: bytes) -> tuple:
        n = len(raw)
        if not n or n % size:
            raise FrameError(f"{item.di}: {n} bytes is not a whole number of {size}-byte values")
        count = n // size
        use = fns if count == named else (fns + [fns[-1]] * (count - named))[:count]
        return tuple([fn(raw[k * size : (k + 1) * size]) for k, fn in enumerate(use)])

    return decode


def _uniform_block_decoder(item: DataItem, size: int, suffix: str) -> Callable[[bytes], tuple]:
    """A block of unsigned numbers of one format (energies): one hex conversion for the whole block."""
    width = 2 * size

    def decode(raw: bytes) -> tuple:
        n = len(raw)
        if not n or n % size:
            raise FrameError(f"{item.di}: {n} bytes is not a whole number of {size}-byte values")
        digits = raw[::-1].hex()  # the last value first
        if not digits.isdigit():
            raise FrameError(f"{item.di} ({item.name}): not BCD: {bytes(raw).hex(' ')}")
        end = len(digits)
        return tuple([Decimal(digits[i - width : i] + suffix) for i in range(end, 0, -width)])

    return decode


def _value_reader(item: DataItem, table: Mapping[str, DataItem]) -> Callable[[object], dict[str, object]]:
    """value -> reading values (the decoded-value half of a reader)."""
    special = _SPECIAL_READERS.get(item.di)
    if special is not None:
        return lambda value: special(item, value)
    if item.kind is Kind.BLOCK:
        members = [table[m] for m in item.members]
        if all(m.kind is not Kind.BLOCK and m.di not in _SPECIAL_READERS for m in members):
            pairs = [(k, m.field) for k, m in enumerate(members) if m.field]
            return lambda values: {name: values[k] for k, name in pairs if k < len(values)}
        readers = [_value_reader(m, table) for m in members]

        def read_block(values: tuple) -> dict[str, object]:
            out: dict[str, object] = {}
            for reader, value in zip(readers, values, strict=False):
                out.update(reader(value))
            return out

        return read_block
    name = item.field
    if name:
        return lambda value: {name: value}
    return lambda value: {}


def compile_table(table: Mapping[str, DataItem]) -> CompiledTable:
    """Build the decoders and readers of ``table`` (members of blocks must be in the table)."""
    decoders: dict[str, Callable[[bytes], object]] = {}
    for item in table.values():
        if item.kind is Kind.NUMBER:
            decoders[item.di] = _number_decoder(item)
        elif item.kind is not Kind.BLOCK:
            decoders[item.di] = (lambda it: lambda raw: _DECODERS[it.kind](it, raw, table))(item)
    for item in table.values():
        if item.kind is Kind.BLOCK:
            decoders[item.di] = _block_decoder(item, decoders, table)
    readers: dict[str, Callable[[bytes], dict[str, object]]] = {}
    for item in table.values():
        decode, to_values = decoders[item.di], _value_reader(item, table)
        readers[item.di] = (lambda d, v: lambda raw: v(d(raw)))(decode, to_values)
    return CompiledTable(table, decoders, readers)


_COMPILED = compile_table(DI_TABLE)
