import uuid
from datetime import date

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.addons.prepaid_base.tests.test_concurrency import (
    create_committed_account,
    remove_committed_account,
    run_beside,
)
from odoo.addons.prepaid_billing.models.prepaid_fee_charge import ledger_key
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger
from psycopg2 import IntegrityError

from prepaid_engine.billing.fees import fee_charges

from .common import BillingCommon

MARCH_END = date(2026, 3, 31)


@tagged("post_install", "-at_install")
class TestFees(BillingCommon):
    """Fee items charged on the building's settlement calendar (monthly on the 1st, Asia/Shanghai): once per
    item, tenancy and period; prorated by days; deducted (ledger kind fee, booked against the product's income
    account) or invoiced; alerts and cut-off as for consumption, unless the company exempts fees."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.unit_1.area = 50.0
        cls.unit_2.area = 80.0
        Tenancy = cls.env["prepaid.tenancy"]
        # Tenant 1 moves in on 10 March (mid-cycle); tenant 2 has been there since January.
        cls.tenancy_1 = Tenancy.create(
            {
                "partner_id": cls.tenant_1.id,
                "unit_ids": [Command.set(cls.unit_1.ids)],
                "date_start": date(2026, 3, 10),
                "account_id": cls.account_1.id,
            }
        )
        cls.tenancy_2 = Tenancy.create(
            {
                "partner_id": cls.tenant_2.id,
                "unit_ids": [Command.set(cls.unit_2.ids)],
                "date_start": date(2025, 12, 15),
                "account_id": cls.account_2.id,
            }
        )
        (cls.tenancy_1 | cls.tenancy_2).action_activate()
        cls.income = cls.env["account.account"].create(
            {"name": "Property management income", "code": "4099", "account_type": "income"}
        )
        cls.product = cls.env["product.product"].create(
            {"name": "Property fee", "type": "service", "property_account_income_id": cls.income.id}
        )

    def setUp(self):
        super().setUp()
        self.topup(self.account_1, 500.0)
        self.topup(self.account_2, 500.0)

    def item(self, **vals):
        return self.env["prepaid.fee.item"].create(
            {
                "name": "Service fee",
                "kind": "service_fee",
                "calculation": "fixed",
                "amount": 31.0,
                "recurrence": "monthly",
                "date_from": date(2026, 1, 1),
                "property_ids": [Command.set(self.building.ids)],
                **vals,
            }
        )

    def charge(self, items, until=MARCH_END):
        return self.env["prepaid.fee.charge"]._charge_fees(items=items, until=until)

    def charges(self, item):
        return self.env["prepaid.fee.charge"].search(
            [("fee_item_id", "=", item.id)], order="tenancy_id, period_key"
        )

    def test_monthly_fee_charges_each_period_once_and_prorates_a_move_in(self):
        item = self.item()
        result = self.charge(item)
        self.assertEqual((result["charged"], result["posted"], result["errors"]), (4, 4, 0))
        charges = self.charges(item)
        self.assertEqual(
            [(c.tenancy_id, c.period_key, c.amount, c.prorated) for c in charges],
            [
                (self.tenancy_1, "2026-03", 22.0, True),  # 10-31 March: 22 of 31 days of 31.00
                (self.tenancy_2, "2026-01", 31.0, False),
                (self.tenancy_2, "2026-02", 31.0, False),
                (self.tenancy_2, "2026-03", 31.0, False),
            ],
        )
        march_1 = charges[0]
        self.assertEqual(
            (march_1.date_from, march_1.date_to, march_1.days, march_1.period_days),
            (date(2026, 3, 10), MARCH_END, 22, 31),
        )
        self.assertEqual(march_1.ledger_id.idempotency_key, ledger_key(item.id, self.tenancy_1.id, "2026-03"))
        self.assertEqual((march_1.ledger_id.kind, march_1.ledger_id.amount), ("fee", -22.0))
        self.assertEqual(self.account_1.balance, 478.0)
        self.assertEqual(self.account_2.balance, 407.0)
        # Again, and again later in the same period: nothing new.
        self.assertEqual(self.charge(item)["charged"], 0)
        self.assertEqual(self.charge(item, until=date(2026, 3, 20))["charged"], 0)
        self.assertEqual(len(self.env["prepaid.ledger"].search([("kind", "=", "fee")])), 4)
        self.assertEqual(self.account_2.balance, 407.0)
        # April comes: one period more each.
        self.assertEqual(self.charge(item, until=date(2026, 4, 1))["charged"], 2)
        self.assertLedgerMatchesAccounting(self.account_1, self.account_2)

    def test_quarterly_per_area_in_arrears(self):
        item = self.item(
            name="Property fee",
            kind="property_fee",
            calculation="per_area",
            unit_price=2.5,
            recurrence="quarterly",
            timing="arrears",
        )
        self.assertEqual(self.charge(item)["charged"], 0, "Q1 is due the day after it ends")
        self.charge(item, until=date(2026, 4, 1))
        charges = self.charges(item)
        self.assertEqual(
            [(c.tenancy_id, c.period_key, c.basis, c.full_amount, c.amount, c.due) for c in charges],
            [
                # 50 m2 x 2.50 = 125.00 for the quarter; 22 of its 90 days.
                (self.tenancy_1, "2026-Q1", 50.0, 125.0, 30.56, date(2026, 4, 1)),
                (self.tenancy_2, "2026-Q1", 80.0, 200.0, 200.0, date(2026, 4, 1)),
            ],
        )

    def test_no_proration_and_per_quantity(self):
        item = self.item(calculation="per_quantity", unit_price=15.0, quantity=2.0, prorate=False)
        self.charge(item)
        march_1 = self.charges(item).filtered(lambda c: c.tenancy_id == self.tenancy_1)
        self.assertEqual((march_1.amount, march_1.prorated, march_1.basis), (30.0, False, 2.0))

    def test_effective_dates_and_ended_tenancy(self):
        item = self.item(date_from=date(2026, 2, 1), date_to=date(2026, 2, 14))
        self.charge(item)
        # Only tenancy 2 overlaps 1-14 February: 14 of 28 days.
        self.assertEqual(
            [(c.tenancy_id, c.period_key, c.amount) for c in self.charges(item)],
            [(self.tenancy_2, "2026-02", 15.5)],
        )
        other = self.item(name="Other", date_from=date(2026, 3, 1))
        self.tenancy_2.date_end = date(2026, 3, 15)
        self.tenancy_2.action_end()
        self.charge(other, until=date(2026, 5, 1))
        self.assertEqual(
            [
                (c.period_key, c.amount)
                for c in self.charges(other).filtered(lambda c: c.tenancy_id == self.tenancy_2)
            ],
            [("2026-03", 15.0)],  # 1-15 March, then nothing for April
        )

    def test_one_off_fee(self):
        item = self.item(recurrence="one_off", amount=100.0)
        self.charge(item, until=date(2026, 6, 1))
        self.assertEqual(
            [(c.period_key, c.amount) for c in self.charges(item)], [("once", 100.0), ("once", 100.0)]
        )
        self.assertEqual(self.charge(item, until=date(2027, 6, 1))["charged"], 0)

    def test_tenancy_without_open_account_waits(self):
        self.tenancy_1.account_id = False
        item = self.item()
        result = self.charge(item)
        self.assertEqual((result["charged"], result["no_account"]), (3, 1))
        self.tenancy_1.account_id = self.account_1
        self.assertEqual(self.charge(item)["charged"], 1)

    def test_fee_applied_to_a_tenancy(self):
        item = self.item(property_ids=[Command.clear()], tenancy_ids=[Command.set(self.tenancy_1.ids)])
        self.charge(item)
        self.assertEqual(self.charges(item).tenancy_id, self.tenancy_1)

    def test_summary_books_the_fee_against_its_product_income_account(self):
        item = self.item(product_id=self.product.id)
        plain = self.item(name="No product", amount=10.0)
        self.charge(item | plain)
        self.assertEqual(self.charges(item).income_account_id, self.income)
        summaries = self.post_summaries()
        lines = summaries.move_id.line_ids
        self.assertAlmostEqual(
            -sum(lines.filtered(lambda li: li.account_id == self.income).mapped("balance")), 22.0 + 93.0
        )
        fee_account = self.company.prepaid_fee_revenue_account_id
        self.assertAlmostEqual(
            -sum(lines.filtered(lambda li: li.account_id == fee_account).mapped("balance")), 7.1 + 30.0
        )
        self.assertLedgerMatchesAccounting(self.account_1, self.account_2)

    def test_invoiced_fee_posts_one_invoice_per_tenant(self):
        item = self.item(charge_mode="invoice", product_id=self.product.id)
        result = self.charge(item)
        self.assertEqual((result["invoiced"], result["posted"]), (4, 0))
        charges = self.charges(item)
        self.assertEqual(set(charges.mapped("state")), {"invoiced"})
        moves = charges.move_id
        self.assertEqual(len(moves), 2)
        self.assertEqual(set(moves.mapped("state")), {"posted"})
        move_2 = charges.filtered(lambda c: c.tenancy_id == self.tenancy_2).move_id
        self.assertEqual((move_2.partner_id, move_2.amount_untaxed), (self.tenant_2, 93.0))
        self.assertEqual(move_2.invoice_line_ids.account_id, self.income)
        self.assertFalse(self.env["prepaid.ledger"].search([("kind", "=", "fee")]))
        self.assertEqual(self.account_2.balance, 500.0)
        self.assertEqual(self.charge(item)["charged"], 0)
        self.assertEqual(len(self.charges(item).move_id), 2)

    def test_invoice_mode_needs_a_product(self):
        with self.assertRaises(ValidationError):
            self.item(charge_mode="invoice")

    @mute_logger("odoo.sql_db")
    def test_bad_amounts_are_refused(self):
        for vals in ({"amount": -1.0}, {"unit_price": -2.0}, {"quantity": -1.0}):
            with self.subTest(vals=vals), self.assertRaises(IntegrityError), self.cr.savepoint():
                self.item(**vals)
        for vals in ({"amount": float("nan")}, {"amount": float("inf")}, {"unit_price": 1e12}):
            with self.subTest(vals=vals), self.assertRaises(ValidationError), self.cr.savepoint():
                self.item(**vals)
        with self.assertRaises(IntegrityError), self.cr.savepoint():
            self.item(date_from=date(2026, 3, 1), date_to=date(2026, 2, 1))

    def _trip_commands(self, account):
        return self.env["prepaid.meter.command"].search(
            [("meter_id", "in", account.meter_ids.ids), ("kind", "=", "trip")]
        )

    def test_a_fee_that_empties_the_balance_cuts_the_supply(self):
        self.post(self.account_1, -490.0, "drain-1")
        self.assertFalse(self._trip_commands(self.account_1))
        self.charge(self.item())  # 22.00 on a balance of 10.00
        self.assertEqual(self.account_1.balance, -12.0)
        self.assertEqual(self.account_1.level, "cutoff")
        self.assertTrue(self.account_1.supply_cut)
        self.assertTrue(self._trip_commands(self.account_1))

    def test_company_can_exempt_fees_from_cut_off(self):
        self.company.prepaid_fee_no_cutoff = True
        self.post(self.account_1, -490.0, "drain-1")
        self.charge(self.item())
        self.assertEqual(self.account_1.level, "cutoff")
        self.assertFalse(self.account_1.supply_cut, "fees of the current cycle do not cut")
        self.assertFalse(self._trip_commands(self.account_1))
        self.assertEqual(
            self.account_1.alert_level, self.account_1._get_level(10.0), "alerted without the fee"
        )
        # Consumption (any deduction but a fee) that takes it below the cut-off without the fee cuts.
        self.post(self.account_1, -20.0, "drain-2")
        self.assertTrue(self.account_1.supply_cut)
        self.assertTrue(self._trip_commands(self.account_1))

    def test_charges_are_made_by_the_run_only(self):
        item = self.item()
        self.charge(item)
        charge = self.charges(item)[:1]
        with self.assertRaises(AccessError):
            self.env["prepaid.fee.charge"].create({"name": "x"})
        with self.assertRaises(AccessError):
            charge.write({"amount": 0.01})
        operator = self.new_operator("fee_operator")
        with self.assertRaises(AccessError):
            item.with_user(operator).action_charge_now()
        self.assertTrue(charge.with_user(operator).read(["amount"]))

    def test_charge_now_button_and_cron(self):
        item = self.item(date_from=date.today())
        action = item.action_charge_now()
        self.assertEqual(action["tag"], "display_notification")
        self.assertTrue(self.charges(item))
        self.env["prepaid.fee.charge"]._cron_charge_fees()
        self.assertEqual(len(self.charges(item)), 2)

    def test_insert_skips_a_charge_another_run_made(self):
        """The ON CONFLICT path: a period a concurrent run charged after this run read the charged periods."""
        item = self.item()
        Charge = self.env["prepaid.fee.charge"]
        self.charge(item)
        engine = item._prepaid_engine_item()
        march = fee_charges(
            engine, self.building._prepaid_settlement_calendar(), date(2026, 3, 10), None, MARCH_END
        )
        row = (self.tenancy_1.id, self.tenant_1.id, self.account_1.id, self.building.id, march[0])
        self.assertEqual(
            Charge._insert(item, [row], item._prepaid_income_account(), fields.Datetime.now()), {}
        )


@tagged("post_install", "-at_install")
class TestFeeConcurrency(TransactionCase):
    """Two fee runs at the same time, in two real transactions: the second waits on the first's charge rows
    (the UNIQUE key), then is retried (as every cron and request is) and finds the period charged: one
    deduction."""

    def setUp(self):
        super().setUp()
        tag = uuid.uuid4().hex[:8]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True, "mail_create_nolog": True})
            self.ids = create_committed_account(env, tag, "Fee", opening=500.0)
            tenancy = env["prepaid.tenancy"].create(
                {
                    "partner_id": self.ids["partner"],
                    "unit_ids": [Command.set([self.ids["unit"]])],
                    "date_start": date(2026, 3, 1),
                    "account_id": self.ids["account"],
                }
            )
            tenancy.action_activate()
            item = env["prepaid.fee.item"].create(
                {
                    "name": f"Fee {tag}",
                    "amount": 40.0,
                    "date_from": date(2026, 3, 1),
                    "property_ids": [Command.set([self.ids["building"]])],
                }
            )
            self.ids.update(tenancy=tenancy.id, item=item.id)
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        ids = self.ids
        with self.registry.cursor() as cr:
            remove_committed_account(
                cr,
                ids,
                before=(
                    SQL("DELETE FROM prepaid_fee_charge WHERE fee_item_id = %s", ids["item"]),
                    SQL("DELETE FROM prepaid_fee_item WHERE id = %s", ids["item"]),
                    SQL("DELETE FROM prepaid_tenancy WHERE id = %s", ids["tenancy"]),
                ),
                records=(("prepaid.tenancy", ids["tenancy"]),),
            )

    def _charge(self, env):
        item = env["prepaid.fee.item"].browse(self.ids["item"])
        return env["prepaid.fee.charge"]._charge_fees(items=item, until=MARCH_END)

    @mute_logger("odoo.sql_db", "odoo.service.model")
    def test_two_runs_at_the_same_time_charge_once(self):
        first, outcome, blocked = run_beside(self.registry, self._charge)
        self.assertTrue(blocked, "the second run never waited for the first's charges")
        self.assertNotIn("error", outcome)
        self.assertEqual(first["charged"], 1)
        self.assertEqual(outcome["result"]["charged"], 0)
        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    """SELECT COUNT(*), SUM(amount), (SELECT balance FROM prepaid_account WHERE id = %s),
                              (SELECT COUNT(*) FROM prepaid_fee_charge WHERE fee_item_id = %s)
                         FROM prepaid_ledger WHERE account_id = %s AND kind = 'fee'""",
                    self.ids["account"],
                    self.ids["item"],
                    self.ids["account"],
                )
            )
            count, total, balance, charges = cr.fetchone()
        self.assertEqual((count, float(total), float(balance), charges), (1, -40.0, 460.0, 1))
