import logging
from datetime import UTC, datetime, timedelta

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_manager
from odoo.exceptions import AccessError, UserError, ValidationError

from prepaid_engine.calendar import cycle_bounds

from .prepaid_property import naive_utc

_logger = logging.getLogger(__name__)

SOURCE_SELECTION = [
    ("manual", "Manual Coefficients"),
    ("consumption", "Consumption Share"),
    ("area", "Floor Area"),
    ("fixed", "Fixed Amount per Unit"),
]
COLLECTION_SELECTION = [("ledger", "Prepaid Balance Deduction"), ("invoice", "Customer Invoice")]
UTILITY_SELECTION = [("electricity", "Electricity"), ("water", "Water")]
MAX_PERIODS_PER_RUN = 12  # closed periods one cron run bills per rule (catching up after a long stop)
CRON_BATCH = 50  # rules per cron call


class PrepaidApportionmentRule(models.Model):
    """How the cost of a building's (or site's) common meters is shared over its units each settlement cycle.

    The arithmetic is the engine's (:func:`prepaid_engine.billing.rules.apportion_common`); the rule only says
    which meters, which units, which coefficient source, what price and how the shares are collected. Every
    closed cycle of the property gives one :class:`prepaid.apportionment.bill` (database UNIQUE on rule and
    period start), drafted by the monthly cron and dispatched by a manager (or at once, ``auto_dispatch``)."""

    _name = "prepaid.apportionment.rule"
    _description = "Apportionment Rule"
    _inherit = ["mail.thread"]
    _order = "property_id, name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company, tracking=True
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    active = fields.Boolean(default=True, tracking=True)
    property_id = fields.Many2one(
        "prepaid.property",
        string="Building / Site",
        required=True,
        index=True,
        check_company=True,
        domain="[('kind', 'in', ('building', 'site'))]",
        tracking=True,
        help="Whose settlement calendar gives the periods, and whose units share the cost by default.",
    )
    utility = fields.Selection(UTILITY_SELECTION, required=True, default="electricity", tracking=True)
    meter_ids = fields.Many2many(
        "prepaid.meter",
        "prepaid_apportionment_rule_meter_rel",
        "rule_id",
        "meter_id",
        string="Common Meters",
        check_company=True,
        domain="[('is_common', '=', True), ('utility', '=', utility)]",
        help="Lift, corridor, pump or master meters whose period consumption is the common cost.",
    )
    unit_ids = fields.Many2many(
        "prepaid.property",
        "prepaid_apportionment_rule_unit_rel",
        "rule_id",
        "unit_id",
        string="Units",
        check_company=True,
        domain="[('kind', '=', 'unit')]",
        help="The units that share the cost. Empty: every active unit of the building or site.",
    )
    source = fields.Selection(
        SOURCE_SELECTION,
        string="Coefficient Source",
        required=True,
        default="area",
        tracking=True,
        help="Manual: the coefficients of the lines (only their ratios matter). Consumption: each unit's "
        "consumption of the same utility in the period. Area: each unit's floor area. Fixed: each unit owes "
        "a fixed amount (its line's, else the rule's).",
    )
    line_ids = fields.One2many("prepaid.apportionment.rule.line", "rule_id", string="Coefficients", copy=True)
    fixed_amount = fields.Monetary(string="Fixed Amount per Unit", tracking=True)
    price = fields.Float(
        string="Price per Unit of Measure",
        digits=(16, 4),
        tracking=True,
        help="Price per kWh or m³ of the common meters' consumption (the cost of a bill unless its cost is "
        "entered by hand).",
    )
    loss_enabled = fields.Boolean(
        string="Apportion Loss",
        tracking=True,
        help="Also share the loss between a master meter and its sub-meters (master minus the sum of the "
        "sub-meters), priced at the loss price, by the same coefficients.",
    )
    master_meter_id = fields.Many2one(
        "prepaid.meter", check_company=True, domain="[('utility', '=', utility)]"
    )
    sub_meter_ids = fields.Many2many(
        "prepaid.meter",
        "prepaid_apportionment_rule_sub_meter_rel",
        "rule_id",
        "meter_id",
        string="Sub-meters",
        check_company=True,
        domain="[('utility', '=', utility)]",
    )
    loss_price = fields.Float(digits=(16, 4), help="Price per kWh or m³ of the loss; empty: the price.")
    collection = fields.Selection(
        COLLECTION_SELECTION,
        required=True,
        default="ledger",
        tracking=True,
        help="Deducted from the tenants' prepaid balances (ledger kind Apportionment, booked in the daily "
        "summary entry against the utility's revenue) or billed on a posted customer invoice per tenant.",
    )
    product_id = fields.Many2one(
        "product.product",
        string="Invoice Product",
        check_company=True,
        help="Service product of the invoices (its income account and taxes).",
    )
    auto_dispatch = fields.Boolean(
        help="Dispatch each new bill at once instead of leaving it as a draft for review."
    )
    date_start = fields.Date(
        string="First Period From",
        default=fields.Date.context_today,
        required=True,
        help="Periods that start before this day are not billed.",
    )
    bill_ids = fields.One2many("prepaid.apportionment.bill", "rule_id", string="Bills")
    bill_count = fields.Integer(compute="_compute_bill_count")
    note = fields.Html()

    @api.depends("bill_ids")
    def _compute_bill_count(self):
        counts = dict(
            self.env["prepaid.apportionment.bill"]._read_group(
                [("rule_id", "in", self.ids)], ["rule_id"], ["__count"]
            )
        )
        for rule in self:
            rule.bill_count = counts.get(rule, 0)

    # ------------------------------------------------------------------ constraints

    @api.constrains("meter_ids", "utility", "master_meter_id", "sub_meter_ids", "loss_enabled", "source")
    def _check_meters(self):
        for rule in self:
            meters = rule.meter_ids | rule.master_meter_id | rule.sub_meter_ids
            if meters.filtered(lambda m, rule=rule: m.utility != rule.utility):
                raise ValidationError(
                    self.env._("The meters of %(rule)s must measure its utility.", rule=rule.display_name)
                )
            if rule.meter_ids.filtered(lambda m: not m.is_common):
                raise ValidationError(
                    self.env._(
                        "Only common meters can be the common meters of %(rule)s.", rule=rule.display_name
                    )
                )
            if rule.loss_enabled and (not rule.master_meter_id or not rule.sub_meter_ids):
                raise ValidationError(
                    self.env._(
                        "%(rule)s apportions a loss: give its master meter and sub-meters.",
                        rule=rule.display_name,
                    )
                )
            if rule.loss_enabled and rule.source == "fixed":
                raise ValidationError(
                    self.env._("A fixed-amount apportionment has no coefficients to share a loss by.")
                )
            if rule.master_meter_id and rule.master_meter_id in rule.sub_meter_ids:
                raise ValidationError(self.env._("The master meter cannot be one of its own sub-meters."))

    @api.constrains("collection", "product_id")
    def _check_product(self):
        for rule in self.filtered(lambda r: r.collection == "invoice" and not r.product_id):
            raise ValidationError(
                self.env._("%(rule)s bills by invoice: give it an invoice product.", rule=rule.display_name)
            )

    # ------------------------------------------------------------------ what the rule covers

    def _prepaid_units(self):
        """The units that share the cost: the explicit ones, else every active unit under the property."""
        self.ensure_one()
        if self.unit_ids:
            return self.unit_ids.sorted("id")
        return (
            self.env["prepaid.property"]
            .sudo()
            .search([("kind", "=", "unit"), ("id", "child_of", self.property_id.id)], order="id")
        )

    def _prepaid_calendar(self):
        self.ensure_one()
        return self.property_id.sudo()._prepaid_settlement_calendar()

    def _closed_periods(self, now=None):
        """The periods (``(start, end)``, naive UTC) of the property's calendar that this rule bills and that
        are closed: they start on or after ``date_start`` (in the property's zone) and the property's cycle
        closing (every meter settled up to the cycle start) got past their end. Oldest first, at most
        :data:`MAX_PERIODS_PER_RUN`."""
        self.ensure_one()
        now = now or datetime.now(UTC)
        prop = self.property_id.sudo()
        closed_at = prop.settlement_closed_at
        if not closed_at:
            return []
        limit = min(now, closed_at.replace(tzinfo=UTC))
        calendar = self._prepaid_calendar()
        periods = []
        start, end = cycle_bounds(calendar, limit - timedelta(microseconds=1))
        first_day = self.date_start
        while len(periods) < MAX_PERIODS_PER_RUN:
            if end > limit:
                start, end = cycle_bounds(calendar, start - timedelta(microseconds=1))
                continue
            if start.astimezone(calendar._zone).date() < first_day:
                break
            periods.append((naive_utc(start), naive_utc(end)))
            start, end = cycle_bounds(calendar, start - timedelta(microseconds=1))
        return periods[::-1]

    # ------------------------------------------------------------------ bills

    @api.private
    def _create_bills(self, now=None):
        """Draft (and compute) the bills of the closed periods these rules have none for yet; dispatch them
        at once for the rules that say so. Idempotent: one bill per rule and period (UNIQUE), a period that
        has one is skipped. Returns the new bills."""
        Bill = self.env["prepaid.apportionment.bill"].sudo()
        created = Bill.browse()
        for rule in self.sudo():
            periods = rule._closed_periods(now)
            if not periods:
                continue
            have = set(Bill.search([("rule_id", "=", rule.id)]).mapped("period_start"))
            todo = [(start, end) for start, end in periods if start not in have]
            if not todo:
                continue
            bills = Bill._create_for(rule, todo)
            created |= bills
            if rule.auto_dispatch:
                bills.filtered(lambda b: b.state == "draft" and not b.error)._dispatch()
        return created

    @api.model
    def _cron_create_bills(self, batch=CRON_BATCH):
        """Daily: draft the bills of the periods that closed (one bill per rule and period). Each rule runs
        in a savepoint: one rule that fails (a missing coefficient, a unit without area) is logged and left
        for the next run, the others go on."""
        rules = self.sudo().search([("active", "=", True)], order="id")
        done = 0
        for rule in rules:
            try:
                with self.env.cr.savepoint():
                    rule.with_company(rule.company_id)._create_bills()
            except (UserError, ValidationError) as exc:
                _logger.warning("apportionment rule %s: %s", rule.display_name, exc)
            done += 1
        self.env["ir.cron"]._notify_progress(done=done, remaining=0)
        return done

    def action_create_bills(self):
        """Managers: draft the bills of the closed periods now (what the daily cron does)."""
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can create apportionment bills."))
        self.check_access("write")
        bills = self._create_bills()
        if not bills:
            return self.env["prepaid.gateway"]._notify(
                self.env._("Apportionment"),
                self.env._("No closed period without a bill."),
                "info",
            )
        return self.action_view_bills()

    def action_view_bills(self):
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_apportionment_bill_action"
        )
        action["domain"] = [("rule_id", "in", self.ids)]
        if len(self) == 1:
            action["context"] = {"default_rule_id": self.id}
        return action
