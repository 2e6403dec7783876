from odoo import api, fields, models

from prepaid_engine.types import BusSpec


class PrepaidGatewayBus(models.Model):
    """One RS-485 bus behind a gateway, reached on its own TCP port (or serial device). The poller keeps one
    serialised queue per bus and runs all buses in parallel."""

    _name = "prepaid.gateway.bus"
    _description = "Gateway Bus"
    _order = "gateway_id, name"
    _check_company_auto = True

    name = fields.Char(string="Key", required=True, help="Key of the bus in the site map (e.g. 1).")
    gateway_id = fields.Many2one("prepaid.gateway", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="gateway_id.company_id", store=True, index=True)
    port = fields.Integer(
        string="TCP Port", help="Port of this bus on the gateway (transparent / Modbus-TCP)."
    )
    baud = fields.Integer(string="Baud Rate", default=9600)
    device = fields.Char(help="Serial device path (serial transport), e.g. /dev/ttyUSB0.")
    meter_ids = fields.One2many("prepaid.meter", "bus_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")

    _sql_constraints = [
        ("gateway_name_uniq", "UNIQUE(gateway_id, name)", "A bus key must be unique per gateway."),
        ("port_valid", "CHECK(port >= 0 AND port <= 65535)", "The TCP port must be between 0 and 65535."),
        ("baud_positive", "CHECK(baud > 0)", "The baud rate must be positive."),
    ]

    @api.depends("gateway_id.code", "name")
    def _compute_display_name(self):
        for bus in self:
            bus.display_name = f"{bus.gateway_id.code or ''} / {bus.name or ''}"

    @api.model
    def _search_display_name(self, operator, value):
        # "gateway code / bus key", as displayed (CSV import of meters refers to buses this way).
        if operator in ("=", "ilike") and isinstance(value, str) and "/" in value:
            code, key = (part.strip() for part in value.rsplit("/", 1))
            op = "=" if operator == "=" else "=ilike"
            return [("gateway_id.code", op, code), ("name", op, key)]
        return super()._search_display_name(operator, value)

    def _compute_meter_count(self):
        counts = dict(
            self.env["prepaid.meter"]._read_group([("bus_id", "in", self.ids)], ["bus_id"], ["__count"])
        )
        for bus in self:
            bus.meter_count = counts.get(bus, 0)

    def _prepare_engine_bus(self, meters, models_cache=None):
        """The engine's :class:`BusSpec` with ``meters`` (meters of this bus)."""
        self.ensure_one()
        models_cache = {} if models_cache is None else models_cache
        return BusSpec(
            key=self.name,
            port=self.port,
            meters=tuple(meter._prepare_engine_meter(models_cache) for meter in meters),
            baud=self.baud,
            device=self.device or "",
        )
