from odoo import api, fields, models

from ..tools.numbers import check_numbers
from .prepaid_tariff import PRICE_DIGITS

NUMBER_FIELDS = ("amount", "unit_price", "quantity")  # judged before the ORM (tools.numbers)


class PrepaidFeeItem(models.Model):
    """A periodic or one-off charge (rent, property fee, service fee) on properties and everything below
    them, or on chosen tenancies: a fixed amount, a price per m² of the tenancy's units, or a price per unit
    of a quantity (parking spaces, persons), one-off, monthly, quarterly or yearly, in force between two
    dates. Billing charges them on each building's settlement calendar (prepaid_billing)."""

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
        [("fixed", "Fixed Amount"), ("per_area", "Per m²"), ("per_quantity", "Per Quantity")],
        required=True,
        default="fixed",
        help="Fixed: the same amount for each tenancy. Per m²: the price times the area of the tenancy's "
        "units. Per quantity: the price times the quantity below (parking spaces, persons...).",
    )
    amount = fields.Monetary(help="Amount charged to each tenancy per period (fixed calculation).")
    unit_price = fields.Float(
        digits=PRICE_DIGITS, help="Price per m² or per unit of the quantity, per period."
    )
    quantity = fields.Float(digits=(16, 3), default=1.0, help="Per quantity calculation: units charged.")
    recurrence = fields.Selection(
        [
            ("one_off", "One-off"),
            ("monthly", "Monthly"),
            ("quarterly", "Quarterly"),
            ("yearly", "Yearly"),
        ],
        required=True,
        default="monthly",
        help="Periods follow the building's settlement calendar: a month is a settlement cycle, a quarter "
        "three cycles from January, April, July or October, a year twelve cycles from January.",
    )
    timing = fields.Selection(
        [("advance", "In Advance"), ("arrears", "In Arrears")],
        required=True,
        default="advance",
        help="In advance: a period is charged on its first day. In arrears: on the day after it ends.",
    )
    prorate = fields.Boolean(
        string="Prorate by Days",
        default=True,
        help="A period the tenancy or the fee only partly covers (moving in or out mid-cycle) charges the "
        "days' share of the period's amount. Off: such a period charges the full amount.",
    )
    date_from = fields.Date(
        string="Effective From",
        required=True,
        default=fields.Date.context_today,
        help="First day the fee applies: periods before it are never charged.",
    )
    date_to = fields.Date(string="Effective To", help="Last day the fee applies; empty: open-ended.")
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
        help="The fee applies to the tenancies of the units in these properties and everything below them.",
    )
    tenancy_ids = fields.Many2many(
        "prepaid.tenancy",
        "prepaid_fee_item_tenancy_rel",
        "fee_item_id",
        "tenancy_id",
        string="Tenancies",
        check_company=True,
        help="The fee also applies to these tenancies, wherever their units are.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id", string="Currency")
    active = fields.Boolean(default=True)
    note = fields.Text()

    _sql_constraints = [
        ("amount_positive", "CHECK(amount >= 0)", "A fee amount cannot be negative."),
        ("unit_price_positive", "CHECK(unit_price >= 0)", "A fee's unit price cannot be negative."),
        ("quantity_positive", "CHECK(quantity >= 0)", "A fee's quantity cannot be negative."),
        (
            "dates_ordered",
            "CHECK(date_to IS NULL OR date_from IS NULL OR date_to >= date_from)",
            "A fee item cannot end before it starts.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        check_numbers(self, vals_list, NUMBER_FIELDS)
        return super().create(vals_list)

    def write(self, vals):
        check_numbers(self, [vals], NUMBER_FIELDS)
        return super().write(vals)

    def _get_units(self):
        """The units the fee items apply to: units in their properties or below them."""
        return self.property_ids._get_units()
