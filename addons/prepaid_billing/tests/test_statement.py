from datetime import UTC, datetime, timedelta

from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from .common import T0, BillingCommon

# The building's March cycle in Asia/Shanghai: 1 March 00:00 local to 1 April 00:00 local.
MARCH_START = datetime(2026, 2, 28, 16, 0)
MARCH_END = datetime(2026, 3, 31, 16, 0)
IN_MARCH = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
IN_APRIL = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)
REPORT = "prepaid_billing.action_report_prepaid_statement"


@tagged("post_install", "-at_install")
class TestStatement(BillingCommon):
    """Statements: one per account and cycle, from the ledger through the engine, frozen once settled."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Statement = cls.env["prepaid.statement"]
        # Before the cycle: an opening balance and a top-up in February.
        cls.post(cls, cls.account_1, 100.0, "st:opening", kind="opening", date=datetime(2026, 2, 10))
        cls.post(cls, cls.account_1, 50.0, "st:feb-topup", kind="topup", date=datetime(2026, 2, 20))
        # In March: electricity read and settled (flat 1.00/kWh; band registers), a top-up, a fee, an
        # apportioned share, a refund, a reversal and an adjustment.
        cls.ingest(cls, cls.meter_1, T0, "10", sharp="1", peak="2", flat="3", valley="4")
        cls.ingest(
            cls, cls.meter_1, T0 + timedelta(minutes=15), "13", sharp="1", peak="3", flat="4", valley="5"
        )
        cls.ingest(
            cls, cls.meter_1, T0 + timedelta(minutes=30), "17", sharp="1", peak="4", flat="6", valley="6"
        )
        march = datetime(2026, 3, 10)
        cls.post(cls, cls.account_1, 30.0, "st:mar-topup", kind="topup", date=march)
        cls.post(cls, cls.account_1, -12.5, "st:fee", kind="fee", date=march)
        cls.post(cls, cls.account_1, -3.25, "st:share", kind="apportionment", date=march)
        cls.post(cls, cls.account_1, -5.0, "st:refund", kind="refund", date=march)
        cls.post(cls, cls.account_1, -1.0, "st:reversal", kind="reversal", date=march)
        cls.post(cls, cls.account_1, 0.75, "st:adjust", kind="adjustment", date=march)
        cls.building.sudo().settlement_closed_at = MARCH_START

    def setUp(self):
        super().setUp()
        # Render real PDFs (Odoo's tests render reports as HTML unless asked).
        self.env = self.env(context=dict(self.env.context, force_report_rendering=True))
        # wkhtmltopdf would ask this very server for the styles while the test holds it: it gets a refused
        # connection at once instead (the PDF renders unstyled).
        self.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")
        self.Statement = self.env["prepaid.statement"]

    def generate(self, now):
        return self.Statement._generate_all(now=now)

    def statement_of(self, account, start=MARCH_START):
        return self.Statement.search([("account_id", "=", account.id), ("cycle_start", "=", start)])

    def march(self):
        self.generate(IN_MARCH)
        st = self.statement_of(self.account_1)
        self.assertEqual(len(st), 1)
        return st

    def settle_march(self):
        st = self.march()
        self.building.sudo().settlement_closed_at = MARCH_END
        self.generate(IN_APRIL)
        self.assertEqual(st.state, "settled")
        return st

    # ------------------------------------------------------------------ figures

    def test_opening_and_closing_equal_the_ledger_and_the_engine_check_holds(self):
        st = self.march()
        before = self.env["prepaid.ledger"].search(
            [("account_id", "=", self.account_1.id), ("date", "<", MARCH_START)], order="id desc", limit=1
        )
        self.assertEqual(st.opening_balance, before.balance_after)
        self.assertEqual(st.opening_balance, 150.0)
        self.assertEqual(st.closing_balance, self.account_1.balance)
        moved = sum(line.amount for line in st.line_ids if not line.band)
        self.assertAlmostEqual(st.opening_balance + moved, st.closing_balance, places=2)
        self.assertEqual((st.cycle_start, st.cycle_end), (MARCH_START, MARCH_END))
        self.assertEqual((str(st.date_from), str(st.date_to)), ("2026-03-01", "2026-03-31"))
        self.assertEqual(st.building_id, self.building)
        self.assertEqual(st.partner_id, self.tenant_1)
        self.assertEqual(st.state, "unsettled")

    def test_every_kind_lands_in_its_section(self):
        st = self.march()
        self.assertEqual(st.topup_amount, 30.0)
        self.assertEqual(st.fee_amount, -12.5)
        self.assertEqual(st.apportionment_amount, -3.25)
        self.assertEqual(st.refund_amount, -5.0)
        self.assertEqual(st.reversal_amount, -1.0)
        self.assertEqual(st.adjustment_amount, 0.75)
        self.assertEqual(st.electricity_quantity, 7.0)
        self.assertEqual(st.electricity_amount, -7.0)
        self.assertEqual(st.consumption_amount, -7.0)
        self.assertEqual(st.water_quantity, 0.0)
        self.assertEqual(st.credits, 30.75)
        self.assertEqual(st.debits, -28.75)
        # Each non-consumption row is its ledger line; the consumption row sums the utility's lines.
        fee_row = st.line_ids.filtered(lambda line: line.kind == "fee")
        self.assertEqual(fee_row.ledger_id.idempotency_key, "st:fee")
        consumption = st.line_ids.filtered(lambda line: line.kind == "consumption" and not line.band)
        self.assertEqual(consumption.utility, "electricity")
        self.assertEqual(consumption.price, 1.0)
        ledger = self.env["prepaid.ledger"].search(consumption.action_view_ledger()["domain"])
        self.assertEqual(len(ledger), consumption.ledger_count)
        self.assertEqual(sum(ledger.mapped("amount")), consumption.amount)
        self.assertEqual(set(ledger.mapped("kind")), {"consumption"})
        whole = self.env["prepaid.ledger"].search(st.action_view_ledger()["domain"])
        self.assertEqual(len(whole), st.ledger_count)
        self.assertNotIn("st:feb-topup", whole.mapped("idempotency_key"))

    def test_band_quantities_come_from_the_daily_facts(self):
        st = self.march()
        facts = self.env["prepaid.consumption"].search([("account_id", "=", self.account_1.id)])
        bands = {line.band: line.quantity for line in st.line_ids if line.band}
        for band in ("sharp", "peak", "flat", "valley"):
            self.assertAlmostEqual(bands.get(band, 0.0), sum(facts.mapped(band)), places=3, msg=band)
        self.assertTrue(any(bands.values()), bands)

    # ------------------------------------------------------------------ states and freezing

    def test_running_the_cron_twice_creates_and_changes_nothing(self):
        self.generate(IN_MARCH)
        mine = [("account_id", "in", (self.account_1 | self.account_2).ids)]
        count = self.Statement.search_count(mine)
        lines = self.env["prepaid.statement.line"].search([]).ids
        self.assertEqual(self.Statement._generate_all(now=IN_MARCH), 0)
        self.assertEqual(self.Statement.search_count(mine), count)
        self.assertEqual(self.env["prepaid.statement.line"].search([]).ids, lines)
        self.assertEqual(count, 2)  # both accounts

    def queries_to_generate(self, now):
        self.env.flush_all()
        before = self.env.cr.sql_log_count
        self.generate(now)
        self.env.flush_all()
        return self.env.cr.sql_log_count - before

    def test_generation_is_set_based_not_per_account(self):
        """Twenty more accounts (each with lines) cost a few more queries, not twenty times more."""
        savepoint = self.env.cr.savepoint()
        base = self.queries_to_generate(IN_MARCH)
        savepoint.rollback()
        self.env.invalidate_all()
        partners = self.env["res.partner"].create([{"name": f"Bulk tenant {i}"} for i in range(20)])
        units = self.env["prepaid.property"].create(
            [
                {"name": f"B-2{i:02d}", "code": f"B-2{i:02d}", "kind": "unit", "parent_id": self.floor.id}
                for i in range(20)
            ]
        )
        accounts = self.env["prepaid.account"].create(
            [{"partner_id": p.id, "unit_ids": [(6, 0, u.ids)]} for p, u in zip(partners, units, strict=True)]
        )
        accounts.action_open()
        self.env["prepaid.account"]._post_ledger(
            [
                {
                    "account_id": a.id,
                    "kind": kind,
                    "amount": amount,
                    "idempotency_key": f"bulk:{a.id}:{kind}",
                    "date": datetime(2026, 3, 5),
                }
                for a in accounts
                for kind, amount in (("topup", 10.0), ("fee", -2.0))
            ]
        )
        more = self.queries_to_generate(IN_MARCH)
        self.assertEqual(self.Statement.search_count([("account_id", "in", accounts.ids)]), 20)
        self.assertLess(more - base, 20, f"{base} queries for the fixture, {more} with 20 more accounts")

    def test_an_unsettled_statement_is_refreshed_with_new_lines(self):
        st = self.march()
        self.post(self.account_1, 20.0, "st:topup-2", kind="topup", date=datetime(2026, 3, 21))
        self.generate(IN_MARCH + timedelta(days=1))
        self.assertEqual(st.topup_amount, 50.0)
        self.assertEqual(st.closing_balance, self.account_1.balance)

    def test_the_cycle_is_settled_only_once_the_readings_are_settled_to_its_end(self):
        st = self.march()
        self.generate(IN_APRIL)  # the building's March cycle is not closed yet
        self.assertEqual(st.state, "unsettled")
        self.assertFalse(self.statement_of(self.account_1, MARCH_END))
        self.building.sudo().settlement_closed_at = MARCH_END
        self.generate(IN_APRIL)
        self.assertEqual(st.state, "settled")
        april = self.statement_of(self.account_1, MARCH_END)
        self.assertEqual(april.state, "unsettled")
        self.assertEqual(april.opening_balance, st.closing_balance)

    def test_a_late_line_after_settlement_goes_to_the_next_statement(self):
        st = self.settle_march()
        frozen = (st.closing_balance, st.fee_amount, st.line_ids.ids)
        self.post(self.account_1, -4.0, "st:late-fee", kind="fee", date=datetime(2026, 3, 30))
        self.post(self.account_1, 7.0, "st:april-topup", kind="topup", date=datetime(2026, 4, 3))
        self.generate(IN_APRIL + timedelta(days=2))
        self.assertEqual((st.closing_balance, st.fee_amount, st.line_ids.ids), frozen)
        april = self.statement_of(self.account_1, MARCH_END)
        self.assertEqual(april.fee_amount, -4.0)
        self.assertEqual(april.topup_amount, 7.0)
        self.assertEqual(april.opening_balance, st.closing_balance)
        self.assertEqual(april.closing_balance, self.account_1.balance)
        self.assertIn(
            "st:late-fee", self.env["prepaid.ledger"].search(april._ledger_domain()).mapped("idempotency_key")
        )
        self.assertNotIn(
            "st:late-fee", self.env["prepaid.ledger"].search(st._ledger_domain()).mapped("idempotency_key")
        )

    def test_a_balance_that_is_not_the_sum_of_the_ledger_writes_no_statement(self):
        self.env.cr.execute(
            "UPDATE prepaid_account SET balance = balance + 1 WHERE id = %s", [self.account_1.id]
        )
        self.account_1.invalidate_recordset()
        with mute_logger("odoo.addons.prepaid_billing.models.prepaid_statement"):
            self.generate(IN_MARCH)
        st = self.statement_of(self.account_1)
        self.assertFalse(st.line_ids)
        self.assertIn("is not the opening balance plus the lines", st.check_error)
        self.assertEqual(st.closing_balance, 0.0)
        self.assertTrue(self.statement_of(self.account_2))

    # ------------------------------------------------------------------ dispatch and PDF

    def test_dispatch_sends_one_mail_with_the_pdf_and_only_once(self):
        st = self.settle_march()
        other = self.statement_of(self.account_2)
        Mail = self.env["mail.mail"]
        before = Mail.search([]).ids
        (st | other).action_dispatch()
        (st | other).action_dispatch()
        mails = Mail.search(
            [("id", "not in", before), ("model", "=", "prepaid.statement"), ("res_id", "=", st.id)]
        )
        self.assertEqual(len(mails), 1)
        self.assertEqual(mails.recipient_ids, self.tenant_1)
        self.assertEqual(len(mails.attachment_ids), 1)
        self.assertTrue(mails.attachment_ids.raw.startswith(b"%PDF"))
        self.assertEqual(st.state, "dispatched")
        self.assertEqual(other.state, "dispatched")

    def test_an_unsettled_statement_cannot_be_dispatched(self):
        st = self.march()
        with self.assertRaises(UserError):
            st.action_dispatch()

    def test_the_pdf_renders_in_english_and_chinese(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["prepaid_billing"], ["zh_CN"], overwrite=True)
        st = self.march()
        for lang, word in (("en_US", "Closing balance"), ("zh_CN", "期末余额")):
            with self.subTest(lang=lang):
                self.tenant_1.lang = lang
                html, _kind = self.env["ir.actions.report"]._render_qweb_html(REPORT, st.ids)
                self.assertIn(word, html.decode())
                pdf, kind = self.env["ir.actions.report"]._render_qweb_pdf(REPORT, st.ids)
                self.assertEqual(kind, "pdf")
                self.assertTrue(pdf.startswith(b"%PDF"))

    # ------------------------------------------------------------------ access

    def test_statements_refuse_edits_creation_and_deletion_through_rpc(self):
        st = self.march()
        operator = self.new_operator("st_operator")
        manager = new_test_user(self.env, login="st_manager", groups="prepaid_base.group_prepaid_manager")
        for user in (operator, manager):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    st.with_user(user).write({"closing_balance": 1000.0})
                with self.assertRaises(AccessError):
                    st.line_ids[:1].with_user(user).write({"amount": 1000.0})
                with self.assertRaises(AccessError):
                    self.Statement.with_user(user).create(
                        {
                            "name": "x",
                            "account_id": self.account_1.id,
                            "company_id": self.company.id,
                            "cycle_start": MARCH_END,
                            "cycle_end": MARCH_END,
                        }
                    )
                with self.assertRaises(AccessError):
                    st.with_user(user).unlink()
        with self.assertRaises(AccessError):
            st.with_user(operator).action_dispatch()
        # The internal door still opens for the suite's own code.
        internal(st.sudo()).write({"refreshed_at": datetime(2026, 3, 21)})
        self.assertEqual(st.refreshed_at, datetime(2026, 3, 21))
