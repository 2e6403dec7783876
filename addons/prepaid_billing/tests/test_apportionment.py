import uuid
from datetime import UTC, date, datetime, timedelta

from odoo import SUPERUSER_ID, Command, api
from odoo.addons.prepaid_base.tests.test_concurrency import (
    create_committed_account,
    remove_committed_account,
    run_beside,
)
from odoo.addons.prepaid_billing.models.prepaid_apportionment_bill import ledger_key
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger
from psycopg2 import IntegrityError

from .common import T0, BillingCommon

# The March 2026 cycle of the building (monthly on the 1st, Asia/Shanghai): 28 Feb 16:00 - 31 Mar 16:00 UTC.
MARCH_START = datetime(2026, 2, 28, 16, 0)
MARCH_END = datetime(2026, 3, 31, 16, 0)
NOW = datetime(2026, 4, 5, tzinfo=UTC)


@tagged("post_install", "-at_install")
class TestApportionment(BillingCommon):
    """Common meters shared over the units of the building: the engine's shares, the bill's life (draft,
    recompute, dispatch), what dispatching books (ledger deductions or invoices), once."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.unit_1.area = 30.0
        cls.unit_2.area = 70.0
        cls.common = cls.env["prepaid.meter"].create(
            {
                "name": "B lifts",
                "utility": "electricity",
                "model_id": cls.model_acrel.id,
                "is_common": True,
                "common_property_id": cls.building.id,
            }
        )
        cls.building.settlement_closed_at = MARCH_END
        cls.Rule = cls.env["prepaid.apportionment.rule"]

    def setUp(self):
        super().setUp()
        for account in (self.account_1, self.account_2):
            self.post(account, 500.0, f"appt-test:{account.id}", kind="opening")

    # ------------------------------------------------------------------ helpers

    def consume(self, meter, kwh, start="100"):
        self.ingest(meter, T0, start)
        self.ingest(meter, T0 + timedelta(minutes=15), str(float(start) + kwh))

    def rule(self, **vals):
        return self.Rule.create(
            {
                "name": "B lifts",
                "property_id": self.building.id,
                "utility": "electricity",
                "meter_ids": [Command.set(self.common.ids)],
                "unit_ids": [Command.set((self.unit_1 | self.unit_2).ids)],
                "source": "area",
                "price": 1.0,
                "date_start": date(2026, 3, 1),
                **vals,
            }
        )

    def bill_of(self, rule):
        bills = rule._create_bills(now=NOW)
        self.assertEqual(len(bills), 1)
        self.assertEqual((bills.period_start, bills.period_end), (MARCH_START, MARCH_END))
        return bills

    def shares(self, bill):
        return {line.unit_id: line.amount for line in bill.line_ids}

    def apportionment_lines(self, account):
        return self.env["prepaid.ledger"].search(
            [("account_id", "=", account.id), ("kind", "=", "apportionment")]
        )

    def assertExact(self, bill):
        """The shares add up to the cost to the cent (the engine's guarantee, seen on the bill)."""
        cents = sum(round(line.amount * 100) for line in bill.line_ids)
        self.assertEqual(cents, round((bill.cost + bill.loss_cost) * 100))
        self.assertEqual(round(bill.allocated * 100), cents)

    # ------------------------------------------------------------------ sources

    def test_area_shares_the_common_meter_cost_exactly(self):
        self.consume(self.common, 20)  # 20 kWh at 0.3333 = 6.666 -> 6.67
        bill = self.bill_of(self.rule(price=0.3333))
        self.assertRecordValues(bill, [{"state": "draft", "quantity": 20.0, "cost": 6.67, "error": False}])
        self.assertEqual(self.shares(bill), {self.unit_1: 2.0, self.unit_2: 4.67})
        self.assertEqual(bill.line_ids.mapped("basis"), [30.0, 70.0])
        self.assertEqual(bill.line_ids.mapped("ratio"), [0.3, 0.7])
        self.assertExact(bill)

    def test_consumption_share_comes_from_the_daily_facts(self):
        self.consume(self.meter_1, 10)
        self.consume(self.meter_2, 30)
        self.consume(self.common, 20)
        bill = self.bill_of(self.rule(source="consumption"))
        self.assertEqual(bill.cost, 20.0)
        self.assertEqual(self.shares(bill), {self.unit_1: 5.0, self.unit_2: 15.0})
        self.assertEqual(bill.line_ids.mapped("basis"), [10.0, 30.0])
        self.assertExact(bill)

    def test_manual_coefficients_and_a_cost_entered_by_hand(self):
        rule = self.rule(
            source="manual",
            line_ids=[
                Command.create({"unit_id": self.unit_1.id, "coefficient": 1.0}),
                Command.create({"unit_id": self.unit_2.id, "coefficient": 2.0}),
            ],
        )
        self.consume(self.common, 20)
        bill = self.bill_of(rule)
        self.assertEqual(self.shares(bill), {self.unit_1: 6.67, self.unit_2: 13.33})
        bill.write({"cost_manual": True, "manual_cost": 10.0})  # from the utility's invoice
        bill.action_recompute()
        self.assertEqual(bill.cost, 10.0)
        self.assertEqual(self.shares(bill), {self.unit_1: 3.33, self.unit_2: 6.67})
        self.assertExact(bill)

    def test_fixed_amounts_report_what_they_leave_uncovered(self):
        rule = self.rule(
            source="fixed",
            fixed_amount=12.5,
            line_ids=[Command.create({"unit_id": self.unit_2.id, "fixed_amount": 20.0})],
        )
        self.consume(self.common, 20)
        bill = self.bill_of(rule)
        self.assertEqual(self.shares(bill), {self.unit_1: 12.5, self.unit_2: 20.0})
        self.assertEqual((bill.cost, bill.allocated, bill.unallocated), (20.0, 32.5, -12.5))

    def test_a_rule_the_engine_refuses_leaves_the_bill_empty_with_the_reason(self):
        self.unit_1.area = 0.0
        self.unit_2.area = 0.0
        self.consume(self.common, 20)
        bill = self.bill_of(self.rule())
        self.assertFalse(bill.line_ids)
        self.assertIn("all zero", bill.error)
        with self.assertRaises(UserError):
            bill.action_dispatch()

    # ------------------------------------------------------------------ loss

    def master(self):
        return self.env["prepaid.meter"].create(
            {
                "name": "B master",
                "utility": "electricity",
                "model_id": self.model_acrel.id,
                "is_common": True,
                "common_property_id": self.building.id,
            }
        )

    def test_the_loss_between_master_and_sub_meters_is_shared_the_same_way(self):
        master = self.master()
        self.consume(master, 100)
        self.consume(self.meter_1, 10)
        self.consume(self.meter_2, 30)
        self.consume(self.common, 20)
        rule = self.rule(
            loss_enabled=True,
            master_meter_id=master.id,
            sub_meter_ids=[Command.set((self.meter_1 | self.meter_2).ids)],
            loss_price=0.5,
        )
        bill = self.bill_of(rule)
        self.assertRecordValues(
            bill,
            [
                {
                    "loss_master": 100.0,
                    "loss_sub_total": 40.0,
                    "loss_quantity": 60.0,
                    "loss_cost": 30.0,
                    "cost": 20.0,
                    "negative_loss": False,
                }
            ],
        )
        self.assertEqual(bill.line_ids.mapped("loss_amount"), [9.0, 21.0])
        self.assertEqual(self.shares(bill), {self.unit_1: 15.0, self.unit_2: 35.0})
        self.assertExact(bill)

    def test_a_negative_loss_charges_nothing_and_raises_an_anomaly(self):
        master = self.master()
        self.consume(master, 30)
        self.consume(self.meter_1, 10)
        self.consume(self.meter_2, 30)
        rule = self.rule(
            meter_ids=[Command.clear()],
            loss_enabled=True,
            master_meter_id=master.id,
            sub_meter_ids=[Command.set((self.meter_1 | self.meter_2).ids)],
        )
        bill = self.bill_of(rule)
        self.assertRecordValues(
            bill, [{"negative_loss": True, "loss_difference": -10.0, "loss_quantity": 0.0, "loss_cost": 0.0}]
        )
        self.assertEqual(self.shares(bill), {self.unit_1: 0.0, self.unit_2: 0.0})
        anomaly = bill.anomaly_id
        self.assertRecordValues(anomaly, [{"kind": "negative_loss", "meter_id": master.id, "state": "open"}])
        self.assertIn("more than the 30 kWh of the master meter", anomaly.description)
        self.assertTrue(anomaly.activity_ids)
        bill.action_recompute()
        self.assertEqual(bill.anomaly_id, anomaly, "a recomputation raises no second anomaly")
        self.assertEqual(self.env["prepaid.anomaly"].search_count([("kind", "=", "negative_loss")]), 1)

    # ------------------------------------------------------------------ dispatch

    def test_dispatch_deducts_each_share_once_from_the_ledger(self):
        self.consume(self.common, 20)
        bill = self.bill_of(self.rule())
        before = (self.account_1.balance, self.account_2.balance)
        bill.action_dispatch()
        bill.action_dispatch()  # pressed twice (or by two people): booked once
        self.env["prepaid.apportionment.bill"].browse(bill.id)._dispatch()
        self.assertEqual(bill.state, "dispatched")
        with self.assertRaises(UserError):
            bill.write({"cost_manual": True, "manual_cost": 1.0})
        line_1 = self.apportionment_lines(self.account_1)
        line_2 = self.apportionment_lines(self.account_2)
        self.assertRecordValues(
            line_1 | line_2,
            [
                {
                    "amount": -6.0,
                    "utility": "electricity",
                    "idempotency_key": ledger_key(bill.id, self.unit_1.id),
                },
                {
                    "amount": -14.0,
                    "utility": "electricity",
                    "idempotency_key": ledger_key(bill.id, self.unit_2.id),
                },
            ],
        )
        self.assertEqual(f"appt:{bill.id}:{self.unit_1.id}", line_1.idempotency_key)
        self.assertEqual(bill.line_ids.mapped("state"), ["posted", "posted"])
        self.assertEqual(bill.line_ids.ledger_id, line_1 | line_2)
        self.assertEqual(
            (self.account_1.balance, self.account_2.balance), (before[0] - 6.0, before[1] - 14.0)
        )
        self.assertEqual(bill.collected_amount, 20.0)
        # The daily summary books them against the electricity revenue: the ledger still equals the deposit.
        self.assertLedgerMatchesAccounting(self.account_1, self.account_2)
        revenue = self.env["account.move.line"].search(
            [("account_id", "=", self.company.prepaid_electricity_revenue_account_id.id)]
        )
        self.assertAlmostEqual(-sum(revenue.mapped("balance")), 20.0 + 0.0, places=2)

    def test_dispatch_by_invoice_posts_one_invoice_per_tenant(self):
        product = self.env["product.product"].create(
            {"name": "Common electricity", "type": "service", "taxes_id": [Command.clear()]}
        )
        self.consume(self.common, 20)
        bill = self.bill_of(self.rule(collection="invoice", product_id=product.id))
        balances = (self.account_1.balance, self.account_2.balance)
        bill.action_dispatch()
        bill.action_dispatch()
        moves = bill.line_ids.move_id
        self.assertEqual(len(moves), 2)
        self.assertRecordValues(
            moves.sorted(lambda m: m.partner_id.id),
            [
                {
                    "move_type": "out_invoice",
                    "state": "posted",
                    "partner_id": self.tenant_1.id,
                    "amount_total": 6.0,
                },
                {
                    "move_type": "out_invoice",
                    "state": "posted",
                    "partner_id": self.tenant_2.id,
                    "amount_total": 14.0,
                },
            ],
        )
        self.assertEqual(moves.invoice_line_ids.product_id, product)
        self.assertEqual(bill.line_ids.mapped("state"), ["invoiced", "invoiced"])
        self.assertEqual(bill.invoice_count, 2)
        self.assertFalse(self.apportionment_lines(self.account_1))
        self.assertEqual((self.account_1.balance, self.account_2.balance), balances)

    def test_a_unit_without_account_keeps_its_share_until_it_has_one(self):
        unit_3 = self.env["prepaid.property"].create(
            {"name": "B-103", "code": "B-103", "kind": "unit", "parent_id": self.floor.id, "area": 100.0}
        )
        self.consume(self.common, 20)
        rule = self.rule(unit_ids=[Command.clear()])  # every unit of the building
        bill = self.bill_of(rule)
        self.assertEqual(self.shares(bill), {self.unit_1: 3.0, self.unit_2: 7.0, unit_3: 10.0})
        bill.action_dispatch()
        line_3 = bill.line_ids.filtered(lambda li: li.unit_id == unit_3)
        self.assertRecordValues(line_3, [{"state": "no_account", "amount": 10.0, "account_id": False}])
        self.assertEqual(
            (bill.state, bill.no_account_amount, bill.collected_amount), ("dispatched", 10.0, 10.0)
        )
        # The unit is let: dispatching again collects its share, and only its share.
        tenant_3 = self.env["res.partner"].create({"name": "Wang Fang"})
        account_3 = self.env["prepaid.account"].create(
            {"partner_id": tenant_3.id, "unit_ids": [Command.set(unit_3.ids)]}
        )
        account_3.action_open()
        self.post(account_3, 50.0, "appt-test:3", kind="opening")
        bill.action_dispatch()
        self.assertEqual(line_3.state, "posted")
        self.assertEqual(account_3.balance, 40.0)
        self.assertEqual(len(self.apportionment_lines(self.account_1)), 1)
        self.assertEqual(bill.no_account_amount, 0.0)

    def test_an_apportionment_deduction_warns_and_cuts_like_consumption(self):
        self.post(self.account_1, -495.0, "appt-test:spend", kind="adjustment")  # balance 5.00
        self.ingest(self.meter_1, T0 - timedelta(hours=1), "0")
        self.consume(self.common, 100)
        bill = self.bill_of(self.rule())  # unit_1 owes 30.00
        bill.action_dispatch()
        self.assertEqual(self.account_1.balance, -25.0)
        self.assertEqual((self.account_1.level, self.account_1.alert_level), ("cutoff", "cutoff"))
        trip = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter_1.id), ("kind", "=", "trip")]
        )
        self.assertEqual(len(trip), 1)
        self.assertEqual(self.account_2.level, "normal")

    # ------------------------------------------------------------------ cron

    def test_the_cron_drafts_one_bill_per_rule_and_closed_period(self):
        rule = self.rule(date_start=date(2026, 1, 1))
        self.consume(self.common, 20)
        Rule = self.env["prepaid.apportionment.rule"]
        Rule._cron_create_bills()
        Rule._cron_create_bills()
        bills = rule.bill_ids.sorted("period_start")
        # January, February and March are closed (the building closed its cycle on 1 April); April is not.
        self.assertEqual(bills.mapped("date_from"), [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)])
        self.assertEqual(bills.mapped("date_to"), [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)])
        self.assertEqual(bills.mapped("cost"), [0.0, 0.0, 20.0])
        self.assertEqual(set(bills.mapped("state")), {"draft"})
        self.assertEqual(rule.bill_count, 3)
        cron = self.env.ref("prepaid_billing.ir_cron_apportionment_bills")
        self.assertTrue(cron.active)
        self.assertEqual((cron.interval_number, cron.interval_type), (1, "days"))
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.env.cr.savepoint():
            self.env["prepaid.apportionment.bill"]._create_for(rule.sudo(), [(MARCH_START, MARCH_END)])

    def test_auto_dispatch_dispatches_the_new_bills(self):
        rule = self.rule(auto_dispatch=True)
        self.consume(self.common, 20)
        self.env["prepaid.apportionment.rule"]._cron_create_bills()
        self.assertEqual(rule.bill_ids.state, "dispatched")
        self.assertEqual(self.apportionment_lines(self.account_2).amount, -14.0)

    # ------------------------------------------------------------------ rights

    def test_operators_read_but_cannot_dispatch_and_nobody_types_shares(self):
        self.consume(self.common, 20)
        bill = self.bill_of(self.rule())
        operator = self.new_operator("appt_operator")
        as_operator = bill.with_user(operator)
        self.assertEqual(as_operator.line_ids.mapped("amount"), [6.0, 14.0])
        for method in ("action_dispatch", "action_recompute", "action_cancel"):
            with self.assertRaises(AccessError):
                getattr(as_operator, method)()
        with self.assertRaises(AccessError):
            self.rule().with_user(operator).action_create_bills()
        with self.assertRaises(AccessError):
            self.rule().with_user(operator).write({"price": 9.0})
        # A manager neither: shares, costs and states are computed.
        with self.assertRaises(AccessError):
            bill.line_ids[:1].write({"amount": 1.0})
        with self.assertRaises(AccessError):
            bill.write({"cost": 1.0})
        with self.assertRaises(AccessError):
            bill.write({"state": "dispatched"})
        with self.assertRaises(AccessError):
            self.env["prepaid.apportionment.bill"].create(
                {
                    "name": "x",
                    "rule_id": bill.rule_id.id,
                    "company_id": self.company.id,
                    "period_start": MARCH_END,
                    "period_end": MARCH_END,
                }
            )
        with self.assertRaises(AccessError):
            as_operator.write({"manual_cost": 1.0, "cost_manual": True})
        self.assertEqual(bill.state, "draft")
        self.assertFalse(self.apportionment_lines(self.account_1))

    def test_an_operator_of_one_floor_sees_only_the_shares_of_its_units(self):
        other_floor = self.env["prepaid.property"].create(
            {"name": "B2", "code": "B2", "kind": "floor", "parent_id": self.building.id}
        )
        unit_3 = self.env["prepaid.property"].create(
            {"name": "B-201", "code": "B-201", "kind": "unit", "parent_id": other_floor.id, "area": 100.0}
        )
        self.consume(self.common, 20)
        bill = self.bill_of(self.rule(unit_ids=[Command.clear()]))
        operator = self.new_operator("appt_floor_operator")
        operator.prepaid_property_ids = [Command.set(self.floor.ids)]
        lines = (
            self.env["prepaid.apportionment.bill.line"]
            .with_user(operator)
            .search([("bill_id", "=", bill.id)])
        )
        self.assertEqual(lines.unit_id, self.unit_1 | self.unit_2)
        self.assertIn(unit_3, bill.line_ids.unit_id)

    def test_operators_see_the_bills_of_their_buildings_only(self):
        bill = self.bill_of(self.rule())
        other_building = self.env["prepaid.property"].create({"name": "C", "code": "C", "kind": "building"})
        other_floor = self.env["prepaid.property"].create(
            {"name": "C1", "code": "C1", "kind": "floor", "parent_id": other_building.id}
        )
        Bill = self.env["prepaid.apportionment.bill"]
        floor_operator = self.new_operator("appt_floor_b1")
        floor_operator.prepaid_property_ids = [Command.set(self.floor.ids)]
        self.assertEqual(Bill.with_user(floor_operator).search([("id", "=", bill.id)]), bill)
        outsider = self.new_operator("appt_floor_c1")
        outsider.prepaid_property_ids = [Command.set(other_floor.ids)]
        self.assertFalse(Bill.with_user(outsider).search([("id", "=", bill.id)]))
        with self.assertRaises(AccessError):
            bill.with_user(outsider).read(["cost"])
        everywhere = self.new_operator("appt_everywhere")
        self.assertEqual(Bill.with_user(everywhere).search([("id", "=", bill.id)]), bill)

    def test_a_common_meter_belongs_to_no_unit_and_to_its_building(self):
        self.assertEqual(self.common.building_id, self.building)
        self.assertFalse(self.common.account_id)
        with self.assertRaises(ValidationError):
            self.common.unit_id = self.unit_1


