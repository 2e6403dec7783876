from datetime import UTC, date, datetime, timedelta

from odoo import Command
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_billing.tests.common import BillingCommon
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged

from prepaid_engine.load import next_edge

SCHOOL_NIGHTS = {"mon": True, "tue": True, "wed": True, "thu": True, "fri": False, "sat": False, "sun": True}


def shanghai(day, hour, minute=0):
    """An instant given in Shanghai wall time (UTC+8, no DST) in March 2026 (the 2nd is a Monday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@tagged("post_install", "-at_install")
class TestTimeControl(BillingCommon):
    """Time control: a 23:30-06:00 lights-out trips the meters of the building at 23:30 and closes what it
    tripped at 06:00, never a meter cut off for its balance or tripped for its load, never a keep-power
    meter; holidays, effective dates, idempotent runs, refused input."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.unit_3 = cls.env["prepaid.property"].create(
            {"name": "B-103", "code": "B-103", "kind": "unit", "parent_id": cls.floor.id}
        )
        tenant_3 = cls.env["res.partner"].create({"name": "Wang Wei"})
        cls.account_3 = cls.env["prepaid.account"].create(
            {"partner_id": tenant_3.id, "unit_ids": [Command.set(cls.unit_3.ids)]}
        )
        cls.account_3.action_open()
        cls.meter_cut = cls._create_meter(cls.unit_3, "E-103")
        cls.meter_load = cls._create_meter(cls.unit_1, "E-101-L")
        cls.meter_keep = cls._create_meter(cls.unit_2, "E-102-K")
        cls.meter_water = cls._create_meter(cls.unit_1, "W-101", model=cls.model_water)
        cls.meters = cls.meter_1 | cls.meter_2 | cls.meter_cut | cls.meter_load | cls.meter_keep
        internal(cls.meters.sudo()).write({"supply": "on"})
        internal(cls.meter_keep.sudo()).write({"keep_power_state": True})
        cls.env["prepaid.time.schedule"].sudo().search([]).action_archive()  # the demo's, if installed
        cls.schedule = cls.env["prepaid.time.schedule"].create(
            {
                "name": "Lights-out",
                "property_ids": [Command.set(cls.building.ids)],
                "window_ids": [Command.create({"start": 23.5, "end": 6.0, "supply": "off", **SCHOOL_NIGHTS})],
            }
        )

    def commands(self, kind=None, meters=None):
        domain = [
            ("meter_id", "in", (meters or self.meters | self.meter_water).ids),
            ("state", "=", "queued"),
        ]
        if kind:
            domain.append(("kind", "=", kind))
        return self.env["prepaid.meter.command"].search(domain)

    def run_cron(self, at):
        return self.env["prepaid.time.schedule"]._cron_apply(now=at)

    def test_lights_out_trips_at_2330_and_closes_at_0600_what_it_tripped(self):
        self.assertFalse(self.run_cron(shanghai(2, 23, 29)))  # Monday 23:29: still on
        trips = self.run_cron(shanghai(2, 23, 30))
        # every electricity meter of the building but the keep-power one; the water meter untouched
        self.assertEqual(trips.meter_id, self.meters - self.meter_keep)
        self.assertEqual(set(trips.mapped("kind")), {"trip"})
        self.assertEqual(set(trips.mapped("reason")), {"automatic"})
        self.assertEqual(set(trips.mapped("origin")), {"Lights-out"})
        self.assertEqual(self.schedule.last_command_count, 4)
        self.assertEqual(self.schedule.last_run_at, datetime(2026, 3, 2, 15, 30))
        self.assertTrue(all((self.meters - self.meter_keep).mapped("time_control_off")))
        # the night: the relays open; one account runs out of money, one room trips for a kettle
        internal((self.meters - self.meter_keep).sudo()).write({"supply": "off"})
        internal(self.account_3.sudo()).write({"supply_cut": True})
        internal(self.meter_load.sudo()).write({"load_state": "tripped"})
        self.assertFalse(self.run_cron(shanghai(3, 5, 59)))
        closes = self.run_cron(shanghai(3, 6, 0))
        self.assertEqual(closes.meter_id, self.meter_1 | self.meter_2)
        self.assertEqual(set(closes.mapped("kind")), {"close"})
        self.assertEqual(self.schedule.last_command_count, 2)
        # the close superseded the queued trips of those two; the others keep theirs, nothing for keep-power
        self.assertEqual(self.commands("trip").meter_id, self.meter_cut | self.meter_load)
        self.assertFalse(self.commands(meters=self.meter_keep))
        self.assertFalse(any(self.meters.mapped("time_control_off")))
        # the cut-off account is topped up later: time control does not close it at 06:05 (balance does)
        internal(self.account_3.sudo()).write({"supply_cut": False})
        self.assertFalse(self.run_cron(shanghai(3, 6, 5)))

    def test_an_account_keep_power_is_left_alone_too(self):
        self.account_1.keep_power = True
        trips = self.run_cron(shanghai(2, 23, 30))
        self.assertEqual(trips.meter_id, self.meter_2 | self.meter_cut)

    def test_a_meter_already_off_gets_no_command_and_is_not_closed_in_the_morning(self):
        internal(self.meter_2.sudo()).write({"supply": "off"})  # tripped by hand before 23:30
        trips = self.run_cron(shanghai(2, 23, 30))
        self.assertNotIn(self.meter_2, trips.meter_id)
        self.assertFalse(self.meter_2.time_control_off)
        closes = self.run_cron(shanghai(3, 6, 0))
        self.assertNotIn(self.meter_2, closes.meter_id)
        self.assertIn(self.meter_1, closes.meter_id)
        # a meter on in the daytime gets nothing either
        internal(self.meters.sudo()).write({"supply": "on"})
        self.assertFalse(self.run_cron(shanghai(3, 12, 0)))

    def test_the_cron_is_idempotent(self):
        first = self.run_cron(shanghai(2, 23, 30))
        count = len(self.commands())
        self.assertFalse(self.run_cron(shanghai(2, 23, 30)))
        self.assertFalse(self.run_cron(shanghai(2, 23, 45)))  # the trips are still queued: not again
        self.assertEqual(len(self.commands()), count)
        self.assertEqual(self.schedule.last_command_count, 0)
        self.assertEqual(self.commands("trip"), first)
        closes = self.run_cron(shanghai(3, 6, 0))
        self.assertTrue(closes)
        self.assertFalse(self.run_cron(shanghai(3, 6, 1)))
        self.assertEqual(self.commands("close"), closes)

    def test_friday_and_saturday_nights_are_not_school_nights(self):
        self.assertFalse(self.run_cron(shanghai(6, 23, 45)))  # Friday
        self.assertFalse(self.run_cron(shanghai(7, 23, 45)))  # Saturday
        self.assertTrue(self.run_cron(shanghai(8, 23, 45)))  # Sunday

    def test_a_holiday_replaces_the_weekly_window(self):
        self.schedule.write(
            {
                "holiday_ids": [
                    Command.create({"date": date(2026, 3, 2), "name": "Sports day"}),  # a Monday
                    Command.create({"date": date(2026, 3, 6), "name": "Concert"}),  # a Friday
                ],
                "holiday_window_ids": [Command.create({"start": 20.0, "end": 22.0, "supply": "off"})],
            }
        )
        self.assertEqual(self.schedule.window_ids.mapped("holiday"), [False])
        self.assertEqual(self.schedule.holiday_window_ids.mapped("holiday"), [True])
        self.assertTrue(self.run_cron(shanghai(2, 21, 0)))  # the holiday's own window, 20:00-22:00
        self.assertTrue(self.run_cron(shanghai(2, 22, 0)))  # closed again at its end
        self.assertFalse(self.run_cron(shanghai(2, 23, 45)))  # no 23:30 rule on that Monday
        self.assertTrue(self.run_cron(shanghai(3, 23, 45)))  # Tuesday, a school night again
        self.assertTrue(self.run_cron(shanghai(4, 6, 0)))
        self.assertFalse(self.run_cron(shanghai(5, 21, 0)))  # an ordinary Thursday evening
        self.assertTrue(self.run_cron(shanghai(6, 21, 0)))  # Friday, a holiday

    def test_the_global_leaves_of_a_calendar_are_holidays(self):
        calendar = self.env["resource.calendar"].create({"name": "School", "tz": "Asia/Shanghai"})
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Sports day",
                "calendar_id": calendar.id,
                "date_from": datetime(2026, 3, 1, 16, 0),  # Monday 00:00 .. 23:59 in Shanghai
                "date_to": datetime(2026, 3, 2, 15, 59),
            }
        )
        self.schedule.resource_calendar_id = calendar
        self.assertEqual(self.schedule._prepaid_holiday_dates(), {date(2026, 3, 2)})
        self.assertFalse(self.run_cron(shanghai(2, 23, 45)))
        self.assertTrue(self.run_cron(shanghai(3, 23, 45)))

    def test_effective_dates_bound_the_days_windows_start_on(self):
        self.schedule.write({"effective_from": date(2026, 3, 3), "effective_until": date(2026, 3, 3)})
        self.assertFalse(self.run_cron(shanghai(2, 23, 45)))  # before
        self.assertTrue(self.run_cron(shanghai(3, 23, 45)))  # Tuesday
        self.assertTrue(self.run_cron(shanghai(4, 6, 0)))  # its window ends Wednesday 06:00
        self.assertFalse(self.run_cron(shanghai(4, 23, 45)))  # after

    def test_in_force_and_next_edge(self):
        Schedule = self.env["prepaid.time.schedule"]
        today = date.today()
        past = Schedule.create({"name": "Past", "effective_until": today - timedelta(days=1)})
        future = Schedule.create({"name": "Future", "effective_from": today + timedelta(days=1)})
        self.assertTrue(self.schedule.in_force)
        self.assertFalse(past.in_force or future.in_force)
        found = Schedule.search([("in_force", "=", True), ("id", "in", (self.schedule | past | future).ids)])
        self.assertEqual(found, self.schedule)
        self.assertEqual(Schedule.search([("in_force", "=", False), ("id", "in", found.ids)]), Schedule)
        self.assertEqual(self.schedule.tz, "Asia/Shanghai")
        self.assertTrue(self.schedule.next_edge_at)
        self.assertFalse(past.next_edge_at)
        edge = next_edge(self.schedule._prepaid_engine_schedule(), datetime.now(UTC), "Asia/Shanghai")
        self.assertAlmostEqual(
            self.schedule.next_edge_at, edge.replace(tzinfo=None), delta=timedelta(minutes=1)
        )
        self.assertEqual(self.schedule.window_summary, "Off 23:30-06:00 Sun, Mon, Tue, Wed, Thu")

    def test_a_meter_of_the_schedule_outside_its_properties(self):
        other = self.env["prepaid.property"].create({"name": "Block C", "code": "C", "kind": "building"})
        unit = self.env["prepaid.property"].create(
            {"name": "C-101", "code": "C-101", "kind": "unit", "parent_id": other.id}
        )
        meter = self._create_meter(unit, "E-C101")
        self.schedule.property_ids = self.floor
        self.schedule.meter_ids = meter
        trips = self.run_cron(shanghai(2, 23, 30))
        self.assertIn(meter, trips.meter_id)
        self.assertIn(self.meter_1, trips.meter_id)

    def test_bad_input_is_refused(self):
        with self.assertRaises(ValidationError):
            self.schedule.window_ids.end = 25.0
        with self.assertRaises(ValidationError):
            self.schedule.window_ids.write(dict.fromkeys(SCHOOL_NIGHTS, False))
        with self.assertRaises(ValidationError):
            self.schedule.write({"effective_from": date(2026, 3, 3), "effective_until": date(2026, 3, 1)})
        with self.assertRaises(ValidationError):
            self.env["prepaid.time.schedule"].create(
                {"name": "Bad", "window_ids": [Command.create({"start": -1.0, "end": 6.0})]}
            )
        # a holiday window needs no weekday
        self.schedule.holiday_window_ids = [
            Command.create({"start": 1.0, "end": 5.0, **dict.fromkeys(SCHOOL_NIGHTS, False)})
        ]

    def test_the_run_fields_are_the_cron_s_and_operators_only_read(self):
        with self.assertRaises(AccessError):
            self.schedule.write({"last_command_count": 3})
        operator = self.new_operator("tc_operator")
        self.assertEqual(self.schedule.with_user(operator).name, "Lights-out")
        with self.assertRaises(AccessError):
            self.schedule.with_user(operator).write({"name": "Mine"})
