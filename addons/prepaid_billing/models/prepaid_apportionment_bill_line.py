from odoo import fields, models

LINE_STATES = [
    ("draft", "Draft"),
    ("posted", "Deducted"),
    ("invoiced", "Invoiced"),
    ("no_account", "No Account"),
    ("nothing", "Nothing to Collect"),
    ("cancelled", "Cancelled"),
]
LINE_FIELDS = (
    "bill_id",
    "unit_id",
    "account_id",
    "coefficient",
    "basis",
    "ratio",
    "common_amount",
    "loss_amount",
    "amount",
    "state",
    "ledger_id",
    "move_id",
)


class PrepaidApportionmentBillLine(models.Model):
    """One unit's share of an apportionment bill, as the engine computed it, and how it was collected."""

    _name = "prepaid.apportionment.bill.line"
    _description = "Apportionment Share"
    _inherit = ["prepaid.guard.mixin"]
    _prepaid_internal_create = True
    _prepaid_protected_fields = LINE_FIELDS
    _order = "bill_id, unit_id"
    _check_company_auto = True

    bill_id = fields.Many2one(
        "prepaid.apportionment.bill", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="bill_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="bill_id.currency_id")
    rule_id = fields.Many2one(related="bill_id.rule_id", store=True, index=True)
    property_id = fields.Many2one(related="bill_id.property_id", store=True, string="Building / Site")
    utility = fields.Selection(related="bill_id.utility", store=True)
    date_from = fields.Date(related="bill_id.date_from", store=True, string="Period")
    bill_state = fields.Selection(related="bill_id.state", string="Bill State")
    unit_id = fields.Many2one("prepaid.property", required=True, readonly=True, index=True)
    account_id = fields.Many2one("prepaid.account", readonly=True, index="btree_not_null")
    partner_id = fields.Many2one(related="account_id.partner_id", string="Tenant")
    coefficient = fields.Float(digits=(16, 6), readonly=True, aggregator=None)
    basis = fields.Float(
        string="Source Value",
        digits=(16, 3),
        readonly=True,
        help="The unit's consumption (kWh or m³) or floor area (m²) its coefficient came from.",
    )
    ratio = fields.Float(digits=(16, 6), readonly=True, aggregator="sum")
    common_amount = fields.Monetary(string="Common Share", readonly=True, aggregator="sum")
    loss_amount = fields.Monetary(string="Loss Share", readonly=True, aggregator="sum")
    amount = fields.Monetary(string="Share", readonly=True, aggregator="sum")
    state = fields.Selection(LINE_STATES, required=True, default="draft", readonly=True, index=True)
    ledger_id = fields.Many2one("prepaid.ledger", string="Ledger Line", readonly=True)
    move_id = fields.Many2one("account.move", string="Invoice", readonly=True, index="btree_not_null")
