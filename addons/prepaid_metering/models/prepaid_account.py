from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal

LIVE_STATES = ("open", "suspended")


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    meter_ids = fields.One2many("prepaid.meter", "account_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")

    def _compute_meter_count(self):
        counts = dict(
            self.env["prepaid.meter"]._read_group(
                [("account_id", "in", self.ids)], ["account_id"], ["__count"]
            )
        )
        for account in self:
            account.meter_count = counts.get(account, 0)

    def write(self, vals):
        result = super().write(vals)
        if "unit_ids" in vals:
            self._prepaid_link_meters()
        return result

    def _on_state_changed(self, old_states):
        result = super()._on_state_changed(old_states)
        self._prepaid_link_meters()
        return result

    @api.private
    def _prepaid_link_meters(self):
        """The meters of the units of these live accounts bill them: a meter of such a unit that bills no
        live account (none yet, or the closed account of a former tenant) is linked to the unit's live
        account. Run when an account opens or its units change."""
        live = self.filtered(lambda a: a.state in LIVE_STATES and a.unit_ids).sudo()
        if not live:
            return
        Meter = self.env["prepaid.meter"].sudo()
        meters = Meter.search(
            [
                ("unit_id", "in", live.unit_ids.ids),
                "|",
                ("account_id", "=", False),
                ("account_id.state", "not in", LIVE_STATES),
            ]
        )
        for account in live:
            mine = meters.filtered(lambda m, account=account: m.unit_id in account.unit_ids)
            if mine:
                internal(mine).write({"account_id": account.id})

    def action_view_meters(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_metering.prepaid_meter_action")
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id, "default_company_id": self.company_id.id}
        return action
