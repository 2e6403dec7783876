from datetime import timedelta
from decimal import Decimal

from odoo.addons.prepaid_base.models.prepaid_account import COPY_ABOVE
from odoo.tests import tagged
from odoo.tools import SQL, mute_logger

from .common import T0, BillingCommon


@tagged("post_install", "-at_install")
class TestSettlement(BillingCommon):
    def consumption_lines(self, meter):
        return self.env["prepaid.ledger"].search(
            [("res_model", "=", "prepaid.meter"), ("res_id", "=", meter.id), ("kind", "=", "consumption")],
            order="date, id",
        )

    def setUp(self):
        super().setUp()
        self.post(self.account_1, 100.0, "test:opening:1", kind="opening")

    def test_first_reading_is_the_baseline_and_the_next_is_charged(self):
        self.ingest(self.meter_1, T0, "1000.00")
        self.assertFalse(self.consumption_lines(self.meter_1))
        self.assertEqual(self.account_1.balance, 100.0)
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "1012.50")
        line = self.consumption_lines(self.meter_1)
        self.assertRecordValues(
            line,
            [
                {
                    "amount": -12.5,
                    "balance_after": 87.5,
                    "utility": "electricity",
                    "idempotency_key": f"cons:{self.meter_1.id}:2026-03-02T08:00:00Z:2026-03-02T08:15:00Z",
                }
            ],
        )
        self.assertEqual(self.account_1.balance, 87.5)
        self.assertEqual(line.create_uid, self.env.user, "the bulk posting records who settled")
        self.assertEqual(line.create_date, self.env.cr.now())
        self.assertEqual(line.partner_id, self.account_1.partner_id)
        cursor = self.meter_1.settlement_cursor_ids
        self.assertEqual(cursor.read_at, (T0 + timedelta(minutes=15)).replace(tzinfo=None))
        self.assertEqual(cursor.total, 1012.5)
        self.assertEqual(cursor.cycle_quantity, 12.5)
        self.assertEqual(cursor.cycle_amount, 12.5)
        self.assertEqual(self.meter_1.cycle_amount, 12.5)

    def test_settling_twice_deducts_once(self):
        self.ingest(self.meter_1, T0, "1000")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "1003.333")
        self.ingest(self.meter_1, T0 + timedelta(minutes=30), "1006.667")
        balance = self.account_1.balance
        self.assertEqual(balance, 100.0 - 6.67)
        stats = self.meter_1._settle()
        self.assertEqual(stats["lines"], 0)
        # Even a cursor moved back (a crash, a restore) books nothing twice: the ledger keys already exist.
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "UPDATE prepaid_settlement_cursor SET read_at = %s, total = 1000, cycle_start = NULL "
                "WHERE meter_id = %s",
                T0.replace(tzinfo=None),
                self.meter_1.id,
            )
        )
        self.env.invalidate_all()
        stats = self.meter_1._settle()
        self.assertEqual(stats["readings"], 2)
        self.assertEqual(stats["lines"], 0)
        self.assertEqual(self.account_1.balance, balance)
        self.assertEqual(len(self.consumption_lines(self.meter_1)), 2)
        self.assertAlmostEqual(float(self.ledger_sum(self.account_1)), self.account_1.balance, places=2)

    def test_rounded_charges_telescope_over_many_readings(self):
        # 0.333 kWh per reading at 1.00: each rounds to 0.33 alone, but the cycle owes round(3.33) = 3.33.
        self.ingest(self.meter_1, T0, "0")
        for step in range(1, 11):
            self.ingest(self.meter_1, T0 + timedelta(minutes=15 * step), str(Decimal("0.333") * step))
        self.assertAlmostEqual(sum(self.consumption_lines(self.meter_1).mapped("amount")), -3.33, places=2)
        self.assertAlmostEqual(self.account_1.balance, 96.67, places=2)

    def test_one_query_settles_a_batch_of_meters_and_readings(self):
        self.ingest(self.meter_1, T0, "10")
        self.ingest(self.meter_2, T0, "20")
        readings = self.env["prepaid.meter.reading"]
        self.env.flush_all()
        from prepaid_engine.types import Reading

        batch = [
            Reading(str(meter.id), T0 + timedelta(minutes=15 * step), total=Decimal(base + step))
            for step in (1, 2, 3)
            for meter, base in ((self.meter_1, 10), (self.meter_2, 20))
        ]
        new_ids = readings._ingest(batch)
        self.assertEqual(len(new_ids), 6)
        self.assertEqual(len(self.consumption_lines(self.meter_1)), 3)
        self.assertEqual(len(self.consumption_lines(self.meter_2)), 3)
        self.assertEqual(self.account_2.balance, -3.0)

    def _stored(self, record, fname):
        """The value in the database (numeric columns as text: exact)."""
        self.env.flush_all()
        return self.env.execute_query(
            SQL(
                "SELECT %s::text FROM %s WHERE id = %s",
                SQL.identifier(fname),
                SQL.identifier(record._table),
                record.id,
            )
        )[0][0]

    def test_the_level_a_bulk_posting_stores_is_the_account_s_own(self):
        """A settlement batch (more lines than the posting INSERTs, so COPYed) stores each balance's level
        in the same statement: the engine's rule, as ``_get_level`` gives it for one account, around every
        threshold."""
        account = self.account_1
        account.write(
            {
                "warn_level_1": 50.0,
                "warn_level_2": 20.0,
                "warn_level_3": 10.0,
                "cutoff_level": 2.5,
                "overdraft_limit": 5.0,
            }
        )
        Account = self.env["prepaid.account"]
        checked = set()
        step = 0
        for threshold in ("50", "20", "10", "-2.5"):
            for offset in ("-0.01", "0", "0.01"):
                target = Decimal(threshold) + Decimal(offset)
                self.env.flush_all()
                current = Decimal(self._stored(account, "balance"))
                # Many lines that sum to the move (the last one carries the rest), so the bulk path runs.
                rows = [
                    {
                        "account_id": account.id,
                        "kind": "adjustment",
                        "amount": Decimal("0.01") if i % 2 else Decimal("-0.01"),
                        "idempotency_key": f"lvl:{step}:{i}",
                    }
                    for i in range(COPY_ABOVE + 3)  # pairs that cancel out, then the move
                ]
                rows[-1]["amount"] = target - current
                step += 1
                if not rows[-1]["amount"]:
                    rows.pop()
                Account._post_ledger(rows, count_only=True)
                stored = self._stored(account, "level")
                balance = Decimal(self._stored(account, "balance"))
                self.assertEqual(balance, target)
                self.assertEqual(stored, account._get_level(self._stored(account, "balance")), target)
                checked.add(stored)
        self.assertEqual(checked, {"normal", "warning_1", "warning_2", "warning_3", "cutoff"})

    @mute_logger("odoo.addons.prepaid_billing.models.prepaid_settlement")
    def test_a_falling_index_waits_for_a_manager_and_once_accepted_charges_nothing_for_the_fall(self):
        self.ingest(self.meter_1, T0, "500")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "20")
        self.ingest(self.meter_1, T0 + timedelta(minutes=30), "25")  # still below the last accepted 500
        self.assertFalse(self.consumption_lines(self.meter_1))
        self.assertEqual(self.account_1.balance, 100.0)
        anomaly = self.env["prepaid.anomaly"].search([("meter_id", "=", self.meter_1.id)])
        self.assertEqual(len(anomaly), 1, "one anomaly collects the meter's quarantined readings")
        self.assertEqual(sorted(anomaly.reading_ids.mapped("total")), [20.0, 25.0])
        self.assertEqual([item["finding"] for item in anomaly.evidence], ["index_fell", "index_fell"])
        self.assertTrue(anomaly.activity_ids.user_id.has_group("prepaid_base.group_prepaid_manager"))
        # Accepted (the meter was reset): the fall charges nothing and asks a manager, as the settlement
        # reads it; the lower reading is the new baseline and what comes next is charged from it.
        anomaly.action_accept()
        self.assertEqual(self.consumption_lines(self.meter_1).mapped("amount"), [-5.0])
        self.assertIn("decreased", self.meter_1.settlement_error)
        activity = self.meter_1.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertTrue(activity.user_id.has_group("prepaid_base.group_prepaid_manager"))
        self.ingest(self.meter_1, T0 + timedelta(minutes=45), "26")
        self.assertEqual(self.consumption_lines(self.meter_1).mapped("amount"), [-5.0, -1.0])
        self.assertFalse(self.meter_1.settlement_error)

    def test_a_register_roll_over_is_charged_across_zero(self):
        self.meter_1.rollover_at = "99999.99"
        self.ingest(self.meter_1, T0, "99990.00")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "5.00")
        self.assertEqual(self.consumption_lines(self.meter_1).mapped("amount"), [-15.0])

    def test_a_recorded_replacement_charges_both_meters(self):
        self.ingest(self.meter_1, T0, "800")
        self.env["prepaid.meter.replacement"].create(
            {
                "meter_id": self.meter_1.id,
                "replaced_at": (T0 + timedelta(minutes=5)).replace(tzinfo=None),
                "old_final": 803.0,
                "new_initial": 0.0,
            }
        )
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "2")
        self.assertEqual(self.consumption_lines(self.meter_1).mapped("amount"), [-5.0])

    def test_meter_side_billing_is_not_deducted_by_the_platform(self):
        self.meter_1.billing_mode = "meter"
        self.ingest(self.meter_1, T0, "100")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "130")
        self.assertFalse(self.consumption_lines(self.meter_1))
        self.assertEqual(self.account_1.balance, 100.0)
        cursor = self.meter_1.settlement_cursor_ids
        self.assertEqual(cursor.unbilled_quantity, 30.0)
        self.assertEqual(cursor.total, 130.0)

    @mute_logger("odoo.addons.prepaid_billing.models.prepaid_settlement")
    def test_a_meter_without_tariff_keeps_its_readings_until_one_is_set(self):
        self.building.electricity_tariff_id = False
        self.ingest(self.meter_1, T0, "100")
        self.ingest(self.meter_1, T0 + timedelta(minutes=15), "104")
        self.assertFalse(self.consumption_lines(self.meter_1))
        self.assertEqual(self.meter_1.settlement_error, "No tariff applies to this meter.")
        self.assertEqual(self.env["prepaid.settlement"]._get_meter_ids_to_settle(), [])
        self.meter_1.tariff_id = self.tariff_flat
        self.meter_1._settle()
        self.assertEqual(self.consumption_lines(self.meter_1).mapped("amount"), [-4.0])

    def test_tiers_accumulate_over_the_cycle_and_restart_with_the_next(self):
        water = self._create_meter(self.unit_1, "W-101", self.model_water, address="00000000000101")
        start = T0.replace(day=28, month=2, hour=0)  # 28 Feb 2026 08:00 Shanghai; the cycle ends 1 Mar 00:00
        self.ingest(water, start, "0")
        self.ingest(water, start + timedelta(hours=6), "8")  # 8 m3 at 3.00
        self.ingest(water, start + timedelta(hours=12), "12")  # 2 at 3.00 + 2 at 5.00 (tier 2 from 10)
        lines = self.consumption_lines(water)
        self.assertEqual(lines.mapped("amount"), [-24.0, -16.0])
        # 28 Feb 12:00 UTC -> 2 Mar 12:00 UTC crosses the cycle start (1 Mar 00:00 Shanghai =
        # 28 Feb 16:00 UTC): 48 h of which the first 4 h are in February: 1 m3 at tier 2, then 11 m3
        # from a fresh cycle (10 at tier 1, 1 at tier 2).
        self.ingest(water, start + timedelta(hours=60), "24")
        lines = self.consumption_lines(water)
        self.assertEqual(lines[2:].mapped("amount"), [-5.0, -35.0])
        self.assertAlmostEqual(water.settlement_cursor_ids.cycle_quantity, 11.0, places=9)

    def test_settlement_cron_settles_what_ingestion_left(self):
        self.ingest(self.meter_1, T0, "100")
        self._store_unsettled(self.meter_1, T0 + timedelta(minutes=15), 107)
        self.assertIn(self.meter_1.id, self.env["prepaid.settlement"]._get_meter_ids_to_settle())
        self.env["prepaid.meter"]._cron_settle()
        self.assertEqual(self.consumption_lines(self.meter_1).mapped("amount"), [-7.0])
        self.assertNotIn(self.meter_1.id, self.env["prepaid.settlement"]._get_meter_ids_to_settle())

    def test_settlement_cron_takes_a_batch_and_counts_the_rest(self):
        Settlement = self.env["prepaid.settlement"]
        self.ingest(self.meter_1, T0, "100")
        self._store_unsettled(self.meter_1, T0 + timedelta(minutes=15), 107)
        left = Settlement._get_meter_ids_to_settle()
        self.assertEqual(Settlement._count_meters_to_settle(), len(left))
        self.assertEqual(self.env["prepaid.meter"]._cron_settle(batch=1), 1)
        self.assertEqual(Settlement._get_meter_ids_to_settle(), left[1:])
        self.assertEqual(Settlement._count_meters_to_settle(), len(left) - 1)

    def _store_unsettled(self, meter, at, total):
        """A reading stored without settlement (as if another transaction held the account meanwhile)."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "INSERT INTO prepaid_meter_reading (meter_id, read_at, total, source, company_id) "
                "VALUES (%s, %s, %s, 'poll', %s)",
                meter.id,
                at.replace(tzinfo=None),
                total,
                self.company.id,
            )
        )
        self.env.cr.execute(
            SQL(
                "UPDATE prepaid_meter SET last_reading_at = %s WHERE id = %s",
                at.replace(tzinfo=None),
                meter.id,
            )
        )
        self.env.invalidate_all()

    def test_a_building_that_never_closed_a_cycle_only_learns_where_this_one_started(self):
        self.ingest(self.meter_1, T0, "100")
        self._store_unsettled(self.meter_1, T0 + timedelta(hours=1), 110)
        self.assertFalse(self.building.settlement_closed_at)
        self.env["prepaid.property"]._cron_close_cycles()
        self.assertEqual(
            self.building.settlement_closed_at,
            self.building._prepaid_current_cycle_start().replace(tzinfo=None),
        )
        self.assertFalse(self.consumption_lines(self.meter_1), "nothing settled: the next poll does it")

    def test_closing_a_cycle_settles_the_buildings_meters_first(self):
        self.ingest(self.meter_1, T0, "100")
        self._store_unsettled(self.meter_1, T0 + timedelta(hours=1), 110)
        # The building closed its previous cycle a month ago.
        self.building.settlement_closed_at = self.building._prepaid_current_cycle_start().replace(
            tzinfo=None
        ) - timedelta(days=31)
        self.env["prepaid.property"]._cron_close_cycles()
        self.assertEqual(self.consumption_lines(self.meter_1).mapped("amount"), [-10.0])
        self.assertEqual(
            self.building.settlement_closed_at,
            self.building._prepaid_current_cycle_start().replace(tzinfo=None),
        )
        # Closed for this cycle: the next run has nothing to do for this building.
        self._store_unsettled(self.meter_1, T0 + timedelta(hours=2), 120)
        self.env["prepaid.property"]._cron_close_cycles()
        self.assertEqual(self.consumption_lines(self.meter_1).mapped("amount"), [-10.0])
