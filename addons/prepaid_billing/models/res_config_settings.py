from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_deposit_account_id = fields.Many2one(
        related="company_id.prepaid_deposit_account_id", readonly=False, check_company=True
    )
    prepaid_electricity_revenue_account_id = fields.Many2one(
        related="company_id.prepaid_electricity_revenue_account_id", readonly=False, check_company=True
    )
    prepaid_water_revenue_account_id = fields.Many2one(
        related="company_id.prepaid_water_revenue_account_id", readonly=False, check_company=True
    )
    prepaid_fee_revenue_account_id = fields.Many2one(
        related="company_id.prepaid_fee_revenue_account_id", readonly=False, check_company=True
    )
    prepaid_adjustment_account_id = fields.Many2one(
        related="company_id.prepaid_adjustment_account_id", readonly=False, check_company=True
    )
    prepaid_journal_id = fields.Many2one(
        related="company_id.prepaid_journal_id", readonly=False, check_company=True
    )
    prepaid_topup_product_id = fields.Many2one(
        related="company_id.prepaid_topup_product_id", readonly=False, check_company=True
    )

    def action_prepaid_billing_setup(self):
        """Create the missing prepaid accounts, journals and top-up product of the company."""
        self.ensure_one()
        self.company_id._prepaid_billing_setup()
        return {"type": "ir.actions.client", "tag": "reload"}
