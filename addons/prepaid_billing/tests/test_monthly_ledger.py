import io
import zipfile
from datetime import UTC, date, datetime, timedelta

from odoo import Command
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from .common import BillingCommon

FEB = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
MAR = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


@tagged("post_install", "-at_install")
class TestMonthlyLedger(BillingCommon):
    """The monthly ledger of a building: its figures are the daily facts and the fee/apportionment ledger
    lines of the settlement cycle starting in the month, last month beside them; review freezes them and the
    data moving afterwards flags the ledger; exports in XLSX and PDF."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.water_meter = cls._create_meter(cls.unit_1, "W-101", model=cls.model_water)
        cls.topup(cls, cls.account_1, 500.0)
        # February: 4 kWh; March: 6 kWh and 3 m3 of water (3.00 a m3) for account 1; nothing for account 2.
        for at, total in ((FEB, 100), (FEB + QUARTER, 104), (MAR, 104), (MAR + QUARTER, 110)):
            cls.ingest(cls, cls.meter_1, at, total)
        cls.ingest(cls, cls.water_meter, MAR, 10)
        cls.ingest(cls, cls.water_meter, MAR + QUARTER, 13)
        cls.post(cls, cls.account_1, -50.0, "ml:fee:1", kind="fee", date=datetime(2026, 3, 5, 1, 0))
        cls.post(
            cls, cls.account_1, -7.43, "ml:share:1", kind="apportionment", date=datetime(2026, 3, 20, 1, 0)
        )
        # A fee of April (the ledger of March does not count it).
        cls.post(cls, cls.account_1, -99.0, "ml:fee:april", kind="fee", date=datetime(2026, 4, 2, 1, 0))
        cls.Ledger = cls.env["prepaid.monthly.ledger"]

    def generate(self, year=2026, month=3):
        return self.Ledger._generate(self.building, year, month)

    def line_of(self, ledger, account):
        return ledger.line_ids.filtered(lambda line: line.account_id == account)

    # ------------------------------------------------------------------ figures

    def test_figures_are_the_facts_and_the_ledger_of_the_cycle_with_last_month(self):
        ledger = self.generate()
        self.assertRecordValues(
            ledger,
            [
                {
                    "state": "draft",
                    "month": date(2026, 3, 1),
                    "date_from": date(2026, 3, 1),
                    "date_to": date(2026, 3, 31),
                    "period_start": datetime(2026, 2, 28, 16, 0),  # midnight in Shanghai
                    "company_id": self.company.id,
                    "line_count": 2,
                }
            ],
        )
        facts = self.env["prepaid.consumption"].search(
            [("account_id", "=", self.account_1.id), ("day", ">=", "2026-03-01"), ("day", "<", "2026-04-01")]
        )
        line = self.line_of(ledger, self.account_1)
        electricity = facts.filtered(lambda f: f.utility == "electricity")
        self.assertEqual(line.electricity_quantity, sum(electricity.mapped("quantity")))
        self.assertRecordValues(
            line,
            [
                {
                    "partner_id": self.tenant_1.id,
                    "unit_names": "B-101",
                    "electricity_quantity": 6.0,
                    "electricity_amount": 6.0,
                    "previous_electricity_quantity": 4.0,
                    "electricity_difference": 2.0,
                    "electricity_percent": 50.0,
                    "electricity_percent_none": False,
                    "water_quantity": 3.0,
                    "water_amount": 9.0,
                    "previous_water_quantity": 0.0,
                    "water_percent_none": True,
                    "fees": 50.0,
                    "apportionment": 7.43,
                    "total": 72.43,
                }
            ],
        )
        self.assertEqual(line.water_change, "new")
        self.assertEqual(line.electricity_change, "+50.0 %")
        # Account 2 is open in the building without any figure: listed with zeros.
        self.assertRecordValues(self.line_of(ledger, self.account_2), [{"total": 0.0, "water_percent": 0.0}])
        self.assertRecordValues(
            ledger,
            [
                {
                    "electricity_quantity": 6.0,
                    "previous_electricity_quantity": 4.0,
                    "electricity_percent": 50.0,
                    "water_quantity": 3.0,
                    "fees": 50.0,
                    "apportionment": 7.43,
                    "total": 72.43,
                }
            ],
        )
        february = self.generate(2026, 2)
        self.assertEqual(self.line_of(february, self.account_1).electricity_quantity, 4.0)
        self.assertTrue(self.line_of(february, self.account_1).electricity_percent_none)

    def test_a_draft_is_refreshed_and_the_cron_twice_makes_one_ledger(self):
        now = datetime(2026, 4, 3, tzinfo=UTC)
        self.Ledger._cron_generate(now=now)
        self.Ledger._cron_generate(now=now)
        ledgers = self.Ledger.search([("building_id", "=", self.building.id)])
        self.assertEqual(len(ledgers), 1)
        self.assertEqual((ledgers.month, len(ledgers.line_ids)), (date(2026, 3, 1), 2))
        self.assertEqual(ledgers.total, 72.43)
        self.post(self.account_2, -10.0, "ml:fee:2", kind="fee", date=datetime(2026, 3, 6))
        ledgers.action_refresh()
        self.assertEqual(len(ledgers.line_ids), 2)
        self.assertEqual((self.line_of(ledgers, self.account_2).fees, ledgers.total), (10.0, 82.43))

    # ------------------------------------------------------------------ review

    def test_review_freezes_and_data_moving_flags_without_changing_figures(self):
        ledger = self.generate()
        ledger.action_review()
        self.assertRecordValues(
            ledger, [{"state": "reviewed", "reviewer_id": self.env.uid, "changed_since_review": False}]
        )
        self.assertTrue(ledger.review_date)
        self.post(self.account_1, -5.0, "ml:fee:late", kind="fee", date=datetime(2026, 3, 25))
        self.assertEqual(self.generate(), ledger)  # generation leaves a reviewed ledger alone
        ledger._check_changed_since_review()
        self.assertTrue(ledger.changed_since_review)
        self.assertIn("Fees 50.00 → 55.00", ledger.change_description)
        self.assertIn(self.account_1.name, ledger.change_description)
        self.assertEqual((self.line_of(ledger, self.account_1).fees, ledger.total), (50.0, 72.43))
        # The cron checks the reviewed ledgers too; the manager resets to draft, which recomputes.
        ledger.action_reset_to_draft()
        self.assertRecordValues(
            ledger, [{"state": "draft", "reviewer_id": False, "changed_since_review": False, "total": 77.43}]
        )
        with self.assertRaises(UserError):
            ledger.action_export_xlsx()

    def test_the_flag_clears_when_the_data_comes_back(self):
        ledger = self.generate()
        ledger.action_review()
        self.post(self.account_1, -5.0, "ml:fee:x", kind="fee", date=datetime(2026, 3, 25))
        self.Ledger._cron_generate(now=datetime(2026, 4, 3, tzinfo=UTC))
        self.assertTrue(ledger.changed_since_review)
        self.post(self.account_1, 5.0, "ml:fee:x:back", kind="fee", date=datetime(2026, 3, 26))
        ledger.action_check_changes()
        self.assertFalse(ledger.changed_since_review)

    def test_months_of_a_building_are_checked_each_over_its_own_period(self):
        ledgers = self.generate(2026, 2) | self.generate(2026, 3)
        ledgers.action_review()
        self.assertEqual(ledgers.mapped("changed_since_review"), [False, False])
        # The building's cycle moves to the 10th: the ledgers made keep their periods, nothing is flagged.
        self.building.settlement_day = 10
        self.assertFalse(self.Ledger._check_changed_since_review(now=datetime(2026, 4, 12, tzinfo=UTC)))
        self.post(self.account_1, -3.0, "ml:fee:feb", kind="fee", date=datetime(2026, 2, 20))
        ledgers.action_check_changes()
        february, march = ledgers.sorted("month")
        self.assertEqual((february.changed_since_review, march.changed_since_review), (True, False))
        self.assertIn("0.00 → 3.00", february.change_description)

    # ------------------------------------------------------------------ exports

    def test_xlsx_has_a_sheet_per_building_frozen_header_and_totals_and_marks_exported(self):
        other = self.env["prepaid.property"].create({"name": "Block C", "code": "C", "kind": "building"})
        ledgers = self.generate() | self.Ledger._generate(other, 2026, 3)
        ledgers.action_review()
        action = ledgers.action_export_xlsx()
        self.assertEqual(action["url"], f"/prepaid/monthly_ledger/xlsx?ids={ledgers[0].id},{ledgers[1].id}")
        content = ledgers._export_xlsx()
        self.assertEqual(set(ledgers.mapped("state")), {"exported"})
        self.assertEqual(ledgers.export_user_id, self.env.user)
        sheets = self.read_xlsx(content)
        self.assertEqual(set(sheets), {"Block B 2026-03", "Block C 2026-03"})
        block_b = sheets["Block B 2026-03"]
        self.assertEqual(block_b["pane"], "D7")  # header row 6 frozen, and the account columns
        self.assertEqual(block_b["rows"][6][:4], ["Account", "Tenant", "Units", "Electricity (kWh)"])
        totals = block_b["rows"][max(block_b["rows"])]
        self.assertEqual(totals[0], "Total")
        self.assertEqual(float(totals[15]), 72.43)
        self.assertEqual(float(totals[3]), 6.0)
        self.assertIn("0.000", block_b["formats"])

    def read_xlsx(self, content):
        """{sheet name: {'pane': top-left cell of the scrolling pane, 'rows': {row: [values]}, 'formats'}}"""
        try:
            import openpyxl
        except ImportError:  # pragma: no cover
            openpyxl = None
        if openpyxl:
            book = openpyxl.load_workbook(io.BytesIO(content))
            result = {}
            for sheet in book.worksheets:
                rows = {
                    cells[0].row: [cell.value for cell in cells]
                    for cells in sheet.iter_rows()
                    if cells[0].row >= 6
                }
                formats = {cell.number_format for cells in sheet.iter_rows() for cell in cells}
                result[sheet.title] = {"pane": sheet.freeze_panes, "rows": rows, "formats": " ".join(formats)}
            return result
        with zipfile.ZipFile(io.BytesIO(content)) as archive:  # pragma: no cover
            return {name: {"pane": None, "rows": {}, "formats": ""} for name in archive.namelist()}

    def test_pdf_renders_in_english_and_chinese(self):
        ledger = self.generate()
        ledger.action_review()
        report = "prepaid_billing.action_report_prepaid_monthly_ledger"
        html, _kind = self.env["ir.actions.report"]._render_qweb_html(report, ledger.ids)
        html = html.decode()
        self.assertIn("Monthly Ledger", html)
        self.assertIn("Apportioned Shares", html)
        self.assertIn("72.43", html)
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["prepaid_billing"], ["zh_CN"], overwrite=True)
        zh_html, _kind = (
            self.env["ir.actions.report"].with_context(lang="zh_CN")._render_qweb_html(report, ledger.ids)
        )
        zh_html = zh_html.decode()
        self.assertTrue("月报表台账" in zh_html and "已审核" in zh_html, "the PDF speaks Chinese")
        zh_ledger = ledger.with_context(lang="zh_CN")
        sheets = self.read_xlsx(zh_ledger._export_xlsx())
        [sheet] = sheets.values()
        self.assertEqual(sheet["rows"][6][0], "账户")
        self.assertEqual(sheet["rows"][max(sheet["rows"])][0], "合计")

    # ------------------------------------------------------------------ rights

    def test_operators_read_but_do_not_review_and_nobody_types_figures(self):
        ledger = self.generate()
        operator = self.new_operator("ml_operator")
        as_operator = ledger.with_user(operator)
        self.assertEqual(as_operator.total, 72.43)
        for method in ("action_review", "action_refresh", "action_reset_to_draft", "action_check_changes"):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(as_operator, method)()
        with self.assertRaises(AccessError):
            as_operator.write({"total": 1.0})
        with self.assertRaises(AccessError):
            ledger.write({"total": 1.0})  # a manager neither
        with self.assertRaises(AccessError):
            ledger.write({"state": "reviewed"})
        with self.assertRaises(AccessError):
            ledger.line_ids[:1].write({"fees": 1.0})
        with self.assertRaises(AccessError):
            self.Ledger.create({"building_id": self.building.id, "company_id": self.company.id})
        with self.assertRaises(AccessError):
            self.env["prepaid.monthly.ledger.line"].create({"ledger_id": ledger.id, "fees": 1.0})
        ledger.write({"note": "checked with the accountant"})  # the note is the manager's
        self.assertEqual(ledger.state, "draft")
        self.assertEqual(internal(ledger).line_ids[:1].ledger_id, ledger)


@tagged("post_install", "-at_install")
class TestMonthlyLedgerDownload(BillingCommon, HttpCase):
    """The XLSX download route: a user who reads the ledgers gets the workbook (and marks them exported);
    one who cannot read them gets nothing and marks nothing."""

    def test_the_route_serves_the_workbook_to_readers_only(self):
        ledger = self.env["prepaid.monthly.ledger"]._generate(self.building, 2026, 3)
        ledger.action_review()
        reader = new_test_user(
            self.env, login="ml_reader", groups="prepaid_base.group_prepaid_user", company_id=self.company.id
        )
        other_floor = self.env["prepaid.property"].create(
            {"name": "ML-F2", "code": "ML-F2", "kind": "floor", "parent_id": self.building.id}
        )
        outsider = new_test_user(
            self.env,
            login="ml_outsider",
            groups="prepaid_base.group_prepaid_user",
            company_id=self.company.id,
            prepaid_property_ids=[Command.set(other_floor.ids)],
        )
        self.assertTrue(reader and outsider)
        self.authenticate("ml_outsider", "ml_outsider")
        with mute_logger("odoo.http"):
            refused = self.url_open(f"/prepaid/monthly_ledger/xlsx?ids={ledger.id}")
        self.assertEqual(refused.status_code, 403)
        self.assertEqual(ledger.state, "reviewed")
        self.authenticate("ml_reader", "ml_reader")
        response = self.url_open(f"/prepaid/monthly_ledger/xlsx?ids={ledger.id}")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.content.startswith(b"PK"))
        self.assertIn("attachment", response.headers["Content-Disposition"])
        ledger.invalidate_recordset()
        self.assertEqual((ledger.state, ledger.export_user_id), ("exported", reader))
