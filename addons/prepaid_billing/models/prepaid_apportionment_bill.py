import logging
from collections import defaultdict
from datetime import UTC, timedelta
from decimal import Decimal

from odoo import Command, api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_internal, is_manager
from odoo.addons.prepaid_base.tools.bulk_sql import insert_rows, update_rows
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from prepaid_engine.billing.rules import (
    ANOMALY_NEGATIVE_LOSS,
    ApportionmentRule,
    UnitBasis,
    apportion_common,
    meter_loss,
)
from prepaid_engine.errors import ConfigError

from .prepaid_apportionment_rule import COLLECTION_SELECTION, SOURCE_SELECTION, UTILITY_SELECTION

_logger = logging.getLogger(__name__)

BILL_STATES = [("draft", "Draft"), ("dispatched", "Dispatched"), ("cancelled", "Cancelled")]
# What the computation and the buttons write; managers enter only the manual cost (while draft) and the note.
BILL_PROTECTED_FIELDS = (
    "name",
    "rule_id",
    "company_id",
    "property_id",
    "utility",
    "source",
    "collection",
    "period_start",
    "period_end",
    "date_from",
    "date_to",
    "quantity",
    "price",
    "cost",
    "loss_master",
    "loss_sub_total",
    "loss_difference",
    "loss_quantity",
    "loss_price",
    "loss_cost",
    "negative_loss",
    "anomaly_id",
    "allocated",
    "unallocated",
    "error",
    "state",
    "line_ids",
    "dispatched_at",
    "dispatched_by_id",
)
LIVE_ACCOUNT_STATES = ("open", "suspended")


def _quantity(value):
    return Decimal(f"{value or 0.0:.3f}")


def _price(value):
    return Decimal(f"{value or 0.0:.4f}")


def _text(value):
    """A quantity for the evidence: exact, without trailing zeros (``30``, ``12.5``)."""
    return str(Decimal(f"{value or 0.0:.3f}").normalize())


def ledger_key(bill_id, unit_id):
    """The idempotency key of a bill line's ledger deduction: one per bill and unit, whoever dispatches."""
    return f"appt:{bill_id}:{unit_id}"


