import logging
from datetime import UTC, datetime

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_tariff import local_time

from prepaid_engine.calendar import Cycle, SettlementCalendar, cycle_bounds

from .prepaid_settlement import settlement_savepoint

_logger = logging.getLogger(__name__)

CLOSE_BATCH = 20  # buildings whose meters are settled per cron call


def naive_utc(value):
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


class PrepaidProperty(models.Model):
    _inherit = "prepaid.property"

    settlement_closed_at = fields.Datetime(
        string="Cycle Closed At",
        readonly=True,
        copy=False,
        help="Start of the current settlement cycle once the previous one is closed: every meter of the "
        "building was settled up to its last reading and tiers and free allowances restarted.",
    )

    apportionment_rule_count = fields.Integer(compute="_compute_apportionment_rule_count")

    def _compute_apportionment_rule_count(self):
        counts = dict(
            self.env["prepaid.apportionment.rule"]._read_group(
                [("property_id", "in", self.ids)], ["property_id"], ["__count"]
            )
        )
        for prop in self:
            prop.apportionment_rule_count = counts.get(prop, 0)

    def action_view_apportionment_rules(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_apportionment_rule_action"
        )
        action["domain"] = [("property_id", "=", self.id)]
        action["context"] = {"default_property_id": self.id}
        return action

    def _prepaid_settlement_calendar(self):
        """The engine's settlement calendar of this building (its cycle, day and local time, in its zone)."""
        self.ensure_one()
        return SettlementCalendar(
            cycle=Cycle(self.settlement_cycle or "monthly"),
            day=self.settlement_day or 1,
            time=local_time(self.settlement_time),
            tz=self.effective_tz or "UTC",
        )

    @api.model
    def _prepaid_default_calendar(self, company):
        """Calendar of meters without a building: monthly, on the 1st at midnight, in the company's zone."""
        return SettlementCalendar(cycle=Cycle.MONTHLY, day=1, tz=company.partner_id.tz or "UTC")

    def _prepaid_current_cycle_start(self, now=None):
        self.ensure_one()
        now = now or datetime.now(UTC)
        return cycle_bounds(self._prepaid_settlement_calendar(), now)[0]

    @api.model
    def _cron_close_cycles(self, batch=CLOSE_BATCH):
        """Close the settlement cycles that ended: settle every meter of each such building up to its last
        reading (the intervals before the cycle start are rated in the old cycle, those after it from a fresh
        state: tiers and free allowances restart) and remember the new cycle's start."""
        now = datetime.now(UTC)
        buildings = self.sudo().search([("kind", "in", ("building", "site"))], order="id")
        due = buildings.filtered(
            lambda b: (
                not b.settlement_closed_at
                or b.settlement_closed_at < naive_utc(b._prepaid_current_cycle_start(now))
            )
        )
        # A building that never closed a cycle (new, or just installed) has nothing to close: its meters start
        # their cycle at their first settlement. It only learns where the current cycle started; settling all
        # of its meters now would race the first polls for nothing.
        never = due.filtered(lambda b: not b.settlement_closed_at)
        for building in never:
            building.settlement_closed_at = naive_utc(building._prepaid_current_cycle_start(now))
        due -= never
        todo = due[:batch]
        Meter = self.env["prepaid.meter"].sudo()
        closed = 0
        for building in todo:
            meters = Meter.search([("building_id", "=", building.id)])
            with settlement_savepoint(self.env) as outcome:
                if meters:
                    meters._settle()
                building.settlement_closed_at = naive_utc(building._prepaid_current_cycle_start(now))
            if outcome.conflict:
                # A poll or another settlement holds some of its meters: the building stays due.
                _logger.info(
                    "closing the cycle of %s left for the next run: %s",
                    building.code,
                    outcome.conflict.pgerror,
                )
                continue
            closed += 1
        self.env["ir.cron"]._notify_progress(done=closed, remaining=len(due) - closed if closed else 0)
        return closed
