import dataclasses
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from odoo import fields
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_engine.types import Supply

from .common import MODBUS_FIELDS, SimulatorCommon


@tagged("post_install", "-at_install")
class TestPolling(SimulatorCommon):
    def _readings(self, meter):
        return self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)])

    def test_cron_stores_readings_equal_to_the_simulator_truth(self):
        resolution = {f.name: f.scale for f in self.model_acrel._get_engine_model().registers}
        self.cron_poll()
        for key in ("t-mb-1/1/1", "t-mb-1/1/2", "t-mb-2/1/1"):
            meter = self.meters[key]
            truth = self.truth(key)
            reading = self._readings(meter)
            self.assertEqual(len(reading), 1, key)
            self.assertEqual(reading.source, "poll")
            for fname in MODBUS_FIELDS:
                # The meter's registers hold the truth truncated to their resolution.
                expected = truth[fname].quantize(resolution[fname], rounding=ROUND_DOWN)
                self.assertEqual(Decimal(str(reading[fname])), expected, f"{key} {fname}")
            self.assertEqual(reading.supply, str(truth["supply"]))
            self.assertEqual(reading.company_id, self.company)
            self.assertEqual(reading.building_id, self.building)
            self.assertTrue(meter.online)
            self.assertEqual(Decimal(str(meter.last_total)), truth["total"])
            self.assertEqual(meter.last_reading_at, reading.read_at)
            self.assertEqual(meter.supply, "on")

    def test_second_run_is_not_due_and_stores_nothing(self):
        self.assertEqual(self.cron_poll(), 2)
        count = self.env["prepaid.meter.reading"].search_count(
            [("meter_id.gateway_id", "in", self.gateways.ids)]
        )
        self.assertEqual(count, 3)
        for gateway in self.gateways:
            self.assertTrue(gateway.last_poll_at)
            # Next slot of the building's 15-minute interval, counted from midnight UTC.
            self.assertEqual(gateway.next_poll_at.minute % 15, 0)
            self.assertEqual(gateway.next_poll_at.second, 0)
            self.assertGreater(gateway.next_poll_at, gateway.last_poll_at)
            self.assertLessEqual(gateway.next_poll_at - gateway.last_poll_at, timedelta(minutes=15))
        self.assertEqual(self.cron_poll(), 0)
        self.assertEqual(
            self.env["prepaid.meter.reading"].search_count(
                [("meter_id.gateway_id", "in", self.gateways.ids)]
            ),
            count,
        )

    def test_reingesting_the_same_poll_result_inserts_and_changes_nothing(self):
        result = self.poll()
        Reading = self.env["prepaid.meter.reading"]
        meter = self.meters["t-mb-1/1/1"]
        before = Reading.search_count([("meter_id", "in", [m.id for m in self.meters.values()])])
        state = meter.read(["last_reading_at", "last_total", "supply", "online", "meter_balance"])
        self.assertEqual(Reading._ingest(result.readings, "poll"), [])
        self.assertEqual(
            Reading.search_count([("meter_id", "in", [m.id for m in self.meters.values()])]), before
        )
        meter.invalidate_recordset()
        self.assertEqual(
            meter.read(["last_reading_at", "last_total", "supply", "online", "meter_balance"]), state
        )

    def test_ingest_returns_new_ids_and_calls_the_hook_with_them(self):
        result = self.poll()
        # Shift the readings by an hour: they are new rows for the same meters.
        shifted = [dataclasses.replace(r, read_at=r.read_at + timedelta(hours=1)) for r in result.readings]
        Reading = self.env["prepaid.meter.reading"]
        seen = []
        original = type(Reading)._after_ingest

        def spy(model, new_reading_ids, meter_ids=None):
            seen.append((list(new_reading_ids), meter_ids))
            return original(model, new_reading_ids, meter_ids)

        self.patch(type(Reading), "_after_ingest", spy)
        new_ids = Reading._ingest(shifted, "poll")
        self.assertEqual(len(new_ids), len(shifted))
        # The hook gets the new readings and their meters (billing settles those meters).
        self.assertEqual(seen, [(new_ids, sorted(Reading.browse(new_ids).meter_id.ids))])
        meter = self.meters["t-mb-1/1/1"]
        self.assertEqual(
            meter.last_reading_at,
            max(Reading.browse(new_ids).filtered(lambda r: r.meter_id == meter).mapped("read_at")),
        )

    def test_dead_meter_goes_offline_and_is_logged(self):
        dead = self.meters["t-mb-1/1/3"]
        internal(dead).write({"online": True})
        self.cron_poll()
        self.assertFalse(dead.online)
        self.assertFalse(self._readings(dead))
        log = self.env["prepaid.comm.log"].search([("meter_id", "=", dead.id)])
        self.assertEqual(log.mapped("direction"), ["error"])
        self.assertEqual(log.kind, "timeout")
        self.assertEqual(log.gateway_id, dead.gateway_id)
        self.assertTrue(self.meters["t-mb-1/1/1"].online)
        self.assertTrue(dead.gateway_id.online)

    def test_dead_gateway_does_not_stop_the_others(self):
        self.sim.call(lambda site: site.kill_gateway("t-mb-1", "refused"))
        self.addCleanup(self.sim.call, lambda site: site.revive_gateway("t-mb-1"))
        gateway_1 = self.gateways.filtered(lambda g: g.code == "t-mb-1")
        gateway_2 = self.gateways - gateway_1
        gateway_1.write({"online": True})
        internal(self.meters["t-mb-1/1/1"]).write({"online": True})
        self.cron_poll()
        self.assertFalse(gateway_1.online)
        self.assertEqual(gateway_1.failure_count, 1)
        self.assertTrue(gateway_1.next_poll_at, "a dead gateway is scheduled like the others")
        for key in ("t-mb-1/1/1", "t-mb-1/1/2", "t-mb-1/1/3"):
            self.assertFalse(self.meters[key].online, key)
            self.assertFalse(self._readings(self.meters[key]), key)
        self.assertTrue(gateway_2.online)
        self.assertEqual(gateway_2.failure_count, 0)
        meter = self.meters["t-mb-2/1/1"]
        self.assertTrue(meter.online)
        self.assertEqual(Decimal(str(self._readings(meter).total)), self.truth("t-mb-2/1/1")["total"])
        errors = self.env["prepaid.comm.log"].search([("gateway_id", "=", gateway_1.id)])
        self.assertEqual(set(errors.mapped("kind")), {"link"})

    def test_sharded_cron_polls_only_its_shard(self):
        gateway_1 = self.gateways.filtered(lambda g: g.code == "t-mb-1")
        gateway_2 = self.gateways - gateway_1
        gateway_1.shard, gateway_2.shard = 6, 7
        self.assertEqual(self.cron_poll(shard=1, shards=3), 1)  # 7 % 3 == 1
        self.assertTrue(gateway_2.last_poll_at)
        self.assertFalse(gateway_1.last_poll_at)
        self.assertEqual(self.cron_poll(shard=2, shards=3), 0)  # nobody
        self.assertEqual(self.cron_poll(shard=0, shards=3), 1)  # 6 % 3 == 0
        self.assertTrue(gateway_1.last_poll_at)

    def test_cron_batch_reports_remaining_gateways(self):
        progress = []
        self.patch(
            type(self.env["ir.cron"]),
            "_notify_progress",
            lambda cron, *, done, remaining, deactivate=False: progress.append((done, remaining)),
        )
        self.assertEqual(self.cron_poll(batch=1), 1)
        self.assertEqual(progress, [(1, 1)])
        self.assertEqual(self.cron_poll(batch=1), 1)
        self.assertEqual(progress[-1], (1, 0))

    def test_read_now_on_a_meter_reads_only_that_meter(self):
        meter = self.meters["t-mb-1/1/2"]
        action = meter.action_read_now()
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(len(self._readings(meter)), 1)
        self.assertFalse(self._readings(self.meters["t-mb-1/1/1"]))
        # The dead meter of the same bus was not asked: nothing logged for it.
        self.assertFalse(
            self.env["prepaid.comm.log"].search([("meter_id", "=", self.meters["t-mb-1/1/3"].id)])
        )

    def test_read_now_on_a_dead_meter_warns(self):
        with mute_logger("pymodbus.logging"):
            action = self.meters["t-mb-1/1/3"].action_read_now()
        self.assertEqual(action["params"]["type"], "danger")

    def test_test_connection_reports_a_dead_gateway(self):
        self.sim.call(lambda site: site.kill_gateway("t-mb-2", "refused"))
        self.addCleanup(self.sim.call, lambda site: site.revive_gateway("t-mb-2"))
        gateway = self.gateways.filtered(lambda g: g.code == "t-mb-2")
        with mute_logger("pymodbus.logging"):
            self.assertEqual(gateway.action_test_connection()["params"]["type"], "danger")
        self.assertFalse(gateway.online)

    def test_trace_frames_are_logged_in_hex(self):
        gateway = self.gateways.filtered(lambda g: g.code == "t-mb-2")
        gateway.trace_frames = True
        self.poll(gateway)
        frames = self.env["prepaid.comm.log"].search(
            [("gateway_id", "=", gateway.id), ("direction", "in", ("tx", "rx"))]
        )
        self.assertEqual(sorted(set(frames.mapped("direction"))), ["rx", "tx"])
        self.assertTrue(all(frames.mapped("data_hex")))
        # Each frame says what it is: a frame trace, with the request or reply in words.
        self.assertEqual(set(frames.mapped("kind")), {"trace"})
        requests = frames.filtered(lambda f: f.direction == "tx")
        self.assertTrue(
            all("read" in message for message in requests.mapped("message")), requests.mapped("message")
        )

    def test_supply_from_the_meter_is_stored(self):
        self.sim.call(lambda site: site.meter("t-mb-2/1/1").trip())
        self.addCleanup(self.sim.call, lambda site: site.meter("t-mb-2/1/1").close())
        self.poll()
        meter = self.meters["t-mb-2/1/1"]
        self.assertEqual(self.truth("t-mb-2/1/1")["supply"], Supply.OFF)
        self.assertEqual(meter.supply, "off")
        self.assertIn(meter, self.env["prepaid.meter"].search([("supply", "=", "off")]))

    def test_no_reading_today_filter(self):
        self.poll()
        Meter = self.env["prepaid.meter"]
        not_today = Meter.search(
            [("read_today", "=", False), ("id", "in", [m.id for m in self.meters.values()])]
        )
        self.assertEqual(not_today, self.meters["t-mb-1/1/3"])
        self.meters["t-mb-1/1/1"].invalidate_recordset()
        self.assertTrue(self.meters["t-mb-1/1/1"].read_today)
        self.assertLess(
            self.meters["t-mb-1/1/1"].last_reading_at, fields.Datetime.now() + timedelta(seconds=1)
        )
