from odoo import api, fields, models

from .prepaid_tariff import PRICE_DIGITS, QUANTITY_DIGITS


class PrepaidTariffTier(models.Model):
    """One tier of a tiered tariff: from ``threshold`` (cumulative quantity within the settlement cycle)
    until the next tier's threshold, each unit costs ``price``."""

    _name = "prepaid.tariff.tier"
    _description = "Prepaid Tariff Tier"
    _order = "tariff_id, threshold, id"

    tariff_id = fields.Many2one("prepaid.tariff", required=True, index=True, ondelete="cascade")
    threshold = fields.Float(
        digits=QUANTITY_DIGITS,
        required=True,
        default=0.0,
        help="Cumulative quantity in the settlement cycle where this tier starts.",
    )
    price = fields.Float(digits=PRICE_DIGITS, required=True, default=0.0)
    unit = fields.Selection(related="tariff_id.unit", string="Unit of Measure")

    @api.constrains("threshold", "price", "tariff_id")
    def _check_tariff_tiers(self):
        self.tariff_id._check_engine_rules()
