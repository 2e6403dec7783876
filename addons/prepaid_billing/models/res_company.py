import logging

from odoo import Command, api, fields, models
from odoo.exceptions import UserError
from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)
_logger = logging.getLogger(__name__)

# Company settings of the money flow: field -> (account type, name of the account created by default).
BILLING_ACCOUNTS = {
    "prepaid_deposit_account_id": ("liability_current", _lt("Prepaid Deposits")),
    "prepaid_electricity_revenue_account_id": ("income", _lt("Electricity Sales")),
    "prepaid_water_revenue_account_id": ("income", _lt("Water Sales")),
    "prepaid_fee_revenue_account_id": ("income", _lt("Prepaid Fees and Charges")),
    "prepaid_adjustment_account_id": ("expense", _lt("Prepaid Balance Adjustments")),
}
# The ordinary bank-type journals the cashier can take money on, besides the chart's cash and bank journals.
CASHIER_JOURNALS = (
    ("WXPAY", _lt("WeChat Pay")),
    ("ALIPY", _lt("Alipay")),
    ("POSTM", _lt("Card Terminal (POS)")),
)
CONSUMPTION_JOURNAL = ("PPC", _lt("Prepaid Consumption"))


class ResCompany(models.Model):
    _inherit = "res.company"

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
    prepaid_summary_ledger_id = fields.Integer(
        string="Summarised up to Ledger Line",
        readonly=True,
        help="Watermark of the daily summary entries: every ledger line up to this id is booked.",
    )

    # ------------------------------------------------------------------ set-up

    def _prepaid_billing_is_ready(self):
        self.ensure_one()
        return all(
            self[fname] for fname in (*BILLING_ACCOUNTS, "prepaid_journal_id", "prepaid_topup_product_id")
        )

    def _prepaid_check_billing_ready(self):
        for company in self:
            if not company._prepaid_billing_is_ready():
                raise UserError(
                    self.env._(
                        "Prepaid billing of %(company)s is not configured: set its accounts, consumption "
                        "journal and top-up product in the settings (a chart of accounts must be installed).",
                        company=company.display_name,
                    )
                )

    def _prepaid_default_cash_journal(self):
        """The company's first cash journal: where the cashier's wizards take or give money back."""
        self.ensure_one()
        Journal = self.env["account.journal"]
        return Journal.search([*Journal._check_company_domain(self), ("type", "=", "cash")], limit=1)

    def _prepaid_new_account(self, account_type, name):
        """A new account of ``account_type`` for this company, coded next to an existing one of its type."""
        self.ensure_one()
        Account = self.env["account.account"].sudo().with_company(self)
        sample = Account.search(
            [*Account._check_company_domain(self), ("account_type", "=", account_type)],
            order="code",
            limit=1,
        )
        start = sample.code or {"liability_current": "219000", "income": "400000"}.get(account_type, "600000")
        return Account.create(
            {
                "name": name,
                "code": Account._search_new_account_code(start),
                "account_type": account_type,
                "reconcile": account_type == "liability_current",
                "company_ids": [Command.link(self.id)],
            }
        )

    def _prepaid_new_journal(self, code, name, journal_type):
        self.ensure_one()
        Journal = self.env["account.journal"].sudo().with_company(self)
        existing = Journal.with_context(active_test=False).search(
            [*Journal._check_company_domain(self), ("code", "=", code)], limit=1
        )
        if existing:
            return existing
        return Journal.create({"name": name, "code": code, "type": journal_type, "company_id": self.id})

    def _prepaid_billing_setup(self):
        """Create what the prepaid money flow needs and is not set yet, for companies with a chart of
        accounts: the deposit, revenue, fee and adjustment accounts, the consumption journal, the cashier's
        WeChat Pay, Alipay and card terminal journals, and the "Prepaid credit" top-up product. Idempotent."""
        for company in self.sudo():
            if not company.chart_template:
                continue
            vals = {}
            for fname, (account_type, name) in BILLING_ACCOUNTS.items():
                if not company[fname]:
                    vals[fname] = company._prepaid_new_account(account_type, str(name)).id
            if not company.prepaid_journal_id:
                code, name = CONSUMPTION_JOURNAL
                vals["prepaid_journal_id"] = company._prepaid_new_journal(code, str(name), "general").id
            if vals:
                company.write(vals)
            for code, name in CASHIER_JOURNALS:
                company._prepaid_new_journal(code, str(name), "bank")
            if not company.prepaid_topup_product_id:
                company.prepaid_topup_product_id = company._prepaid_create_topup_product()
            _logger.info("prepaid billing set up for company %s", company.name)

    def _prepaid_create_topup_product(self):
        """The company's "Prepaid credit" service: no taxes, its income account is the deposit liability (the
        pattern of loyalty's eWallet top-up product), so a paid top-up invoice credits the deposit account."""
        self.ensure_one()
        product = (
            self.env["product.product"]
            .sudo()
            .with_company(self)
            .create(
                {
                    "name": self.env._("Prepaid credit"),
                    "type": "service",
                    "list_price": 0.0,
                    "sale_ok": True,
                    "purchase_ok": False,
                    "company_id": self.id,
                    "taxes_id": [Command.clear()],
                    "supplier_taxes_id": [Command.clear()],
                    "default_code": "PREPAID-CREDIT",
                }
            )
        )
        product.product_tmpl_id.with_company(
            self
        ).property_account_income_id = self.prepaid_deposit_account_id
        return product

    @api.model
    def _prepaid_revenue_account_field(self, utility):
        return f"prepaid_{utility}_revenue_account_id"
