import json
from datetime import timedelta
from urllib.parse import quote_plus

import odoo
from odoo import fields
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_portal.models.prepaid_account import ACCOUNT_FAILURES, USER_FAILURES
from odoo.exceptions import AccessError, UserError
from odoo.service.model import get_public_method
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import CODE, PortalCommon


@tagged("post_install", "-at_install")
class TestBinding(PortalCommon):
    def test_binding_by_code_makes_a_holder_and_is_in_the_chatter(self):
        account, error = self.bind(self.alice, self.account_1)
        self.assertFalse(error)
        self.assertEqual(account, self.account_1)
        self.assertEqual(self.account_1._prepaid_portal_role(self.alice), "holder")
        self.assertIn(self.alice.partner_id, self.account_1.portal_partner_ids)
        self.assertEqual(
            self.env["prepaid.account"].with_user(self.alice).search([]),
            self.account_1,
            "sees only that account",
        )
        self.assertIn("Alice Portal", self.account_1.message_ids[0].body)

    def test_wrong_codes_are_rate_limited_per_user_and_lock_the_account(self):
        for _i in range(USER_FAILURES):
            account, error = self.bind(self.alice, self.account_1, code="00000000")
            self.assertFalse(account)
            self.assertIn("wrong", error)
        # Even the right code is refused now: the user is over the limit.
        account, error = self.bind(self.alice, self.account_1)
        self.assertFalse(account)
        self.assertIn("Too many", error)
        attempts = self.env["prepaid.portal.attempt"].search([("user_id", "=", self.alice.id)])
        self.assertEqual(len(attempts), USER_FAILURES, "a try refused by the limit checks no code")
        # Other users keep guessing until the account's code locks.
        users = [self.bob] + [
            self.env["res.users"].create(
                {
                    "name": f"Guesser {i}",
                    "login": f"pp_guess_{i}",
                    "groups_id": [(6, 0, [self.env.ref("base.group_portal").id])],
                }
            )
            for i in range(2)
        ]
        failures = USER_FAILURES
        for user in users:
            for _i in range(USER_FAILURES):
                if failures >= ACCOUNT_FAILURES:
                    break
                self.bind(user, self.account_1, code="11111111")
                failures += 1
        self.assertTrue(self.account_1.portal_code_locked)
        account, error = self.bind(users[-1], self.account_1)
        self.assertFalse(account, "a locked code binds nobody, even when right")
        self.assertIn("property office", error)
        # Rotating the code unlocks it and the old code is dead.
        self.account_1.action_generate_portal_code()
        self.assertFalse(self.account_1.portal_code_locked)
        self.assertNotEqual(self.account_1.portal_code, CODE)
        self.env["prepaid.portal.attempt"].sudo().search([]).unlink()
        account, error = self.bind(users[-1], self.account_1)
        self.assertFalse(account)
        account, error = self.bind(users[-1], self.account_1, code=self.account_1.portal_code)
        self.assertEqual(account, self.account_1)

    def test_qr_token_binds_until_the_code_rotates(self):
        token = self.account_1._prepaid_bind_token()
        url = self.account_1._prepaid_bind_url()
        self.assertIn("token=", url)
        account, error = self.env["prepaid.account"]._prepaid_portal_bind(
            self.alice, self.account_1.name, token=token
        )
        self.assertEqual(account, self.account_1, error)
        self.account_1.action_generate_portal_code()
        account, error = self.env["prepaid.account"]._prepaid_portal_bind(
            self.bob, self.account_1.name, token=token
        )
        self.assertFalse(account)
        # Another account's token does not bind this one.
        other = self.account_2._prepaid_bind_token()
        account, _error = self.env["prepaid.account"]._prepaid_portal_bind(
            self.bob, self.account_1.name, token=other
        )
        self.assertFalse(account)

    def test_the_label_prints_the_code_and_a_qr_code_of_the_signed_link(self):
        html, _kind = self.env["ir.actions.report"]._render_qweb_html(
            "prepaid_portal.report_prepaid_binding_label", self.account_1.ids
        )
        html = html.decode()
        self.assertIn(CODE, html)
        self.assertIn(self.account_1.name, html)
        self.assertIn("barcode_type=QR", html)
        self.assertIn(quote_plus(self.account_1._prepaid_bind_token()), html)
        # An account without a code gets one when its label is printed.
        internal(self.account_2).write({"portal_code": False})
        self.account_2.action_print_portal_label()
        self.assertTrue(self.account_2.portal_code)

    def test_invitation_and_revocation(self):
        self.bind(self.alice, self.account_1)
        invitation = self.env["prepaid.portal.invitation"]._invite(self.account_1, self.alice)
        found = self.env["prepaid.portal.invitation"]._find_pending(invitation.token)
        self.assertEqual(found, invitation)
        binding = found._accept(self.bob)
        self.assertEqual(binding.role, "member")
        self.assertEqual(self.account_1._prepaid_portal_role(self.bob), "member")
        self.assertFalse(self.env["prepaid.portal.invitation"]._find_pending(invitation.token), "single use")
        self.assertEqual(self.env["prepaid.account"].with_user(self.bob).search([]), self.account_1)
        binding._revoke(self.alice)
        self.assertFalse(self.account_1._prepaid_portal_role(self.bob))
        self.assertNotIn(self.bob.partner_id, self.account_1.portal_partner_ids)
        self.assertFalse(self.env["prepaid.account"].with_user(self.bob).search([]))
        self.assertIn("no longer sees", self.account_1.message_ids[0].body)
        # An expired invitation is dead.
        late = self.env["prepaid.portal.invitation"]._invite(self.account_1, self.alice)
        internal(late).write({"expires": fields.Datetime.now() - timedelta(minutes=1)})
        self.assertFalse(self.env["prepaid.portal.invitation"]._find_pending(late.token))

    def test_portal_users_create_no_binding_and_write_nothing_over_rpc(self):
        self.bind(self.alice, self.account_1)
        Binding = self.env["prepaid.portal.binding"].with_user(self.alice)
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            Binding.create({"account_id": self.account_2.id, "user_id": self.alice.id, "via": "code"})
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.account_1.with_user(self.alice).write({"portal_code": "1"})
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.account_1.with_user(self.alice).action_generate_portal_code()
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.account_1.with_user(self.alice).read(["portal_code"])


