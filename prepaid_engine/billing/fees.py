"""Fee arithmetic: which billing periods a fee item is due for, and how much each period charges.

A :class:`FeeItem` (rent, property fee, service fee) charges ``rate`` per period: a fixed amount, a price per
m2 of the unit's area, or a price per unit of a quantity (parking spaces, persons, kVA: :class:`AmountKind`),
one-off or every month, quarter or year (:class:`Frequency`).

**Periods follow the building's settlement calendar.** A monthly period is a settlement cycle of a
``monthly`` :class:`~prepaid_engine.calendar.SettlementCalendar`: it starts on the calendar's cycle day
(clamped to the month's last day, so cycle day 31 starts periods on 28/29 February and 30 April), as the
calendar itself decides (:func:`~prepaid_engine.calendar.cycle_bounds`, in the calendar's zone; the period is
the local dates ``[start, end)``). A quarterly period is the three cycles starting in January-March,
April-June, July-September or October-December; a yearly period the twelve cycles starting in January to
December. A period is labelled by the month its first cycle starts in, and that label is its **key**, stable
enough to be part of a uniqueness key (tenancy, item, key): ``"2026-11"`` (monthly), ``"2026-Q4"``
(quarterly), ``"2026"`` (yearly). A one-off item has the single key ``"once"``: it is charged once, on the
first day it applies, whatever later changes of dates.

**What applies.** An item applies to a tenancy on the days both are in force: from the later of the
tenancy's start and the item's ``date_from`` to the earlier of their ends (all dates inclusive, as Odoo's
date fields are; ``None`` means open). Only periods that overlap those days are billed, and only the days
they overlap.

**Due dates.** ``timing="advance"`` (the default: rent, property fees) makes a period due on its first
billed day; ``"arrears"`` on the day after its last billed day (the period's end, or the day after the
tenancy or item ends). :func:`fee_charges` lists the charges due on or before ``until``.

**Proration** (``prorate=True``, the default): a period only partly billed (the tenancy or the item starts
or ends inside it) charges ``full x billed days / days in the period``; quarters and years prorate by their
own days (a leap year's 366). With ``prorate=False`` a partly billed period charges the full amount.
A one-off is never prorated. A per-quantity item given a quantity per period key (a mapping: the period's
measured quantity) is not prorated either: the quantity already covers the billed days.

**Rounding**: the exact amount (rate x area or quantity x days / period days, computed with fractions) is
rounded once, half away from zero, to the currency precision (:func:`~.money.round_half_up`).

Pure functions: the caller says up to which date it asks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from ..calendar import Cycle, SettlementCalendar, cycle_bounds, local_to_utc
from ..calendar import zone as _zone
from ..errors import ConfigError
from ..rating.numbers import to_price, to_quantity
from .money import CENT, check_precision, round_half_up

__all__ = [
    "ONE_OFF_KEY",
    "AmountKind",
    "BillingPeriod",
    "FeeCharge",
    "FeeItem",
    "Frequency",
    "Timing",
    "billing_periods",
    "fee_charges",
    "period_charge",
    "period_containing",
]

ONE_OFF_KEY = "once"
_ONE_DAY = timedelta(days=1)
_ONE_US = timedelta(microseconds=1)


class AmountKind(enum.StrEnum):
    FIXED = "fixed"
    PER_AREA = "per_area"
    PER_QUANTITY = "per_quantity"


class Frequency(enum.StrEnum):
    ONE_OFF = "one_off"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class Timing(enum.StrEnum):
    ADVANCE = "advance"
    ARREARS = "arrears"


def _month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def _quarter_key(year: int, month: int) -> str:
    return f"{year:04d}-Q{(month - 1) // 3 + 1}"


def _year_key(year: int, month: int) -> str:
    return f"{year:04d}"


# Per recurring frequency: cycles in a period, and the key of a period from its first cycle's (year, month).
# A period's first cycle starts in a month m with (m - 1) % cycles == 0.
_RECURRING = {
    Frequency.MONTHLY: (1, _month_key),
    Frequency.QUARTERLY: (3, _quarter_key),
    Frequency.YEARLY: (12, _year_key),
}


def _enum(kind: type[enum.StrEnum], value: object, what: str) -> enum.StrEnum:
    try:
        return kind(value)
    except ValueError as exc:
        raise ConfigError(
            f"{what} must be one of {[str(v) for v in kind]}, not {value!r}", kind=f"fee.{what}", value=value
        ) from exc


def _check_range(first: date | None, last: date | None, what: str) -> None:
    for value in (first, last):
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            raise ConfigError(f"{what} dates must be datetime.date values, not {value!r}", kind="fee.date")
    if first is not None and last is not None and last < first:
        raise ConfigError(
            f"{what} ends ({last}) before it starts ({first})",
            kind="fee.range_reversed",
            first=first,
            last=last,
        )


@dataclass(frozen=True, slots=True)
class FeeItem:
    """A fee: ``rate`` (>= 0, at most 4 decimals) per period of ``frequency``, times the unit's area
    (``per_area``) or a quantity (``per_quantity``); in force from ``date_from`` to ``date_to`` (inclusive,
    None = open)."""

    key: str
    amount_kind: AmountKind
    rate: Decimal
    frequency: Frequency
    date_from: date | None = None
    date_to: date | None = None
    prorate: bool = True
    timing: Timing = Timing.ADVANCE

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount_kind", _enum(AmountKind, self.amount_kind, "amount_kind"))
        object.__setattr__(self, "frequency", _enum(Frequency, self.frequency, "frequency"))
        object.__setattr__(self, "timing", _enum(Timing, self.timing, "timing"))
        object.__setattr__(self, "rate", to_price(self.rate, f"rate of fee {self.key!r}"))
        _check_range(self.date_from, self.date_to, f"fee {self.key!r}")


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """A billing period: local dates ``[start, end)`` (``end`` is the next period's first day) and its key."""

    key: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True, slots=True)
