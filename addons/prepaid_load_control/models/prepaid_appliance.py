from decimal import Decimal

from odoo import api, fields, models
from odoo.addons.prepaid_base.tools.numbers import check_numbers
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from prepaid_engine.errors import ConfigError
from prepaid_engine.load import Appliance, builtin_appliances

APPLIANCE_NUMBERS = ("power_min", "power_max", "pf_min", "pf_max", "surge_ratio")
CATEGORY_SELECTION = [("allowed", "Allowed"), ("forbidden", "Forbidden")]


class PrepaidAppliance(models.Model):
    """An appliance's load signature: the power and power-factor ranges the engine recognises it by. The
    catalogue ships with the engine's appliances (``prepaid_engine/data/appliances.json``: laptops, fans,
    kettles, heaters...); staff add learned ones."""

    _name = "prepaid.appliance"
    _description = "Appliance Signature"
    _order = "category, name, id"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True, help="Lower-case letters, digits and underscores; unique.")
    category = fields.Selection(
        CATEGORY_SELECTION,
        required=True,
        default="allowed",
        help="Allowed appliances are whitelisted by default; forbidden ones (kettles, heaters) are what the "
        "malicious-load rule is for.",
    )
    power_min = fields.Integer(string="Power From (W)", required=True)
    power_max = fields.Integer(string="Power To (W)", required=True)
    pf_min = fields.Float(string="Power Factor From", digits=(3, 2), required=True, default=0.5)
    pf_max = fields.Float(string="Power Factor To", digits=(3, 2), required=True, default=1.0)
    resistive = fields.Boolean(help="A resistive load (heating element): power factor about 1.")
    surge_ratio = fields.Float(digits=(6, 2), default=1.0, help="Start-up surge over the running power.")
    builtin = fields.Boolean(readonly=True, help="Shipped with the suite (updated with it).")
    learned_meter_id = fields.Many2one("prepaid.meter", string="Learned On", readonly=True)
    active = fields.Boolean(default=True)
    note = fields.Text()

    _sql_constraints = [("code_uniq", "UNIQUE(code)", "An appliance code is unique.")]

    @api.model_create_multi
    def create(self, vals_list):
        check_numbers(self, vals_list, APPLIANCE_NUMBERS)
        return super().create(vals_list)

    def write(self, vals):
        check_numbers(self, [vals], APPLIANCE_NUMBERS)
        return super().write(vals)

    @api.constrains("code", "power_min", "power_max", "pf_min", "pf_max", "resistive", "surge_ratio")
    def _check_signature(self):
        for appliance in self:
            try:
                appliance._prepaid_engine_appliance()
            except ConfigError as exc:
                raise ValidationError(
                    self.env._("%(appliance)s: %(error)s", appliance=appliance.display_name, error=exc)
                ) from exc

    def _prepaid_engine_appliance(self):
        """The engine's :class:`Appliance` of this record."""
        self.ensure_one()
        return Appliance(
            code=self.code,
            name=self.name,
            power_min=self.power_min,
            power_max=self.power_max,
            pf_min=Decimal(f"{self.pf_min:.2f}"),
            pf_max=Decimal(f"{self.pf_max:.2f}"),
            resistive=self.resistive,
            surge_ratio=Decimal(f"{self.surge_ratio or 1.0:.2f}"),
            category=self.category,
        )

    @api.model
    def _sync_builtin(self):
        """Create or update the engine's catalogue (English names, Chinese translations); staff's own
        appliances and their changes to what is not a signature (active, note) are kept."""
        existing = {a.code: a for a in self.with_context(active_test=False).search([])}
        for appliance in builtin_appliances().values():
            vals = {
                "name": appliance.name,
                "category": str(appliance.category),
                "power_min": appliance.power_min,
                "power_max": appliance.power_max,
                "pf_min": float(appliance.pf_min),
                "pf_max": float(appliance.pf_max),
                "resistive": appliance.resistive,
                "surge_ratio": float(appliance.surge_ratio),
                "builtin": True,
            }
            record = existing.get(appliance.code)
            if record:
                record.write(vals)
            else:
                record = self.create({**vals, "code": appliance.code})
            if appliance.name_zh:
                # The Chinese name goes into the translated column even while Chinese is not installed
                # (update_field_translations refuses an inactive language); it shows once it is.
                record.flush_recordset(["name"])
                self.env.cr.execute(
                    SQL(
                        "UPDATE prepaid_appliance SET name = name || jsonb_build_object('zh_CN', %s::text) "
                        "WHERE id = %s",
                        appliance.name_zh,
                        record.id,
                    )
                )
                record.invalidate_recordset(["name"])
        return True
