from datetime import timedelta

from odoo import Command
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_billing.tests.common import T0, BillingCommon
from odoo.addons.prepaid_billing.tests.test_end_to_end import SIM_KEY, SimulatedMeterCase
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from prepaid_engine.types import Supply


@tagged("post_install", "-at_install")
class TestLoadControl(BillingCommon):
    """Platform-side load control on polled power samples: a kettle trips within the poll that saw it, a
    laptop never does, the supply comes back after the profile's delay at most N times a day, then waits for
    a manager; a balance cut-off is never lifted by a load restore and a load trip never by a top-up."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.profile = cls.env["prepaid.load.profile"].create(
            {
                "name": "Dormitory",
                "power_limit_kw": 2.2,
                "malicious_mode": "trip",
                "limit_mode": "trip",
                "pf_threshold": 0.90,
                "restore_delay": 300,
                "restores_per_day": 3,
                "range_ids": [Command.create({"low_w": 300, "high_w": 6000})],
                "property_ids": [Command.set(cls.building.ids)],
            }
        )

    def setUp(self):
        super().setUp()
        self.topup(self.account_1, 200.0)
        self.total = 10.0
        self.at = T0

    def sample(self, power_w, pf, minutes=1):
        """One poll of meter 1: ``power_w`` W at power factor ``pf``, ``minutes`` after the previous one."""
        self.at += timedelta(minutes=minutes)
        self.total += 0.01
        self.ingest(self.meter_1, self.at, round(self.total, 2), power=power_w / 1000, power_factor=pf)

    def base(self, count=4, power_w=60, pf=0.6):
        for _ in range(count):
            self.sample(power_w, pf)

    def events(self):
        return self.env["prepaid.load.event"].search([("meter_id", "=", self.meter_1.id)], order="at")

    def commands(self, kind):
        return self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter_1.id), ("kind", "=", kind), ("state", "=", "queued")]
        )

    def kettle(self):
        """A 1,500 W kettle (PF 1.0) on top of a 60 W laptop (PF 0.6): the total reads 1,560 W at 0.999."""
        self.sample(1560, 0.999)

    def test_the_catalogue_ships_with_the_engine_and_the_whitelist_defaults_to_allowed(self):
        catalogue = self.env["prepaid.appliance"].search([])
        self.assertGreaterEqual(len(catalogue), 30)
        self.assertIn("kettle", catalogue.mapped("code"))
        self.assertEqual(catalogue.filtered(lambda a: a.code == "kettle").category, "forbidden")
        self.assertTrue(self.profile.whitelist_ids)
        self.assertFalse(self.profile.whitelist_ids.filtered(lambda a: a.category == "forbidden"))
        self.assertEqual(self.meter_1.load_profile_id, self.profile)

    def test_a_kettle_trips_the_meter_in_the_poll_that_saw_it(self):
        self.base()
        self.assertFalse(self.events())
        self.kettle()
        event = self.events()
        self.assertEqual(len(event), 1)
        self.assertEqual((event.classification, event.action, event.restore), ("malicious", "trip", "auto"))
        self.assertAlmostEqual(event.step_w, 1500, delta=1)
        self.assertGreaterEqual(event.power_factor, 0.99)
        self.assertEqual(event.trips_today, 1)
        self.assertTrue(self.commands("trip"))
        self.assertEqual(self.meter_1.load_state, "tripped")
        self.assertEqual(event.restore_at, event.at + timedelta(seconds=300))
        # The tenant is told (a message on the account, shown on the portal; an SMS queued).
        messages = self.account_1.message_ids.filtered(lambda m: "1500 W" in (m.body or ""))
        self.assertTrue(messages)
        # The same samples seen again (the next poll) record nothing twice.
        self.sample(1560, 0.999)
        self.assertEqual(len(self.events()), 1)

    def test_a_laptop_never_trips(self):
        self.base(power_w=5, pf=0.5)
        self.sample(65, 0.6)  # a 60 W laptop at PF 0.6
        self.base(power_w=65, pf=0.6)
        self.assertFalse(self.events())
        self.assertFalse(self.commands("trip"))
        self.assertEqual(self.meter_1.load_state, "normal")

    def test_over_power_trips(self):
        self.base()
        self.sample(2600, 0.85)  # an air conditioner on top: 2.6 kW against a 2.2 kW limit
        event = self.events().filtered(lambda e: e.classification == "overload")
        self.assertTrue(event)
        self.assertEqual(event[:1].action, "trip")
        self.assertEqual(self.meter_1.load_state, "tripped")

    def test_restore_after_the_delay_and_the_fourth_trip_waits_for_a_manager(self):
        Meter = self.env["prepaid.meter"]
        for trip in range(1, 5):
            self.base()
            self.kettle()
            event = self.events()[-1]
            self.assertEqual(event.trips_today, trip)
            if trip < 4:
                self.assertEqual(event.restore, "auto")
                self.assertEqual(Meter._cron_load_restore(), 1)
                self.assertEqual(self.meter_1.load_state, "normal")
                self.assertTrue(self.commands("close"))
                self.assertEqual(event.restore, "restored")
                self.sample(0, 0)  # the meter opened: nothing flows, then the tenant's base load again
        self.assertEqual((event.restore, self.meter_1.load_state), ("manager", "locked"))
        self.assertEqual(Meter._cron_load_restore(), 0)
        operator = self.new_operator("load_operator")
        with self.assertRaises(AccessError):
            self.meter_1.with_user(operator).action_load_restore()
        wizard = self.env["prepaid.load.restore.wizard"].create({"meter_id": self.meter_1.id, "reason": " "})
        with self.assertRaises(UserError):
            wizard.action_restore()
        wizard.reason = "Kettle taken away, tenant warned"
        wizard.action_restore()
        self.assertEqual(self.meter_1.load_state, "normal")
        self.assertEqual(event.restore, "restored")
        self.assertIn("Kettle taken away", event.restore_reason)
        self.assertTrue(self.meter_1.message_ids.filtered(lambda m: "Kettle taken away" in (m.body or "")))

    def test_a_balance_cut_off_is_never_lifted_by_a_load_restore(self):
        self.base()
        self.kettle()
        # The balance runs out while the meter is tripped for its load.
        self.post(self.account_1, -self.account_1.balance - 5.0, "drain")
        self.assertTrue(self.account_1.supply_cut)
        self.assertEqual(self.env["prepaid.meter"]._cron_load_restore(), 0)
        self.assertEqual(self.meter_1.load_state, "tripped")

    def test_a_top_up_never_lifts_a_load_trip(self):
        self.post(self.account_1, -self.account_1.balance - 5.0, "drain")
        self.assertTrue(self.account_1.supply_cut)
        self.assertEqual(self.meter_1.load_state, "normal")
        self.base()
        self.kettle()
        self.assertEqual(self.events()[-1].restore, "balance")
        closes_before = self.commands("close")
        self.topup(self.account_1, 100.0)
        self.assertFalse(self.account_1.supply_cut)
        self.assertEqual(self.commands("close"), closes_before, "the top-up leaves the load trip alone")
        # Load control closes it once the delay passed and the balance allows.
        self.assertEqual(self.env["prepaid.meter"]._cron_load_restore(), 1)
        self.assertTrue(self.commands("close"))

    def test_events_are_recorded_by_load_control_only(self):
        self.base()
        self.kettle()
        event = self.events()
        with self.assertRaises(AccessError):
            event.write({"action": "none"})
        with self.assertRaises(AccessError):
            self.env["prepaid.load.event"].create({"meter_id": self.meter_1.id})
        with self.assertRaises(AccessError):
            self.meter_1.write({"load_state": "normal"})

    def test_profile_values_are_checked(self):
        with self.assertRaises(ValidationError):
            self.env["prepaid.load.profile"].create({"name": "Bad", "pf_threshold": 1.5})
        with self.assertRaises(ValidationError):
            self.env["prepaid.load.profile"].create(
                {"name": "Bad", "range_ids": [Command.create({"low_w": 500, "high_w": 100})]}
            )
        with self.assertRaises(ValidationError):
            self.env["prepaid.load.profile"].create(
                {
                    "name": "Bad",
                    "range_ids": [Command.create({"low_w": 300, "high_w": 400 + i}) for i in range(7)],
                }
            )

    def test_absurd_numbers_are_refused_with_a_reason(self):
        Profile = self.env["prepaid.load.profile"]
        for vals in (
            {"power_limit_kw": float("nan")},
            {"power_limit_kw": float("inf")},
            {"pf_threshold": "abc"},
            {"range_ids": [Command.create({"low_w": 10**12, "high_w": 10**13})]},
        ):
            with self.subTest(vals=vals), self.assertRaises(ValidationError):
                Profile.create({"name": "Bad", "malicious_mode": "off", **vals})
        with self.assertRaises(ValidationError):
            self.env["prepaid.appliance"].create(
                {"name": "Bad", "code": "bad_pf", "power_min": 1, "power_max": 2, "pf_min": float("nan")}
            )
        with self.assertRaises(ValidationError):
            self.env["prepaid.time.schedule"].create(
                {"name": "Bad", "window_ids": [Command.create({"start": float("nan"), "end": 6.0})]}
            )

    def test_the_most_specific_profile_applies(self):
        room = self.env["prepaid.load.profile"].create(
            {
                "name": "Room",
                "property_ids": [Command.set(self.unit_1.ids)],
                "malicious_mode": "alarm",
                "range_ids": [Command.create({"low_w": 300, "high_w": 3000})],
            }
        )
        own = self.env["prepaid.load.profile"].create(
            {"name": "Meter", "meter_ids": [Command.set(self.meter_2.ids)], "malicious_mode": "off"}
        )
        profiles = self.env["prepaid.load.profile"]._profiles_of(self.meter_1 | self.meter_2)
        self.assertEqual(profiles[self.meter_1.id], room)
        self.assertEqual(profiles[self.meter_2.id], own)

    def test_a_learned_appliance_is_recognised_afterwards(self):
        """A 700 W hot plate (resistive, PF 1.0) is malicious in this profile; learnt as allowed on the meter,
        it goes on the profile's whitelist and is recognised (no trip) the next time."""
        Meter = self.env["prepaid.meter"]
        self.base()
        self.sample(760, 0.995)
        self.assertEqual(self.events()[-1].classification, "malicious")
        Meter._cron_load_restore()
        self.sample(60, 0.6)
        # Learning: the baseline, then a few polls with the hot plate on; no trip meanwhile.
        self.base()
        self.meter_1.action_load_learn_start()
        self.assertTrue(self.meter_1.load_learning_since)
        # The readings of the learning come after its start (the test's clock is the readings' own).
        internal(self.meter_1.sudo()).write({"load_learning_since": self.at.replace(tzinfo=None)})
        events_before = len(self.events())
        for _ in range(4):
            self.sample(760, 0.995)
        self.assertEqual(len(self.events()), events_before, "no trip while learning")
        action = self.meter_1.action_load_learn_finish()
        wizard = (
            self.env[action["res_model"]].with_context(**action["context"]).create({"name": "Lab hot plate"})
        )
        wizard.action_learn()
        appliance = self.env["prepaid.appliance"].search([("learned_meter_id", "=", self.meter_1.id)])
        self.assertEqual(len(appliance), 1)
        self.assertTrue(
            appliance.power_min <= 700 <= appliance.power_max, (appliance.power_min, appliance.power_max)
        )
        self.assertGreaterEqual(appliance.pf_min, 0.95)
        self.assertIn(appliance, self.profile.whitelist_ids)
        self.assertFalse(self.meter_1.load_learning_since)
        # Switched off, then on again: recognised, no event, no trip.
        self.base()
        self.sample(760, 0.995)
        self.assertEqual(len(self.events()), events_before)
        self.assertEqual(self.meter_1.load_state, "normal")

    def _lights_out_all_day(self):
        days = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), True)
        return self.env["prepaid.time.schedule"].create(
            {
                "name": "Always off",
                "property_ids": [Command.set(self.building.ids)],
                "window_ids": [Command.create({"start": 0.0, "end": 0.0, "supply": "off", **days})],
            }
        )

    def test_a_load_restore_never_closes_a_meter_during_a_time_control_window(self):
        self.base()
        self.kettle()
        self._lights_out_all_day()
        closes = self.commands("close")
        self.assertEqual(self.env["prepaid.meter"]._cron_load_restore(), 1)
        self.assertEqual(self.meter_1.load_state, "normal")
        self.assertTrue(self.meter_1.time_control_off, "time control closes it when its window ends")
        self.assertEqual(self.commands("close"), closes)

    def test_a_top_up_never_closes_a_meter_during_a_time_control_window(self):
        self.post(self.account_1, -self.account_1.balance - 5.0, "drain")
        self.assertTrue(self.account_1.supply_cut)
        self._lights_out_all_day()
        closes = self.commands("close")
        self.topup(self.account_1, 100.0)
        self.assertFalse(self.account_1.supply_cut)
        self.assertEqual(self.commands("close"), closes)
        self.assertTrue(self.meter_1.time_control_off)

    def test_the_room_status_board_shows_a_load_trip(self):
        self.base()
        self.kettle()
        self.assertEqual(self.unit_1.board_load_state, "tripped")
        self.assertEqual(self.unit_2.board_load_state, "normal")


