import base64

import openpyxl
from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged
from odoo.tools.misc import file_path

from prepaid_engine.catalog import builtin_models
from prepaid_engine.simulator import default_site
from prepaid_engine.sitemap import SiteBus, SiteGateway, SiteMap, SiteMeter
from prepaid_engine.types import Protocol, Transport, Utility

from ..wizards.prepaid_sitemap_import import unit_code_for
from .common import MeteringCommon


@tagged("post_install", "-at_install")
class TestSiteMapImport(MeteringCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The simulator's default site on other ports, as `python -m prepaid_engine.simulator` prints it.
        cls.site_map = default_site().with_ports(26101).site_map()
        Property = cls.env["prepaid.property"]
        cls.units = Property.create(
            [
                {"name": f"A-{floor}{unit:02d}", "code": f"A-{floor}{unit:02d}", "kind": "unit"}
                | {"parent_id": (cls.floor_1 if floor == 1 else cls.floor_2).id}
                for floor in (1, 2)
                for unit in range(1, 9)
            ]
        )

    def _wizard(self, **vals):
        return self.env["prepaid.sitemap.import"].create({"site_text": self.site_map.to_json(), **vals})

    def test_import_creates_the_site_gateways_buses_and_meters(self):
        wizard = self._wizard(property_id=self.building.id)
        wizard.action_import()
        self.assertEqual(wizard.state, "done")
        Gateway = self.env["prepaid.gateway"]
        gateways = Gateway.search(
            [("code", "in", ("sim-tg-1", "sim-mb-1")), ("company_id", "=", self.company.id)]
        )
        self.assertEqual(len(gateways), 2)
        transparent = gateways.filtered(lambda g: g.code == "sim-tg-1")
        self.assertRecordValues(
            transparent, [{"host": "127.0.0.1", "transport": "transparent", "property_id": self.building.id}]
        )
        self.assertEqual(
            sorted((b.name, b.port, b.baud) for b in transparent.bus_ids),
            [("1", 26101, 9600), ("2", 26102, 2400)],
        )
        modbus = gateways - transparent
        self.assertEqual(modbus.transport, "modbus_tcp")
        self.assertEqual(modbus.bus_ids.port, 26103)
        meters = self.env["prepaid.meter"].search([("gateway_id", "in", gateways.ids)])
        self.assertEqual(len(meters), 50)
        by_bus = {(m.gateway_id.code, m.bus_id.name): 0 for m in meters}
        for meter in meters:
            by_bus[meter.gateway_id.code, meter.bus_id.name] += 1
        self.assertEqual(by_bus, {("sim-tg-1", "1"): 24, ("sim-tg-1", "2"): 24, ("sim-mb-1", "1"): 2})
        meter = meters.filtered(lambda m: m.address == "000000001101")
        self.assertRecordValues(
            meter,
            [
                {
                    "utility": "electricity",
                    "model_id": self.model_dlt.id,
                    "protocol": "dlt645_2007",
                    "meter_number": "000000001101",
                    "ct_ratio": 1,
                    "name": "Building A 1-01 electricity",
                    "company_id": self.company.id,
                }
            ],
        )
        water = meters.filtered(lambda m: m.address == "00000000001101")
        self.assertEqual(water.model_id, self.model_cjt)
        self.assertEqual(water.utility, "water")
        self.assertFalse(meters.unit_id, "no unit linking unless asked")
        self.assertIn("50 created", wizard.summary)

    def test_import_twice_updates_without_duplicates(self):
        self._wizard().action_import()
        moved = default_site().with_ports(27101).site_map()
        wizard = self.env["prepaid.sitemap.import"].create({"site_text": moved.to_json()})
        wizard.action_import()
        gateways = self.env["prepaid.gateway"].search(
            [("code", "in", ("sim-tg-1", "sim-mb-1")), ("company_id", "=", self.company.id)]
        )
        self.assertEqual(len(gateways), 2)
        self.assertEqual(self.env["prepaid.meter"].search_count([("gateway_id", "in", gateways.ids)]), 50)
        self.assertEqual(sorted(gateways.bus_ids.mapped("port")), [27101, 27102, 27103])
        self.assertIn("50 updated", wizard.summary)

    def test_import_from_an_uploaded_file(self):
        wizard = self.env["prepaid.sitemap.import"].create(
            {"site_file": base64.b64encode(self.site_map.to_json().encode()), "site_filename": "site.json"}
        )
        wizard.action_import()
        gateways = self.env["prepaid.gateway"].search([("company_id", "=", self.company.id)])
        self.assertEqual(gateways.mapped("code"), ["sim-mb-1", "sim-tg-1"])

    def test_link_meters_to_units_by_the_last_four_digits(self):
        self.assertEqual(unit_code_for("000000001101"), "A-101")
        self.assertEqual(unit_code_for("00000000001308"), "A-308")
        self.assertEqual(unit_code_for("000000002205", "{building}-{floor}-{unit}"), "2-2-05")
        self.assertIsNone(unit_code_for("1"))
        wizard = self._wizard(link_units=True, property_id=self.building.id)
        wizard.action_import()
        meters = self.env["prepaid.meter"].search(
            [("gateway_id.code", "=", "sim-tg-1"), ("company_id", "=", self.company.id)]
        )
        a101 = self.units.filtered(lambda u: u.code == "A-101")
        linked = meters.filtered(lambda m: m.unit_id == a101)
        self.assertEqual(sorted(linked.mapped("address")), ["00000000001101", "000000001101"])
        self.assertEqual(len(meters.filtered("unit_id")), 32)  # floors 1 and 2 exist here; floor 3 does not
        self.assertIn("000000001301", wizard.summary)

    def test_missing_meter_model_is_created_from_the_catalogue(self):
        self.env.ref("prepaid_metering.meter_model_modbus_generic").unlink()
        site = SiteMap(
            name="one",
            gateways=(
                SiteGateway(
                    key="g-generic",
                    host="127.0.0.1",
                    transport=Transport.MODBUS_TCP,
                    buses=(
                        SiteBus(
                            "1",
                            25000,
                            meters=(SiteMeter("7", "modbus_generic", Protocol.MODBUS, Utility.ELECTRICITY),),
                        ),
                    ),
                ),
            ),
        )
        wizard = self.env["prepaid.sitemap.import"].create({"site_text": site.to_json()})
        wizard.action_import()
        model = self.env["prepaid.meter.model"].search([("code", "=", "modbus_generic")])
        self.assertEqual(len(model), 1)
        self.assertEqual(model._get_engine_model(), builtin_models()["modbus_generic"])
        meter = self.env["prepaid.meter"].search([("gateway_id.code", "=", "g-generic")])
        self.assertEqual(meter.model_id, model)
        self.assertIn("modbus_generic", wizard.summary)

    def test_the_shipped_spreadsheet_template_loads(self):
        self._wizard().action_import()
        manager = new_test_user(
            self.env,
            "import_mgr",
            groups="prepaid_base.group_prepaid_manager",
            company_id=self.company.id,
            company_ids=self.company.ids,
        )
        Meter = (
            self.env["prepaid.meter"].with_user(manager).with_context(allowed_company_ids=self.company.ids)
        )
        (template,) = Meter.get_import_templates()
        path = file_path(template["template"].lstrip("/"))
        sheet = openpyxl.load_workbook(path).active
        rows = [[("" if v is None else str(v)) for v in row] for row in sheet.iter_rows(values_only=True)]
        header, data = rows[0], rows[1:]
        # The template's meters exist already (imported above): move them to new addresses to create new ones.
        data = [[*row[:3], row[3][:-1] + "9", *row[4:]] for row in data]
        result = Meter.with_context(import_file=True).load(header, data)
        self.assertFalse(result["messages"], result["messages"])
        created = Meter.browse(result["ids"])
        self.assertEqual(len(created), 3)
        a101 = self.units.filtered(lambda u: u.code == "A-101")
        electricity = created.filtered(lambda m: m.utility == "electricity" and m.unit_id)
        self.assertRecordValues(
            electricity,
            [
                {
                    "model_id": self.model_dlt.id,
                    "unit_id": a101.id,
                    "account_id": False,
                    "company_id": self.company.id,
                }
            ],
        )
        self.assertEqual(electricity.bus_id.display_name, "sim-tg-1 / 1")
        self.assertEqual(created.filtered(lambda m: m.utility == "water").bus_id.display_name, "sim-tg-1 / 2")

    def test_invalid_site_map_is_refused(self):
        wizard = self.env["prepaid.sitemap.import"].create(
            {"site_text": '{"version": 1, "gateways": [{"key": "x"}]}'}
        )
        with self.assertRaises(UserError):
            wizard.action_import()
        self.assertFalse(self.env["prepaid.gateway"].search([("code", "=", "x")]))
