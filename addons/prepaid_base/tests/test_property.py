from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger
from psycopg2.errors import CheckViolation, ForeignKeyViolation, UniqueViolation

from .common import PrepaidCommon


@tagged("post_install", "-at_install")
class TestPropertyHierarchy(PrepaidCommon):
    def test_complete_name_and_ancestors_follow_the_tree(self):
        self.assertEqual(self.unit_a101.complete_name, "S / A / A1 / A101")
        # Shown by its code and name first, then its building: the room is visible where the text is cut.
        self.assertEqual(self.unit_a101.display_name, "[T-A101] A101 · A")
        self.assertEqual(self.floor_a1.display_name, "A1 · A")
        self.assertEqual(self.building_a.display_name, "A · S")
        self.assertEqual(self.site.display_name, "S")
        # Found by any part of its path or its code.
        Property = self.env["prepaid.property"]
        self.assertIn(self.unit_a101, Property.search([("display_name", "ilike", "A1 / A101")]))
        self.assertIn(self.unit_a101, Property.search([("display_name", "ilike", "T-A101")]))
        self.assertEqual(self.unit_a101.site_id, self.site)
        self.assertEqual(self.unit_a101.building_id, self.building_a)
        self.assertEqual(self.unit_a101.floor_id, self.floor_a1)
        # A property is its own ancestor of its kind; a building has no floor.
        self.assertEqual(self.building_a.building_id, self.building_a)
        self.assertFalse(self.building_a.floor_id)
        self.assertFalse(self.site.building_id)

    def test_moving_a_floor_updates_names_and_ancestors_of_its_units(self):
        self.floor_a1.parent_id = self.building_b
        self.assertEqual(self.unit_a101.complete_name, "S / B / A1 / A101")
        self.assertEqual(self.unit_a101.building_id, self.building_b)
        self.assertEqual(self._db_value(self.unit_a101, "building_id"), self.building_b.id)
        self.building_b.name = "Block B"
        self.assertEqual(self._db_value(self.unit_a101, "complete_name"), "S / Block B / A1 / A101")

    def test_unit_directly_under_a_building_is_allowed(self):
        unit = self.env["prepaid.property"].create(
            {"name": "Stall", "kind": "unit", "parent_id": self.building_a.id}
        )
        self.assertEqual(unit.building_id, self.building_a)
        self.assertFalse(unit.floor_id)

    def test_unit_under_a_site_is_refused(self):
        with self.assertRaises(ValidationError):
            self.env["prepaid.property"].create({"name": "X", "kind": "unit", "parent_id": self.site.id})

    def test_unit_without_parent_is_refused(self):
        with self.assertRaises(ValidationError):
            self.env["prepaid.property"].create({"name": "X", "kind": "unit"})

    def test_floor_must_hang_under_a_building(self):
        Property = self.env["prepaid.property"]
        with self.assertRaises(ValidationError):
            Property.create({"name": "F", "kind": "floor", "parent_id": self.site.id})
        with self.assertRaises(ValidationError):
            Property.create({"name": "F", "kind": "floor"})

    def test_site_cannot_have_a_parent_and_building_may_stand_alone(self):
        Property = self.env["prepaid.property"]
        with self.assertRaises(ValidationError):
            Property.create({"name": "S2", "kind": "site", "parent_id": self.site.id})
        standalone = Property.create({"name": "Lone building", "kind": "building"})
        self.assertFalse(standalone.site_id)

    def test_changing_a_parent_kind_rechecks_its_children(self):
        # Building A has a floor: it cannot become a floor itself (a floor under a floor is invalid).
        with self.assertRaises(ValidationError):
            self.building_a.kind = "floor"

    def test_cycle_is_refused(self):
        with self.assertRaises(UserError):  # ValidationError is a UserError
            self.site.write({"kind": "building", "parent_id": self.building_a.id})

    @mute_logger("odoo.sql_db")
    def test_negative_area_is_refused(self):
        with self.assertRaises(CheckViolation):
            self.unit_a101.area = -1.0
            self.env.flush_all()

    @mute_logger("odoo.sql_db")
    def test_code_unique_per_company(self):
        other = self.env["res.company"].create({"name": "Other Co"})
        # The same code in another company is fine.
        self.env["prepaid.property"].create(
            {"name": "Other", "code": "T-S", "kind": "site", "company_id": other.id}
        )
        with self.assertRaises(UniqueViolation):
            self.env["prepaid.property"].create({"name": "Dup", "code": "T-S", "kind": "site"})
            self.env.flush_all()

    def test_parent_in_another_company_is_refused(self):
        other = self.env["res.company"].create({"name": "Other Co"})
        self.env.user.company_ids |= other
        with self.assertRaises(UserError):
            self.env["prepaid.property"].create(
                {
                    "name": "Foreign floor",
                    "kind": "floor",
                    "parent_id": self.building_a.id,
                    "company_id": other.id,
                }
            )
        with self.assertRaises(ValidationError):
            self.building_a.company_id = other

    def test_a_unit_in_use_cannot_be_deleted(self):
        with self.assertRaises(UserError):
            self.unit_a101.unlink()
        self.account_a101.action_close()
        self.unit_a101.unlink()
        self.assertFalse(self.unit_a101.exists())
        # A property with children cannot be deleted either (they would be orphans).
        with mute_logger("odoo.sql_db"), self.assertRaises(ForeignKeyViolation), self.env.cr.savepoint():
            self.building_b.unlink()

    def test_settlement_day_range_depends_on_cycle(self):
        self.building_a.write({"settlement_cycle": "monthly", "settlement_day": 31})
        with self.assertRaises(ValidationError):
            self.building_a.write({"settlement_cycle": "weekly", "settlement_day": 8})
        self.building_a.write({"settlement_cycle": "weekly", "settlement_day": 7})
        self.building_a.write({"settlement_cycle": "daily", "settlement_day": 31})
        self.assertEqual(self.building_a.settlement_day, 31)

    def test_counts(self):
        self.assertEqual(self.building_a.child_count, 1)
        self.assertEqual(self.site.child_count, 2)
        self.assertEqual(self.site.account_count, 2)
        self.assertEqual(self.building_a.account_count, 1)
        self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant_a101.id, "unit_ids": self.unit_a101.ids}
        )
        self.building_a.invalidate_recordset(["tenancy_count"])
        self.assertEqual(self.building_a.tenancy_count, 1)
        self.assertEqual(self.building_b.tenancy_count, 0)
        self.assertEqual(
            self.building_a.action_view_accounts()["domain"], [("unit_ids", "child_of", self.building_a.id)]
        )


