from datetime import timedelta

from odoo import fields
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_metering.tests.common import SimulatorCommon
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from prepaid_engine.types import Supply

from .common import BillingCommon


@tagged("post_install", "-at_install")
class TestBatchOperation(SimulatorCommon):
    """Batches over the simulated site: t-mb-1 units 1, 2 (live), 3 (dead) in building M, t-mb-2/1 outside."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id |= cls.env.ref("prepaid_base.group_prepaid_manager")
        m = cls.meters
        m["t-mb-1/1/1"].unit_id = cls.unit_101
        m["t-mb-1/1/2"].unit_id = cls.unit_102
        m["t-mb-1/1/3"].unit_id = cls.unit_201
        cls.live = m["t-mb-1/1/1"] | m["t-mb-1/1/2"]
        cls.dead = m["t-mb-1/1/3"]
        cls.outside = m["t-mb-2/1/1"]
        cls.Batch = cls.env["prepaid.batch.operation"]
        cls.journal = cls.env["account.journal"].search(
            [("company_id", "=", cls.company.id), ("type", "=", "cash")], limit=1
        )

    def setUp(self):
        super().setUp()
        for key in self.meters:
            self.sim.call(lambda site, key=key: site.meter(key).trip())

    def execute(self):
        with mute_logger(
            "pymodbus.logging", "pymodbus", "odoo.addons.prepaid_metering.models.prepaid_meter_command"
        ):
            return self.env["prepaid.meter.command"]._cron_execute()

    def supply(self, key):
        return self.sim.call(lambda site: site.meter(key).supply)

    def test_close_a_building_one_dead_meter_fails_and_retry_after_reviving(self):
        batch = self.Batch.create({"kind": "close", "property_ids": [(6, 0, self.building.ids)]})
        self.assertTrue(batch.name.startswith("BATCH/"))
        batch.action_run()
        self.assertEqual(batch.state, "running")
        self.assertEqual(batch.line_ids.meter_id, self.live | self.dead)
        self.assertEqual(set(batch.line_ids.mapped("state")), {"queued"})
        self.assertEqual(batch.run_by, self.env.user)
        internal(batch.line_ids.command_id).write({"max_attempts": 1})
        self.execute()
        done = batch.line_ids.filtered(lambda line: line.meter_id in self.live)
        failed = batch.line_ids - done
        self.assertEqual(set(done.mapped("state")), {"done"})
        self.assertEqual(failed.state, "failed")
        self.assertTrue(failed.error)
        self.assertEqual(batch.state, "partly_failed")
        self.assertEqual((batch.done_count, batch.failed_count, batch.progress), (2, 1, 100.0))
        self.assertEqual(self.supply("t-mb-1/1/1"), Supply.ON)
        self.assertEqual(self.supply("t-mb-1/1/2"), Supply.ON)
        self.assertEqual(self.supply("t-mb-2/1/1"), Supply.OFF)  # outside the building

        self.sim.call(lambda site: setattr(site.meter("t-mb-1/1/3"), "dead", False))
        batch.action_retry_failed()
        self.assertEqual(failed.state, "queued")
        self.execute()
        self.assertEqual(failed.state, "done")
        self.assertEqual(batch.state, "done")
        self.assertEqual(self.supply("t-mb-1/1/3"), Supply.ON)

    def test_targets_by_floor_model_level_and_domain(self):
        def targets(**vals):
            return self.Batch.create({"kind": "trip", **vals})._target_meters()

        self.assertEqual(targets(property_ids=[(6, 0, self.floor_1.ids)]), self.live)
        self.assertEqual(targets(property_ids=[(6, 0, self.unit_201.ids)]), self.dead)
        everything = self.live | self.dead | self.outside
        self.assertEqual(targets(meter_model_ids=[(6, 0, self.model_acrel.ids)]), everything)
        self.assertFalse(targets(meter_model_ids=[(6, 0, self.model_cjt.ids)]))
        self.assertEqual(targets(meter_domain=f"[('id', '=', {self.dead.id})]"), self.dead)
        self.dead.account_id.invalidate_recordset()
        level = self.dead.account_id.level
        self.assertIn(self.dead, targets(level=level))

    def test_scheduled_batch_runs_only_when_due(self):
        batch = self.Batch.create(
            {
                "kind": "close",
                "property_ids": [(6, 0, self.floor_1.ids)],
                "scheduled_at": fields.Datetime.now() + timedelta(hours=1),
            }
        )
        batch.action_schedule()
        self.assertEqual(batch.state, "scheduled")
        self.Batch._cron_run_scheduled()
        self.assertFalse(batch.line_ids)
        internal(batch).write({"scheduled_at": fields.Datetime.now() - timedelta(minutes=1)})
        self.Batch._cron_run_scheduled()
        self.assertEqual(len(batch.line_ids), 2)
        self.execute()
        self.assertEqual(batch.state, "done")

    def test_hostile(self):
        operator = new_test_user(
            self.env,
            login="batch_op",
            groups="prepaid_base.group_prepaid_user",
            company_id=self.company.id,
            company_ids=[(6, 0, self.company.ids)],
        )
        with self.assertRaises(AccessError):
            self.Batch.with_user(operator).create({"kind": "close"})
        recharge = self.Batch.create(
            {
                "kind": "recharge",
                "amount": 10.0,
                "journal_id": self.journal.id,
                "property_ids": [(6, 0, self.building.ids)],
            }
        )
        with self.assertRaises(AccessError):
            recharge.with_user(operator).action_run()
        for bad in ("nan", float("nan"), float("inf"), 1e12):
            with self.assertRaises(ValidationError):
                self.Batch.create({"kind": "recharge", "amount": bad, "journal_id": self.journal.id})
        with self.assertRaises(ValidationError):
            self.Batch.create({"kind": "recharge", "amount": -5.0, "journal_id": self.journal.id})
        with self.assertRaises(UserError):
            self.Batch.create({"kind": "recharge"}).action_run()
        with self.assertRaisesRegex(UserError, "No ready account opening"):
            self.Batch.create({"kind": "open_accounts"}).action_run()
        batch = self.Batch.create({"kind": "close", "property_ids": [(6, 0, self.floor_1.ids)]})
        batch.action_run()
        with self.assertRaises(AccessError):
            batch.write({"state": "done"})
        with self.assertRaises(AccessError):
            batch.line_ids.write({"state": "done"})
        with self.assertRaises(AccessError):
            self.env["prepaid.batch.operation.line"].create(
                {"operation_id": batch.id, "company_id": self.company.id}
            )


@tagged("post_install", "-at_install")
class TestBatchRecharge(BillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Batch = cls.env["prepaid.batch.operation"]

    def test_recharge_credits_each_account_once_across_runs_and_retry(self):
        accounts = self.account_1 | self.account_2
        before = {a.id: a.balance for a in accounts}
        batch = self.Batch.create(
            {
                "kind": "recharge",
                "property_ids": [(6, 0, self.building.ids)],
                "amount": 50.0,
                "journal_id": self.cash_journal.id,
            }
        )
        batch.action_run()
        batch.action_run()
        batch.action_retry_failed()
        self.assertEqual(batch.line_ids.account_id, accounts)
        self.assertEqual(set(batch.line_ids.mapped("state")), {"done"})
        self.assertEqual(len(batch.line_ids.topup_id), 2)
        accounts.invalidate_recordset()
        for account in accounts:
            self.assertAlmostEqual(account.balance, before[account.id] + 50.0)
        topups = self.env["prepaid.topup"].search(
            [("account_id", "in", accounts.ids), ("memo", "=", batch.name)]
        )
        self.assertEqual(len(topups), 2)

    def test_set_alarm_levels_on_a_building_holds_each_account_to_them(self):
        accounts = self.account_1 | self.account_2
        with self.assertRaisesRegex(ValidationError, "ordered"):
            self.Batch.create({"kind": "set_levels", "warn_level_1": 5.0, "warn_level_2": 10.0})
        with self.assertRaises(ValidationError):
            self.Batch.create({"kind": "set_levels", "warn_level_1": float("nan")})
        batch = self.Batch.create(
            {
                "kind": "set_levels",
                "property_ids": [(6, 0, self.building.ids)],
                "warn_level_1": 80.0,
                "warn_level_2": 40.0,
                "warn_level_3": 15.0,
                "cutoff_level": 5.0,
            }
        )
        batch.action_run()
        self.assertEqual(batch.line_ids.account_id, accounts)
        self.assertEqual(set(batch.line_ids.mapped("state")), {"done"})
        self.assertEqual(batch.state, "done")
        for account in accounts:
            self.assertEqual(
                (account.warn_level_1, account.warn_level_2, account.warn_level_3, account.cutoff_level),
                (80.0, 40.0, 15.0, 5.0),
            )
