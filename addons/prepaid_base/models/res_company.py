from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .prepaid_account import levels_ordered


class ResCompany(models.Model):
    _inherit = "res.company"

    # Defaults copied onto every new prepaid account of the company (see prepaid.account).
    prepaid_warn_level_1 = fields.Monetary(
        string="Default Warning Level 1",
        currency_field="currency_id",
        default=50.0,
        help="First low-balance warning for new prepaid accounts.",
    )
    prepaid_warn_level_2 = fields.Monetary(
        string="Default Warning Level 2",
        currency_field="currency_id",
        default=20.0,
        help="Second low-balance warning for new prepaid accounts.",
    )
    prepaid_warn_level_3 = fields.Monetary(
        string="Default Warning Level 3",
        currency_field="currency_id",
        default=10.0,
        help="Last low-balance warning for new prepaid accounts.",
    )
    prepaid_cutoff_level = fields.Monetary(
        string="Default Cut-off Level",
        currency_field="currency_id",
        default=0.0,
        help="Balance at which the supply of new prepaid accounts is cut (before any overdraft allowance).",
    )
    prepaid_overdraft_limit = fields.Monetary(
        string="Default Overdraft Allowance",
        currency_field="currency_id",
        default=0.0,
        help="How far below the cut-off level new prepaid accounts may go before the supply is cut.",
    )

    @api.constrains(
        "prepaid_warn_level_1",
        "prepaid_warn_level_2",
        "prepaid_warn_level_3",
        "prepaid_cutoff_level",
        "prepaid_overdraft_limit",
    )
    def _check_prepaid_levels(self):
        for company in self:
            if not levels_ordered(
                company.prepaid_warn_level_1,
                company.prepaid_warn_level_2,
                company.prepaid_warn_level_3,
                company.prepaid_cutoff_level,
            ):
                raise ValidationError(
                    self.env._(
                        "Default prepaid levels of %(company)s must be ordered: "
                        "warning 1 > warning 2 > warning 3 >= cut-off.",
                        company=company.display_name,
                    )
                )
            if company.prepaid_overdraft_limit < 0:
                raise ValidationError(
                    self.env._(
                        "The default overdraft allowance of %(company)s cannot be negative.",
                        company=company.display_name,
                    )
                )
