from odoo import fields, models

from .prepaid_tariff import PRICE_DIGITS


class PrepaidFeeItem(models.Model):
    """A periodic or one-off charge (rent, property fee, service fee) on properties and everything below
    them: a fixed amount, or a price per m² of each unit's area. Billing runs them on each building's
    settlement calendar."""

    _name = "prepaid.fee.item"
    _description = "Prepaid Fee Item"
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True)
    kind = fields.Selection(
        [
            ("rent", "Rent"),
            ("property_fee", "Property Fee"),
            ("service_fee", "Service Fee"),
            ("other", "Other"),
        ],
        required=True,
        default="property_fee",
    )
    calculation = fields.Selection(
        [("fixed", "Fixed Amount"), ("per_area", "Per m²")],
        required=True,
        default="fixed",
        help="Fixed: the same amount for each unit. Per m²: the unit price times the unit's area.",
    )
    amount = fields.Monetary(help="Amount charged to each unit (fixed calculation).")
    unit_price = fields.Float(string="Price per m²", digits=PRICE_DIGITS, help="Per m² calculation.")
    recurrence = fields.Selection(
        [("monthly", "Monthly"), ("one_off", "One-off")], required=True, default="monthly"
    )
    charge_mode = fields.Selection(
        [("deduct", "Deduct from Balance"), ("invoice", "Invoice")],
        required=True,
        default="deduct",
        help="Deduct: a ledger line on the tenant's prepaid account. Invoice: a customer invoice.",
    )
    property_ids = fields.Many2many(
        "prepaid.property",
        "prepaid_fee_item_property_rel",
        "fee_item_id",
        "property_id",
        string="Properties",
        check_company=True,
        help="The fee applies to the units of these properties and of everything below them.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id", string="Currency")
    active = fields.Boolean(default=True)
    note = fields.Text()

    _sql_constraints = [
        ("amount_positive", "CHECK(amount >= 0)", "A fee amount cannot be negative."),
        ("unit_price_positive", "CHECK(unit_price >= 0)", "A price per m² cannot be negative."),
    ]

    def _get_units(self):
        """The units the fee items apply to: units in their properties or below them."""
        return self.property_ids._get_units()
