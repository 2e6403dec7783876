from datetime import timedelta
from decimal import Decimal

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_manager
from odoo.addons.prepaid_base.tools.numbers import check_numbers
from odoo.exceptions import AccessError, UserError, ValidationError

from prepaid_engine.errors import ConfigError
from prepaid_engine.load import MAX_RANGES, LoadProfile, PowerRange, RestorePolicy
from prepaid_engine.load.params import parameters_to_json, profile_parameters

PROFILE_NUMBERS = ("power_limit_kw", "pf_threshold", "restore_delay", "restores_per_day", "sequence")
MODE_SELECTION = [("off", "Off"), ("alarm", "Alarm Only"), ("trip", "Trip")]
# Most specific wins: a profile on the meter, else on its unit, else its floor, else its building, else site.
SCOPE_ORDER = ("meter", "unit", "floor", "building", "site")


class PrepaidLoadProfile(models.Model):
    """What a room may draw: a power limit, the malicious-load rule (controlled power ranges and a power
    factor threshold: resistive loads such as kettles and heaters sit near 1.0), the whitelist of appliances
    that are never malicious, and the restore policy after a load trip. Applied to sites, buildings, floors,
    units or single meters; the most specific one applies to a meter.

    Meters whose model holds the load-control parameters enforce the profile themselves once a manager applies
    it (:meth:`action_apply_to_meters`: one set-load-parameters command each, confirmed by reading them
    back); the platform enforces it for the others, from their polled power."""

    _name = "prepaid.load.profile"
    _description = "Load Profile"
    _inherit = ["mail.thread"]
    _order = "sequence, name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    power_limit_kw = fields.Float(
        string="Power Limit (kW)", digits=(8, 3), tracking=True, help="Total active power; 0: no limit."
    )
    limit_mode = fields.Selection(
        MODE_SELECTION, string="Over the Limit", required=True, default="trip", tracking=True
    )
    malicious_mode = fields.Selection(
        MODE_SELECTION, string="Malicious Load", required=True, default="trip", tracking=True
    )
    range_ids = fields.One2many("prepaid.load.profile.range", "profile_id", string="Controlled Power Ranges")
    pf_threshold = fields.Float(
        string="Power Factor Threshold",
        digits=(3, 2),
        default=0.90,
        tracking=True,
        help="A switch-on inside a controlled range with a power factor at or above this is a resistive load "
        "(kettle, heater, rice cooker): malicious unless whitelisted.",
    )
    whitelist_ids = fields.Many2many(
        "prepaid.appliance",
        "prepaid_load_profile_appliance_rel",
        "profile_id",
        "appliance_id",
        default=lambda self: self.env["prepaid.appliance"].search([("category", "=", "allowed")]),
        help="Appliances that are never malicious in this profile.",
    )
    restore_delay = fields.Integer(
        string="Restore After (s)", default=300, tracking=True, help="Seconds after a load trip."
    )
    restores_per_day = fields.Integer(
        string="Automatic Restores per Day",
        default=3,
        tracking=True,
        help="Per meter and local day, counted by the platform; the trip after them stays open until a "
        "manager restores it.",
    )
    property_ids = fields.Many2many(
        "prepaid.property",
        "prepaid_load_profile_property_rel",
        "profile_id",
        "property_id",
        string="Applies To",
        check_company=True,
        help="Sites, buildings, floors or units: every meter below them, unless a more specific one applies.",
    )
    meter_ids = fields.Many2many(
        "prepaid.meter",
        "prepaid_load_profile_meter_rel",
        "profile_id",
        "meter_id",
        string="Meters",
        check_company=True,
        domain="[('utility', '=', 'electricity')]",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Responsible",
        default=lambda self: self.env.user,
        help="Gets the activities of this profile's events where the building has no manager.",
    )
    note = fields.Text()
    meter_side_count = fields.Integer(
        string="Enforced by the Meters",
        compute="_compute_enforcement",
        help="Meters this profile applies to whose model holds its parameters: Apply to Meters writes them.",
    )
    platform_meter_ids = fields.Many2many(
        "prepaid.meter",
        string="Enforced by the Platform",
        compute="_compute_enforcement",
        help="Meters this profile applies to that cannot hold its parameters (their model has none, or they "
        "are not behind a gateway): the platform enforces it from their polled power.",
    )
    platform_meter_count = fields.Integer(
        string="Enforced by the Platform (Count)", compute="_compute_enforcement"
    )

    @api.depends("meter_ids", "property_ids")
    def _compute_enforcement(self):
        for profile in self:
            meters = profile._prepaid_applied_meters() if profile.id else self.env["prepaid.meter"]
            enforcement = meters._prepaid_load_enforcement()
            platform = meters.filtered(lambda m, e=enforcement: e[m.id] == "platform")
            # listed as far as the reader may see them (an operator's scope), counted all
            profile.platform_meter_ids = platform.with_env(self.env)._filtered_access("read")
            profile.platform_meter_count = len(platform)
            profile.meter_side_count = len(meters) - len(platform)

    _sql_constraints = [
        ("restore_delay_positive", "CHECK(restore_delay >= 0)", "A restore delay cannot be negative."),
        ("restores_positive", "CHECK(restores_per_day >= 0)", "Restores per day cannot be negative."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        check_numbers(self, vals_list, PROFILE_NUMBERS)
        return super().create(vals_list)

    def write(self, vals):
        check_numbers(self, [vals], PROFILE_NUMBERS)
        return super().write(vals)

    @api.constrains("power_limit_kw", "pf_threshold", "restore_delay", "restores_per_day", "range_ids")
    def _check_profile(self):
        for profile in self:
            if len(profile.range_ids) > MAX_RANGES:
                raise ValidationError(
                    self.env._("A profile has at most %(count)s controlled power ranges.", count=MAX_RANGES)
                )
            try:
                profile._prepaid_engine_profile()
                profile._prepaid_restore_policy()
            except ConfigError as exc:
                raise ValidationError(
                    self.env._("%(profile)s: %(error)s", profile=profile.display_name, error=exc)
                ) from exc

    def _prepaid_engine_profile(self):
        """The engine's :class:`LoadProfile` of this record."""
        self.ensure_one()
        return LoadProfile(
            power_limit_kw=Decimal(f"{self.power_limit_kw:.3f}") if self.power_limit_kw else None,
            limit_mode=self.limit_mode,
            malicious_mode=self.malicious_mode,
            ranges=tuple(PowerRange(r.low_w, r.high_w) for r in self.range_ids.sorted("low_w")),
            pf_threshold=Decimal(f"{self.pf_threshold:.2f}"),
            whitelist=tuple(a._prepaid_engine_appliance() for a in self.whitelist_ids),
        )

    def _prepaid_restore_policy(self):
        self.ensure_one()
        return RestorePolicy(timedelta(seconds=max(self.restore_delay, 0)), max(self.restores_per_day, 0))

    def _prepaid_parameter_values(self):
        """The meter parameter values that enforce this profile (the engine's :func:`profile_parameters`)."""
        self.ensure_one()
        return profile_parameters(self._prepaid_engine_profile(), self._prepaid_restore_policy())

    def _prepaid_parameter_json(self):
        """The parameter values as a set-load-parameters command carries them (JSON); UserError when the
        profile cannot be written to a meter."""
        self.ensure_one()
        try:
            return parameters_to_json(self._prepaid_parameter_values())
        except ConfigError as exc:
            message = self.env._("%(profile)s: %(error)s", profile=self.display_name, error=exc)
            raise UserError(message) from exc

    def _prepaid_applied_meters(self):
        """The active electricity meters this profile applies to (it is their most specific profile)."""
        self.ensure_one()
        properties = self.property_ids.ids
        domain = [("id", "in", self.meter_ids.ids)]
        if properties:
            domain = [
                "|",
                "|",
                *domain,
                ("unit_id", "child_of", properties),
                ("building_id", "child_of", properties),
            ]
        candidates = (
            self.env["prepaid.meter"]
            .sudo()
            .search([("utility", "=", "electricity"), ("company_id", "=", self.company_id.id), *domain])
        )
        profiles = self._profiles_of(candidates)
        return candidates.filtered(lambda m: profiles.get(m.id) == self)

    def action_apply_to_meters(self):
        """Managers: write these profiles' parameters to the meters they apply to that can hold them (one
        set-load-parameters command per meter, all queued at once; a meter's queued one is replaced). The
        executor confirms each by reading the values back; the other meters stay with the platform."""
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers apply load profiles to meters."))
        self.check_access("write")
        vals_list, platform = [], self.env["prepaid.meter"]
        for profile in self:
            meters = profile._prepaid_applied_meters()
            enforcement = meters._prepaid_load_enforcement()
            platform |= meters.filtered(lambda m, e=enforcement: e[m.id] == "platform")
            values = profile._prepaid_parameter_json()
            vals_list += [
                {
                    "meter_id": meter.id,
                    "kind": "set_load_parameters",
                    "load_parameters": values,
                    "reason": "batch" if len(meters) > 1 else "manual",
                    "origin": profile.name,
                    "res_model": self._name,
                    "res_id": profile.id,
                }
                for meter in meters
                if enforcement[meter.id] == "meter"
            ]
        Command = self.env["prepaid.meter.command"].sudo()
        commands = Command._enqueue(vals_list, urgent=True) if vals_list else Command.browse()
        message = self.env._(
            "Load parameters queued for %(count)s meter(s); %(platform)s enforced by the platform.",
            count=len(commands),
            platform=len(platform),
        )
        return self.env["prepaid.gateway"]._notify(
            self.env._("Apply to Meters"), message, "success" if commands else "warning"
        )

    @api.model
    def _profiles_of(self, meters):
        """``{meter id: profile}``: the most specific active profile of each meter (on the meter, else on
        its unit, floor, building or site; the lowest sequence among profiles on the same record)."""
        profiles = self.sudo().search([("company_id", "in", meters.company_id.ids)], order="sequence, id")
        by_meter, by_property = {}, {}
        for profile in profiles:
            for meter in profile.meter_ids:
                by_meter.setdefault(meter.id, profile)
            for prop in profile.property_ids:
                by_property.setdefault(prop.id, profile)
        found = {}
        for meter in meters:
            profile = by_meter.get(meter.id)
            unit = meter.unit_id
            for prop in (unit, unit.floor_id, meter.building_id or unit.building_id, unit.site_id):
                if profile or not prop:
                    continue
                profile = by_property.get(prop.id)
            if profile:
                found[meter.id] = profile
        return found


class PrepaidLoadProfileRange(models.Model):
    _name = "prepaid.load.profile.range"
    _description = "Controlled Power Range"
    _order = "profile_id, low_w"

    profile_id = fields.Many2one("prepaid.load.profile", required=True, ondelete="cascade", index=True)
    low_w = fields.Integer(string="From (W)", required=True, default=300)
    high_w = fields.Integer(string="To (W)", required=True, default=6000)

    @api.model_create_multi
    def create(self, vals_list):
        check_numbers(self, vals_list, ("low_w", "high_w"))
        return super().create(vals_list)

    def write(self, vals):
        check_numbers(self, [vals], ("low_w", "high_w"))
        return super().write(vals)

    @api.constrains("low_w", "high_w")
    def _check_range(self):
        for line in self:
            try:
                PowerRange(line.low_w, line.high_w)
            except ConfigError as exc:
                raise ValidationError(str(exc)) from exc
