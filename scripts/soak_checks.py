"""What the soak run (scripts/soak.py) checks at its end, as pure functions over what it collected.

Each check returns a list of problems (strings a developer reads); an empty list is a pass. They take plain
data (dicts, lists, datetimes, Decimals) so that tests/test_soak_checks.py proves each one finds what it
must without a running product. The level rule is the engine's (prepaid_engine.levels), as in the addons.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from prepaid_engine.levels import Levels, level_of, supervise

OPEN_COMMAND_STATES = ("queued", "sent")
TERMINAL_COMMAND_STATES = ("done", "failed", "expired", "cancelled")
DONE_OUTCOMES = ("confirmed", "done_unconfirmed", "duplicate")
# Odoo's log line: "2026-12-02 01:02:03,456 1234 ERROR db logger: message"
LOG_LEVEL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) ")
CENTS = Decimal("0.01")


def log_problems(lines: Iterable[str]) -> list[str]:
    """Every ERROR or CRITICAL entry and every traceback of an Odoo log (its first line)."""
    problems = []
    for number, line in enumerate(lines, 1):
        match = LOG_LEVEL.match(line)
        if match and match["level"] in ("ERROR", "CRITICAL"):
            problems.append(f"log line {number}: {line.strip()[:300]}")
        elif "Traceback (most recent call last)" in line:
            problems.append(f"log line {number}: traceback")
    return problems


def poll_problems(
    polls: Mapping[str, Iterable[datetime]],
    start: datetime,
    end: datetime,
    interval: Mapping[str, timedelta],
    slack: timedelta,
) -> list[str]:
    """Lost poll cycles: for each gateway, the poll times seen between ``start`` and ``end`` must follow each
    other (and the two ends) within its interval plus ``slack``."""
    problems = []
    for gateway, times in sorted(polls.items()):
        limit = interval[gateway] + slack
        seen = sorted(t for t in set(times) if start <= t <= end)
        marks = [start, *seen, end]
        for before, after in itertools.pairwise(marks):
            if after - before > limit:
                problems.append(
                    f"gateway {gateway}: no poll from {before:%H:%M:%S} to {after:%H:%M:%S} UTC "
                    f"({(after - before).total_seconds() / 60:.1f} min, interval {interval[gateway]})"
                )
    return problems


def command_problems(commands: Iterable[Mapping]) -> tuple[list[str], Counter]:
    """Every command must end confirmed (or acknowledged by a model that cannot confirm), or failed, expired
    or cancelled with a reason (its outcome). A relay command refused by a meter that does not keep power is
    a defect of the platform (a stale validity time, a wrong password), not a reason. Returns the problems
    and the count of commands per outcome."""
    problems, outcomes = [], Counter()
    for command in commands:
        state, outcome = command["state"], command.get("outcome") or ""
        outcomes[outcome or state] += 1
        label = f"command {command['name']} ({command['kind']} on {command['meter']})"
        if state in OPEN_COMMAND_STATES:
            problems.append(f"{label}: still {state}")
        elif state == "done" and outcome not in DONE_OUTCOMES:
            problems.append(f"{label}: done with outcome {outcome or 'none'}")
        elif state in ("failed", "expired", "cancelled") and not outcome:
            problems.append(f"{label}: {state} without a reason")
        if outcome == "refused" and command["kind"] in ("trip", "close") and not command.get("keep_power"):
            problems.append(f"{label}: refused by the meter ({command.get('refusal') or '?'})")
    return problems, outcomes


def level_problems(accounts: Iterable[Mapping]) -> list[str]:
    """Every live account is at the level its balance says (the engine's rule), and its alerts and supply
    are where that level puts them: supervising it again would notify nothing and cut or restore nothing."""
    problems = []
    for account in accounts:
        if account["state"] not in ("open", "suspended"):
            continue
        levels = Levels.of(*account["levels"])
        expected = str(level_of(Decimal(str(account["balance"])), levels))
        if account["level"] != expected:
            problems.append(
                f"account {account['name']}: level {account['level']} but its balance "
                f"{account['balance']} is at {expected}"
            )
            continue
        action = supervise(
            expected,
            account["alert_level"],
            account["supply_cut"],
            keep_power=account["keep_power"],
            supervised=account["supervised"],
        )
        if action.notify:
            problems.append(f"account {account['name']}: at {expected}, never alerted of it")
        if action.cut is True:
            problems.append(f"account {account['name']}: at {expected}, supply not cut")
        elif action.cut is False:
            problems.append(f"account {account['name']}: at {expected}, supply still held cut")
    return problems


def alert_problems(alerts: Iterable[tuple], rises: Iterable[tuple], warning_levels: int = 3) -> list[str]:
    """Alerts sent once: between two rises of an account's balance (credits: top-ups, restored levels) it gets
    at most one alert per warning level and one cut-off alert. ``alerts``: (account, time, kind) with kind
    ``warning`` or ``cutoff``; ``rises``: (account, time)."""
    rises_of = defaultdict(list)
    for account, at in rises:
        rises_of[account].append(at)
    segments = defaultdict(Counter)
    for account, at, kind in sorted(alerts, key=lambda a: (a[0], a[1])):
        segment = sum(1 for rise in rises_of[account] if rise <= at)
        segments[(account, segment)][kind] += 1
    problems = []
    for (account, _segment), kinds in sorted(segments.items()):
        if kinds["warning"] > warning_levels or kinds["cutoff"] > 1:
            problems.append(
                f"account {account}: {kinds['warning']} low-balance and {kinds['cutoff']} cut-off alerts "
                "without the balance rising in between"
            )
    return problems


def money_problems(
    accounts: Iterable[Mapping],
    deposit_by_partner: Mapping[int, Decimal],
    unbooked_by_partner: Mapping[int, Decimal],
) -> list[str]:
    """ledger == balance == deposit account: each account's balance is the sum of its ledger lines; each
    tenant's balances add up to the tenant's credit on the deposit account plus the ledger lines the daily
    summary entry has not booked yet (accounts: name, partner, balance, ledger_sum as Decimals)."""
    problems = []
    by_partner = defaultdict(Decimal)
    for account in accounts:
        if account["balance"] != account["ledger_sum"]:
            problems.append(
                f"account {account['name']}: balance {account['balance']} but its ledger adds up to "
                f"{account['ledger_sum']}"
            )
        by_partner[account["partner"]] += account["balance"]
    for partner in sorted(set(by_partner) | set(deposit_by_partner)):
        booked = deposit_by_partner.get(partner, Decimal(0)) + unbooked_by_partner.get(partner, Decimal(0))
        if by_partner.get(partner, Decimal(0)).quantize(CENTS) != booked.quantize(CENTS):
            problems.append(
                f"partner {partner}: balances {by_partner.get(partner, Decimal(0))} but deposit account "
                f"{deposit_by_partner.get(partner, Decimal(0))} + not yet booked "
                f"{unbooked_by_partner.get(partner, Decimal(0))}"
            )
    return problems


def supply_problems(meters: Iterable[Mapping], truth: Mapping[str, str | None]) -> list[str]:
    """The platform and the meters agree: each meter's supply as Odoo shows it is the simulated meter's
    relay or valve (``truth``: address -> 'on' / 'off', None for a meter the simulator could not say)."""
    problems = []
    for meter in meters:
        actual = truth.get(meter["address"])
        if actual is not None and meter["supply"] != actual:
            problems.append(
                f"meter {meter['name']}: Odoo shows supply {meter['supply']}, the meter is {actual}"
            )
    return problems
