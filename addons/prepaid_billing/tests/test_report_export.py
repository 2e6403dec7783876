import io
import zipfile
from datetime import date
from unittest.mock import patch

from odoo import Command, fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import HttpCase, tagged
from odoo.tools import SQL, mute_logger

from ..wizards import prepaid_report_export_wizard as export_module
from .common import BillingCommon

try:
    import openpyxl
except ImportError:  # pragma: no cover - the zip fallback below reads the values
    openpyxl = None


def sheet_rows(content):
    """The first sheet's rows as tuples of values (openpyxl, else the cells' text read from the zip)."""
    if openpyxl is not None:
        book = openpyxl.load_workbook(io.BytesIO(content), data_only=True)
        return [tuple(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    import re

    with zipfile.ZipFile(io.BytesIO(content)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    rows = []
    for row in re.findall(r"<row [^>]*>(.*?)</row>", sheet, re.S):
        values = []
        for cell in re.findall(r"<c [^>]*>(.*?)</c>", row, re.S):
            text = re.search(r"<t[^>]*>(.*?)</t>", cell, re.S)
            number = re.search(r"<v>(.*?)</v>", cell, re.S)
            values.append(text.group(1) if text else float(number.group(1)) if number else None)
        rows.append(tuple(values))
    return rows


@tagged("post_install", "-at_install")
class TestReportExport(BillingCommon, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        group = cls.env.ref("prepaid_base.group_prepaid_user")
        cls.cashier, cls.other_cashier = cls.env["res.users"].create(
            [
                {
                    "name": f"Export Cashier {login}",
                    "login": login,
                    "password": login,
                    "tz": "Asia/Shanghai",
                    "company_id": cls.company.id,
                    "company_ids": [Command.set(cls.company.ids)],
                    "groups_id": [Command.set(group.ids)],
                }
                for login in ("export_cashier", "export_other")
            ]
        )
        cls.plain = cls.env["res.users"].create(
            {
                "name": "Export Plain",
                "login": "export_plain",
                "company_id": cls.company.id,
                "company_ids": [Command.set(cls.company.ids)],
                "groups_id": [Command.set(cls.env.ref("base.group_user").ids)],
            }
        )

    def scenario(self):
        """Top-ups, a fee, apportionment and consumption on the fixture building's accounts, today."""
        self.topup(self.account_1, 100.0)
        self.topup(self.account_2, 30.0)
        self.post(self.account_1, -5.0, "exp:fee", kind="fee")
        self.post(self.account_1, -3.0, "exp:appt", kind="apportionment")
        self.post(self.account_1, -7.0, "exp:cons", kind="consumption", utility="electricity", quantity=7.0)
        self.post(self.account_2, -2.5, "exp:water", kind="consumption", utility="water", quantity=0.5)
        self.env.flush_all()

    def insert_fact(self, day, quantity, amount=0.0, meter=None):
        meter = meter or self.meter_1
        self.env.cr.execute(
            SQL(
                """INSERT INTO prepaid_consumption (meter_id, account_id, day, company_id, utility, unit_id,
                       building_id, quantity, sharp, peak, flat, valley, free_quantity, amount, intervals)
                   VALUES (%s, NULL, %s, %s, %s, %s, %s, %s, 0, %s, %s, 0, 0, %s, 96)""",
                meter.id,
                day,
                self.company.id,
                meter.utility,
                meter.unit_id.id,
                self.building.id,
                quantity,
                quantity / 2,
                quantity / 2,
                amount,
            )
        )

    def wizard(self, user=None, **vals):
        Wizard = self.env["prepaid.report.export.wizard"].with_user(user or self.cashier)
        return Wizard.create({"building_ids": [Command.set(self.building.ids)], **vals})

    def month_bounds(self, wizard):
        return wizard._datetime_bounds()

    # ------------------------------------------------------------------ the workbooks

    def test_order_overview_workbook_lists_the_movements_and_their_total(self):
        self.scenario()
        wizard = self.wizard()
        today = fields.Date.context_today(wizard)
        self.assertEqual(wizard.date_from, today.replace(day=1))
        self.assertEqual(wizard.date_to.month, today.month)
        self.assertGreater(wizard.date_to, wizard.date_from)
        action = wizard.action_export_xlsx()
        self.assertEqual(action["url"], f"/prepaid_billing/report_export/{wizard.id}/xlsx")
        rows = sheet_rows(wizard._export_xlsx())
        self.assertEqual(rows[0][0], self.company.name)
        self.assertEqual(rows[0][1], "Order Overview")
        self.assertEqual(
            rows[2],
            (
                "Date",
                "Kind",
                "Account",
                "Tenant",
                "Building",
                "Unit",
                "Channel",
                "Journal",
                "Operator",
                "Quantity",
                "Amount",
            ),
        )
        start, end = self.month_bounds(wizard)
        domain = [("building_id", "=", self.building.id), ("date", ">=", start), ("date", "<", end)]
        [(expected,)] = self.env["prepaid.order.report"]._read_group(domain, [], ["amount:sum"])
        data, total = rows[3:-1], rows[-1]
        self.assertEqual(len(data), self.env["prepaid.order.report"].search_count(domain))
        self.assertEqual(total[0], "Total")
        self.assertAlmostEqual(total[-1], expected)
        self.assertAlmostEqual(total[-1], 112.5)
        self.assertAlmostEqual(total[-2], 7.5)  # the quantities
        self.assertIn("Top-up", {row[1] for row in data})
        self.assertIn(self.account_1.display_name, {row[2] for row in data})
        # The title's generation time and the movements' dates are in the user's time zone.
        self.assertTrue(rows[0][3].endswith("(Asia/Shanghai)"), rows[0][3])
        first = self.env["prepaid.order.report"].search(domain, order="id", limit=1)
        local = fields.Datetime.context_timestamp(first.with_user(self.cashier), first.date).replace(
            tzinfo=None
        )
        self.assertLess(abs(data[0][0] - local).total_seconds(), 1)

    def test_order_overview_is_read_in_chunks(self):
        self.scenario()
        wizard = self.wizard()
        with patch.object(export_module, "CHUNK", 2):
            chunks = list(wizard._order_chunks())
            rows = sheet_rows(wizard._export_xlsx())
        self.assertEqual([len(chunk) for chunk in chunks], [2, 2, 2])
        ids = [row["id"] for chunk in chunks for row in chunk]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(rows[3:-1]), 6)
        self.assertAlmostEqual(rows[-1][-1], 112.5)

    def test_income_summary_workbook_per_month_and_composition(self):
        self.scenario()
        wizard = self.wizard(report="income", period="month")
        rows = sheet_rows(wizard._export_xlsx())
        self.assertEqual(rows[0][1], "Income Summary")
        self.assertEqual(rows[2], ("Date", "Electricity", "Water", "Fees", "Apportionment", "Total"))
        start, end = self.month_bounds(wizard)
        domain = [
            ("building_id", "=", self.building.id),
            ("date", ">=", start),
            ("date", "<", end),
            ("kind", "in", ("consumption", "fee", "apportionment")),
        ]
        [(expected,)] = self.env["prepaid.order.report"]._read_group(domain, [], ["income:sum"])
        self.assertEqual(len(rows), 5)  # title, blank, header, this month, totals
        self.assertEqual(rows[-1][0], "Total")
        self.assertAlmostEqual(rows[-1][-1], expected)
        self.assertAlmostEqual(rows[-1][-1], 17.5)
        self.assertEqual(rows[-1][1:5], (7.0, 2.5, 5.0, 3.0))
        by_day = sheet_rows(self.wizard(report="income", period="day")._export_xlsx())
        self.assertAlmostEqual(by_day[-1][-1], 17.5)

    def test_consumption_workbook_per_building_and_month_with_the_bands_and_the_year_before(self):
        self.insert_fact(date(2025, 1, 10), 10.0, 1.0)
        self.insert_fact(date(2025, 2, 10), 20.0, 2.0)
        self.insert_fact(date(2026, 2, 10), 30.0, 3.0)
        self.insert_fact(date(2026, 2, 11), 4.0, 0.5, meter=self.meter_2)
        wizard = self.wizard(
            report="consumption", date_from="2025-01-01", date_to="2026-02-28", dimension="building"
        )
        rows = sheet_rows(wizard._export_xlsx())
        self.assertEqual(rows[0][1], "Consumption Report")
        self.assertEqual(
            rows[2],
            (
                "Building",
                "Utility",
                "Month",
                "Quantity",
                "Sharp",
                "Peak",
                "Flat",
                "Valley",
                "Free Allowance Used",
                "Amount",
                "Quantity Previous Month",
                "Quantity Previous Year",
                "Amount Previous Month",
                "Amount Previous Year",
            ),
        )
        domain = [
            ("building_id", "=", self.building.id),
            ("day", ">=", "2025-01-01"),
            ("day", "<=", "2026-02-28"),
        ]
        [(quantity, prev_year, amount)] = self.env["prepaid.consumption.report"]._read_group(
            domain, [], ["quantity:sum", "quantity_prev_year:sum", "amount:sum"]
        )
        total = rows[-1]
        self.assertEqual(total[0], "Total")
        self.assertAlmostEqual(total[3], quantity)
        self.assertAlmostEqual(total[3], 64.0)
        self.assertAlmostEqual(total[5], 32.0)  # the peak band
        self.assertAlmostEqual(total[9], amount)
        self.assertAlmostEqual(total[11], prev_year)
        self.assertAlmostEqual(total[11], 30.0)  # January and February 2025, a year on
        feb_2026 = [row for row in rows[3:-1] if row[2] and row[2].year == 2026 and row[2].month == 2]
        self.assertEqual(len(feb_2026), 1)
        self.assertEqual(feb_2026[0][0], self.building.display_name)
        self.assertAlmostEqual(feb_2026[0][3], 34.0)
        self.assertAlmostEqual(feb_2026[0][11], 20.0)
        # Per meter, per year: the same total.
        by_meter = sheet_rows(
            self.wizard(
                report="consumption",
                date_from="2025-01-01",
                date_to="2026-02-28",
                dimension="meter",
                period="year",
            )._export_xlsx()
        )
        self.assertEqual(by_meter[2][0], "Meter")
        meters = {row[0] for row in by_meter[3:-1]}
        self.assertEqual(meters, {self.meter_1.display_name, self.meter_2.display_name})
        self.assertAlmostEqual(by_meter[-1][3], 64.0)

    def test_the_workbook_speaks_the_users_language(self):
        self.scenario()
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["prepaid_billing"], ["zh_CN"], overwrite=True)
        wizard = self.wizard().with_context(lang="zh_CN")
        rows = sheet_rows(wizard._export_xlsx())
        self.assertEqual(rows[2][:2], ("日期", "类型"))
        self.assertEqual(rows[-1][0], "合计")
        kinds = dict(wizard.env["prepaid.order.report"]._fields["kind"]._description_selection(wizard.env))
        self.assertNotEqual(kinds["topup"], "Top-up")
        self.assertIn(kinds["topup"], {row[1] for row in rows[3:-1]})

    def test_the_workbook_reads_what_the_user_may_read(self):
        self.scenario()
        self.cashier.prepaid_property_ids = [Command.set(self.unit_2.ids)]
        rows = sheet_rows(self.wizard()._export_xlsx())
        self.assertEqual({row[2] for row in rows[3:-1]}, {self.account_2.display_name})
        self.assertAlmostEqual(rows[-1][-1], 27.5)

    # ------------------------------------------------------------------ checks

    def test_reversed_dates_are_refused(self):
        with self.assertRaises(ValidationError):
            self.wizard(date_from="2026-03-02", date_to="2026-03-01")

    def test_a_user_without_report_access_is_refused(self):
        with self.assertRaises(AccessError):
            self.wizard(user=self.plain)
        wizard = self.wizard()
        with self.assertRaises(AccessError):
            wizard.with_user(self.plain)._export_xlsx()
        with self.assertRaises(AccessError):
            wizard.with_user(self.plain).action_export_xlsx()

    # ------------------------------------------------------------------ the route

    def test_the_route_streams_the_owners_workbook_and_refuses_another_user(self):
        self.scenario()
        wizard = self.wizard()
        self.env.flush_all()
        url = f"/prepaid_billing/report_export/{wizard.id}/xlsx"
        self.authenticate("export_cashier", "export_cashier")
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200)
        self.assertIn("spreadsheetml", response.headers["Content-Type"])
        name = f"order_overview_{wizard.date_from}_{wizard.date_to}.xlsx"
        self.assertIn(name, response.headers["Content-Disposition"])
        self.assertAlmostEqual(sheet_rows(response.content)[-1][-1], 112.5)
        self.authenticate("export_other", "export_other")
        with mute_logger("odoo.http"):
            response = self.url_open(url)
            self.assertIn(response.status_code, (403, 404))
            missing = self.url_open("/prepaid_billing/report_export/999999999/xlsx")
            self.assertIn(missing.status_code, (403, 404))
