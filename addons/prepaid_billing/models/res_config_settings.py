from odoo import api, fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # Not a related field: it is written in set_values(), after the account fields chosen in the same save,
    # so that turning prepaid on reuses them instead of creating accounts the accountant did not want.
    prepaid_enabled = fields.Boolean(compute="_compute_prepaid_enabled", store=True, readonly=False)
    prepaid_anomaly_zero_days = fields.Integer(related="company_id.prepaid_anomaly_zero_days", readonly=False)
    prepaid_anomaly_spike_factor = fields.Float(
        related="company_id.prepaid_anomaly_spike_factor", readonly=False
    )
    prepaid_anomaly_spike_floor = fields.Float(
        related="company_id.prepaid_anomaly_spike_floor", readonly=False
    )
    prepaid_anomaly_spike_min_days = fields.Integer(
        related="company_id.prepaid_anomaly_spike_min_days", readonly=False
    )
    prepaid_anomaly_not_read_cycles = fields.Integer(
        related="company_id.prepaid_anomaly_not_read_cycles", readonly=False
    )
    prepaid_anomaly_line_loss_percent = fields.Float(
        related="company_id.prepaid_anomaly_line_loss_percent", readonly=False
    )
    prepaid_anomaly_balance_tolerance = fields.Monetary(
        related="company_id.prepaid_anomaly_balance_tolerance", readonly=False
    )
    prepaid_has_chart = fields.Boolean(
        string="Company Has a Chart of Accounts", compute="_compute_prepaid_has_chart"
    )
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
    prepaid_receipt_layout = fields.Selection(related="company_id.prepaid_receipt_layout", readonly=False)
    prepaid_fee_no_cutoff = fields.Boolean(related="company_id.prepaid_fee_no_cutoff", readonly=False)

    @api.depends("company_id")
    def _compute_prepaid_enabled(self):
        for settings in self:
            settings.prepaid_enabled = settings.company_id.prepaid_enabled

    @api.depends("company_id")
    def _compute_prepaid_has_chart(self):
        for settings in self:
            settings.prepaid_has_chart = bool(settings.company_id.chart_template)

    def set_values(self):
        res = super().set_values()
        for settings in self:
            if settings.prepaid_enabled != settings.company_id.prepaid_enabled:
                settings.company_id.prepaid_enabled = settings.prepaid_enabled
        return res

    def action_prepaid_billing_setup(self):
        """Turn prepaid on for the company and create (or find) what it misses: accounts, journals, the
        top-up product."""
        self.ensure_one()
        self.company_id.prepaid_enabled = True
        self.company_id._prepaid_ensure_setup()
        return {"type": "ir.actions.client", "tag": "reload"}
