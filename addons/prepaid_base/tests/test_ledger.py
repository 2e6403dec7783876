from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import SQL, mute_logger
from psycopg2.errors import CheckViolation, UniqueViolation

from .common import PrepaidCommon


@tagged("post_install", "-at_install")
class TestLedgerPosting(PrepaidCommon):
    def test_posting_twice_with_the_same_key_posts_once(self):
        first = self._post(self.account_a101, 100.0, "topup:move:1")
        again = self._post(self.account_a101, 100.0, "topup:move:1")
        self.assertEqual(again, first)
        self.assertEqual(len(self.account_a101.ledger_ids), 1)
        self.assertEqual(self.account_a101.balance, 100.0)
        self.assertEqual(self._db_value(self.account_a101, "balance"), 100.0)

    def test_a_repeated_key_within_one_batch_posts_once(self):
        vals = {
            "account_id": self.account_a101.id,
            "kind": "topup",
            "amount": 50.0,
            "idempotency_key": "k-batch",
        }
        lines = self.env["prepaid.account"]._post_ledger([vals, dict(vals), dict(vals, amount=70.0)])
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines.amount, 50.0)
        self.assertEqual(self.account_a101.balance, 50.0)

    def test_balance_equals_ledger_sum_and_balance_after_runs_in_posting_order(self):
        Account = self.env["prepaid.account"]
        lines = Account._post_ledger(
            [
                {
                    "account_id": self.account_a101.id,
                    "kind": "topup",
                    "amount": 200.0,
                    "idempotency_key": "t1",
                },
                {
                    "account_id": self.account_b101.id,
                    "kind": "topup",
                    "amount": 30.0,
                    "idempotency_key": "t2",
                },
                {
                    "account_id": self.account_a101.id,
                    "kind": "consumption",
                    "amount": -12.34,
                    "idempotency_key": "c1",
                    "utility": "electricity",
                },
                {
                    "account_id": self.account_a101.id,
                    "kind": "fee",
                    "amount": -100.0,
                    "idempotency_key": "f1",
                },
            ]
        )
        self.assertEqual(lines.mapped("balance_after"), [200.0, 30.0, 187.66, 87.66])
        self.assertEqual(lines.mapped("idempotency_key"), ["t1", "t2", "c1", "f1"])
        self.assertEqual(self.account_a101.balance, 87.66)
        self.assertEqual(self.account_b101.balance, 30.0)
        for account in self.account_a101 | self.account_b101:
            self.assertAlmostEqual(self._ledger_sum(account), self._db_value(account, "balance"), places=2)
        self.assertEqual(self.account_a101._check_balance(), {})
        consumption = lines.filtered(lambda line: line.kind == "consumption")
        self.assertEqual(consumption.utility, "electricity")
        self.assertEqual(consumption.partner_id, self.tenant_a101)
        self.assertEqual(consumption.company_id, self.company)
        self.assertEqual(consumption.currency_id, self.currency)

    def test_a_large_batch_spanning_several_inserts_posts_every_line_once(self):
        vals_list = [
            {
                "account_id": account.id,
                "kind": "consumption",
                "amount": -0.01 * (1 + n % 7),
                "idempotency_key": f"bulk:{account.id}:{n}",
            }
            for n in range(650)
            for account in (self.account_a101, self.account_b101)
        ]
        lines = self.env["prepaid.account"]._post_ledger(vals_list)
        self.assertEqual(lines.mapped("idempotency_key"), [vals["idempotency_key"] for vals in vals_list])
        for account in self.account_a101 | self.account_b101:
            own = lines.filtered(lambda line, account=account: line.account_id == account)
            self.assertEqual(len(own), 650)
            self.assertAlmostEqual(own[-1].balance_after, self._ledger_sum(account), places=2)
            self.assertAlmostEqual(self._db_value(account, "balance"), self._ledger_sum(account), places=2)
            self.assertEqual(account.ledger_count, 650)
        again = self.env["prepaid.account"]._post_ledger(vals_list)
        self.assertEqual(again, lines)

    def test_extra_vals_must_be_ledger_fields_and_api_fields_cannot_be_forced(self):
        with self.assertRaises(ValidationError):
            self._post(self.account_a101, 5.0, "extra1", meter_serial="X-1")
        for forced in ({"balance_after": 999.0}, {"period": 7}, {"create_uid": 1}, {"partner_id": 1}):
            with self.assertRaises(ValidationError):
                self._post(self.account_a101, 5.0, "extra2", **forced)
        line = self._post(self.account_a101, 5.0, "extra2", description="ok")
        self.assertEqual((line.balance_after, line.period, line.description), (5.0, 1, "ok"))

    def test_amounts_are_rounded_with_the_currency(self):
        line = self._post(self.account_a101, Decimal("10.005"), "r1")
        self.assertEqual(line.amount, 10.01)
        self._post(self.account_a101, -3.334, "r2")
        self.assertEqual(self._db_value(self.account_a101, "balance"), 6.68)

    def test_an_amount_that_rounds_to_zero_posts_nothing(self):
        lines = self._post(self.account_a101, 0.004, "z1", kind="consumption")
        self.assertFalse(lines)
        self.assertFalse(self.account_a101.ledger_ids)
        self.assertEqual(self.account_a101.balance, 0.0)

    def test_source_document_date_and_period_are_recorded(self):
        when = datetime(2026, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=8)))
        line = self._post(
            self.account_a101, 5.0, "src1", res_model="res.partner", res_id=self.tenant_a101.id, date=when
        )
        self.assertEqual(line.date, datetime(2026, 3, 1, 0, 30))
        self.assertEqual(line.source_ref, self.tenant_a101)
        self.assertEqual(line.period, 1)

    def test_last_topup_date_follows_topups_only(self):
        self._post(self.account_a101, 50.0, "lt1", date=datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
        self._post(self.account_a101, -5.0, "lt2", kind="consumption", date=datetime(2026, 1, 9, tzinfo=UTC))
        self.assertEqual(self.account_a101.last_topup_date, datetime(2026, 1, 5, 10, 0))
        # A back-dated top-up does not move it backwards.
        self._post(self.account_a101, 10.0, "lt3", date=datetime(2025, 12, 1, tzinfo=UTC))
        self.assertEqual(self._db_value(self.account_a101, "last_topup_date"), datetime(2026, 1, 5, 10, 0))

    def test_level_is_recomputed_and_stored_after_posting(self):
        self._post(self.account_a101, 100.0, "lv1")
        self.assertEqual(self._db_value(self.account_a101, "level"), "normal")
        self._post(self.account_a101, -85.0, "lv2", kind="consumption")
        self.assertEqual(self._db_value(self.account_a101, "level"), "warning_2")
        self._post(self.account_a101, -15.0, "lv3", kind="consumption")
        self.assertEqual(self._db_value(self.account_a101, "level"), "cutoff")
        self.assertEqual(self.account_a101.level, "cutoff")

    def test_balance_changed_hook_receives_the_old_balances(self):
        self._post(self.account_a101, 60.0, "h1")
        Account = type(self.env["prepaid.account"])
        with patch.object(
            Account, "_on_balance_changed", autospec=True, side_effect=Account._on_balance_changed
        ) as hook:
            self._post(self.account_a101, -45.0, "h2", kind="consumption")
            self._post(self.account_a101, -45.0, "h2", kind="consumption")  # duplicate: no change, no call
        hook.assert_called_once()
        accounts, old_balances = hook.call_args.args
        self.assertEqual(accounts, self.account_a101)
        self.assertEqual(old_balances, {self.account_a101.id: 60.0})
        self.assertEqual(accounts._get_level(old_balances[accounts.id]), "normal")
        self.assertEqual((accounts.balance, accounts.level), (15.0, "warning_2"))

    def test_key_already_used_by_another_account_is_refused(self):
        self._post(self.account_a101, 10.0, "shared-key")
        with self.assertRaises(ValidationError):
            self._post(self.account_b101, 10.0, "shared-key")
        self.assertEqual(self.account_b101.balance, 0.0)

    def test_incomplete_lines_are_refused(self):
        Account = self.env["prepaid.account"]
        base = {"account_id": self.account_a101.id, "kind": "topup", "amount": 1.0, "idempotency_key": "x"}
        for missing in ("idempotency_key", "account_id", "amount"):
            with self.subTest(missing=missing), self.assertRaises(ValidationError):
                Account._post_ledger([{k: v for k, v in base.items() if k != missing}])
        with self.assertRaises(ValidationError):
            Account._post_ledger([dict(base, kind="gift")])
        with self.assertRaises(ValidationError):
            Account._post_ledger([dict(base, account_id=999999999)])
        self.assertFalse(self.account_a101.ledger_ids)

    def test_closed_account_refuses_postings(self):
        self.account_a101.action_close()
        with self.assertRaises(UserError):
            self._post(self.account_a101, 10.0, "closed1")

    def test_reopened_account_posts_in_a_new_period(self):
        self._post(self.account_a101, 10.0, "p1")
        self._post(self.account_a101, -10.0, "p2", kind="refund")
        self.account_a101.action_close()
        self.account_a101.action_reopen()
        self.assertEqual(self.account_a101.period, 2)
        line = self._post(self.account_a101, 20.0, "p3")
        self.assertEqual(line.period, 2)
        self.assertEqual(line.balance_after, 20.0)

    def test_caller_needs_write_access_to_the_account(self):
        portal = self.env["res.users"].create(
            {
                "name": "Portal Tenant",
                "login": "pp_portal_ledger",
                "partner_id": self.tenant_a101.id,
                "company_id": self.company.id,
                "company_ids": [(6, 0, self.company.ids)],
                "groups_id": [(6, 0, [self.env.ref("base.group_portal").id])],
            }
        )
        with self.assertRaises(AccessError):
            self.env["prepaid.account"].with_user(portal)._post_ledger(
                [
                    {
                        "account_id": self.account_a101.id,
                        "kind": "topup",
                        "amount": 1e6,
                        "idempotency_key": "evil",
                    }
                ]
            )
        # An operator (cashier) may post; the returned lines are readable by them.
        line = (
            self.env["prepaid.account"]
            .with_user(self.operator)
            ._post_ledger(
                [
                    {
                        "account_id": self.account_a101.id,
                        "kind": "topup",
                        "amount": 30.0,
                        "idempotency_key": "cash",
                    }
                ]
            )
        )
        self.assertEqual(line.amount, 30.0)
        self.assertEqual(line.create_uid, self.operator)


@tagged("post_install", "-at_install")
class TestLedgerAppendOnly(PrepaidCommon):
    def test_lines_cannot_be_changed_or_deleted_even_as_superuser(self):
        line = self._post(self.account_a101, 10.0, "ro1")
        with self.assertRaises(UserError):
            line.sudo().write({"amount": 1000.0})
        with self.assertRaises(UserError):
            line.sudo().unlink()
        with self.assertRaises(UserError):
            line.with_user(self.manager).write({"description": "x"})
        self.assertEqual(self._db_value(line, "amount"), 10.0)

    def test_lines_cannot_be_created_outside_the_ledger_api(self):
        vals = {"account_id": self.account_a101.id, "kind": "topup", "amount": 5.0, "idempotency_key": "c"}
        with self.assertRaises(UserError):
            self.env["prepaid.ledger"].sudo().create(vals)
        # The context key that once let the ledger API create lines is caller input now: nothing opens it.
        for context in ({"prepaid_ledger_post": True}, {"prepaid_internal": True}):
            with self.assertRaises(UserError):
                self.env["prepaid.ledger"].with_user(self.manager).with_context(**context).create(vals)
            with self.assertRaises(UserError):
                self.env["prepaid.ledger"].sudo().with_context(**context).create(vals)

    def test_balance_cannot_be_written_directly(self):
        with self.assertRaises(UserError):
            self.account_a101.write({"balance": 1000.0})
        with self.assertRaises(UserError):
            self.account_a101.sudo().write({"balance": 1000.0})
        with self.assertRaises(UserError):
            self._create_account(self.tenant_b101, self.unit_a102, state="draft", balance=10.0)

    @mute_logger("odoo.sql_db")
    def test_database_refuses_a_zero_amount(self):
        with self.assertRaises(CheckViolation):
            self._raw_line(self.account_a101, 0.0, "0")

    @mute_logger("odoo.sql_db")
    def test_database_refuses_a_duplicate_key(self):
        self._post(self.account_a101, 10.0, "dup")
        with self.assertRaises(UniqueViolation):
            self._raw_line(self.account_b101, 1.0, "dup")

    def _raw_line(self, account, amount, key):
        """A line inserted with SQL, past every check of the ORM: only the database's constraints remain."""
        self.env.cr.execute(
            SQL(
                """INSERT INTO prepaid_ledger (account_id, partner_id, company_id, currency_id, date, kind,
                                               amount, idempotency_key)
                   VALUES (%s, %s, %s, %s, now() at time zone 'utc', 'topup', %s, %s)""",
                account.id,
                account.partner_id.id,
                account.company_id.id,
                account.currency_id.id,
                amount,
                key,
            )
        )


@tagged("post_install", "-at_install")
class TestLedgerColumns(PrepaidCommon):
    def test_a_line_keeps_its_account_s_tenant_company_currency_and_who_posted_it_when(self):
        line = (
            self.env["prepaid.account"]
            .with_user(self.operator)
            ._post_ledger(
                [
                    {
                        "account_id": self.account_a101.id,
                        "kind": "topup",
                        "amount": 12.5,
                        "idempotency_key": "cols",
                    }
                ]
            )
        )
        self.assertRecordValues(
            line,
            [
                {
                    "partner_id": self.account_a101.partner_id.id,
                    "company_id": self.account_a101.company_id.id,
                    "currency_id": self.account_a101.currency_id.id,
                    "create_uid": self.operator.id,
                }
            ],
        )
        self.assertEqual(self._db_value(line, "create_date"), self.env.cr.now())
        self.assertNotIn("write_uid", line._fields, "a line is written once: no last writer to keep")

    def test_a_line_checks_one_foreign_key_its_account(self):
        """Tenant, company, currency and poster are copies without foreign keys of their own: the account's
        (which refuses to delete an account that has lines) is the one lookup a new line costs."""
        rows = self.env.execute_query(
            SQL(
                """SELECT a.attname, c.confdeltype FROM pg_constraint c
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
                    WHERE c.conrelid = 'prepaid_ledger'::regclass AND c.contype = 'f'"""
            )
        )
        self.assertEqual(rows, [("account_id", "r")])


@tagged("post_install", "-at_install")
class TestBalanceCheck(PrepaidCommon):
    def _corrupt(self, account, balance):
        self.env.flush_all()
        self.env.cr.execute(SQL("UPDATE prepaid_account SET balance = %s WHERE id = %s", balance, account.id))
        account.invalidate_recordset(["balance"])

    def test_check_reports_and_manager_recompute_fixes_a_drifted_balance(self):
        self._post(self.account_a101, 80.0, "b1")
        self._post(self.account_b101, 20.0, "b2")
        self._corrupt(self.account_a101, 5.0)
        accounts = self.account_a101 | self.account_b101
        self.assertEqual(accounts._check_balance(), {self.account_a101.id: (5.0, 80.0)})
        with self.assertRaises(AccessError):
            accounts.with_user(self.operator).action_recompute_balance()
        result = accounts.with_user(self.manager).action_recompute_balance()
        self.assertEqual(result["params"]["type"], "warning")
        self.assertEqual(self._db_value(self.account_a101, "balance"), 80.0)
        self.assertEqual(self._db_value(self.account_a101, "level"), "normal")
        self.assertEqual(accounts._check_balance(), {})
        self.assertIn("80", self.account_a101.message_ids[0].body)
        self.assertEqual(
            accounts.with_user(self.manager).action_recompute_balance()["params"]["type"], "success"
        )