@tagged("post_install", "-at_install")
class TestRecharge(PortalCommon):
    def test_done_payment_credits_once_and_restores(self):
        self.bind(self.alice, self.account_1)
        internal(self.account_1).write({"supply_cut": True})
        balance = self.account_1.balance
        topup = self.portal_topup(self.alice, self.account_1, 100.0)
        self.assertEqual(
            (topup.state, topup.channel, topup.invoice_id.state), ("invoiced", "portal", "posted")
        )
        tx = self.transaction(topup, "done")
        for _i in range(3):  # the status poll, the cron, a duplicate webhook
            tx._post_process()
            self.notify(tx, "done")
        self.assertEqual(topup.state, "done")
        self.assertEqual(self.account_1.balance, balance + 100.0)
        self.assertEqual(
            self.account_1.ledger_ids.filtered(lambda line: line.kind == "topup").mapped("amount"), [100.0]
        )
        self.assertEqual(topup.invoice_id.payment_state in ("paid", "in_payment"), True)
        self.assertEqual(len(self.env["account.payment"].search([("payment_transaction_id", "=", tx.id)])), 1)
        self.assertEqual(topup.payment_id, tx.payment_id)
        self.assertLedgerMatchesAccounting(self.account_1)

    def test_cancelled_and_failed_payments_credit_nothing_and_leave_no_posted_invoice(self):
        for state in ("cancel", "error"):
            with self.subTest(state=state):
                balance = self.account_1.balance
                topup = self.portal_topup(self.alice, self.account_1, 50.0)
                tx = self.transaction(topup, "pending")
                tx._post_process()
                self.assertEqual(topup.state, "invoiced", "pending: waiting")
                self.notify(tx, state)
                tx._post_process()
                self.assertEqual(topup.state, "cancelled")
                self.assertEqual(topup.invoice_id.state, "cancel")
                self.assertEqual(self.account_1.balance, balance)

    def test_an_error_the_provider_later_confirms_is_credited(self):
        topup = self.portal_topup(self.alice, self.account_1, 30.0)
        tx = self.transaction(topup, "error")
        tx._post_process()
        self.assertEqual(topup.state, "cancelled")
        balance = self.account_1.balance
        tx._set_done()
        tx._post_process()
        self.assertEqual(topup.state, "done")
        self.assertEqual(topup.invoice_id.state, "posted")
        self.assertEqual(self.account_1.balance, balance + 30.0)

    def test_an_unpaid_draft_is_reused_and_abandoned_ones_are_cancelled(self):
        first = self.portal_topup(self.alice, self.account_1, 20.0)
        again = self.portal_topup(self.alice, self.account_1, 20.0)
        self.assertEqual(first, again, "the same amount reuses the waiting top-up")
        other = self.portal_topup(self.alice, self.account_1, 25.0)
        self.assertNotEqual(other, first)
        internal(first | other).write({"date": fields.Datetime.now() - timedelta(days=2)})
        self.env["prepaid.topup"]._cron_prepaid_portal_cleanup()
        self.assertEqual((first | other).mapped("state"), ["cancelled", "cancelled"])
        self.assertEqual((first | other).invoice_id.mapped("state"), ["cancel", "cancel"])

    def test_days_left_from_the_daily_facts(self):
        self.assertEqual(self.account_1.days_left, 0, "nothing charged: nothing to say")
        today = fields.Date.context_today(self.account_1)

        def facts(account, meter, amounts):
            self.env["prepaid.consumption"].sudo().create(
                [
                    {
                        "meter_id": meter.id,
                        "account_id": account.id,
                        "company_id": self.company.id,
                        "day": today - timedelta(days=ago),
                        "quantity": amount,
                        "amount": amount,
                    }
                    for ago, amount in amounts
                ]
            )

        # A long history: 1 a day (what is older than 30 days does not count); a balance of 5 lasts 5 days.
        facts(self.account_1, self.meter_1, [(ago, 1.0) for ago in range(1, 41)])
        self.account_1.invalidate_recordset(["days_left"])
        self.assertEqual(self.account_1.days_left, 5)
        # A new tenant: 5 spent over its first 3 days (today included) is 5/3 a day: 10 lasts 6 days.
        self.post(self.account_2, 10.0, "pp:days:2", kind="opening")
        facts(self.account_2, self.meter_2, [(2, 2.5), (1, 2.5)])
        self.account_2.invalidate_recordset(["days_left"])
        self.assertEqual(self.account_2.days_left, 6)


