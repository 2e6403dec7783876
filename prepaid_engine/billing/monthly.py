"""The monthly ledger (月报表台账): a building's month per account, its totals, what moved since review.

**The month.** A ledger covers the settlement cycle that *starts* in the month (:func:`month_period`): for a
building whose monthly cycle starts on the 5th at 08:00, "2026-03" runs from 5 March 08:00 to 5 April 08:00,
local time, and its previous month from 5 February 08:00. That is the period the tiers and free allowances
ran over and the one the Acrel 月报表 prints. A building with a weekly or daily cycle has no monthly cycle:
its month is the calendar month, midnight to midnight in the building's time zone. The daily consumption
facts are counted by local day: a month covers the local days from the day of its start up to (excluding) the
day of its end (:attr:`MonthPeriod.first_day`, :attr:`MonthPeriod.end_day`).

**A row** (:class:`AccountFigures` -> :func:`ledger_row`) holds one account's month: electricity and water
quantity and charge, apportioned shares and fees (as charges: positive when the tenant paid them), last
month's quantity per utility. Its ``total`` is what the month charged: electricity + water + apportionment +
fees. Month on month per utility is :func:`~prepaid_engine.billing.statement.compare` (difference, percent
with one decimal, ``None`` when last month was zero and this month is not).

**Normalisation.** Quantities are kept to 3 decimals and money to the currency's precision, both rounded
half away from zero (:func:`~prepaid_engine.billing.money.round_half_up`) once, when a row is built: the
facts already are at those precisions, so this changes nothing but float residue a caller may bring.

**Review.** A reviewed ledger freezes its rows; :func:`fingerprint` is a stable digest of the rows' figures
(by key, any order) and :func:`differences` lists, figure by figure, what the data says now against what was
frozen (accounts added or gone included), so that a ledger the data moved under is flagged with what changed
instead of being rewritten.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal

from ..calendar import Cycle, SettlementCalendar, local_to_utc, zone
from ..errors import ConfigError
from ..rating.numbers import ZERO, to_decimal
from .money import CENT, check_precision, round_half_up
from .statement import Change, compare

__all__ = [
    "MONEY_FIGURES",
    "QUANTITY_FIGURES",
    "QUANTITY_PRECISION",
    "AccountFigures",
    "ChangeKind",
    "FigureChange",
    "LedgerRow",
    "LedgerTotals",
    "MonthPeriod",
    "closed_month",
    "differences",
    "fingerprint",
    "ledger_row",
    "ledger_totals",
    "month_period",
]


QUANTITY_PRECISION = Decimal("0.001")  # kWh and m3 to three decimals, as the daily facts keep them
_ONE_DAY = timedelta(days=1)


# -- the month ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthPeriod:
    """The ledger period of ``year``-``month`` (see the module): ``start`` <= t < ``end`` (UTC), the previous
    month from ``previous_start`` to ``start``; the local days the facts are counted on, ``first_day`` up to
    ``end_day`` excluded (``previous_first_day`` up to ``first_day`` for last month)."""

    year: int
    month: int
    start: datetime
    end: datetime
    previous_start: datetime
    first_day: date
    end_day: date
    previous_first_day: date

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def last_day(self) -> date:
        """The last local day the month covers (inclusive)."""
        return self.end_day - _ONE_DAY


def _step_month(year: int, month: int, steps: int) -> tuple[int, int]:
    months = year * 12 + month - 1 + steps
    return months // 12, months % 12 + 1


def _month_start(calendar: SettlementCalendar, year: int, month: int) -> datetime:
    """The instant (UTC) the ledger month ``year``-``month`` starts: its monthly cycle start (the cycle day,
    clamped to the month's last day, at the cycle time), else local midnight of the 1st."""
    tzinfo = zone(calendar.tz)
    if calendar.cycle is Cycle.MONTHLY:
        following = date(*_step_month(year, month, 1), 1)
        day = min(calendar.day, (following - _ONE_DAY).day)
        return local_to_utc(datetime.combine(date(year, month, day), calendar.time), tzinfo)
    return local_to_utc(datetime.combine(date(year, month, 1), datetime.min.time()), tzinfo)


def month_period(calendar: SettlementCalendar, year: int, month: int) -> MonthPeriod:
    """The ledger period of ``year``-``month`` for a building with ``calendar`` (see the module)."""
    if not isinstance(calendar, SettlementCalendar):
        raise ConfigError(
            f"month_period needs a SettlementCalendar, not {calendar!r}", kind="monthly.calendar"
        )
    if not (isinstance(year, int) and isinstance(month, int) and 1 <= month <= 12 and 1900 <= year <= 9998):
        raise ConfigError(f"no such month: {year!r}-{month!r}", kind="monthly.month", year=year, month=month)
    tzinfo = zone(calendar.tz)
    start = _month_start(calendar, year, month)
    end = _month_start(calendar, *_step_month(year, month, 1))
    previous = _month_start(calendar, *_step_month(year, month, -1))

    def local_day(at: datetime) -> date:
        return at.astimezone(tzinfo).date()

    return MonthPeriod(
        year=year,
        month=month,
        start=start,
        end=end,
        previous_start=previous,
        first_day=local_day(start),
        end_day=local_day(end),
        previous_first_day=local_day(previous),
    )


def closed_month(calendar: SettlementCalendar, at: datetime) -> MonthPeriod:
    """The last ledger month that had ended at ``at`` (aware): the month before the one ``at`` falls in."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ConfigError(f"closed_month needs a timezone-aware datetime, got {at!r}", kind="monthly.naive")
    local = at.astimezone(zone(calendar.tz))
    year, month = local.year, local.month
    for _attempt in range(3):
        period = month_period(calendar, year, month)
        if period.start <= at:
            break
        year, month = _step_month(year, month, -1)
    return month_period(calendar, *_step_month(year, month, -1))


# -- rows and totals ---------------------------------------------------------------------------------------


QUANTITY_FIGURES = (
    "electricity_quantity",
    "water_quantity",
    "previous_electricity_quantity",
    "previous_water_quantity",
)
MONEY_FIGURES = ("electricity_amount", "water_amount", "apportionment", "fees")


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """One account's month in a building. ``key`` identifies the account for the caller (an id). Charges are
    positive when the tenant was charged (a reversed charge makes them smaller, possibly negative)."""

    key: Hashable
    electricity_quantity: Decimal = ZERO
    electricity_amount: Decimal = ZERO
    water_quantity: Decimal = ZERO
    water_amount: Decimal = ZERO
    apportionment: Decimal = ZERO
    fees: Decimal = ZERO
    previous_electricity_quantity: Decimal = ZERO
    previous_water_quantity: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in (*QUANTITY_FIGURES, *MONEY_FIGURES):
            value = getattr(self, name)
            object.__setattr__(self, name, to_decimal(ZERO if value is None else value, name))

    def normalised(self, precision: Decimal = CENT) -> AccountFigures:
        """The same figures, quantities to 3 decimals and money to ``precision`` (half away from zero)."""
        values = {name: round_half_up(getattr(self, name), QUANTITY_PRECISION) for name in QUANTITY_FIGURES}
        values.update({name: round_half_up(getattr(self, name), precision) for name in MONEY_FIGURES})
        return AccountFigures(key=self.key, **values)

    def values(self) -> tuple[Decimal, ...]:
        return tuple(getattr(self, name) for name in FIGURES)


FIGURES = tuple(f.name for f in fields(AccountFigures) if f.name != "key")


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """A ledger line: the (normalised) ``figures``, what the month charged (``total``), and month on month
    per utility (``electricity``, ``water``: quantity this month against last month)."""

    figures: AccountFigures
    total: Decimal
    electricity: Change
    water: Change

    @property
    def key(self) -> Hashable:
        return self.figures.key


def ledger_row(figures: AccountFigures, *, precision: Decimal = CENT) -> LedgerRow:
    """The ledger line of ``figures`` (see the module)."""
    precision = check_precision(precision)
    fig = figures.normalised(precision)
    return LedgerRow(
        figures=fig,
        total=sum((getattr(fig, name) for name in MONEY_FIGURES), ZERO),
        electricity=compare(fig.electricity_quantity, fig.previous_electricity_quantity),
        water=compare(fig.water_quantity, fig.previous_water_quantity),
    )


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """The totals row: every figure summed over the rows (``figures.key`` is ``None``), the month's total,
    and month on month per utility of the summed quantities."""

    count: int
    figures: AccountFigures
    total: Decimal
    electricity: Change
    water: Change


def ledger_totals(rows: Iterable[LedgerRow]) -> LedgerTotals:
    """The totals of ``rows`` (exact sums of the normalised figures)."""
    sums = dict.fromkeys(FIGURES, ZERO)
    total = ZERO
    count = 0
    for row in rows:
        if not isinstance(row, LedgerRow):
            raise ConfigError(f"ledger_totals adds LedgerRow values, not {row!r}", kind="monthly.row")
        count += 1
        total += row.total
        for name in FIGURES:
            sums[name] += getattr(row.figures, name)
    figures = AccountFigures(key=None, **sums)
    return LedgerTotals(
        count=count,
        figures=figures,
        total=total,
        electricity=compare(figures.electricity_quantity, figures.previous_electricity_quantity),
        water=compare(figures.water_quantity, figures.previous_water_quantity),
    )


# -- review ------------------------------------------------------------------------------------------------


def _by_key(rows: Iterable[LedgerRow | AccountFigures], precision: Decimal) -> dict[Hashable, AccountFigures]:
    found: dict[Hashable, AccountFigures] = {}
    for row in rows:
        figures = row.figures if isinstance(row, LedgerRow) else row
        if not isinstance(figures, AccountFigures):
            raise ConfigError(f"expected ledger rows or account figures, not {row!r}", kind="monthly.row")
        if figures.key in found:
            raise ConfigError(
                f"account {figures.key!r} appears twice", kind="monthly.duplicate", key=figures.key
            )
        found[figures.key] = figures.normalised(precision)
    return found


def fingerprint(rows: Iterable[LedgerRow | AccountFigures], *, precision: Decimal = CENT) -> str:
    """A stable digest (SHA-256, hex) of the rows' normalised figures, independent of their order and of how
    the decimals are written (``1.5`` and ``1.500`` are the same figure)."""
    precision = check_precision(precision)
    found = _by_key(rows, precision)
    digest = hashlib.sha256()
    for key in sorted(found, key=repr):
        values = "|".join(format(value.normalize(), "f") for value in found[key].values())
        digest.update(f"{key!r}|{values}\n".encode())
    return digest.hexdigest()


class ChangeKind(enum.StrEnum):
    ADDED = "added"  # an account with figures now that the frozen ledger does not have
    REMOVED = "removed"  # an account of the frozen ledger the data no longer gives
    CHANGED = "changed"  # one figure of an account moved


@dataclass(frozen=True, slots=True)
class FigureChange:
    """One difference between the frozen ledger and the data: for ``changed``, the ``figure`` (a field name
    of :class:`AccountFigures`) with its ``frozen`` and ``current`` value; for ``added``/``removed`` the
    account's ``total`` charge on the side that has it (``current`` / ``frozen``), ``figure`` empty."""

    kind: ChangeKind
    key: Hashable
    figure: str = ""
    frozen: Decimal | None = None
    current: Decimal | None = None


def differences(
    frozen: Iterable[LedgerRow | AccountFigures],
    current: Iterable[LedgerRow | AccountFigures],
    *,
    precision: Decimal = CENT,
) -> tuple[FigureChange, ...]:
    """What ``current`` says against ``frozen``, figure by figure (normalised), ordered by account key (as
    ``repr``) then by figure; empty when nothing moved."""
    precision = check_precision(precision)
    before, after = _by_key(frozen, precision), _by_key(current, precision)
    changes: list[FigureChange] = []

    def charged(figures: AccountFigures) -> Decimal:
        return sum((getattr(figures, name) for name in MONEY_FIGURES), ZERO)

    for key in sorted(before.keys() | after.keys(), key=repr):
        old, new = before.get(key), after.get(key)
        if old is None:
            changes.append(FigureChange(ChangeKind.ADDED, key, current=charged(new)))
        elif new is None:
            changes.append(FigureChange(ChangeKind.REMOVED, key, frozen=charged(old)))
        else:
            changes.extend(
                FigureChange(ChangeKind.CHANGED, key, name, getattr(old, name), getattr(new, name))
                for name in FIGURES
                if getattr(old, name) != getattr(new, name)
            )
    return tuple(changes)
