from odoo import models
from odoo.addons.prepaid_base.models.prepaid_guard import internal


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    def _prepaid_queue_supply(self, kinds, urgent):
        """A balance restore during a time-control window: the meters a schedule wants off now are flagged
        (time control closes them when the window ends) before the restore is queued, once for the batch."""
        if "close" in kinds.values():
            meters = self._prepaid_platform_meters().filtered(
                lambda m: m.load_state == "normal" and not m.time_control_off
            )
            held = self.env["prepaid.time.schedule"]._prepaid_wanted_off(meters)
            if held:
                internal(meters.filtered(lambda m: m.id in held).sudo()).write({"time_control_off": True})
        return super()._prepaid_queue_supply(kinds, urgent)

    def _prepaid_supply_command_vals(self, meters, kinds, reason):
        """A top-up never lifts a load trip or a time-control window: the balance's restore leaves the meters
        tripped for their load (load control closes them after its delay, or a manager does) and those time
        control holds off (:meth:`_prepaid_queue_supply` flags them). Cutting is for every meter."""
        if "close" in kinds.values():
            meters = meters.filtered(lambda m: m.load_state == "normal" and not m.time_control_off)
        return super()._prepaid_supply_command_vals(meters, kinds, reason)