@tagged("post_install", "-at_install")
class TestPortalRoutes(HttpCase, PortalCommon):
    def test_tour_bind_see_and_recharge(self):
        internal(self.account_1).write({"supply_cut": True})
        balance = self.account_1.balance
        self.start_tour(
            f"/my/prepaid/bind?account={self.account_1.name}",
            "prepaid_portal_bind_and_recharge",
            login="pp_alice",
        )
        self.assertEqual(self.account_1._prepaid_portal_role(self.alice), "holder")
        topup = self.env["prepaid.topup"].search(
            [("account_id", "=", self.account_1.id), ("channel", "=", "portal")]
        )
        self.assertEqual(topup.mapped("state"), ["done"])
        self.assertEqual(self.account_1.balance, balance + 100.0)
        restore = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter_1.id)], order="id desc", limit=1
        )
        self.assertEqual((restore.kind, restore.urgent), ("close", True), "the restore is queued at once")

    def test_another_tenants_ids_are_404_and_show_nothing(self):
        self.bind(self.alice, self.account_1)
        topup_2 = self.topup(self.account_2, 10.0)
        self.authenticate("pp_alice", "pp_alice")
        for url in (
            f"/my/prepaid/accounts/{self.account_2.id}",
            f"/my/prepaid/accounts/{self.account_2.id}/recharge",
            f"/my/prepaid/topups/{topup_2.id}/receipt",
            f"/my/prepaid/topups/{topup_2.id}/pay",
            "/my/prepaid/accounts/999999999",
            "/my/prepaid/accounts/99999999999999999999",
        ):
            with self.subTest(url=url), mute_logger("odoo.http"):
                response = self.url_open(url)
                self.assertEqual(response.status_code, 404)
                self.assertNotIn(self.account_2.name, response.text)
        response = self.url_open(f"/my/prepaid/accounts/{self.account_1.id}")
        self.assertEqual(response.status_code, 200)
        self.assertIn(self.account_1.name, response.text)
        # The JSON route refuses too, and says nothing of the account.
        with mute_logger("odoo.http"):
            response = self.url_open(
                f"/my/prepaid/accounts/{self.account_2.id}/status",
                data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}}),
                headers={"Content-Type": "application/json"},
            )
        self.assertIn("error", response.json())
        self.assertNotIn("balance", response.json().get("result") or {})

    def test_dispatched_statements_are_listed_and_downloaded_by_their_tenant_only(self):
        self.bind(self.alice, self.account_1)
        Statement = self.env["prepaid.statement"]
        Statement._generate_all()
        mine, theirs = (
            Statement.search([("account_id", "=", a.id)]) for a in (self.account_1, self.account_2)
        )
        self.assertTrue(mine and theirs)
        self.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")
        self.authenticate("pp_alice", "pp_alice")
        # Unsettled: neither listed nor served.
        with mute_logger("odoo.http"):
            self.assertEqual(self.url_open(f"/my/prepaid/statements/{mine.id}/pdf").status_code, 404)
        self.assertNotIn(
            f"/my/prepaid/statements/{mine.id}/pdf",
            self.url_open(f"/my/prepaid/accounts/{self.account_1.id}").text,
        )
        internal((mine | theirs).sudo()).write({"state": "dispatched"})
        self.assertEqual(Statement.with_user(self.alice).search([]), mine, "the rule shows her own only")
        page = self.url_open(f"/my/prepaid/accounts/{self.account_1.id}")
        self.assertIn(f"/my/prepaid/statements/{mine.id}/pdf", page.text)
        response = self.url_open(f"/my/prepaid/statements/{mine.id}/pdf")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        # (Odoo's test mode serves a report's HTML under the PDF's headers: wkhtmltopdf stays out.)
        self.assertIn(mine.name, response.text)
        for url in (
            f"/my/prepaid/statements/{theirs.id}/pdf",
            "/my/prepaid/statements/999999999/pdf",
            "/my/prepaid/statements/99999999999999999999/pdf",
        ):
            with self.subTest(url=url), mute_logger("odoo.http"):
                response = self.url_open(url)
                self.assertEqual(response.status_code, 404)
                self.assertNotIn(theirs.name, response.text)

    def test_the_account_page_compares_this_month_with_the_last(self):
        """With history in both months the page shows the change in per cent (a '%' the data loader turned
        into a broken format string made this page a 500 for every account with last month's use)."""
        self.bind(self.alice, self.account_1)
        today = fields.Date.context_today(self.account_1)
        last_month = today.replace(day=1) - timedelta(days=1)
        self.env["prepaid.consumption"].sudo().create(
            [
                {
                    "meter_id": self.meter_1.id,
                    "account_id": self.account_1.id,
                    "company_id": self.company.id,
                    "day": day,
                    "quantity": quantity,
                    "flat": quantity,
                    "amount": quantity,
                }
                for day, quantity in ((last_month, 10.0), (today, 12.0))
            ]
        )
        self.authenticate("pp_alice", "pp_alice")
        response = self.url_open(f"/my/prepaid/accounts/{self.account_1.id}")
        self.assertEqual(response.status_code, 200)
        self.assertIn("(+20%)", response.text)
        self.assertIn("o_prepaid_chart_daily", response.text)

    def test_recharge_refuses_absurd_amounts_with_a_reason(self):
        self.bind(self.alice, self.account_1)
        self.authenticate("pp_alice", "pp_alice")
        url = f"/my/prepaid/accounts/{self.account_1.id}/recharge"
        for amount in ("", "abc", "-5", "0", "nan", "inf", "1e9", "10.001", "9" * 40, "1" * 17, "5"):
            with self.subTest(amount=amount):
                response = self.url_open(url, data={"amount": amount, "csrf_token": self.csrf_token()})
                self.assertEqual(response.status_code, 400, response.text[:200])
                self.assertIn("o_prepaid_error", response.text)
        self.assertFalse(self.env["prepaid.topup"].search([("channel", "=", "portal")]), "nothing was made")
        response = self.url_open(
            url, data={"amount": "100", "csrf_token": self.csrf_token()}, allow_redirects=False
        )
        self.assertEqual(response.status_code, 303)
        topup = self.env["prepaid.topup"].search([("channel", "=", "portal")])
        self.assertEqual(topup.amount, 100.0)

    def csrf_token(self):
        response = self.url_open(f"/my/prepaid/accounts/{self.account_1.id}/recharge")
        marker = 'name="csrf_token" value="'
        start = response.text.index(marker) + len(marker)
        return response.text[start : response.text.index('"', start)]


