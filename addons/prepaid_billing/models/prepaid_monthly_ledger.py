import logging
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_manager
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from prepaid_engine.billing.monthly import (
    AccountFigures,
    ChangeKind,
    MonthPeriod,
    closed_month,
    differences,
    fingerprint,
    ledger_row,
    ledger_totals,
    month_period,
)

from ..report.monthly_ledger_xlsx import ledger_workbook
from .prepaid_monthly_ledger_line import LINE_FIGURES, percent_label

_logger = logging.getLogger(__name__)

BUILDING_BATCH = 50  # buildings read per grouped query
STALE_HORIZON_DAYS = 400  # reviewed ledgers whose month ended this long ago are no longer re-checked
LEDGER_STATES = [("draft", "Draft"), ("reviewed", "Reviewed"), ("exported", "Exported")]
# The ledger's own figures (its totals): the engine's figures plus what the rows derive from them.
TOTAL_FIELDS = (
    *LINE_FIGURES,
    "electricity_difference",
    "electricity_percent",
    "electricity_percent_none",
    "water_difference",
    "water_percent",
    "water_percent_none",
    "total",
    "line_count",
)
PROTECTED_FIELDS = (
    "building_id",
    "company_id",
    "month",
    "period_start",
    "period_end",
    "previous_start",
    "date_from",
    "date_to",
    "previous_date_from",
    "state",
    "reviewer_id",
    "review_date",
    "export_user_id",
    "export_date",
    "changed_since_review",
    "change_description",
    "change_checked_date",
    "review_fingerprint",
    "line_ids",
    *TOTAL_FIELDS,
)


def to_utc_naive(value):
    return value.astimezone(UTC).replace(tzinfo=None)


def row_vals(row):
    """The stored values of an engine ledger row (a line's figures, or the ledger's totals)."""
    figures = row.figures
    vals = {name: float(getattr(figures, name)) for name in LINE_FIGURES}
    vals.update(
        electricity_difference=float(row.electricity.difference),
        electricity_percent=float(row.electricity.percent or 0),
        electricity_percent_none=row.electricity.percent is None,
        water_difference=float(row.water.difference),
        water_percent=float(row.water.percent or 0),
        water_percent_none=row.water.percent is None,
        total=float(row.total),
    )
    return vals


