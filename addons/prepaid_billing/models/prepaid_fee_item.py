from decimal import Decimal

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_manager
from odoo.exceptions import AccessError, ValidationError

from prepaid_engine.billing.fees import FeeItem


class PrepaidFeeItem(models.Model):
    """Billing's side of a fee item: the product whose income account the charges are booked against, the
    charges made so far, and *Charge Now* (what the hourly cron does)."""

    _inherit = "prepaid.fee.item"

    product_id = fields.Many2one(
        "product.product",
        check_company=True,
        help="Service product of the fee: deductions are booked against its income account in the daily "
        "summary entry (else the company's fee revenue account); invoices use it with its taxes.",
    )
    charge_ids = fields.One2many("prepaid.fee.charge", "fee_item_id", string="Charges", readonly=True)
    charge_count = fields.Integer(compute="_compute_charge_count")

    @api.depends("charge_ids")
    def _compute_charge_count(self):
        counts = dict(
            self.env["prepaid.fee.charge"]._read_group(
                [("fee_item_id", "in", self.ids)], ["fee_item_id"], ["__count"]
            )
        )
        for item in self:
            item.charge_count = counts.get(item, 0)

    @api.constrains("charge_mode", "product_id")
    def _check_product(self):
        for item in self.filtered(lambda i: i.charge_mode == "invoice" and not i.product_id):
            raise ValidationError(
                self.env._("%(fee)s is invoiced: give it a product.", fee=item.display_name)
            )

    def _prepaid_engine_item(self):
        """The engine's :class:`FeeItem` of this record."""
        self.ensure_one()
        if self.calculation == "fixed":
            rate = Decimal(str(self.amount or 0)).quantize(Decimal(10) ** -self.currency_id.decimal_places)
        else:
            rate = Decimal(f"{self.unit_price or 0.0:.4f}")
        return FeeItem(
            key=str(self.id),
            amount_kind=self.calculation,
            rate=rate,
            frequency=self.recurrence,
            date_from=self.date_from or None,
            date_to=self.date_to or None,
            prorate=self.prorate,
            timing=self.timing,
        )

    def _prepaid_income_account(self):
        """The income account the item's deductions are booked against: its product's, else the company's
        fee revenue account (written on each charge: the daily summary entry books the charge there)."""
        self.ensure_one()
        fallback = self.company_id.sudo().prepaid_fee_revenue_account_id
        if not self.product_id:
            return fallback
        accounts = self.product_id.product_tmpl_id.with_company(self.company_id)._get_product_accounts()
        return accounts["income"] or fallback

    def action_charge_now(self):
        """Managers: charge these fee items for every period due up to today (what the hourly cron does)."""
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can charge fees."))
        self.check_access("write")
        result = self.env["prepaid.fee.charge"]._charge_fees(items=self)
        return self.env["prepaid.gateway"]._notify(
            self.env._("Fees"),
            self.env._(
                "%(charged)s charges made (%(posted)s deducted, %(invoiced)s invoiced); "
                "%(skipped)s tenancies without an open account wait.",
                charged=result["charged"],
                posted=result["posted"],
                invoiced=result["invoiced"],
                skipped=result["no_account"],
            ),
            "success" if not result["errors"] else "warning",
        )

    def action_view_charges(self):
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_billing.prepaid_fee_charge_action")
        action["domain"] = [("fee_item_id", "in", self.ids)]
        return action