@tagged("post_install", "-at_install")
class TestLoadControlEndToEnd(SimulatedMeterCase):
    """Against the simulator running in the test process: the tenant switches a kettle on, the next poll
    reads the room's power, the platform classifies the step, trips the meter through the command queue and
    the simulated relay opens; after the delay the restore cron closes it again."""

    def setUp(self):
        super().setUp()
        self.env["prepaid.load.profile"].create(
            {
                "name": "Dormitory",
                "malicious_mode": "trip",
                "pf_threshold": 0.90,
                "restore_delay": 0,
                "restores_per_day": 3,
                "range_ids": [Command.create({"low_w": 300, "high_w": 6000})],
                "property_ids": [Command.set(self.building.ids)],
            }
        )

    def tick_and_poll(self):
        self.now += timedelta(minutes=1)
        return self.poll()

    def test_a_kettle_on_the_simulator_trips_within_one_poll(self):
        self.topup(self.account_1, 100.0)
        self.execute_commands()
        self.assertEqual(self.relay(), Supply.ON)
        for _ in range(3):
            self.tick_and_poll()
        self.assertFalse(self.env["prepaid.load.event"].search([("meter_id", "=", self.meter_1.id)]))
        self.sim.call(lambda site: site.meter(SIM_KEY).appliance_on("kettle"))
        result = self.tick_and_poll()
        self.assertTrue(result.readings)
        event = self.env["prepaid.load.event"].search([("meter_id", "=", self.meter_1.id)])
        self.assertEqual(len(event), 1, "the poll that read the kettle recorded it")
        self.assertEqual((event.classification, event.action), ("malicious", "trip"))
        kettle = self.env["prepaid.appliance"].search([("code", "=", "kettle")])
        self.assertTrue(kettle.power_min <= event.step_w <= kettle.power_max, event.step_w)
        self.assertGreaterEqual(event.power_factor, 0.95)
        # Matched to a resistive forbidden appliance of that power (a kettle and a heater look alike).
        self.assertEqual((event.appliance_id.category, event.appliance_id.resistive), ("forbidden", True))
        self.execute_commands()
        self.assertEqual(self.relay(), Supply.OFF)
        self.assertEqual(self.meter_1.load_state, "tripped")
        self.sim.call(lambda site: site.meter(SIM_KEY).appliance_off("kettle"))
        self.assertEqual(self.env["prepaid.meter"]._cron_load_restore(), 1)
        self.execute_commands()
        self.assertEqual(self.relay(), Supply.ON)
        self.assertEqual(self.meter_1.load_state, "normal")
