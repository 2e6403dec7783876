from decimal import Decimal, InvalidOperation

from odoo import api, fields, models
from odoo.exceptions import ValidationError

# At most this many preset amounts are shown as buttons on the recharge page.
MAX_PRESETS = 8


def parse_amounts(text):
    """The amounts of a comma-separated list ("50, 100, 200"), as Decimals; raise ValueError on anything
    that is not a positive finite number."""
    amounts = []
    for part in (text or "").replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = Decimal(part)
        except InvalidOperation as error:
            raise ValueError(part) from error
        if not value.is_finite() or value <= 0:
            raise ValueError(part)
        amounts.append(value)
    return amounts


class ResCompany(models.Model):
    _inherit = "res.company"

    prepaid_portal_min_amount = fields.Monetary(
        string="Minimum Online Recharge",
        currency_field="currency_id",
        default=10.0,
        help="The smallest amount a tenant may recharge on the portal.",
    )
    prepaid_portal_max_amount = fields.Monetary(
        string="Maximum Online Recharge",
        currency_field="currency_id",
        default=5000.0,
        help="The largest amount a tenant may recharge on the portal in one payment.",
    )
    prepaid_portal_preset_amounts = fields.Char(
        string="Preset Recharge Amounts",
        default="50,100,200,500",
        help="Comma-separated amounts shown as one-tap buttons on the recharge page.",
    )

    @api.constrains("prepaid_portal_min_amount", "prepaid_portal_max_amount", "prepaid_portal_preset_amounts")
    def _check_prepaid_portal_amounts(self):
        for company in self:
            low, high = company.prepaid_portal_min_amount, company.prepaid_portal_max_amount
            if low <= 0 or high < low:
                raise ValidationError(
                    self.env._(
                        "The online recharge limits must be positive, the maximum at least the minimum."
                    )
                )
            try:
                presets = parse_amounts(company.prepaid_portal_preset_amounts)
            except ValueError as error:
                raise ValidationError(
                    self.env._("'%(value)s' is not an amount (preset recharge amounts).", value=error.args[0])
                ) from error
            if len(presets) > MAX_PRESETS or any(
                p < Decimal(str(low)) or p > Decimal(str(high)) for p in presets
            ):
                raise ValidationError(
                    self.env._(
                        "At most %(count)s preset recharge amounts, each between the minimum and the "
                        "maximum.",
                        count=MAX_PRESETS,
                    )
                )

    def _prepaid_portal_presets(self):
        """The preset amounts of the recharge page (floats, in the company's currency)."""
        self.ensure_one()
        try:
            return [float(value) for value in parse_amounts(self.prepaid_portal_preset_amounts)]
        except ValueError:
            return []
