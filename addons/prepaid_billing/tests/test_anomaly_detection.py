import logging
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import SQL

from prepaid_engine.types import Reading

from .common import BillingCommon

_logger = logging.getLogger(__name__)

NOW = datetime(2026, 3, 20, 12, 0)  # naive UTC, as the ORM keeps it
DETECTED = ("zero_consumption", "consumption_spike", "tamper", "not_read", "line_loss", "balance_mismatch")
FP_BOUND = 0.01  # at most 1 % of a clean site's meters may raise an anomaly


@tagged("post_install", "-at_install")
class TestAnomalyDetection(BillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = cls.env["res.users"].create(
            {
                "name": "Building Manager",
                "login": "anomaly.manager",
                "company_id": cls.company.id,
                "company_ids": [Command.set(cls.company.ids)],
                "groups_id": [Command.set([cls.env.ref("prepaid_base.group_prepaid_manager").id])],
            }
        )
        cls.building.anomaly_manager_id = cls.manager

    # -- helpers ---------------------------------------------------------------------------------------------
    def readings(self, meter, totals, start=None, step=timedelta(days=1), **extra):
        start = start or NOW - timedelta(days=len(totals) - 1, hours=2)
        rows = [
            Reading(
                meter_key=str(meter.id),
                read_at=(start + i * step).replace(tzinfo=UTC),
                total=Decimal(str(total)),
                **{k: v[i] for k, v in extra.items()},
            )
            for i, total in enumerate(totals)
        ]
        self.env["prepaid.meter.reading"]._ingest(rows, source="poll")

    def consumption(self, rows):
        """``[(meter, day, quantity)]`` straight into the daily facts (settlement is tested elsewhere)."""
        self.env.flush_all()
        self.env.execute_query(
            SQL(
                "INSERT INTO prepaid_consumption (meter_id, day, company_id, quantity) VALUES %s"
                " ON CONFLICT DO NOTHING",
                SQL(", ").join(SQL("(%s, %s, %s, %s)", m.id, d, self.company.id, q) for m, d, q in rows),
            )
        )
        self.env["prepaid.consumption"].invalidate_model()

    def anomalies(self, meter, kind):
        return self.env["prepaid.anomaly"].search([("meter_id", "=", meter.id), ("kind", "=", kind)])

    def detect(self):
        return self.env["prepaid.anomaly"]._cron_detect_anomalies(now=NOW)

    def assert_todo(self, anomaly, user):
        self.assertEqual(anomaly.user_id, user)
        self.assertEqual(anomaly.activity_ids.user_id, user)
        self.assertEqual(anomaly.state, "open")

    # -- each fault ------------------------------------------------------------------------------------------
    def test_stuck_register_on_occupied_unit_raises_zero_consumption_once(self):
        self.readings(self.meter_1, [100, 101, 101, 101, 101, 101])  # stuck since day 2
        self.readings(self.meter_2, [100, 102, 104, 106, 108, 110])
        self.detect()
        anomaly = self.anomalies(self.meter_1, "zero_consumption")
        self.assertEqual(len(anomaly), 1)
        self.assert_todo(anomaly, self.manager)
        self.assertIn("occupied unit", anomaly.description)
        self.assertFalse(self.anomalies(self.meter_2, "zero_consumption"))
        evidence = list(anomaly.evidence)
        self.detect()  # re-running adds nothing
        self.assertEqual(len(self.anomalies(self.meter_1, "zero_consumption")), 1)
        self.assertEqual(anomaly.evidence, evidence)
        self.assertEqual(len(anomaly.activity_ids), 1)

    def test_tamper_counters_raise_one_tamper_anomaly(self):
        self.readings(
            self.meter_1,
            [100, 101],
            start=NOW - timedelta(hours=2),
            step=timedelta(hours=1),
            cover_open_count=[0, 1],
            magnetic_count=[0, 0],
            reverse_total=[Decimal("0"), Decimal("1.5")],
        )
        self.detect()
        anomaly = self.anomalies(self.meter_1, "tamper")
        self.assertEqual(len(anomaly), 1)
        self.assertEqual(sorted(i["event"] for i in anomaly.evidence), ["cover_open", "reverse_energy"])
        self.assert_todo(anomaly, self.manager)
        self.detect()
        self.assertEqual(len(anomaly.evidence), 2)

    def test_dead_meter_raises_not_read(self):
        self.readings(self.meter_1, [100], start=NOW - timedelta(days=3))
        self.readings(self.meter_2, [100], start=NOW - timedelta(hours=1))
        self.detect()
        self.assert_todo(self.anomalies(self.meter_1, "not_read"), self.manager)
        self.assertFalse(self.anomalies(self.meter_2, "not_read"))
        self.detect()
        self.assertEqual(len(self.anomalies(self.meter_1, "not_read").evidence), 1)

    def test_spike_against_own_history(self):
        day = NOW.date() - timedelta(days=1)
        rnd = random.Random(13)
        rows = [(self.meter_1, day - timedelta(days=i), round(rnd.uniform(8, 12), 3)) for i in range(1, 21)]
        rows += [(self.meter_1, day, 80.0)]
        rows += [(self.meter_2, day - timedelta(days=i), 10.0) for i in range(0, 21)]
        self.consumption(rows)
        self.detect()
        anomaly = self.anomalies(self.meter_1, "consumption_spike")
        self.assert_todo(anomaly, self.manager)
        self.assertEqual(anomaly.evidence[0]["today"], "80.0")
        self.assertFalse(self.anomalies(self.meter_2, "consumption_spike"))

    def test_bypass_between_master_and_sub_meters_raises_line_loss(self):
        master = self.env["prepaid.meter"].create(
            {"name": "E-MASTER", "utility": "electricity", "model_id": self.model_acrel.id}
        )
        self.env["prepaid.apportionment.rule"].create(
            {
                "name": "Loss",
                "property_id": self.building.id,
                "utility": "electricity",
                "master_meter_id": master.id,
                "sub_meter_ids": [Command.set((self.meter_1 | self.meter_2).ids)],
            }
        )
        day = NOW.date() - timedelta(days=1)
        # meter_2 bypassed: it registers 30 % of its 50 kWh
        self.consumption([(master, day, 100.0), (self.meter_1, day, 50.0), (self.meter_2, day, 15.0)])
        self.detect()
        anomaly = self.anomalies(master, "line_loss")
        self.assertEqual(len(anomaly), 1)
        self.assertEqual(anomaly.evidence[0]["loss_share"], "35.00")

    def test_meter_balance_beyond_tolerance_raises_balance_mismatch(self):
        self.env.flush_all()
        self.env.execute_query(
            SQL(
                "UPDATE prepaid_meter SET billing_mode = 'meter' WHERE id IN %s",
                (self.meter_1.id, self.meter_2.id),
            )
        )
        self.env["prepaid.meter"].invalidate_model()
        # both meters count 10 kWh at the flat 1.00; meter 2 confirmed a recharge of 50 meanwhile and holds
        # 140 as it should, meter 1 holds 40 less than it should
        step = timedelta(hours=29)
        start = NOW - timedelta(hours=30)
        self.readings(self.meter_1, [1000, 1010], start=start, step=step, balance=[Decimal(100), Decimal(50)])
        self.readings(
            self.meter_2, [1000, 1010], start=start, step=step, balance=[Decimal(100), Decimal(140)]
        )
        recharge = self.env["prepaid.meter.command"]._enqueue(
            [{"meter_id": self.meter_2.id, "kind": "recharge", "amount": 50.0, "purchase_count": 1}]
        )
        self.env.flush_all()
        self.env.execute_query(
            SQL(
                "UPDATE prepaid_meter_command SET state = 'done', done_at = %s WHERE id = %s",
                NOW - timedelta(hours=12),
                recharge.id,
            )
        )
        recharge.invalidate_recordset()
        self.detect()
        self.assertFalse(self.anomalies(self.meter_2, "balance_mismatch"))
        anomaly = self.anomalies(self.meter_1, "balance_mismatch")
        self.assert_todo(anomaly, self.manager)
        self.assertEqual(Decimal(anomaly.evidence[0]["difference"]), Decimal(-40))
        anomaly.with_user(self.manager).action_resolve()
        self.assertEqual(anomaly.state, "resolved")
        self.assertFalse(anomaly.activity_ids)

    def test_settings_refuse_absurd_values(self):
        with self.assertRaises(ValidationError):
            self.company.prepaid_anomaly_zero_days = 0
        with self.assertRaises(ValidationError):
            self.company.prepaid_anomaly_line_loss_percent = 150

    # -- a clean site ----------------------------------------------------------------------------------------
    def test_clean_site_raises_no_anomaly_false_positive_rate(self):
        n_meters, n_days = 200, 30
        units = self.env["prepaid.property"].create(
            [
                {"name": f"C-{i}", "code": f"C-{i}", "kind": "unit", "parent_id": self.floor.id}
                for i in range(n_meters)
            ]
        )
        meters = self.env["prepaid.meter"].create(
            [
                {
                    "name": f"EC-{i}",
                    "utility": "electricity",
                    "model_id": self.model_acrel.id,
                    "unit_id": u.id,
                }
                for i, u in enumerate(units)
            ]
        )
        rnd = random.Random(2026)
        day0 = NOW.date() - timedelta(days=n_days)
        facts, readings = [], []
        for meter in meters:
            base = rnd.uniform(2, 40)
            total = Decimal(rnd.randint(100, 5000))
            for d in range(n_days):
                use = round(base * rnd.uniform(0.7, 1.3), 3)
                facts.append((meter, day0 + timedelta(days=d), use))
            for h in range(4):
                total += Decimal("0.5")
                readings.append(
                    Reading(
                        meter_key=str(meter.id),
                        read_at=(NOW - timedelta(hours=4 - h)).replace(tzinfo=UTC),
                        total=total,
                        cover_open_count=2,
                        magnetic_count=0,
                        reverse_total=Decimal("0.00"),
                    )
                )
        self.consumption(facts)
        self.env["prepaid.meter.reading"]._ingest(readings, source="poll")
        self.detect()
        raised = self.env["prepaid.anomaly"].search(
            [("meter_id", "in", meters.ids), ("kind", "in", DETECTED)]
        )
        rate = len(raised.meter_id) / n_meters
        _logger.info(
            "anomaly detection on a clean site: %s/%s meters raised an anomaly over %s days (false-positive "
            "rate %.2f %%)",
            len(raised.meter_id),
            n_meters,
            n_days,
            rate * 100,
        )
        self.assertLessEqual(rate, FP_BOUND, raised.mapped("display_name"))
