from odoo import models
from odoo.addons.prepaid_base.models.prepaid_guard import internal


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    def _prepaid_supply_command_vals(self, meters, kinds, reason):
        """A top-up never lifts a load trip or a time-control window: the balance's restore leaves the meters
        tripped for their load (load control closes them after its delay, or a manager does) and the meters
        a schedule wants off now (flagged: time control closes them when the window ends). Cutting is for
        every meter."""
        if "close" in kinds.values():
            meters = meters.filtered(lambda m: m.load_state == "normal" and not m.time_control_off)
            held = self.env["prepaid.time.schedule"]._prepaid_wanted_off(meters)
            if held:
                internal(meters.filtered(lambda m: m.id in held).sudo()).write({"time_control_off": True})
                meters = meters.filtered(lambda m: m.id not in held)
        return super()._prepaid_supply_command_vals(meters, kinds, reason)
