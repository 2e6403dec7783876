import socket
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_engine.codecs import dlt645
from prepaid_engine.simulator import BusConfig, GatewayConfig, MeterConfig, SiteConfig
from prepaid_engine.types import Protocol, Supply, Transport, Utility

from .common import SimulatorCommon

LACKING = "t-tg-1/1/000000001101"  # a DL/T 645 meter without the block read 0001FF00
COMPLETE = "t-tg-1/1/000000001102"


class DltSiteCommon(SimulatorCommon):
    """A transparent gateway with two DL/T 645-2007 prepaid meters; the first has no block 0001FF00."""

    @classmethod
    def site_config(cls):
        def meter(address, **kwargs):
            return MeterConfig(
                address, "dlt645_2007_prepaid", Protocol.DLT645_2007, Utility.ELECTRICITY, **kwargs
            )

        return SiteConfig(
            name="field-tests",
            gateways=(
                GatewayConfig(
                    key="t-tg-1",
                    transport=Transport.TRANSPARENT,
                    buses=(
                        BusConfig(
                            "1",
                            0,
                            meters=(meter("000000001101", lacks=("0001FF00",)), meter("000000001102")),
                        ),
                    ),
                ),
            ),
            instant=True,
            latency=0.0,
        )

    def asked(self, key):
        """The data identifiers the simulated meter was asked for since the last call (its log is emptied)."""

        def collect(site):
            meter = site.meter(key)
            dis = [dlt645.decode(exchange.request).di for exchange in meter.log]
            meter.log.clear()
            return dis

        return self.sim.call(collect)


@tagged("post_install", "-at_install")
class TestPartialReadings(DltSiteCommon):
    def _warnings(self, meter):
        return self.env["prepaid.comm.log"].search(
            [("meter_id", "=", meter.id), ("direction", "=", "warning")]
        )

    def test_a_meter_without_the_block_read_is_billed_and_stays_online(self):
        meter = self.meters[LACKING]
        self.asked(LACKING)
        self.cron_poll()
        truth = self.truth(LACKING)
        reading = self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)])
        self.assertEqual(len(reading), 1)
        self.assertEqual(Decimal(str(reading.total)), truth["total"])
        self.assertEqual(Decimal(str(reading.valley)), truth["valley"])
        self.assertEqual(Decimal(str(meter.last_total)), truth["total"])
        self.assertTrue(meter.online)
        self.assertEqual(meter.missing_identifiers, "0001FF00")
        self.assertEqual(self.meters[COMPLETE].missing_identifiers, False)
        log = self.env["prepaid.comm.log"].search([("meter_id", "=", meter.id)])
        self.assertEqual(log.mapped("direction"), ["warning"])  # a warning, no error
        self.assertEqual(log.kind, "no_data")
        self.assertIn("0001FF00", log.message)
        self.assertEqual(log.gateway_id, meter.gateway_id)
        self.assertIn("0001FF00", self.asked(LACKING))

        # The next poll does not ask for the block again, reads the meter all the same, logs nothing new.
        result = self.poll()
        self.assertNotIn("0001FF00", self.asked(LACKING))
        self.assertEqual(len(self._warnings(meter)), 1)
        [again] = [r for r in result.readings if r.meter_key == str(meter.id)]
        self.assertEqual(again.total, truth["total"])
        self.assertEqual(result.warnings, [])
        self.assertTrue(meter.online)
        self.assertEqual(self.meters[COMPLETE].gateway_id.failure_count, 0)

    def test_ask_again_and_a_new_model_forget_what_the_meter_lacks(self):
        meter = self.meters[LACKING]
        self.poll()
        self.assertEqual(meter.missing_identifiers, "0001FF00")
        meter.action_ask_again()
        self.assertFalse(meter.missing_identifiers)
        self.asked(LACKING)
        self.poll()
        self.assertIn("0001FF00", self.asked(LACKING))  # asked again, found lacking again
        self.assertEqual(meter.missing_identifiers, "0001FF00")
        self.assertEqual(len(self._warnings(meter)), 2)
        meter.model_id = self.env.ref("prepaid_metering.meter_model_dlt645_2007_basic")
        self.assertFalse(meter.missing_identifiers)

    def test_operators_cannot_set_what_a_meter_lacks(self):
        """What a meter lacks decides what is read (the total among it): it is for managers and the poller
        only, never an operator's write."""
        operator = self.env["res.users"].create(
            {
                "name": "Field operator",
                "login": "field-operator",
                "company_id": self.company.id,
                "company_ids": [(6, 0, self.company.ids)],
                "groups_id": [(6, 0, [self.env.ref("prepaid_base.group_prepaid_user").id])],
            }
        )
        meter = self.meters[LACKING].with_user(operator)
        self.assertNotIn("missing_identifiers", meter.fields_get())
        with self.assertRaises(AccessError):
            meter.write({"missing_identifiers": "00010000"})


