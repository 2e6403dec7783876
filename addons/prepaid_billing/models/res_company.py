import logging

from odoo import Command, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL
from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)
_logger = logging.getLogger(__name__)

# Company settings of the money flow: field -> (types an existing account may have to be reused, the code it
# is looked up by and created with (padded to the length of the chart's codes), name of the account created).
BILLING_ACCOUNTS = {
    "prepaid_deposit_account_id": (("liability_current",), "2130", _lt("Prepaid Deposits")),
    "prepaid_electricity_revenue_account_id": (("income", "income_other"), "4010", _lt("Electricity Sales")),
    "prepaid_water_revenue_account_id": (("income", "income_other"), "4020", _lt("Water Sales")),
    "prepaid_fee_revenue_account_id": (("income", "income_other"), "4030", _lt("Prepaid Fees and Charges")),
    "prepaid_adjustment_account_id": (
        ("expense", "expense_direct_cost", "income_other", "liability_current", "asset_current", "equity"),
        "6900",
        _lt("Prepaid Balance Adjustments"),
    ),
}
# The ordinary bank-type journals the cashier can take money on, besides the chart's cash and bank journals.
CASHIER_JOURNALS = (
    ("WXPAY", _lt("WeChat Pay")),
    ("ALIPY", _lt("Alipay")),
    ("POSTM", _lt("Card Terminal (POS)")),
)
CONSUMPTION_JOURNAL = ("PPC", _lt("Prepaid Consumption"))
TOPUP_PRODUCT_CODE = "PREPAID-CREDIT"
RECEIPT_LAYOUTS = [("ticket", "80 mm Ticket"), ("a4", "A4 Page")]


