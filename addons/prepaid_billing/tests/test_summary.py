from datetime import date, datetime, timedelta

from odoo.tests import tagged

from .common import T0, BillingCommon


@tagged("post_install", "-at_install")
class TestSummary(BillingCommon):
    def setUp(self):
        super().setUp()
        self.topup(self.account_1, 100.0)
        self.topup(self.account_2, 50.0)
        # Day 1 (2 March, Shanghai): electricity of both tenants; day 2: more, plus a fee and an adjustment.
        self.ingest(self.meter_1, T0, "0")
        self.ingest(self.meter_2, T0, "0")
        self.ingest(self.meter_1, T0 + timedelta(hours=2), "7.5")
        self.ingest(self.meter_2, T0 + timedelta(hours=2), "2.25")
        day2 = T0 + timedelta(days=1)
        self.ingest(self.meter_1, day2, "10")
        self.post(self.account_1, -12.0, "test:fee:1", kind="fee", date=day2)
        self.post(self.account_2, 5.0, "test:adjust:2", kind="adjustment", date=day2)

    def test_one_entry_per_day_tenant_debits_and_revenue_credits(self):
        summaries = self.post_summaries()
        self.assertEqual(summaries.mapped("day"), [date(2026, 3, 2), date(2026, 3, 3)])
        day1, day2 = summaries.sorted("day")
        move = day1.move_id
        self.assertEqual(move.state, "posted")
        self.assertEqual(move.journal_id, self.company.prepaid_journal_id)
        self.assertEqual(move.date, date(2026, 3, 2))
        deposit_lines = move.line_ids.filtered(lambda line: line.account_id == self.deposit)
        self.assertEqual(
            sorted((line.partner_id.name, line.debit) for line in deposit_lines),
            [("Han Meimei", 2.25), ("Li Lei", 7.5)],
        )
        revenue = move.line_ids.filtered(
            lambda line: line.account_id == self.company.prepaid_electricity_revenue_account_id
        )
        self.assertEqual(revenue.credit, 9.75)
        self.assertEqual(day1.line_count, 2)
        self.assertEqual(day1.amount, 9.75)
        lines2 = day2.move_id.line_ids
        fee = lines2.filtered(lambda line: line.account_id == self.company.prepaid_fee_revenue_account_id)
        adjustment = lines2.filtered(
            lambda line: line.account_id == self.company.prepaid_adjustment_account_id
        )
        self.assertEqual(fee.credit, 12.0)
        self.assertEqual(adjustment.debit, 5.0)
        deposit2 = {line.partner_id.name: line.balance for line in lines2 if line.account_id == self.deposit}
        self.assertEqual(deposit2, {"Li Lei": 14.5, "Han Meimei": -5.0})
        self.assertLedgerMatchesAccounting(self.account_1, self.account_2)

    def test_summaries_are_idempotent_and_keep_a_watermark(self):
        first = self.post_summaries()
        watermark = self.company.prepaid_summary_ledger_id
        self.assertEqual(watermark, max(self.env["prepaid.ledger"].search([]).ids))
        self.assertFalse(self.post_summaries())
        self.assertEqual(self.company.prepaid_summary_ledger_id, watermark)
        # A late line of a booked day makes a second entry for that day, nothing is booked twice.
        self.post(self.account_1, -1.0, "test:fee:late", kind="fee", date=T0)
        late = self.post_summaries()
        self.assertEqual(late.day, date(2026, 3, 2))
        self.assertEqual(late.line_count, 1)
        self.assertEqual(len(first | late), 3)
        self.assertLedgerMatchesAccounting(self.account_1, self.account_2)

    def test_todays_lines_wait_for_tomorrow(self):
        until = datetime(2026, 3, 3, 0, 0) - timedelta(hours=8)  # 3 March 00:00 Shanghai, in UTC
        summaries = self.env["prepaid.summary"]._post_company_summaries(self.company, until=until)
        self.assertEqual(summaries.day, date(2026, 3, 2))
        summaries = self.env["prepaid.summary"]._post_company_summaries(self.company, until=until)
        self.assertFalse(summaries)

    def test_a_locked_day_is_booked_after_the_lock_date(self):
        self.company.fiscalyear_lock_date = date(2026, 3, 5)
        summaries = self.post_summaries()
        self.assertEqual(summaries.mapped("date"), [date(2026, 3, 6), date(2026, 3, 6)])
        self.assertEqual(summaries.mapped("move_id.date"), [date(2026, 3, 6), date(2026, 3, 6)])

    def test_cron_books_past_days(self):
        self.env["prepaid.summary"]._cron_post_summaries()
        self.assertEqual(
            self.env["prepaid.summary"].search([("company_id", "=", self.company.id)]).mapped("day"),
            [date(2026, 3, 3), date(2026, 3, 2)],
        )
