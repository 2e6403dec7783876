from odoo.addons.prepaid_base.tests.test_ui import needs_browser
from odoo.tests import HttpCase, new_test_user, tagged


@needs_browser
@tagged("post_install", "-at_install")
class TestCashierTour(HttpCase):
    """Prepaid > Cashier > Top Up, in the web client, as a cashier without accounting rights: the wizard
    finds the account by the tenant's name (before any account is chosen, the account field offers every open
    account of the user's companies) and the top-up credits it."""

    def test_the_cashier_menu_finds_the_account_and_tops_it_up(self):
        company = self.env.company
        cashier = new_test_user(
            self.env, login="pp_tour_cashier", groups="prepaid_base.group_prepaid_user", company_id=company.id
        )
        cashier.tour_enabled = False
        partner = self.env["res.partner"].create({"name": "Cashier Tour Tenant"})
        account = self.env["prepaid.account"].create({"partner_id": partner.id, "company_id": company.id})
        account.action_open()
        self.env["prepaid.account"]._post_ledger(
            [{"account_id": account.id, "kind": "opening", "amount": 5.0, "idempotency_key": "tour:cashier"}]
        )

        self.start_tour("/odoo", "prepaid_cashier_tour", login=cashier.login)

        self.assertEqual(account.balance, 30.0)
        topup = self.env["prepaid.topup"].search([("account_id", "=", account.id)])
        self.assertEqual((topup.state, topup.amount, topup.user_id), ("done", 25.0, cashier))
        self.assertIn(topup.invoice_id.payment_state, ("paid", "in_payment"))
