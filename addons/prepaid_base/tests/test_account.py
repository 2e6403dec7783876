from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger
from psycopg2.errors import CheckViolation

from .common import PrepaidCommon


@tagged("post_install", "-at_install")
class TestAccountLevels(PrepaidCommon):
    def test_defaults_come_from_the_company(self):
        account = self.account_a101
        self.assertEqual(
            (account.warn_level_1, account.warn_level_2, account.warn_level_3, account.cutoff_level),
            (50.0, 20.0, 10.0, 0.0),
        )
        self.assertEqual(account.currency_id, self.currency)
        self.assertTrue(account.name.startswith("PA/"), account.name)
        settings = self.env["res.config.settings"].create(
            {"prepaid_warn_level_1": 100.0, "prepaid_warn_level_2": 60.0, "prepaid_warn_level_3": 30.0}
        )
        settings.execute()
        fresh = self._create_account(self.tenant_b101, self.unit_a102, state="draft")
        self.assertEqual((fresh.warn_level_1, fresh.warn_level_2, fresh.warn_level_3), (100.0, 60.0, 30.0))

    def test_defaults_come_from_the_account_company_not_the_current_one(self):
        other = self.env["res.company"].create(
            {"name": "Other Co", "prepaid_warn_level_1": 90.0, "prepaid_warn_level_2": 45.0}
        )
        self.env.user.company_ids |= other
        account = self.env["prepaid.account"].create(
            {"partner_id": self.tenant_b101.id, "company_id": other.id}
        )
        self.assertEqual(
            (account.warn_level_1, account.warn_level_2, account.warn_level_3), (90.0, 45.0, 10.0)
        )

    def test_level_follows_balance_at_each_boundary(self):
        account = self.account_a101
        expected = [
            (100.0, "normal"),
            (50.01, "normal"),
            (50.0, "warning_1"),
            (20.01, "warning_1"),
            (20.0, "warning_2"),
            (10.0, "warning_3"),
            (0.01, "warning_3"),
            (0.0, "cutoff"),
            (-5.0, "cutoff"),
        ]
        for balance, level in expected:
            with self.subTest(balance=balance):
                self.assertEqual(account._get_level(balance), level)

    def test_overdraft_moves_the_cutoff_down(self):
        self.account_a101.with_user(self.manager).overdraft_limit = 30.0
        self.assertEqual(self.account_a101._get_cutoff_threshold(), -30.0)
        self.assertEqual(self.account_a101._get_level(0.0), "warning_3")
        self.assertEqual(self.account_a101._get_level(-29.99), "warning_3")
        self.assertEqual(self.account_a101._get_level(-30.0), "cutoff")

    def test_stored_level_follows_posted_balance_and_level_changes(self):
        self._post(self.account_a101, 15.0, "lvl1")
        self.assertEqual(self.account_a101.level, "warning_2")
        self.account_a101.with_user(self.manager).write({"warn_level_2": 12.0, "warn_level_3": 11.0})
        self.assertEqual(self._db_value(self.account_a101, "level"), "warning_1")

    def test_levels_must_be_ordered(self):
        account = self.account_a101.with_user(self.manager)
        with self.assertRaises(ValidationError):
            account.write({"warn_level_1": 10.0})
        with self.assertRaises(ValidationError):
            account.write({"cutoff_level": 15.0})
        account.write({"cutoff_level": 10.0})
        self.assertEqual(account.cutoff_level, 10.0)

    @mute_logger("odoo.sql_db")
    def test_negative_overdraft_is_refused(self):
        with self.assertRaises(CheckViolation):
            self.account_a101.overdraft_limit = -1.0
            self.env.flush_all()

    def test_company_default_levels_must_be_ordered(self):
        with self.assertRaises(ValidationError):
            self.company.prepaid_warn_level_3 = 80.0


@tagged("post_install", "-at_install")
class TestAccountLifecycle(PrepaidCommon):
    def test_state_buttons(self):
        account = self._create_account(self.tenant_b101, self.unit_a102, state="draft")
        with self.assertRaises(UserError):
            account.action_suspend()
        account.action_open()
        account.action_suspend()
        self.assertEqual(account.state, "suspended")
        account.action_reopen()
        self.assertEqual((account.state, account.period), ("open", 1))
        account.action_close()
        account.action_reopen()
        self.assertEqual((account.state, account.period), ("open", 2))

    def test_close_needs_a_zero_balance(self):
        self._post(self.account_a101, 12.5, "close1")
        with self.assertRaises(UserError):
            self.account_a101.action_close()
        self._post(self.account_a101, -12.5, "close2", kind="refund")
        self.account_a101.action_close()
        self.assertEqual(self.account_a101.state, "closed")

    def test_tenant_and_company_are_frozen_once_the_ledger_has_lines(self):
        draft = self._create_account(self.tenant_a101, self.unit_a102, state="draft")
        draft.partner_id = self.tenant_b101
        self._post(self.account_a101, 1.0, "frozen")
        with self.assertRaises(UserError):
            self.account_a101.partner_id = self.tenant_b101
        self.account_a101.partner_id = self.tenant_a101  # unchanged value is fine

    def test_only_unused_drafts_can_be_deleted(self):
        draft = self._create_account(self.tenant_b101, self.unit_a102, state="draft")
        draft.unlink()
        with self.assertRaises(UserError):
            self.account_a101.unlink()

    def test_a_unit_is_covered_by_one_open_account_at_a_time(self):
        other = self._create_account(self.tenant_b101, self.unit_a101, state="draft")
        with self.assertRaises(ValidationError):
            other.action_open()
        with self.assertRaises(ValidationError):
            self.account_b101.unit_ids = [Command.link(self.unit_a101.id)]

    def test_operator_cannot_change_money_risk_settings(self):
        account = self.account_a101.with_user(self.operator)
        for vals in ({"warn_level_1": 80.0}, {"overdraft_limit": 10.0}, {"keep_power": True}):
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                account.write(vals)
        account.write({"note": "<p>Called the tenant</p>"})
        self.assertFalse(account.can_edit_levels)
        self.assertTrue(self.account_a101.with_user(self.manager).can_edit_levels)
        self.account_a101.with_user(self.manager).write({"keep_power": True, "overdraft_limit": 10.0})
        self.assertTrue(self.account_a101.keep_power)

    def test_operator_creates_accounts_with_default_levels_only(self):
        Account = self.env["prepaid.account"].with_user(self.operator)
        account = Account.create({"partner_id": self.tenant_b101.id, "warn_level_1": 50.0})
        self.assertEqual(account.warn_level_1, 50.0)
        with self.assertRaises(AccessError):
            Account.create({"partner_id": self.tenant_b101.id, "warn_level_1": 500.0})

    def test_display_name_and_portal_url(self):
        self.assertEqual(self.account_a101.display_name, f"{self.account_a101.name} - Tenant A101")
        self.assertEqual(self.account_a101.access_url, f"/my/prepaid/accounts/{self.account_a101.id}")
        found = self.env["prepaid.account"].name_search("Tenant B101")
        self.assertEqual([row[0] for row in found], [self.account_b101.id])
