import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest.mock import patch

from odoo.addons.prepaid_metering.models.prepaid_meter_reading import FACTOR_PARAM
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import SQL, mute_logger

from prepaid_engine.poller import Poller
from prepaid_engine.types import Reading

from .common import SIM_START, MeteringCommon, SimulatorCommon
from .test_push import PushCommon

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NAIVE_T0 = T0.replace(tzinfo=None)
READING_LOGGER = "odoo.addons.prepaid_metering.models.prepaid_meter_reading"


class PlausibilityMixin:
    """Readings judged at the meters' own capacity (the factor at 1, whatever demo data says)."""

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(FACTOR_PARAM, "1")

    def readings(self, meter):
        return self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)], order="read_at")

    def anomalies(self, meter):
        return self.env["prepaid.anomaly"].search([("meter_id", "=", meter.id)])

    def stored(self, reading, column="total"):
        """What the database holds (text), not the ORM's float."""
        self.env.flush_all()
        return self.env.execute_query(
            SQL(
                "SELECT %s::text FROM prepaid_meter_reading WHERE id = %s", SQL.identifier(column), reading.id
            )
        )[0][0]


@tagged("post_install", "-at_install")
class TestPlausibility(PlausibilityMixin, MeteringCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        gateway = cls._create_gateway("plaus-gw")
        cls.meter = cls._create_meter(gateway.bus_ids, "7", unit_id=cls.unit_101.id)  # DDSY1352: 13.2 kW
        # A tariff for the unit's meter, so that the settlement (with billing installed) has what it needs.
        cls.building.electricity_tariff_id = cls.env["prepaid.tariff"].create(
            {"name": "Flat", "utility": "electricity", "kind": "flat", "price": 1.0}
        )
        cls.manager = cls.env["res.users"].create(
            {
                "name": "Plausibility manager",
                "login": "plaus-manager",
                "company_id": cls.company.id,
                "company_ids": [(6, 0, cls.company.ids)],
                "groups_id": [(6, 0, [cls.env.ref("prepaid_base.group_prepaid_manager").id])],
            }
        )
        cls.operator = cls.env["res.users"].create(
            {
                "name": "Plausibility operator",
                "login": "plaus-operator",
                "company_id": cls.company.id,
                "company_ids": [(6, 0, cls.company.ids)],
                "groups_id": [(6, 0, [cls.env.ref("prepaid_base.group_prepaid_user").id])],
                "prepaid_property_ids": [(6, 0, cls.floor_1.ids)],
            }
        )

    def ingest(self, minutes, total, source="poll", **values):
        reading = Reading(
            str(self.meter.id),
            T0 + timedelta(minutes=minutes),
            total=None if total is None else Decimal(total),
            **values,
        )
        return self.env["prepaid.meter.reading"]._ingest([reading], source)

    def test_a_normal_step_is_valid_and_moves_the_meter(self):
        self.ingest(0, "1000.00")
        self.ingest(15, "1004.50")  # the most a 60 A x 220 V meter passes in 15 minutes (with the margin)
        self.assertEqual(self.readings(self.meter).mapped("state"), ["valid", "valid"])
        self.assertEqual(self.meter.last_total, 1004.5)
        self.assertFalse(self.anomalies(self.meter))

    def test_a_step_beyond_the_capacity_is_quarantined_with_an_anomaly_and_a_to_do(self):
        self.ingest(0, "1000.00")
        [reading_id] = self.ingest(15, "1100.00")
        reading = self.env["prepaid.meter.reading"].browse(reading_id)
        self.assertEqual(reading.state, "quarantined")
        self.assertEqual(reading.total, 1100.0, "nothing is lost: the reading is stored as the meter said it")
        self.assertEqual(self.meter.last_total, 1000.0, "a quarantined reading does not move the meter")
        anomaly = self.anomalies(self.meter)
        self.assertRecordValues(
            anomaly,
            [
                {
                    "kind": "implausible_reading",
                    "state": "open",
                    "reading_id": reading.id,
                    "period_start": T0.replace(tzinfo=None),
                    "period_end": reading.read_at,
                    "company_id": self.company.id,
                    "unit_id": self.unit_101.id,
                    "user_id": self.manager.id,
                }
            ],
        )
        self.assertEqual(anomaly.reading_ids, reading)
        [item] = anomaly.evidence
        self.assertEqual(
            {k: item[k] for k in ("finding", "step", "allowed", "elapsed", "reference", "value")},
            {
                "finding": "too_fast",
                "step": "100.00",
                "allowed": "4.500",
                "elapsed": "900",
                "reference": "1000.00",
                "value": "1100.00",
            },
        )
        self.assertIn("the index rose by 100.00 kWh (from 1000.00 to 1100.00) in 15 min", anomaly.description)
        self.assertIn("at most 4.500 kWh in that time", anomaly.description)
        activity = anomaly.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.manager)
        self.assertEqual(reading.anomaly_ids, anomaly)

    def test_later_implausible_readings_join_the_open_anomaly_and_a_glitch_does_not_stick(self):
        self.ingest(0, "1000.00")
        self.ingest(15, "1100.00")
        self.ingest(30, "1200.00")
        anomaly = self.anomalies(self.meter)
        self.assertEqual(len(anomaly), 1)
        self.assertEqual(len(anomaly.reading_ids), 2)
        self.assertEqual(len(anomaly.activity_ids), 1, "one to-do per anomaly, not per reading")
        # Judged against the last accepted reading (1000 at T0), not the quarantined ones: a plausible one
        # after an outlier is valid.
        self.ingest(45, "1002.00")
        self.assertEqual(
            self.readings(self.meter).mapped("state"), ["valid", "quarantined", "quarantined", "valid"]
        )
        self.assertEqual(self.meter.last_total, 1002.0)

    def test_in_one_batch_the_meter_takes_its_newest_valid_reading(self):
        self.ingest(0, "1000.00")
        batch = [
            Reading(str(self.meter.id), T0 + timedelta(minutes=15), total=Decimal("1003.00")),
            Reading(str(self.meter.id), T0 + timedelta(minutes=30), total=Decimal("1500.00")),
        ]
        self.env["prepaid.meter.reading"]._ingest(batch, "poll")
        self.assertEqual(self.readings(self.meter).mapped("state"), ["valid", "valid", "quarantined"])
        self.assertEqual(self.meter.last_total, 1003.0)
        self.assertEqual(self.meter.last_reading_at, NAIVE_T0 + timedelta(minutes=15))

    def test_1e15_nan_infinity_and_1e400_are_quarantined_and_never_stored_as_such(self):
        self.ingest(0, "1000.00")
        with mute_logger(READING_LOGGER):
            ids = [
                self.ingest(15 * n, value)[0]
                for n, value in enumerate(("1E+15", "NaN", "Infinity", "1E+400"), start=1)
            ]
        readings = self.env["prepaid.meter.reading"].browse(ids)
        self.assertEqual(set(readings.mapped("state")), {"quarantined"})
        self.assertEqual([self.stored(reading) for reading in readings], [None] * 4, "beyond any register")
        findings = [item["finding"] for item in self.anomalies(self.meter).evidence]
        self.assertEqual(findings, ["out_of_range", "not_finite", "not_finite", "out_of_range"])
        values = [item["value"] for item in self.anomalies(self.meter).evidence]
        self.assertEqual(values, ["1E+15", "NaN", "Infinity", "1E+400"], "the evidence keeps what was sent")
        self.assertEqual(self.meter.last_total, 1000.0)

    def test_auxiliary_values_no_column_should_hold_are_stored_empty(self):
        with mute_logger(READING_LOGGER):
            [reading_id] = self.ingest(0, "1000.00", power_factor=Decimal("NaN"), voltage=Decimal("1E+400"))
        reading = self.env["prepaid.meter.reading"].browse(reading_id)
        self.assertEqual(reading.state, "valid", "a NaN power factor says nothing about the index")
        self.assertEqual(
            (self.stored(reading, "power_factor"), self.stored(reading, "voltage")), (None, None)
        )
        self.assertEqual(self.stored(reading), "1000.00")

    def test_a_manual_reading_beyond_the_capacity_is_quarantined(self):
        self.ingest(0, "1000.00")
        reading = (
            self.env["prepaid.meter.reading"]
            .with_user(self.manager)
            .create({"meter_id": self.meter.id, "read_at": NAIVE_T0 + timedelta(minutes=15), "total": 5000.0})
        )
        self.assertEqual(reading.state, "quarantined")
        self.assertEqual(reading.source, "manual")
        self.assertEqual(self.meter.last_total, 1000.0)
        self.assertEqual(self.anomalies(self.meter).reading_ids, reading)

    def test_a_manual_reading_never_sets_its_own_state(self):
        reading = self.env["prepaid.meter.reading"].create(
            {"meter_id": self.meter.id, "read_at": NAIVE_T0, "total": -5.0, "state": "valid"}
        )
        self.assertEqual(reading.state, "quarantined")

    def test_nan_and_infinity_never_reach_the_database_through_create(self):
        Reading_ = self.env["prepaid.meter.reading"]
        for field, value in (
            ("total", float("nan")),
            ("total", float("inf")),
            ("peak", float("-inf")),
            ("voltage", float("nan")),
            ("total", 1e300),
            ("purchase_count", 2**40),
        ):
            with self.subTest(field=field, value=value), self.assertRaises(ValidationError):
                Reading_.create({"meter_id": self.meter.id, "read_at": NAIVE_T0, field: value})
        self.assertFalse(self.readings(self.meter))

    def test_readings_are_not_edited(self):
        [reading_id] = self.ingest(0, "1000.00")
        reading = self.env["prepaid.meter.reading"].browse(reading_id)
        for vals in ({"total": 1e15}, {"state": "valid"}, {"read_at": NAIVE_T0 - timedelta(days=1)}):
            with self.subTest(vals=vals), self.assertRaises(UserError):
                reading.write(vals)

    def test_accept_makes_the_readings_valid_and_moves_the_meter(self):
        self.ingest(0, "1000.00")
        self.ingest(15, "1100.00")
        self.ingest(30, "1200.00")
        anomaly = self.anomalies(self.meter).with_user(self.manager)
        anomaly.action_accept()
        self.assertEqual(self.readings(self.meter).mapped("state"), ["valid"] * 3)
        self.assertRecordValues(anomaly, [{"state": "resolved", "resolution": "accepted"}])
        self.assertEqual(anomaly.resolved_by_id, self.manager)
        self.assertFalse(anomaly.activity_ids, "the to-do is done")
        self.assertEqual(self.meter.last_total, 1200.0)
        # The next readings are judged against the accepted one.
        self.ingest(45, "1203.00")
        self.assertEqual(self.readings(self.meter)[-1].state, "valid")

    def test_reject_keeps_the_readings_out_and_judges_the_next_against_the_last_accepted(self):
        self.ingest(0, "1000.00")
        self.ingest(15, "1100.00")
        anomaly = self.anomalies(self.meter).with_user(self.manager)
        anomaly.action_reject()
        self.assertEqual(self.readings(self.meter).mapped("state"), ["valid", "rejected"])
        self.assertRecordValues(anomaly, [{"state": "resolved", "resolution": "rejected"}])
        self.ingest(30, "1101.00")  # still too fast from 1000: a new anomaly
        self.assertEqual(self.readings(self.meter)[-1].state, "quarantined")
        self.assertEqual(len(self.anomalies(self.meter)), 2)
        self.ingest(45, "1005.00")  # 5 kWh in 45 minutes from 1000: fine
        self.assertEqual(self.readings(self.meter)[-1].state, "valid")

    def test_a_late_reading_is_judged_against_the_accepted_readings_around_it(self):
        self.ingest(0, "1000.00")
        self.ingest(30, "1006.00")
        self.ingest(15, "1003.00", source="import")  # arrives last, fits between: valid
        self.ingest(10, "1005.00", source="import")  # 5 kWh in 10 minutes: too fast from 1000
        states = {reading.total: reading.state for reading in self.readings(self.meter)}
        self.assertEqual(states, {1000.0: "valid", 1005.0: "quarantined", 1003.0: "valid", 1006.0: "valid"})

    def test_only_managers_resolve_anomalies_and_operators_see_those_of_their_meters(self):
        self.ingest(0, "1000.00")
        self.ingest(15, "1100.00")
        anomaly = self.anomalies(self.meter)
        as_operator = anomaly.with_user(self.operator)
        self.assertEqual(as_operator.search([("id", "=", anomaly.id)]), anomaly)
        self.assertTrue(as_operator.description)
        for action in (as_operator.action_accept, as_operator.action_reject, as_operator.action_acknowledge):
            with self.subTest(action=action.__name__), self.assertRaises(AccessError):
                action()
        with self.assertRaises(AccessError):
            as_operator.write({"note": "seen"})
        self.operator.prepaid_property_ids = self.floor_2
        self.assertFalse(as_operator.search([("id", "=", anomaly.id)]), "another floor's meter")
        self.assertEqual(self.readings(self.meter).mapped("state"), ["valid", "quarantined"])

    def test_an_anomaly_is_not_created_or_rewritten_by_hand(self):
        self.ingest(0, "1000.00")
        self.ingest(15, "1100.00")
        anomaly = self.anomalies(self.meter).with_user(self.manager)
        with self.assertRaises(AccessError):
            anomaly.create({"kind": "implausible_reading", "meter_id": self.meter.id})
        for vals in ({"state": "resolved"}, {"evidence": []}, {"meter_id": self.meter.id}):
            with self.subTest(vals=vals), self.assertRaises(UserError):
                anomaly.write(vals)
        anomaly.write({"note": "CT ratio checked on site", "user_id": self.manager.id})
        anomaly.action_acknowledge()
        self.assertEqual(anomaly.state, "acknowledged")
        self.assertEqual(self.readings(self.meter).mapped("state"), ["valid", "quarantined"])

    def test_the_evidence_is_translated(self):
        self.env["res.lang"]._activate_lang("zh_CN")  # code terms come from the addon's zh_CN.po
        self.ingest(0, "1000.00")
        self.ingest(15, "1100.00")
        anomaly = self.anomalies(self.meter).with_context(lang="zh_CN", tz="UTC")
        self.assertIn("15 分钟", anomaly.description)
        self.assertIn("100.00 kWh", anomaly.description)
        self.assertNotIn("the index rose", anomaly.description)

    def test_the_capacity_of_a_model_is_its_definitions(self):
        self.assertRecordValues(
            self.model_acrel, [{"max_current": 60.0, "nominal_voltage": 220.0, "phases": 1, "max_flow": 0.0}]
        )
        self.assertRecordValues(self.model_cjt, [{"max_current": 0.0, "phases": 0, "max_flow": 5.0}])

    def test_a_ct_ratio_widens_what_the_meter_passes(self):
        self.meter.ct_ratio = 40
        self.ingest(0, "1000.00")
        self.ingest(15, "1100.00")  # 400 kW: within 40 x 13.2 kW
        self.assertEqual(self.readings(self.meter).mapped("state"), ["valid", "valid"])


