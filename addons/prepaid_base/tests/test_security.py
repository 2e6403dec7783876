from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import PrepaidCommon


@tagged("post_install", "-at_install")
class TestOperatorScope(PrepaidCommon):
    def test_operator_limited_to_a_building_sees_it_below_and_its_ancestors(self):
        Property = self.env["prepaid.property"].with_user(self.operator_a)
        visible = Property.search([("company_id", "=", self.company.id)])
        self.assertEqual(
            visible, self.site | self.building_a | self.floor_a1 | self.unit_a101 | self.unit_a102
        )
        with self.assertRaises(AccessError):
            self.unit_b101.with_user(self.operator_a).read(["name"])

    def test_operator_changes_only_properties_below_their_own(self):
        self.unit_a101.with_user(self.operator_a).area = 42.0
        self.assertEqual(self.unit_a101.area, 42.0)
        with self.assertRaises(AccessError):
            self.site.with_user(self.operator_a).name = "Renamed"
        with self.assertRaises(AccessError):
            self.env["prepaid.property"].with_user(self.operator_a).create(
                {"name": "B102", "kind": "unit", "parent_id": self.floor_b1.id}
            )
        created = (
            self.env["prepaid.property"]
            .with_user(self.operator_a)
            .create({"name": "A103", "kind": "unit", "parent_id": self.floor_a1.id})
        )
        self.assertEqual(created.building_id, self.building_a)

    def test_operator_sees_accounts_tenancies_and_ledger_of_their_units_only(self):
        self._post(self.account_a101, 10.0, "sec-a")
        self._post(self.account_b101, 20.0, "sec-b")
        tenancy_b = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant_b101.id, "unit_ids": self.unit_b101.ids}
        )
        tenancy_a = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant_a101.id, "unit_ids": self.unit_a101.ids}
        )
        domain = [("company_id", "=", self.company.id)]
        env = self.env(user=self.operator_a)
        self.assertEqual(env["prepaid.account"].search(domain), self.account_a101)
        self.assertEqual(env["prepaid.tenancy"].search(domain), tenancy_a)
        self.assertEqual(env["prepaid.ledger"].search(domain).mapped("idempotency_key"), ["sec-a"])
        with self.assertRaises(AccessError):
            self.account_b101.with_user(self.operator_a).read(["balance"])
        with self.assertRaises(AccessError):
            tenancy_b.with_user(self.operator_a).read(["name"])
        # An operator without properties sees everything of the company.
        env_all = self.env(user=self.operator)
        self.assertEqual(env_all["prepaid.account"].search(domain), self.account_a101 | self.account_b101)
        self.assertEqual(len(env_all["prepaid.ledger"].search(domain)), 2)

    def test_changing_allowed_properties_takes_effect_at_once(self):
        Account = self.env["prepaid.account"].with_user(self.operator_a)
        domain = [("company_id", "=", self.company.id)]
        self.assertEqual(Account.search(domain), self.account_a101)
        self.operator_a.prepaid_property_ids = [Command.set(self.building_b.ids)]
        self.assertEqual(Account.search(domain), self.account_b101)

    def test_manager_sees_all_properties_even_with_allowed_properties_set(self):
        self.manager.prepaid_property_ids = [Command.set(self.building_a.ids)]
        env = self.env(user=self.manager)
        domain = [("company_id", "=", self.company.id)]
        self.assertEqual(len(env["prepaid.property"].search(domain)), 8)
        self.assertEqual(env["prepaid.account"].search(domain), self.account_a101 | self.account_b101)

    def test_operators_read_tariffs_and_managers_edit_them(self):
        tariff_as_operator = self.tariff_flat.with_user(self.operator)
        self.assertEqual(tariff_as_operator.price, 0.617)
        with self.assertRaises(AccessError):
            tariff_as_operator.price = 0.1
        with self.assertRaises(AccessError):
            self.env["prepaid.fee.item"].with_user(self.operator).create({"name": "Fee"})
        self.tariff_flat.with_user(self.manager).price = 0.6
        self.assertEqual(self.tariff_flat.price, 0.6)
        self.env["prepaid.fee.item"].with_user(self.manager).create({"name": "Fee"})

    def test_nobody_writes_the_ledger_through_the_orm(self):
        line = self._post(self.account_a101, 10.0, "acl")
        for user in (self.operator, self.manager):
            with self.subTest(user=user.login):
                self.assertEqual(line.with_user(user).amount, 10.0)
                with self.assertRaises(AccessError):
                    line.with_user(user).check_access("write")
                with self.assertRaises(AccessError):
                    line.with_user(user).check_access("unlink")
                with self.assertRaises(AccessError):
                    self.env["prepaid.ledger"].with_user(user).check_access("create")


