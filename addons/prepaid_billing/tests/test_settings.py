import threading
import uuid

from odoo import SUPERUSER_ID, api
from odoo.addons.prepaid_base.tests.test_concurrency import _retrying, wait_until_blocked
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger

from ..models.res_company import BILLING_ACCOUNTS, CASHIER_JOURNALS, CONSUMPTION_JOURNAL, TOPUP_PRODUCT_CODE
from .common import BillingCommon

OUR_JOURNAL_CODES = [CONSUMPTION_JOURNAL[0]] + [code for code, _name in CASHIER_JOURNALS]


def our_journals(env, company):
    return (
        env["account.journal"]
        .with_context(active_test=False)
        .search([("company_id", "=", company.id), ("code", "in", OUR_JOURNAL_CODES)])
    )


def our_products(env, company):
    return (
        env["product.product"]
        .with_context(active_test=False)
        .search([("company_id", "=", company.id), ("default_code", "=", TOPUP_PRODUCT_CODE)])
    )


@tagged("post_install", "-at_install")
class TestCompanySettings(BillingCommon):
    def _new_company(self, name):
        """A company with Odoo's generic chart of accounts, as Odoo leaves it."""
        return self.setup_other_company(name=name)["company"]

    def assertSetUp(self, company):
        self.assertTrue(company.prepaid_enabled)
        self.assertTrue(company._prepaid_billing_is_ready())
        self.assertRecordValues(
            company.prepaid_deposit_account_id, [{"account_type": "liability_current", "reconcile": True}]
        )
        revenue = [
            company[fname]
            for fname in (
                "prepaid_electricity_revenue_account_id",
                "prepaid_water_revenue_account_id",
                "prepaid_fee_revenue_account_id",
            )
        ]
        self.assertEqual([account.account_type for account in revenue], ["income"] * 3)
        self.assertEqual(len(set(revenue)), 3)
        self.assertEqual(company.prepaid_journal_id.type, "general")
        product = company.prepaid_topup_product_id.with_company(company)
        self.assertRecordValues(
            product, [{"type": "service", "company_id": company.id, "purchase_ok": False}]
        )
        self.assertFalse(product.taxes_id, "top-ups carry no tax by default")
        self.assertEqual(product.property_account_income_id, company.prepaid_deposit_account_id)
        journals = self.env["account.journal"].search(
            [("company_id", "=", company.id), ("type", "=", "bank")]
        )
        self.assertTrue({"WeChat Pay", "Alipay", "Card Terminal (POS)"} <= set(journals.mapped("name")))

    def test_a_company_stays_as_odoo_made_it_until_it_turns_prepaid_on(self):
        company = self._new_company("Not Prepaid Co")
        self.assertFalse(company.prepaid_enabled)
        for fname in (*BILLING_ACCOUNTS, "prepaid_journal_id", "prepaid_topup_product_id"):
            self.assertFalse(company[fname], fname)
        self.assertFalse(our_journals(self.env, company))
        self.assertFalse(our_products(self.env, company))
        self.assertEqual(
            self.env["account.journal"].search_count(
                [("company_id", "=", company.id), ("type", "=", "bank")]
            ),
            1,
            "only the chart's bank journal",
        )
        Account = self.env["account.account"].with_company(company)
        self.assertFalse(
            Account.search([*Account._check_company_domain(company), ("name", "=", "Prepaid Deposits")])
        )
        # The summary cron leaves it alone too.
        self.env["prepaid.summary"]._cron_post_summaries()
        self.assertFalse(company.prepaid_deposit_account_id)

    def test_turning_prepaid_on_in_the_settings_sets_the_company_up(self):
        company = self._new_company("Prepaid by Settings Co")
        # Saving the settings (an administrator does).
        settings = (
            self.env["res.config.settings"].sudo().with_company(company).create({"prepaid_enabled": True})
        )
        settings.execute()
        self.assertSetUp(company)
        # Codes follow the chart's (6 digits in Odoo's generic chart).
        self.assertEqual(company.prepaid_deposit_account_id.with_company(company).code, "213000")
        self.assertEqual(company.prepaid_electricity_revenue_account_id.with_company(company).code, "401000")
        self.assertTrue(self.env["res.config.settings"].with_company(company).create({}).prepaid_enabled)

    def test_the_first_prepaid_account_turns_prepaid_on(self):
        company = self._new_company("Prepaid by Account Co")
        partner = self.env["res.partner"].create({"name": "First tenant", "company_id": company.id})
        self.env["prepaid.account"].with_company(company).create(
            {"partner_id": partner.id, "company_id": company.id}
        )
        self.assertSetUp(company)
        self.assertTrue(self.company.prepaid_enabled, "the suite's own company was set up by its accounts")
        self.assertSetUp(self.company)

    def test_turning_prepaid_on_reuses_what_the_company_has(self):
        company = self._new_company("Prepaid Reuse Co")
        Account = self.env["account.account"].with_company(company)
        deposits = Account.create(
            {"name": "Customer Prepayments", "code": "213000", "account_type": "liability_current"}
        )
        unfit = Account.create({"name": "Electricity costs", "code": "401000", "account_type": "expense"})
        wechat = self.env["account.journal"].create(
            {"name": "WeChat", "code": "WXPAY", "type": "bank", "company_id": company.id}
        )
        product = self.env["product.product"].create(
            {
                "name": "Stored value",
                "type": "service",
                "default_code": TOPUP_PRODUCT_CODE,
                "company_id": company.id,
            }
        )
        cash = company._prepaid_default_cash_journal()
        journal_count = self.env["account.journal"].search_count([("company_id", "=", company.id)])

        company.prepaid_enabled = True

        self.assertEqual(company.prepaid_deposit_account_id, deposits)
        electricity = company.prepaid_electricity_revenue_account_id.with_company(company)
        self.assertNotEqual(electricity, unfit, "an expense account is no revenue account")
        self.assertEqual((electricity.code, electricity.account_type), ("401001", "income"))
        self.assertEqual(company.prepaid_topup_product_id, product)
        self.assertEqual(product.product_tmpl_id.with_company(company).property_account_income_id, deposits)
        self.assertEqual(our_journals(self.env, company).filtered(lambda j: j.code == "WXPAY"), wechat)
        # Odoo's cash journal is the cashier's; ours are the consumption journal and Alipay / card terminal.
        self.assertEqual(company._prepaid_default_cash_journal(), cash)
        self.assertEqual(
            self.env["account.journal"].search_count([("company_id", "=", company.id)]), journal_count + 3
        )

    def test_setup_is_idempotent_and_finds_its_accounts_again(self):
        company = self.company
        before = {
            fname: company[fname]
            for fname in (*BILLING_ACCOUNTS, "prepaid_journal_id", "prepaid_topup_product_id")
        }
        journal_count = self.env["account.journal"].search_count([("company_id", "=", company.id)])
        company._prepaid_ensure_setup()
        company.prepaid_deposit_account_id = False
        company.prepaid_journal_id = False
        company.prepaid_topup_product_id = False
        company._prepaid_ensure_setup()
        for fname, value in before.items():
            self.assertEqual(company[fname], value, fname)
        self.assertEqual(
            self.env["account.journal"].search_count([("company_id", "=", company.id)]), journal_count
        )
        self.assertEqual(len(our_products(self.env, company)), 1)

    def test_a_company_without_a_chart_is_set_up_when_its_chart_is_loaded(self):
        bare = self.env["res.company"].create({"name": "No Chart Yet Co"})
        self.env.user.company_ids |= bare
        bare.prepaid_enabled = True  # allowed: the set-up waits for the chart
        self.assertFalse(bare.prepaid_deposit_account_id)
        with self.assertRaisesRegex(UserError, "needs a chart of accounts"):
            bare._prepaid_ensure_setup()
        self._use_chart_template(bare, "generic_coa")
        self.assertSetUp(bare)

    def test_prepaid_stays_on_while_the_company_has_prepaid_accounts(self):
        with self.assertRaisesRegex(UserError, "it has prepaid accounts"):
            self.company.prepaid_enabled = False
        company = self._new_company("Prepaid Off Again Co")
        company.prepaid_enabled = True
        company.prepaid_enabled = False  # no prepaid account yet: allowed, what was set up stays
        self.assertFalse(company.prepaid_enabled)
        self.assertTrue(company.prepaid_deposit_account_id)

    def test_settings_show_the_company_values(self):
        settings = self.env["res.config.settings"].create({})
        self.assertTrue(settings.prepaid_enabled)
        self.assertEqual(settings.prepaid_deposit_account_id, self.company.prepaid_deposit_account_id)
        self.assertEqual(settings.prepaid_topup_product_id, self.company.prepaid_topup_product_id)
        self.assertEqual(settings.prepaid_receipt_layout, "ticket")


