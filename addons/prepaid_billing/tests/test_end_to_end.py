from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest.mock import patch

from odoo.addons.sms.tests.common import SMSCase
from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_engine.poller import Poller
from prepaid_engine.simulator import BusConfig, GatewayConfig, MeterConfig, SimClock, SiteConfig, SiteThread
from prepaid_engine.types import Protocol, Supply, Transport, Utility

from .common import BillingCommon

SIM_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SIM_KEY = "e2e-mb/1/1"


class SimulatedMeterCase(BillingCommon):
    """Billing's company with meter 1 behind a Modbus-TCP gateway of the simulator running in the test
    process (frozen simulated clock): poll it, run the command executor and read the relay's truth."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        config = SiteConfig(
            name="billing-e2e",
            gateways=(
                GatewayConfig(
                    key="e2e-mb",
                    transport=Transport.MODBUS_TCP,
                    buses=(
                        BusConfig(
                            "1",
                            0,
                            meters=(
                                MeterConfig(
                                    "1",
                                    "acrel_ddsy1352",
                                    Protocol.MODBUS,
                                    Utility.ELECTRICITY,
                                    billing=False,
                                    total=Decimal("1000.00"),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            instant=True,
            latency=0.0,
        )
        cls.sim = SiteThread(config, clock=SimClock(SIM_START, frozen=True))
        site_map = cls.sim.start()
        cls.addClassCleanup(cls.sim.stop)
        cls.env["prepaid.gateway"].search([]).active = False
        port = site_map.gateways[0].buses[0].port
        cls.gateway = cls.env["prepaid.gateway"].create(
            {
                "name": "E2E gateway",
                "code": "e2e-mb",
                "host": "127.0.0.1",
                "transport": "modbus_tcp",
                "property_id": cls.building.id,
                "timeout": 0.5,
                "retries": 0,
                "connect_timeout": 1.0,
                "bus_ids": [(0, 0, {"name": "1", "port": port})],
            }
        )
        cls.meter_1.write({"bus_id": cls.gateway.bus_ids.id, "address": "1", "gateway_id": cls.gateway.id})

    def setUp(self):
        super().setUp()
        self.now = SIM_START
        master_key = self.env["prepaid.gateway"]._get_master_key()

        def poller(gateway_model, trace=False):
            return Poller(master_key=master_key, trace=trace, clock=lambda: self.now)

        patcher = patch.object(type(self.env["prepaid.gateway"]), "_get_poller", poller)
        patcher.start()
        self.addCleanup(patcher.stop)

    def meter_consumes(self, kwh):
        """The tenant uses ``kwh`` on the simulated meter; 15 minutes pass."""
        self.now += timedelta(minutes=15)

        def use(site):
            meter = site.meter(SIM_KEY)
            meter.set_total(meter.total + Decimal(str(kwh)))
            return meter.total

        return self.sim.call(use)

    def poll(self):
        with mute_logger("pymodbus.logging", "pymodbus"):
            return self.gateway._poll()

    def execute_commands(self):
        with mute_logger("pymodbus.logging", "pymodbus"):
            return self.env["prepaid.meter.command"]._cron_execute()

    def relay(self):
        return self.sim.call(lambda site: site.meter(SIM_KEY).supply)


@tagged("post_install", "-at_install")
class TestEndToEnd(SimulatedMeterCase, SMSCase):
    """The whole loop against the simulator running in the test process: consumption on the meter -> poll
    -> settlement -> the balance falls -> each alert once -> trip -> relay open on the simulator -> cashier
    top-up -> ledger credit and balanced entries -> close -> relay closed."""

    def test_consumption_to_cutoff_and_back(self):
        account, meter = self.account_1, self.meter_1
        self.topup(account, 60.0)
        self.assertEqual(account.balance, 60.0)
        self.execute_commands()  # the close queued when the new account was first funded
        self.assertEqual(self.relay(), Supply.ON)
        result = self.poll()  # baseline
        self.assertEqual(len(result.readings), 1)
        self.assertEqual(meter.last_total, 1000.0)
        self.assertEqual(meter.settled_until, SIM_START.replace(tzinfo=None))

        with self.mockSMSGateway():
            for kwh, balance, level in (
                (8, 52.0, "normal"),
                (4.5, 47.5, "warning_1"),
                (30, 17.5, "warning_2"),
                (10, 7.5, "warning_3"),
                (7.5, 0.0, "cutoff"),
            ):
                self.meter_consumes(kwh)
                self.poll()
                self.assertEqual(account.balance, balance)
                self.assertEqual(account.level, level)
        sms = self.env["sms.sms"].search([("partner_id", "=", self.tenant_1.id)], order="id")
        self.assertEqual(len(sms), 4, "one SMS per level reached: warning 1, 2, 3 and the cut-off")
        self.assertEqual(len(self._new_sms), 4)

        trip = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", meter.id), ("kind", "=", "trip"), ("state", "=", "queued")]
        )
        self.assertEqual(trip.reason, "automatic")
        self.assertEqual(self.relay(), Supply.ON)
        self.execute_commands()
        self.assertEqual(trip.state, "done")
        self.assertEqual(self.relay(), Supply.OFF)
        self.assertEqual(meter.supply, "off")

        topup = self.topup(account, 100.0)
        self.assertEqual(topup.ledger_id.amount, 100.0)
        self.assertEqual(account.balance, 100.0)
        self.assertTrue(topup.invoice_id.line_ids)
        for move in topup.invoice_id | topup.payment_id.move_id:
            self.assertEqual(move.state, "posted")
            self.assertAlmostEqual(sum(move.line_ids.mapped("debit")), sum(move.line_ids.mapped("credit")), 2)
        close = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", meter.id), ("kind", "=", "close"), ("state", "=", "queued")]
        )
        self.assertTrue(close.urgent)
        self.execute_commands()
        self.assertEqual(close.state, "done")
        self.assertEqual(self.relay(), Supply.ON)
        self.assertEqual(meter.supply, "on")

        summaries = self.post_summaries()
        for move in summaries.move_id:
            self.assertEqual(move.state, "posted")
            self.assertAlmostEqual(sum(move.line_ids.mapped("debit")), sum(move.line_ids.mapped("credit")), 2)
        self.assertAlmostEqual(sum(summaries.mapped("amount")), 60.0, 2)
        self.assertLedgerMatchesAccounting(account)
