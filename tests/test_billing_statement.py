"""Statement arithmetic: sections, consumption per utility, opening + lines = closing; month over month."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.billing.statement import (
    EntryKind,
    StatementEntry,
    compare,
    compare_statements,
    statement,
)
from prepaid_engine.errors import ConfigError
from prepaid_engine.rating import Bands
from prepaid_engine.types import Utility

D = Decimal

MONTH = (
    StatementEntry("topup", D("200.00"), key="TP/1"),
    StatementEntry(
        "consumption",
        D("-31.20"),
        utility="electricity",
        bands=Bands(D(0), D("20"), D("30"), D("10")),
        band_amounts=Bands(D(0), D("16.00"), D("12.00"), D("3.20")),
    ),
    StatementEntry("consumption", D("-12.60"), utility="water", quantity=D("3.5")),
    StatementEntry("consumption", D("-5.00"), utility="electricity", quantity=D("6.25")),
    StatementEntry("fee", D("-88.00"), description="Property fee 2026-11"),
    StatementEntry("apportionment", D("-7.43")),
    StatementEntry("reversal", D("5.00")),
    StatementEntry("adjustment", D("-0.01")),
    StatementEntry("refund", D("-20.00")),
)


def test_a_statement_totals_each_section_and_closes_at_opening_plus_lines():
    result = statement(D("50.00"), MONTH)
    assert result.opening == D("50.00")
    assert result.closing == D("90.76")
    assert (result.credits, result.debits) == (D("205.00"), D("-164.24"))
    assert result.movement == D("40.76")
    assert [(s.kind, s.count, s.total) for s in result.sections] == [
        (EntryKind.OPENING, 0, D("0.00")),
        (EntryKind.TOPUP, 1, D("200.00")),
        (EntryKind.CONSUMPTION, 3, D("-48.80")),
        (EntryKind.FEE, 1, D("-88.00")),
        (EntryKind.APPORTIONMENT, 1, D("-7.43")),
        (EntryKind.REFUND, 1, D("-20.00")),
        (EntryKind.REVERSAL, 1, D("5.00")),
        (EntryKind.ADJUSTMENT, 1, D("-0.01")),
    ]
    assert result.section("fee").total == D("-88.00")


def test_consumption_is_summed_per_utility_with_its_bands():
    result = statement(D("50.00"), MONTH)
    electricity = result.usage_of("electricity")
    assert electricity is not None
    assert (electricity.count, electricity.quantity, electricity.amount) == (2, D("66.25"), D("-36.20"))
    assert electricity.bands == Bands(D(0), D("20"), D("30"), D("10"))
    assert electricity.band_amounts == Bands(D(0), D("16.00"), D("12.00"), D("3.20"))
    water = result.usage_of(Utility.WATER)
    assert water is not None
    assert (water.quantity, water.amount) == (D("3.5"), D("-12.60"))
    assert [u.utility for u in result.usage] == [Utility.ELECTRICITY, Utility.WATER]
    assert statement(D(0), []).usage == ()


def test_a_stored_closing_balance_must_be_the_sum_of_the_ledger():
    assert statement(D("50.00"), MONTH, closing=D("90.76")).closing == D("90.76")
    with pytest.raises(ConfigError) as caught:
        statement(D("50.00"), MONTH, closing=D("90.75"))
    assert caught.value.kind == "statement.closing_mismatch"
    assert caught.value.params["computed"] == D("90.76")


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"kind": "gift", "amount": D(1)}, "statement.kind"),
        ({"kind": "consumption", "amount": D(-1)}, "statement.utility"),
        ({"kind": "fee", "amount": D(-1), "utility": "water"}, "statement.quantities_on_other_kind"),
        (
            {
                "kind": "consumption",
                "amount": D(-1),
                "utility": "water",
                "quantity": D(2),
                "bands": Bands(flat=D(1)),
            },
            "statement.bands_mismatch",
        ),
        (
            {"kind": "consumption", "amount": D(-1), "utility": "water", "band_amounts": Bands(flat=D(2))},
            "statement.band_amounts_mismatch",
        ),
        ({"kind": "topup", "amount": D("NaN")}, "number.not_finite"),
    ],
)
def test_unusable_ledger_lines_are_refused(kwargs, kind):
    with pytest.raises(ConfigError) as caught:
        StatementEntry(**kwargs)
    assert caught.value.kind == kind


def test_amounts_finer_than_the_currency_are_refused_not_rounded():
    with pytest.raises(ConfigError) as caught:
        statement(D("0.00"), [StatementEntry("topup", D("1.005"))])
    assert caught.value.kind == "money.finer_than_precision"


amount_st = st.integers(-(10**7), 10**7).map(lambda cents: D(cents).scaleb(-2))
entry_st = st.builds(
    lambda kind, amount: StatementEntry(kind, amount, utility="water" if kind == "consumption" else None),
    st.sampled_from(list(EntryKind)),
    amount_st,
)


@settings(max_examples=200, deadline=None)
@given(amount_st, st.lists(entry_st, max_size=40))
def test_opening_plus_lines_is_closing_and_sections_add_up_to_the_movement(opening, entries):
    result = statement(opening, entries)
    assert result.closing == opening + sum((e.amount for e in entries), D(0))
    assert sum(s.total for s in result.sections) == result.closing - result.opening
    assert result.credits + result.debits == result.movement
    assert result.credits >= 0 >= result.debits
    assert sum(s.count for s in result.sections) == len(entries)
    # a statement of two halves chains: the first's closing opens the second
    half = len(entries) // 2
    first = statement(opening, entries[:half])
    assert statement(first.closing, entries[half:]).closing == result.closing


# -- month over month ------------------------------------------------------------------------------------


def test_compare_gives_the_difference_and_the_percentage_of_last_month_rounded_to_one_decimal():
    change = compare(D("123.45"), D("100.00"))
    assert (change.difference, change.percent) == (D("23.45"), D("23.5"))  # 23.45 % half up
    assert compare(D("80"), D("120")).percent == D("-33.3")
    assert compare(D("2"), D("3")).percent == D("-33.3")
    assert compare(D("1"), D("8")).percent == D("-87.5")


def test_a_negative_last_month_divides_by_its_magnitude_so_the_sign_still_says_up_or_down():
    # deductions of -120 last month, -80 this month: 40 more in the balance, +33.3 %
    assert compare(D("-80"), D("-120")).percent == D("33.3")
    assert compare(D("-150"), D("-100")).percent == D("-50.0")


def test_a_zero_last_month_has_no_percentage_unless_this_month_is_zero_too():
    assert compare(D("12.5"), D("0")).percent is None
    assert compare(D("12.5"), D("0")).difference == D("12.5")
    assert compare(D(0), D(0)).percent == D("0.0")


def test_compare_statements_compares_sections_and_usage_with_absent_utilities_as_zero():
    this = statement(D("50.00"), MONTH)
    last = statement(
        D("10.00"),
        [
            StatementEntry("topup", D("100.00")),
            StatementEntry("consumption", D("-18.10"), utility="electricity", quantity=D("50")),
            StatementEntry("fee", D("-88.00")),
        ],
    )
    assert last.closing == D("3.90")
    result = compare_statements(this, last)
    assert result.closing.difference == D("86.86")
    sections = dict(result.sections)
    assert (sections[EntryKind.FEE].difference, sections[EntryKind.FEE].percent) == (D("0.00"), D("0.0"))
    assert sections[EntryKind.TOPUP].percent == D("100.0")
    assert sections[EntryKind.REFUND].percent is None  # none last month
    quantities = dict(result.quantities)
    assert quantities[Utility.ELECTRICITY].percent == D("32.5")  # 66.25 against 50
    assert quantities[Utility.WATER].previous == 0
    assert quantities[Utility.WATER].percent is None
    amounts = dict(result.amounts)
    assert amounts[Utility.ELECTRICITY].difference == D("-18.10")  # 18.10 more deducted
