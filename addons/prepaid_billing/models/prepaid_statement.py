"""Tenant statements: one per prepaid account and settlement cycle, computed from the ledger, never typed.

**What a statement covers.** The cycle is the account's building calendar (its first unit's building, else the
company's default calendar). A statement covers the account's ledger lines *dated* in its cycle, plus the
lines posted after the previous statement was settled that are dated before its end (a late line of a
settled cycle lands in the next statement: a settled statement never moves). Precisely, with the previous
statement ``P`` (settled at the ledger watermark ``P.last_ledger_id``) a line belongs to this statement when
``(id > P.last_ledger_id or date >= P.cycle_end) and date < cycle_end`` (and ``id <= last_ledger_id`` once
this one is settled); without a previous statement when ``cycle_start <= date < cycle_end``, the opening
balance then being the sum of the lines dated before the cycle (the ``balance_after`` of the last line before
it). With a previous statement the opening is its closing balance.

**Check.** The figures are the engine's (:func:`prepaid_engine.billing.statement.statement`): sections per
ledger kind, usage per utility, ``opening + lines = closing``, and the closing must equal the account's stored
balance less the lines dated after the cycle: the statement chain agrees with the balance cache, or the
statement is not written (logged as an error).

**States.** ``unsettled``: the cycle is running (figures so far, refreshed by the daily cron); ``settled``:
the cycle ended and the building's readings were settled up to its end
(``prepaid.property.settlement_closed_at`` reached the cycle end; at once for an account without a building),
figures frozen; ``dispatched``: mailed to
the tenant with the PDF and shown on the portal.
"""

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_internal
from odoo.addons.prepaid_base.tools.bulk_sql import id_array, insert_rows, update_rows
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from prepaid_engine.billing.statement import EntryKind, StatementEntry, statement
from prepaid_engine.calendar import cycle_bounds
from prepaid_engine.errors import ConfigError

from .prepaid_account import HOME_BUILDING_JOIN

_logger = logging.getLogger(__name__)

STATE_SELECTION = [("unsettled", "Unsettled"), ("settled", "Settled"), ("dispatched", "Dispatched")]
BAND_SELECTION = [
    ("sharp", "Sharp"),
    ("peak", "Peak"),
    ("flat", "Flat"),
    ("valley", "Valley"),
    ("free", "Free"),
]
BANDS = ("sharp", "peak", "flat", "valley")
BATCH = 2000  # accounts per cron call
# Total field of each ledger kind's section (consumption has its utilities' fields too).
SECTION_FIELDS = {
    EntryKind.OPENING: "opening_amount",
    EntryKind.TOPUP: "topup_amount",
    EntryKind.CONSUMPTION: "consumption_amount",
    EntryKind.FEE: "fee_amount",
    EntryKind.APPORTIONMENT: "apportionment_amount",
    EntryKind.REFUND: "refund_amount",
    EntryKind.REVERSAL: "reversal_amount",
    EntryKind.ADJUSTMENT: "adjustment_amount",
}
FIGURE_FIELDS = (
    *SECTION_FIELDS.values(),
    "opening_balance",
    "closing_balance",
    "credits",
    "debits",
    "electricity_quantity",
    "electricity_amount",
    "water_quantity",
    "water_amount",
    "ledger_count",
    "last_ledger_id",
    "next_from_id",
    "seen_ledger_id",
)
STATEMENT_MAIL_TEMPLATE = "prepaid_billing.mail_template_statement"
STATEMENT_REPORT = "prepaid_billing.action_report_prepaid_statement"


