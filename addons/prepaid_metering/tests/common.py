from datetime import UTC, datetime

from odoo.addons.prepaid_metering.models.prepaid_meter_reading import VALUE_FIELDS
from odoo.tests import TransactionCase
from odoo.tools import mute_logger

from prepaid_engine.simulator import BusConfig, GatewayConfig, MeterConfig, SimClock, SiteConfig, SiteThread
from prepaid_engine.types import Protocol, Transport, Utility

SIM_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
# The measurements a full read of a Modbus meter reports: the reading's value fields before the supply state.
MODBUS_FIELDS = VALUE_FIELDS[: VALUE_FIELDS.index("supply")]


class MeteringCommon(TransactionCase):
    """A company of its own with a building, two floors and units with open accounts; no demo data used."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env["res.company"].create({"name": "Metering Test Co"})
        cls.env.user.company_ids |= cls.company
        cls.env = cls.env(
            context=dict(cls.env.context, allowed_company_ids=[cls.company.id], tracking_disable=True)
        )
        Property = cls.env["prepaid.property"]
        cls.building = Property.create(
            {"name": "Block M", "code": "M", "kind": "building", "reading_interval": 15}
        )
        cls.floor_1 = Property.create(
            {"name": "M1", "code": "M1", "kind": "floor", "parent_id": cls.building.id}
        )
        cls.floor_2 = Property.create(
            {"name": "M2", "code": "M2", "kind": "floor", "parent_id": cls.building.id}
        )
        cls.unit_101, cls.unit_102 = Property.create(
            [
                {"name": "M-101", "code": "M-101", "kind": "unit", "parent_id": cls.floor_1.id},
                {"name": "M-102", "code": "M-102", "kind": "unit", "parent_id": cls.floor_1.id},
            ]
        )
        cls.unit_201 = Property.create(
            {"name": "M-201", "code": "M-201", "kind": "unit", "parent_id": cls.floor_2.id}
        )
        Partner = cls.env["res.partner"]
        cls.tenant_101, cls.tenant_201 = Partner.create([{"name": "Tenant 101"}, {"name": "Tenant 201"}])
        Account = cls.env["prepaid.account"]
        cls.account_101 = Account.create(
            {"partner_id": cls.tenant_101.id, "unit_ids": [(6, 0, cls.unit_101.ids)]}
        )
        cls.account_201 = Account.create(
            {"partner_id": cls.tenant_201.id, "unit_ids": [(6, 0, cls.unit_201.ids)]}
        )
        (cls.account_101 | cls.account_201).action_open()
        cls.model_dlt = cls.env.ref("prepaid_metering.meter_model_dlt645_2007_prepaid")
        cls.model_cjt = cls.env.ref("prepaid_metering.meter_model_cjt188_water")
        cls.model_acrel = cls.env.ref("prepaid_metering.meter_model_acrel_ddsy1352")

    @classmethod
    def _create_gateway(cls, code, transport="modbus_tcp", buses=(("1", 0),), **vals):
        return cls.env["prepaid.gateway"].create(
            {
                "name": code,
                "code": code,
                "host": "127.0.0.1",
                "transport": transport,
                "property_id": cls.building.id,
                "timeout": 0.3,
                "retries": 0,
                "connect_timeout": 1.0,
                "bus_ids": [(0, 0, {"name": key, "port": port}) for key, port in buses],
                **vals,
            }
        )

    @classmethod
    def _create_meter(cls, bus, address, model=None, **vals):
        model = model or cls.model_acrel
        return cls.env["prepaid.meter"].create(
            {
                "name": f"{bus.gateway_id.code}/{address}",
                "utility": model.utility,
                "model_id": model.id,
                "address": address,
                "bus_id": bus.id,
                **vals,
            }
        )


class SimulatorCommon(MeteringCommon):
    """MeteringCommon plus a simulated site running in a thread (frozen clock, instant replies, OS-chosen
    ports), with gateway and meter records pointing at the ports it bound. Subclasses set ``SITE``."""

    @classmethod
    def site_config(cls):
        """Two Modbus-TCP gateways: "t-mb-1" with unit ids 1, 2 (live) and 3 (dead), "t-mb-2" with unit 1."""

        def meter(address, **kwargs):
            return MeterConfig(address, "acrel_ddsy1352", Protocol.MODBUS, Utility.ELECTRICITY, **kwargs)

        return SiteConfig(
            name="metering-tests",
            gateways=(
                GatewayConfig(
                    key="t-mb-1",
                    transport=Transport.MODBUS_TCP,
                    buses=(BusConfig("1", 0, meters=(meter("1"), meter("2"), meter("3", dead=True))),),
                ),
                GatewayConfig(
                    key="t-mb-2",
                    transport=Transport.MODBUS_TCP,
                    buses=(BusConfig("1", 0, meters=(meter("1"),)),),
                ),
            ),
            instant=True,
            latency=0.0,
        )

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = SiteThread(cls.site_config(), clock=SimClock(SIM_START, frozen=True))
        cls.site_map = cls.sim.start()
        cls.addClassCleanup(cls.sim.stop)
        # Only this site's gateways are due: the cron must not reach others (demo data, other tests).
        cls.env["prepaid.gateway"].search([]).active = False
        cls.gateways = cls.env["prepaid.gateway"]
        cls.meters = {}  # "<gateway>/<bus>/<address>" -> prepaid.meter
        model_of = {str(m.code): m for m in cls.env["prepaid.meter.model"].search([])}
        for site_gateway in cls.site_map.gateways:
            gateway = cls._create_gateway(
                site_gateway.key,
                transport=str(site_gateway.transport),
                buses=[(bus.key, bus.port) for bus in site_gateway.buses],
            )
            cls.gateways |= gateway
            for site_bus in site_gateway.buses:
                bus = gateway.bus_ids.filtered(lambda b, key=site_bus.key: b.name == key)
                for site_meter in site_bus.meters:
                    key = f"{site_gateway.key}/{site_bus.key}/{site_meter.address}"
                    cls.meters[key] = cls._create_meter(bus, site_meter.address, model_of[site_meter.model])

    def truth(self, key):
        """What the simulated meter holds now (its clock is frozen: it does not move during a test)."""
        return self.sim.call(lambda site: site.meter(key).reading())

    def poll(self, gateways=None):
        with mute_logger("pymodbus.logging", "pymodbus"):
            return (gateways or self.gateways)._poll()

    def cron_poll(self, **kwargs):
        with mute_logger("pymodbus.logging", "pymodbus"):
            return self.env["prepaid.gateway"]._cron_poll(**kwargs)
