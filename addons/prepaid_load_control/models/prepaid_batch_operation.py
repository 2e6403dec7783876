from odoo import fields, models
from odoo.addons.prepaid_base.tools import bulk_sql
from odoo.exceptions import UserError


class PrepaidBatchOperation(models.Model):
    """A batch of kind *Write Load Settings* writes to each targeted meter the parameters (power limit,
    limit mode, malicious-load ranges, restore policy) of the load profile that applies to it, one
    set-load-parameters command per meter through the queue. A meter without a profile, or one whose model or
    wiring cannot hold the parameters (the platform enforces its profile), gets a skipped line saying so."""

    _inherit = "prepaid.batch.operation"

    kind = fields.Selection(
        selection_add=[("load_settings", "Write Load Settings")], ondelete={"load_settings": "cascade"}
    )

    def _target_meters(self):
        meters = super()._target_meters()
        if self.kind == "load_settings":  # load profiles are electricity's
            meters = meters.filtered(lambda m: m.utility == "electricity")
        return meters

    def _run_lines(self, lines):
        if self.kind != "load_settings":
            return super()._run_lines(lines)
        if not lines:
            return None
        meters = lines.meter_id
        profiles = self.env["prepaid.load.profile"]._profiles_of(meters)
        enforcement = meters._prepaid_load_enforcement()
        values, settled, to_send = {}, [], {}
        for line in lines:
            profile = profiles.get(line.meter_id.id)
            if not profile:
                settled.append((line.id, "skipped", self.env._("No load profile applies to this meter.")))
                continue
            if enforcement[line.meter_id.id] != "meter":
                settled.append(
                    (line.id, "skipped", self.env._("The platform enforces this meter's load profile."))
                )
                continue
            if profile.id not in values:
                try:
                    values[profile.id] = profile._prepaid_parameter_json()
                except UserError as exc:
                    values[profile.id] = exc
            if isinstance(values[profile.id], UserError):
                settled.append((line.id, "failed", str(values[profile.id])))
            else:
                to_send[line.id] = values[profile.id]
        Line = self.env["prepaid.batch.operation.line"]
        bulk_sql.update_rows(Line, ["state", "error"], settled)
        Line.invalidate_model(["state", "error"])

        def command_vals(line):
            return {"kind": "set_load_parameters", "load_parameters": to_send[line.id]}

        self._run_commands(lines, command_vals, only=lambda line: line.id in to_send)
        return None
