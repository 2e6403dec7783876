import odoo
from dateutil.relativedelta import relativedelta
from odoo import Command
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_base.tests.test_ui import needs_browser
from odoo.exceptions import AccessError
from odoo.service.model import get_public_method
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL

from .common import BillingCommon

# The measure each card sums in the report its action opens (the other cards count records).
CARD_MEASURES = {
    "income_today": "income",
    "income_month": "income",
    "income_year": "income",
    "topup_month": "amount",
    "electricity_month": "quantity",
    "water_month": "quantity",
}


@tagged("post_install", "-at_install")
class TestReportDashboard(BillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Dashboard = cls.env["prepaid.report.dashboard"]
        cls.water_meter = cls._create_meter(cls.unit_2, "W-102", model=cls.model_water)
        periods = cls.Dashboard._dashboard_periods()
        cls.month, cls.prev_month = periods["month"], periods["prev_month"]
        cls.last_year = cls.month - relativedelta(years=1)

    def insert_fact(self, day, quantity, meter=None):
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
                quantity,
            )
        )

    def scenario(self):
        """Top-ups on both accounts, consumption and a fee on the first; facts this month, the month before
        and the same month a year before; an open anomaly, an account cut off and one warned."""
        self.topup(self.account_1, 100.0)
        self.topup(self.account_2, 60.0)  # above the warning levels
        self.post(self.account_1, -7.0, "dash:cons", kind="consumption", utility="electricity", quantity=7.0)
        self.post(self.account_1, -5.0, "dash:fee", kind="fee")
        self.post(self.account_2, -2.0, "dash:water", kind="consumption", utility="water", quantity=1.0)
        self.insert_fact(self.month, 10.0)
        self.insert_fact(self.month, 4.0, meter=self.meter_2)
        self.insert_fact(self.prev_month, 7.0)
        self.insert_fact(self.last_year, 4.0)
        self.insert_fact(self.month, 3.0, meter=self.water_meter)
        internal(self.env["prepaid.anomaly"].sudo()).create(
            [
                {"meter_id": self.meter_1.id, "kind": "implausible_reading"},
                {"meter_id": self.meter_2.id, "kind": "implausible_reading", "state": "resolved"},
            ]
        )
        internal(self.account_2).write({"supply_cut": True})
        self.account_1.warn_level_1 = 500.0
        self.env.flush_all()

    def cards(self, data):
        return {card["key"]: card for card in data["kpis"]}

    def report_figure(self, card, user=None):
        """What the report the card opens sums (or counts) on the card's domain, read as ``user``."""
        action = card["action"]
        Model = self.env[action["res_model"]].with_user(user or self.env.user)
        measure = CARD_MEASURES.get(card["key"])
        if not measure:
            return Model.search_count(action["domain"])
        [(total,)] = Model._read_group(action["domain"], aggregates=[f"{measure}:sum"])
        return total or 0.0

    def test_every_card_is_the_sum_of_the_report_it_opens(self):
        self.scenario()
        data = self.Dashboard.get_dashboard_data()
        cards = self.cards(data)
        self.assertEqual(
            list(cards),
            [
                "income_today",
                "income_month",
                "income_year",
                "topup_month",
                "electricity_month",
                "water_month",
                "anomalies_open",
                "accounts_cut",
                "accounts_warning",
            ],
        )
        for key, card in cards.items():
            self.assertAlmostEqual(card["value"], self.report_figure(card), msg=key)
        self.assertEqual(cards["income_today"]["value"], 14.0)
        self.assertEqual(cards["income_month"]["value"], 14.0)
        self.assertEqual(cards["income_year"]["value"], 14.0)
        self.assertEqual(cards["topup_month"]["value"], 160.0)
        self.assertEqual(cards["topup_month"]["note"], "2 top-ups")
        electricity = cards["electricity_month"]
        self.assertEqual((electricity["value"], electricity["previous"]), (14.0, 7.0))
        self.assertEqual(electricity["change"], 100.0)
        self.assertEqual(electricity["unit"], "kWh")
        water = cards["water_month"]
        self.assertEqual((water["value"], water["previous"], water["change"]), (3.0, 0.0, None))
        self.assertEqual(cards["anomalies_open"]["value"], 1)
        self.assertEqual(cards["accounts_cut"]["value"], 1)
        self.assertEqual(cards["accounts_warning"]["value"], 1)
        # The cards open their reports on their own domain, without the reports' default filters.
        self.assertEqual(cards["income_month"]["action"]["res_model"], "prepaid.order.report")
        self.assertEqual(cards["income_month"]["action"]["context"], {})
        self.assertEqual(cards["electricity_month"]["action"]["res_model"], "prepaid.consumption.report")
        self.assertEqual(cards["accounts_cut"]["action"]["res_model"], "prepaid.account")
        self.assertEqual(data["currency"]["symbol"], self.currency.symbol)

    def test_the_charts_are_the_reports_by_month(self):
        self.scenario()
        data = self.Dashboard.get_dashboard_data()
        income = data["income_chart"]
        self.assertEqual(len(income["labels"]), 12)
        by_composition = {dataset["key"]: dataset["data"] for dataset in income["datasets"]}
        self.assertEqual(sorted(by_composition), ["electricity", "fee", "water"])
        self.assertEqual(by_composition["electricity"][-1], 7.0)
        self.assertEqual(by_composition["fee"][-1], 5.0)
        self.assertEqual(by_composition["water"][-1], 2.0)
        self.assertEqual(sum(by_composition["electricity"][:-1]), 0.0)
        # All of the company's income is of this month: the chart holds all of the report's.
        [(total,)] = self.env["prepaid.order.report"]._read_group(
            [("company_id", "=", self.company.id)], aggregates=["income:sum"]
        )
        self.assertEqual(sum(sum(d) for d in by_composition.values()), total)
        charts = {chart["utility"]: chart for chart in data["consumption_charts"]}
        electricity = {d["key"]: d["data"] for d in charts["electricity"]["datasets"]}
        self.assertEqual(electricity["current"][-1], 14.0)
        self.assertEqual(electricity["current"][-2], 7.0)
        self.assertEqual(electricity["previous_year"][-1], 4.0)
        self.assertEqual(electricity["previous_year"][-2], 0.0)
        [(last_year,)] = self.env["prepaid.consumption.report"]._read_group(
            [("utility", "=", "electricity"), ("day", "=", self.month), ("company_id", "=", self.company.id)],
            aggregates=["quantity_prev_year:sum"],
        )
        self.assertEqual(electricity["previous_year"][-1], last_year)
        water = {d["key"]: d["data"] for d in charts["water"]["datasets"]}
        self.assertEqual(water["current"][-1], 3.0)
        self.assertEqual(charts["water"]["unit"], "m³")

    def test_an_operator_limited_to_a_unit_sees_its_figures_only(self):
        self.scenario()
        operator = self.new_operator("dash_operator")
        operator.prepaid_property_ids = [Command.set(self.unit_2.ids)]
        data = self.Dashboard.with_user(operator).get_dashboard_data()
        cards = self.cards(data)
        self.assertEqual(cards["topup_month"]["value"], 60.0)
        self.assertEqual(cards["income_month"]["value"], 2.0)
        self.assertEqual(cards["electricity_month"]["value"], 4.0)  # meter_2 only
        self.assertEqual(cards["accounts_warning"]["value"], 0)
        self.assertEqual(cards["accounts_cut"]["value"], 1)
        for key, card in cards.items():
            self.assertAlmostEqual(card["value"], self.report_figure(card, operator), msg=key)

    def test_an_accountant_gets_the_money_and_consumption_figures(self):
        self.scenario()
        accountant = new_test_user(
            self.env,
            login="dash_accountant",
            groups="account.group_account_readonly",
            company_id=self.company.id,
            company_ids=[Command.set(self.company.ids)],
        )
        cards = self.cards(self.Dashboard.with_user(accountant).get_dashboard_data())
        self.assertEqual(
            sorted(cards),
            sorted(
                [
                    "income_today",
                    "income_month",
                    "income_year",
                    "topup_month",
                    "electricity_month",
                    "water_month",
                ]
            ),
        )
        self.assertEqual(cards["income_month"]["value"], 14.0)

    def test_the_dashboard_is_the_first_report_menu_for_the_reports_groups(self):
        menu = self.env.ref("prepaid_billing.prepaid_report_dashboard_menu")
        reports = self.env.ref("prepaid_billing.prepaid_report_menu")
        self.assertEqual(menu.parent_id, reports)
        self.assertEqual(reports.child_id.sorted(lambda m: (m.sequence, m.id))[:1], menu)
        self.assertEqual(menu.groups_id, reports.groups_id)
        self.assertEqual(menu.action.tag, "prepaid_billing.report_dashboard")

    def test_users_without_report_access_are_refused(self):
        employee = new_test_user(
            self.env,
            login="dash_employee",
            groups="base.group_user",
            company_id=self.company.id,
            company_ids=[Command.set(self.company.ids)],
        )
        portal = new_test_user(self.env, login="dash_portal", groups="base.group_portal")
        for user in (employee, portal):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.Dashboard.with_user(user).get_dashboard_data()
        # Over RPC, as /web/dataset/call_kw calls it.
        env = self.env(user=portal, su=False)
        records = env["prepaid.report.dashboard"]
        get_public_method(records, "get_dashboard_data")
        with self.assertRaises(AccessError):
            odoo.api.call_kw(records, "get_dashboard_data", [], {})


@needs_browser
@tagged("post_install", "-at_install")
class TestReportDashboardTour(HttpCase):
    """Prepaid > Reports > Dashboard in the web client, as an operator: the KPI cards render and a card opens
    the report it sums."""

    def test_the_dashboard_shows_the_cards_and_opens_their_reports(self):
        operator = new_test_user(
            self.env,
            login="pp_tour_dashboard",
            groups="prepaid_base.group_prepaid_user",
            company_id=self.env.company.id,
        )
        operator.tour_enabled = False
        self.start_tour("/odoo", "prepaid_report_dashboard_tour", login=operator.login)