class FeeCharge:
    """What one period of a fee item charges.

    ``start``/``end`` are the billed days ``[start, end)`` (the period clipped to the days the item
    applies), ``days`` their number and ``period_days`` the period's; ``basis`` the area or quantity
    multiplied (None for fixed); ``full`` the whole period's amount and ``amount`` this charge (each rounded
    once, half up); ``prorated`` whether ``amount`` is the days' share of ``full``; ``due`` the date it falls
    due."""

    item_key: str
    period: BillingPeriod
    start: date
    end: date
    due: date
    days: int
    period_days: int
    basis: Decimal | None
    full: Decimal
    amount: Decimal
    prorated: bool


# -- periods ---------------------------------------------------------------------------------------------


def _check_calendar(calendar: SettlementCalendar) -> None:
    if not isinstance(calendar, SettlementCalendar) or calendar.cycle is not Cycle.MONTHLY:
        raise ConfigError(
            f"fees are billed on a monthly settlement calendar (its cycle day), not {calendar!r}",
            kind="fee.calendar_not_monthly",
        )


def _cycle_of(calendar: SettlementCalendar, day: date) -> tuple[date, date]:
    """Local first days ``[start, end)`` of the settlement cycle that ``day`` belongs to."""
    tzinfo = _zone(calendar.tz)
    start, end = cycle_bounds(calendar, local_to_utc(datetime.combine(day, calendar.time), tzinfo))
    return start.astimezone(tzinfo).date(), end.astimezone(tzinfo).date()


def period_containing(calendar: SettlementCalendar, frequency: Frequency, day: date) -> BillingPeriod:
    """The monthly, quarterly or yearly billing period of ``calendar`` that local date ``day`` is in."""
    _check_calendar(calendar)
    frequency = _enum(Frequency, frequency, "frequency")
    if frequency is Frequency.ONE_OFF:
        raise ConfigError("a one-off fee has no calendar periods", kind="fee.one_off_period")
    cycles, key = _RECURRING[frequency]
    start, _ = _cycle_of(calendar, day)
    while (start.month - 1) % cycles:  # back to the period's first cycle
        start, _ = _cycle_of(calendar, start - _ONE_DAY)
    end = start
    for _ in range(cycles):
        _, end = _cycle_of(calendar, end)
    return BillingPeriod(key(start.year, start.month), start, end)


def _applies(item: FeeItem, tenancy_start: date, tenancy_end: date | None) -> tuple[date, date | None] | None:
    """Days ``[first, stop)`` the item applies to the tenancy (``stop`` None = open), or None if no day."""
    if tenancy_start is None:
        raise ConfigError("a tenancy needs a start date", kind="fee.date")
    _check_range(tenancy_start, tenancy_end, "the tenancy")
    first = max(tenancy_start, item.date_from) if item.date_from else tenancy_start
    ends = [d for d in (tenancy_end, item.date_to) if d is not None]
    stop = min(ends) + _ONE_DAY if ends else None
    if stop is not None and stop <= first:
        return None
    return first, stop


