from datetime import date, timedelta

from odoo.tests import tagged
from odoo.tools import SQL

from .common import T0, BillingCommon

# 15:45 UTC is 23:45 in Shanghai (the building's zone): readings around it straddle the local midnight.
LATE = T0.replace(hour=15, minute=30)


@tagged("post_install", "-at_install")
class TestDailyConsumption(BillingCommon):
    """The settlement rolls what it settles up per meter and local day, in the same transaction as the
    ledger lines: the facts the reports, statements and portal read."""

    def facts(self, meter):
        return self.env["prepaid.consumption"].search([("meter_id", "=", meter.id)], order="day")

    def test_a_day_fact_adds_up_the_ledger_of_its_local_day(self):
        self.topup(self.account_1, 100.0)
        self.ingest(self.meter_1, LATE, "100")
        self.ingest(self.meter_1, LATE + timedelta(minutes=15), "102")  # 23:45 local: 2 kWh on 2 March
        self.ingest(self.meter_1, LATE + timedelta(minutes=30), "105")  # 00:00 local: 3 kWh, the new day's
        self.ingest(self.meter_1, LATE + timedelta(minutes=45), "106.5")  # 00:15 local: 1.5 kWh on 3 March
        facts = self.facts(self.meter_1)
        self.assertEqual(
            [(f.day, f.quantity, f.amount, f.intervals, f.account_id) for f in facts],
            [
                (date(2026, 3, 2), 2.0, 2.0, 1, self.account_1),
                (date(2026, 3, 3), 4.5, 4.5, 2, self.account_1),
            ],
        )
        lines = self.env["prepaid.ledger"].search(
            [("res_model", "=", "prepaid.meter"), ("res_id", "=", self.meter_1.id)]
        )
        self.assertEqual(sum(facts.mapped("amount")), -sum(lines.mapped("amount")))
        self.assertEqual(sum(facts.mapped("quantity")), sum(lines.mapped("quantity")))
        self.assertEqual(facts.mapped("unit_id"), self.unit_1)
        self.assertEqual(facts.mapped("building_id"), self.building)

    def test_settling_again_adds_nothing(self):
        self.topup(self.account_1, 100.0)
        self.ingest(self.meter_1, T0, "10")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "12")
        self.meter_1._settle()
        self.env["prepaid.settlement"]._settle_meters(self.meter_1.ids)
        self.assertEqual(self.facts(self.meter_1).mapped("quantity"), [2.0])

    def test_consumption_nobody_is_charged_for_is_a_fact_without_account_and_an_anomaly(self):
        self.topup(self.account_2, 10.0)
        self.post(self.account_2, -10.0, "c:spent", kind="adjustment")
        self.account_2.with_user(self.env.user).action_close()
        self.ingest(self.meter_2, T0, "0")
        self.ingest(self.meter_2, T0 + timedelta(minutes=15), "3")
        [fact] = self.facts(self.meter_2)
        self.assertEqual((fact.quantity, fact.amount, fact.account_id.id), (3.0, 0.0, False))
        anomaly = self.env["prepaid.anomaly"].search([("meter_id", "=", self.meter_2.id)])
        self.assertEqual((anomaly.kind, anomaly.state), ("unbilled_consumption", "open"))
        self.assertIn("3 kWh consumed with no open account to charge (Closed)", anomaly.description)
        self.assertTrue(anomaly.activity_ids)
        # More of it extends the same anomaly (one to-do per meter).
        self.ingest(self.meter_2, T0 + timedelta(minutes=30), "4")
        self.assertEqual(len(self.env["prepaid.anomaly"].search([("meter_id", "=", self.meter_2.id)])), 1)
        self.assertEqual(len(anomaly.evidence), 2)

    def test_the_backfill_fills_days_settled_before_the_facts_existed_and_only_those(self):
        self.topup(self.account_1, 100.0)
        self.ingest(self.meter_1, T0, "10")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "12")
        self.ingest(self.meter_1, T0 + timedelta(days=1), "20")
        expected = [(f.day, f.quantity, f.amount, f.account_id) for f in self.facts(self.meter_1)]
        self.env.flush_all()
        self.env.cr.execute(SQL("DELETE FROM prepaid_consumption WHERE meter_id = %s", self.meter_1.id))
        self.env["prepaid.consumption"].invalidate_model()
        Facts = self.env["prepaid.consumption"].sudo()
        self.assertEqual(Facts._backfill(self.meter_1.ids), 2)
        self.assertEqual(
            [(f.day, f.quantity, f.amount, f.account_id) for f in self.facts(self.meter_1)], expected
        )
        self.assertEqual(Facts._backfill(self.meter_1.ids), 0)

    def test_reports_group_electricity_and_water_apart(self):
        self.topup(self.account_1, 100.0)
        water = self._create_meter(self.unit_1, "W-101", self.model_water, address="00000000000101")
        self.ingest(self.meter_1, T0, "10")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "12")
        self.ingest(water, T0, "1")
        self.ingest(water, T0 + timedelta(minutes=15), "1.25")
        groups = dict(
            self.env["prepaid.consumption"]._read_group(
                [("unit_id", "=", self.unit_1.id)], ["utility"], ["quantity:sum"]
            )
        )
        self.assertEqual(groups, {"electricity": 2.0, "water": 0.25})
