from datetime import timedelta

from odoo.addons.prepaid_metering.models.prepaid_meter_reading import FACTOR_PARAM
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import T0, BillingCommon


def stamp(minutes):
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


@tagged("post_install", "-at_install")
class TestPlausibilityBeforeMoney(BillingCommon):
    """Implausible readings are charged nothing; accepted ones are charged once, from the last settled
    reading; rejected ones never. The meters are 60 A single-phase ones (13.2 kW: at most 4.5 kWh in a
    quarter-hour with the margin) and the factor is 1."""

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(FACTOR_PARAM, "1")
        self.post(self.account_1, 1000.0, "test:opening:plausibility", kind="opening")

    def at(self, minutes, total):
        return self.ingest(self.meter_1, T0 + timedelta(minutes=minutes), total)

    def key(self, start, end):
        return f"cons:{self.meter_1.id}:{stamp(start)}:{stamp(end)}"

    def amounts(self):
        return (
            self.env["prepaid.ledger"]
            .search(
                [
                    ("res_model", "=", "prepaid.meter"),
                    ("res_id", "=", self.meter_1.id),
                    ("kind", "=", "consumption"),
                ],
                order="date, id",
            )
            .mapped(lambda line: (line.amount, line.idempotency_key))
        )

    def anomaly(self):
        return self.env["prepaid.anomaly"].search(
            [("meter_id", "=", self.meter_1.id), ("state", "!=", "resolved")]
        )

    def test_a_pushed_1e15_is_charged_nothing_and_raises_an_anomaly(self):
        self.at(0, "1000")
        with mute_logger("odoo.addons.prepaid_metering.models.prepaid_meter_reading"):
            self.at(15, "1000000000000000")
        self.assertEqual(self.amounts(), [])
        self.assertEqual(self.account_1.balance, 1000.0)
        anomaly = self.anomaly()
        self.assertEqual(len(anomaly), 1)
        self.assertEqual(anomaly.evidence[0]["finding"], "out_of_range")
        self.assertTrue(anomaly.activity_ids.user_id.has_group("prepaid_base.group_prepaid_manager"))
        self.meter_1._settle()
        self.assertEqual(self.amounts(), [], "the settlement never picks a quarantined reading")

    def test_a_step_beyond_the_capacity_is_charged_once_accepted_and_only_once(self):
        self.at(0, "1000")
        self.at(15, "1100")  # 100 kWh in 15 minutes on a 13.2 kW meter
        self.assertEqual(self.amounts(), [])
        self.anomaly().action_accept()
        self.assertEqual(self.amounts(), [(-100.0, self.key(0, 15))])
        self.assertEqual(self.account_1.balance, 900.0)
        self.meter_1._settle()
        self.env["prepaid.settlement"]._settle_meters(self.meter_1.ids)
        self.assertEqual(self.amounts(), [(-100.0, self.key(0, 15))], "settling again charges nothing more")
        self.assertEqual(self.account_1.balance, 900.0)
        self.assertEqual(self.meter_1.settlement_cursor_ids.total, 1100.0)
        self.at(30, "1103")  # judged against the accepted reading
        self.assertEqual(self.amounts(), [(-100.0, self.key(0, 15)), (-3.0, self.key(15, 30))])

    def test_a_real_jump_is_charged_in_order_once_accepted(self):
        self.at(0, "1000")
        self.at(15, "1100")
        self.at(30, "1200")
        self.anomaly().action_accept()
        self.assertEqual(self.amounts(), [(-100.0, self.key(0, 15)), (-100.0, self.key(15, 30))])
        self.assertEqual(self.account_1.balance, 800.0)

    def test_accepting_an_outlier_the_meter_moved_past_charges_nothing_more(self):
        self.at(0, "1000")
        self.at(15, "1100")  # a glitch
        self.at(30, "1003")  # plausible from 1000: charged, the cursor moves past the glitch
        self.assertEqual(self.amounts(), [(-3.0, self.key(0, 30))])
        self.anomaly().action_accept()
        self.assertEqual(self.amounts(), [(-3.0, self.key(0, 30))], "the consumption across it was charged")
        self.assertEqual(self.account_1.balance, 997.0)
        self.assertEqual(self.meter_1.settlement_cursor_ids.total, 1003.0)

    def test_a_rejected_reading_stays_out_of_billing_for_good(self):
        self.at(0, "1000")
        self.at(15, "1100")
        anomaly = self.anomaly()
        anomaly.action_reject()
        self.meter_1._settle()
        self.assertEqual(self.amounts(), [])
        self.at(30, "1004")
        self.assertEqual(self.amounts(), [(-4.0, self.key(0, 30))])
        self.assertEqual(anomaly.reading_ids.state, "rejected")

    def test_normal_steps_are_never_quarantined(self):
        for minutes, total in ((0, "1000"), (15, "1001.2"), (30, "1005.7"), (45, "1005.7"), (240, "1050")):
            self.at(minutes, total)
        self.assertFalse(self.env["prepaid.anomaly"].search([("meter_id", "=", self.meter_1.id)]))
        self.assertEqual(sum(amount for amount, _key in self.amounts()), -50.0)

    def test_a_plausible_roll_over_is_not_quarantined(self):
        self.meter_1.rollover_at = "99999.99"
        self.at(0, "99999.00")
        self.at(15, "2.00")  # 3.00 kWh through zero
        self.assertEqual(self.amounts(), [(-3.0, self.key(0, 15))])
        self.at(30, "1.00")  # a fall that is no roll-over (it would be 99,999 kWh through zero)
        self.assertEqual(self.anomaly().evidence[0]["finding"], "index_fell")

    def test_a_recorded_replacement_is_judged_across_the_swap(self):
        self.at(0, "800")
        self.env["prepaid.meter.replacement"].create(
            {
                "meter_id": self.meter_1.id,
                "replaced_at": (T0 + timedelta(minutes=5)).replace(tzinfo=None),
                "old_final": 801.0,
                "new_initial": 0.0,
            }
        )
        self.at(15, "2")
        self.assertEqual(self.amounts(), [(-3.0, self.key(0, 15))])
        self.assertFalse(self.anomaly())
