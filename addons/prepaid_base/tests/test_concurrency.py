import threading
import uuid

from odoo import SUPERUSER_ID, api
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger
from psycopg2.errors import SerializationFailure

MAX_TRIES = 5


def _retrying(func, env):
    """What ``odoo.service.model.retrying`` does around every RPC and HTTP request: run ``func``; on a
    serialization failure, roll back and run it again in a fresh transaction; commit at the end.

    (``retrying`` itself also reloads the registry, which needs the registry lock the test runner holds for
    the whole run, so a test thread cannot call it.)
    """
    for tryno in range(1, MAX_TRIES + 1):
        try:
            result = func()
            env.cr.flush()
            break
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            env.cr.rollback()
            env.invalidate_all(flush=False)
            if tryno == MAX_TRIES:
                raise
    env.cr.commit()
    return result


# Upper bound on polls of pg_stat_activity while waiting for the second transaction to block on the row lock.
LOCK_WAIT_POLLS = 400


def wait_until_blocked(cr, pid):
    """Whether the backend ``pid`` comes to wait on a lock (polled through ``cr``, ~20 s at most)."""
    for _poll in range(LOCK_WAIT_POLLS):
        cr.execute(SQL("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", pid))
        row = cr.fetchone()
        if row and row[0] == "Lock":
            return True
        threading.Event().wait(0.05)
    return False


def run_beside(registry, work, context=None):
    """Run ``work(env)`` in two real transactions at once: the first in a cursor of its own, committed; the
    second in a thread started once the first has done its work (and before it commits), retried as every
    request is (:func:`_retrying`). Returns ``(first result, outcome, blocked)``: ``outcome`` holds the
    second's ``result`` or ``error`` and its ``attempts``; ``blocked`` says whether the second came to wait
    on a lock of the first."""
    context = {"tracking_disable": True, **(context or {})}
    outcome = {"attempts": 0}
    cr2 = registry.cursor()
    try:
        env2 = api.Environment(cr2, SUPERUSER_ID, context)
        cr2.execute("SELECT pg_backend_pid()")
        pid = cr2.fetchone()[0]

        def attempt():
            outcome["attempts"] += 1
            return work(env2)

        def run():
            try:
                outcome["result"] = _retrying(attempt, env2)
            except Exception as exc:  # reported to the caller, which asserts there was none
                outcome["error"] = exc

        thread = threading.Thread(target=run)
        with registry.cursor() as cr1:
            env1 = api.Environment(cr1, SUPERUSER_ID, context)
            first = work(env1)
            env1.flush_all()
            thread.start()
            with registry.cursor() as observer:
                blocked = wait_until_blocked(observer, pid)
        thread.join(60)
        if thread.is_alive():
            outcome["error"] = TimeoutError("the second transaction did not finish within 60 s")
    finally:
        cr2.close()
    return first, outcome, blocked


def create_committed_account(env, tag, prefix, building_vals=None, opening=None):
    """A building with one unit, a tenant and an open account of that unit (with an opening line of
    ``opening`` when given), created in ``env``: a cursor of its own that the caller commits, so that other
    transactions see them. Returns their ids (building, unit, partner, account) for
    :func:`remove_committed_account`."""
    Property = env["prepaid.property"]
    building = Property.create(
        {"name": f"{prefix} {tag}", "code": f"{prefix}B-{tag}", "kind": "building", **(building_vals or {})}
    )
    unit = Property.create(
        {"name": "U", "code": f"{prefix}U-{tag}", "kind": "unit", "parent_id": building.id}
    )
    partner = env["res.partner"].create({"name": f"{prefix} tenant {tag}"})
    account = env["prepaid.account"].create(
        {"partner_id": partner.id, "unit_ids": [(6, 0, unit.ids)], "company_id": building.company_id.id}
    )
    account.action_open()
    if opening:
        env["prepaid.account"]._post_ledger(
            [
                {
                    "account_id": account.id,
                    "kind": "opening",
                    "amount": opening,
                    "idempotency_key": f"{prefix}:{tag}:opening",
                }
            ]
        )
    return {"building": building.id, "unit": unit.id, "partner": partner.id, "account": account.id}


def remove_committed_account(cr, ids, before=(), records=()):
    """Remove, with SQL in ``cr``, what :func:`create_committed_account` made: first the ``before`` queries
    (what the test added that refers to the account), then the account's ledger, the messages and followers
    of the account and of the ``records`` (``(model, id)`` pairs), the account, its unit and building, and
    the tenant. (The ledger is append-only through the ORM: test data goes with SQL.)"""
    records = [("prepaid.account", ids["account"]), *records]
    for query in before:
        cr.execute(query)
    cr.execute(SQL("DELETE FROM prepaid_ledger WHERE account_id = %s", ids["account"]))
    for model, res_id in records:
        cr.execute(SQL("DELETE FROM mail_message WHERE model = %s AND res_id = %s", model, res_id))
        cr.execute(SQL("DELETE FROM mail_followers WHERE res_model = %s AND res_id = %s", model, res_id))
    cr.execute(SQL("DELETE FROM prepaid_account WHERE id = %s", ids["account"]))
    cr.execute(SQL("DELETE FROM prepaid_property WHERE id IN %s", (ids["unit"], ids["building"])))
    api.Environment(cr, SUPERUSER_ID, {})["res.partner"].browse(ids["partner"]).unlink()


