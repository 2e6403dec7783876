from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_manager
from odoo.addons.prepaid_base.tools.numbers import check_numbers
from odoo.exceptions import AccessError


class PrepaidTemporarySupplyWizard(models.TransientModel):
    """Managers: start the temporary supply of unopened meters, kept on or for a preset quantity."""

    _name = "prepaid.temporary.supply.wizard"
    _description = "Start Temporary Supply"

    meter_ids = fields.Many2many("prepaid.meter", string="Meters", required=True)
    mode = fields.Selection(
        [("kept_on", "Kept On"), ("quantity", "Preset Quantity")],
        required=True,
        default="kept_on",
        help="Kept on: keep-power (electricity) or valve held open until the account opens. Preset quantity: "
        "the supply closes, and the platform cuts it once the meter used the quantity.",
    )
    quantity = fields.Float(digits=(16, 3), help="kWh or m3 the meter may use before its account opens.")

    @api.model_create_multi
    def create(self, vals_list):
        check_numbers(self, vals_list, ["quantity"])
        return super().create(vals_list)

    def write(self, vals):
        check_numbers(self, [vals], ["quantity"])
        return super().write(vals)

    def action_start(self):
        self.ensure_one()
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can start a temporary supply."))
        self.meter_ids.check_access("write")
        self.meter_ids.sudo()._start_temporary_supply(self.mode, self.quantity)
        return {"type": "ir.actions.act_window_close"}