class PrepaidMonthlyLedger(models.Model):
    """The monthly ledger (月报表台账) of a building: per tenant account, the month's electricity and water
    (quantity, charge, last month beside it with the difference and %), apportioned shares and fees, and the
    totals. The month is the building's settlement cycle that starts in it (see
    :mod:`prepaid_engine.billing.monthly`).

    Draft ledgers are (re)computed from the daily consumption facts and the fee/apportionment ledger lines
    by :meth:`_generate` (a wizard, and the daily cron for the month just closed). Reviewing (managers)
    freezes the figures and records who and when; a reviewed ledger is never recomputed:
    :meth:`_check_changed_since_review` recomputes the figures aside and flags the ledger, with what
    changed, when the data moved. Resetting it to draft (managers) recomputes it. Exporting (XLSX) marks it
    exported."""

    _name = "prepaid.monthly.ledger"
    _description = "Monthly Ledger"
    _inherit = ["prepaid.guard.mixin", "prepaid.monthly.ledger.figures", "mail.thread"]
    _prepaid_internal_create = True
    _prepaid_protected_fields = PROTECTED_FIELDS
    _order = "month desc, building_id"
    _check_company_auto = True
    _allow_sudo_commands = False

    name = fields.Char(compute="_compute_name", store=True)
    building_id = fields.Many2one(
        "prepaid.property", required=True, readonly=True, index=True, ondelete="restrict"
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    month = fields.Date(required=True, readonly=True, help="The first day of the ledger's month.")
    month_label = fields.Char(compute="_compute_month_label")
    period_start = fields.Datetime(required=True, readonly=True, help="Start of the settlement cycle.")
    period_end = fields.Datetime(required=True, readonly=True)
    previous_start = fields.Datetime(string="Last Month Start", readonly=True)
    date_from = fields.Date(string="From", readonly=True, help="First local day the ledger counts.")
    date_to = fields.Date(string="To", readonly=True, help="Last local day the ledger counts.")
    previous_date_from = fields.Date(string="Last Month From", readonly=True)
    state = fields.Selection(LEDGER_STATES, default="draft", required=True, readonly=True, tracking=True)
    reviewer_id = fields.Many2one("res.users", string="Reviewed by", readonly=True, tracking=True)
    review_date = fields.Datetime(string="Reviewed on", readonly=True)
    export_user_id = fields.Many2one("res.users", string="Exported by", readonly=True)
    export_date = fields.Datetime(string="Exported on", readonly=True)
    changed_since_review = fields.Boolean(
        readonly=True,
        tracking=True,
        help="The facts or the ledger moved after the review: the frozen figures "
        "no longer are what the data says (see what changed). Reset to draft to recompute.",
    )
    change_description = fields.Text(string="What Changed", readonly=True)
    change_checked_date = fields.Datetime(string="Last Checked", readonly=True)
    review_fingerprint = fields.Char(readonly=True, copy=False, groups="base.group_system")
    note = fields.Text()
    line_ids = fields.One2many("prepaid.monthly.ledger.line", "ledger_id", string="Lines", readonly=True)
    line_count = fields.Integer(string="Accounts", readonly=True)

    _sql_constraints = [
        (
            "building_period_uniq",
            "UNIQUE(building_id, period_start)",
            "A building has one monthly ledger per month.",
        ),
    ]

    @api.depends("building_id.name", "month")
    def _compute_name(self):
        for ledger in self:
            label = ledger.month.strftime("%Y-%m") if ledger.month else ""
            ledger.name = f"{ledger.building_id.name or ''} {label}".strip()

    @api.depends("month")
    def _compute_month_label(self):
        for ledger in self:
            ledger.month_label = ledger.month.strftime("%Y-%m") if ledger.month else ""

    # ------------------------------------------------------------------ reading the data

    @api.model
    def _period_of(self, building, year, month):
        return month_period(building._prepaid_settlement_calendar(), year, month)

    def _precision(self, company):
        return Decimal(str(company.currency_id.rounding))

    @api.model
    @api.private
    def _compute_rows(self, jobs):
        """The ledger rows of each ``(building, MonthPeriod)`` in ``jobs``, from the daily facts and the
        ledger's fee and apportionment lines, a few grouped queries per :data:`BUILDING_BATCH` buildings.

        Returns ``{building id: [(account id, partner id, unit names, LedgerRow)]}`` in account order.
        An account's facts count in the building they were consumed in; its fees and shares in its home
        building (that of its first unit). An account is listed when it has figures in either month, or
        when its home is the building and it is open or suspended."""
        result = {}
        for start in range(0, len(jobs), BUILDING_BATCH):
            result.update(self._compute_rows_batch(jobs[start : start + BUILDING_BATCH]))
        return result

    def _compute_rows_batch(self, jobs):
        for model in ("prepaid.consumption", "prepaid.ledger", "prepaid.account", "prepaid.property"):
            self.env[model].flush_model()
        periods = {building.id: period for building, period in jobs}
        companies = {building.id: building.company_id for building, _period in jobs}
        building_ids = list(periods)
        bounds = SQL(", ").join(
            SQL(
                "(%s, %s::date, %s::date, %s::date, %s::timestamp, %s::timestamp)",
                bid,
                p.first_day,
                p.end_day,
                p.previous_first_day,
                to_utc_naive(p.start),
                to_utc_naive(p.end),
            )
            for bid, p in periods.items()
        )
        cr = self.env.cr
        # 1. Consumption per building, account and utility, this month and last month.
        cr.execute(
            SQL(
                """WITH b(building_id, first_day, end_day, previous_day, start_at, end_at) AS (VALUES %s)
                   SELECT f.building_id, f.account_id, f.utility,
                          COALESCE(SUM(f.quantity::numeric) FILTER (WHERE f.day >= b.first_day), 0)::text,
                          COALESCE(SUM(f.amount::numeric) FILTER (WHERE f.day >= b.first_day), 0)::text,
                          COALESCE(SUM(f.quantity::numeric) FILTER (WHERE f.day < b.first_day), 0)::text
                     FROM prepaid_consumption f JOIN b ON b.building_id = f.building_id
                    WHERE f.account_id IS NOT NULL AND f.day >= b.previous_day AND f.day < b.end_day
                 GROUP BY 1, 2, 3""",
                bounds,
            )
        )
        consumption = cr.fetchall()
        # 2. The accounts of the buildings' units (all their units: the home building is the first's).
        cr.execute(
            SQL(
                """SELECT a.id, a.partner_id, a.state, u.id, u.name, u.building_id
                     FROM prepaid_account a
                     JOIN prepaid_account_unit_rel r ON r.account_id = a.id
                     JOIN prepaid_property u ON u.id = r.unit_id
                    WHERE a.id IN (
                          SELECT r2.account_id FROM prepaid_account_unit_rel r2
                            JOIN prepaid_property u2 ON u2.id = r2.unit_id
                           WHERE u2.building_id = ANY(%s)
                          ) OR a.id = ANY(%s)
                 ORDER BY a.id, u.id""",
                building_ids,
                sorted({row[1] for row in consumption}),
            )
        )
        accounts = {}  # id -> [partner, state, home building, {building: [unit names]}]
        rows = cr.fetchall()
        homes = self.env["prepaid.account"]._prepaid_home_buildings(sorted({row[0] for row in rows}))
        for account_id, partner_id, state, _unit_id, unit_name, unit_building in rows:
            found = accounts.setdefault(account_id, [partner_id, state, homes[account_id], defaultdict(list)])
            found[3][unit_building].append(unit_name)
        missing = sorted({row[1] for row in consumption} - accounts.keys())
        if missing:  # accounts without units, billed through meters
            for account_id, partner_id, state in self.env.execute_query(
                SQL("SELECT id, partner_id, state FROM prepaid_account WHERE id = ANY(%s)", missing)
            ):
                buildings = sorted(row[0] for row in consumption if row[1] == account_id)
                accounts[account_id] = [partner_id, state, buildings[0], defaultdict(list)]
        homes = [(aid, found[2]) for aid, found in accounts.items() if found[2] in periods]
        # 3. Fees and apportioned shares per account, in its home building's month (by the line's date).
        charges = []
        if homes:
            cr.execute(
                SQL(
                    """WITH b(building_id, first_day, end_day, previous_day, start_at, end_at) AS (VALUES %s),
                            home(account_id, building_id) AS (VALUES %s)
                       SELECT l.account_id, l.kind, (-SUM(l.amount::numeric))::text
                         FROM prepaid_ledger l
                         JOIN home h ON h.account_id = l.account_id
                         JOIN b ON b.building_id = h.building_id
                        WHERE l.kind IN ('fee', 'apportionment')
                          AND l.date >= b.start_at AND l.date < b.end_at
                     GROUP BY 1, 2""",
                    bounds,
                    SQL(", ").join(SQL("(%s, %s)", aid, bid) for aid, bid in homes),
                )
            )
            charges = cr.fetchall()
        return self._rows_from(periods, companies, accounts, consumption, charges)

    def _rows_from(self, periods, companies, accounts, consumption, charges):
        figures = defaultdict(dict)  # building -> account -> figure values
        # Sums are read as text (Odoo's cursor turns numeric into float): exact Decimals.
        for building_id, account_id, utility, quantity, amount, previous in consumption:
            quantity, amount, previous = Decimal(quantity), Decimal(amount), Decimal(previous)
            values = figures[building_id].setdefault(account_id, {})
            if utility in ("electricity", "water"):
                values[f"{utility}_quantity"] = values.get(f"{utility}_quantity", 0) + quantity
                values[f"{utility}_amount"] = values.get(f"{utility}_amount", 0) + amount
                key = f"previous_{utility}_quantity"
                values[key] = values.get(key, 0) + previous
        for account_id, kind, amount in charges:
            home = accounts[account_id][2]
            values = figures[home].setdefault(account_id, {})
            values["fees" if kind == "fee" else "apportionment"] = Decimal(amount)
        for account_id, (_partner, state, home, _units) in accounts.items():
            if home in periods and state in ("open", "suspended"):
                figures[home].setdefault(account_id, {})
        result = {}
        for building_id in periods:
            precision = self._precision(companies[building_id])
            rows = []
            for account_id in sorted(figures.get(building_id, {})):
                partner_id, _state, _home, units = accounts[account_id]
                row = ledger_row(
                    AccountFigures(account_id, **figures[building_id][account_id]), precision=precision
                )
                rows.append((account_id, partner_id, ", ".join(units.get(building_id, ())), row))
            result[building_id] = rows
        return result

    # ------------------------------------------------------------------ generation

    @api.model
    @api.private
    def _generate(self, buildings, year, month):
        """Create the draft ledgers of ``buildings`` for ``year``-``month`` and refresh those still in draft;
        reviewed and exported ledgers are left as they are (and checked, see
        :meth:`_check_changed_since_review`). Returns the ledgers of the month, all states."""
        buildings = buildings.filtered(lambda b: b.kind == "building")
        if not buildings:
            return self.browse()
        Ledger = internal(self.sudo())
        jobs = [(building, self._period_of(building, year, month)) for building in buildings]
        existing = {
            (ledger.building_id.id, ledger.period_start): ledger
            for ledger in Ledger.search(
                [
                    ("building_id", "in", buildings.ids),
                    ("period_start", "in", sorted({to_utc_naive(p.start) for _b, p in jobs})),
                ]
            )
        }
        new_vals = [
            self._prepare_ledger_vals(building, period)
            for building, period in jobs
            if (building.id, to_utc_naive(period.start)) not in existing
        ]
        created = Ledger.create(new_vals) if new_vals else Ledger
        drafts = created | Ledger.browse([led.id for led in existing.values() if led.state == "draft"])
        drafts._write_figures()
        ledgers = created | Ledger.browse([ledger.id for ledger in existing.values()])
        return self.browse(ledgers.ids)

    def _write_figures(self):
        """(Re)compute the lines and totals of draft ledgers ``self`` (internal, sudo) over their stored
        period: one grouped computation for all of them, one create of all the lines."""
        if not self:
            return
        rows = self._rows_by_ledger()
        self.line_ids.unlink()
        line_vals = []
        for ledger in self:
            line_vals.extend(self._prepare_line_vals(ledger, rows[ledger.id]))
        internal(self.env["prepaid.monthly.ledger.line"].sudo()).create(line_vals)
        for ledger in self:
            ledger.write(self._prepare_totals_vals([row for *_x, row in rows[ledger.id]]))

    def _rows_by_ledger(self):
        """``{ledger id: rows}`` computed over each ledger's stored period (one computation per month: a
        building has one ledger a month)."""
        rows = {}
        for ledgers in self.grouped("month").values():
            found = self._compute_rows([(ledger.building_id, ledger._stored_period()) for ledger in ledgers])
            rows.update({ledger.id: found[ledger.building_id.id] for ledger in ledgers})
        return rows

    def _prepare_ledger_vals(self, building, period):
        return {
            "building_id": building.id,
            "company_id": building.company_id.id,
            "month": date(period.year, period.month, 1),
            "period_start": to_utc_naive(period.start),
            "period_end": to_utc_naive(period.end),
            "previous_start": to_utc_naive(period.previous_start),
            "date_from": period.first_day,
            "date_to": period.last_day,
            "previous_date_from": period.previous_first_day,
        }

    def _prepare_line_vals(self, ledger, rows):
        return [
            {
                "ledger_id": ledger.id,
                "sequence": sequence,
                "account_id": account_id,
                "partner_id": partner_id,
                "unit_names": units,
                **row_vals(row),
            }
            for sequence, (account_id, partner_id, units, row) in enumerate(rows, start=1)
        ]

    def _prepare_totals_vals(self, rows):
        totals = ledger_totals(rows)
        vals = row_vals(totals)
        vals["line_count"] = totals.count
        return vals

    @api.model
    @api.private
    def _buildings_with_accounts(self):
        self.env["prepaid.account"].flush_model()
        self.env["prepaid.property"].flush_model()
        ids = [
            row[0]
            for row in self.env.execute_query(
                SQL(
                    """SELECT DISTINCT u.building_id FROM prepaid_account_unit_rel r
                         JOIN prepaid_account a ON a.id = r.account_id
                         JOIN prepaid_property u ON u.id = r.unit_id
                        WHERE u.building_id IS NOT NULL AND a.state != 'draft'"""
                )
            )
        ]
        return self.env["prepaid.property"].sudo().browse(ids).filtered(lambda b: b.kind == "building")

    @api.model
    def _cron_generate(self, now=None):
        """Daily: the draft ledgers of the month just closed of every building with accounts (created once,
        refreshed while in draft), then the check of the reviewed ledgers. Every company's buildings."""
        Ledger = self.sudo()
        now = now or datetime.now(UTC)
        by_month = defaultdict(lambda: Ledger.env["prepaid.property"])
        for building in Ledger._buildings_with_accounts():
            period = closed_month(building._prepaid_settlement_calendar(), now)
            by_month[period.year, period.month] |= building
        done = 0
        for (year, month), buildings in sorted(by_month.items()):
            for company, company_buildings in buildings.grouped("company_id").items():
                Ledger.with_company(company)._generate(company_buildings, year, month)
                done += len(company_buildings)
        Ledger._check_changed_since_review(now=now)
        self.env["ir.cron"]._notify_progress(done=done, remaining=0)
        return done

    # ------------------------------------------------------------------ review and its check

    def _frozen_figures(self):
        """The stored figures of the ledgers' lines, as engine figures per ledger (read exactly, in SQL)."""
        self.env["prepaid.monthly.ledger.line"].flush_model()
        frozen = defaultdict(list)
        columns = SQL(", ").join(SQL.identifier(name) for name in LINE_FIGURES)
        for ledger_id, account_id, *values in self.env.execute_query(
            SQL(
                "SELECT ledger_id, account_id, %s FROM prepaid_monthly_ledger_line WHERE ledger_id = ANY(%s)",
                columns,
                self.ids,
            )
        ):
            frozen[ledger_id].append(
                AccountFigures(
                    account_id, **{n: Decimal(str(v or 0)) for n, v in zip(LINE_FIGURES, values, strict=True)}
                )
            )
        return frozen

    def _stored_period(self):
        """The period the ledger was made for (whatever the building's calendar says today)."""
        self.ensure_one()
        return MonthPeriod(
            year=self.month.year,
            month=self.month.month,
            start=self.period_start.replace(tzinfo=UTC),
            end=self.period_end.replace(tzinfo=UTC),
            previous_start=self.previous_start.replace(tzinfo=UTC),
            first_day=self.date_from,
            end_day=self.date_to + timedelta(days=1),
            previous_first_day=self.previous_date_from,
        )

    def _fingerprint_of(self, figures):
        return fingerprint(figures, precision=self._precision(self.company_id))

    @api.private
    def _check_changed_since_review(self, now=None):
        """Recompute the figures of reviewed and exported ledgers (those of ``self``, or all whose month
        ended within :data:`STALE_HORIZON_DAYS`) aside and flag those the data moved under, with what changed;
        a ledger the data came back to is unflagged. Figures are never rewritten here."""
        ledgers = self
        if not ledgers:
            horizon = (now or datetime.now(UTC)) - timedelta(days=STALE_HORIZON_DAYS)
            ledgers = self.sudo().search(
                [("state", "in", ("reviewed", "exported")), ("period_end", ">=", to_utc_naive(horizon))]
            )
        ledgers = internal(ledgers.sudo().filtered(lambda ledger: ledger.state in ("reviewed", "exported")))
        if not ledgers:
            return 0
        fresh = ledgers._rows_by_ledger()
        frozen = ledgers._frozen_figures()
        checked = fields.Datetime.now()
        flagged = 0
        for ledger in ledgers:
            current = [row for *_x, row in fresh[ledger.id]]
            if ledger._fingerprint_of(current) == ledger.review_fingerprint:
                vals = {"changed_since_review": False, "change_description": False}
            else:
                changes = differences(
                    frozen[ledger.id], current, precision=self._precision(ledger.company_id)
                )
                vals = {
                    "changed_since_review": bool(changes),
                    "change_description": ledger._describe(changes),
                }
                flagged += bool(changes)
            if ledger.changed_since_review != vals["changed_since_review"] or (
                (ledger.change_description or False) != vals["change_description"]
            ):
                ledger.write({**vals, "change_checked_date": checked})
            else:
                ledger.write({"change_checked_date": checked})
        return flagged

    def _describe(self, changes):
        """What changed, one line per change, in the reader's language."""
        if not changes:
            return False
        Line = self.env["prepaid.monthly.ledger.line"]
        accounts = {
            a.id: a for a in self.env["prepaid.account"].sudo().browse([c.key for c in changes]).exists()
        }
        lines = []
        for change in changes:
            account = accounts.get(change.key)
            who = (
                f"{account.name} ({account.partner_id.name})"
                if account
                else self.env._("Account %(id)s", id=change.key)
            )
            if change.kind is ChangeKind.ADDED:
                lines.append(
                    self.env._(
                        "%(account)s: new in the data (%(amount)s)", account=who, amount=change.current
                    )
                )
            elif change.kind is ChangeKind.REMOVED:
                lines.append(
                    self.env._(
                        "%(account)s: no longer in the data (%(amount)s)", account=who, amount=change.frozen
                    )
                )
            else:
                lines.append(
                    self.env._(
                        "%(account)s: %(figure)s %(frozen)s → %(current)s",
                        account=who,
                        figure=Line._fields[change.figure]._description_string(self.env),
                        frozen=change.frozen,
                        current=change.current,
                    )
                )
        return "\n".join(lines)

    def _prepaid_check_manager(self):
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can do this on a monthly ledger."))

    def action_review(self):
        """Managers: freeze the figures of draft ledgers and record who reviewed them and when."""
        self._prepaid_check_manager()
        self.check_access("write")
        if any(ledger.state != "draft" for ledger in self):
            raise UserError(self.env._("Only draft monthly ledgers can be reviewed."))
        frozen = self._frozen_figures()
        now = fields.Datetime.now()
        for ledger in internal(self.sudo()):
            ledger.write(
                {
                    "state": "reviewed",
                    "reviewer_id": self.env.uid,
                    "review_date": now,
                    "review_fingerprint": ledger._fingerprint_of(frozen[ledger.id]),
                    "changed_since_review": False,
                    "change_description": False,
                }
            )
        self._check_changed_since_review()
        return True

    def action_refresh(self):
        """Managers: recompute draft ledgers from the data."""
        self._prepaid_check_manager()
        self.check_access("write")
        if any(ledger.state != "draft" for ledger in self):
            raise UserError(
                self.env._("Only draft monthly ledgers can be refreshed; reset it to draft first.")
            )
        internal(self.sudo())._write_figures()
        return True

    def action_reset_to_draft(self):
        """Managers: back to draft (the review is dropped) and recomputed."""
        self._prepaid_check_manager()
        self.check_access("write")
        internal(self.sudo()).write(
            {
                "state": "draft",
                "reviewer_id": False,
                "review_date": False,
                "review_fingerprint": False,
                "changed_since_review": False,
                "change_description": False,
                "export_user_id": False,
                "export_date": False,
            }
        )
        return self.action_refresh()

    def action_check_changes(self):
        """Managers: check now whether the data moved under the reviewed ledgers."""
        self._prepaid_check_manager()
        self.check_access("write")
        self._check_changed_since_review()
        return True

    # ------------------------------------------------------------------ export and print

    def _check_exportable(self):
        if any(ledger.state == "draft" for ledger in self):
            raise UserError(self.env._("Review the monthly ledger before exporting it."))

    def action_export_xlsx(self):
        """The XLSX of the ledgers (one sheet per building), served by the controller; marks them exported."""
        self.check_access("read")
        self._check_exportable()
        return {
            "type": "ir.actions.act_url",
            "url": f"/prepaid/monthly_ledger/xlsx?ids={','.join(map(str, self.ids))}",
            "target": "download",
        }

    @api.private
    def _mark_exported(self):
        internal(self.sudo()).write(
            {"state": "exported", "export_user_id": self.env.uid, "export_date": fields.Datetime.now()}
        )

    @api.private
    def _export_xlsx(self):
        """The workbook's bytes (in the user's language); marks the ledgers exported."""
        self.check_access("read")
        self._check_exportable()
        self._check_changed_since_review()
        content = ledger_workbook(self)
        self._mark_exported()
        return content

    def _percent_label(self, utility):
        """The totals row's month-on-month percentage of ``utility``, as the lines show theirs."""
        self.ensure_one()
        return percent_label(self.env, self[f"{utility}_percent"], self[f"{utility}_percent_none"])

    def action_print(self):
        self.check_access("read")
        return self.env.ref("prepaid_billing.action_report_prepaid_monthly_ledger").report_action(self)

    @api.ondelete(at_uninstall=False)
    def _unlink_only_drafts(self):
        if any(ledger.state != "draft" for ledger in self):
            raise UserError(self.env._("Reviewed and exported monthly ledgers cannot be deleted."))
