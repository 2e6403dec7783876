import json
from decimal import Decimal
from unittest.mock import patch

from odoo import Command
from odoo.addons.prepaid_billing.tests.test_end_to_end import SIM_KEY, SimulatedMeterCase
from odoo.exceptions import AccessError
from odoo.tests import tagged

from prepaid_engine.load import MaliciousMode
from prepaid_engine.load.params import parameters_from_json
from prepaid_engine.simulator.meters import load_parameter


@tagged("post_install", "-at_install")
class TestLoadParameters(SimulatedMeterCase):
    """Applying a profile writes its parameters to the meters that can hold them: meter 1 (an Acrel DDSY1352
    behind the simulator's Modbus gateway) gets one set-load-parameters command, the executor writes it and
    confirms it by reading the values back, and the simulated meter then holds the power limit; a meter whose
    model has no such parameters (or that is not behind a gateway) gets no command and is counted as
    enforced by the platform."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.unit_3 = cls.env["prepaid.property"].create(
            {"name": "B-103", "code": "B-103", "kind": "unit", "parent_id": cls.floor.id}
        )
        cls.meter_plain = cls._create_meter(
            cls.unit_3,
            "E-103",
            model=cls.env.ref("prepaid_metering.meter_model_modbus_generic"),
            gateway_id=cls.gateway.id,
            bus_id=cls.gateway.bus_ids.id,
            address="3",
        )
        cls.profile = cls.env["prepaid.load.profile"].create(
            {
                "name": "Dormitory",
                "power_limit_kw": 2.5,
                "limit_mode": "trip",
                "malicious_mode": "trip",
                "pf_threshold": 0.90,
                "restore_delay": 120,
                "restores_per_day": 2,
                "range_ids": [Command.create({"low_w": 300, "high_w": 6000})],
                "property_ids": [Command.set(cls.building.ids)],
            }
        )

    def queued(self):
        return self.env["prepaid.meter.command"].search(
            [("kind", "=", "set_load_parameters"), ("state", "=", "queued")]
        )

    def held(self, name):
        return self.sim.call(lambda site: load_parameter(site.meter(SIM_KEY), name))

    def test_each_meter_says_who_enforces_its_profile_and_the_profile_counts_them(self):
        self.assertEqual(self.meter_1.load_enforcement, "meter")
        self.assertEqual(self.meter_2.load_enforcement, "platform")  # not behind a gateway
        self.assertEqual(self.meter_plain.load_enforcement, "platform")  # its model has no parameters
        water = self._create_meter(self.unit_1, "W-101", model=self.model_water)
        self.assertFalse(water.load_enforcement)
        self.assertEqual(self.profile.meter_side_count, 1)
        self.assertEqual(self.profile.platform_meter_count, 2)
        self.assertEqual(self.profile.platform_meter_ids, self.meter_2 | self.meter_plain)

    def test_apply_queues_one_command_the_executor_confirms_and_the_meter_holds_the_limit(self):
        self.assertNotEqual(self.held("power_limit"), Decimal("2.5"))
        self.profile.action_apply_to_meters()
        command = self.queued()
        self.assertEqual(command.meter_id, self.meter_1, "no command for the meters that cannot hold them")
        self.assertEqual((command.res_model, command.res_id), ("prepaid.load.profile", self.profile.id))
        values = parameters_from_json(command.load_parameters)
        self.assertEqual(values["power_limit"], Decimal("2.5"))
        self.assertEqual((values["restore_delay"], values["restore_count"]), (120, 2))
        # applied again after a change: the queued command is replaced, not doubled
        self.profile.power_limit_kw = 3.2
        self.profile.action_apply_to_meters()
        self.assertEqual(self.queued(), command)
        self.assertEqual(json.loads(command.load_parameters)["power_limit"], "3.200")
        self.execute_commands()
        self.assertEqual((command.state, command.outcome, command.confirmed), ("done", "confirmed", True))
        self.assertEqual(self.held("power_limit"), Decimal("3.2"))
        self.assertIs(self.held("malicious_mode"), MaliciousMode.TRIP)
        self.assertEqual((self.held("range_1_low"), self.held("range_1_high")), (Decimal("0.3"), 6))
        self.assertEqual((self.held("restore_delay"), self.held("restore_count")), (120, 2))

    def test_the_commands_of_all_meters_are_queued_in_one_call(self):
        meter_4 = self._create_meter(
            self.unit_3,
            "E-104",
            gateway_id=self.gateway.id,
            bus_id=self.gateway.bus_ids.id,
            address="4",
        )
        other = self.env["prepaid.load.profile"].create(
            {"name": "Shop", "malicious_mode": "off", "meter_ids": [Command.set(meter_4.ids)]}
        )
        CommandModel = type(self.env["prepaid.meter.command"])
        original, calls = CommandModel._enqueue, []

        def spy(records, vals_list, urgent=False):
            calls.append(len(vals_list))
            return original(records, vals_list, urgent=urgent)

        with patch.object(CommandModel, "_enqueue", spy):
            (self.profile | other).action_apply_to_meters()
        self.assertEqual(calls, [2])
        self.assertEqual(self.queued().meter_id, self.meter_1 | meter_4)
        self.assertEqual(
            parameters_from_json(self.queued().filtered(lambda c: c.meter_id == meter_4).load_parameters)[
                "malicious_mode"
            ],
            MaliciousMode.OFF,
        )

    def test_a_batch_writes_each_meters_profile_and_skips_the_platform_ones(self):
        self.env.user.groups_id |= self.env.ref("prepaid_base.group_prepaid_manager")
        self.profile.power_limit_kw = 1.8  # the simulator is shared: a value no other test writes
        unprofiled = self.env["prepaid.property"].create({"name": "Annex", "code": "ANX", "kind": "building"})
        batch = self.env["prepaid.batch.operation"].create(
            {"kind": "load_settings", "property_ids": [Command.set((self.building | unprofiled).ids)]}
        )
        water = self._create_meter(self.unit_1, "W-LS", model=self.model_water)
        batch.action_run()
        by_meter = {line.meter_id: line for line in batch.line_ids}
        self.assertNotIn(water, by_meter, "load profiles are electricity's: no line for a water meter")
        self.assertEqual(set(by_meter), {self.meter_1, self.meter_2, self.meter_plain})
        self.assertEqual(by_meter[self.meter_1].state, "queued")
        for meter in (self.meter_2, self.meter_plain):
            self.assertEqual(by_meter[meter].state, "skipped")
            self.assertIn("platform", by_meter[meter].error)
        command = by_meter[self.meter_1].command_id
        self.assertEqual((command.kind, command.reason), ("set_load_parameters", "batch"))
        self.assertEqual(parameters_from_json(command.load_parameters)["power_limit"], Decimal("1.8"))
        self.execute_commands()
        self.assertEqual(by_meter[self.meter_1].state, "done")
        self.assertEqual(batch.state, "done")
        self.assertEqual(self.held("power_limit"), Decimal("1.8"))
        # run again: the done and skipped lines are left alone, no second command
        batch.action_run()
        self.assertFalse(self.queued())

    def test_only_managers_apply_a_profile(self):
        operator = self.new_operator("load_params_operator")
        with self.assertRaises(AccessError):
            self.profile.with_user(operator).action_apply_to_meters()
        self.assertFalse(self.queued())

    def test_a_command_whose_values_the_engine_cannot_read_fails_alone(self):
        Queue = self.env["prepaid.meter.command"]
        bad = Queue._enqueue(
            [{"meter_id": self.meter_1.id, "kind": "set_load_parameters", "load_parameters": "{"}]
        )
        trip = Queue._enqueue([{"meter_id": self.meter_1.id, "kind": "trip"}])
        self.execute_commands()
        self.assertEqual((bad.state, bad.outcome), ("failed", "engine_error"))
        self.assertEqual((trip.state, trip.confirmed), ("done", True))
