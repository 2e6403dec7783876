import csv
import io
from datetime import UTC, datetime, timedelta

from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import BillingCommon

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@tagged("post_install", "-at_install")
class TestAccountOpening(BillingCommon):
    def _units(self, count):
        return self.env["prepaid.property"].create(
            [
                {"name": f"O-{i}", "code": f"O-{i}", "kind": "unit", "parent_id": self.floor.id}
                for i in range(count)
            ]
        )

    def _openings(self, units, balance=100.0):
        tenants = self.env["res.partner"].create([{"name": f"Tenant {u.name}"} for u in units])
        return self.env["prepaid.account.opening"].create(
            [
                {
                    "partner_id": tenant.id,
                    "unit_id": unit.id,
                    "opening_balance": balance,
                    "journal_id": self.cash_journal.id,
                    "tariff_id": self.tariff_flat.id,
                }
                for tenant, unit in zip(tenants, units, strict=True)
            ]
        )

    def test_open_many_credits_once_and_never_charges_temporary_use(self):
        units = self._units(10)
        meters = self.env["prepaid.meter"]
        for unit in units:
            meters |= self._create_meter(unit, f"M-{unit.name}")
        for meter in meters:
            self.ingest(meter, T0, 100)
            self.ingest(meter, T1, 150)  # 50 kWh of temporary supply before opening
        openings = self._openings(units)
        self.assertEqual(openings.meter_ids, meters)
        openings.action_ready()
        openings.action_open_accounts()
        self.assertEqual(set(openings.mapped("state")), {"opened"})
        accounts = openings.account_id
        self.assertEqual(set(accounts.mapped("state")), {"open"})
        self.assertEqual(set(accounts.mapped("balance")), {100.0})
        self.assertEqual(openings.mapped("temporary_quantity"), [0.0] * 10)
        for opening in openings:
            self.assertEqual(opening.meter_ids.account_id, opening.account_id)
            self.assertEqual(opening.unit_id.electricity_tariff_id, self.tariff_flat)
            self.assertEqual(opening.tenancy_id.state, "active")
        commands = self.env["prepaid.meter.command"].search(
            [("meter_id", "in", meters.ids), ("kind", "=", "close")]
        )
        self.assertEqual(commands.meter_id, meters)
        # Opening again (a re-click, a retried request) credits nothing more.
        openings._open()
        internal_state = openings.mapped("state")
        self.assertEqual(set(internal_state), {"opened"})
        with self.assertRaises(UserError):
            openings.action_open_accounts()
        self.assertEqual(set(accounts.mapped("balance")), {100.0})
        self.assertEqual(len(openings.topup_id), 10)
        # Only what is used after opening is charged.
        for meter in meters:
            self.ingest(meter, T2, 160)
        consumption = self.env["prepaid.ledger"].search(
            [("account_id", "in", accounts.ids), ("kind", "=", "consumption")]
        )
        self.assertEqual(sum(consumption.mapped("quantity")), 100.0)  # 10 kWh per meter
        for account in accounts:
            self.assertAlmostEqual(
                account.balance,
                100.0
                + sum(account.ledger_ids.filtered(lambda line: line.kind == "consumption").mapped("amount")),
            )
        self.assertLedgerMatchesAccounting(*accounts)

    def test_unit_with_open_account_refused(self):
        opening = self.env["prepaid.account.opening"].create(
            {"partner_id": self.tenant_1.id, "unit_id": self.unit_1.id, "opening_balance": 0.0}
        )
        opening.action_ready()
        with self.assertRaisesRegex(UserError, "already have an open account"):
            opening.action_open_accounts()

    def test_absurd_balances_refused(self):
        unit = self._units(1)
        for value in (float("nan"), -1.0, 1e12):
            with self.assertRaises(ValidationError), self.env.cr.savepoint():
                self.env["prepaid.account.opening"].create(
                    {"partner_id": self.tenant_1.id, "unit_id": unit.id, "opening_balance": value}
                )

    def test_operator_cannot_open_or_write_state(self):
        unit = self._units(1)
        opening = self._openings(unit)
        operator = self.new_operator("opening_op")
        with self.assertRaises(AccessError):
            opening.with_user(operator).action_ready()
        with self.assertRaises(AccessError):
            opening.with_user(operator).action_open_accounts()
        with self.assertRaises(AccessError):
            opening.write({"state": "opened"})

    def test_import_with_load(self):
        unit = self._units(1)
        data = io.StringIO()
        csv.writer(data).writerows(
            [
                ["partner_id", "unit_id", "opening_balance", "move_in_date", "auto_open"],
                [self.tenant_2.name, unit.name, "50", "2026-03-01", "1"],
            ]
        )
        rows = list(csv.reader(io.StringIO(data.getvalue())))
        result = self.env["prepaid.account.opening"].load(rows[0], rows[1:])
        self.assertFalse(result["messages"], result["messages"])
        opening = self.env["prepaid.account.opening"].browse(result["ids"])
        self.assertEqual(opening.unit_id, unit)
        self.assertEqual(opening.opening_balance, 50.0)
        opening.action_ready()
        self.env["prepaid.account.opening"]._cron_open_due()
        self.assertEqual(opening.state, "opened")
        self.assertEqual(opening.account_id.balance, 50.0)

    def test_temporary_supply_raises_no_unbilled_anomaly_and_ends_at_opening(self):
        unit = self._units(1)
        meter = self._create_meter(unit, "M-temp")
        action = meter.action_start_temporary_supply()
        wizard = self.env[action["res_model"]].with_context(**action["context"]).create({"mode": "kept_on"})
        wizard.action_start()
        self.assertEqual(meter.temporary_supply, "kept_on")
        # The supply started before the test's readings (they are dated in March).
        internal(meter).write({"temporary_since": T0.replace(tzinfo=None) - timedelta(hours=1)})
        self.ingest(meter, T0, 10)
        self.ingest(meter, T1, 30)
        anomalies = self.env["prepaid.anomaly"].search(
            [("meter_id", "=", meter.id), ("kind", "=", "unbilled_consumption")]
        )
        self.assertFalse(anomalies)
        opening = self._openings(unit, balance=0.0)
        opening.action_ready()
        opening.action_open_accounts()
        self.assertEqual(meter.temporary_supply, "none")
        self.assertEqual(opening.temporary_quantity, 20.0)  # 10 -> 30 during the temporary supply
        self.ingest(meter, T2, 35)
        consumption = self.env["prepaid.ledger"].search(
            [("account_id", "=", opening.account_id.id), ("kind", "=", "consumption")]
        )
        self.assertEqual(sum(consumption.mapped("quantity")), 5.0)

    def test_batch_open_accounts_over_a_floor(self):
        """Open Accounts over a floor opens its ready openings; one refused never stops the rest."""
        units = self._units(3)
        meters = self.env["prepaid.meter"]
        for unit in units:
            meters |= self._create_meter(unit, f"B-{unit.name}")
        openings = self._openings(units)
        openings.action_ready()
        # The third unit gets an open account meanwhile: its opening is refused, the others open.
        blocker = self.env["prepaid.account"].create(
            {"partner_id": self.tenant_2.id, "unit_ids": [(6, 0, units[2].ids)]}
        )
        blocker.action_open()
        batch = self.env["prepaid.batch.operation"].create(
            {"kind": "open_accounts", "property_ids": [(6, 0, self.floor.ids)]}
        )
        batch.action_run()
        self.assertEqual(openings[:2].mapped("state"), ["opened", "opened"])
        self.assertEqual(openings[2].state, "ready")
        lines = batch.line_ids
        self.assertEqual(lines.meter_id, meters)
        done = lines.filtered(lambda line: line.state == "done")
        self.assertEqual(done.meter_id, meters[:2])
        failed = lines - done
        self.assertEqual(failed.state, "failed")
        self.assertIn("already have an open account", failed.error)
        self.assertEqual(set(openings[:2].account_id.mapped("balance")), {100.0})
        batch.action_run()  # run again: nothing opened twice, nothing credited twice
        self.assertEqual(set(openings[:2].account_id.mapped("balance")), {100.0})
        self.assertEqual(len(openings[:2].account_id.ledger_ids), 2)

    def test_preset_temporary_quantity_is_cut_once_used_and_never_charged(self):
        unit = self._units(1)
        meter = self._create_meter(unit, "M-preset")
        self.ingest(meter, T0 - timedelta(hours=1), 100)
        Wizard = self.env["prepaid.temporary.supply.wizard"]
        for bad in (0.0, -3.0):
            with self.assertRaises(UserError):
                Wizard.create(
                    {"meter_ids": [(6, 0, meter.ids)], "mode": "quantity", "quantity": bad}
                ).action_start()
        with self.assertRaises(ValidationError):
            Wizard.create({"meter_ids": [(6, 0, meter.ids)], "mode": "quantity", "quantity": float("nan")})
        common = self._create_meter(self.env["prepaid.property"], "M-common")
        with self.assertRaisesRegex(UserError, "belong to no unit"):
            Wizard.create({"meter_ids": [(6, 0, common.ids)], "mode": "kept_on"}).action_start()
        Wizard.create({"meter_ids": [(6, 0, meter.ids)], "mode": "quantity", "quantity": 15.0}).action_start()
        self.assertEqual((meter.temporary_supply, meter.temporary_quantity), ("quantity", 15.0))
        # The supply started after the first reading (the test's readings are dated in March).
        internal(meter).write({"temporary_since": T0.replace(tzinfo=None) - timedelta(minutes=30)})
        Command = self.env["prepaid.meter.command"]
        self.assertEqual(
            Command.search([("meter_id", "=", meter.id), ("state", "=", "queued")]).kind, "close"
        )
        self.ingest(meter, T0, 110)
        self.assertEqual((meter.temporary_supply, meter.temporary_used), ("quantity", 10.0))
        self.ingest(meter, T1, 118)
        self.assertEqual((meter.temporary_supply, meter.temporary_used), ("used_up", 18.0))
        self.assertEqual(Command.search([("meter_id", "=", meter.id), ("state", "=", "queued")]).kind, "trip")
        self.ingest(meter, T2, 120)  # still counted, never again cut nor charged
        self.assertEqual(meter.temporary_used, 18.0)
        anomalies = self.env["prepaid.anomaly"].search(
            [("meter_id", "=", meter.id), ("kind", "=", "unbilled_consumption")]
        )
        self.assertFalse(anomalies)
        opening = self._openings(unit, balance=0.0)
        opening.action_ready()
        opening.action_open_accounts()
        self.assertEqual(opening.temporary_quantity, 20.0)  # 100 -> 120 in the temporary supply
        self.assertEqual((meter.temporary_supply, meter.temporary_used), ("none", 0.0))
        # the opening closes the supply again (the trip is superseded)
        self.assertEqual(
            Command.search([("meter_id", "=", meter.id), ("state", "=", "queued")]).kind, "close"
        )
        self.assertFalse(
            self.env["prepaid.ledger"].search(
                [("account_id", "=", opening.account_id.id), ("kind", "=", "consumption")]
            )
        )

    def test_reset_for_reuse_after_closure_moves_the_cursor_and_records_the_purchase_count(self):
        unit = self._units(1)
        meter = self._create_meter(unit, "M-reuse")
        opening = self._openings(unit, balance=0.0)
        opening.action_ready()
        opening.action_open_accounts()
        self.ingest(meter, T0, 10)
        with self.assertRaisesRegex(UserError, "refund and close"):
            meter.action_reset_for_reuse()
        internal(meter).write({"purchase_count": 7})
        opening.account_id.action_close()
        self.ingest(meter, T1, 40)  # used after closure, before re-use: nobody's
        meter.action_reset_for_reuse()
        self.assertEqual(meter.reused_purchase_count, 7)
        self.assertFalse(meter.account_id)
        self.assertTrue(meter.reused_at)
        cursor = self.env["prepaid.settlement.cursor"].search([("meter_id", "=", meter.id)])
        self.assertEqual(cursor.total, 40.0)
        self.assertIn("Reset for re-use", meter.message_ids[:1].body)
        operator = new_test_user(
            self.env, login="reuse_op", groups="prepaid_base.group_prepaid_user", company_id=self.company.id
        )
        with self.assertRaises(AccessError):
            meter.with_user(operator).action_reset_for_reuse()
