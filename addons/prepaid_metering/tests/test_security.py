from datetime import datetime

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import MeteringCommon


@tagged("post_install", "-at_install")
class TestSecurity(MeteringCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway = cls._create_gateway("sec-gw")
        bus = cls.gateway.bus_ids
        cls.meter_101 = cls._create_meter(bus, "1", unit_id=cls.unit_101.id)
        cls.meter_201 = cls._create_meter(bus, "2", unit_id=cls.unit_201.id)
        cls.meter_common = cls._create_meter(bus, "3")
        Reading = cls.env["prepaid.meter.reading"]
        for meter in (cls.meter_101, cls.meter_201, cls.meter_common):
            Reading.create({"meter_id": meter.id, "read_at": datetime(2026, 3, 1), "total": 10.0})
        groups_user = "prepaid_base.group_prepaid_user"
        cls.operator_floor_1 = new_test_user(
            cls.env, "op_floor_1", groups=groups_user, company_id=cls.company.id, company_ids=cls.company.ids
        )
        cls.operator_floor_1.prepaid_property_ids = cls.floor_1
        cls.operator_all = new_test_user(
            cls.env, "op_all", groups=groups_user, company_id=cls.company.id, company_ids=cls.company.ids
        )
        cls.manager = new_test_user(
            cls.env,
            "mgr_metering",
            groups="prepaid_base.group_prepaid_manager",
            company_id=cls.company.id,
            company_ids=cls.company.ids,
        )
        # Company B with its own gateway and meter.
        cls.company_b = cls.env["res.company"].create({"name": "Metering Co B"})
        env_b = cls.env(context=dict(cls.env.context, allowed_company_ids=[cls.company_b.id]))
        gateway_b = env_b["prepaid.gateway"].create(
            {
                "name": "B",
                "code": "sec-gw",
                "company_id": cls.company_b.id,
                "bus_ids": [(0, 0, {"name": "1"})],
            }
        )
        cls.meter_b = env_b["prepaid.meter"].create(
            {
                "name": "B meter",
                "utility": "electricity",
                "model_id": cls.model_acrel.id,
                "address": "1",
                "bus_id": gateway_b.bus_ids.id,
                "company_id": cls.company_b.id,
            }
        )
        cls.platform = cls.env["prepaid.platform"].create({"name": "P", "kind": "ctwing", "token": "secret"})

    def _visible(self, user, model="prepaid.meter"):
        return self.env[model].with_user(user).search([])

    def test_operator_limited_to_a_floor_sees_only_its_meters(self):
        self.assertEqual(self._visible(self.operator_floor_1), self.meter_101)
        readings = self._visible(self.operator_floor_1, "prepaid.meter.reading")
        self.assertEqual(readings.meter_id, self.meter_101)
        with self.assertRaises(AccessError):
            self.meter_201.with_user(self.operator_floor_1).read(["name"])

    def test_operator_limited_to_the_building_sees_common_meters(self):
        self.operator_floor_1.prepaid_property_ids = self.building
        self.assertEqual(
            self._visible(self.operator_floor_1), self.meter_101 | self.meter_201 | self.meter_common
        )

    def test_operator_without_limit_and_manager_see_their_company(self):
        everything = self.meter_101 | self.meter_201 | self.meter_common
        self.assertEqual(self._visible(self.operator_all) & (everything | self.meter_b), everything)
        self.assertEqual(self._visible(self.manager) & (everything | self.meter_b), everything)

    def test_company_b_is_invisible(self):
        for user in (self.operator_all, self.manager):
            self.assertNotIn(self.meter_b, self._visible(user))
            self.assertNotIn(self.meter_b.gateway_id, self._visible(user, "prepaid.gateway"))
            with self.assertRaises(AccessError):
                self.meter_b.with_user(user).read(["name"])

    def test_gateway_code_is_unique_per_company_only(self):
        self.assertEqual(self.meter_b.gateway_id.code, self.gateway.code)

    def test_operators_cannot_create_gateways_nor_read_platform_tokens(self):
        with self.assertRaises(AccessError):
            self.env["prepaid.gateway"].with_user(self.operator_all).create({"name": "x", "code": "x"})
        with self.assertRaises(AccessError):
            self.platform.with_user(self.operator_all).read(["token"])
        self.assertEqual(self.platform.with_user(self.manager).token, "secret")

    def test_operator_can_queue_a_command_on_a_visible_meter_only(self):
        self.meter_101.with_user(self.operator_floor_1).action_trip()
        command = self.env["prepaid.meter.command"].search([("meter_id", "=", self.meter_101.id)])
        self.assertEqual(command.requested_by, self.operator_floor_1)
        with self.assertRaises(AccessError):
            self.meter_201.with_user(self.operator_floor_1).action_trip()
