import threading
import uuid

from odoo import SUPERUSER_ID, Command, api
from odoo.addons.prepaid_base.tests.test_concurrency import (
    _retrying,
    create_committed_account,
    remove_committed_account,
)
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger

THREADS = 50


@tagged("post_install", "-at_install")
class TestPostProcessingExactlyOnce(TransactionCase):
    """Fifty post-processings of the same confirmed transaction at once (the webhook, the customer's status
    poll, the retry cron, each in its own transaction and cursor, released together by a barrier) make one
    payment and credit the ledger once. The data is committed, in the database's main company (its demo
    provider enabled for the test), and removed again in a cleanup."""

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            company = env.ref("base.main_company")
            env = env(context=dict(env.context, allowed_company_ids=company.ids))
            company._prepaid_ensure_setup()
            provider = env.ref("payment.payment_provider_demo")
            self.provider_state = (provider.state, provider.is_published)
            provider.write({"state": "test", "is_published": True, "company_id": company.id})
            self.ids = create_committed_account(env, self.tag, "Once", {"company_id": company.id})
            account = env["prepaid.account"].browse(self.ids["account"])
            partner = account.partner_id
            topup = env["prepaid.topup"]._prepaid_portal_create(account, 80.0)
            tx = env["payment.transaction"].create(
                {
                    "provider_id": provider.id,
                    "payment_method_id": env.ref("payment_demo.payment_method_demo").id,
                    "reference": f"ONCE-{self.tag}",
                    "amount": 80.0,
                    "currency_id": topup.currency_id.id,
                    "partner_id": partner.id,
                    "operation": "online_direct",
                    "invoice_ids": [Command.set(topup.invoice_id.ids)],
                }
            )
            tx._set_done()
            self.ids.update(topup=topup.id, invoice=topup.invoice_id.id, tx=tx.id, provider=provider.id)
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        ids = self.ids
        with self.registry.cursor() as cr:
            cr.execute(SQL("SELECT id FROM account_payment WHERE payment_transaction_id = %s", ids["tx"]))
            payments = [row[0] for row in cr.fetchall()]
            cr.execute(
                SQL(
                    "SELECT id FROM account_move WHERE id = %s OR origin_payment_id = ANY(%s)",
                    ids["invoice"],
                    payments,
                )
            )
            moves = tuple(row[0] for row in cr.fetchall())
            remove_committed_account(
                cr,
                ids,
                before=(
                    SQL("DELETE FROM prepaid_topup WHERE account_id = %s", ids["account"]),
                    SQL("DELETE FROM prepaid_portal_binding WHERE account_id = %s", ids["account"]),
                    SQL(
                        "DELETE FROM account_partial_reconcile WHERE debit_move_id IN "
                        "(SELECT id FROM account_move_line WHERE move_id IN %s) OR credit_move_id IN "
                        "(SELECT id FROM account_move_line WHERE move_id IN %s)",
                        moves,
                        moves,
                    ),
                    SQL(
                        "DELETE FROM account_full_reconcile WHERE id NOT IN (SELECT full_reconcile_id "
                        "FROM account_move_line WHERE full_reconcile_id IS NOT NULL)"
                    ),
                    SQL("UPDATE payment_transaction SET payment_id = NULL WHERE id = %s", ids["tx"]),
                    SQL("DELETE FROM account_payment WHERE id = ANY(%s)", payments),
                    SQL("DELETE FROM account_move_line WHERE move_id IN %s", moves),
                    SQL("DELETE FROM account_move WHERE id IN %s", moves),
                    SQL("DELETE FROM payment_transaction WHERE id = %s", ids["tx"]),
                ),
            )
            env = api.Environment(cr, SUPERUSER_ID, {})
            state, published = self.provider_state
            env["payment.provider"].browse(ids["provider"]).write({"state": state, "is_published": published})

    def test_fifty_concurrent_post_processings_credit_once(self):
        barrier = threading.Barrier(THREADS)
        errors = []
        # Cursors and environments are made here: building an environment takes the registry lock, which
        # the test runner holds for the whole run, so a thread could not.
        envs = []
        for _i in range(THREADS):
            cr = self.registry.cursor()
            self.addCleanup(cr.close)
            envs.append(api.Environment(cr, SUPERUSER_ID, {}))

        def post_process(env):
            try:
                tx = env["payment.transaction"].browse(self.ids["tx"])
                barrier.wait(timeout=60)
                _retrying(lambda: tx._post_process(), env)
            except Exception as error:
                errors.append(repr(error))

        threads = [threading.Thread(target=post_process, args=(env,)) for env in envs]
        with mute_logger("odoo.sql_db"):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
        self.assertFalse(errors, errors[:3])
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["prepaid.account"].browse(self.ids["account"])
            lines = account.ledger_ids.filtered(lambda line: line.kind == "topup")
            payments = env["account.payment"].search([("payment_transaction_id", "=", self.ids["tx"])])
            self.assertEqual(lines.mapped("amount"), [80.0], "credited once")
            self.assertEqual(account.balance, 80.0)
            self.assertEqual(len(payments), 1, "one payment")
            self.assertEqual(env["prepaid.topup"].browse(self.ids["topup"]).state, "done")
            self.assertIn(
                env["account.move"].browse(self.ids["invoice"]).payment_state, ("paid", "in_payment")
            )