@tagged("post_install", "-at_install")
class TestPlausibilityOfPolls(PlausibilityMixin, SimulatorCommon):
    """The poll path end to end: a simulated meter's index jumps between two polls a quarter-hour apart."""

    def setUp(self):
        super().setUp()
        self.now = SIM_START
        master_key = self.env["prepaid.gateway"]._get_master_key()

        def poller(gateway_model, trace=False):
            return Poller(master_key=master_key, trace=trace, clock=lambda: self.now)

        patcher = patch.object(type(self.env["prepaid.gateway"]), "_get_poller", poller)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_a_polled_jump_beyond_the_capacity_is_quarantined(self):
        key = "t-mb-1/1/1"
        meter = self.meters[key]
        self.poll()
        first = self.readings(meter)
        self.assertEqual(first.state, "valid")
        self.now += timedelta(minutes=15)
        self.sim.call(lambda site: site.meter(key).set_total(site.meter(key).total + Decimal(1000)))
        self.addCleanup(
            self.sim.call, lambda site: site.meter(key).set_total(site.meter(key).total - Decimal(1000))
        )
        self.poll()
        second = self.readings(meter) - first
        self.assertEqual(second.state, "quarantined")
        self.assertEqual(second.source, "poll")
        self.assertEqual(meter.last_total, first.total)
        self.assertEqual(self.anomalies(meter).reading_ids, second)
        other = self.readings(self.meters["t-mb-1/1/2"])
        self.assertEqual(other.mapped("state"), ["valid", "valid"], "the other meters are not affected")