@tagged("post_install", "-at_install")
class TestRelayValidity(DltSiteCommon):
    """Relay commands are accepted by meters whose clocks are far from ours (issue 9): the validity a DL/T 645
    relay control carries counts on the meter's clock, never on the queue's expiry (our clock + 1 day)."""

    def _execute(self):
        with mute_logger("odoo.addons.prepaid_metering.models.prepaid_meter_command"):
            return self.env["prepaid.meter.command"]._cron_execute()

    def _set_meter_clock(self, key, when):
        self.sim.call(lambda site: site.meter(key).set_meter_time(when))

    def _sim_supply(self, key):
        return self.sim.call(lambda site: site.meter(key).supply)

    def test_trip_and_close_reach_a_meter_whose_clock_is_days_ahead(self):
        meter = self.meters[COMPLETE]
        # what the demo's meters show after an hour at --speed 60 (60 simulated hours), or a drifted clock
        self._set_meter_clock(COMPLETE, datetime.now(UTC) + timedelta(days=3))
        meter.action_trip()
        self.assertEqual(self._execute(), 1)
        trip = self.env["prepaid.meter.command"].search([("meter_id", "=", meter.id), ("kind", "=", "trip")])
        self.assertRecordValues(trip, [{"state": "done", "confirmed": True}])
        self.assertEqual(self._sim_supply(COMPLETE), Supply.OFF)
        self.assertEqual(meter.supply, "off")
        self._set_meter_clock(COMPLETE, datetime.now(UTC) + timedelta(days=40))
        meter.action_close()
        self.assertEqual(self._execute(), 1)
        self.assertEqual(self._sim_supply(COMPLETE), Supply.ON)
        self.assertEqual(meter.supply, "on")

    def test_a_meter_whose_clock_is_hours_behind_takes_a_trip(self):
        meter = self.meters[COMPLETE]
        self._set_meter_clock(COMPLETE, datetime.now(UTC) - timedelta(hours=9))
        meter.action_trip()
        self._execute()
        self.assertEqual(self._sim_supply(COMPLETE), Supply.OFF)
        self.assertEqual(meter.supply, "off")
        self.sim.call(lambda site: site.meter(COMPLETE).close())

    def test_a_command_whose_executor_died_goes_back_to_the_queue(self):
        meter = self.meters[COMPLETE]
        command = self.env["prepaid.meter.command"]._enqueue([{"meter_id": meter.id, "kind": "trip"}])
        two_hours_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)
        internal(command).write({"state": "sent", "sent_at": two_hours_ago, "attempts": 1})
        self._execute()
        self.assertRecordValues(command, [{"state": "queued", "attempts": 1}])
        self.assertIn("Interrupted", command.message)
        self.assertTrue(command.next_attempt_at)
        self.assertEqual(self._sim_supply(COMPLETE), Supply.ON)  # not sent again before its backoff


@tagged("post_install", "-at_install")
class TestConnection(DltSiteCommon):
    """Test Connection answers within seconds and polls nothing (issue 9: it used to poll every meter)."""

    def test_a_live_gateway_answers_bus_by_bus_and_nothing_is_read(self):
        gateway = self.gateways
        started = time.monotonic()
        action = gateway.action_test_connection()
        self.assertLess(time.monotonic() - started, 5)
        params = action["params"]
        self.assertEqual(params["type"], "success")
        self.assertIn("t-tg-1", params["title"])
        self.assertIn("Bus 1 (port", params["message"])
        self.assertIn(f"meter {self.meters[LACKING].display_name} answered", params["message"])
        self.assertFalse(
            self.env["prepaid.meter.reading"].search([("meter_id", "in", gateway.meter_ids.ids)])
        )
        self.assertFalse(gateway.last_poll_at)
        # one request to the first meter of the bus, none to the others
        self.assertEqual(len(self.asked(LACKING)), 1)
        self.assertEqual(self.asked(COMPLETE), [])

    def test_a_closed_port_and_a_bus_without_meters_are_named(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = sock.getsockname()[1]
        live = self.gateways.bus_ids.port
        gateway = self._create_gateway(
            "t-closed", transport="transparent", buses=(("1", closed), ("2", live)), connect_timeout=1.0
        )
        self._create_meter(gateway.bus_ids[0], "000000009901", self.model_dlt)
        started = time.monotonic()
        params = gateway.action_test_connection()["params"]
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(params["type"], "warning")
        self.assertIn(f"Bus 1 (port {closed}): no connection:", params["message"])
        self.assertIn(f"Bus 2 (port {live}): connected; no meter to ask.", params["message"])
        gateway.bus_ids[1].unlink()
        self.assertEqual(gateway.action_test_connection()["params"]["type"], "danger")

    def test_a_dead_first_meter_is_a_warning_with_the_error(self):
        self.sim.call(lambda site: setattr(site.meter(LACKING), "dead", True))
        self.addCleanup(self.sim.call, lambda site: setattr(site.meter(LACKING), "dead", False))
        params = self.gateways.action_test_connection()["params"]
        self.assertEqual(params["type"], "danger")
        self.assertIn("connected, but meter", params["message"])
        self.assertIn("timeout", params["message"])