class ResCompany(models.Model):
    _inherit = "res.company"

    prepaid_enabled = fields.Boolean(
        copy=False,
        help="The company sells prepaid utilities: it has the deposit, revenue and adjustment accounts, the "
        "consumption journal, the cashier's journals and the 'Prepaid credit' product, reusing those it "
        "had. Turned on in the settings or by the company's first prepaid account; until then the "
        "company's accounting is left as it is.",
    )
    prepaid_deposit_account_id = fields.Many2one(
        "account.account",
        check_company=True,
        domain="[('account_type', '=', 'liability_current')]",
        help="Liability holding the tenants' prepaid money: top-ups credit it, consumption and fees debit "
        "it.",
    )
    prepaid_electricity_revenue_account_id = fields.Many2one(
        "account.account",
        string="Electricity Revenue Account",
        check_company=True,
        domain="[('account_type', 'in', ('income', 'income_other'))]",
    )
    prepaid_water_revenue_account_id = fields.Many2one(
        "account.account",
        string="Water Revenue Account",
        check_company=True,
        domain="[('account_type', 'in', ('income', 'income_other'))]",
    )
    prepaid_fee_revenue_account_id = fields.Many2one(
        "account.account",
        string="Fee Revenue Account",
        check_company=True,
        domain="[('account_type', 'in', ('income', 'income_other'))]",
        help="Fees and common-area apportionments deducted from prepaid balances.",
    )
    prepaid_adjustment_account_id = fields.Many2one(
        "account.account",
        string="Adjustment Counterpart Account",
        check_company=True,
        help="Counterpart of opening balances and manual adjustments of prepaid balances in the daily "
        "summary entries (point it at your migration or suspense account when taking over balances).",
    )
    prepaid_journal_id = fields.Many2one(
        "account.journal",
        string="Consumption Journal",
        check_company=True,
        domain="[('type', '=', 'general')]",
        help="Miscellaneous journal of the daily summary entries.",
    )
    prepaid_topup_product_id = fields.Many2one(
        "product.product",
        string="Top-up Product",
        check_company=True,
        help="The 'Prepaid credit' service sold on top-up invoices; its income account is the deposit "
        "account.",
    )
    prepaid_receipt_layout = fields.Selection(
        RECEIPT_LAYOUTS,
        string="Top-up Receipt",
        default="ticket",
        required=True,
        help="What the cashier's top-up prints: an 80 mm ticket for receipt printers, or an A4 page. Both "
        "can be printed from the top-up at any time.",
    )
    prepaid_fee_no_cutoff = fields.Boolean(
        string="Fees Never Cut the Supply",
        help="Fees deducted in the current settlement cycle do not count towards the cut-off: the tenant "
        "still gets the low-balance alerts, but the supply is cut only when consumption takes the balance "
        "below the cut-off level without them (from the next cycle on, unpaid fees count as any debt).",
    )
    prepaid_summary_ledger_id = fields.Integer(
        string="Summarised up to Ledger Line",
        readonly=True,
        help="Watermark of the daily summary entries: every ledger line up to this id is booked.",
    )

    # ------------------------------------------------------------------ turning prepaid on

    def write(self, vals):
        turning_on = self.filtered(lambda c: not c.prepaid_enabled) if vals.get("prepaid_enabled") else None
        if "prepaid_enabled" in vals and not vals["prepaid_enabled"]:
            self._prepaid_check_can_turn_off()
        res = super().write(vals)
        if turning_on:
            # A company without a chart of accounts yet is set up when its chart is loaded.
            turning_on.filtered("chart_template")._prepaid_ensure_setup()
        return res

    def _prepaid_check_can_turn_off(self):
        Account = self.env["prepaid.account"].sudo().with_context(active_test=False)
        for company in self.filtered("prepaid_enabled"):
            if Account.search_count([("company_id", "=", company.id)], limit=1):
                raise UserError(
                    self.env._(
                        "Prepaid cannot be turned off for %(company)s: it has prepaid accounts.",
                        company=company.display_name,
                    )
                )

    def _prepaid_turn_on(self):
        """Turn prepaid on for the companies of ``self`` that have not turned it on yet (what the first
        prepaid account of a company does): they are set up now if they have a chart of accounts, else when
        it is loaded."""
        self.filtered(lambda c: not c.prepaid_enabled).sudo().write({"prepaid_enabled": True})

    def _prepaid_billing_is_ready(self):
        self.ensure_one()
        return all(
            self[fname] for fname in (*BILLING_ACCOUNTS, "prepaid_journal_id", "prepaid_topup_product_id")
        )

    @api.private
    def _prepaid_ensure_setup(self):
        """Make sure each company of ``self`` has turned prepaid on and has what the prepaid money flow books
        on: the deposit, revenue, fee and adjustment accounts, the consumption journal, the cashier's WeChat
        Pay, Alipay and card terminal journals, and the "Prepaid credit" top-up product. What the company
        already has is reused (an account of a fitting type with the code we would give ours, a journal with
        our code, a product with our internal reference); only what is missing is created.

        Called by everything that books prepaid money (top-ups, refunds, summary entries): idempotent, and
        cheap once the company is set up. Safe when two transactions set up the same company at once (two
        first top-ups): each takes the company row with an UPDATE first, so the second waits for the first to
        commit and is then retried (a serialization failure) against what the first created.

        Raises UserError for a company without a chart of accounts."""
        todo = self.filtered(lambda c: not (c.prepaid_enabled and c._prepaid_billing_is_ready()))
        if not todo:
            return self
        for company in todo:
            if not company.chart_template:
                raise UserError(
                    self.env._(
                        "Prepaid billing of %(company)s needs a chart of accounts: install one in the "
                        "Accounting settings first.",
                        company=company.display_name,
                    )
                )
        todo._prepaid_lock_for_setup()
        for company in todo.sudo():
            company._prepaid_setup()
        return self

    def _prepaid_lock_for_setup(self):
        """Row-lock the companies by updating them (a no-op update). A plain ``SELECT ... FOR UPDATE`` is not
        enough: a setup that only adds journals would not change the row, and the waiting transaction, whose
        snapshot predates them, would create them again. After an update, the waiting one fails to serialize
        and its request is retried on a fresh snapshot."""
        self.flush_recordset()
        self.env.cr.execute(
            SQL(
                "UPDATE res_company SET prepaid_enabled = prepaid_enabled WHERE id IN %s",
                tuple(self.ids),
            )
        )
        self.invalidate_recordset()

    def _prepaid_setup(self):
        self.ensure_one()
        vals = {}
        for fname, (account_types, code, name) in BILLING_ACCOUNTS.items():
            if not self[fname]:
                vals[fname] = self._prepaid_find_or_create_account(account_types, code, str(name)).id
        if not self.prepaid_journal_id:
            code, name = CONSUMPTION_JOURNAL
            vals["prepaid_journal_id"] = self._prepaid_find_or_create_journal(code, str(name), "general").id
        for code, name in CASHIER_JOURNALS:
            self._prepaid_find_or_create_journal(code, str(name), "bank")
        if vals:
            self.write(vals)
        if not self.prepaid_topup_product_id:
            self.prepaid_topup_product_id = self._prepaid_find_or_create_topup_product()
        if not self.prepaid_enabled:
            self.prepaid_enabled = True  # last: write() finds the company ready and sets up nothing more
        _logger.info("prepaid billing set up for company %s", self.name)

    def _prepaid_default_cash_journal(self):
        """The company's first cash journal (the chart's): where the cashier's wizards take or give money
        back. Prepaid creates none of its own."""
        self.ensure_one()
        Journal = self.env["account.journal"]
        return Journal.search([*Journal._check_company_domain(self), ("type", "=", "cash")], limit=1)

    def _prepaid_account_code(self, account_types, code):
        """``code`` in the length of the chart's codes: "2130" becomes "213000" in a chart of 6-digit codes
        (the length of its first account of the same type)."""
        Account = self.env["account.account"].sudo().with_company(self)
        sample = Account.search(
            [*Account._check_company_domain(self), ("account_type", "in", account_types)],
            order="code",
            limit=1,
        )
        if sample.code and sample.code.isdigit() and len(sample.code) > len(code):
            return code.ljust(len(sample.code), "0")
        return code

    def _prepaid_find_or_create_account(self, account_types, code, name):
        """The company's account with our code if its type fits, else a new one (with our code, or the next
        free one when the code is taken by an account of another type). Accounts of a branch are its root
        company's, as the chart's are."""
        self.ensure_one()
        Account = self.env["account.account"].sudo().with_company(self)
        code = self._prepaid_account_code(account_types, code)
        existing = Account.search([*Account._check_company_domain(self), ("code", "=", code)], limit=1)
        if existing and existing.account_type in account_types and not existing.deprecated:
            return existing
        account_type = account_types[0]
        return Account.create(
            {
                "name": name,
                "code": Account._search_new_account_code(code) if existing else code,
                "account_type": account_type,
                "reconcile": account_type == "liability_current",
                "company_ids": [Command.link(self.root_id.id)],
            }
        )

    def _prepaid_find_or_create_journal(self, code, name, journal_type):
        """The company's journal with ``code`` (archived ones included: an accountant who archived the WeChat
        Pay journal keeps it archived) if its type fits, else a new one (journal codes are unique per
        company: with the code taken by another type, the new one gets a free variant)."""
        self.ensure_one()
        Journal = self.env["account.journal"].sudo().with_company(self).with_context(active_test=False)
        fits = ("bank", "cash") if journal_type == "bank" else (journal_type,)
        existing = Journal.search([*Journal._check_company_domain(self), ("code", "=", code)], limit=1)
        if existing.type in fits:
            return existing
        free = code
        suffix = 1
        while Journal.search_count([("company_id", "=", self.id), ("code", "=", free)], limit=1):
            suffix += 1
            free = f"{code[:4]}{suffix}"
        return Journal.create({"name": name, "code": free, "type": journal_type, "company_id": self.id})

    def _prepaid_find_or_create_topup_product(self):
        """The company's "Prepaid credit" service (internal reference PREPAID-CREDIT), or a new one: no taxes,
        its income account is the deposit liability (the pattern of loyalty's eWallet top-up product), so a
        paid top-up invoice credits the deposit account."""
        self.ensure_one()
        Product = self.env["product.product"].sudo().with_company(self).with_context(active_test=False)
        product = Product.search(
            [
                ("company_id", "=", self.id),
                ("default_code", "=", TOPUP_PRODUCT_CODE),
                ("type", "=", "service"),
            ],
            limit=1,
        )
        if not product:
            product = Product.create(
                {
                    "name": self.env._("Prepaid credit"),
                    "type": "service",
                    "list_price": 0.0,
                    "sale_ok": True,
                    "purchase_ok": False,
                    "company_id": self.id,
                    "taxes_id": [Command.clear()],
                    "supplier_taxes_id": [Command.clear()],
                    "default_code": TOPUP_PRODUCT_CODE,
                }
            )
        template = product.product_tmpl_id.with_company(self)
        if not template.property_account_income_id:
            template.property_account_income_id = self.prepaid_deposit_account_id
        return product

    @api.model
    def _prepaid_revenue_account_field(self, utility):
        return f"prepaid_{utility}_revenue_account_id"