@tagged("post_install", "-at_install")
class TestPropertyInheritance(PrepaidCommon):
    def test_time_zone_is_inherited_from_the_nearest_ancestor(self):
        self.assertFalse(self.unit_a101.tz)
        self.assertEqual(self.unit_a101.effective_tz, "Asia/Shanghai")
        self.building_a.tz = "Asia/Urumqi"
        self.assertEqual(self.unit_a101.effective_tz, "Asia/Urumqi")
        self.assertEqual(self._db_value(self.unit_a101, "effective_tz"), "Asia/Urumqi")
        self.assertEqual(self.unit_b101.effective_tz, "Asia/Shanghai")
        self.unit_a101.tz = "Asia/Hong_Kong"
        self.assertEqual(self.unit_a101.effective_tz, "Asia/Hong_Kong")
        self.building_a.tz = False
        self.assertEqual(self.floor_a1.effective_tz, "Asia/Shanghai")

    def test_child_created_under_a_parent_starts_without_time_zone(self):
        Property = self.env["prepaid.property"].with_context(default_parent_id=self.floor_a1.id)
        unit = Property.create({"name": "A103", "kind": "unit"})
        self.assertFalse(unit.tz)
        self.assertEqual(unit.effective_tz, "Asia/Shanghai")

    def test_effective_tariff_walks_up_the_tree(self):
        self.assertEqual(self.unit_a101._get_effective_tariff("electricity"), self.tariff_flat)
        self.assertEqual(self.floor_a1._get_effective_tariff("electricity"), self.tariff_flat)
        self.assertFalse(self.unit_b101._get_effective_tariff("electricity"))
        self.assertFalse(self.unit_a101._get_effective_tariff("water"))
        # Own tariff beats the ancestors'.
        self.unit_a102.electricity_tariff_id = self.tariff_tou
        self.assertEqual(self.unit_a102._get_effective_tariff("electricity"), self.tariff_tou)
        # Set at the site: every unit without a nearer one gets it.
        self.site.water_tariff_id = self.tariff_water
        units = self.unit_a101 | self.unit_a102 | self.unit_b101
        self.assertEqual(
            units._get_effective_tariffs("water"),
            {unit.id: self.tariff_water for unit in units},
        )
        self.assertEqual(
            units._get_effective_tariffs("electricity"),
            {
                self.unit_a101.id: self.tariff_flat,
                self.unit_a102.id: self.tariff_tou,
                self.unit_b101.id: self.env["prepaid.tariff"],
            },
        )

    def test_tariff_of_the_wrong_utility_is_refused(self):
        with self.assertRaises(ValidationError):
            self.building_b.electricity_tariff_id = self.tariff_water

    def test_get_units_returns_units_below(self):
        self.assertEqual(self.site._get_units(), self.unit_a101 | self.unit_a102 | self.unit_b101)
        self.assertEqual(self.floor_a1._get_units(), self.unit_a101 | self.unit_a102)
