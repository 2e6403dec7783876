import base64
import binascii
import re
import string

from odoo import api, fields, models
from odoo.exceptions import UserError

from prepaid_engine.catalog import builtin_models
from prepaid_engine.errors import ConfigError
from prepaid_engine.sitemap import load_site_map

DEFAULT_UNIT_PATTERN = "{building_letter}-{floor}{unit}"
_PLACEHOLDER = re.compile(r"{(\w+)")
UNIT_PLACEHOLDERS = ("building", "building_letter", "floor", "unit")


def unit_code_for(address, pattern=DEFAULT_UNIT_PATTERN):
    """The unit code a meter address points at, by the "last four digits" rule.

    The last four digits of the address are read as B F UU: building number, floor, unit on the floor.
    ``pattern`` builds the code from ``{building}``, ``{building_letter}`` (1 = A, 2 = B, ...), ``{floor}``
    and ``{unit}`` (two digits): 000000001101 -> A-101 with the default pattern. None when the address does
    not end in four digits (e.g. a Modbus unit id).
    """
    digits = address[-4:] if address else ""
    if len(digits) != 4 or not digits.isdecimal():
        return None
    building = int(digits[0])
    values = {
        "building": str(building),
        "building_letter": string.ascii_uppercase[building - 1] if building else "",
        "floor": digits[1],
        "unit": digits[2:],
    }
    return pattern.format(**values)


