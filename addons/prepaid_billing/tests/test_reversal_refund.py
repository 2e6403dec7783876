from datetime import timedelta

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import T0, BillingCommon


@tagged("post_install", "-at_install")
class TestReversalRefund(BillingCommon):
    def reverse(self, account, reason="wrong account", journal=None):
        wizard = self.env["prepaid.reverse.wizard"].create({"account_id": account.id, "reason": reason})
        if journal:
            wizard.journal_id = journal
        return wizard.action_reverse()

    def test_reversing_the_last_topup_books_a_credit_note_a_refund_and_a_ledger_reversal(self):
        self.topup(self.account_1, 100.0)
        last = self.topup(self.account_1, 40.0)
        self.reverse(self.account_1)
        self.assertEqual(last.state, "reversed")
        refund = last.reversal_move_id
        self.assertRecordValues(
            refund,
            [{"move_type": "out_refund", "state": "posted", "amount_total": 40.0, "payment_state": "paid"}],
        )
        self.assertEqual(refund.reversed_entry_id, last.invoice_id)
        self.assertEqual(last.reversal_payment_id.payment_type, "outbound")
        self.assertRecordValues(
            last.reversal_ledger_id,
            [
                {
                    "kind": "reversal",
                    "amount": -40.0,
                    "balance_after": 100.0,
                    "idempotency_key": f"reversal:{last.id}",
                }
            ],
        )
        self.assertEqual(self.account_1.balance, 100.0)
        self.assertLedgerMatchesAccounting(self.account_1)

    def test_only_a_covered_last_topup_can_be_reversed(self):
        first = self.topup(self.account_1, 30.0)
        self.ingest(self.meter_1, T0, "0")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "10")  # 10.00 spent
        with self.assertRaisesRegex(UserError, "no longer covers"):
            self.reverse(self.account_1)
        self.assertEqual(first.state, "done")
        self.assertEqual(self.account_1.balance, 20.0)
        # Once reversed, a top-up is not reversed again (the wizard finds nothing to reverse).
        self.topup(self.account_1, 15.0)
        self.reverse(self.account_1)
        with self.assertRaises(UserError):
            self.reverse(self.account_1)

    def test_an_operator_cannot_reverse(self):
        self.topup(self.account_1, 30.0)
        operator = self.new_operator("cashier_reverse")
        with self.assertRaises(UserError):
            self.account_1.with_user(operator).action_open_reverse_wizard()

    def test_refund_and_close_gives_the_balance_back_cuts_the_meters_and_closes(self):
        self.topup(self.account_1, 120.0)
        self.ingest(self.meter_1, T0, "0")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "20")
        self.assertEqual(self.account_1.balance, 100.0)
        wizard = self.env["prepaid.refund.wizard"].create(
            {"account_id": self.account_1.id, "reason": "moved out", "journal_id": self.cash_journal.id}
        )
        wizard.action_refund_and_close()
        self.assertEqual(self.account_1.state, "closed")
        self.assertEqual(self.account_1.balance, 0.0)
        refund_line = self.env["prepaid.ledger"].search(
            [("account_id", "=", self.account_1.id), ("kind", "=", "refund")]
        )
        self.assertEqual(refund_line.amount, -100.0)
        refund = self.env["account.move"].browse(refund_line.res_id)
        self.assertRecordValues(
            refund,
            [{"move_type": "out_refund", "amount_total": 100.0, "state": "posted", "payment_state": "paid"}],
        )
        self.assertEqual(refund.invoice_line_ids.product_id, self.company.prepaid_topup_product_id)
        trips = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter_1.id), ("kind", "=", "trip")]
        )
        self.assertEqual(trips.mapped("state"), ["queued"])
        self.assertLedgerMatchesAccounting(self.account_1)
        # Reopening starts a new ledger period.
        period = self.account_1.period
        self.account_1.action_reopen()
        self.assertEqual(self.account_1.period, period + 1)
        self.topup(self.account_1, 10.0)
        self.assertEqual(
            self.env["prepaid.ledger"].search([("account_id", "=", self.account_1.id)], limit=1).period,
            period + 1,
        )

    def test_an_account_in_debt_is_not_refunded(self):
        self.ingest(self.meter_1, T0, "0")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "5")
        with self.assertRaisesRegex(UserError, "owes"):
            self.account_1._refund_and_close(self.cash_journal, "test")
        self.assertEqual(self.account_1.state, "open")

    def test_an_empty_account_closes_without_accounting(self):
        self.account_2._refund_and_close(self.cash_journal, "never used")
        self.assertEqual(self.account_2.state, "closed")
        self.assertFalse(self.env["prepaid.ledger"].search([("account_id", "=", self.account_2.id)]))

    def test_staff_without_an_email_address_reverse_refund_and_alert(self):
        """Cashiers' and managers' logins are often no e-mail address ("cashier01"): what they do records
        notes on the account and alerts the tenant without Odoo's "configure the sender's email address"
        (found by the soak run: Refund and Close failed for a manager without e-mail)."""
        manager = self.env["res.users"].create(
            {
                "name": "Night Manager",
                "login": "night_manager",
                "company_id": self.company.id,
                "company_ids": [(6, 0, self.company.ids)],
                "groups_id": [(6, 0, [self.env.ref("prepaid_base.group_prepaid_manager").id])],
            }
        )
        self.assertFalse(manager.email)
        cashier = self.new_operator("night_cashier")
        self.assertFalse(cashier.email)
        account = self.account_1.with_user(manager)
        self.topup(self.account_1, 100.0)
        wizard = (
            self.env["prepaid.topup.wizard"]
            .with_user(cashier)
            .create({"account_id": self.account_1.id, "amount": 60.0, "journal_id": self.cash_journal.id})
        )
        wizard.action_confirm()
        self.env["prepaid.reverse.wizard"].with_user(manager).create(
            {"account_id": self.account_1.id, "reason": "wrong account"}
        ).action_reverse()
        self.assertEqual(self.account_1.balance, 100.0)
        self.assertIn(
            "Reversed by Night Manager", self.account_1.topup_ids.sorted("id")[-1].message_ids[0].body
        )
        # The manager's new levels put the account at a warning: the tenant's alert comes from the office.
        account.write({"warn_level_1": 150.0, "warn_level_2": 120.0, "warn_level_3": 110.0})
        alert = self.account_1.message_ids.filtered(lambda m: m.partner_ids == self.account_1.partner_id)[:1]
        self.assertTrue(alert)
        self.assertEqual(alert.author_id, self.company.partner_id)
        wizard = (
            self.env["prepaid.refund.wizard"]
            .with_user(manager)
            .create(
                {"account_id": self.account_1.id, "reason": "moved out", "journal_id": self.cash_journal.id}
            )
        )
        wizard.action_refund_and_close()
        self.assertEqual(self.account_1.state, "closed")
        self.assertIn("Closed by Night Manager", self.account_1.message_ids[0].body)
