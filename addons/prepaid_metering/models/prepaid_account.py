from odoo import fields, models


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

    def action_view_meters(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_metering.prepaid_meter_action")
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id, "default_company_id": self.company_id.id}
        return action
