from datetime import date

from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged
from odoo.tools import SQL

from .common import BillingCommon


@tagged("post_install", "-at_install")
class TestReports(BillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cashier = cls.env["res.users"].create(
            {
                "name": "Report Cashier",
                "login": "report_cashier",
                "company_id": cls.company.id,
                "company_ids": [Command.set(cls.company.ids)],
                "groups_id": [Command.set([cls.env.ref("prepaid_base.group_prepaid_user").id])],
            }
        )

    def scenario(self):
        """Top-ups by two operators, a reversal, a fee, apportionment, consumption and a refund."""
        self.topup(self.account_1, 100.0)
        wizard = (
            self.env["prepaid.topup.wizard"]
            .with_user(self.cashier)
            .create(
                {
                    "account_id": self.account_1.id,
                    "amount": 40.0,
                    "journal_id": self.cash_journal.id,
                    "print_receipt": False,
                }
            )
        )
        wizard.action_confirm()
        self.topup(self.account_2, 30.0)
        self.env["prepaid.reverse.wizard"].create(
            {"account_id": self.account_2.id, "reason": "wrong"}
        ).action_reverse()
        self.post(self.account_1, -5.0, "rep:fee", kind="fee")
        self.post(self.account_1, -3.0, "rep:appt", kind="apportionment")
        self.post(self.account_1, -7.0, "rep:cons", kind="consumption", utility="electricity", quantity=7.0)
        self.post(self.account_1, -10.0, "rep:refund", kind="refund")
        self.env.flush_all()

    def grouped(self, model, groupby, domain=(), measure="amount:sum", user=None):
        Model = self.env[model].with_user(user) if user else self.env[model]
        groups = Model.read_group(list(domain), [measure], groupby, lazy=False)
        return groups

    def test_order_overview_equals_the_ledger(self):
        self.scenario()
        accounts = (self.account_1 | self.account_2).ids
        domain = [("account_id", "in", accounts)]
        report = {g["kind"]: g["amount"] for g in self.grouped("prepaid.order.report", ["kind"], domain)}
        ledger = {
            g["kind"]: g["amount"]
            for g in self.env["prepaid.ledger"].read_group(domain, ["amount:sum"], ["kind"], lazy=False)
        }
        self.assertEqual(report, ledger)
        self.assertEqual(report["topup"], 170.0)
        self.assertEqual(report["reversal"], -30.0)
        self.assertEqual(report["refund"], -10.0)
        # The operator of a top-up is the cashier who took the money.
        operators = {
            g["user_id"][0]: g["amount"]
            for g in self.grouped("prepaid.order.report", ["user_id"], [*domain, ("kind", "=", "topup")])
        }
        self.assertEqual(operators, {self.env.uid: 130.0, self.cashier.id: 40.0})
        row = self.env["prepaid.order.report"].search([*domain, ("user_id", "=", self.cashier.id)])
        self.assertRecordValues(
            row,
            [
                {
                    "channel": "cashier",
                    "journal_id": self.cash_journal.id,
                    "building_id": self.building.id,
                    "unit_id": self.unit_1.id,
                    "amount": 40.0,
                }
            ],
        )

    def test_income_summary_by_composition(self):
        self.scenario()
        domain = [("account_id", "in", (self.account_1 | self.account_2).ids)]
        income = {
            g["composition"]: g["income"]
            for g in self.grouped("prepaid.order.report", ["composition"], domain, "income:sum")
        }
        self.assertEqual(income["electricity"], 7.0)
        self.assertEqual(income["fee"], 5.0)
        self.assertEqual(income["apportionment"], 3.0)
        self.assertEqual(income["topup"], 0.0)
        by_month = self.grouped("prepaid.order.report", ["date:month"], domain, "income:sum")
        self.assertEqual(sum(g["income"] for g in by_month), 15.0)

    def insert_fact(self, day, quantity, amount=0.0, meter=None):
        meter = meter or self.meter_1
        self.env.cr.execute(
            SQL(
                """INSERT INTO prepaid_consumption (meter_id, account_id, day, company_id, utility, unit_id,
                       building_id, quantity, sharp, peak, flat, valley, free_quantity, amount, intervals)
                   VALUES (%s, NULL, %s, %s, %s, %s, %s, %s, 0, 0, %s, 0, 0, %s, 96)""",
                meter.id,
                day,
                self.company.id,
                meter.utility,
                meter.unit_id.id,
                self.building.id,
                quantity,
                quantity,
                amount,
            )
        )

    def test_consumption_report_month_on_month_and_year_on_year(self):
        self.insert_fact(date(2025, 1, 10), 10.0, 1.0)
        self.insert_fact(date(2025, 1, 31), 1.0)
        self.insert_fact(date(2025, 2, 10), 20.0, 2.0)
        self.insert_fact(date(2026, 2, 10), 30.0, 3.0)
        domain = [("meter_id", "=", self.meter_1.id), ("quantity", "!=", 99999)]
        groups = {
            g["__range"]["day:month"]["from"]: g
            for g in self.env["prepaid.consumption.report"].read_group(
                domain,
                ["quantity:sum", "quantity_prev_month:sum", "quantity_prev_year:sum", "amount_prev_year:sum"],
                ["day:month"],
                lazy=False,
            )
        }
        feb_2026 = groups["2026-02-01"]
        self.assertEqual(feb_2026["quantity"], 30.0)
        self.assertEqual(feb_2026["quantity_prev_month"], 0.0)
        self.assertEqual(feb_2026["quantity_prev_year"], 20.0)
        self.assertEqual(feb_2026["amount_prev_year"], 2.0)
        feb_2025 = groups["2025-02-01"]
        self.assertEqual(feb_2025["quantity"], 20.0)
        self.assertEqual(feb_2025["quantity_prev_month"], 11.0)  # 31 January lands on 28 February
        # The property tree and the bands come along; the total is the facts' own.
        row = self.env["prepaid.consumption.report"].search(
            [("meter_id", "=", self.meter_1.id), ("day", "=", "2026-02-01"), ("quantity", ">", 0)]
        )
        self.assertRecordValues(
            row,
            [
                {
                    "unit_id": self.unit_1.id,
                    "floor_id": self.floor.id,
                    "building_id": self.building.id,
                    "flat": 30.0,
                    "amount": 3.0,
                }
            ],
        )
        total = sum(
            g["quantity"]
            for g in self.env["prepaid.consumption.report"].read_group(
                [("meter_id", "=", self.meter_1.id)], ["quantity:sum"], ["building_id"], lazy=False
            )
        )
        self.assertEqual(total, 61.0)

    def test_the_monthly_aggregate_follows_the_facts(self):
        """Inserted, upserted (the settlement's way), updated and deleted facts: the report is their sum."""
        self.insert_fact(date(2025, 5, 3), 4.0, 1.0)
        self.insert_fact(date(2025, 5, 4), 6.0, 1.0)
        self.env.cr.execute(
            SQL(
                """INSERT INTO prepaid_consumption (meter_id, account_id, day, company_id, utility, unit_id,
                       building_id, quantity, amount, intervals)
                   VALUES (%s, NULL, '2025-05-04', %s, 'electricity', %s, %s, 2, 0.5, 4)
                   ON CONFLICT (meter_id, COALESCE(account_id, 0), day)
                   DO UPDATE SET quantity = prepaid_consumption.quantity + EXCLUDED.quantity,
                                 amount = prepaid_consumption.amount + EXCLUDED.amount""",
                self.meter_1.id,
                self.company.id,
                self.unit_1.id,
                self.building.id,
            )
        )

        def may():
            self.env.invalidate_all()
            groups = self.env["prepaid.consumption.report"].read_group(
                [("meter_id", "=", self.meter_1.id), ("day", "=", "2025-05-01")],
                ["quantity:sum", "amount:sum"],
                [],
                lazy=False,
            )
            return groups[0]["quantity"], groups[0]["amount"]

        self.assertEqual(may(), (12.0, 2.5))
        self.env.cr.execute(
            SQL(
                "UPDATE prepaid_consumption SET quantity = 1 WHERE meter_id = %s AND day = '2025-05-03'",
                self.meter_1.id,
            )
        )
        self.assertEqual(may(), (9.0, 2.5))
        self.env.cr.execute(
            SQL("DELETE FROM prepaid_consumption WHERE meter_id = %s AND day = '2025-05-04'", self.meter_1.id)
        )
        self.assertEqual(may(), (1.0, 1.0))

    def test_an_operator_limited_to_a_unit_sees_nothing_of_another(self):
        self.scenario()
        self.insert_fact(date(2025, 3, 1), 5.0)
        self.insert_fact(date(2025, 3, 1), 6.0, meter=self.meter_2)
        self.cashier.prepaid_property_ids = [Command.set(self.unit_2.ids)]
        orders = self.env["prepaid.order.report"].with_user(self.cashier).search([])
        self.assertTrue(orders)
        self.assertEqual(orders.account_id, self.account_2)
        facts = self.env["prepaid.consumption.report"].with_user(self.cashier).search([])
        self.assertEqual(facts.meter_id, self.meter_2)
        # Accountants read all of their company.
        accountant = self.env["res.users"].create(
            {
                "name": "Report Accountant",
                "login": "report_accountant",
                "company_id": self.company.id,
                "company_ids": [Command.set(self.company.ids)],
                "groups_id": [Command.set([self.env.ref("account.group_account_readonly").id])],
            }
        )
        seen = self.env["prepaid.order.report"].with_user(accountant).search([]).account_id
        self.assertEqual(seen & (self.account_1 | self.account_2), self.account_1 | self.account_2)
        self.assertIn(
            self.meter_1, self.env["prepaid.consumption.report"].with_user(accountant).search([]).meter_id
        )
        # Nobody writes.
        with self.assertRaises(AccessError):
            orders[:1].with_user(accountant).write({"amount": 1.0})

    def test_portal_users_get_nothing(self):
        self.scenario()
        portal = self.env["res.users"].create(
            {
                "name": "Report Portal",
                "login": "report_portal",
                "partner_id": self.tenant_1.id,
                "groups_id": [Command.set([self.env.ref("base.group_portal").id])],
            }
        )
        for model in ("prepaid.order.report", "prepaid.consumption.report"):
            with self.assertRaises(AccessError):
                self.env[model].with_user(portal).search([])

    def test_cashier_shift_report_prints_the_operators_totals(self):
        self.scenario()
        wizard = self.env["prepaid.shift.report.wizard"].with_user(self.cashier).create({})
        self.assertEqual(wizard.user_id, self.cashier)
        rows, total = wizard._shift_totals()
        self.assertEqual(total, 40.0)
        self.assertEqual([row[2:] for row in rows], [(1, 40.0)])
        html, _kind = (
            self.env["ir.actions.report"]
            .with_user(self.cashier)
            ._render_qweb_html("prepaid_billing.action_report_prepaid_shift", wizard.ids)
        )
        html = html.decode()
        self.assertIn("Cashier Shift Report", html)
        self.assertIn("Report Cashier", html)
        self.assertIn("40.00", html)
        self.assertNotIn("130.00", html)  # the other operator's top-ups
        content = wizard._export_xlsx()
        import io
        import zipfile

        with zipfile.ZipFile(io.BytesIO(content)) as book:
            sheet = book.read("xl/worksheets/sheet1.xml").decode()
            strings = book.read("xl/sharedStrings.xml").decode()
        self.assertIn("<v>40</v>", sheet)
        self.assertIn("Report Cashier", strings)
        with self.assertRaises(ValidationError):
            wizard.write({"date_from": "2030-01-02", "date_to": "2030-01-01"})
