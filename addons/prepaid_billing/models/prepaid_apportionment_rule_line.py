from odoo import api, fields, models
from odoo.exceptions import ValidationError


class PrepaidApportionmentRuleLine(models.Model):
    """A unit's own coefficient (manual rules) or fixed amount (fixed rules) on an apportionment rule."""

    _name = "prepaid.apportionment.rule.line"
    _description = "Apportionment Coefficient"
    _order = "rule_id, unit_id"
    _check_company_auto = True

    rule_id = fields.Many2one("prepaid.apportionment.rule", required=True, index=True, ondelete="cascade")
    company_id = fields.Many2one(related="rule_id.company_id", store=True)
    currency_id = fields.Many2one(related="rule_id.currency_id")
    unit_id = fields.Many2one(
        "prepaid.property", required=True, domain="[('kind', '=', 'unit')]", check_company=True
    )
    coefficient = fields.Float(digits=(16, 6), default=1.0, help="Weight of the unit (manual rules).")
    fixed_amount = fields.Monetary(help="What the unit owes each period (fixed rules); empty: the rule's.")

    _sql_constraints = [
        ("unit_uniq", "UNIQUE(rule_id, unit_id)", "A unit has one coefficient per rule."),
        ("coefficient_positive", "CHECK(coefficient >= 0)", "A coefficient cannot be negative."),
    ]

    @api.constrains("coefficient", "fixed_amount")
    def _check_amounts(self):
        for line in self:
            if line.fixed_amount < 0:
                raise ValidationError(self.env._("A fixed amount cannot be negative."))
