from datetime import date

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger
from psycopg2.errors import CheckViolation

from .common import PrepaidCommon


@tagged("post_install", "-at_install")
class TestTenancy(PrepaidCommon):
    def _tenancy(self, units, start, end=None, partner=None, state="active"):
        tenancy = self.env["prepaid.tenancy"].create(
            {
                "partner_id": (partner or self.tenant_a101).id,
                "unit_ids": units.ids,
                "date_start": start,
                "date_end": end,
            }
        )
        if state == "active":
            tenancy.action_activate()
        return tenancy

    def test_name_comes_from_the_sequence(self):
        tenancy = self._tenancy(self.unit_a101, date(2026, 1, 1), state="draft")
        self.assertTrue(tenancy.name.startswith("TEN/"), tenancy.name)

    def test_overlapping_active_tenancies_on_a_unit_are_refused(self):
        self._tenancy(self.unit_a101, date(2026, 1, 1), date(2026, 6, 30))
        with self.assertRaises(ValidationError):
            self._tenancy(self.unit_a101 | self.unit_a102, date(2026, 6, 30), partner=self.tenant_b101)

    def test_open_ended_tenancy_blocks_any_later_one(self):
        self._tenancy(self.unit_a101, date(2026, 1, 1))
        with self.assertRaises(ValidationError):
            self._tenancy(self.unit_a101, date(2030, 1, 1), date(2030, 2, 1), partner=self.tenant_b101)

    def test_consecutive_tenancies_and_other_units_are_allowed(self):
        first = self._tenancy(self.unit_a101, date(2026, 1, 1), date(2026, 6, 30))
        second = self._tenancy(self.unit_a101, date(2026, 7, 1), partner=self.tenant_b101)
        other_unit = self._tenancy(self.unit_a102, date(2026, 1, 1))
        self.assertEqual((first | second | other_unit).mapped("state"), ["active"] * 3)

    def test_draft_ended_and_cancelled_tenancies_do_not_block(self):
        draft = self._tenancy(self.unit_a101, date(2026, 1, 1), state="draft")
        ended = self._tenancy(self.unit_a101, date(2025, 1, 1), date(2025, 12, 31))
        ended.action_end()
        cancelled = self._tenancy(self.unit_a101, date(2026, 1, 1))
        cancelled.action_cancel()
        active = self._tenancy(self.unit_a101, date(2025, 6, 1), partner=self.tenant_b101)
        self.assertEqual(active.state, "active")
        # ... but the draft one can no longer be activated over it.
        with self.assertRaises(ValidationError):
            draft.action_activate()

    def test_extending_an_active_tenancy_into_another_is_refused(self):
        first = self._tenancy(self.unit_a101, date(2026, 1, 1), date(2026, 6, 30))
        self._tenancy(self.unit_a101, date(2026, 7, 1), date(2026, 12, 31), partner=self.tenant_b101)
        with self.assertRaises(ValidationError):
            first.date_end = date(2026, 7, 15)

    @mute_logger("odoo.sql_db")
    def test_end_before_start_is_refused(self):
        with self.assertRaises(CheckViolation):
            self._tenancy(self.unit_a101, date(2026, 2, 1), date(2026, 1, 31), state="draft")
            self.env.flush_all()

    def test_activation_needs_units_and_only_units(self):
        tenancy = self._tenancy(self.env["prepaid.property"], date(2026, 1, 1), state="draft")
        with self.assertRaises(UserError):
            tenancy.action_activate()
        with self.assertRaises(ValidationError):
            tenancy.unit_ids = self.floor_a1

    def test_state_buttons_follow_the_transitions(self):
        tenancy = self._tenancy(self.unit_a101, date(2020, 1, 1), date(2099, 1, 1), state="draft")
        with self.assertRaises(UserError):
            tenancy.action_end()
        tenancy.action_activate()
        tenancy.action_end()
        self.assertEqual(tenancy.state, "ended")
        # Ending early moves the end date to today.
        self.assertEqual(tenancy.date_end, fields.Date.context_today(tenancy))
        with self.assertRaises(UserError):
            tenancy.action_draft()
        other = self._tenancy(self.unit_a102, date(2026, 1, 1))
        other.action_cancel()
        other.action_draft()
        self.assertEqual(other.state, "draft")

    def test_create_account_from_tenancy(self):
        tenancy = self._tenancy(self.unit_a102, date(2026, 1, 1), partner=self.tenant_b101, state="draft")
        action = tenancy.action_create_account()
        account = tenancy.account_id
        self.assertEqual(action["res_id"], account.id)
        self.assertEqual(account.partner_id, self.tenant_b101)
        self.assertEqual(account.unit_ids, self.unit_a102)
        self.assertEqual(account.state, "draft")
        self.assertEqual(account.tenancy_ids, tenancy)
        with self.assertRaises(UserError):
            tenancy.action_create_account()