def _periods(
    item: FeeItem, calendar: SettlementCalendar, first: date, stop: date | None, until: date
) -> list[tuple[BillingPeriod, date, date, date]]:
    """(period, billed start, billed end, due) of the item's periods due on or before ``until``."""
    if item.frequency is Frequency.ONE_OFF:
        if first > until:
            return []
        return [(BillingPeriod(ONE_OFF_KEY, first, first + _ONE_DAY), first, first + _ONE_DAY, first)]
    found = []
    period = period_containing(calendar, item.frequency, first)
    while stop is None or period.start < stop:
        start = max(period.start, first)
        end = period.end if stop is None else min(period.end, stop)
        due = start if item.timing is Timing.ADVANCE else end
        if due > until:
            break  # due dates only grow from one period to the next
        found.append((period, start, end, due))
        period = period_containing(calendar, item.frequency, period.end)
    return found


def billing_periods(
    item: FeeItem,
    calendar: SettlementCalendar,
    tenancy_start: date,
    tenancy_end: date | None,
    until: date,
) -> tuple[BillingPeriod, ...]:
    """The periods of ``item`` due on or before ``until`` for a tenancy from ``tenancy_start`` to
    ``tenancy_end`` (inclusive; None = open), in order (see the module)."""
    _check_calendar(calendar)
    applies = _applies(item, tenancy_start, tenancy_end)
    if applies is None:
        return ()
    return tuple(period for period, _, _, _ in _periods(item, calendar, *applies, until))


# -- amounts ---------------------------------------------------------------------------------------------


def _basis(item: FeeItem, period_key: str, area: Decimal | None, quantity) -> tuple[Decimal | None, bool]:
    """The area or quantity the rate multiplies, and whether it is the period's own measure (no proration)."""
    if item.amount_kind is AmountKind.FIXED:
        return None, False
    if item.amount_kind is AmountKind.PER_AREA:
        if area is None:
            raise ConfigError(
                f"fee {item.key!r} is per m2 and needs the unit's area", kind="fee.area_missing"
            )
        return to_quantity(area, "unit area"), False
    if isinstance(quantity, Mapping):
        if period_key not in quantity:
            raise ConfigError(
                f"fee {item.key!r} has no quantity for period {period_key}",
                kind="fee.quantity_missing",
                period=period_key,
            )
        return to_quantity(quantity[period_key], f"quantity of period {period_key}"), True
    if quantity is None:
        raise ConfigError(f"fee {item.key!r} is per quantity and needs one", kind="fee.quantity_missing")
    return to_quantity(quantity, "fee quantity"), False


def period_charge(
    item: FeeItem,
    period: BillingPeriod,
    start: date,
    end: date,
    *,
    due: date | None = None,
    area: Decimal | None = None,
    quantity: Decimal | Mapping[str, Decimal] | None = None,
    precision: Decimal = CENT,
) -> FeeCharge:
    """The charge of ``item`` for the billed days ``[start, end)`` of ``period`` (see the module)."""
    precision = check_precision(precision)
    if not period.start <= start < end <= period.end:
        raise ConfigError(
            f"billed days {start}..{end} are not inside period {period.key} ({period.start}..{period.end})",
            kind="fee.days_outside_period",
        )
    basis, measured = _basis(item, period.key, area, quantity)
    exact = Fraction(item.rate) * (Fraction(basis) if basis is not None else 1)
    days, period_days = (end - start).days, period.days
    prorated = (
        item.prorate and not measured and item.frequency is not Frequency.ONE_OFF and days < period_days
    )
    share = exact * days / period_days if prorated else exact
    return FeeCharge(
        item_key=item.key,
        period=period,
        start=start,
        end=end,
        due=due if due is not None else start,
        days=days,
        period_days=period_days,
        basis=basis,
        full=round_half_up(exact, precision),
        amount=round_half_up(share, precision),
        prorated=prorated,
    )


def fee_charges(
    item: FeeItem,
    calendar: SettlementCalendar,
    tenancy_start: date,
    tenancy_end: date | None,
    until: date,
    *,
    area: Decimal | None = None,
    quantity: Decimal | Mapping[str, Decimal] | None = None,
    precision: Decimal = CENT,
) -> tuple[FeeCharge, ...]:
    """The charges of ``item`` due on or before ``until`` for a tenancy (dates inclusive), one per period,
    in order; ``area`` for per-m2 items, ``quantity`` (a number, or per period key) for per-quantity items."""
    _check_calendar(calendar)
    applies = _applies(item, tenancy_start, tenancy_end)
    if applies is None:
        return ()
    return tuple(
        period_charge(item, period, start, end, due=due, area=area, quantity=quantity, precision=precision)
        for period, start, end, due in _periods(item, calendar, *applies, until)
    )
