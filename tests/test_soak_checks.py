"""The soak run's end checks (scripts/soak_checks.py) find what they must, and pass what is right."""

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import soak_checks as checks

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_log_problems_finds_errors_and_tracebacks_only():
    lines = [
        "2026-12-02 01:00:00,001 123 INFO soak odoo.modules: loading",
        "2026-12-02 01:00:01,001 123 WARNING soak odoo.addons.partner_autocomplete: IAP",
        "2026-12-02 01:00:02,001 123 ERROR soak odoo.addons.prepaid_metering: poll of sim-tg-1 lost",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "2026-12-02 01:00:03,001 123 CRITICAL soak odoo.service.server: crashed",
        "a message that says ERROR in passing",
    ]
    problems = checks.log_problems(lines)
    assert len(problems) == 3
    assert "poll of sim-tg-1 lost" in problems[0]
    assert "traceback" in problems[1]
    assert "CRITICAL" in problems[2]
    assert checks.log_problems(lines[:2]) == []


def test_poll_problems_finds_a_lost_cycle_and_a_silent_end():
    interval = {"gw": MINUTE}
    every_minute = [T0 + k * MINUTE for k in range(31)]
    assert checks.poll_problems({"gw": every_minute}, T0, T0 + 30 * MINUTE, interval, MINUTE) == []
    lost = every_minute[:10] + every_minute[14:]
    problems = checks.poll_problems({"gw": lost}, T0, T0 + 30 * MINUTE, interval, MINUTE)
    assert len(problems) == 1 and "01:09:00 to 01:14:00" in problems[0]
    stopped = every_minute[:20]
    assert len(checks.poll_problems({"gw": stopped}, T0, T0 + 30 * MINUTE, interval, MINUTE)) == 1
    assert len(checks.poll_problems({"gw": []}, T0, T0 + 30 * MINUTE, interval, MINUTE)) == 1


def _command(state, outcome, kind="trip", keep_power=False):
    return {
        "name": "CMD/1",
        "kind": kind,
        "meter": "A101",
        "state": state,
        "outcome": outcome,
        "keep_power": keep_power,
        "refusal": "other",
    }


def test_command_problems_wants_an_end_and_a_reason():
    good = [
        _command("done", "confirmed"),
        _command("failed", "no_answer"),
        _command("cancelled", "superseded"),
        _command("failed", "refused", keep_power=True),
        _command("failed", "refused", kind="set_prices"),
    ]
    problems, outcomes = checks.command_problems(good)
    assert problems == []
    assert outcomes["confirmed"] == 1 and outcomes["refused"] == 2
    for bad in (
        _command("queued", None),
        _command("sent", None),
        _command("failed", None),
        _command("done", "no_answer"),
        _command("failed", "refused"),
        _command("failed", "refused", kind="close"),
    ):
        assert len(checks.command_problems([bad])[0]) == 1, bad


def _account(balance, level, alert_level, supply_cut, **kw):
    return {
        "name": "A101",
        "state": "open",
        "balance": Decimal(balance),
        "level": level,
        "alert_level": alert_level,
        "supply_cut": supply_cut,
        "keep_power": False,
        "supervised": True,
        "levels": [Decimal(50), Decimal(30), Decimal(10), Decimal(0), Decimal(0)],
        **kw,
    }


def test_level_problems_holds_accounts_to_the_engine_rule():
    assert checks.level_problems([_account("60", "normal", "normal", False)]) == []
    assert checks.level_problems([_account("25", "warning_2", "warning_2", False)]) == []
    assert checks.level_problems([_account("-1", "cutoff", "cutoff", True)]) == []
    assert checks.level_problems([_account("-1", "cutoff", "cutoff", False, keep_power=True)]) == []
    assert checks.level_problems([_account("0.004", "cutoff", "cutoff", True)]) == []  # half a cent rule
    assert "is at warning_2" in checks.level_problems([_account("25", "warning_1", "warning_1", False)])[0]
    assert "never alerted" in checks.level_problems([_account("25", "warning_2", "warning_1", False)])[0]
    assert "not cut" in checks.level_problems([_account("-1", "cutoff", "cutoff", False)])[0]
    assert "still held cut" in checks.level_problems([_account("60", "normal", "normal", True)])[0]
    assert checks.level_problems([_account("-1", "cutoff", "normal", False, state="closed")]) == []


def test_alert_problems_allows_one_alert_per_level_per_descent():
    descent = [("A", T0, "warning"), ("A", T0 + MINUTE, "warning"), ("A", T0 + 2 * MINUTE, "warning")]
    cut = [("A", T0 + 3 * MINUTE, "cutoff")]
    assert checks.alert_problems(descent + cut, []) == []
    twice = [*descent, *cut, ("A", T0 + 4 * MINUTE, "cutoff")]
    assert len(checks.alert_problems(twice, [])) == 1
    assert checks.alert_problems(twice, [("A", T0 + 3 * MINUTE + timedelta(seconds=30))]) == []
    assert len(checks.alert_problems([*descent, ("A", T0 + 5 * MINUTE, "warning")], [])) == 1
    assert checks.alert_problems([*descent, ("B", T0, "warning")], []) == []


def test_money_problems_ledger_balance_and_deposit():
    accounts = [
        {"name": "A101", "partner": 7, "balance": Decimal("12.50"), "ledger_sum": Decimal("12.50")},
        {"name": "S1", "partner": 7, "balance": Decimal("7.50"), "ledger_sum": Decimal("7.50")},
    ]
    assert checks.money_problems(accounts, {7: Decimal("25.00")}, {7: Decimal("-5.00")}) == []
    assert len(checks.money_problems(accounts, {7: Decimal("25.00")}, {})) == 1
    minted = [{**accounts[0], "balance": Decimal("5012.50")}, accounts[1]]
    problems = checks.money_problems(minted, {7: Decimal("25.00")}, {7: Decimal("-5.00")})
    assert any("ledger adds up to 12.50" in p for p in problems)
    assert any("partner 7" in p for p in problems)
    assert len(checks.money_problems(accounts, {7: Decimal("20"), 8: Decimal("3")}, {})) == 1


def test_supply_problems_compares_with_the_meter():
    meters = [
        {"name": "A101-E", "address": "1101", "supply": "on"},
        {"name": "A102-E", "address": "1102", "supply": "off"},
    ]
    assert checks.supply_problems(meters, {"1101": "on", "1102": "off"}) == []
    assert checks.supply_problems(meters, {"1101": "on", "1102": None}) == []
    assert len(checks.supply_problems(meters, {"1101": "off", "1102": "off"})) == 1