def _naive(value):
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _aware(value):
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class PrepaidStatement(models.Model):
    _name = "prepaid.statement"
    _description = "Prepaid Statement"
    _inherit = ["prepaid.guard.mixin", "mail.thread"]
    _prepaid_internal_create = True
    _order = "cycle_start desc, account_id"
    _check_company_auto = True

    name = fields.Char(string="Number", readonly=True, required=True)
    account_id = fields.Many2one(
        "prepaid.account", required=True, readonly=True, ondelete="cascade", index=True, check_company=True
    )
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    building_id = fields.Many2one("prepaid.property", readonly=True, index="btree_not_null")
    cycle_start = fields.Datetime(required=True, readonly=True, help="Start of the settlement cycle (UTC).")
    cycle_end = fields.Datetime(required=True, readonly=True, help="End of the cycle, excluded (UTC).")
    date_from = fields.Date(string="From", readonly=True, help="First local day of the cycle.")
    date_to = fields.Date(string="To", readonly=True, help="Last local day of the cycle.")
    state = fields.Selection(STATE_SELECTION, required=True, readonly=True, default="unsettled", index=True)
    opening_balance = fields.Monetary(readonly=True)
    opening_amount = fields.Monetary(string="Opening Balances Posted", readonly=True)
    topup_amount = fields.Monetary(string="Top-ups", readonly=True)
    consumption_amount = fields.Monetary(string="Consumption", readonly=True)
    electricity_quantity = fields.Float(digits=(16, 3), readonly=True, string="Electricity (kWh)")
    electricity_amount = fields.Monetary(string="Electricity", readonly=True)
    water_quantity = fields.Float(digits=(16, 3), readonly=True, string="Water (m³)")
    water_amount = fields.Monetary(string="Water", readonly=True)
    fee_amount = fields.Monetary(string="Fees", readonly=True)
    apportionment_amount = fields.Monetary(string="Apportioned Shares", readonly=True)
    refund_amount = fields.Monetary(string="Refunds", readonly=True)
    reversal_amount = fields.Monetary(string="Reversals", readonly=True)
    adjustment_amount = fields.Monetary(string="Adjustments", readonly=True)
    credits = fields.Monetary(readonly=True)
    debits = fields.Monetary(readonly=True)
    closing_balance = fields.Monetary(readonly=True)
    line_ids = fields.One2many("prepaid.statement.line", "statement_id", string="Lines", readonly=True)
    ledger_count = fields.Integer(string="Ledger Lines", readonly=True)
    # The membership of ledger lines (see the module): after the previous statement's watermark or dated from
    # after_date on; up to last_ledger_id once settled.
    after_ledger_id = fields.Integer(readonly=True, aggregator=None, copy=False)
    after_date = fields.Datetime(readonly=True, copy=False)
    last_ledger_id = fields.Integer(string="Ledger Watermark", readonly=True, aggregator=None, copy=False)
    next_from_id = fields.Integer(readonly=True, aggregator=None, copy=False)
    seen_ledger_id = fields.Integer(readonly=True, aggregator=None, copy=False)
    refreshed_at = fields.Datetime(readonly=True, copy=False)
    check_error = fields.Char(
        readonly=True,
        copy=False,
        help="Why the last refresh wrote nothing: the account's balance is not the sum of its ledger.",
    )
    settled_at = fields.Datetime(readonly=True, copy=False)
    dispatched_at = fields.Datetime(readonly=True, copy=False)

    _sql_constraints = [
        ("account_cycle_uniq", "UNIQUE(account_id, cycle_start)", "An account has one statement per cycle.")
    ]

    def init(self):
        res = super().init()
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS prepaid_statement_open_idx ON prepaid_statement (cycle_end) "
                "WHERE state = 'unsettled'"
            )
        )
        return res

    # ------------------------------------------------------------------ guarded

    def write(self, vals):
        """Statements are computed: everything but the chatter changes only through the suite's own code."""
        if not is_internal(self.env) and set(vals) - {"message_main_attachment_id"}:
            raise AccessError(self.env._("Statements are computed from the ledger, they cannot be edited."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_never_sent(self):
        if not is_internal(self.env) and not self.env.su:
            raise AccessError(self.env._("Statements cannot be deleted."))

    # ------------------------------------------------------------------ what a statement covers

    def _ledger_domain(self):
        """The domain of this statement's ledger lines (see the module docstring)."""
        self.ensure_one()
        domain = [("account_id", "=", self.account_id.id), ("date", "<", self.cycle_end)]
        if self.after_ledger_id:
            domain += ["|", ("id", ">", self.after_ledger_id), ("date", ">=", self.after_date)]
        else:
            domain += [("date", ">=", self.after_date or self.cycle_start)]
        if self.state != "unsettled":
            domain += [("id", "<=", self.last_ledger_id)]
        return domain

    def action_view_ledger(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_base.prepaid_ledger_action")
        action.update({"domain": self._ledger_domain(), "context": {"create": False}})
        return action

    # ------------------------------------------------------------------ generation

    @api.model
    def _cron_generate(self, batch=BATCH):
        """Daily: settle the statements whose cycle ended (once the building's cycle is closed), then create
        or refresh the current cycle's statements of the live accounts, one batch of accounts per call."""
        now = datetime.now(UTC)
        done, remaining = self.sudo()._generate(now=now, batch=batch)
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return done

    @api.model
    @api.private
    def _generate_all(self, now=None, batch=BATCH):
        """Generate until nothing is left (tests, shell, benchmark). Returns the accounts processed."""
        total = 0
        while True:
            done, _remaining = self._generate(now=now, batch=batch)
            total += done
            if not done:
                return total

    @api.model
    @api.private
    def _generate(self, now=None, batch=BATCH):
        """One batch: returns ``(accounts processed, accounts still to do)``. Runs as the superuser: the
        statements of every company are computed (the cron's work, not the caller's)."""
        self = self.sudo()
        now = _aware(now or datetime.now(UTC))
        self.env["prepaid.account"].flush_model()
        self.env["prepaid.property"].flush_model()
        self.flush_model()
        to_settle = self._due_for_settlement(now)
        if to_settle:
            todo = to_settle[:batch]
            self._refresh(todo, now, settle=True)
            return len(todo), len(to_settle) - len(todo)
        cycles = self._current_cycles(now)
        due = self._due_accounts(now, cycles)
        todo = due[:batch]
        if todo:
            self._create_or_refresh(todo, now, cycles)
        return len(todo), len(due) - len(todo)

    def _due_for_settlement(self, now):
        """Unsettled statements whose cycle ended and whose building's readings are settled to its end."""
        rows = self.env.execute_query(
            SQL(
                """SELECT s.id FROM prepaid_statement s
                   LEFT JOIN prepaid_property b ON b.id = s.building_id
                   WHERE s.state = 'unsettled' AND s.cycle_end <= %(now)s
                     AND (s.building_id IS NULL OR b.settlement_closed_at >= s.cycle_end)
                     AND (s.check_error IS NULL OR s.refreshed_at < %(today)s)
                   ORDER BY s.id""",
                now=_naive(now),
                today=_naive(now).replace(hour=0, minute=0, second=0, microsecond=0),
            )
        )
        return self.browse([row[0] for row in rows])

    def _current_cycles(self, now):
        """``{(building_id or 0, company_id): (start, end)}`` of the buildings and companies with accounts."""
        rows = self.env.execute_query(
            SQL(
                """SELECT DISTINCT COALESCE(u.building_id, 0), a.company_id
                   FROM prepaid_account a
                   %(home)s
                   WHERE a.state IN ('open', 'suspended')""",
                home=HOME_BUILDING_JOIN,
            )
        )
        Property = self.env["prepaid.property"].sudo()
        cycles = {}
        for building_id, company_id in rows:
            if building_id:
                calendar = Property.browse(building_id)._prepaid_settlement_calendar()
            else:
                calendar = Property._prepaid_default_calendar(self.env["res.company"].browse(company_id))
            cycles[building_id, company_id] = cycle_bounds(calendar, now)
        return cycles

    def _due_accounts(self, now, cycles):
        """``[(account_id, building_id, company_id, partner_id, number)]`` of live accounts whose current
        statement is missing or was not refreshed today (UTC), and whose previous statement, if any, is not
        waiting to be settled."""
        if not cycles:
            return []
        values = SQL(", ").join(
            SQL("(%s::int, %s::int, %s::timestamp, %s::timestamp)", b, c, _naive(s), _naive(e))
            for (b, c), (s, e) in cycles.items()
        )
        today = _naive(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return self.env.execute_query(
            SQL(
                """WITH cyc(building_id, company_id, cycle_start, cycle_end) AS (VALUES %(values)s)
                   SELECT a.id, NULLIF(COALESCE(u.building_id, 0), 0), a.company_id, a.partner_id, a.name
                   FROM prepaid_account a
                   %(home)s
                   JOIN cyc ON cyc.building_id = COALESCE(u.building_id, 0) AND cyc.company_id = a.company_id
                   WHERE a.state IN ('open', 'suspended')
                     AND NOT EXISTS (
                         SELECT 1 FROM prepaid_statement s
                         WHERE s.account_id = a.id AND s.cycle_start = cyc.cycle_start
                           AND (s.state <> 'unsettled' OR s.refreshed_at >= %(today)s))
                     AND NOT EXISTS (
                         SELECT 1 FROM prepaid_statement s
                         WHERE s.account_id = a.id AND s.state = 'unsettled'
                           AND s.cycle_start < cyc.cycle_start)
                   ORDER BY a.id""",
                values=values,
                today=today,
                home=HOME_BUILDING_JOIN,
            )
        )

    def _create_or_refresh(self, rows, now, cycles):
        """Create the missing current statements of ``rows`` (see :meth:`_due_accounts`), then refresh them
        with the statements that exist already."""
        account_ids = [row[0] for row in rows]
        existing = {
            (s.account_id.id, s.cycle_start): s
            for s in self.search([("account_id", "in", account_ids), ("state", "=", "unsettled")])
        }
        previous = self._previous_statements(account_ids)
        vals_list = []
        for account_id, building_id, company_id, partner_id, name in rows:
            start, end = cycles[building_id or 0, company_id]
            if (account_id, _naive(start)) in existing:
                continue
            vals_list.append(
                self._prepare_statement_vals(
                    (account_id, building_id, company_id, partner_id, name),
                    start,
                    end,
                    previous.get(account_id),
                )
            )
        created = self._insert_statements(vals_list)
        statements = created | self.union(*existing.values())
        self._refresh(statements, now, settle=False)
        return statements

    def _insert_statements(self, vals_list):
        """Insert new statements in one statement (no chatter: nothing happened to them yet); a statement of
        the same account and cycle made meanwhile by another run is kept (``ON CONFLICT DO NOTHING``)."""
        if not vals_list:
            return self.browse()
        now = fields.Datetime.now()
        fnames = [*vals_list[0], "create_uid", "create_date", "write_uid", "write_date", "state"]
        rows = [
            (*(vals[fname] for fname in vals_list[0]), self.env.uid, now, self.env.uid, now, "unsettled")
            for vals in vals_list
        ]
        ids = insert_rows(
            self, fnames, rows, on_conflict=SQL("ON CONFLICT (account_id, cycle_start) DO NOTHING")
        )
        return self.browse(sorted(row[0] for row in ids))

    def _previous_statements(self, account_ids):
        """``{account_id: (last_ledger_id, next_from_id, cycle_end, closing_balance)}`` of each account's
        latest settled (or dispatched) statement."""
        rows = self.env.execute_query(
            SQL(
                """SELECT DISTINCT ON (account_id) account_id, COALESCE(last_ledger_id, 0),
                          COALESCE(next_from_id, 0), cycle_end, COALESCE(closing_balance, 0)::text
                   FROM prepaid_statement
                   WHERE account_id = ANY(%s::int[]) AND state <> 'unsettled'
                   ORDER BY account_id, cycle_start DESC""",
                id_array(account_ids),
            )
        )
        return {row[0]: row[1:] for row in rows}

    def _prepare_statement_vals(self, account_row, start, end, previous):
        """The values of a new statement of ``account_row`` (id, building, company, tenant, number) for the
        cycle ``start`` - ``end`` after the ``previous`` settled statement (see _previous_statements)."""
        account_id, building_id, company_id, partner_id, account_name = account_row
        calendar_tz = (
            self.env["prepaid.property"].browse(building_id).effective_tz
            if building_id
            else self.env["res.company"].browse(company_id).partner_id.tz
        ) or "UTC"
        zone = ZoneInfo(calendar_tz)
        local_from = _aware(start).astimezone(zone).date()
        local_to = (_aware(end).astimezone(zone) - timedelta(microseconds=1)).date()
        vals = {
            "name": f"{account_name}/{local_from:%Y-%m}",
            "account_id": account_id,
            "building_id": building_id,
            "company_id": company_id,
            "partner_id": partner_id,
            "cycle_start": _naive(start),
            "cycle_end": _naive(end),
            "date_from": local_from,
            "date_to": local_to,
            "after_date": _naive(start),
            "after_ledger_id": 0,
            # Stored as zeros, not NULLs: a later write of a zero would not reach the database (the cache
            # already says zero) and the grouped queries read the columns.
            **dict.fromkeys(FIGURE_FIELDS, 0),
        }
        if previous:
            last_id, _next_from, prev_end, _closing = previous
            vals.update({"after_ledger_id": last_id or 0, "after_date": prev_end})
        return vals

    # ------------------------------------------------------------------ refresh (one grouped query per batch)

    def _refresh(self, statements, now, settle=False):
        """Recompute ``statements`` from the ledger (one grouped query for all of them) and, with ``settle``,
        freeze them at the ledger watermark. Statements whose ledger did not move are left alone."""
        if not statements:
            return
        self.env["prepaid.ledger"].flush_model()
        self.env["prepaid.consumption"].flush_model()
        statements = statements.sudo()
        previous = self._previous_statements(statements.account_id.ids)
        params = []
        for st in statements:
            prev = previous.get(st.account_id.id)
            lower = 0
            if prev and prev[0]:
                lower = min(prev[1] or prev[0] + 1, prev[0] + 1)
            params.append(
                SQL(
                    "(%s::int, %s::int, %s::int, %s::timestamp, %s::timestamp)",
                    st.id,
                    lower,
                    st.after_ledger_id or None,
                    st.after_date or st.cycle_start,
                    st.cycle_end,
                )
            )
        groups = self._ledger_groups(params)
        facts = self._fact_groups(statements)
        balances = dict(
            self.env.execute_query(
                SQL(
                    "SELECT id, balance FROM prepaid_account WHERE id = ANY(%s::int[])",
                    id_array(statements.account_id.ids),
                )
            )
        )
        line_vals, stale, unchanged, failed = [], self.browse(), self.browse(), {}
        writes = defaultdict(list)  # the fields written -> [(statement id, *values)]
        now_naive = _naive(now)
        for st in statements:
            found = groups.get(st.id, {})
            seen = found.get("max_id") or 0
            if not settle and st.refreshed_at and seen == st.seen_ledger_id:
                unchanged |= st
                continue
            prev = previous.get(st.account_id.id)
            try:
                vals, lines = st._compute_figures(
                    found, facts.get(st.id, {}), prev, balances[st.account_id.id]
                )
            except ConfigError as error:
                # The balance cache and the ledger disagree: nothing is written, staff see why, the next
                # day's run tries again.
                _logger.error("statement %s not written: %s", st.name, error)
                failed[st] = str(error)
                continue
            vals.update({"seen_ledger_id": seen, "refreshed_at": now_naive, "check_error": False})
            if settle:
                vals.update(
                    {
                        "state": "settled",
                        "settled_at": now_naive,
                        "last_ledger_id": max(seen, st.after_ledger_id or 0),
                        "next_from_id": found.get("next_from_id") or 0,
                    }
                )
            fnames = tuple(sorted(vals))
            writes[fnames].append((st.id, *(vals[fname] for fname in fnames)))
            stale |= st
            line_vals += [dict(line, statement_id=st.id) for line in lines]
        writes[("refreshed_at",)] += [(st.id, now_naive) for st in unchanged]
        writes[("check_error", "refreshed_at")] += [(st.id, error, now_naive) for st, error in failed.items()]
        # One UPDATE per set of fields written and one INSERT of the lines, whatever the batch's size.
        for fnames, rows in writes.items():
            update_rows(self, fnames, rows)
        self.invalidate_model([fname for fnames in writes for fname in fnames])
        Line = self.env["prepaid.statement.line"]
        if stale:
            self.env.execute_query(
                SQL(
                    "DELETE FROM prepaid_statement_line WHERE statement_id = ANY(%s::int[])",
                    id_array(stale.ids),
                )
            )
            stale.invalidate_recordset(["line_ids"])
        Line._insert_lines(line_vals)
        Line.invalidate_model()

    def _ledger_groups(self, params):
        """Per statement: the lines in it (consumption summed per utility, the other kinds one per line),
        the sum of the lines before it (opening without a previous statement), after it (dated after the
        cycle), the highest ledger id seen and the lowest id dated after the cycle."""
        rows = self.env.execute_query(
            SQL(
                """WITH p(statement_id, lower_id, after_id, after_date, cycle_end) AS (VALUES %(params)s),
                   l AS (
                        SELECT p.statement_id, l.id, l.kind, l.utility, l.amount, l.quantity, l.date,
                               CASE WHEN l.date >= p.cycle_end THEN 'after'
                                    WHEN (p.after_id IS NOT NULL AND l.id > p.after_id)
                                         OR l.date >= p.after_date THEN 'in'
                                    ELSE 'before' END AS part
                          FROM p
                          JOIN prepaid_statement s ON s.id = p.statement_id
                          JOIN prepaid_ledger l ON l.account_id = s.account_id AND l.id >= p.lower_id)
                   SELECT statement_id, part, kind, utility,
                          CASE WHEN part = 'in' AND kind <> 'consumption' THEN id END AS line_id,
                          SUM(amount), SUM(quantity), COUNT(*), MAX(id), MIN(id), MIN(date)
                     FROM l
                 GROUP BY 1, 2, 3, 4, 5""",
                params=SQL(", ").join(params),
            )
        )
        groups = defaultdict(lambda: {"in": [], "before": Decimal(0), "after": Decimal(0)})
        for statement_id, part, kind, utility, line_id, amount, quantity, count, max_id, min_id, date in rows:
            found = groups[statement_id]
            found["max_id"] = max(found.get("max_id") or 0, max_id)
            if part == "in":
                found["in"].append(
                    (kind, utility, line_id, Decimal(str(amount)), quantity or 0.0, count, date)
                )
            else:
                found[part] += Decimal(str(amount))
                if part == "after":
                    found["next_from_id"] = min(found.get("next_from_id") or min_id, min_id)
        return groups

    def _fact_groups(self, statements):
        """Per statement and utility: the quantity per band and the free allowance of its local days."""
        params = SQL(", ").join(
            SQL("(%s, %s, %s::date, %s::date)", st.id, st.account_id.id, st.date_from, st.date_to)
            for st in statements
        )
        rows = self.env.execute_query(
            SQL(
                """WITH p(statement_id, account_id, date_from, date_to) AS (VALUES %s)
                   SELECT p.statement_id, c.utility, SUM(c.sharp), SUM(c.peak), SUM(c.flat), SUM(c.valley),
                          SUM(c.free_quantity)
                     FROM p JOIN prepaid_consumption c
                       ON c.account_id = p.account_id AND c.day BETWEEN p.date_from AND p.date_to
                 GROUP BY 1, 2""",
                params,
            )
        )
        facts = defaultdict(dict)
        for statement_id, utility, *bands in rows:
            facts[statement_id][utility] = dict(zip((*BANDS, "free"), bands, strict=True))
        return facts

    def _compute_figures(self, found, facts, previous, balance):
        """The statement's values and lines from its grouped ledger rows, through the engine."""
        self.ensure_one()
        precision = Decimal(str(self.currency_id.rounding))
        opening = Decimal(str(previous[3])) if previous else found.get("before", Decimal(0))
        entries, lines = [], []
        for kind, utility, line_id, amount, quantity, count, date in sorted(
            found.get("in", []), key=lambda r: (r[6], r[2] or 0)
        ):
            if kind == "consumption":
                qty = Decimal(str(round(quantity, 3)))
                entries.append(StatementEntry(kind=kind, amount=amount, utility=utility, quantity=qty))
                lines.append(
                    {
                        "kind": kind,
                        "utility": utility,
                        "quantity": quantity,
                        "amount": float(amount),
                        "ledger_count": count,
                        "date": date,
                    }
                )
                for band, band_qty in (facts.get(utility) or {}).items():
                    if band_qty:
                        lines.append(
                            {
                                "kind": kind,
                                "utility": utility,
                                "band": band,
                                "quantity": band_qty,
                                "date": date,
                            }
                        )
            else:
                entries.append(StatementEntry(kind=kind, amount=amount, key=str(line_id)))
                lines.append(
                    {
                        "kind": kind,
                        "ledger_id": line_id,
                        "amount": float(amount),
                        "ledger_count": 1,
                        "date": date,
                    }
                )
        result = statement(
            opening,
            entries,
            closing=Decimal(str(balance)) - found.get("after", Decimal(0)),
            precision=precision,
        )
        vals = {
            "opening_balance": float(result.opening),
            "closing_balance": float(result.closing),
            "credits": float(result.credits),
            "debits": float(result.debits),
            "ledger_count": sum(line.get("ledger_count") or 0 for line in lines if not line.get("band")),
        }
        for section in result.sections:
            vals[SECTION_FIELDS[section.kind]] = float(section.total)
        for utility in ("electricity", "water"):
            usage = result.usage_of(utility)
            vals[f"{utility}_quantity"] = float(usage.quantity) if usage else 0.0
            vals[f"{utility}_amount"] = float(usage.amount) if usage else 0.0
        return vals, lines

    # ------------------------------------------------------------------ buttons

    def action_refresh(self):
        """Recompute unsettled statements now (the cron does it daily)."""
        self.check_access("read")
        if not self.env.user.has_group("prepaid_base.group_prepaid_user"):
            raise AccessError(self.env._("Only prepaid staff can refresh statements."))
        todo = self.filtered(lambda s: s.state == "unsettled")
        self.sudo()._refresh(todo.sudo(), datetime.now(UTC))
        return True

    def action_dispatch(self):
        """Managers: e-mail settled statements to their tenants with the PDF, and show them on the portal.
        Dispatching a statement twice sends it once."""
        self.env["prepaid.account"]._prepaid_check_manager()
        self.check_access("read")
        unsettled = self.filtered(lambda s: s.state == "unsettled")
        if unsettled:
            raise UserError(
                self.env._(
                    "Only settled statements can be dispatched: %(names)s is still open.",
                    names=", ".join(unsettled.mapped("name")),
                )
            )
        return self.sudo()._dispatch()

    @api.private
    def _dispatch(self):
        """Mark the settled statements dispatched (one UPDATE: only the rows it moved are mailed) and send
        each its mail with the PDF."""
        if not self:
            return 0
        self.flush_recordset()
        rows = self.env.execute_query(
            SQL(
                """UPDATE prepaid_statement SET state = 'dispatched', dispatched_at = %s
                   WHERE id = ANY(%s::int[]) AND state = 'settled' RETURNING id""",
                fields.Datetime.now(),
                id_array(self.ids),
            )
        )
        moved = self.browse(sorted(row[0] for row in rows))
        self.invalidate_recordset(["state", "dispatched_at"])
        template = self.env.ref(STATEMENT_MAIL_TEMPLATE)
        for st in moved:
            template.send_mail(st.id, email_layout_xmlid="mail.mail_notification_light")
        return len(moved)

    def action_print(self):
        self.check_access("read")
        return self.env.ref(STATEMENT_REPORT).report_action(self)

    def _get_report_base_filename(self):
        self.ensure_one()
        return self.env._("Statement %(name)s", name=self.name)
