from odoo import fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_manager
from odoo.exceptions import AccessError, UserError


class PrepaidLoadRestoreWizard(models.TransientModel):
    """A manager restores a meter tripped for its load, with a reason (in the meter's chatter)."""

    _name = "prepaid.load.restore.wizard"
    _description = "Restore After a Load Trip"

    meter_id = fields.Many2one("prepaid.meter", required=True, readonly=True)
    load_state = fields.Selection(related="meter_id.load_state")
    reason = fields.Text(required=True)

    def action_restore(self):
        self.ensure_one()
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers restore a meter tripped for its load."))
        self.meter_id.check_access("write")
        if not (self.reason or "").strip():
            raise UserError(self.env._("Say why the meter is restored."))
        self.meter_id.sudo()._prepaid_manager_restore(self.reason.strip())
        return {"type": "ir.actions.act_window_close"}
