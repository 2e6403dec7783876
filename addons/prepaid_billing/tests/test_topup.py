from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import BillingCommon


@tagged("post_install", "-at_install")
class TestTopup(BillingCommon):
    def test_cashier_topup_invoices_pays_and_credits_the_ledger_once(self):
        topup = self.topup(self.account_1, 200.0, memo="counter 1")
        invoice = topup.invoice_id
        self.assertRecordValues(
            invoice,
            [
                {
                    "move_type": "out_invoice",
                    "state": "posted",
                    "partner_id": self.tenant_1.id,
                    "amount_total": 200.0,
                    "amount_tax": 0.0,
                    "payment_state": "paid",
                }
            ],
        )
        product_line = invoice.invoice_line_ids
        self.assertEqual(product_line.product_id, self.company.prepaid_topup_product_id)
        self.assertEqual(product_line.account_id, self.deposit)
        self.assertTrue(topup.payment_id)
        self.assertEqual(topup.payment_id.journal_id, self.cash_journal)
        self.assertRecordValues(
            topup.ledger_id,
            [
                {
                    "kind": "topup",
                    "amount": 200.0,
                    "balance_after": 200.0,
                    "idempotency_key": f"topup:{invoice.id}",
                }
            ],
        )
        self.assertEqual(topup.state, "done")
        self.assertEqual(self.account_1.balance, 200.0)
        self.assertTrue(self.account_1.last_topup_date)
        self.assertLedgerMatchesAccounting(self.account_1)

    def test_an_operator_tops_up_through_the_wizard_without_accounting_rights(self):
        cashier = self.new_operator("cashier_topup")
        self.assertFalse(cashier.has_group("account.group_account_invoice"))
        wizard = (
            self.env["prepaid.topup.wizard"]
            .with_user(cashier)
            .create(
                {
                    "account_id": self.account_1.id,
                    "amount": 25.0,
                    "journal_id": self.cash_journal.id,
                    "print_receipt": False,
                }
            )
        )
        wizard.action_confirm()
        topup = self.env["prepaid.topup"].search([("account_id", "=", self.account_1.id)])
        self.assertRecordValues(topup, [{"state": "done", "user_id": cashier.id, "channel": "cashier"}])
        self.assertEqual(self.account_1.balance, 25.0)
        self.assertLedgerMatchesAccounting(self.account_1)

    def test_paid_hook_called_twice_credits_once(self):
        topup = self.topup(self.account_1, 50.0)
        invoice = topup.invoice_id
        invoice._invoice_paid_hook()
        invoice._invoice_paid_hook()
        lines = self.env["prepaid.ledger"].search(
            [("account_id", "=", self.account_1.id), ("kind", "=", "topup")]
        )
        self.assertEqual(len(lines), 1)
        self.assertEqual(self.account_1.balance, 50.0)
        # Even if the top-up lost track of its credit, the ledger key stops a second one.
        internal(topup.sudo()).state = "invoiced"
        self.env["prepaid.topup"]._credit_paid_invoices(invoice)
        self.assertEqual(
            self.env["prepaid.ledger"].search_count(
                [("account_id", "=", self.account_1.id), ("kind", "=", "topup")]
            ),
            1,
        )
        self.assertEqual(self.account_1.balance, 50.0)
        self.assertEqual(topup.state, "done")

    def test_an_unpaid_invoice_credits_nothing_until_paid(self):
        topup = (
            internal(self.env["prepaid.topup"])
            .sudo()
            .create(
                {
                    "account_id": self.account_1.id,
                    "amount": 30.0,
                    "journal_id": self.cash_journal.id,
                    "channel": "portal",
                }
            )
        )
        topup._create_invoice()
        self.assertEqual(topup.invoice_id.payment_state, "not_paid")
        self.assertEqual(self.account_1.balance, 0.0)
        topup._register_payment()
        self.assertEqual(topup.state, "done")
        self.assertEqual(self.account_1.balance, 30.0)

    def test_topup_through_another_journal(self):
        wechat = self.env["account.journal"].search(
            [("company_id", "=", self.company.id), ("code", "=", "WXPAY")], limit=1
        )
        topup = self.topup(self.account_2, 88.8, journal=wechat)
        self.assertEqual(topup.payment_id.journal_id, wechat)
        self.assertEqual(self.account_2.balance, 88.8)
        self.assertLedgerMatchesAccounting(self.account_2)

    def test_a_closed_account_cannot_be_topped_up(self):
        self.account_2.action_close()
        with self.assertRaises(UserError):
            self.topup(self.account_2, 10.0)

    def test_amount_must_be_positive(self):
        with self.assertRaises(UserError):
            self.topup(self.account_1, 0.0)

    def test_receipt_renders_and_can_be_reprinted(self):
        topup = self.topup(self.account_1, 66.0, memo="receipt test")
        html, _kind = self.env["ir.actions.report"]._render_qweb_html(
            "prepaid_billing.action_report_prepaid_topup", topup.ids
        )
        html = html.decode()
        self.assertIn(topup.name, html)
        self.assertIn("receipt test", html)
        self.assertIn("Li Lei", html)
        action = topup.action_print_receipt()
        self.assertEqual(action["report_name"], "prepaid_billing.report_prepaid_topup_ticket")

    def test_wizard_returns_the_receipt(self):
        wizard = self.env["prepaid.topup.wizard"].create(
            {"account_id": self.account_1.id, "amount": 10.0, "journal_id": self.cash_journal.id}
        )
        action = wizard.action_confirm()
        self.assertEqual(action["type"], "ir.actions.report")
