from decimal import ROUND_DOWN, Decimal

from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_engine.simulator import SimClock, SiteThread, default_site
from prepaid_engine.types import Supply

from .common import MODBUS_FIELDS, SIM_START, MeteringCommon

# Fields a full read of each protocol reports, compared with the simulator's truth. DL/T 645: the Modbus
# measurements but power factor and frequency, and the meter's balance and purchase count.
DLT_FIELDS = (
    *(name for name in MODBUS_FIELDS if name not in ("power_factor", "frequency")),
    "balance",
    "purchase_count",
)
WATER_FIELDS = ("total",)


@tagged("post_install", "-at_install")
class TestDefaultSite(MeteringCommon):
    """The simulator's default site (the contract with the demo data), on ports the OS chose: imported
    through the wizard, linked to units A-101..A-308, read by the cron and commanded through the queue."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = SiteThread(
            default_site(instant=True, latency=0.0).with_ports(0), clock=SimClock(SIM_START, frozen=True)
        )
        cls.site_map = cls.sim.start()
        cls.addClassCleanup(cls.sim.stop)
        cls.env["prepaid.gateway"].search([]).active = False
        Property = cls.env["prepaid.property"]
        cls.building_a = Property.create({"name": "Building A", "code": "A", "kind": "building"})
        cls.units = Property
        for floor in (1, 2, 3):
            floor_record = Property.create(
                {"name": f"A{floor}", "code": f"A{floor}F", "kind": "floor", "parent_id": cls.building_a.id}
            )
            cls.units |= Property.create(
                [
                    {"name": f"A-{floor}{unit:02d}", "code": f"A-{floor}{unit:02d}", "kind": "unit"}
                    | {"parent_id": floor_record.id}
                    for unit in range(1, 9)
                ]
            )
        wizard = cls.env["prepaid.sitemap.import"].create(
            {"site_text": cls.site_map.to_json(), "property_id": cls.building_a.id, "link_units": True}
        )
        wizard.action_import()
        cls.gateways = cls.env["prepaid.gateway"].search([("company_id", "=", cls.company.id)])
        cls.meters = cls.env["prepaid.meter"].search([("gateway_id", "in", cls.gateways.ids)])

    def truth(self, meter):
        key = f"{meter.gateway_id.code}/{meter.bus_id.name}/{meter.address}"
        return self.sim.call(lambda site: site.meter(key).reading())

    def test_import_links_the_48_unit_meters(self):
        self.assertEqual(len(self.meters), 50)
        linked = self.meters.filtered("unit_id")
        self.assertEqual(len(linked), 48)
        for meter in linked:
            self.assertEqual(meter.unit_id.code, f"A-{meter.address[-3:]}")
        self.assertEqual(
            self.meters.filtered(lambda m: not m.unit_id).mapped("protocol"), ["modbus", "modbus"]
        )

    def test_one_cron_run_reads_every_meter_as_the_simulator_holds_it(self):
        with mute_logger("pymodbus.logging"):
            self.assertEqual(self.env["prepaid.gateway"]._cron_poll(), 2)
        readings = self.env["prepaid.meter.reading"].search([("meter_id", "in", self.meters.ids)])
        self.assertEqual(len(readings), 50)
        self.assertTrue(all(self.gateways.mapped("online")))
        self.assertTrue(all(self.meters.mapped("online")))
        acrel = self.env.ref("prepaid_metering.meter_model_acrel_ddsy1352")._get_engine_model()
        resolution = {f.name: f.scale for f in acrel.registers}
        for reading in readings:
            meter = reading.meter_id
            truth = self.truth(meter)
            fields = {"dlt645_2007": DLT_FIELDS, "cjt188": WATER_FIELDS, "modbus": MODBUS_FIELDS}[
                meter.protocol
            ]
            for fname in fields:
                expected = truth[fname]
                if meter.protocol == "modbus":
                    expected = expected.quantize(resolution[fname], rounding=ROUND_DOWN)
                self.assertEqual(Decimal(str(reading[fname])), expected, f"{meter.name} {fname}")
            self.assertEqual(reading.supply, str(truth["supply"]), meter.name)
            self.assertEqual(meter.last_reading_at, reading.read_at)
        water = self.meters.filtered(lambda m: m.utility == "water")[:1]
        self.assertEqual(Decimal(str(water.last_total)), self.truth(water)["total"])

    def test_relay_and_valve_commands_reach_the_meters(self):
        electricity = self.meters.filtered(lambda m: m.address == "000000001101")
        water = self.meters.filtered(lambda m: m.address == "00000000001101")
        Command = self.env["prepaid.meter.command"]
        commands = Command._enqueue(
            [
                {"meter_id": electricity.id, "kind": "trip", "reason": "automatic"},
                {"meter_id": water.id, "kind": "valve_close", "reason": "automatic"},
            ],
            urgent=True,
        )
        self.assertEqual(Command._cron_execute(), 2)
        self.assertEqual(commands.mapped("state"), ["done", "done"], commands.mapped("message"))
        self.assertEqual(self.truth(electricity)["supply"], Supply.OFF)
        self.assertEqual(self.truth(water)["supply"], Supply.OFF)
        self.assertEqual((electricity.supply, water.supply), ("off", "off"))
        Command._enqueue(
            [
                {"meter_id": electricity.id, "kind": "close", "reason": "automatic"},
                {"meter_id": water.id, "kind": "valve_open", "reason": "automatic"},
            ]
        )
        self.assertEqual(Command._cron_execute(), 2)
        self.assertEqual(self.truth(electricity)["supply"], Supply.ON)
        self.assertEqual(self.truth(water)["supply"], Supply.ON)
        self.assertEqual((electricity.supply, water.supply), ("on", "on"))

    def test_recharge_credits_the_meter_once(self):
        meter = self.meters.filtered(lambda m: m.address == "000000001103")
        meter.billing_mode = "meter"
        sim_meter = "000000001103"
        before = self.sim.call(lambda site: site.meter(sim_meter).balance)
        count = self.sim.call(lambda site: site.meter(sim_meter).purchase_count) + 1
        Command = self.env["prepaid.meter.command"]
        vals = {"meter_id": meter.id, "kind": "recharge", "amount": 50.0, "purchase_count": count}
        first = Command._enqueue([vals | {"reason": "automatic"}], urgent=True)
        Command._cron_execute()
        self.assertEqual(first.state, "done", first.message)
        self.assertEqual(self.sim.call(lambda site: site.meter(sim_meter).balance), before + 50)
        self.assertEqual(self.sim.call(lambda site: site.meter(sim_meter).purchase_count), count)
        self.assertEqual(meter.purchase_count, count)
        # The same purchase count sent again (e.g. the answer was lost): done, never a second credit.
        again = Command._enqueue([vals | {"reason": "automatic"}])
        self.assertNotEqual(again, first)
        Command._cron_execute()
        self.assertEqual(again.state, "done", again.message)
        self.assertEqual(self.sim.call(lambda site: site.meter(sim_meter).balance), before + 50)

    def test_set_prices_reaches_the_meter(self):
        meter = self.meters.filtered(lambda m: m.address == "000000001104")
        Command = self.env["prepaid.meter.command"]
        command = Command._enqueue(
            [
                {
                    "meter_id": meter.id,
                    "kind": "set_prices",
                    "reason": "batch",
                    "price_sharp": 1.31,
                    "price_peak": 1.09,
                    "price_flat": 0.69,
                    "price_valley": 0.31,
                }
            ]
        )
        Command._cron_execute()
        self.assertEqual(command.state, "done", command.message)
        prices = self.sim.call(lambda site: site.meter("000000001104").prices)
        self.assertEqual(prices, tuple(Decimal(p) for p in ("1.3100", "1.0900", "0.6900", "0.3100")))

    def test_keep_power_is_set_on_the_meter(self):
        electricity = self.meters.filtered(lambda m: m.address == "000000001102")
        Command = self.env["prepaid.meter.command"]
        command = Command._enqueue(
            [{"meter_id": electricity.id, "kind": "keep_power_on", "reason": "manual"}]
        )
        Command._cron_execute()
        self.assertEqual(command.state, "done", command.message)
        self.assertTrue(electricity.keep_power_state)
        self.assertTrue(self.sim.call(lambda site: site.meter("000000001102").keep_power))
        Command._enqueue([{"meter_id": electricity.id, "kind": "keep_power_off", "reason": "manual"}])
        Command._cron_execute()
        self.assertFalse(electricity.keep_power_state)
        self.assertFalse(self.sim.call(lambda site: site.meter("000000001102").keep_power))


@tagged("post_install", "-at_install")
class TestDemoContract(MeteringCommon):
    def test_demo_records_point_at_the_default_site(self):
        gateway = self.env.ref("prepaid_metering.demo_gateway_sim_tg_1", raise_if_not_found=False)
        if not gateway:
            self.skipTest("demo data is not installed")
        site = default_site().site_map()
        for site_gateway in site.gateways:
            record = self.env["prepaid.gateway"].search(
                [("code", "=", site_gateway.key), ("company_id", "=", gateway.company_id.id)]
            )
            self.assertRecordValues(
                record, [{"host": site_gateway.host, "transport": str(site_gateway.transport)}]
            )
            for site_bus in site_gateway.buses:
                bus = record.bus_ids.filtered(lambda b, key=site_bus.key: b.name == key)
                self.assertEqual((bus.port, bus.baud), (site_bus.port, site_bus.baud))
                self.assertEqual(
                    sorted((m.address, m.model_id.code) for m in bus.meter_ids),
                    sorted((m.address, m.model) for m in site_bus.meters),
                )
        unit_meters = gateway.meter_ids
        self.assertEqual(len(unit_meters), 48)
        for meter in unit_meters:
            self.assertEqual(meter.unit_id.code, f"A-{meter.address[-3:]}")
            self.assertIn(meter.unit_id, meter.account_id.unit_ids)
