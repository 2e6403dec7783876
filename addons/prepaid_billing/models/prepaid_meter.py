import logging
from decimal import Decimal, InvalidOperation

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from .prepaid_settlement import settlement_savepoint

_logger = logging.getLogger(__name__)

SETTLE_BATCH = 2000  # meters per settlement cron call


class PrepaidMeter(models.Model):
    _inherit = "prepaid.meter"
    _prepaid_manager_fields = (
        "rollover_at",
        "is_common",
        "common_property_id",
    )
    _prepaid_target_fields = ("common_property_id",)

    rollover_at = fields.Char(
        string="Register Limit",
        help="The largest value the index register shows before it wraps to zero, written to the register's "
        "resolution (e.g. 999999.99). Empty: a falling index is never read as a roll-over.",
    )
    settlement_cursor_ids = fields.One2many("prepaid.settlement.cursor", "meter_id", readonly=True)
    settled_until = fields.Datetime(compute="_compute_settlement")
    settlement_error = fields.Char(compute="_compute_settlement")
    cycle_quantity = fields.Float(compute="_compute_settlement", string="Cycle Consumption", digits=(16, 3))
    cycle_amount = fields.Monetary(compute="_compute_settlement", string="Cycle Charge")
    replacement_ids = fields.One2many("prepaid.meter.replacement", "meter_id", string="Replacements")
    is_common = fields.Boolean(
        string="Common Meter",
        tracking=True,
        help="Meters a common area (lift, corridor, pump, master water meter): no tenant account; its "
        "consumption is shared over the units by apportionment rules.",
    )
    common_property_id = fields.Many2one(
        "prepaid.property",
        string="Common Area Of",
        domain="[('kind', 'in', ('building', 'site'))]",
        check_company=True,
        index="btree_not_null",
        tracking=True,
        help="The building or site whose common area the meter measures.",
    )
    apportionment_rule_ids = fields.Many2many(
        "prepaid.apportionment.rule",
        "prepaid_apportionment_rule_meter_rel",
        "meter_id",
        "rule_id",
        string="Apportionment Rules",
        readonly=True,
    )
    apportionment_rule_count = fields.Integer(compute="_compute_apportionment_rule_count")

    @api.depends("unit_id.building_id", "gateway_id.property_id.building_id", "common_property_id")
    def _compute_building_id(self):
        res = super()._compute_building_id()
        for meter in self.filtered(lambda m: not m.unit_id and m.common_property_id):
            meter.building_id = meter.common_property_id.building_id or meter.common_property_id
        return res

    def _compute_apportionment_rule_count(self):
        rules = self.env["prepaid.apportionment.rule"]
        for meter in self:
            meter.apportionment_rule_count = rules.search_count(
                [
                    "|",
                    "|",
                    ("meter_ids", "in", meter.ids),
                    ("master_meter_id", "=", meter.id),
                    ("sub_meter_ids", "in", meter.ids),
                ]
            )

    @api.constrains("is_common", "unit_id", "account_id")
    def _check_common_meter(self):
        for meter in self.filtered("is_common"):
            if meter.unit_id or meter.account_id:
                raise ValidationError(
                    self.env._(
                        "Common meter %(meter)s cannot belong to a unit or a tenant account: its consumption "
                        "is apportioned.",
                        meter=meter.display_name,
                    )
                )

    def action_view_apportionment_rules(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_apportionment_rule_action"
        )
        action["domain"] = [
            "|",
            "|",
            ("meter_ids", "in", self.ids),
            ("master_meter_id", "=", self.id),
            ("sub_meter_ids", "in", self.ids),
        ]
        action["context"] = {"default_utility": self.utility, "default_property_id": self.building_id.id}
        return action

    @api.depends("settlement_cursor_ids")
    def _compute_settlement(self):
        for meter in self:
            cursor = meter.settlement_cursor_ids[:1]
            meter.settled_until = cursor.read_at
            meter.settlement_error = cursor.last_error
            meter.cycle_quantity = cursor.cycle_quantity
            meter.cycle_amount = cursor.cycle_amount

    @api.constrains("rollover_at")
    def _check_rollover_at(self):
        for meter in self.filtered("rollover_at"):
            try:
                value = Decimal(meter.rollover_at.strip())
            except InvalidOperation:
                value = None
            if value is None or not value.is_finite() or value <= 0:
                raise ValidationError(
                    self.env._(
                        "The register limit of %(meter)s must be a positive number such as 999999.99.",
                        meter=meter.display_name,
                    )
                )

    # ------------------------------------------------------------------ settlement

    @api.private
    def _settle(self):
        """Settle the new readings of these meters (all meters with unsettled readings when empty): one ledger
        deduction per rated interval, cursors moved in the same transaction. See ``prepaid.settlement``."""
        meters = self or self.browse(self.env["prepaid.settlement"]._get_meter_ids_to_settle())
        return self.env["prepaid.settlement"].sudo()._settle_meters(meters.ids)

    @api.model
    def _cron_settle(self, batch=SETTLE_BATCH):
        """Settle a batch of meters that have unsettled readings; the cron runner commits after each call and
        calls again while progress reports work remaining."""
        Settlement = self.env["prepaid.settlement"].sudo()
        todo = Settlement._get_meter_ids_to_settle(limit=batch)
        if todo:
            with settlement_savepoint(self.env) as outcome:
                Settlement._settle_meters(todo)
            if outcome.conflict:
                # Another transaction is settling some of these meters: the next run takes them again.
                _logger.info(
                    "settlement of %s meters left for the next run: %s", len(todo), outcome.conflict.pgerror
                )
                self.env["ir.cron"]._notify_progress(done=0, remaining=0)
                return 0
        remaining = Settlement._count_meters_to_settle() if len(todo) == batch else 0
        self.env["ir.cron"]._notify_progress(done=len(todo), remaining=remaining)
        return len(todo)

    def action_settle_now(self):
        self.check_access("write")
        with settlement_savepoint(self.env) as outcome:
            stats = self._settle()
        if outcome.conflict:
            # Another click, poll or cron is settling these meters right now: nothing is charged twice, and
            # what it leaves is settled by the next run.
            return self.env["prepaid.gateway"]._notify(
                self.env._("Settlement"),
                self.env._("These meters are being settled by another process right now: nothing to do."),
                "info",
            )
        return self.env["prepaid.gateway"]._notify(
            self.env._("Settlement"),
            self.env._(
                "%(readings)s readings settled into %(lines)s ledger lines, %(errors)s errors.",
                readings=stats["readings"],
                lines=stats["lines"],
                errors=stats["errors"],
            ),
            "warning" if stats["errors"] else "success",
        )

    def _prepaid_next_purchase_count(self):
        """The purchase count the next recharge of this meter carries: one more than the highest the meter
        confirmed or any live recharge already carries."""
        self.ensure_one()
        self.env["prepaid.meter.command"].flush_model(["meter_id", "kind", "state", "purchase_count"])
        queued = self.env.execute_query(
            SQL(
                """SELECT COALESCE(MAX(purchase_count), 0) FROM prepaid_meter_command
                    WHERE meter_id = %s AND kind = 'recharge' AND state IN ('queued', 'sent', 'done')""",
                self.id,
            )
        )[0][0]
        return max(self.purchase_count or 0, queued) + 1

    def action_view_replacements(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_meter_replacement_action"
        )
        action["domain"] = [("meter_id", "=", self.id)]
        action["context"] = {"default_meter_id": self.id}
        return action
