import logging
import threading
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from odoo import Command, api, fields, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# Ledger kinds the summary entries book, and the company field of the account they are booked against (None:
# revenue of the line's utility). Top-ups, reversals and refunds are booked by their invoices, credit notes
# and payments, not here.
LOCK_TIMEOUT = "120s"  # how long a summary run waits for the transactions still writing ledger lines
SUMMARY_KINDS = {
    "consumption": None,
    "apportionment": None,
    "fee": "prepaid_fee_revenue_account_id",
    "adjustment": "prepaid_adjustment_account_id",
    "opening": "prepaid_adjustment_account_id",
}


class PrepaidSummary(models.Model):
    """One daily summary entry: the consumption, fees and adjustments of a company's prepaid ledger for one
    day, recognised in one journal entry (deposit liability per tenant against revenue per utility)."""

    _name = "prepaid.summary"
    _description = "Prepaid Daily Summary Entry"
    _order = "date desc, id desc"
    _check_company_auto = True

    name = fields.Char(related="move_id.name", string="Entry")
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    day = fields.Date(required=True, readonly=True, help="The day whose ledger lines the entry books.")
    date = fields.Date(
        string="Accounting Date",
        required=True,
        readonly=True,
        help="The day, or the day after the lock date.",
    )
    move_id = fields.Many2one("account.move", string="Journal Entry", required=True, readonly=True)
    first_ledger_id = fields.Integer(string="From Ledger Line", readonly=True, aggregator=None)
    last_ledger_id = fields.Integer(string="To Ledger Line", readonly=True, aggregator=None)
    line_count = fields.Integer(string="Ledger Lines", readonly=True)
    amount = fields.Monetary(
        string="Recognised", readonly=True, help="Net debit of the deposit account (consumption and fees)."
    )

    # ------------------------------------------------------------------ cron

    @api.model
    def _cron_post_summaries(self):
        """Book the ledger lines of past days of every company that turned prepaid on and has a chart of
        accounts (one entry per company and day)."""
        companies = (
            self.env["res.company"]
            .sudo()
            .search([("prepaid_enabled", "=", True), ("chart_template", "!=", False)])
        )
        for company in companies:
            self._post_summaries_isolated(company)
        self.env["ir.cron"]._notify_progress(done=len(companies), remaining=0)

    @api.model
    def _post_summaries_isolated(self, company, until=None):
        """Run :meth:`_post_company_summaries` in a transaction of its own that first takes a SHARE lock on
        the ledger table: it waits for every transaction still writing ledger lines and keeps new ones out
        until it commits, so every line up to the watermark it sets is committed and seen (a line id handed
        out to a transaction still running is never skipped). Tests run it in their own transaction."""
        if self.env.registry.in_test_mode() or getattr(threading.current_thread(), "testing", False):
            self.env.cr.execute(SQL("LOCK TABLE prepaid_ledger IN SHARE MODE"))
            return self._post_company_summaries(company, until)
        with self.env.registry.cursor() as cr:
            # Before any snapshot is taken; give up (and retry at the next run) rather than wait forever.
            cr.execute(SQL("SET LOCAL lock_timeout = %s", LOCK_TIMEOUT))
            cr.execute(SQL("LOCK TABLE prepaid_ledger IN SHARE MODE"))
            env = self.env(cr=cr)
            return (
                env["prepaid.summary"]
                ._post_company_summaries(env["res.company"].browse(company.id), until)
                .ids
            )

    @api.model
    def _day_start(self, company, day=None):
        """Midnight starting ``day`` (today by default) in the company's time zone, as naive UTC."""
        zone = ZoneInfo(company.partner_id.tz or "UTC")
        day = day or datetime.now(zone).date()
        return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)

    @api.model
    @api.private
    def _post_company_summaries(self, company, until=None):
        """Book, for ``company``, the ledger lines after the watermark dated before ``until`` (default:
        today's midnight in the company's zone): one posted entry per day, the watermark moved in the same
        transaction.

        Lines of a day already booked that arrive late make a second entry for that day; an entry whose day
        is locked is dated the day after the lock date. Idempotent: a second run finds nothing after the
        watermark.
        """
        self = self.sudo()
        company = company.sudo()
        company._prepaid_ensure_setup()
        until = until or self._day_start(company)
        watermark = company.prepaid_summary_ledger_id
        Ledger = self.env["prepaid.ledger"]
        Ledger.flush_model()
        # Every line up to the last one of a past day: today's lines wait for tomorrow, except the rare ones
        # whose id is lower (a transaction that straddled midnight), which go in with their own day.
        upto = self.env.execute_query(
            SQL(
                "SELECT MAX(id) FROM prepaid_ledger WHERE company_id = %s AND id > %s AND date < %s",
                company.id,
                watermark,
                until,
            )
        )[0][0]
        if not upto:
            return self.browse()
        tz = company.partner_id.tz or "UTC"
        rows = self.env.execute_query(
            SQL(
                """SELECT (l.date AT TIME ZONE 'UTC' AT TIME ZONE %s)::date AS day,
                          COALESCE(p.commercial_partner_id, p.id), l.kind, l.utility, c.income_account_id,
                          SUM(l.amount)::text, COUNT(*), MIN(l.id), MAX(l.id)
                     FROM prepaid_ledger l
                     JOIN res_partner p ON p.id = l.partner_id
                LEFT JOIN prepaid_fee_charge c
                       ON l.kind = 'fee' AND l.res_model = 'prepaid.fee.charge' AND c.id = l.res_id
                    WHERE l.company_id = %s AND l.id > %s AND l.id <= %s AND l.kind IN %s
                 GROUP BY 1, 2, 3, 4, 5
                 ORDER BY 1, 2, 3, 4, 5""",
                tz,
                company.id,
                watermark,
                upto,
                tuple(SUMMARY_KINDS),
            )
        )
        by_day = defaultdict(list)
        for row in rows:
            by_day[row[0]].append(row[1:])
        summaries = self.browse()
        for day, day_rows in sorted(by_day.items()):
            summaries |= self._post_day(company, day, day_rows)
        company.prepaid_summary_ledger_id = upto
        return summaries

    def _target_account(self, company, kind, utility, income_account_id=None):
        """The account a group of ledger lines is booked against: a fee charge's own income account (its
        fee item's product), else the kind's company account, else the utility's revenue."""
        if income_account_id:
            return self.env["account.account"].browse(income_account_id)
        fname = SUMMARY_KINDS[kind]
        if fname is None:
            fname = (
                company._prepaid_revenue_account_field(utility)
                if utility
                else "prepaid_fee_revenue_account_id"
            )
        return company[fname]

    def _post_day(self, company, day, rows):
        deposit = company.prepaid_deposit_account_id
        # Exact sums (the numeric column read as text): both sides of the entry add up to the cent.
        per_partner = defaultdict(Decimal)
        per_account = defaultdict(Decimal)
        count, first, last = 0, None, None
        for partner_id, kind, utility, income_account_id, amount, lines, min_id, max_id in rows:
            per_partner[partner_id] += Decimal(amount)
            per_account[self._target_account(company, kind, utility, income_account_id)] += Decimal(amount)
            count += lines
            first = min_id if first is None else min(first, min_id)
            last = max_id if last is None else max(last, max_id)
        label = self.env._("Prepaid consumption of %(day)s", day=day)
        line_vals = [
            # A deduction (negative ledger amount) debits the tenant's deposit; a credit credits it.
            Command.create(
                {"account_id": deposit.id, "partner_id": partner_id, "name": label, "balance": float(-amount)}
            )
            for partner_id, amount in sorted(per_partner.items())
            if amount
        ] + [
            Command.create(
                {"account_id": account.id, "name": f"{label}: {account.name}", "balance": float(amount)}
            )
            for account, amount in sorted(per_account.items(), key=lambda item: item[0].id)
            if amount
        ]
        if not line_vals:
            return self.browse()
        journal = company.prepaid_journal_id
        date = day
        lock_dates = company._get_violated_lock_dates(day, False, journal)
        if lock_dates:
            date = lock_dates[-1][0] + timedelta(days=1)
        move = (
            self.env["account.move"]
            .with_company(company)
            .create(
                [
                    {
                        "move_type": "entry",
                        "journal_id": journal.id,
                        "company_id": company.id,
                        "date": date,
                        "ref": label,
                        "line_ids": line_vals,
                    }
                ]
            )
        )
        move.action_post()
        return self.create(
            [
                {
                    "company_id": company.id,
                    "day": day,
                    "date": date,
                    "move_id": move.id,
                    "first_ledger_id": first,
                    "last_ledger_id": last,
                    "line_count": count,
                    "amount": float(-sum(per_partner.values())),
                }
            ]
        )

    def action_view_move(self):
        self.ensure_one()
        self.check_access("read")
        return self.move_id._get_records_action()

    @api.model
    def action_post_now(self):
        """Managers: book everything up to now for the current company (today's lines included)."""
        company = self.env.company
        self.env["prepaid.account"]._prepaid_check_manager()
        summaries = self._post_summaries_isolated(company, until=fields.Datetime.now() + timedelta(seconds=1))
        return self.env["prepaid.gateway"]._notify(
            self.env._("Summary entries"),
            self.env._("%(count)s summary entries posted.", count=len(summaries)),
        )
