"""Regression tests of the trust findings (issue 8): what a staff member with a JSON-RPC client tried, each
through the way RPC calls the suite (``get_public_method`` + ``odoo.api.call_kw``, any context the caller
likes), and what the suite now does instead."""

from datetime import timedelta

import odoo
from odoo import Command
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.service.model import get_public_method
from odoo.tests import new_test_user, tagged

from .common import T0, BillingCommon

FORMER_KEYS = {"prepaid_account_internal_write": True, "prepaid_ledger_post": True, "prepaid_internal": True}


@tagged("post_install", "-at_install")
class TestTrust(BillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Property = cls.env["prepaid.property"]
        cls.floor_2 = Property.create(
            {"name": "B2", "code": "B2", "kind": "floor", "parent_id": cls.building.id}
        )
        cls.unit_3 = Property.create(
            {"name": "B-201", "code": "B-201", "kind": "unit", "parent_id": cls.floor_2.id}
        )
        cls.tenant_3 = cls.env["res.partner"].create({"name": "Floor 2 tenant"})
        cls.account_3 = cls.env["prepaid.account"].create(
            {"partner_id": cls.tenant_3.id, "unit_ids": [Command.set(cls.unit_3.ids)]}
        )
        cls.account_3.action_open()
        cls.meter_3 = cls._create_meter(cls.unit_3, "E-201")
        company = {"company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)]}
        cls.operator_floor = new_test_user(
            cls.env,
            login="trust_op_floor",
            groups="prepaid_base.group_prepaid_user",
            prepaid_property_ids=[Command.set(cls.floor.ids)],
            **company,
        )
        cls.manager = new_test_user(
            cls.env, login="trust_manager", groups="prepaid_base.group_prepaid_manager", **company
        )

    def rpc(self, user, model, method, ids, *args, context=None, **kwargs):
        env = self.env(user=user, su=False, context={})
        get_public_method(env[model], method)
        kwargs["context"] = dict(FORMER_KEYS, allowed_company_ids=[self.company.id], **(context or {}))
        return odoo.api.call_kw(
            env[model], method, [list(ids), *args] if ids is not None else list(args), kwargs
        )

    # ------------------------------------------------------------------ balances

    def test_nobody_sets_a_balance_over_rpc_and_refund_and_close_pays_the_real_one(self):
        self.topup(self.account_1, 30.0)
        for user in (self.operator_floor, self.manager):
            for vals in ({"balance": 5000.0}, {"period": 7}, {"last_topup_date": "2030-01-01 00:00:00"}):
                with self.assertRaises(AccessError):
                    self.rpc(user, "prepaid.account", "write", self.account_1.ids, vals)
        self.assertEqual(self.account_1.balance, 30.0)
        wizard = (
            self.env["prepaid.refund.wizard"]
            .with_user(self.manager)
            .create(
                {"account_id": self.account_1.id, "reason": "moving out", "journal_id": self.cash_journal.id}
            )
        )
        wizard.action_refund_and_close()
        refund = self.env["account.move"].search(
            [("move_type", "=", "out_refund"), ("partner_id", "=", self.tenant_1.id)]
        )
        self.assertEqual(refund.amount_total, 30.0)
        self.assertEqual(self.account_1.balance, 0.0)
        self.assertEqual(self.account_1.state, "closed")

    # ------------------------------------------------------------------ commands

    def test_an_operator_cannot_retarget_a_queued_command_to_a_meter_out_of_reach(self):
        self.meter_1.with_user(self.operator_floor).action_trip()
        command = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter_1.id), ("kind", "=", "trip")]
        )
        self.assertEqual(len(command), 1)
        for vals in ({"meter_id": self.meter_3.id}, {"kind": "close"}, {"state": "done"}):
            with self.assertRaises(AccessError):
                self.rpc(self.operator_floor, "prepaid.meter.command", "write", command.ids, vals)
        with self.assertRaises(AccessError):
            self.rpc(
                self.operator_floor,
                "prepaid.meter.command",
                "create",
                None,
                {"meter_id": self.meter_3.id, "kind": "trip"},
            )
        self.assertEqual(command.meter_id, self.meter_1)
        self.assertFalse(self.env["prepaid.meter.command"].search([("meter_id", "=", self.meter_3.id)]))

    # ------------------------------------------------------------------ meters

    def test_operators_cannot_repoint_a_meter_or_change_what_it_bills(self):
        for vals in (
            {"account_id": self.account_3.id},
            {"ct_ratio": 50},
            {"billing_mode": "meter"},
            {"tariff_id": self.tariff_water.id},
            {"unit_id": self.unit_3.id},
        ):
            with self.assertRaises(AccessError):
                self.rpc(self.operator_floor, "prepaid.meter", "write", self.meter_1.ids, vals)
        self.assertEqual(self.meter_1.account_id, self.account_1)
        self.rpc(self.operator_floor, "prepaid.meter", "write", self.meter_1.ids, {"name": "E-101 (hall)"})
        self.assertEqual(self.meter_1.name, "E-101 (hall)")

    def test_even_a_manager_cannot_make_a_meter_bill_an_account_that_does_not_cover_its_unit(self):
        with self.assertRaises(ValidationError):
            self.rpc(
                self.manager, "prepaid.meter", "write", self.meter_1.ids, {"account_id": self.account_3.id}
            )
        self.rpc(self.manager, "prepaid.meter", "write", self.meter_1.ids, {"ct_ratio": 40})
        self.assertEqual(self.meter_1.ct_ratio, 40)

    # ------------------------------------------------------------------ scope after writes

    def test_an_operator_cannot_move_an_account_or_tenancy_out_of_their_properties(self):
        with self.assertRaises(AccessError):
            self.rpc(
                self.operator_floor,
                "prepaid.account",
                "write",
                self.account_1.ids,
                {"unit_ids": [Command.link(self.unit_3.id)]},
            )
        with self.assertRaises(AccessError):
            self.rpc(
                self.operator_floor,
                "prepaid.account",
                "create",
                None,
                {"partner_id": self.tenant_3.id, "unit_ids": [Command.set(self.unit_3.ids)]},
            )
        tenancy = self.rpc(
            self.operator_floor,
            "prepaid.tenancy",
            "create",
            None,
            {"partner_id": self.tenant_1.id, "unit_ids": [Command.set(self.unit_1.ids)]},
        )
        with self.assertRaises(AccessError):
            self.rpc(
                self.operator_floor,
                "prepaid.tenancy",
                "write",
                [tenancy],
                {"unit_ids": [Command.set(self.unit_3.ids)]},
            )
        self.assertEqual(self.account_1.unit_ids, self.unit_1)

    # ------------------------------------------------------------------ top-ups

    def test_forged_topups_are_refused_and_an_ordinary_invoice_stays_payable(self):
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.tenant_1.id,
                "invoice_line_ids": [Command.create({"name": "Repair", "quantity": 1, "price_unit": 80.0})],
            }
        )
        invoice.action_post()
        for user in (self.operator_floor, self.manager):
            with self.assertRaises(AccessError):
                self.rpc(
                    user,
                    "prepaid.topup",
                    "create",
                    None,
                    {
                        "account_id": self.account_1.id,
                        "amount": 80.0,
                        "state": "invoiced",
                        "invoice_id": invoice.id,
                    },
                )
        topup = self.topup(self.account_1, 10.0)
        with self.assertRaises(AccessError):
            self.rpc(self.manager, "prepaid.topup", "write", topup.ids, {"invoice_id": invoice.id})
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({"journal_id": self.cash_journal.id})._create_payments()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(self.account_1.balance, 10.0)

    # ------------------------------------------------------------------ states

    def test_states_change_only_through_their_buttons(self):
        self.topup(self.account_1, 99.0)
        for user in (self.operator_floor, self.manager):
            with self.assertRaises(AccessError):
                self.rpc(user, "prepaid.account", "write", self.account_1.ids, {"state": "closed"})
        # Closing with money on the account is a refund and close, not a close.
        with self.assertRaisesRegex(UserError, "Refund the remaining balance"):
            self.rpc(self.manager, "prepaid.account", "action_close", self.account_1.ids)
        with self.assertRaises(AccessError):
            self.rpc(self.operator_floor, "prepaid.account", "action_close", self.account_1.ids)
        self.assertEqual(self.account_1.state, "open")
        self.assertEqual(self.account_1.balance, 99.0)

    def test_closing_an_empty_account_cuts_every_meter_of_it(self):
        water = self._create_meter(self.unit_3, "W-201", self.model_water, address="00000000000201")
        self.rpc(self.manager, "prepaid.account", "action_close", self.account_3.ids)
        self.assertEqual(self.account_3.state, "closed")
        commands = self.env["prepaid.meter.command"].search([("meter_id", "in", (self.meter_3 | water).ids)])
        self.assertEqual(
            sorted(commands.mapped(lambda c: (c.meter_id.name, c.kind, c.state))),
            [("E-201", "trip", "queued"), ("W-201", "valve_close", "queued")],
        )
        self.assertTrue(self.account_3.supply_cut)

    # ------------------------------------------------------------------ levels are states

    def test_an_account_already_at_the_cutoff_is_cut_and_alerted_without_a_crossing(self):
        """The demo's account that started at the cut-off with both meters on: funded, spent, then its
        levels are looked at (a cron) without any further balance change."""
        self.post(self.account_3, 15.0, "trust:opening", kind="opening")
        self.post(self.account_3, -15.0, "trust:spent", kind="consumption")
        # What the state was before levels were states: at the cut-off, meters on, nothing queued.
        internal(self.account_3).write({"alert_level": "normal", "supply_cut": False})
        self.env["prepaid.meter.command"].sudo().search([("meter_id", "=", self.meter_3.id)]).unlink()
        self.assertEqual(self.account_3.level, "cutoff")
        self.env["prepaid.account"]._cron_supervise()
        trips = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter_3.id), ("kind", "=", "trip")]
        )
        self.assertEqual(len(trips), 1)
        self.assertEqual((self.account_3.alert_level, self.account_3.supply_cut), ("cutoff", True))
        self.env["prepaid.account"]._cron_supervise()
        self.assertEqual(
            self.env["prepaid.meter.command"].search_count(
                [("meter_id", "=", self.meter_3.id), ("kind", "=", "trip")]
            ),
            1,
        )

    def test_accounts_already_in_a_warning_level_get_their_alert_once(self):
        self.post(self.account_3, 15.0, "trust:opening", kind="opening")  # warning 2 (levels 50/20/10/0)
        internal(self.account_3).write({"alert_level": "normal"})
        self.env["prepaid.account"]._cron_supervise()
        self.assertEqual(
            (self.account_3.alert_level, self.account_3.last_alert_level), ("warning_2", "warning_2")
        )
        date = self.account_3.last_alert_date
        self.env["prepaid.account"]._cron_supervise()
        self.assertEqual(self.account_3.last_alert_date, date)

    def test_new_levels_hold_the_account_to_them_at_once(self):
        self.post(self.account_3, 15.0, "trust:opening", kind="opening")
        self.account_3.with_user(self.manager).write({"cutoff_level": 15.0, "warn_level_3": 16.0})
        self.assertEqual(self.account_3.level, "cutoff")
        self.assertEqual(
            self.env["prepaid.meter.command"].search_count(
                [("meter_id", "=", self.meter_3.id), ("kind", "=", "trip")]
            ),
            1,
        )
        self.account_3.with_user(self.manager).keep_power = True
        self.assertEqual(
            self.env["prepaid.meter.command"].search_count(
                [("meter_id", "=", self.meter_3.id), ("kind", "=", "close")]
            ),
            1,
        )

    # ------------------------------------------------------------------ settlement

    def test_settle_now_on_a_meter_being_settled_elsewhere_answers_without_an_error(self):
        self.topup(self.account_1, 50.0)
        self.ingest(self.meter_1, T0, "0")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "2")
        result = self.meter_1.with_user(self.operator_floor).action_settle_now()
        self.assertEqual(result["params"]["type"], "success")
        self.assertEqual(self.account_1.balance, 48.0)
