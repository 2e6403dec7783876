from odoo import Command
from odoo.tests import TransactionCase, new_test_user
from odoo.tools import SQL


class PrepaidCommon(TransactionCase):
    """A company of its own (CNY) with a small estate, tariffs, users of each role and helpers.

    Independent of demo data: everything the tests look at is created here.

    Estate:  Site S > Building A > Floor A1 > Units A101, A102
                    > Building B > Floor B1 > Unit B101
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cny = cls.env.ref("base.CNY")
        cny.active = True
        cls.company = cls.env["res.company"].create({"name": "Prepaid Test Co", "currency_id": cny.id})
        cls.env.user.company_ids |= cls.company
        cls.env = cls.env(context=dict(cls.env.context, allowed_company_ids=[cls.company.id]))
        cls.currency = cny

        Tariff = cls.env["prepaid.tariff"]
        cls.tariff_flat = Tariff.create(
            {"name": "Flat 0.617", "utility": "electricity", "kind": "flat", "price": 0.617}
        )
        cls.tariff_tou = Tariff.create(
            {
                "name": "TOU",
                "utility": "electricity",
                "kind": "tou",
                "price_peak": 1.09,
                "price_valley": 0.31,
                "period_ids": [
                    Command.create({"start": 0.0, "band": "valley"}),
                    Command.create({"start": 8.0, "band": "peak"}),
                    Command.create({"start": 22.0, "band": "valley"}),
                ],
            }
        )
        cls.tariff_water = Tariff.create(
            {
                "name": "Water tiers",
                "utility": "water",
                "kind": "tiered",
                "tier_ids": [
                    Command.create({"threshold": 0.0, "price": 3.5}),
                    Command.create({"threshold": 15.0, "price": 4.2}),
                ],
            }
        )

        Property = cls.env["prepaid.property"]
        cls.site = Property.create({"name": "S", "code": "T-S", "kind": "site", "tz": "Asia/Shanghai"})
        cls.building_a = Property.create(
            {
                "name": "A",
                "code": "T-A",
                "kind": "building",
                "parent_id": cls.site.id,
                "tz": False,
                "electricity_tariff_id": cls.tariff_flat.id,
            }
        )
        cls.building_b = Property.create(
            {"name": "B", "code": "T-B", "kind": "building", "parent_id": cls.site.id, "tz": False}
        )
        cls.floor_a1 = Property.create(
            {"name": "A1", "code": "T-A1", "kind": "floor", "parent_id": cls.building_a.id, "tz": False}
        )
        cls.floor_b1 = Property.create(
            {"name": "B1", "code": "T-B1", "kind": "floor", "parent_id": cls.building_b.id, "tz": False}
        )
        cls.unit_a101, cls.unit_a102 = Property.create(
            [
                {
                    "name": "A101",
                    "code": "T-A101",
                    "kind": "unit",
                    "parent_id": cls.floor_a1.id,
                    "area": 40.0,
                },
                {
                    "name": "A102",
                    "code": "T-A102",
                    "kind": "unit",
                    "parent_id": cls.floor_a1.id,
                    "area": 55.5,
                },
            ]
        )
        cls.unit_b101 = Property.create(
            {"name": "B101", "code": "T-B101", "kind": "unit", "parent_id": cls.floor_b1.id, "area": 30.0}
        )

        cls.tenant_a101 = cls.env["res.partner"].create({"name": "Tenant A101"})
        cls.tenant_b101 = cls.env["res.partner"].create({"name": "Tenant B101"})
        cls.account_a101 = cls._create_account(cls.tenant_a101, cls.unit_a101)
        cls.account_b101 = cls._create_account(cls.tenant_b101, cls.unit_b101)

        user_vals = {"company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)]}
        cls.manager = new_test_user(
            cls.env, login="pp_manager", groups="prepaid_base.group_prepaid_manager", **user_vals
        )
        cls.operator = new_test_user(
            cls.env, login="pp_operator", groups="prepaid_base.group_prepaid_user", **user_vals
        )
        cls.operator_a = new_test_user(
            cls.env,
            login="pp_operator_a",
            groups="prepaid_base.group_prepaid_user",
            prepaid_property_ids=[Command.set(cls.building_a.ids)],
            **user_vals,
        )

    @classmethod
    def _create_account(cls, partner, units, state="open", **vals):
        account = cls.env["prepaid.account"].create(
            {
                "partner_id": partner.id,
                "company_id": cls.company.id,
                "unit_ids": [Command.set(units.ids)],
                **vals,
            }
        )
        if state == "open":
            account.action_open()
        return account

    def _post(self, account, amount, key, kind="topup", **vals):
        return self.env["prepaid.account"]._post_ledger(
            [{"account_id": account.id, "kind": kind, "amount": amount, "idempotency_key": key, **vals}]
        )

    def _ledger_sum(self, account):
        self.env.flush_all()
        query = SQL("SELECT COALESCE(SUM(amount), 0) FROM prepaid_ledger WHERE account_id = %s", account.id)
        return self.env.execute_query(query)[0][0]

    def _db_value(self, record, fname):
        """The value stored in the database (not the ORM cache)."""
        self.env.flush_all()
        query = SQL(
            "SELECT %s FROM %s WHERE id = %s", SQL.identifier(fname), SQL.identifier(record._table), record.id
        )
        return self.env.execute_query(query)[0][0]
