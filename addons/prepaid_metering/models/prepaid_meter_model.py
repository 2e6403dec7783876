from odoo import api, fields, models
from odoo.exceptions import ValidationError

from prepaid_engine.catalog import validate_model
from prepaid_engine.errors import ConfigError
from prepaid_engine.types import MeterModel, Protocol, Utility

PROTOCOL_SELECTION = [
    (str(Protocol.DLT645_2007), "DL/T 645-2007"),
    (str(Protocol.DLT645_1997), "DL/T 645-1997"),
    (str(Protocol.CJT188), "CJ/T 188"),
    (str(Protocol.MODBUS), "Modbus"),
]
UTILITY_SELECTION = [(str(Utility.ELECTRICITY), "Electricity"), (str(Utility.WATER), "Water")]


class PrepaidMeterModel(models.Model):
    """A meter model as data: the engine's MeterModel JSON (DI set or register map) kept as text, so staff can
    add or adjust a model without code. The definition is the only source of truth: code, protocol and
    utility must agree with it."""

    _name = "prepaid.meter.model"
    _description = "Meter Model"
    _order = "protocol, code"
    _rec_names_search = ["name", "code"]

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True, index=True)
    protocol = fields.Selection(PROTOCOL_SELECTION, required=True)
    utility = fields.Selection(UTILITY_SELECTION, required=True)
    definition = fields.Text(
        required=True,
        help="The engine's meter model as JSON: data identifiers to read (DL/T 645, CJ/T 188) or the "
        "register map and command writes (Modbus), and protocol options.",
    )
    active = fields.Boolean(default=True)
    notes = fields.Text()
    # The model's capacity (what plausibility judges readings against), as its definition says it.
    max_current = fields.Float(
        string="Max Current (A)",
        compute="_compute_capacity",
        store=True,
        digits=(16, 1),
        help="Maximum current per phase at the meter's terminals (before a current transformer).",
    )
    nominal_voltage = fields.Float(
        string="Voltage (V)", compute="_compute_capacity", store=True, digits=(16, 1)
    )
    phases = fields.Integer(compute="_compute_capacity", store=True)
    max_flow = fields.Float(
        string="Max Flow (m³/h)",
        compute="_compute_capacity",
        store=True,
        digits=(16, 3),
        help="Overload flow of a water meter.",
    )
    meter_count = fields.Integer(compute="_compute_meter_count")

    _sql_constraints = [("code_uniq", "UNIQUE(code)", "A meter model code must be unique.")]

    def _compute_meter_count(self):
        counts = dict(
            self.env["prepaid.meter"]._read_group([("model_id", "in", self.ids)], ["model_id"], ["__count"])
        )
        for model in self:
            model.meter_count = counts.get(model, 0)

    @api.depends("definition")
    def _compute_capacity(self):
        for model in self:
            try:
                capacity = MeterModel.from_json(model.definition or "").capacity
            except ConfigError:
                capacity = None
            model.max_current = float(capacity.max_current) if capacity and capacity.max_current else 0.0
            model.nominal_voltage = float(capacity.voltage) if capacity and capacity.voltage else 0.0
            model.phases = capacity.phases or 0 if capacity else 0
            model.max_flow = float(capacity.max_flow) if capacity and capacity.max_flow else 0.0

    @api.constrains("definition", "code", "protocol", "utility")
    def _check_definition(self):
        for model in self:
            try:
                engine_model = validate_model(MeterModel.from_json(model.definition or ""))
            except ConfigError as exc:
                raise ValidationError(
                    self.env._(
                        "The definition of meter model %(model)s is not valid: %(error)s",
                        model=model.display_name,
                        error=str(exc),
                    )
                ) from exc
            mismatches = [
                fname
                for fname, value in (
                    ("code", engine_model.code),
                    ("protocol", str(engine_model.protocol)),
                    ("utility", str(engine_model.utility)),
                )
                if model[fname] != value
            ]
            if mismatches:
                raise ValidationError(
                    self.env._(
                        "The definition of meter model %(model)s does not match its fields: %(fields)s.",
                        model=model.display_name,
                        fields=", ".join(mismatches),
                    )
                )

    def _get_engine_model(self):
        """The engine's :class:`~prepaid_engine.types.MeterModel` of this record."""
        self.ensure_one()
        return MeterModel.from_json(self.definition)

    @api.model
    def _prepare_vals_from_engine(self, engine_model):
        """Record values for an engine MeterModel (used by the site map import for missing models)."""
        return {
            "name": engine_model.name,
            "code": engine_model.code,
            "protocol": str(engine_model.protocol),
            "utility": str(engine_model.utility),
            "definition": engine_model.to_json(),
        }

    def action_view_meters(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_metering.prepaid_meter_action")
        action["domain"] = [("model_id", "=", self.id)]
        action["context"] = {"default_model_id": self.id, "default_utility": self.utility}
        return action
