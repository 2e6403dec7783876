"""Statement arithmetic: an account's period from its opening balance and ledger lines, and month over month.

A statement covers one account over one period. Its input is the opening balance and the period's ledger
lines as :class:`StatementEntry` values (a plain copy of ``prepaid.ledger`` rows: ``kind``, signed
``amount`` -- credits such as top-ups positive, deductions such as consumption and fees negative -- and, for
consumption, the utility, quantities per band and charges per band). :func:`statement` returns the totals
per section (one per :class:`EntryKind`, in that order, zero sections included so that layouts do not
move), consumption per utility, the period's credits and debits, and the closing balance, and it checks
that ``opening + sum of lines = closing`` (against the caller's closing balance too when given: the stored
balance must be the sum of the ledger).

No rounding happens here: ledger amounts are money already, so they must be whole multiples of the
currency precision (:class:`ConfigError` ``money.finer_than_precision`` otherwise) and every total is exact.

**Month over month** (:func:`compare`, :func:`compare_statements`): ``difference = current - previous``
and ``percent = difference / |previous| x 100``, rounded half away from zero to one decimal (``places``).
Dividing by the magnitude keeps the sign meaning "went up" / "went down" for negative figures too (a
section of deductions). When last month is zero there is no basis for a percentage: ``percent`` is
``None`` (show "new" or "n/a"), except that zero against zero is ``0`` (no change).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from ..errors import ConfigError
from ..rating.numbers import ZERO, to_decimal, to_quantity
from ..rating.tariff import NO_BANDS, Bands
from ..types import Utility
from .money import CENT, check_precision, from_steps, round_half_up, to_steps

__all__ = [
    "PERCENT_PLACES",
    "Change",
    "EntryKind",
    "Section",
    "Statement",
    "StatementComparison",
    "StatementEntry",
    "UtilityUsage",
    "compare",
    "compare_statements",
    "statement",
]

PERCENT_PLACES = Decimal("0.1")


class EntryKind(enum.StrEnum):
    """Ledger line kinds, in the order a statement shows its sections (the ledger's own kinds)."""

    OPENING = "opening"
    TOPUP = "topup"
    CONSUMPTION = "consumption"
    FEE = "fee"
    APPORTIONMENT = "apportionment"
    REFUND = "refund"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"


def _bands_sum(bands: Bands) -> Decimal:
    return sum(bands, ZERO)


def _add_bands(left: Bands, right: Bands) -> Bands:
    return Bands(*(a + b for a, b in zip(left, right, strict=True)))


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One ledger line. For consumption: ``utility``, the ``quantity`` (kWh or m3; defaults to the sum of
    ``bands``), the quantity per time-of-use band and the charge per band (``band_amounts``, positive: they
    add up to ``-amount``). ``key`` and ``description`` are carried for the caller."""

    kind: EntryKind
    amount: Decimal
    utility: Utility | None = None
    quantity: Decimal | None = None
    bands: Bands | None = None
    band_amounts: Bands | None = None
    key: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", EntryKind(self.kind))
        except ValueError as exc:
            raise ConfigError(
                f"ledger line kind must be one of {[str(k) for k in EntryKind]}, not {self.kind!r}",
                kind="statement.kind",
                value=self.kind,
            ) from exc
        object.__setattr__(self, "amount", to_decimal(self.amount, "ledger line amount"))
        consumption = self.kind is EntryKind.CONSUMPTION
        if not consumption:
            if any(v is not None for v in (self.utility, self.quantity, self.bands, self.band_amounts)):
                raise ConfigError(
                    f"only consumption lines carry a utility and quantities, not a {self.kind} line",
                    kind="statement.quantities_on_other_kind",
                )
            return
        try:
            object.__setattr__(self, "utility", Utility(self.utility))
        except ValueError as exc:
            raise ConfigError(
                f"a consumption line needs a utility, not {self.utility!r}", kind="statement.utility"
            ) from exc
        if self.bands is not None:
            object.__setattr__(self, "bands", Bands.of(self.bands))
        if self.band_amounts is not None:
            object.__setattr__(self, "band_amounts", Bands.of(self.band_amounts))
        if self.quantity is None:
            object.__setattr__(self, "quantity", _bands_sum(self.bands) if self.bands is not None else ZERO)
        else:
            object.__setattr__(self, "quantity", to_quantity(self.quantity, "consumption quantity"))
            if self.bands is not None and _bands_sum(self.bands) != self.quantity:
                raise ConfigError(
                    f"band quantities add up to {_bands_sum(self.bands)}, not the line's {self.quantity}",
                    kind="statement.bands_mismatch",
                )
        if self.band_amounts is not None and _bands_sum(self.band_amounts) != -self.amount:
            raise ConfigError(
                f"band charges add up to {_bands_sum(self.band_amounts)}, the line deducts {-self.amount}",
                kind="statement.band_amounts_mismatch",
            )


@dataclass(frozen=True, slots=True)
class Section:
    """The lines of one kind: how many, their signed ``total``."""

    kind: EntryKind
    count: int
    total: Decimal


@dataclass(frozen=True, slots=True)
class UtilityUsage:
    """Consumption of one utility: lines, ``quantity``, quantity and charge per band (summed over the lines
    that had them), and ``amount``, the signed total of its lines (negative: deducted)."""

    utility: Utility
    count: int
    quantity: Decimal
    bands: Bands
    band_amounts: Bands
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Statement:
    """``opening + credits + debits = closing``; ``sections`` in :class:`EntryKind` order add up to the same
    movement; ``usage`` per utility that has lines (in :class:`~prepaid_engine.types.Utility` order)."""

    opening: Decimal
    closing: Decimal
    credits: Decimal
    debits: Decimal
    sections: tuple[Section, ...]
    usage: tuple[UtilityUsage, ...]

    @property
    def movement(self) -> Decimal:
        return self.closing - self.opening

    def section(self, kind: EntryKind | str) -> Section:
        wanted = EntryKind(kind)
        return next(section for section in self.sections if section.kind is wanted)

    def usage_of(self, utility: Utility | str) -> UtilityUsage | None:
        wanted = Utility(utility)
        return next((usage for usage in self.usage if usage.utility is wanted), None)


def statement(
    opening: Decimal,
    entries: Iterable[StatementEntry],
    *,
    closing: Decimal | None = None,
    precision: Decimal = CENT,
) -> Statement:
    """The statement of an account that opened at ``opening`` and has ``entries`` in the period.

    ``closing``, when given (the stored balance), must equal ``opening`` plus the lines
    (:class:`ConfigError` ``statement.closing_mismatch``, with ``expected`` and ``computed``)."""
    precision = check_precision(precision)
    opening_steps = to_steps(opening, precision, "opening balance")
    counts = dict.fromkeys(EntryKind, 0)
    totals = dict.fromkeys(EntryKind, 0)
    credits = debits = 0
    usage: dict[Utility, list] = {}
    for entry in entries:
        if not isinstance(entry, StatementEntry):
            raise ConfigError(
                f"statement lines must be StatementEntry values, not {entry!r}", kind="statement.line"
            )
        steps = to_steps(entry.amount, precision, f"amount of {entry.kind} line {entry.key!r}")
        counts[entry.kind] += 1
        totals[entry.kind] += steps
        if steps > 0:
            credits += steps
        else:
            debits += steps
        if entry.kind is EntryKind.CONSUMPTION:
            found = usage.setdefault(Utility(entry.utility), [0, ZERO, NO_BANDS, NO_BANDS, 0])
            found[0] += 1
            found[1] += entry.quantity or ZERO
            found[2] = _add_bands(found[2], entry.bands or NO_BANDS)
            found[3] = _add_bands(found[3], entry.band_amounts or NO_BANDS)
            found[4] += steps
    closing_steps = opening_steps + credits + debits
    if sum(totals.values()) != closing_steps - opening_steps:  # pragma: no cover - by construction
        raise AssertionError("statement sections do not add up to the movement")
    computed = from_steps(closing_steps, precision)
    if closing is not None and to_steps(closing, precision, "closing balance") != closing_steps:
        raise ConfigError(
            f"the closing balance {closing} is not the opening balance plus the lines ({computed})",
            kind="statement.closing_mismatch",
            expected=closing,
            computed=computed,
        )
    return Statement(
        opening=from_steps(opening_steps, precision),
        closing=computed,
        credits=from_steps(credits, precision),
        debits=from_steps(debits, precision),
        sections=tuple(
            Section(kind, counts[kind], from_steps(totals[kind], precision)) for kind in EntryKind
        ),
        usage=tuple(
            UtilityUsage(utility, u[0], u[1], u[2], u[3], from_steps(u[4], precision))
            for utility in Utility
            if (u := usage.get(utility)) is not None
        ),
    )


# -- month over month ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """This period against the last: ``difference`` and ``percent`` (None when last period was zero and
    this one is not)."""

    current: Decimal
    previous: Decimal
    difference: Decimal
    percent: Decimal | None


def compare(current: Decimal, previous: Decimal, *, places: Decimal = PERCENT_PLACES) -> Change:
    """``current`` against ``previous``: difference, and percentage of ``|previous|`` (see the module)."""
    current = to_decimal(current, "current value")
    previous = to_decimal(previous, "previous value")
    places = check_precision(places)
    difference = current - previous
    if previous:
        percent = round_half_up(Fraction(difference) * 100 / abs(Fraction(previous)), places)
    else:
        percent = from_steps(0, places) if not current else None
    return Change(current, previous, difference, percent)


@dataclass(frozen=True, slots=True)
class StatementComparison:
    """Month over month: the closing balance, each section's total, and per utility (present in either
    month; absent counts as zero) the quantity and the amount."""

    closing: Change
    credits: Change
    debits: Change
    sections: tuple[tuple[EntryKind, Change], ...]
    quantities: tuple[tuple[Utility, Change], ...]
    amounts: tuple[tuple[Utility, Change], ...]


def compare_statements(
    current: Statement, previous: Statement, *, places: Decimal = PERCENT_PLACES
) -> StatementComparison:
    """This month's statement against last month's (see :func:`compare`)."""
    utilities = [u for u in Utility if current.usage_of(u) is not None or previous.usage_of(u) is not None]

    def used(statement: Statement, utility: Utility, attribute: str) -> Decimal:
        found = statement.usage_of(utility)
        return getattr(found, attribute) if found is not None else ZERO

    return StatementComparison(
        closing=compare(current.closing, previous.closing, places=places),
        credits=compare(current.credits, previous.credits, places=places),
        debits=compare(current.debits, previous.debits, places=places),
        sections=tuple(
            (kind, compare(current.section(kind).total, previous.section(kind).total, places=places))
            for kind in EntryKind
        ),
        quantities=tuple(
            (u, compare(used(current, u, "quantity"), used(previous, u, "quantity"), places=places))
            for u in utilities
        ),
        amounts=tuple(
            (u, compare(used(current, u, "amount"), used(previous, u, "amount"), places=places))
            for u in utilities
        ),
    )
