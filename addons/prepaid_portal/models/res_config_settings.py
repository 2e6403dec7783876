from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_portal_min_amount = fields.Monetary(
        related="company_id.prepaid_portal_min_amount", readonly=False, currency_field="currency_id"
    )
    prepaid_portal_max_amount = fields.Monetary(
        related="company_id.prepaid_portal_max_amount", readonly=False, currency_field="currency_id"
    )
    prepaid_portal_preset_amounts = fields.Char(
        related="company_id.prepaid_portal_preset_amounts", readonly=False
    )
