import re

from odoo import fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_manager
from odoo.exceptions import AccessError, UserError

from prepaid_engine.errors import ConfigError
from prepaid_engine.load import learn_signature

from ..models.prepaid_appliance import CATEGORY_SELECTION


class PrepaidLoadLearnWizard(models.TransientModel):
    """Name the appliance a meter learnt (the engine's :func:`learn_signature` over the samples since the
    start, the room's load before it subtracted) and add it to the catalogue."""

    _name = "prepaid.load.learn.wizard"
    _description = "Learn an Appliance"

    meter_id = fields.Many2one("prepaid.meter", required=True, readonly=True)
    name = fields.Char(required=True)
    category = fields.Selection(CATEGORY_SELECTION, required=True, default="allowed")
    add_to_whitelist = fields.Boolean(
        default=True, help="Allowed appliances: add it to the whitelist of the meter's load profile."
    )

    def action_learn(self):
        self.ensure_one()
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers learn appliances."))
        meter = self.meter_id
        meter.check_access("write")
        if not meter.load_learning_since:
            raise UserError(self.env._("%(meter)s is not learning an appliance.", meter=meter.display_name))
        baseline, samples = meter._prepaid_learning_samples()
        Appliance = self.env["prepaid.appliance"].sudo()
        slug = re.sub(r"[^a-z0-9]+", "_", (self.name or "").lower()).strip("_") or "appliance"
        code = f"{slug}_{meter.id}"
        if Appliance.with_context(active_test=False).search_count([("code", "=", code)]):
            code = f"{code}_{fields.Datetime.now():%Y%m%d%H%M%S}"
        try:
            signature = learn_signature(
                samples, code=code, name=self.name.strip(), baseline=baseline, category=self.category
            )
        except ConfigError as exc:
            raise UserError(
                self.env._(
                    "Nothing to learn yet (%(error)s): leave the appliance on for a few more polls.",
                    error=exc,
                )
            ) from exc
        appliance = Appliance.create(
            {
                "name": signature.name,
                "code": signature.code,
                "category": str(signature.category),
                "power_min": signature.power_min,
                "power_max": signature.power_max,
                "pf_min": float(signature.pf_min),
                "pf_max": float(signature.pf_max),
                "resistive": signature.resistive,
                "surge_ratio": float(signature.surge_ratio),
                "learned_meter_id": meter.id,
            }
        )
        profile = meter.load_profile_id
        if self.add_to_whitelist and self.category == "allowed" and profile:
            profile.sudo().whitelist_ids = [(4, appliance.id)]
        internal(meter.sudo()).write({"load_learning_since": False})
        meter.sudo().message_post(
            body=self.env._(
                "Learnt %(appliance)s: %(low)s-%(high)s W.",
                appliance=appliance.name,
                low=appliance.power_min,
                high=appliance.power_max,
            )
        )
        return appliance._get_records_action()