@tagged("post_install", "-at_install")
class TestPlausibilityOfPushes(PlausibilityMixin, PushCommon):
    def body(self, at, total):
        return json.dumps(
            {
                "messageType": "dataReport",
                "deviceId": "dev-1",
                "timestamp": int(at.timestamp() * 1000),
                "upPacketSN": int(at.timestamp()),
                "payload": {"serviceData": {"total": total}},
            }
        ).encode()

    def test_a_pushed_jump_is_stored_quarantined_and_acknowledged(self):
        now = datetime.now(UTC).replace(microsecond=0)
        self.assertEqual(
            self.ctwing._receive_ctwing("ct-secret", self.body(now, "12345.67")), (200, {"stored": 1})
        )
        later = now + timedelta(seconds=2)
        self.assertEqual(
            self.ctwing._receive_ctwing("ct-secret", self.body(later, "99999.99")), (200, {"stored": 1})
        )
        readings = self.readings(self.meter_ct)
        self.assertEqual(readings.mapped("state"), ["valid", "quarantined"])
        self.assertEqual(self.meter_ct.last_total, 12345.67)
        self.assertEqual(self.anomalies(self.meter_ct).reading_ids, readings[1])
        self.assertEqual(self.messages(self.ctwing)[0].reading_id, readings[1], "the message points at it")
