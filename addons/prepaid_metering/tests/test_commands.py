from datetime import UTC, timedelta
from decimal import Decimal

from odoo import fields
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_engine.types import Reading as PollReading
from prepaid_engine.types import Supply

from ..models.prepaid_meter_command import backoff
from .common import SimulatorCommon


def aware(value):
    return value.replace(tzinfo=UTC)


@tagged("post_install", "-at_install")
class TestCommands(SimulatorCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Command = cls.env["prepaid.meter.command"]
        cls.meter = cls.meters["t-mb-2/1/1"]
        cls.dead_meter = cls.meters["t-mb-1/1/3"]

    def setUp(self):
        super().setUp()
        # Every test starts with the relay closed on the simulator.
        self.sim.call(lambda site: site.meter("t-mb-2/1/1").close())

    def execute(self, **kwargs):
        with mute_logger("pymodbus.logging", "pymodbus"):
            return self.Command._cron_execute(**kwargs)

    def sim_supply(self, key="t-mb-2/1/1"):
        return self.sim.call(lambda site: site.meter(key).supply)

    def test_trip_is_executed_and_the_relay_state_follows(self):
        self.meter.action_trip()
        command = self.Command.search([("meter_id", "=", self.meter.id)])
        self.assertRecordValues(
            command, [{"kind": "trip", "state": "queued", "reason": "manual", "urgent": True}]
        )
        self.assertEqual(command.requested_by, self.env.user)
        self.assertEqual(self.execute(), 1)
        self.assertEqual(self.sim_supply(), Supply.OFF)
        self.assertRecordValues(command, [{"state": "done", "attempts": 1, "confirmed": True}])
        self.assertTrue(command.done_at)
        self.assertTrue(command.sent_at)
        self.assertEqual(self.meter.supply, "off")

        self.meter.action_close()
        self.assertEqual(self.execute(), 1)
        self.assertEqual(self.sim_supply(), Supply.ON)
        self.assertEqual(self.meter.supply, "on")

    def test_a_reading_taken_before_a_confirmed_trip_does_not_undo_it(self):
        """A poll cycle reads a meter (relay on), a trip is confirmed on it, then the cycle stores its
        readings: the meter stays off in Odoo, as it is on the wire (found by the soak run: Odoo showed the
        supply of a tripped meter as on until the next poll)."""
        self.meter.action_trip()
        self.execute()
        command = self.Command.search([("meter_id", "=", self.meter.id)])
        self.assertEqual((self.meter.supply, self.meter.supply_at), ("off", command.done_at))
        Reading = self.env["prepaid.meter.reading"]
        key = str(self.meter.id)
        before = aware(command.done_at - timedelta(seconds=20))
        Reading._ingest([PollReading(key, before, total=Decimal("10"), supply=Supply.ON)])
        self.assertEqual(self.meter.last_reading_at, command.done_at - timedelta(seconds=20))
        self.assertEqual(self.meter.supply, "off", "the older reading does not overwrite the confirmed trip")
        after = aware(command.done_at + timedelta(seconds=40))
        Reading._ingest([PollReading(key, after, total=Decimal("10.5"), supply=Supply.ON)])
        self.assertEqual((self.meter.supply, self.meter.supply_at), ("on", after.replace(tzinfo=None)))

    def test_urgent_enqueue_wakes_the_executor(self):
        cron = self.env.ref("prepaid_metering.ir_cron_execute_commands")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        self.Command._enqueue(
            [{"meter_id": self.meter.id, "kind": "trip", "reason": "automatic"}], urgent=True
        )
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers + 1)
        self.Command._enqueue([{"meter_id": self.dead_meter.id, "kind": "trip", "reason": "batch"}])
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers + 1)

    def test_enqueue_returns_the_queued_command_of_the_same_kind(self):
        first = self.Command._enqueue([{"meter_id": self.meter.id, "kind": "trip", "reason": "automatic"}])
        again = self.Command._enqueue(
            [{"meter_id": self.meter.id, "kind": "trip", "reason": "manual"}], urgent=True
        )
        self.assertEqual(first, again)
        self.assertTrue(first.urgent)
        self.assertEqual(self.Command.search_count([("meter_id", "=", self.meter.id)]), 1)

    def test_commands_inserted_at_once_are_made_as_create_makes_them(self):
        """_enqueue's one INSERT for distinct meters gives what the ORM create gives one by one."""
        inserted = self.Command._enqueue(
            [
                {"meter_id": self.meter.id, "kind": "trip", "reason": "batch", "origin": "B1"},
                {"meter_id": self.dead_meter.id, "kind": "set_prices", "price_flat": 0.6, "reason": "batch"},
            ]
        )
        created = internal(self.Command.sudo()).create([{"meter_id": self.meter.id, "kind": "close"}])
        self.assertEqual(len(inserted), 2)
        for command in inserted:
            self.assertRegex(command.name, r"^CMD/\d{4}/\d{6}$")
            self.assertEqual(command.gateway_id, command.meter_id.gateway_id)
            self.assertEqual(command.company_id, command.meter_id.company_id)
            for fname in ("state", "requested_by", "max_attempts", "attempts", "urgent"):
                self.assertEqual(command[fname], created[fname], fname)
            self.assertEqual(
                command.expires_at - command.requested_at, created.expires_at - created.requested_at
            )
            self.assertEqual(command.create_uid, self.env.user)
        self.assertEqual(len(set((inserted | created).mapped("name"))), 3)
        self.assertEqual((inserted[0].origin, inserted[1].price_flat), ("B1", 0.6))

    def test_enqueue_cancels_the_queued_opposite(self):
        trip = self.Command._enqueue([{"meter_id": self.meter.id, "kind": "trip", "reason": "automatic"}])
        close = self.Command._enqueue([{"meter_id": self.meter.id, "kind": "close", "reason": "automatic"}])
        self.assertNotEqual(trip, close)
        self.assertEqual(trip.state, "cancelled")
        self.assertEqual(close.state, "queued")
        self.execute()
        self.assertEqual(close.state, "done")
        self.assertEqual(self.sim_supply(), Supply.ON)

    def test_recharges_are_told_apart_by_purchase_count(self):
        vals = {"meter_id": self.meter.id, "kind": "recharge", "amount": 50.0, "purchase_count": 3}
        first = self.Command._enqueue([vals])
        self.assertEqual(self.Command._enqueue([vals]), first)
        second = self.Command._enqueue([dict(vals, purchase_count=4)])
        self.assertNotEqual(first, second)
        # Another amount (another top-up) with the same count is another command, never merged.
        third = self.Command._enqueue([dict(vals, amount=20.0)])
        self.assertNotIn(third, first | second)

    def test_failed_command_is_retried_with_backoff_then_failed(self):
        command = self.Command._enqueue(
            [{"meter_id": self.dead_meter.id, "kind": "trip", "reason": "manual", "max_attempts": 3}]
        )
        for attempt in (1, 2):
            before = fields.Datetime.now()
            self.assertEqual(self.execute(), 1)
            self.assertRecordValues(command, [{"state": "queued", "attempts": attempt}])
            self.assertTrue(command.message)
            self.assertGreaterEqual(command.next_attempt_at, before + backoff(attempt) - timedelta(seconds=1))
            self.assertLessEqual(command.next_attempt_at, fields.Datetime.now() + backoff(attempt))
            # Not due before its backoff has passed.
            self.assertEqual(self.execute(), 0)
            internal(command).next_attempt_at = fields.Datetime.now() - timedelta(seconds=1)
        self.assertEqual(self.execute(), 1)
        self.assertRecordValues(command, [{"state": "failed", "attempts": 3}])
        # The outcome is data; the message is made of it in the reader's language (the engine's own words
        # are the technical detail).
        self.assertRecordValues(command, [{"outcome": "no_answer", "error_kind": "timeout"}])
        self.assertEqual(command.message, "No answer from the meter (Timeout).")
        self.assertIn("timeout", command.detail)
        self.assertEqual(self.execute(), 0)
        self.assertEqual(backoff(1), timedelta(seconds=30))
        self.assertEqual(backoff(2), timedelta(minutes=1))
        self.assertEqual(backoff(3), timedelta(minutes=2))

    def test_expired_command_is_never_sent(self):
        command = self.Command._enqueue([{"meter_id": self.meter.id, "kind": "trip", "reason": "manual"}])
        internal(command).expires_at = fields.Datetime.now() - timedelta(seconds=1)
        self.assertEqual(self.execute(), 0)
        self.assertRecordValues(command, [{"state": "expired", "attempts": 0, "sent_at": False}])
        self.assertEqual(self.sim_supply(), Supply.ON)
        self.assertFalse(self.meter.supply == "off")

    def test_cancel_only_queued_commands(self):
        command = self.Command._enqueue([{"meter_id": self.meter.id, "kind": "trip", "reason": "manual"}])
        command.action_cancel()
        self.assertEqual(command.state, "cancelled")
        self.assertEqual(self.execute(), 0)
        self.assertEqual(self.sim_supply(), Supply.ON)
        with self.assertRaises(UserError):
            command.action_cancel()

    def test_one_dead_meter_does_not_fail_the_other_commands(self):
        commands = self.Command._enqueue(
            [
                {"meter_id": self.dead_meter.id, "kind": "trip", "reason": "batch"},
                {"meter_id": self.meter.id, "kind": "trip", "reason": "batch"},
            ]
        )
        self.assertEqual(self.execute(), 2)
        self.assertEqual(commands.mapped("state"), ["queued", "done"])
        self.assertEqual(self.sim_supply(), Supply.OFF)

    def test_water_buttons_refuse_electricity_meters(self):
        with self.assertRaises(UserError):
            self.meter.action_valve_close()