class PrepaidApportionmentBill(models.Model):
    """One period of an apportionment rule: the common cost, each unit's share, and what was collected.

    Computed, never typed: the lines come from the engine (:func:`apportion_common`), the quantities from
    the daily consumption facts. A draft can be recomputed (and its cost entered by hand, e.g. from the
    utility's invoice); *Dispatch* (下发) collects every line once (ledger deduction keyed
    ``appt:<bill>:<unit>``, or one posted customer invoice per tenant) and freezes the bill."""

    _name = "prepaid.apportionment.bill"
    _description = "Apportionment Bill"
    _inherit = ["prepaid.guard.mixin", "mail.thread", "mail.activity.mixin"]
    _prepaid_internal_create = True
    _prepaid_protected_fields = BILL_PROTECTED_FIELDS
    _prepaid_manager_fields = ("cost_manual", "manual_cost")
    _order = "period_start desc, id desc"
    _check_company_auto = True

    name = fields.Char(required=True, readonly=True)
    rule_id = fields.Many2one(
        "prepaid.apportionment.rule", required=True, readonly=True, index=True, ondelete="restrict"
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    property_id = fields.Many2one("prepaid.property", string="Building / Site", readonly=True, index=True)
    utility = fields.Selection(UTILITY_SELECTION, readonly=True)
    source = fields.Selection(SOURCE_SELECTION, string="Coefficient Source", readonly=True)
    collection = fields.Selection(COLLECTION_SELECTION, readonly=True)
    period_start = fields.Datetime(required=True, readonly=True)
    period_end = fields.Datetime(required=True, readonly=True)
    date_from = fields.Date(readonly=True, help="First local day of the period.")
    date_to = fields.Date(readonly=True, help="Last local day of the period.")
    state = fields.Selection(BILL_STATES, required=True, default="draft", readonly=True, tracking=True)
    quantity = fields.Float(
        string="Common Consumption", digits=(16, 3), readonly=True, help="Of the common meters."
    )
    price = fields.Float(digits=(16, 4), readonly=True)
    cost_manual = fields.Boolean(
        string="Cost Entered by Hand", tracking=True, help="Share the cost below instead of quantity x price."
    )
    manual_cost = fields.Monetary(tracking=True)
    cost = fields.Monetary(string="Common Cost", readonly=True)
    loss_master = fields.Float(string="Master Meter", digits=(16, 3), readonly=True)
    loss_sub_total = fields.Float(string="Sub-meters", digits=(16, 3), readonly=True)
    loss_difference = fields.Float(string="Difference", digits=(16, 3), readonly=True)
    loss_quantity = fields.Float(string="Loss", digits=(16, 3), readonly=True)
    loss_price = fields.Float(digits=(16, 4), readonly=True)
    loss_cost = fields.Monetary(readonly=True)
    negative_loss = fields.Boolean(
        readonly=True,
        help="The sub-meters add up to more than the master meter: nothing is charged for the loss and an "
        "anomaly asks a manager to check the meters.",
    )
    anomaly_id = fields.Many2one("prepaid.anomaly", readonly=True, ondelete="set null")
    allocated = fields.Monetary(string="Total Shares", readonly=True)
    unallocated = fields.Monetary(
        readonly=True, help="Fixed amounts: the cost the fixed amounts leave uncovered (negative: over)."
    )
    no_account_amount = fields.Monetary(
        string="Not Collected", compute="_compute_totals", help="Shares of units without an open account."
    )
    collected_amount = fields.Monetary(string="Collected", compute="_compute_totals")
    error = fields.Char(readonly=True, help="Why the last computation could not share the cost.")
    line_ids = fields.One2many("prepaid.apportionment.bill.line", "bill_id", string="Shares", readonly=True)
    move_ids = fields.Many2many("account.move", compute="_compute_totals", string="Invoices")
    invoice_count = fields.Integer(compute="_compute_totals")
    dispatched_at = fields.Datetime(readonly=True)
    dispatched_by_id = fields.Many2one("res.users", readonly=True)
    note = fields.Text()

    _sql_constraints = [
        ("period_uniq", "UNIQUE(rule_id, period_start)", "A rule has one bill per period."),
    ]

    def write(self, vals):
        if (
            any(fname in vals for fname in self._prepaid_declared("_prepaid_manager_fields"))
            and not is_internal(self.env)
            and self.filtered(lambda b: b.state != "draft")
        ):
            raise UserError(self.env._("The cost of a dispatched or cancelled bill cannot change."))
        return super().write(vals)

    @api.depends("line_ids.state", "line_ids.amount", "line_ids.move_id")
    def _compute_totals(self):
        for bill in self:
            lines = bill.line_ids
            bill.no_account_amount = sum(lines.filtered(lambda li: li.state == "no_account").mapped("amount"))
            bill.collected_amount = sum(
                lines.filtered(lambda li: li.state in ("posted", "invoiced")).mapped("amount")
            )
            bill.move_ids = lines.move_id
            bill.invoice_count = len(lines.move_id)

    # ------------------------------------------------------------------ creation and computation

    @api.model
    @api.private
    def _create_for(self, rule, periods):
        """Create and compute the bills of ``rule`` for ``periods`` (``[(start, end)]``, naive UTC)."""
        zone = rule._prepaid_calendar()._zone
        vals_list = []
        for start, end in periods:
            local_from = start.replace(tzinfo=UTC).astimezone(zone)
            local_to = end.replace(tzinfo=UTC).astimezone(zone)
            vals_list.append(
                {
                    "name": f"{rule.name} {local_from.date():%Y-%m-%d}",
                    "rule_id": rule.id,
                    "company_id": rule.company_id.id,
                    "property_id": rule.property_id.id,
                    "utility": rule.utility,
                    "source": rule.source,
                    "collection": rule.collection,
                    "period_start": start,
                    "period_end": end,
                    "date_from": local_from.date(),
                    "date_to": local_to.date() - timedelta(days=1),
                }
            )
        bills = internal(self.sudo().with_context(mail_create_nolog=True)).create(vals_list)
        bills._compute_shares()
        return bills

    def _quantities(self, meters, by="meter_id", units=None):
        """Period consumption from the daily facts: ``{meter or unit id: quantity}`` (exact decimals)."""
        self.ensure_one()
        domain = [
            ("day", ">=", self.date_from),
            ("day", "<=", self.date_to),
            ("utility", "=", self.utility),
        ]
        if units is not None:
            domain += [("unit_id", "in", units.ids), ("meter_id.is_common", "=", False)]
        else:
            domain.append(("meter_id", "in", meters.ids))
        groups = self.env["prepaid.consumption"].sudo()._read_group(domain, [by], ["quantity:sum"])
        return {record.id: _quantity(total) for record, total in groups}

    def _prepare_units(self, rule, units):
        """The engine's :class:`UnitBasis` of each unit, with what the rule's source needs."""
        lines = {line.unit_id.id: line for line in rule.line_ids}
        consumption = (
            self._quantities(None, by="unit_id", units=units) if rule.source == "consumption" else {}
        )
        basis = []
        for unit in units:
            line = lines.get(unit.id)
            basis.append(
                UnitBasis(
                    key=str(unit.id),
                    area=Decimal(f"{unit.area or 0.0:.2f}"),
                    consumption=consumption.get(unit.id, Decimal(0)),
                    coefficient=Decimal(f"{line.coefficient:.6f}") if line else None,
                    fixed_amount=Decimal(str(line.fixed_amount)) if line and line.fixed_amount else None,
                )
            )
        return basis

    def _engine_inputs(self, rule):
        """The keyword arguments of :func:`apportion_common` for this bill (cost, loss), and the figures of
        the bill they come from."""
        self.ensure_one()
        precision = Decimal(10) ** -self.currency_id.decimal_places
        kwargs = {"precision": precision}
        vals = {"quantity": 0.0, "price": rule.price}
        if rule.meter_ids:
            quantity = sum(self._quantities(rule.meter_ids).values(), Decimal(0))
            vals["quantity"] = float(quantity)
        if self.cost_manual:
            kwargs["cost"] = Decimal(str(self.manual_cost)).quantize(precision)
        elif rule.meter_ids:
            kwargs["quantity"] = quantity
            kwargs["price"] = _price(rule.price)
        elif rule.source != "fixed" and not rule.loss_enabled:
            raise UserError(
                self.env._("%(rule)s has no common meter: enter the bill's cost by hand.", rule=rule.name)
            )
        if rule.loss_enabled:
            master = self._quantities(rule.master_meter_id).get(rule.master_meter_id.id, Decimal(0))
            subs = self._quantities(rule.sub_meter_ids)
            loss = meter_loss(master, {str(m.id): subs.get(m.id, Decimal(0)) for m in rule.sub_meter_ids})
            kwargs["loss"] = loss
            kwargs["loss_price"] = _price(rule.loss_price or rule.price)
            vals.update(
                loss_master=float(loss.master),
                loss_sub_total=float(loss.sub_total),
                loss_difference=float(loss.difference),
                loss_quantity=float(loss.loss),
                loss_price=rule.loss_price or rule.price,
            )
        return kwargs, vals

    @api.private
    def _compute_shares(self):
        """(Re)compute these draft bills from the facts and their rules: the lines are replaced; a rule the
        engine refuses (a missing coefficient, no weight at all) leaves the bill without lines and says why
        in ``error``."""
        for bill in self.filtered(lambda b: b.state == "draft"):
            rule = bill.rule_id.sudo()
            units = rule._prepaid_units()
            writer = internal(bill.sudo())
            vals = {
                "source": rule.source,
                "collection": rule.collection,
                "utility": rule.utility,
                "error": False,
                "negative_loss": False,
                "loss_master": 0.0,
                "loss_sub_total": 0.0,
                "loss_difference": 0.0,
                "loss_quantity": 0.0,
                "loss_price": 0.0,
                "loss_cost": 0.0,
            }
            try:
                kwargs, figures = bill._engine_inputs(rule)
                vals.update(figures)
                result = apportion_common(
                    ApportionmentRule(rule.source, fixed_amount=Decimal(str(rule.fixed_amount or 0)) or None),
                    bill._prepare_units(rule, units),
                    **kwargs,
                )
            except (ConfigError, UserError) as exc:
                vals.update(error=str(exc), cost=0.0, allocated=0.0, unallocated=0.0)
                writer.write({**vals, "line_ids": [Command.clear()]})
                continue
            vals.update(
                cost=float(result.cost or 0),
                loss_cost=float(result.loss_cost),
                allocated=float(result.allocated),
                unallocated=float(result.unallocated or 0),
                negative_loss=ANOMALY_NEGATIVE_LOSS in result.anomalies,
            )
            by_key = result.by_key()
            bill.line_ids.sudo().unlink()  # draft lines hold nothing collected
            writer.write(vals)
            bill._insert_lines([bill._prepare_line_vals(unit, by_key[str(unit.id)]) for unit in units])
            if bill.negative_loss:
                bill._raise_negative_loss()

    def _insert_lines(self, vals_list):
        """Insert this bill's share lines in one statement (the related columns copied from the bill)."""
        self.ensure_one()
        Line = self.env["prepaid.apportionment.bill.line"]
        now = fields.Datetime.now()
        own = list(vals_list[0]) if vals_list else []
        fnames = [
            *own,
            "bill_id",
            "company_id",
            "rule_id",
            "property_id",
            "utility",
            "date_from",
            "create_uid",
            "create_date",
            "write_uid",
            "write_date",
        ]
        common = (
            self.id,
            self.company_id.id,
            self.rule_id.id,
            self.property_id.id,
            self.utility,
            self.date_from,
            self.env.uid,
            now,
            self.env.uid,
            now,
        )
        insert_rows(Line, fnames, [(*(vals[f] for f in own), *common) for vals in vals_list])
        self.invalidate_recordset(["line_ids"])

    def _prepare_line_vals(self, unit, line):
        return {
            "unit_id": unit.id,
            "coefficient": float(line.coefficient),
            "basis": float(line.basis) if line.basis is not None else 0.0,
            "ratio": float(line.ratio) if line.ratio is not None else 0.0,
            "common_amount": float(line.common),
            "loss_amount": float(line.loss),
            "amount": float(line.amount),
            "state": "draft",
        }

    def _raise_negative_loss(self):
        """Flag a negative loss (sub-meters above the master) with an anomaly of the master meter and a
        manager's to-do; a recomputation updates the bill's anomaly instead of raising another."""
        self.ensure_one()
        rule = self.rule_id.sudo()
        evidence = [
            {
                "finding": ANOMALY_NEGATIVE_LOSS,
                "bill": self.name,
                "from": str(self.date_from),
                "to": str(self.date_to),
                "master": _text(self.loss_master),
                "sub_total": _text(self.loss_sub_total),
                "difference": _text(self.loss_difference),
            }
        ]
        Anomaly = internal(self.env["prepaid.anomaly"].sudo().with_context(mail_create_nolog=True))
        if self.anomaly_id:
            Anomaly.browse(self.anomaly_id.id).write({"evidence": evidence})
            return self.anomaly_id
        manager = Anomaly._manager_of(self.company_id)
        anomaly = Anomaly.create(
            [
                {
                    "kind": "negative_loss",
                    "meter_id": rule.master_meter_id.id,
                    "evidence": evidence,
                    "period_start": self.period_start,
                    "period_end": self.period_end,
                    "user_id": manager.id or False,
                }
            ]
        )
        anomaly.activity_schedule(
            "mail.mail_activity_data_todo",
            summary=self.env._("Sub-meters above their master meter"),
            note=self.env._(
                "On %(bill)s the sub-meters of %(meter)s add up to more than it measured: no loss was "
                "charged. Check the meters (CT ratio, replacement, reading times).",
                bill=self.name,
                meter=rule.master_meter_id.display_name,
            ),
            user_id=(manager or self.env.user).id,
        )
        internal(self.sudo()).write({"anomaly_id": anomaly.id})
        return anomaly

    # ------------------------------------------------------------------ buttons

    def _check_manager(self, what):
        if not is_manager(self.env):
            raise AccessError(
                self.env._("Only prepaid managers can %(what)s apportionment bills.", what=what)
            )
        self.check_access("write")

    def action_recompute(self):
        self._check_manager(self.env._("recompute"))
        not_draft = self.filtered(lambda b: b.state != "draft")
        if not_draft:
            raise UserError(self.env._("Only draft bills can be recomputed."))
        self._lock()
        self._compute_shares()
        return True

    def action_dispatch(self):
        """Dispatch (下发): collect every share once; a dispatched bill is dispatched again only for the
        shares of units that had no open account then."""
        self._check_manager(self.env._("dispatch"))
        return self._dispatch()

    def action_cancel(self):
        self._check_manager(self.env._("cancel"))
        if self.filtered(lambda b: b.state != "draft"):
            raise UserError(self.env._("Only draft bills can be cancelled: dispatched shares are collected."))
        internal(self.sudo()).write({"state": "cancelled"})
        internal(self.line_ids.sudo()).write({"state": "cancelled"})
        return True

    def action_view_invoices(self):
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("account.action_move_out_invoice_type")
        action["domain"] = [("id", "in", self.line_ids.move_id.ids)]
        action["context"] = {"create": False}
        return action

    # ------------------------------------------------------------------ dispatch

    def _lock(self):
        """Lock these bills' rows (a second dispatch waits, then sees the first one's outcome)."""
        if not self.ids:
            return
        self.env.cr.execute(
            SQL(
                "SELECT id FROM prepaid_apportionment_bill WHERE id IN %s ORDER BY id FOR UPDATE",
                tuple(self.ids),
            )
        )
        self.invalidate_recordset()
        self.line_ids.invalidate_recordset()

    @api.private
    def _dispatch(self):
        """Collect the open shares of these bills (draft, or dispatched with shares of units that had no
        account): per line a ledger deduction or an invoice line, once."""
        self._lock()
        bills = self.sudo().filtered(
            lambda b: (
                b.state == "draft" or (b.state == "dispatched" and "no_account" in b.line_ids.mapped("state"))
            )
        )
        broken = bills.filtered("error")
        if broken:
            raise UserError(
                self.env._(
                    "%(bills)s could not be computed: %(error)s",
                    bills=", ".join(broken.mapped("name")),
                    error=broken[0].error,
                )
            )
        for bill in bills:
            bill._dispatch_open_lines()
        return True

    def _dispatch_open_lines(self):
        """Collect this bill's lines not collected yet: each unit's open account is looked up now; a share of
        nothing is marked so, one of a unit without an open account stays on the line (``no_account``)."""
        self.ensure_one()
        lines = self.line_ids.filtered(lambda li: li.state in ("draft", "no_account"))
        accounts = self._accounts_of(lines.unit_id)
        currency = self.currency_id
        zero = lines.filtered(lambda li: currency.is_zero(li.amount))
        internal(zero).write({"state": "nothing", "account_id": False})
        lines -= zero
        without = lines.filtered(lambda li: li.unit_id.id not in accounts)
        internal(without).write({"state": "no_account", "account_id": False})
        lines -= without
        update_rows(lines, ("account_id",), [(line.id, accounts[line.unit_id.id].id) for line in lines])
        lines.invalidate_recordset(["account_id", "partner_id"])
        if self.collection == "invoice":
            self._dispatch_invoices(lines)
        else:
            self._dispatch_ledger(lines)
        if self.state == "draft":
            internal(self).write(
                {
                    "state": "dispatched",
                    "dispatched_at": fields.Datetime.now(),
                    "dispatched_by_id": self.env.uid,
                }
            )

    def _accounts_of(self, units):
        """``{unit id: account}``: the open or suspended account covering each unit."""
        accounts = (
            self.env["prepaid.account"]
            .sudo()
            .search([("unit_ids", "in", units.ids), ("state", "in", LIVE_ACCOUNT_STATES)], order="id")
        )
        return {unit.id: account for account in accounts for unit in account.unit_ids if unit in units}

    def _dispatch_ledger(self, lines):
        self.ensure_one()
        if not lines:
            return
        now = fields.Datetime.now()
        vals_list = [
            {
                "account_id": line.account_id.id,
                "kind": "apportionment",
                "amount": -line.amount,
                "idempotency_key": ledger_key(self.id, line.unit_id.id),
                "date": now,
                "utility": self.utility,
                "res_model": self._name,
                "res_id": self.id,
            }
            for line in lines
        ]
        self.env["prepaid.account"].sudo()._post_ledger(vals_list)
        keys = {ledger_key(self.id, line.unit_id.id): line for line in lines}
        ledger = self.env["prepaid.ledger"].sudo().search([("idempotency_key", "in", list(keys))])
        update_rows(
            lines,
            ("state", "ledger_id"),
            [(keys[entry.idempotency_key].id, "posted", entry.id) for entry in ledger],
        )
        lines.invalidate_recordset(["state", "ledger_id"])

    def _dispatch_invoices(self, lines):
        """One posted customer invoice per tenant, a line per unit, on the rule's product."""
        self.ensure_one()
        if not lines:
            return
        rule = self.rule_id.sudo()
        by_partner = defaultdict(lambda: self.env["prepaid.apportionment.bill.line"])
        for line in lines:
            by_partner[line.account_id.partner_id] |= line
        Move = self.env["account.move"].sudo().with_company(self.company_id)
        vals_list = []
        groups = []
        for partner, partner_lines in by_partner.items():
            groups.append(partner_lines)
            vals_list.append(
                {
                    "move_type": "out_invoice",
                    "partner_id": partner.id,
                    "company_id": self.company_id.id,
                    "invoice_date": fields.Date.context_today(self),
                    "invoice_origin": self.name,
                    "ref": f"appt:{self.id}:{partner.id}",
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "product_id": rule.product_id.id,
                                "name": f"{self.name} - {line.unit_id.display_name}",
                                "quantity": 1.0,
                                "price_unit": line.amount,
                            }
                        )
                        for line in partner_lines
                    ],
                }
            )
        moves = Move.create(vals_list)
        moves.action_post()
        for move, partner_lines in zip(moves, groups, strict=True):
            internal(partner_lines).write({"state": "invoiced", "move_id": move.id})
