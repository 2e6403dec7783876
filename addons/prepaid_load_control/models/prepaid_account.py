from odoo import models


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    def _prepaid_supply_command_vals(self, meters, kinds, reason):
        """A top-up never lifts a load trip: the balance's restore leaves the meters tripped for their load
        (load control closes them after its delay, or a manager does). Cutting is for every meter."""
        if "close" in kinds.values():
            meters = meters.filtered(lambda m: m.load_state == "normal")
        return super()._prepaid_supply_command_vals(meters, kinds, reason)
