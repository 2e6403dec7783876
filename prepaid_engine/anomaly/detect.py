"""The anomaly detectors. One function per kind; see the package docstring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from ..errors import ConfigError

__all__ = [
    "MAD_SCALE",
    "DayUse",
    "Finding",
    "TamperState",
    "balance_mismatch",
    "expected_meter_balance",
    "line_loss",
    "not_read",
    "spike",
    "tamper",
    "zero_consumption",
]

#: Scale that turns a median absolute deviation into a standard deviation for normally distributed data.
MAD_SCALE = Decimal("1.4826")


@dataclass(frozen=True, slots=True)
class Finding:
    """One anomaly: ``kind`` (zero_consumption, consumption_spike, tamper, not_read, line_loss,
    balance_mismatch), the meter it concerns, the period it covers (dates, inclusive; ``None`` when the kind
    has no period) and its evidence (strings only)."""

    kind: str
    meter_key: str
    evidence: dict[str, str] = field(default_factory=dict)
    period_start: date | None = None
    period_end: date | None = None


@dataclass(frozen=True, slots=True)
class DayUse:
    """Consumption of one meter on one local day (kWh or m3)."""

    day: date
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class TamperState:
    """The tamper-related values one reading carried (``None``: the meter did not report it)."""

    reverse_total: Decimal | None = None
    cover_open_count: int | None = None
    magnetic_count: int | None = None


def _positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(
            f"{name} must be a positive integer, got {value!r}", kind="anomaly.not_positive", name=name
        )


def _not_negative(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ConfigError(
            f"{name} must be a finite Decimal >= 0, got {value!r}", kind="anomaly.negative", name=name
        )


def zero_consumption(meter_key: str, days: Sequence[DayUse], occupied: bool, n_days: int) -> Finding | None:
    """An occupied unit whose meter counted nothing on each of the last ``n_days`` consecutive days.

    ``days`` are the meter's daily facts in any order; only the trailing run of consecutive zero days ending
    at the latest day counts (a missing day breaks the run: no data is not zero consumption).
    """
    _positive_int("n_days", n_days)
    if not occupied or not days:
        return None
    ordered = sorted(days, key=lambda d: d.day)
    run: list[DayUse] = []
    for use in reversed(ordered):
        if use.quantity != 0:
            break
        if run and (run[-1].day - use.day) != timedelta(days=1):
            break
        run.append(use)
    if len(run) < n_days:
        return None
    return Finding(
        kind="zero_consumption",
        meter_key=meter_key,
        evidence={"zero_days": str(len(run)), "n_days": str(n_days)},
        period_start=run[-1].day,
        period_end=run[0].day,
    )


def _median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    if n % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def spike(
    meter_key: str,
    history: Sequence[Decimal],
    today: Decimal,
    *,
    day: date | None = None,
    k: Decimal = Decimal(6),
    min_history: int = 14,
    floor: Decimal = Decimal(5),
) -> Finding | None:
    """Today's consumption far above the meter's own history, judged with robust statistics.

    Alarm when ``today > median + max(k x MAD_SCALE x MAD, floor)`` over ``history`` (the previous days),
    with at least ``min_history`` days of history. The absolute ``floor`` (kWh or m3 above the median)
    keeps a tiny or perfectly regular meter (MAD 0) from alarming on a small step.
    """
    _positive_int("min_history", min_history)
    _not_negative("k", k)
    _not_negative("floor", floor)
    if len(history) < min_history or today is None:
        return None
    med = _median(history)
    mad = _median([abs(h - med) for h in history])
    margin = max(k * MAD_SCALE * mad, floor)
    limit = med + margin
    if today <= limit:
        return None
    return Finding(
        kind="consumption_spike",
        meter_key=meter_key,
        evidence={
            "today": str(today),
            "median": str(med),
            "mad": str(mad),
            "limit": str(limit.quantize(Decimal("0.001"))),
            "history_days": str(len(history)),
        },
        period_start=day,
        period_end=day,
    )


def not_read(
    meter_key: str, last_read_at: datetime | None, cycle: timedelta, n_cycles: int, now: datetime
) -> Finding | None:
    """A meter without a reading for more than ``n_cycles`` polling cycles (or never read)."""
    _positive_int("n_cycles", n_cycles)
    if cycle <= timedelta(0):
        raise ConfigError(f"cycle must be positive, got {cycle!r}", kind="anomaly.not_positive", name="cycle")
    if last_read_at is not None and now - last_read_at <= cycle * n_cycles:
        return None
    missed = "never" if last_read_at is None else str(int((now - last_read_at) / cycle))
    return Finding(
        kind="not_read",
        meter_key=meter_key,
        evidence={
            "last_read_at": "" if last_read_at is None else last_read_at.isoformat(),
            "cycles_missed": missed,
            "n_cycles": str(n_cycles),
        },
        period_end=now.date(),
    )


def line_loss(
    meter_key: str,
    master: Decimal,
    subs: Sequence[Decimal],
    threshold: Decimal,
    *,
    floor: Decimal = Decimal(1),
    day: date | None = None,
) -> Finding | None:
    """The master meter counted more than its sub-meters together by more than ``threshold`` (a share:
    0.05 = 5 %) and by more than ``floor`` units (so a near-idle building does not alarm on rounding)."""
    _not_negative("threshold", threshold)
    _not_negative("floor", floor)
    if master is None or master <= 0:
        return None
    total = sum(subs, Decimal(0))
    loss = master - total
    share = loss / master
    if share <= threshold or loss <= floor:
        return None
    return Finding(
        kind="line_loss",
        meter_key=meter_key,
        evidence={
            "master": str(master),
            "subs_total": str(total),
            "sub_meters": str(len(subs)),
            "loss": str(loss),
            "loss_share": str((share * 100).quantize(Decimal("0.01"))),
            "threshold": str((threshold * 100).quantize(Decimal("0.01"))),
        },
        period_start=day,
        period_end=day,
    )


def expected_meter_balance(
    reference: Decimal, consumed: Decimal, price: Decimal, credited: Decimal = Decimal(0)
) -> Decimal:
    """Meter-side billing: what a meter should hold that held ``reference``, then counted ``consumed`` (kWh or
    m3, >= 0) at its ``price`` per unit and was recharged ``credited``. The meter deducts by itself: the
    platform's ledger is no measure of the meter's money, its own earlier balance is."""
    _not_negative("consumed", consumed)
    _not_negative("price", price)
    _not_negative("credited", credited)
    return reference + credited - consumed * price


def balance_mismatch(
    meter_key: str, meter_balance: Decimal, expected: Decimal, tolerance: Decimal
) -> Finding | None:
    """Meter-side billing: the money the meter holds differs from what the platform expects
    (:func:`expected_meter_balance`) beyond ``tolerance`` (in currency)."""
    _not_negative("tolerance", tolerance)
    if meter_balance is None or expected is None:
        return None
    diff = meter_balance - expected
    if abs(diff) <= tolerance:
        return None
    return Finding(
        kind="balance_mismatch",
        meter_key=meter_key,
        evidence={
            "meter_balance": str(meter_balance),
            "expected": str(expected),
            "difference": str(diff),
            "tolerance": str(tolerance),
        },
    )


#: (evidence key, TamperState attribute) for the event counters.
_COUNTERS = (("cover_open", "cover_open_count"), ("magnetic", "magnetic_count"))


def tamper(meter_key: str, previous: TamperState, current: TamperState) -> list[Finding]:
    """Tamper events between two readings: an event counter that increased, or reverse energy that grew.

    A value absent from either reading says nothing. A counter that fell (meter reset or replaced) is not an
    event.
    """
    findings = []
    for event, attr in _COUNTERS:
        before, after = getattr(previous, attr), getattr(current, attr)
        if before is not None and after is not None and after > before:
            findings.append(
                Finding(
                    kind="tamper",
                    meter_key=meter_key,
                    evidence={"event": event, "before": str(before), "after": str(after)},
                )
            )
    before, after = previous.reverse_total, current.reverse_total
    if before is not None and after is not None and after > before:
        findings.append(
            Finding(
                kind="tamper",
                meter_key=meter_key,
                evidence={
                    "event": "reverse_energy",
                    "before": str(before),
                    "after": str(after),
                    "grown": str(after - before),
                },
            )
        )
    return findings
