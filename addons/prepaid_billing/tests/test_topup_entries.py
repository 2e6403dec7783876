from odoo.tests import tagged

from .common import BillingCommon


@tagged("post_install", "-at_install")
class TestTopupEntries(BillingCommon):
    """What a cashier top-up, its reversal and a refund on closure book, account by account: the table of
    README.md ("The money flow") and readme/USAGE.md.

    Odoo 18 books a payment on the Outstanding Receipts (inbound) or Outstanding Payments (outbound) account
    of its payment method, in a cash journal as in a bank journal, unless the journal's payment method names
    another account (the journal's own cash or bank account is allowed); matching the payment with the
    statement line (bank statement, cash register, WeChat Pay / Alipay settlement) moves it to the journal's
    account."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.receivable = cls.tenant_1.property_account_receivable_id
        chart = cls.env["account.chart.template"].with_company(cls.company)
        cls.outstanding_receipts = chart.ref("account_journal_payment_debit_account_id")
        cls.outstanding_payments = chart.ref("account_journal_payment_credit_account_id")
        Journal = cls.env["account.journal"]
        cls.wechat = Journal.search([("company_id", "=", cls.company.id), ("code", "=", "WXPAY")])

    def assertLines(self, move, expected):
        """``expected``: (account, debit, credit) per line, in any order."""
        got = sorted((line.account_id.id, line.debit, line.credit) for line in move.line_ids)
        self.assertEqual(got, sorted((account.id, debit, credit) for account, debit, credit in expected))

    def assertTopupEntries(self, journal):
        topup = self.topup(self.account_1, 100.0, journal=journal)
        # The invoice: Dr receivable / Cr deposit (per tenant).
        self.assertLines(topup.invoice_id, [(self.receivable, 100.0, 0.0), (self.deposit, 0.0, 100.0)])
        self.assertEqual(
            topup.invoice_id.line_ids.filtered(lambda line: line.account_id == self.deposit).partner_id,
            self.tenant_1,
        )
        # The payment: Dr Outstanding Receipts / Cr receivable, reconciled with the invoice.
        payment = topup.payment_id
        self.assertEqual(payment.journal_id, journal)
        self.assertLines(
            payment.move_id, [(self.outstanding_receipts, 100.0, 0.0), (self.receivable, 0.0, 100.0)]
        )
        self.assertNotEqual(self.outstanding_receipts, journal.default_account_id)
        self.assertEqual(self.outstanding_receipts.account_type, "asset_current")
        self.assertEqual(topup.invoice_id.payment_state, "paid")
        self.assertFalse(payment.is_matched, "waits for the statement line")
        return topup

    def test_a_cash_topup_books_the_invoice_and_a_payment_on_outstanding_receipts(self):
        self.assertEqual(self.cash_journal.type, "cash")
        self.assertTopupEntries(self.cash_journal)

    def test_a_wechat_pay_topup_books_the_same_entries(self):
        self.assertEqual(self.wechat.type, "bank")
        self.assertTopupEntries(self.wechat)

    def test_a_journal_whose_method_names_its_own_account_books_the_cash_account(self):
        """README: pointing the journal's incoming payment method at the journal's account books the
        payment straight on the cash account (no statement to match)."""
        cash_account = self.cash_journal.default_account_id
        self.cash_journal.inbound_payment_method_line_ids.payment_account_id = cash_account
        topup = self.topup(self.account_1, 100.0, journal=self.cash_journal)
        self.assertLines(
            topup.payment_id.move_id, [(cash_account, 100.0, 0.0), (self.receivable, 0.0, 100.0)]
        )
        self.assertTrue(topup.payment_id.is_matched)

    def test_a_reversal_books_a_credit_note_and_a_payment_on_outstanding_payments(self):
        self.topup(self.account_1, 100.0)
        last = self.topup(self.account_1, 40.0)
        self.env["prepaid.reverse.wizard"].create(
            {"account_id": self.account_1.id, "reason": "wrong account"}
        ).action_reverse()
        # Credit note: Dr deposit / Cr receivable; outbound payment: Dr receivable / Cr Outstanding Payments.
        self.assertLines(last.reversal_move_id, [(self.deposit, 40.0, 0.0), (self.receivable, 0.0, 40.0)])
        self.assertLines(
            last.reversal_payment_id.move_id,
            [(self.receivable, 40.0, 0.0), (self.outstanding_payments, 0.0, 40.0)],
        )
        self.assertEqual(last.reversal_payment_id.journal_id, self.cash_journal)

    def test_a_refund_on_closure_books_a_credit_note_and_a_payment_on_outstanding_payments(self):
        self.topup(self.account_1, 70.0, journal=self.wechat)
        refund = self.account_1._refund_and_close(self.wechat, "moving out")
        self.assertLines(refund, [(self.deposit, 70.0, 0.0), (self.receivable, 0.0, 70.0)])
        payment_move = refund.line_ids.matched_debit_ids.debit_move_id.move_id
        self.assertEqual(payment_move.origin_payment_id.payment_type, "outbound")
        self.assertEqual(payment_move.journal_id, self.wechat)
        self.assertLines(payment_move, [(self.receivable, 70.0, 0.0), (self.outstanding_payments, 0.0, 70.0)])