@tagged("post_install", "-at_install")
class TestApportionmentConcurrency(TransactionCase):
    """Two managers dispatch the same bill at the same time, in two real transactions: the second waits for
    the bill's row lock, then (retried, as every request is) finds it dispatched: one deduction. The data is
    committed (other cursors cannot see the test's own) and removed again in a cleanup."""

    def setUp(self):
        super().setUp()
        tag = uuid.uuid4().hex[:8]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True, "mail_create_nolog": True})
            self.ids = create_committed_account(env, tag, "Appt", opening=500.0)
            building = env["prepaid.property"].browse(self.ids["building"])
            rule = env["prepaid.apportionment.rule"].create(
                {"name": f"Appt {tag}", "property_id": building.id, "source": "fixed", "fixed_amount": 10.0}
            )
            bill = env["prepaid.apportionment.bill"]._create_for(rule, [(MARCH_START, MARCH_END)])
            self.ids.update(rule=rule.id, bill=bill.id)
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        ids = self.ids
        with self.registry.cursor() as cr:
            remove_committed_account(
                cr,
                ids,
                before=(
                    SQL("DELETE FROM prepaid_apportionment_bill_line WHERE bill_id = %s", ids["bill"]),
                    SQL("DELETE FROM prepaid_apportionment_bill WHERE id = %s", ids["bill"]),
                    SQL("DELETE FROM prepaid_apportionment_rule WHERE id = %s", ids["rule"]),
                ),
                records=(
                    ("prepaid.apportionment.bill", ids["bill"]),
                    ("prepaid.apportionment.rule", ids["rule"]),
                ),
            )

    def _dispatch(self, env):
        return env["prepaid.apportionment.bill"].browse(self.ids["bill"])._dispatch()

    @mute_logger("odoo.sql_db", "odoo.service.model")
    def test_dispatching_at_the_same_time_deducts_once(self):
        _first, outcome, blocked = run_beside(self.registry, self._dispatch)
        self.assertTrue(blocked, "the second dispatch never waited for the bill's lock")
        self.assertNotIn("error", outcome)
        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    """SELECT COUNT(*), SUM(amount), (SELECT balance FROM prepaid_account WHERE id = %s)
                         FROM prepaid_ledger WHERE account_id = %s AND kind = 'apportionment'""",
                    self.ids["account"],
                    self.ids["account"],
                )
            )
            count, total, balance = cr.fetchone()
            cr.execute(SQL("SELECT state FROM prepaid_apportionment_bill WHERE id = %s", self.ids["bill"]))
            state = cr.fetchone()[0]
        self.assertEqual((count, float(total), float(balance), state), (1, -10.0, 490.0, "dispatched"))
