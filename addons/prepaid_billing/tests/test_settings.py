from odoo.tests import tagged

from .common import BillingCommon


@tagged("post_install", "-at_install")
class TestCompanySettings(BillingCommon):
    def test_a_company_with_a_chart_gets_the_prepaid_accounting_defaults(self):
        company = self.company
        self.assertTrue(company._prepaid_billing_is_ready())
        self.assertRecordValues(
            company.prepaid_deposit_account_id, [{"account_type": "liability_current", "reconcile": True}]
        )
        for fname in (
            "prepaid_electricity_revenue_account_id",
            "prepaid_water_revenue_account_id",
            "prepaid_fee_revenue_account_id",
        ):
            self.assertEqual(company[fname].account_type, "income", fname)
        self.assertEqual(
            len(
                {
                    company[f]
                    for f in (
                        "prepaid_electricity_revenue_account_id",
                        "prepaid_water_revenue_account_id",
                        "prepaid_fee_revenue_account_id",
                    )
                }
            ),
            3,
        )
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

    def test_setup_is_idempotent_and_keeps_what_is_set(self):
        company = self.company
        before = {
            fname: company[fname]
            for fname in ("prepaid_deposit_account_id", "prepaid_journal_id", "prepaid_topup_product_id")
        }
        journal_count = self.env["account.journal"].search_count([("company_id", "=", company.id)])
        company._prepaid_billing_setup()
        for fname, value in before.items():
            self.assertEqual(company[fname], value)
        self.assertEqual(
            self.env["account.journal"].search_count([("company_id", "=", company.id)]), journal_count
        )

    def test_a_company_that_loads_its_chart_later_is_set_up_then(self):
        other = self.setup_other_company(name="Prepaid Later Co")["company"]
        self.assertTrue(other._prepaid_billing_is_ready())
        self.assertNotEqual(other.prepaid_deposit_account_id, self.company.prepaid_deposit_account_id)
        bare = self.env["res.company"].create({"name": "No Chart Co"})
        bare._prepaid_billing_setup()
        self.assertFalse(bare.prepaid_deposit_account_id)

    def test_settings_show_the_company_values(self):
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.prepaid_deposit_account_id, self.company.prepaid_deposit_account_id)
        self.assertEqual(settings.prepaid_topup_product_id, self.company.prepaid_topup_product_id)
