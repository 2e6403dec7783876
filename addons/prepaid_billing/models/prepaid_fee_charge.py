import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from odoo import Command, api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_internal
from odoo.addons.prepaid_base.tools.bulk_sql import insert_rows
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL

from prepaid_engine.billing.fees import fee_charges
from prepaid_engine.calendar import Cycle, SettlementCalendar
from prepaid_engine.errors import ConfigError

_logger = logging.getLogger(__name__)

CHARGE_STATES = [
    ("posted", "Deducted"),
    ("invoiced", "Invoiced"),
    ("nothing", "Nothing to Charge"),
]
LIVE_ACCOUNT_STATES = ("open", "suspended")
INSERT_BATCH = 5000  # charges inserted (and deducted) per statement


def ledger_key(item_id, tenancy_id, period_key):
    """The idempotency key of a fee deduction: one per fee item, tenancy and period, whoever charges."""
    return f"fee:{item_id}:{tenancy_id}:{period_key}"


class PrepaidFeeCharge(models.Model):
    """One period of a fee item charged to one tenancy: the billed days, the amount and how it was
    collected (a ledger deduction of kind ``fee`` keyed ``fee:<item>:<tenancy>:<period>``, or a line of a
    posted customer invoice).

    Made only by :meth:`_charge_fees` (the hourly cron, *Charge Now*), never typed: ``UNIQUE(fee_item_id,
    tenancy_id, period_key)`` and the ledger key make a second run, a retry after a crash or two concurrent
    runs charge each period once."""

    _name = "prepaid.fee.charge"
    _description = "Prepaid Fee Charge"
    _order = "due desc, id desc"
    _check_company_auto = True

    name = fields.Char(required=True, readonly=True)
    fee_item_id = fields.Many2one(
        "prepaid.fee.item", required=True, readonly=True, index=True, ondelete="restrict"
    )
    kind = fields.Selection(selection="_kind_selection", readonly=True, index=True)
    tenancy_id = fields.Many2one(
        "prepaid.tenancy", required=True, readonly=True, index=True, ondelete="restrict"
    )
    partner_id = fields.Many2one("res.partner", string="Tenant", required=True, readonly=True, index=True)
    account_id = fields.Many2one("prepaid.account", readonly=True, index="btree_not_null")
    property_id = fields.Many2one(
        "prepaid.property", string="Building", readonly=True, index=True, help="The tenancy's home building."
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    period_key = fields.Char(
        string="Period", required=True, readonly=True, help="2026-11 (month), 2026-Q4, 2026 (year), once."
    )
    period_start = fields.Date(readonly=True)
    period_end = fields.Date(readonly=True, help="Last day of the period.")
    date_from = fields.Date(string="Billed From", readonly=True)
    date_to = fields.Date(string="Billed To", readonly=True)
    due = fields.Date(string="Due Date", readonly=True, index=True)
    days = fields.Integer(string="Billed Days", readonly=True, aggregator=None)
    period_days = fields.Integer(readonly=True, aggregator=None)
    basis = fields.Float(
        digits=(16, 3), readonly=True, aggregator=None, help="Area (m²) or quantity the price multiplies."
    )
    full_amount = fields.Monetary(string="Full Period", readonly=True, help="The whole period's amount.")
    amount = fields.Monetary(readonly=True)
    prorated = fields.Boolean(readonly=True)
    collection = fields.Selection(
        [("deduct", "Deducted from Balance"), ("invoice", "Invoiced")], required=True, readonly=True
    )
    state = fields.Selection(CHARGE_STATES, required=True, readonly=True, index=True)
    income_account_id = fields.Many2one(
        "account.account",
        readonly=True,
        help="Where the deduction is booked: the fee item's product's income account, else the company's fee "
        "revenue account.",
    )
    ledger_id = fields.Many2one("prepaid.ledger", string="Ledger Line", readonly=True)
    move_id = fields.Many2one("account.move", string="Invoice", readonly=True, index="btree_not_null")
    charged_at = fields.Datetime(readonly=True)

    _sql_constraints = [
        (
            "charge_uniq",
            "UNIQUE(fee_item_id, tenancy_id, period_key)",
            "A fee item charges a tenancy once per period.",
        ),
    ]

    @api.model
    def _kind_selection(self):
        return self.env["prepaid.fee.item"]._fields["kind"]._description_selection(self.env)

    @api.model_create_multi
    def create(self, vals_list):
        # The fee run inserts its charges with SQL (ON CONFLICT DO NOTHING); nobody creates them otherwise.
        if not is_internal(self.env):
            raise AccessError(self.env._("Fee charges are made by the fee run only."))
        return super().create(vals_list)

    def write(self, vals):
        if not is_internal(self.env):
            raise AccessError(
                self.env._("Fee charges cannot be changed: correct a wrong one with a ledger adjustment.")
            )
        return super().write(vals)

    # ------------------------------------------------------------------ the run

    @api.model
    def _cron_charge_fees(self):
        """Hourly: charge every active fee item of the prepaid companies for the periods due up to today (in
        each building's zone). Each fee item runs in a savepoint: one that fails is logged, the others go
        on."""
        companies = self.env["res.company"].sudo().search([("prepaid_enabled", "=", True)])
        result = self._charge_fees(companies=companies)
        self.env["ir.cron"]._notify_progress(done=result["items"], remaining=0)
        return result

    @api.model
    @api.private
    def _charge_fees(self, items=None, companies=None, until=None):
        """Charge ``items`` (default: every active fee item of ``companies``) for the periods due on or
        before ``until`` (a local date; default: today in each tenancy's building's zone).

        Per item: the tenancies in its scope (active or ended, started by then) and their units, the engine's
        charges per tenancy (:func:`~prepaid_engine.billing.fees.fee_charges`), minus the periods charged
        already; the new charges are inserted with ``ON CONFLICT DO NOTHING`` (a concurrent run's charge
        wins, this one skips it), then deducted in one :meth:`_post_ledger` call per batch, or invoiced
        (one posted invoice per tenant and run). A tenancy whose deduction has no open account is left for a
        later run (its periods wait).

        :return: counts ``{"items", "charged", "posted", "invoiced", "nothing", "no_account", "errors"}``."""
        if items is None:
            domain = [("active", "=", True)]
            if companies is not None:
                domain.append(("company_id", "in", companies.ids))
            items = self.env["prepaid.fee.item"].sudo().search(domain, order="id")
        result = dict.fromkeys(
            ("items", "charged", "posted", "invoiced", "nothing", "no_account", "errors"), 0
        )
        for item in items.sudo():
            result["items"] += 1
            try:
                with self.env.cr.savepoint():
                    counts = self.with_company(item.company_id).sudo()._charge_item(item, until)
            except (ConfigError, UserError, ValidationError) as exc:
                _logger.warning("fee item %s: %s", item.display_name, exc)
                result["errors"] += 1
                continue
            for key, value in counts.items():
                result[key] += value
        return result

    def _scope(self, item, until):
        """``{tenancy id: [unit ids]}``: the tenancies the item applies to (active or ended, started by
        ``until`` or by tomorrow) with their units the item covers (every unit for a tenancy listed on it)."""
        latest = until or fields.Date.today() + timedelta(days=1)
        scope = defaultdict(set)
        units = item.property_ids._get_units() if item.property_ids else self.env["prepaid.property"]
        rows = []
        if units:
            rows += self.env.execute_query(
                SQL(
                    """SELECT rel.tenancy_id, rel.unit_id
                         FROM prepaid_tenancy_unit_rel rel
                         JOIN prepaid_tenancy t ON t.id = rel.tenancy_id
                        WHERE rel.unit_id = ANY(%s) AND t.state IN ('active', 'ended')
                          AND t.company_id = %s AND t.date_start <= %s""",
                    units.ids,
                    item.company_id.id,
                    latest,
                )
            )
        if item.tenancy_ids:
            rows += self.env.execute_query(
                SQL(
                    """SELECT rel.tenancy_id, rel.unit_id
                         FROM prepaid_tenancy_unit_rel rel
                         JOIN prepaid_tenancy t ON t.id = rel.tenancy_id
                        WHERE rel.tenancy_id = ANY(%s) AND t.state IN ('active', 'ended')
                          AND t.date_start <= %s""",
                    item.tenancy_ids.ids,
                    latest,
                )
            )
        for tenancy_id, unit_id in rows:
            scope[tenancy_id].add(unit_id)
        return {tenancy_id: sorted(unit_ids) for tenancy_id, unit_ids in scope.items()}

    def _calendars(self, unit_ids):
        """``{unit id: (home building id or False, monthly SettlementCalendar)}``: fees follow the unit's
        building's cycle day and zone; a building on a weekly or daily cycle bills fees monthly on the 1st."""
        rows = self.env.execute_query(
            SQL(
                "SELECT id, building_id, area FROM prepaid_property WHERE id = ANY(%s)",
                sorted(unit_ids),
            )
        )
        buildings = self.env["prepaid.property"].browse({b for _, b, _ in rows if b})
        calendars = {}
        for building in buildings:
            calendar = building._prepaid_settlement_calendar()
            if calendar.cycle is not Cycle.MONTHLY:
                calendar = SettlementCalendar(cycle=Cycle.MONTHLY, day=1, tz=calendar.tz)
            calendars[building.id] = calendar
        default = self.env["prepaid.property"]._prepaid_default_calendar(self.env.company)
        return {
            unit_id: (
                building_id or False,
                calendars.get(building_id, default),
                Decimal(f"{area or 0.0:.2f}"),
            )
            for unit_id, building_id, area in rows
        }

    def _charge_item(self, item, until):
        counts = dict.fromkeys(("charged", "posted", "invoiced", "nothing", "no_account"), 0)
        scope = self._scope(item, until)
        if not scope:
            return counts
        engine_item = item._prepaid_engine_item()
        tenancies = {
            row[0]: row[1:]
            for row in self.env.execute_query(
                SQL(
                    """SELECT t.id, t.partner_id, t.date_start, t.date_end, a.id, a.state
                         FROM prepaid_tenancy t LEFT JOIN prepaid_account a ON a.id = t.account_id
                        WHERE t.id = ANY(%s)""",
                    sorted(scope),
                )
            )
        }
        units = self._calendars({u for unit_ids in scope.values() for u in unit_ids})
        self.flush_model()
        charged = {
            (tenancy_id, key)
            for tenancy_id, key in self.env.execute_query(
                SQL(
                    "SELECT tenancy_id, period_key FROM prepaid_fee_charge WHERE fee_item_id = %s",
                    item.id,
                )
            )
        }
        precision = Decimal(10) ** -item.currency_id.decimal_places
        quantity = Decimal(f"{item.quantity or 0.0:.3f}")
        today = {}
        cache = {}
        rows = []
        for tenancy_id, unit_ids in sorted(scope.items()):
            partner_id, start, end, account_id, account_state = tenancies[tenancy_id]
            building_id, calendar, _area = units[unit_ids[0]]
            if item.charge_mode == "deduct" and account_state not in LIVE_ACCOUNT_STATES:
                counts["no_account"] += 1
                continue
            area = sum((units[u][2] for u in unit_ids), Decimal(0))
            if calendar not in today:
                today[calendar] = until or datetime.now(UTC).astimezone(calendar._zone).date()
            key = (calendar, start, end, area)
            if key not in cache:
                cache[key] = fee_charges(
                    engine_item,
                    calendar,
                    start,
                    end or None,
                    today[calendar],
                    area=area,
                    quantity=quantity,
                    precision=precision,
                )
            for charge in cache[key]:
                if (tenancy_id, charge.period.key) in charged:
                    continue
                rows.append((tenancy_id, partner_id, account_id, building_id, charge))
        if not rows:
            return counts
        income = item._prepaid_income_account()
        now = fields.Datetime.now()
        for offset in range(0, len(rows), INSERT_BATCH):
            inserted = self._insert(item, rows[offset : offset + INSERT_BATCH], income, now)
            counts["charged"] += len(inserted)
            if not inserted:
                continue
            zero = [cid for cid, (amount, _a) in inserted.items() if not amount]
            counts["nothing"] += len(zero)
            todo = {cid: values for cid, values in inserted.items() if values[0]}
            if item.charge_mode == "invoice":
                counts["invoiced"] += self._invoice(item, self.browse(sorted(todo)))
            else:
                counts["posted"] += self._deduct(item, todo, now)
        # The rows came by SQL: what the ORM had cached of the item's charges is stale.
        item.invalidate_recordset(["charge_ids", "charge_count"])
        return counts

    def _insert(self, item, rows, income, now):
        """Insert the charges (``ON CONFLICT DO NOTHING``): ``{new charge id: (amount, account id)}``."""
        fnames = (
            "fee_item_id", "kind", "company_id", "collection", "income_account_id", "charged_at",
            "create_uid", "create_date", "write_uid", "write_date",
            "tenancy_id", "partner_id", "account_id", "property_id", "name", "period_key", "period_start",
            "period_end", "date_from", "date_to", "due", "days", "period_days", "basis", "full_amount",
            "amount", "prorated", "state",
        )  # fmt: skip
        common = (
            item.id,
            item.kind,
            item.company_id.id,
            item.charge_mode,
            income.id or None,
            now,
            self.env.uid,
            now,
            self.env.uid,
            now,
        )
        deduct = item.charge_mode == "deduct"
        values = [
            (
                *common,
                tenancy_id,
                partner_id,
                account_id if deduct else None,
                building_id or None,
                f"{item.name} {charge.period.key}",
                charge.period.key,
                charge.period.start,
                charge.period.end - timedelta(days=1),
                charge.start,
                charge.end - timedelta(days=1),
                charge.due,
                charge.days,
                charge.period_days,
                charge.basis if charge.basis is not None else 0,
                charge.full,
                charge.amount,
                charge.prorated,
                "nothing" if not charge.amount else "posted" if deduct else "invoiced",
            )
            for tenancy_id, partner_id, account_id, building_id, charge in rows
        ]
        inserted = insert_rows(
            self,
            fnames,
            values,
            on_conflict=SQL("ON CONFLICT (fee_item_id, tenancy_id, period_key) DO NOTHING"),
            returning=("id", "amount", "account_id"),
        )
        return {cid: (Decimal(str(amount)), account_id) for cid, amount, account_id in inserted}

    def _deduct(self, item, todo, now):
        """One ledger deduction per charge (kind ``fee``), then the charges point at their lines."""
        if not todo:
            return 0
        ids = sorted(todo)
        rows = self.env.execute_query(
            SQL(
                "SELECT id, tenancy_id, period_key, name FROM prepaid_fee_charge WHERE id = ANY(%s)",
                ids,
            )
        )
        vals_list = [
            {
                "account_id": todo[cid][1],
                "kind": "fee",
                "amount": -todo[cid][0],
                "idempotency_key": ledger_key(item.id, tenancy_id, period_key),
                "date": now,
                "description": name,
                "res_model": self._name,
                "res_id": cid,
            }
            for cid, tenancy_id, period_key, name in rows
        ]
        self.env["prepaid.account"].sudo()._post_ledger(vals_list, count_only=True)
        self.env["prepaid.ledger"].flush_model()
        self.env.cr.execute(
            SQL(
                """UPDATE prepaid_fee_charge c SET ledger_id = l.id
                     FROM prepaid_ledger l
                    WHERE c.id = ANY(%s)
                      AND l.idempotency_key
                          = 'fee:' || c.fee_item_id || ':' || c.tenancy_id || ':' || c.period_key""",
                ids,
            )
        )
        self.invalidate_model(["ledger_id"])
        return self.env.cr.rowcount

    def _invoice(self, item, charges):
        """One posted customer invoice per tenant, a line per charge, on the item's product."""
        if not charges:
            return 0
        by_partner = defaultdict(lambda: self.browse())
        for charge in charges:
            by_partner[charge.partner_id] |= charge
        Move = self.env["account.move"].sudo().with_company(item.company_id)
        vals_list, groups = [], []
        for partner, partner_charges in by_partner.items():
            groups.append(partner_charges)
            vals_list.append(
                {
                    "move_type": "out_invoice",
                    "partner_id": partner.id,
                    "company_id": item.company_id.id,
                    "invoice_date": fields.Date.context_today(self),
                    "invoice_origin": item.name,
                    "ref": f"fee:{item.id}:{partner.id}:{partner_charges[:1].period_key}",
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "product_id": item.product_id.id,
                                "name": self.env._(
                                    "%(fee)s, %(start)s - %(end)s (%(tenancy)s)",
                                    fee=item.name,
                                    start=charge.date_from,
                                    end=charge.date_to,
                                    tenancy=charge.tenancy_id.name,
                                ),
                                "quantity": 1.0,
                                "price_unit": charge.amount,
                            }
                        )
                        for charge in partner_charges
                    ],
                }
            )
        moves = Move.create(vals_list)
        moves.action_post()
        for move, partner_charges in zip(moves, groups, strict=True):
            self.env.cr.execute(
                SQL(
                    "UPDATE prepaid_fee_charge SET move_id = %s WHERE id = ANY(%s)",
                    move.id,
                    partner_charges.ids,
                )
            )
        self.invalidate_model(["move_id"])
        return len(charges)

    # ------------------------------------------------------------------ buttons

    def action_view_ledger(self):
        self.ensure_one()
        self.check_access("read")
        if not self.ledger_id:
            raise UserError(self.env._("This charge has no ledger line."))
        return self.ledger_id._get_records_action()

    def action_view_invoice(self):
        self.ensure_one()
        self.check_access("read")
        if not self.move_id:
            raise UserError(self.env._("This charge has no invoice."))
        return self.move_id._get_records_action()
