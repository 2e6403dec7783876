from odoo.addons.prepaid_billing.tests.test_end_to_end import SimulatedMeterCase
from odoo.tests import tagged

from prepaid_engine.types import Supply

from .common import PortalCommon


@tagged("post_install", "-at_install")
class TestPortalRechargeRestoresTheSupply(SimulatedMeterCase, PortalCommon):
    """A cut-off tenant pays online: the provider's confirmation credits the ledger, the restore is queued
    urgently, and the executor closes the relay on the simulated meter; the page's status says so."""

    def test_online_payment_closes_the_relay(self):
        account, meter = self.account_1, self.meter_1
        self.bind(self.alice, account)
        self.topup(account, 10.0)
        self.execute_commands()  # the close queued when the account was first funded
        self.poll()
        self.post(account, -15.0, "pp:e2e:spent")  # consumption takes it to the cut-off
        self.assertEqual(account.level, "cutoff")
        self.execute_commands()
        self.assertEqual(self.relay(), Supply.OFF)
        self.assertTrue(account.supply_cut)

        topup = self.portal_topup(self.alice, account, 100.0)
        tx = self.transaction(topup, "done")
        tx._post_process()
        self.assertEqual(topup.state, "done")
        self.assertEqual(account.balance, 100.0)
        self.assertFalse(account.supply_cut)
        close = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", meter.id), ("kind", "=", "close"), ("state", "=", "queued")]
        )
        self.assertTrue(close.urgent, "the restore is queued urgently (the executor is woken)")
        self.execute_commands()
        self.assertEqual(close.state, "done")
        self.assertEqual(self.relay(), Supply.ON, "the simulated meter's relay is closed")
        self.assertEqual(meter.supply, "on")
        self.assertLedgerMatchesAccounting(account)
