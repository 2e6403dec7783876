from datetime import timedelta
from decimal import Decimal

from odoo import Command
from odoo.addons.prepaid_billing.tests.test_end_to_end import SIM_KEY, SIM_START, SimulatedMeterCase
from odoo.tests import tagged

from prepaid_engine.load import EventRecord, TripReason
from prepaid_engine.types import Reading


@tagged("post_install", "-at_install")
class TestLoadMeterEvents(SimulatedMeterCase):
    """Meter-side detection: meter 1 (an Acrel DDSY1352 behind the simulator's Modbus gateway) holds the
    profile once it is applied, trips itself for a kettle, and the next poll reads its trip reason and
    moved event count: one load event from the meter, recorded once, the tenant told, the platform's restore
    bookkeeping kept without a trip command of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.profile = cls.env["prepaid.load.profile"].create(
            {
                "name": "Dormitory",
                "malicious_mode": "trip",
                "limit_mode": "trip",
                "pf_threshold": 0.90,
                "restore_delay": 120,
                "restores_per_day": 2,
                "range_ids": [Command.create({"low_w": 300, "high_w": 6000})],
                "property_ids": [Command.set(cls.building.ids)],
            }
        )

    def events(self):
        return self.env["prepaid.load.event"].search([("meter_id", "=", self.meter_1.id)])

    def told(self):
        messages = self.account_1.message_ids.filtered(lambda m: "Malicious Load" in (m.body or ""))
        return sorted(messages.mapped("message_type"))

    def kettle(self, on=True):
        def switch(site):
            meter = site.meter(SIM_KEY)
            return meter.appliance_on("kettle") if on else meter.appliance_off("kettle")

        return self.sim.call(switch)

    def test_a_meter_that_trips_itself_for_a_kettle_is_recorded_once_and_the_tenant_told(self):
        self.profile.action_apply_to_meters()
        self.execute_commands()
        self.poll()
        self.assertEqual(self.meter_1.load_trip_reason, "none")
        self.assertFalse(self.events())
        self.kettle()
        self.now = SIM_START + timedelta(minutes=1)
        self.poll()
        self.assertEqual(self.relay(), "off", "the meter tripped itself")
        self.assertEqual(self.meter_1.load_trip_reason, "malicious_load")
        self.assertEqual(self.meter_1.load_meter_event_count, 1)
        event = self.events()
        self.assertEqual(len(event), 1)
        self.assertEqual(
            (event.source, event.classification, event.action, event.restore),
            ("meter", "malicious", "trip", "auto"),
        )
        self.assertEqual(event.at, self.now.replace(tzinfo=None))
        self.assertEqual(event.profile_id, self.profile)
        self.assertEqual(event.restore_at, event.at + timedelta(seconds=120))
        self.assertEqual(self.meter_1.load_state, "tripped")
        self.assertFalse(event.command_id, "its relay is open already: no trip command")
        trips = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter_1.id), ("kind", "=", "trip")]
        )
        self.assertFalse(trips)
        self.assertEqual(self.told(), ["comment", "sms"], "a message on the account and an SMS")
        self.assertIn("comes back automatically", self.account_1.message_ids[:1].body)
        # polled again: the count has not moved, nothing recorded twice
        self.now += timedelta(minutes=1)
        self.poll()
        self.assertEqual(len(self.events()), 1)
        self.assertEqual(self.told(), ["comment", "sms"])

    def test_only_meters_whose_model_holds_the_load_status_are_followed(self):
        self.assertEqual(self.meter_1._prepare_engine_meter().load_events_seen, 0)
        plain = self._create_meter(
            self.unit_1,
            "E-109",
            model=self.env.ref("prepaid_metering.meter_model_modbus_generic"),
            gateway_id=self.gateway.id,
            bus_id=self.gateway.bus_ids.id,
            address="9",
        )
        self.assertIsNone(plain._prepare_engine_meter().load_events_seen)

    def test_a_meter_clock_ahead_of_the_poll_never_dates_events_in_the_future(self):
        """Records stamped by a meter whose clock runs 3 hours fast are shifted back by that skew, their
        spacing kept: never after the reading that brought them."""
        read_at = SIM_START + timedelta(hours=1)
        ahead = (read_at + timedelta(hours=3)).replace(tzinfo=None)  # the meter's wall clock (UTC model)
        reading = Reading(
            meter_key=str(self.meter_1.id),
            read_at=read_at,
            total=Decimal("1000.00"),
            trip_reason=TripReason.MALICIOUS_LOAD,
            load_event_count=2,
            load_events=(
                EventRecord(ahead, TripReason.MALICIOUS_LOAD, Decimal("2.2000")),
                EventRecord(ahead - timedelta(minutes=10), TripReason.MALICIOUS_LOAD, Decimal("2.1000")),
            ),
        )
        self.meter_1.sudo()._prepaid_record_meter_events([reading], self.profile)
        events = self.events().sorted("at")
        self.assertEqual(len(events), 2)
        self.assertEqual(events[-1].at, read_at.replace(tzinfo=None))
        self.assertEqual(events[-1].at - events[0].at, timedelta(minutes=10))