class PrepaidSitemapImport(models.TransientModel):
    """Import a site map (the JSON the simulator prints, or an edge collector's inventory): creates or updates
    gateways (by code), their buses (by key) and meters (by bus and address), creates the meter models the
    site uses from the engine's catalogue, and optionally links meters to units by their address."""

    _name = "prepaid.sitemap.import"
    _description = "Import Site Map"

    site_file = fields.Binary(string="Site Map File", help="The site map JSON file.")
    site_filename = fields.Char()
    site_text = fields.Text(string="Site Map JSON", help="Or paste the site map JSON here.")
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    property_id = fields.Many2one(
        "prepaid.property",
        string="Building",
        domain="[('kind', 'in', ('site', 'building')), ('company_id', '=', company_id)]",
        help="Building the gateways serve (sets their polling interval); units are looked for in it.",
    )
    link_units = fields.Boolean(
        string="Link Meters to Units",
        help="Attach each meter to the unit whose code the last four digits of its address give "
        "(building, floor, two-digit unit): 000000001101 -> A-101 with the default pattern.",
    )
    unit_pattern = fields.Char(
        string="Unit Code Pattern",
        default=DEFAULT_UNIT_PATTERN,
        help="Placeholders: {building} (4th digit from the end), {building_letter} (1 = A, 2 = B, ...), "
        "{floor} (3rd digit from the end), {unit} (last two digits).",
    )
    state = fields.Selection([("draft", "Draft"), ("done", "Done")], default="draft")
    summary = fields.Text(readonly=True)

    @api.constrains("unit_pattern")
    def _check_unit_pattern(self):
        for wizard in self.filtered("link_units"):
            unknown = set(_PLACEHOLDER.findall(wizard.unit_pattern or "")) - set(UNIT_PLACEHOLDERS)
            if unknown or not wizard.unit_pattern:
                raise UserError(
                    self.env._(
                        "The unit code pattern may only use %(placeholders)s.",
                        placeholders=", ".join(f"{{{p}}}" for p in UNIT_PLACEHOLDERS),
                    )
                )

    def _get_source(self):
        self.ensure_one()
        if self.site_file:
            try:
                return base64.b64decode(self.site_file)
            except (binascii.Error, ValueError) as exc:
                raise UserError(self.env._("The uploaded file cannot be read.")) from exc
        if self.site_text:
            return self.site_text
        raise UserError(self.env._("Upload a site map file or paste its JSON."))

    def _load(self):
        try:
            return load_site_map(self._get_source())
        except ConfigError as exc:
            raise UserError(self.env._("The site map is not valid: %(error)s", error=str(exc))) from exc

    def _ensure_models(self, site):
        """``{model code: prepaid.meter.model}`` for every model the site uses; missing ones are created from
        the engine's catalogue."""
        Model = self.env["prepaid.meter.model"].with_context(active_test=False)
        codes = {meter.model for _gateway, _bus, meter in site.meters()}
        found = {model.code: model for model in Model.search([("code", "in", list(codes))])}
        missing = sorted(codes - set(found))
        created = Model
        if missing:
            catalog = builtin_models()
            unknown = [code for code in missing if code not in catalog]
            if unknown:
                raise UserError(
                    self.env._(
                        "Meter models %(codes)s are neither defined nor in the engine's catalogue.",
                        codes=", ".join(unknown),
                    )
                )
            created = Model.create([Model._prepare_vals_from_engine(catalog[code]) for code in missing])
            found.update({model.code: model for model in created})
        return found, created

    def action_import(self):
        self.ensure_one()
        self.env["prepaid.gateway"].check_access("create")
        site = self._load()
        models_by_code, created_models = self._ensure_models(site)
        Gateway = self.env["prepaid.gateway"].with_context(active_test=False)
        Bus = self.env["prepaid.gateway.bus"]
        Meter = self.env["prepaid.meter"].with_context(active_test=False)
        company = self.company_id
        counts = dict.fromkeys(
            (
                "gateways_created",
                "gateways_updated",
                "buses_created",
                "meters_created",
                "meters_updated",
                "linked",
            ),
            0,
        )
        units = {}
        if self.link_units:
            domain = [("kind", "=", "unit"), ("company_id", "=", company.id), ("code", "!=", False)]
            if self.property_id:
                domain.append(("id", "child_of", self.property_id.id))
            units = {unit.code: unit for unit in self.env["prepaid.property"].search(domain)}
        utilities = dict(Meter._fields["utility"]._description_selection(self.env))
        unlinked = []
        for site_gateway in site.gateways:
            gateway_vals = {
                "name": site_gateway.name or site_gateway.key,
                "host": site_gateway.host,
                "transport": str(site_gateway.transport),
                "timeout": site_gateway.timeout,
                "active": True,
            }
            if self.property_id:
                gateway_vals["property_id"] = self.property_id.id
            gateway = Gateway.search(
                [("code", "=", site_gateway.key), ("company_id", "=", company.id)], limit=1
            )
            if gateway:
                gateway.write(gateway_vals)
                counts["gateways_updated"] += 1
            else:
                gateway = Gateway.create([dict(gateway_vals, code=site_gateway.key, company_id=company.id)])
                counts["gateways_created"] += 1
            for site_bus in site_gateway.buses:
                bus = gateway.bus_ids.filtered(lambda b, key=site_bus.key: b.name == key)
                if bus:
                    bus.write({"port": site_bus.port, "baud": site_bus.baud})
                else:
                    bus = Bus.create(
                        [
                            {
                                "gateway_id": gateway.id,
                                "name": site_bus.key,
                                "port": site_bus.port,
                                "baud": site_bus.baud,
                            }
                        ]
                    )
                    counts["buses_created"] += 1
                existing = {m.address: m for m in Meter.search([("bus_id", "=", bus.id)])}
                to_create = []
                for site_meter in site_bus.meters:
                    model = models_by_code[site_meter.model]
                    meter_vals = {
                        "model_id": model.id,
                        "utility": str(site_meter.utility),
                        "meter_number": site_meter.meter_number or site_meter.address,
                        "customer_number": site_meter.customer_number or False,
                        "ct_ratio": site_meter.ct_ratio,
                        "active": True,
                    }
                    if site_meter.name:
                        meter_vals["name"] = site_meter.name
                    if units:
                        unit = units.get(unit_code_for(site_meter.address, self.unit_pattern))
                        if unit:
                            meter_vals["unit_id"] = unit.id
                            counts["linked"] += 1
                        else:
                            unlinked.append(site_meter.address)
                    meter = existing.get(site_meter.address)
                    if meter:
                        meter.write(meter_vals)
                        counts["meters_updated"] += 1
                    else:
                        meter_vals.setdefault(
                            "name", f"{utilities[str(site_meter.utility)]} {site_meter.address}"
                        )
                        to_create.append(
                            dict(
                                meter_vals,
                                address=site_meter.address,
                                gateway_id=gateway.id,
                                bus_id=bus.id,
                                company_id=company.id,
                            )
                        )
                if to_create:
                    Meter.create(to_create)
                    counts["meters_created"] += len(to_create)
        lines = [
            self.env._("Site map %(name)s imported.", name=site.name),
            self.env._(
                "Gateways: %(created)s created, %(updated)s updated.",
                created=counts["gateways_created"],
                updated=counts["gateways_updated"],
            ),
            self.env._("Buses: %(created)s created.", created=counts["buses_created"]),
            self.env._(
                "Meters: %(created)s created, %(updated)s updated.",
                created=counts["meters_created"],
                updated=counts["meters_updated"],
            ),
            self.env._(
                "Meter models created from the catalogue: %(models)s.",
                models=", ".join(created_models.mapped("code")) or "-",
            ),
        ]
        if self.link_units:
            lines.append(
                self.env._(
                    "Meters linked to units: %(linked)s; without a matching unit: %(unlinked)s.",
                    linked=counts["linked"],
                    unlinked=", ".join(unlinked) or "-",
                )
            )
        self.write({"state": "done", "summary": "\n".join(lines)})
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "name": self.env._("Import Site Map"),
        }

    def action_view_gateways(self):
        self.check_access("write")
        return self.env["ir.actions.act_window"]._for_xml_id("prepaid_metering.prepaid_gateway_action")