@tagged("post_install", "-at_install")
class TestPortalScope(PrepaidCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        portal_vals = {"company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)]}
        cls.portal_tenant = new_test_user(
            cls.env, login="pp_portal_tenant", groups="base.group_portal", **portal_vals
        )
        # The tenant company is the account's partner; the portal user is one of its contacts.
        cls.tenant_a101.is_company = True
        cls.portal_tenant.partner_id.parent_id = cls.tenant_a101
        cls.portal_helper = new_test_user(
            cls.env, login="pp_portal_helper", groups="base.group_portal", **portal_vals
        )
        cls.account_b101.portal_partner_ids = [Command.link(cls.portal_helper.partner_id.id)]

    def setUp(self):
        super().setUp()
        self._post(self.account_a101, 100.0, "portal-a")
        self._post(self.account_b101, 50.0, "portal-b")

    def test_tenant_contact_sees_only_its_commercial_partner_accounts_and_ledger(self):
        env = self.env(user=self.portal_tenant)
        self.assertEqual(env["prepaid.account"].search([]), self.account_a101)
        self.assertEqual(env["prepaid.ledger"].search([]).mapped("idempotency_key"), ["portal-a"])
        self.assertEqual(self.account_a101.with_user(self.portal_tenant).balance, 100.0)
        with self.assertRaises(AccessError):
            self.account_b101.with_user(self.portal_tenant).read(["balance"])

    def test_bound_portal_user_sees_the_bound_account(self):
        env = self.env(user=self.portal_helper)
        self.assertEqual(env["prepaid.account"].search([]), self.account_b101)
        self.assertEqual(env["prepaid.ledger"].search([]).mapped("idempotency_key"), ["portal-b"])

    def test_portal_users_cannot_write_or_see_properties(self):
        account = self.account_a101.with_user(self.portal_tenant)
        with self.assertRaises(AccessError):
            account.write({"portal_partner_ids": [Command.link(self.portal_helper.partner_id.id)]})
        with self.assertRaises(AccessError):
            account.action_suspend()
        with self.assertRaises(AccessError):
            self.unit_a101.with_user(self.portal_tenant).read(["name"])
        with self.assertRaises(AccessError):
            self.env["prepaid.account"].with_user(self.portal_tenant).create(
                {"partner_id": self.tenant_a101.id}
            )


@tagged("post_install", "-at_install")
class TestMultiCompany(PrepaidCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create(
            {"name": "Prepaid Other Co", "currency_id": cls.currency.id}
        )
        cls.env.user.company_ids |= cls.company_b
        env_b = cls.env(context=dict(cls.env.context, allowed_company_ids=[cls.company_b.id]))
        cls.site_b = env_b["prepaid.property"].create({"name": "Other site", "kind": "site"})
        cls.building_ob = env_b["prepaid.property"].create(
            {"name": "OB", "kind": "building", "parent_id": cls.site_b.id}
        )
        cls.unit_ob = env_b["prepaid.property"].create(
            {"name": "OB1", "kind": "unit", "parent_id": cls.building_ob.id}
        )
        cls.account_ob = env_b["prepaid.account"].create(
            {"partner_id": cls.tenant_b101.id, "unit_ids": [Command.set(cls.unit_ob.ids)]}
        )
        cls.account_ob.action_open()
        env_b["prepaid.account"]._post_ledger(
            [{"account_id": cls.account_ob.id, "kind": "topup", "amount": 9.0, "idempotency_key": "co-b"}]
        )
        cls.manager_b = new_test_user(
            cls.env,
            login="pp_manager_b",
            groups="prepaid_base.group_prepaid_manager",
            company_id=cls.company_b.id,
            company_ids=[Command.set(cls.company_b.ids)],
        )

    def test_each_company_sees_only_its_own_records(self):
        self._post(self.account_a101, 1.0, "co-a")
        env_a = self.env(user=self.manager)
        env_b = self.env(user=self.manager_b, context={"allowed_company_ids": self.company_b.ids})
        self.assertEqual(env_b["prepaid.account"].search([]), self.account_ob)
        self.assertEqual(env_b["prepaid.ledger"].search([]).mapped("idempotency_key"), ["co-b"])
        self.assertEqual(env_b["prepaid.property"].search([]), self.site_b | self.building_ob | self.unit_ob)
        self.assertNotIn(self.account_ob, env_a["prepaid.account"].search([]))
        self.assertNotIn("co-b", env_a["prepaid.ledger"].search([]).mapped("idempotency_key"))
        with self.assertRaises(AccessError):
            self.account_a101.with_env(env_b).read(["balance"])
        with self.assertRaises(AccessError):
            self.tariff_flat.with_env(env_b).read(["price"])
        self.assertFalse(env_b["prepaid.ledger"].search([("account_id", "=", self.account_a101.id)]))

    def test_account_units_must_belong_to_the_account_company(self):
        with self.assertRaises(UserError):
            self.account_a101.unit_ids = [Command.link(self.unit_ob.id)]
