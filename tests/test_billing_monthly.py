"""Monthly ledger arithmetic: a calendar's month, rows, totals, fingerprint and differences."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.billing.monthly import (
    AccountFigures,
    ChangeKind,
    closed_month,
    differences,
    fingerprint,
    ledger_row,
    ledger_totals,
    month_period,
)
from prepaid_engine.calendar import Cycle, SettlementCalendar

D = Decimal
SHANGHAI_5TH = SettlementCalendar(Cycle.MONTHLY, 5, time(8), "Asia/Shanghai")


def test_the_month_is_the_settlement_cycle_that_starts_in_it():
    period = month_period(SHANGHAI_5TH, 2026, 3)
    assert period.start == datetime(2026, 3, 5, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert period.end == datetime(2026, 4, 5, 0, 0, tzinfo=UTC)
    assert period.previous_start == datetime(2026, 2, 5, 0, 0, tzinfo=UTC)
    assert (period.first_day, period.last_day, period.previous_first_day) == (
        date(2026, 3, 5),
        date(2026, 4, 4),
        date(2026, 2, 5),
    )
    assert period.label == "2026-03"


def test_a_cycle_day_past_the_month_end_is_the_last_day():
    period = month_period(SettlementCalendar(Cycle.MONTHLY, 31, tz="UTC"), 2026, 2)
    assert period.first_day == date(2026, 2, 28)
    assert period.end_day == date(2026, 3, 31)
    assert period.previous_first_day == date(2026, 1, 31)


def test_weekly_and_daily_cycles_take_the_calendar_month_in_the_zone():
    period = month_period(SettlementCalendar(Cycle.WEEKLY, 3, tz="Asia/Shanghai"), 2026, 1)
    assert period.start == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert (period.first_day, period.end_day) == (date(2026, 1, 1), date(2026, 2, 1))


def test_the_closed_month_is_the_one_before_the_running_cycle():
    assert closed_month(SHANGHAI_5TH, datetime(2026, 4, 5, 0, 1, tzinfo=UTC)).label == "2026-03"
    assert closed_month(SHANGHAI_5TH, datetime(2026, 4, 4, 23, 59, tzinfo=UTC)).label == "2026-02"
    assert closed_month(SHANGHAI_5TH, datetime(2026, 1, 2, tzinfo=UTC)).label == "2025-11"


def test_a_row_totals_charges_and_compares_quantities_with_last_month():
    row = ledger_row(
        AccountFigures(
            7,
            electricity_quantity=D("120.5"),
            electricity_amount=D("60.25"),
            water_quantity=D("3"),
            water_amount=D("9.00"),
            apportionment=D("4.10"),
            fees=D("88"),
            previous_electricity_quantity=D("100"),
            previous_water_quantity=D("0"),
        )
    )
    assert row.total == D("161.35")
    assert (row.electricity.difference, row.electricity.percent) == (D("20.500"), D("20.5"))
    assert row.water.difference == D("3.000") and row.water.percent is None
    assert ledger_row(AccountFigures(8)).water.percent == 0


def test_totals_add_every_figure():
    rows = [
        ledger_row(AccountFigures(1, electricity_quantity=D(10), electricity_amount=D(10), fees=D(5))),
        ledger_row(AccountFigures(2, electricity_quantity=D(30), previous_electricity_quantity=D(20))),
    ]
    totals = ledger_totals(rows)
    assert totals.count == 2
    assert totals.figures.electricity_quantity == D(40)
    assert totals.total == D(15)
    assert totals.electricity.percent == D("100.0")


def test_the_fingerprint_ignores_order_and_notation_but_sees_any_figure():
    a = AccountFigures(1, electricity_quantity=D("1.5"), fees=D("2"))
    b = AccountFigures(2, water_amount=D("3.10"))
    same = fingerprint([a, b]) == fingerprint(
        [
            AccountFigures(2, water_amount=D("3.1")),
            AccountFigures(1, electricity_quantity=D("1.500"), fees=D("2.00")),
        ]
    )
    assert same
    assert fingerprint([a, b]) != fingerprint([a, AccountFigures(2, water_amount=D("3.11"))])
    assert fingerprint([a]) != fingerprint([a, b])


def test_differences_name_each_moved_figure_and_accounts_added_or_gone():
    frozen = [AccountFigures(1, fees=D(5)), AccountFigures(2, water_amount=D(3))]
    current = [AccountFigures(1, fees=D(7)), AccountFigures(3, apportionment=D("1.25"))]
    changes = differences(frozen, current)
    assert [(c.kind, c.key, c.figure, c.frozen, c.current) for c in changes] == [
        (ChangeKind.CHANGED, 1, "fees", D("5.00"), D("7.00")),
        (ChangeKind.REMOVED, 2, "", D("3.00"), None),
        (ChangeKind.ADDED, 3, "", None, D("1.25")),
    ]
    assert differences(frozen, list(reversed(frozen))) == ()


money = st.decimals(min_value=-10_000, max_value=10_000, places=2, allow_nan=False, allow_infinity=False)
quantity = st.decimals(min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(quantity, money, quantity, money, money, money), min_size=0, max_size=20))
def test_totals_equal_the_sum_of_row_totals(values):
    rows = [ledger_row(AccountFigures(i, *v[:6])) for i, v in enumerate(values)]
    totals = ledger_totals(rows)
    assert totals.total == sum((row.total for row in rows), D(0))
    assert totals.total == sum(
        (
            totals.figures.electricity_amount,
            totals.figures.water_amount,
            totals.figures.apportionment,
            totals.figures.fees,
        ),
        D(0),
    )
    assert differences(rows, rows) == ()
