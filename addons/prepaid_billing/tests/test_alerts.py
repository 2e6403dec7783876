from datetime import timedelta

from odoo.addons.sms.tests.common import SMSCase
from odoo.tests import tagged

from .common import T0, BillingCommon


@tagged("post_install", "-at_install")
class TestAlerts(BillingCommon, SMSCase):
    def setUp(self):
        super().setUp()
        self.topup(self.account_1, 60.0)  # levels: warning 50 / 20 / 10, cut-off 0
        self.ingest(self.meter_1, T0, "0")
        self.index = 0.0
        self.at = T0

    def cron_triggers(self):
        cron = self.env.ref("prepaid_metering.ir_cron_execute_commands")
        return self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])

    def consume(self, kwh):
        self.index += kwh
        self.at += timedelta(minutes=15)
        self.ingest(self.meter_1, self.at, f"{self.index:.3f}")

    def sms_bodies(self):
        return self.env["sms.sms"].search([("partner_id", "=", self.tenant_1.id)], order="id").mapped("body")

    def alert_messages(self):
        return self.env["mail.message"].search(
            [
                ("model", "=", "prepaid.account"),
                ("res_id", "=", self.account_1.id),
                ("message_type", "=", "comment"),
                ("subtype_id", "=", self.env.ref("mail.mt_comment").id),
            ],
            order="id",
        )

    def commands(self, kind):
        return self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter_1.id), ("kind", "=", kind)], order="id"
        )

    def test_each_level_is_notified_once_per_descent_then_cut_then_restored(self):
        with self.mockSMSGateway():
            self.consume(5)  # 55: normal
            self.assertFalse(self.sms_bodies())
            self.consume(6)  # 49: warning 1
            self.consume(1)  # 48: still warning 1, no new alert
            self.assertEqual(self.account_1.level, "warning_1")
            self.assertEqual(len(self.sms_bodies()), 1)
            self.consume(30)  # 18: warning 2
            self.consume(9)  # 9: warning 3
            self.assertEqual(len(self.sms_bodies()), 3)
            self.assertFalse(self.commands("trip"))
            self.consume(10)  # -1: cut-off
        bodies = self.sms_bodies()
        self.assertEqual(len(bodies), 4)
        self.assertIn("49.00", bodies[0])
        self.assertIn("supply is being cut", bodies[3])
        for body in bodies:
            self.assertSMSOutgoing(self.tenant_1, None, content=body)
        messages = self.alert_messages()
        self.assertEqual(len(messages), 4)
        self.assertIn(self.tenant_1, messages[0].partner_ids)
        self.assertEqual(self.account_1.last_alert_level, "cutoff")
        self.assertEqual(self.account_1.alert_level, "cutoff")
        self.assertIn("being cut", self.account_1.last_alert_message)
        trip = self.commands("trip")
        self.assertRecordValues(trip, [{"state": "queued", "reason": "automatic", "urgent": False}])
        self.assertEqual(self.account_1.pending_command_ids, trip)
        # More consumption below the cut-off: no second alert, no second trip.
        self.consume(1)
        self.assertEqual(len(self.sms_bodies()), 4)
        self.assertEqual(len(self.commands("trip")), 1)
        # A top-up lifts the balance above the cut-off: an urgent close, the executor woken, the trip
        # superseded.
        triggers = self.cron_triggers()
        self.topup(self.account_1, 100.0)  # 98: normal again
        close = self.commands("close").filtered(lambda c: c.state == "queued")
        self.assertRecordValues(close, [{"reason": "automatic", "urgent": True}])
        self.assertEqual(trip.state, "cancelled")
        self.assertEqual(self.cron_triggers(), triggers + 1)
        self.assertEqual(self.account_1.alert_level, "normal")
        # The next descent notifies again.
        self.consume(50)  # 48
        self.assertEqual(len(self.sms_bodies()), 5)

    def test_keep_power_accounts_are_warned_but_not_cut(self):
        self.account_1.keep_power = True
        self.consume(61)
        self.assertEqual(self.account_1.level, "cutoff")
        self.assertFalse(self.commands("trip"))
        self.assertEqual(self.account_1.last_alert_level, "cutoff")

    def test_the_overdraft_allowance_moves_the_cutoff(self):
        self.account_1.overdraft_limit = 20.0
        self.assertEqual(self.account_1.cutoff_threshold, -20.0)
        self.consume(65)  # -5: inside the overdraft
        self.assertEqual(self.account_1.level, "warning_3")
        self.assertFalse(self.commands("trip"))
        self.consume(15)  # -20: at the threshold
        self.assertEqual(self.account_1.level, "cutoff")
        self.assertEqual(len(self.commands("trip")), 1)

    def test_a_big_drop_notifies_the_level_reached_only(self):
        self.consume(45)  # 60 -> 15: warning 2 straight away
        self.assertEqual(len(self.sms_bodies()), 1)
        self.assertEqual(self.account_1.last_alert_level, "warning_2")

    def test_water_meters_get_valve_commands(self):
        water = self._create_meter(self.unit_1, "W-101", self.model_water, address="00000000000101")
        self.ingest(water, T0, "0")
        self.consume(61)
        self.assertEqual(
            self.env["prepaid.meter.command"].search([("meter_id", "=", water.id)]).mapped("kind"),
            ["valve_close"],
        )
        self.topup(self.account_1, 10.0)
        self.assertEqual(
            self.env["prepaid.meter.command"]
            .search([("meter_id", "=", water.id), ("state", "=", "queued")])
            .kind,
            "valve_open",
        )
