import dataclasses
from collections import defaultdict
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from prepaid_engine.errors import ConfigError
from prepaid_engine.sitemap import check_address
from prepaid_engine.types import MeterSpec, Supply

from .prepaid_meter_model import UTILITY_SELECTION

# Ingestion rewrites a meter's row at every reading, all the meters of a page in one transaction: pages half
# empty keep those updates in place (HOT: no new entry in the meter's dozen indexes).
METER_FILLFACTOR = 50

SUPPLY_SELECTION = [(str(Supply.ON), "On"), (str(Supply.OFF), "Off"), (str(Supply.FAULT), "Fault")]
UNIT_OF_UTILITY = {"electricity": "kWh", "water": "m³"}
# Command kind -> the utility it applies to (the meter buttons below queue these kinds).
COMMAND_UTILITY = {
    "trip": "electricity",
    "close": "electricity",
    "keep_power_on": "electricity",
    "keep_power_off": "electricity",
    "set_prices": "electricity",
    "set_load_parameters": "electricity",
    "valve_open": "water",
    "valve_close": "water",
}


class PrepaidMeter(models.Model):
    """An electricity or water meter: where it hangs (gateway and bus, or a platform for NB-IoT meters), what
    it is (model, address), whom it bills (unit, account), and what it last said."""

    _name = "prepaid.meter"
    _description = "Meter"
    _inherit = ["prepaid.guard.mixin", "mail.thread", "mail.activity.mixin"]
    # What the meter last said: written by ingestion and by command results only.
    _prepaid_protected_fields = (
        "supply",
        "supply_at",
        "keep_power_state",
        "online",
        "last_reading_at",
        "last_total",
        "meter_balance",
        "purchase_count",
    )
    # Whom a meter bills, at what price, and how it is reached and read: for managers (operators rename
    # meters and use their buttons).
    _prepaid_manager_fields = (
        "utility",
        "model_id",
        "address",
        "meter_number",
        "customer_number",
        "gateway_id",
        "bus_id",
        "ct_ratio",
        "billing_mode",
        "unit_id",
        "account_id",
        "tariff_id",
        "platform_id",
        "device_ref",
        "company_id",
        "active",
    )
    _prepaid_target_fields = (
        "model_id",
        "gateway_id",
        "bus_id",
        "unit_id",
        "account_id",
        "tariff_id",
        "platform_id",
    )
    _order = "gateway_id, bus_id, address, id"
    _rec_names_search = ["name", "address", "meter_number", "device_ref"]
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    utility = fields.Selection(UTILITY_SELECTION, required=True, default="electricity", tracking=True)
    model_id = fields.Many2one(
        "prepaid.meter.model",
        string="Meter Model",
        required=True,
        domain="[('utility', '=', utility)]",
        tracking=True,
    )
    protocol = fields.Selection(related="model_id.protocol", store=True)
    address = fields.Char(
        tracking=True,
        help="DL/T 645: 12 digits; CJ/T 188: 14 digits; Modbus: unit id 1-247, or unit/circuit.",
    )
    meter_number = fields.Char(help="Meter number (key diversification factor); empty = the address.")
    customer_number = fields.Char(help="DL/T 645 customer number carried by recharge commands (12 digits).")
    gateway_id = fields.Many2one(
        "prepaid.gateway",
        compute="_compute_gateway_id",
        store=True,
        readonly=False,
        index="btree_not_null",
        check_company=True,
        tracking=True,
    )
    bus_id = fields.Many2one(
        "prepaid.gateway.bus",
        domain="[('gateway_id', '=', gateway_id)]",
        index="btree_not_null",
        check_company=True,
        ondelete="restrict",
    )
    ct_ratio = fields.Integer(string="CT Ratio", default=1, help="Current transformer ratio (1: direct).")
    billing_mode = fields.Selection(
        [("platform", "Platform"), ("meter", "Meter")],
        required=True,
        default="platform",
        tracking=True,
        help="Platform: we price the consumption and deduct it from the prepaid account. Meter: the meter "
        "holds the balance and recharges are sent to it.",
    )
    unit = fields.Char(string="Unit of Measure", compute="_compute_unit")
    unit_id = fields.Many2one(
        "prepaid.property",
        domain="[('kind', '=', 'unit')]",
        index="btree_not_null",
        check_company=True,
        tracking=True,
    )
    building_id = fields.Many2one(
        "prepaid.property",
        compute="_compute_building_id",
        store=True,
        index="btree_not_null",
        help="The unit's building, or the gateway's for a meter without a unit (common areas).",
    )
    account_id = fields.Many2one(
        "prepaid.account",
        string="Prepaid Account",
        compute="_compute_account_id",
        store=True,
        readonly=False,
        index="btree_not_null",
        check_company=True,
        tracking=True,
        help="Defaults to the open account of the unit.",
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        string="Tariff Override",
        domain="[('utility', '=', utility)]",
        check_company=True,
        tracking=True,
        help="Leave empty to use the tariff of the unit (or of its building).",
    )
    supply = fields.Selection(
        SUPPLY_SELECTION,
        readonly=True,
        copy=False,
        tracking=True,
        help="Relay (electricity) or valve (water) state as last confirmed by the meter.",
    )
    supply_at = fields.Datetime(
        string="Supply Seen At",
        readonly=True,
        copy=False,
        help="When the meter last told its supply state (a reading, or a command it confirmed). A reading "
        "taken before that, stored later (a long poll cycle), does not overwrite it.",
    )
    keep_power_state = fields.Boolean(
        string="Keep Power",
        readonly=True,
        copy=False,
        tracking=True,
        help="Keep-power as last set on the meter.",
    )
    online = fields.Boolean(readonly=True, copy=False)
    last_reading_at = fields.Datetime(string="Last Reading", readonly=True, copy=False)
    last_total = fields.Float(string="Last Index", digits=(16, 3), readonly=True, copy=False)
    currency_id = fields.Many2one(related="company_id.currency_id")
    meter_balance = fields.Monetary(
        readonly=True, copy=False, help="Meter-side billing: the balance the meter last reported."
    )
    purchase_count = fields.Integer(
        readonly=True, copy=False, help="Meter-side billing: the purchase count the meter last confirmed."
    )
    platform_id = fields.Many2one(
        "prepaid.platform",
        string="Push Platform",
        index="btree_not_null",
        check_company=True,
        help="IoT platform that pushes this meter's reports (NB-IoT / 4G meters).",
    )
    device_ref = fields.Char(
        string="Device ID", index="btree_not_null", help="Device id or IMEI of the meter on its platform."
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company, tracking=True
    )
    active = fields.Boolean(default=True, tracking=True)
    missing_identifiers = fields.Char(
        string="Identifiers Lacking",
        compute="_compute_missing_identifiers",
        store=True,
        readonly=True,
        copy=False,
        groups="prepaid_base.group_prepaid_manager",
        help="Identifiers of the meter model (DL/T 645 / CJ/T 188 data identifiers, Modbus register fields) "
        'that this meter answered "no such data" for. The poller no longer asks for them and keeps the '
        "rest of each reading. Forgotten when the model or the address changes, or with Ask Again.",
    )
    reading_count = fields.Integer(compute="_compute_counts")
    command_count = fields.Integer(compute="_compute_counts")
    comm_log_count = fields.Integer(compute="_compute_counts")
    read_today = fields.Boolean(compute="_compute_read_today", search="_search_read_today")

    _sql_constraints = [
        ("bus_address_uniq", "UNIQUE(bus_id, address)", "A meter address must be unique on its bus."),
        (
            "platform_device_uniq",
            "UNIQUE(platform_id, device_ref)",
            "A device id must be unique per platform.",
        ),
        ("ct_ratio_positive", "CHECK(ct_ratio > 0)", "The CT ratio must be positive."),
    ]

    def init(self):
        res = super().init()
        self.env.cr.execute(
            SQL("ALTER TABLE %s SET (fillfactor = %s)", SQL.identifier(self._table), METER_FILLFACTOR)
        )
        return res

    @api.model
    def get_import_templates(self):
        return [
            {
                "label": self.env._("Import Template for Meters"),
                "template": "/prepaid_metering/static/xls/prepaid_meter_import_template.xlsx",
            }
        ]

    # -- computes --------------------------------------------------------------------------------------------
    @api.depends("bus_id")
    def _compute_gateway_id(self):
        for meter in self:
            if meter.bus_id:
                meter.gateway_id = meter.bus_id.gateway_id

    @api.depends("utility")
    def _compute_unit(self):
        for meter in self:
            meter.unit = UNIT_OF_UTILITY.get(meter.utility, "")

    @api.depends("unit_id.building_id", "gateway_id.property_id.building_id")
    def _compute_building_id(self):
        for meter in self:
            meter.building_id = meter.unit_id.building_id or meter.gateway_id.property_id.building_id

    @api.depends("unit_id")
    def _compute_account_id(self):
        units = self.unit_id
        accounts = self.env["prepaid.account"]
        if units:
            accounts = accounts.search(
                [("unit_ids", "in", units.ids), ("state", "in", ("open", "suspended"))], order="id desc"
            )
        for meter in self:
            if meter.unit_id:
                # The unit's live account; none when the unit has none (a meter never bills another unit).
                meter.account_id = accounts.filtered(lambda a, unit=meter.unit_id: unit in a.unit_ids)[:1]

    @api.depends("model_id", "address")
    def _compute_missing_identifiers(self):
        # Another model, or another meter at this address, may have what the old one lacked: ask again.
        self.missing_identifiers = False

    def _compute_counts(self):
        def count(model, field):
            return dict(self.env[model]._read_group([(field, "in", self.ids)], [field], ["__count"]))

        readings = count("prepaid.meter.reading", "meter_id")
        commands = count("prepaid.meter.command", "meter_id")
        logs = count("prepaid.comm.log", "meter_id")
        for meter in self:
            meter.reading_count = readings.get(meter, 0)
            meter.command_count = commands.get(meter, 0)
            meter.comm_log_count = logs.get(meter, 0)

    def _today_start_utc(self):
        """Midnight of today in the user's time zone, as Odoo's naive UTC datetime."""
        tz_name = self.env.context.get("tz") or self.env.user.tz or "UTC"
        try:
            zone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = UTC
        local_today = datetime.now(zone).date()
        return datetime.combine(local_today, time.min, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)

    @api.depends("last_reading_at")
    @api.depends_context("tz")
    def _compute_read_today(self):
        start = self._today_start_utc()
        for meter in self:
            meter.read_today = bool(meter.last_reading_at and meter.last_reading_at >= start)

    def _search_read_today(self, operator, value):
        if operator not in ("=", "!="):
            raise UserError(self.env._("Unsupported search on 'read today'."))
        start = self._today_start_utc()
        positive = (operator == "=") == bool(value)
        if positive:
            return [("last_reading_at", ">=", start)]
        return ["|", ("last_reading_at", "=", False), ("last_reading_at", "<", start)]

    # -- constraints -----------------------------------------------------------------------------------------
    @api.constrains("address", "model_id")
    def _check_address(self):
        """The engine's addressing rule (:func:`prepaid_engine.sitemap.check_address`), said in the user's
        language. A meter without an address (a platform meter) has nothing to check."""
        for meter in self.filtered(lambda m: m.address and m.protocol):
            try:
                check_address(meter.protocol, meter.address)
            except ConfigError as exc:
                raise ValidationError(
                    self.env._(
                        "Address %(address)s of meter %(meter)s: expected %(shape)s.",
                        address=meter.address,
                        meter=meter.display_name,
                        shape=self._address_shape(exc),
                    )
                ) from exc

    def _address_shape(self, error):
        """What an address of the protocol looks like, from the engine's refusal (its kind and numbers)."""
        if error.kind == "address.digits":
            return self.env._("%(digits)s digits", digits=error.params["digits"])
        if error.kind == "address.modbus":
            return self.env._("a unit id 1-%(unit_max)s or unit/circuit", unit_max=error.params["unit_max"])
        return str(error)

    @api.constrains("model_id", "utility")
    def _check_model_utility(self):
        for meter in self:
            if meter.model_id.utility != meter.utility:
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s and its model %(model)s are not for the same utility.",
                        meter=meter.display_name,
                        model=meter.model_id.display_name,
                    )
                )

    @api.constrains("gateway_id", "bus_id", "address")
    def _check_bus(self):
        for meter in self:
            if meter.bus_id and meter.bus_id.gateway_id != meter.gateway_id:
                raise ValidationError(
                    self.env._("The bus of meter %(meter)s is not on its gateway.", meter=meter.display_name)
                )
            if meter.bus_id and not meter.address:
                raise ValidationError(
                    self.env._("Meter %(meter)s needs an address on its bus.", meter=meter.display_name)
                )

    @api.constrains("unit_id", "account_id", "tariff_id")
    def _check_links(self):
        for meter in self:
            if meter.unit_id and meter.unit_id.kind != "unit":
                raise ValidationError(
                    self.env._("Meter %(meter)s must be attached to a unit.", meter=meter.display_name)
                )
            if meter.unit_id and meter.account_id and meter.unit_id not in meter.account_id.sudo().unit_ids:
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s of unit %(unit)s cannot bill account %(account)s, which does not "
                        "cover that unit.",
                        meter=meter.display_name,
                        unit=meter.unit_id.sudo().display_name,
                        account=meter.account_id.sudo().display_name,
                    )
                )
            if meter.tariff_id and meter.tariff_id.utility != meter.utility:
                raise ValidationError(
                    self.env._(
                        "The tariff of meter %(meter)s is for another utility.", meter=meter.display_name
                    )
                )

    @api.onchange("gateway_id")
    def _onchange_gateway_id(self):
        if self.bus_id and self.bus_id.gateway_id != self.gateway_id:
            self.bus_id = False
        if self.gateway_id and not self.bus_id and len(self.gateway_id.bus_ids) == 1:
            self.bus_id = self.gateway_id.bus_ids

    # -- engine ----------------------------------------------------------------------------------------------
    def _prepare_engine_meter(self, models_cache=None):
        """The engine's :class:`MeterSpec` of this meter (``key`` = the record id)."""
        self.ensure_one()
        models_cache = {} if models_cache is None else models_cache
        if self.model_id.id not in models_cache:
            models_cache[self.model_id.id] = self.model_id.sudo()._get_engine_model()
        return MeterSpec(
            key=str(self.id),
            address=self.address or "",
            model=models_cache[self.model_id.id],
            ct_ratio=self.ct_ratio or 1,
            meter_number=self.meter_number or "",
            customer_number=self.customer_number or "",
            skip=self.sudo()._get_missing_identifiers(),
        )

    @api.model
    @api.private
    def _prepaid_meter_load_data(self, items):
        """Hook: what meters said of their own load control, as ingestion got it (``items``: ``(meter id,
        engine Reading)`` whose ``trip_reason`` / ``load_event_count`` / ``load_events`` are set, for
        meters whose ``MeterSpec.load_events_seen`` asked for them; ids may be of deleted meters). Called by
        :meth:`~.prepaid_meter_reading.PrepaidMeterReading._ingest` after the readings are stored, whatever
        their verdict. Nothing here: load control records them."""
        return None

    def _get_missing_identifiers(self):
        """The identifiers this meter is known to lack, as a set (the engine's ``MeterSpec.skip``)."""
        self.ensure_one()
        return frozenset(filter(None, (name.strip() for name in (self.missing_identifiers or "").split(","))))

    @api.model
    @api.private
    def _remember_missing_identifiers(self, warnings):
        """Remember on each meter what the poll's :class:`~prepaid_engine.types.PollWarning` values say it
        lacks (the next polls do not ask again); returns the warnings narrowed to what was not known yet,
        for the communication log (a meter is logged once per identifier, not every cycle)."""
        by_meter = defaultdict(list)
        for warning in warnings:
            if warning.meter_key.isdecimal():
                by_meter[int(warning.meter_key)].append(warning)
        news = []
        for meter in self.sudo().browse(list(by_meter)).exists():
            known = list(meter._get_missing_identifiers())
            for warning in by_meter[meter.id]:
                new = tuple(name for name in warning.missing if name not in known)
                if new:
                    known += new
                    news.append(dataclasses.replace(warning, missing=new))
            if len(known) != len(meter._get_missing_identifiers()):
                meter.missing_identifiers = ", ".join(known)
        return news

    def action_ask_again(self):
        """Forget what these meters were found lacking: the next poll asks their model's identifiers again
        (after a firmware update, or to check)."""
        self.check_access("write")
        self.missing_identifiers = False
        return True

    def _get_effective_tariff(self):
        """The tariff that prices this meter: its own override, else the unit's (inherited up the tree)."""
        self.ensure_one()
        if self.tariff_id:
            return self.tariff_id
        if self.unit_id:
            return self.unit_id._get_effective_tariff(self.utility)
        return self.env["prepaid.tariff"]

    # -- buttons ---------------------------------------------------------------------------------------------
    def action_read_now(self):
        """Read these meters now through their gateways (one engine call) and report what came back."""
        self.check_access("write")
        unreachable = self.filtered(lambda m: not m.gateway_id or not m.bus_id)
        if unreachable:
            raise UserError(
                self.env._(
                    "%(meters)s not behind a gateway: they report through their platform.",
                    meters=", ".join(unreachable.mapped("display_name")),
                )
            )
        result = self.gateway_id.sudo()._poll(meters=self.sudo())
        Gateway = self.env["prepaid.gateway"]
        readings = {r.meter_key: r for r in result.readings}
        if len(self) > 1:
            return Gateway._notify(
                self.env._("Read Now"),
                self.env._(
                    "%(read)s of %(total)s meters answered, %(errors)s errors.",
                    read=len(readings),
                    total=len(self),
                    errors=len(result.errors),
                ),
                "success" if len(readings) == len(self) else "warning",
            )
        reading = readings.get(str(self.id))
        title = self.env._("Read %(meter)s", meter=self.display_name)
        if reading is None:
            errors = "; ".join(e.message for e in result.errors) or self.env._("no answer")
            return Gateway._notify(
                title, self.env._("The meter did not answer: %(error)s", error=errors), "danger"
            )
        supplies = dict(self._fields["supply"]._description_selection(self.env))
        return Gateway._notify(
            title,
            self.env._(
                "Index %(total)s %(unit)s, supply %(supply)s.",
                total=reading.total if reading.total is not None else "-",
                unit=self.unit,
                supply=supplies.get(str(reading.supply), "-") if reading.supply else "-",
            ),
        )

    def _enqueue_manual(self, kind):
        """Queue an urgent manual command of ``kind`` for these meters (the executor cron is woken)."""
        self.check_access("write")
        wrong = self.filtered(lambda m: COMMAND_UTILITY.get(kind, m.utility) != m.utility)
        if wrong:
            raise UserError(
                self.env._(
                    "This command does not apply to %(meters)s.",
                    meters=", ".join(wrong.mapped("display_name")),
                )
            )
        commands = (
            self.env["prepaid.meter.command"]
            .sudo()
            ._enqueue(
                [{"meter_id": meter.id, "kind": kind, "reason": "manual"} for meter in self],
                urgent=True,
            )
        )
        kinds = dict(commands._fields["kind"]._description_selection(self.env))
        return self.env["prepaid.gateway"]._notify(
            self.env._("Command queued"),
            self.env._(
                "%(kind)s queued for %(count)s meter(s): %(names)s.",
                kind=kinds[kind],
                count=len(self),
                names=", ".join(commands.mapped("name")),
            ),
        )

    def action_trip(self):
        return self._enqueue_manual("trip")

    def action_close(self):
        return self._enqueue_manual("close")

    def action_keep_power_on(self):
        return self._enqueue_manual("keep_power_on")

    def action_keep_power_off(self):
        return self._enqueue_manual("keep_power_off")

    def action_valve_open(self):
        return self._enqueue_manual("valve_open")

    def action_valve_close(self):
        return self._enqueue_manual("valve_close")

    def action_view_readings(self):
        self.ensure_one()
        self.check_access("read")
        return self.env["prepaid.gateway"]._action_related(
            "prepaid_metering.prepaid_meter_reading_action",
            [("meter_id", "=", self.id)],
            {"default_meter_id": self.id},
        )

    def action_view_commands(self):
        self.ensure_one()
        self.check_access("read")
        return self.env["prepaid.gateway"]._action_related(
            "prepaid_metering.prepaid_meter_command_action",
            [("meter_id", "=", self.id)],
            {"default_meter_id": self.id},
        )

    def action_view_comm_log(self):
        self.ensure_one()
        self.check_access("read")
        return self.env["prepaid.gateway"]._action_related(
            "prepaid_metering.prepaid_comm_log_action", [("meter_id", "=", self.id)]
        )