@tagged("post_install", "-at_install")
class TestSetupConcurrency(TransactionCase):
    """Two transactions set up the same company at once (two first top-ups): the second waits for the first
    and then finds its accounts, journals and product instead of making its own.

    The company lives in committed transactions (other cursors cannot see the test's own) and is removed in
    a cleanup. It has no chart loaded (removing a loaded chart is out of reach of a test): its chart field is
    set, which is all the set-up asks for."""

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            company = env["res.company"].create({"name": f"Concurrent Setup {self.tag}"})
            cr.execute(SQL("UPDATE res_company SET chart_template = 'generic_coa' WHERE id = %s", company.id))
            self.company_id = company.id
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"active_test": False})
            company = env["res.company"].browse(self.company_id)
            env["product.product"].search([("company_id", "=", company.id)]).product_tmpl_id.unlink()
            env["account.journal"].search([("company_id", "=", company.id)]).unlink()
            env["account.account"].search([("company_ids", "in", company.id)]).unlink()
            company.unlink()

    @mute_logger("odoo.sql_db", "odoo.service.model")
    def test_two_first_setups_at_once_make_one_set_of_accounts_journals_and_product(self):
        outcome = {"attempts": 0}
        # Environments are built here: building one takes the registry lock the test runner holds.
        cr2 = self.registry.cursor()
        self.addCleanup(cr2.close)
        env2 = api.Environment(cr2, SUPERUSER_ID, {})
        cr2.execute("SELECT pg_backend_pid()")
        second_pid = cr2.fetchone()[0]  # this also takes the second transaction's snapshot

        def attempt():
            outcome["attempts"] += 1
            env2["res.company"].browse(self.company_id)._prepaid_ensure_setup()

        def second_setup():
            try:
                _retrying(attempt, env2)
            except Exception as exc:  # reported to the main thread, which asserts there was none
                outcome["error"] = exc

        with self.registry.cursor() as cr1:
            env1 = api.Environment(cr1, SUPERUSER_ID, {})
            env1["res.company"].browse(self.company_id)._prepaid_ensure_setup()  # holds the company row
            thread = threading.Thread(target=second_setup)
            thread.start()
            with self.registry.cursor() as observer:
                blocked = wait_until_blocked(observer, second_pid)
            # leaving the block commits the first set-up
        thread.join(60)
        self.assertFalse(thread.is_alive())
        self.assertTrue(blocked, "the second set-up never waited for the first")
        self.assertNotIn("error", outcome)
        self.assertEqual(outcome["attempts"], 2, "the stale snapshot was refused once, then retried")

        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            company = env["res.company"].browse(self.company_id)
            self.assertTrue(company._prepaid_billing_is_ready())
            self.assertEqual(sorted(our_journals(env, company).mapped("code")), sorted(OUR_JOURNAL_CODES))
            self.assertEqual(len(our_products(env, company)), 1)
            codes = sorted(code for _types, code, _name in BILLING_ACCOUNTS.values())
            Account = env["account.account"].with_company(company)
            accounts = Account.search([("company_ids", "in", company.id), ("code", "in", codes)])
            self.assertEqual(sorted(accounts.mapped("code")), codes)
