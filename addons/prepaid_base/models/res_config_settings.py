from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_currency_id = fields.Many2one(
        "res.currency", related="company_id.currency_id", string="Currency of Prepaid Amounts"
    )

    prepaid_warn_level_1 = fields.Monetary(
        related="company_id.prepaid_warn_level_1", readonly=False, currency_field="prepaid_currency_id"
    )
    prepaid_warn_level_2 = fields.Monetary(
        related="company_id.prepaid_warn_level_2", readonly=False, currency_field="prepaid_currency_id"
    )
    prepaid_warn_level_3 = fields.Monetary(
        related="company_id.prepaid_warn_level_3", readonly=False, currency_field="prepaid_currency_id"
    )
    prepaid_cutoff_level = fields.Monetary(
        related="company_id.prepaid_cutoff_level", readonly=False, currency_field="prepaid_currency_id"
    )
    prepaid_overdraft_limit = fields.Monetary(
        related="company_id.prepaid_overdraft_limit", readonly=False, currency_field="prepaid_currency_id"
    )