@tagged("post_install", "-at_install")
class TestLedgerConcurrency(TransactionCase):
    """Two real transactions post to the same account at the same time.

    The data lives in committed transactions (other cursors cannot see the test's own), and is removed again
    in a cleanup. Odoo runs in REPEATABLE READ: the second poster blocks on the account row lock held by the
    first, and once the first commits, PostgreSQL refuses the second's stale snapshot (serialization
    failure); Odoo's ``retrying`` (what every RPC/HTTP request goes through) runs it again, and the retry sees
    the first's balance. No update is lost and nothing is posted twice.
    """

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partner = env["res.partner"].create({"name": f"Concurrency tenant {self.tag}"})
            account = env["prepaid.account"].create({"partner_id": partner.id})
            account.action_open()
            env["prepaid.account"]._post_ledger(
                [
                    {
                        "account_id": account.id,
                        "kind": "opening",
                        "amount": 100.0,
                        "idempotency_key": f"conc:{self.tag}:opening",
                    }
                ]
            )
            self.account_id, self.partner_id = account.id, partner.id
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            # The ledger is append-only through the ORM: test data is removed with SQL.
            cr.execute(SQL("DELETE FROM prepaid_ledger WHERE account_id = %s", self.account_id))
            for table in ("mail_message", "mail_followers"):
                cr.execute(
                    SQL(
                        "DELETE FROM %s WHERE model = 'prepaid.account' AND res_id = %s"
                        if table == "mail_message"
                        else "DELETE FROM %s WHERE res_model = 'prepaid.account' AND res_id = %s",
                        SQL.identifier(table),
                        self.account_id,
                    )
                )
            cr.execute(SQL("DELETE FROM prepaid_account WHERE id = %s", self.account_id))
            api.Environment(cr, SUPERUSER_ID, {})["res.partner"].browse(self.partner_id).unlink()

    def _post(self, env, amount, key):
        return env["prepaid.account"]._post_ledger(
            [{"account_id": self.account_id, "kind": "topup", "amount": amount, "idempotency_key": key}]
        )

    @mute_logger("odoo.sql_db", "odoo.service.model")
    def test_second_poster_waits_for_the_lock_and_sees_the_first_balance(self):
        outcome = {"attempts": 0}
        # Cursors and environments are made here: building an environment takes the registry lock, which
        # the test runner holds for the whole run, so a thread could not.
        cr2 = self.registry.cursor()
        self.addCleanup(cr2.close)
        env2 = api.Environment(cr2, SUPERUSER_ID, {})
        cr2.execute("SELECT pg_backend_pid()")
        second_pid = cr2.fetchone()[0]  # this also starts the second transaction's snapshot

        def attempt():
            outcome["attempts"] += 1
            line = self._post(env2, 5.0, f"conc:{self.tag}:second")
            outcome["balance_after"] = line.balance_after

        def second_poster():
            try:
                _retrying(attempt, env2)
            except Exception as exc:
                # Reported to the main thread, which asserts there was none.
                outcome["error"] = exc

        with self.registry.cursor() as cr1:
            env1 = api.Environment(cr1, SUPERUSER_ID, {})
            first_line = self._post(env1, 10.0, f"conc:{self.tag}:first")  # holds the row lock
            thread = threading.Thread(target=second_poster)
            thread.start()
            with self.registry.cursor() as observer:
                blocked = wait_until_blocked(observer, second_pid)
            self.assertEqual(first_line.balance_after, 110.0)
            # leaving the block commits the first transaction and releases the lock
        thread.join(60)
        self.assertFalse(thread.is_alive())
        self.assertTrue(blocked, "the second poster never waited for the account lock")
        self.assertNotIn("error", outcome)
        self.assertEqual(outcome["attempts"], 2)  # the stale snapshot was refused once, then retried
        self.assertEqual(outcome["balance_after"], 115.0)

        with self.registry.cursor() as cr:
            cr.execute(
                SQL(
                    "SELECT SUM(amount), COUNT(*), (SELECT balance FROM prepaid_account WHERE id = %s) "
                    "FROM prepaid_ledger WHERE account_id = %s",
                    self.account_id,
                    self.account_id,
                )
            )
            rows = cr.fetchall()
        self.assertEqual(rows, [(115.0, 3, 115.0)])

    def test_a_poster_with_an_older_snapshot_is_retried_not_logged_as_a_bad_query(self):
        """The second poster's snapshot predates the first's commit: its account lock fails with a
        serialization error, which every caller retries (Odoo's request and cron retry, the suite's own
        transactions) or defers (a settlement): Odoo's SQL log must not call it an ERROR "bad query" (the soak
        run found one such ERROR per conflict between a top-up and a poll's settlement)."""
        with self.registry.cursor() as late_cr:
            late_env = api.Environment(late_cr, SUPERUSER_ID, {})
            late_cr.execute("SELECT 1")  # its snapshot is taken
            with self.registry.cursor() as cr:
                self._post(api.Environment(cr, SUPERUSER_ID, {}), 10.0, f"conc:{self.tag}:first")
            with (
                self.assertNoLogs("odoo.sql_db", level="ERROR"),
                self.assertRaises(SerializationFailure),
            ):
                self._post(late_env, 5.0, f"conc:{self.tag}:late")
            late_cr.rollback()
        with self.registry.cursor() as cr:
            cr.execute(SQL("SELECT balance FROM prepaid_account WHERE id = %s", self.account_id))
            self.assertEqual(cr.fetchone()[0], 110.0)

    def test_the_same_key_posted_again_by_another_transaction_is_booked_once(self):
        with self.registry.cursor() as cr1:
            env1 = api.Environment(cr1, SUPERUSER_ID, {})
            self._post(env1, 10.0, f"conc:{self.tag}:same")
        with self.registry.cursor() as cr2:
            env2 = api.Environment(cr2, SUPERUSER_ID, {})
            line = self._post(env2, 10.0, f"conc:{self.tag}:same")
            self.assertEqual(line.balance_after, 110.0)
            self.assertEqual(env2["prepaid.account"].browse(self.account_id).balance, 110.0)