@tagged("post_install", "-at_install")
class TestPortalRpc(PortalCommon):
    """A portal user calls every suite model over RPC (as /web/dataset/call_kw does, with hostile context
    keys): search_read returns their own accounts' records or is refused, and nothing is ever written."""

    HOSTILE = {"prepaid_internal": True, "active_test": False, "install_mode": True, "tracking_disable": True}
    OWNED_BY = {
        "prepaid.account": "id",
        "prepaid.ledger": "account_id",
        "prepaid.meter": "account_id",
        "prepaid.topup": "account_id",
        "prepaid.consumption": "account_id",
    }

    def call(self, user, model, method, args, kwargs=None):
        env = self.env(user=user, su=False, context={"lang": "en_US"})
        records = env[model]
        get_public_method(records, method)
        kwargs = dict(kwargs or {}, context=dict(self.HOSTILE, allowed_company_ids=[self.company.id]))
        return odoo.api.call_kw(records, method, args, kwargs)

    def test_search_read_shows_only_their_own_and_writes_fail(self):
        self.bind(self.alice, self.account_1)
        self.topup(self.account_1, 10.0)
        self.topup(self.account_2, 10.0)
        own = self.account_1
        leaks, writes, refused = [], [], []
        for model in sorted(name for name in self.env.registry if name.startswith("prepaid.")):
            if self.env[model]._abstract or self.env[model]._transient:
                continue
            try:
                with mute_logger("odoo.models", "odoo.models.unlink"):
                    rows = self.call(self.alice, model, "search_read", [[]], {"fields": ["display_name"]})
            except AccessError:
                rows = []
            if rows and model not in self.OWNED_BY:
                leaks.append(f"{model}: {len(rows)} rows readable")
            elif rows:
                records = self.env[model].browse([row["id"] for row in rows])
                field = self.OWNED_BY[model]
                owners = records.mapped(field) if field != "id" else records
                if owners - own:
                    leaks.append(f"{model}: reads records of {(owners - own).mapped('name')}")
            record = self.env[model].search([], limit=1)
            if record:
                savepoint = self.env.cr.savepoint(flush=False)
                try:
                    with mute_logger("odoo.models"):
                        self.call(self.alice, model, "write", [record.ids, {"display_name": "x"}])
                        self.env.flush_all()
                    writes.append(f"{model}: write accepted")
                except (AccessError, ValueError, UserError):
                    refused.append(model)
                finally:
                    savepoint.rollback()
                    savepoint.close(rollback=False)
        self.assertFalse(leaks, "\n".join(leaks))
        self.assertFalse(writes, "\n".join(writes))
        self.assertIn("prepaid.account", refused)
        # What they do read is theirs, the ledger included.
        ledger = self.call(self.alice, "prepaid.ledger", "search_read", [[]], {"fields": ["account_id"]})
        self.assertTrue(ledger)
        self.assertEqual({row["account_id"][0] for row in ledger}, {own.id})
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.call(self.alice, "prepaid.account", "write", [own.ids, {"balance": 9999.0}])
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.call(self.bob, "prepaid.account", "read", [own.ids, ["balance"]])
