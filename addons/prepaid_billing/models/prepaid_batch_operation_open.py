from odoo import models
from odoo.addons.prepaid_base.tools import bulk_sql
from odoo.exceptions import AccessError, UserError, ValidationError


class PrepaidBatchOperation(models.Model):
    """A batch of kind *Open Accounts* opens the ready account openings of its targets: one result line per
    meter of each opening (its unit's meters), done when the opening opened, failed with the reason when it
    could not (each opening in its own savepoint: one refused opening never stops the others)."""

    _inherit = "prepaid.batch.operation"

    def _prepaid_openings_in_scope(self):
        self.ensure_one()
        domain = [("state", "=", "ready"), ("company_id", "=", self.company_id.id)]
        if self.property_ids:
            domain.append(("unit_id", "child_of", self.property_ids.ids))
        openings = self.env["prepaid.account.opening"].search(domain, order="id")
        meters = self._target_meters()
        return openings.filtered(lambda o: not o.meter_ids or o.meter_ids & meters)

    def _targets(self):
        if self.kind != "open_accounts":
            return super()._targets()
        openings = self._prepaid_openings_in_scope()
        if not openings and not self.line_ids:
            raise UserError(self.env._("No ready account opening among the targets of this batch."))
        return [(meter.id, False) for meter in openings.meter_ids.sorted("id")]

    def _prepaid_run_open_accounts(self, lines):
        Line = self.env["prepaid.batch.operation.line"]
        by_meter = {line.meter_id.id: line for line in lines if line.meter_id}
        results = []
        for opening in self._prepaid_openings_in_scope().filtered(lambda o: o.meter_ids.ids):
            mine = [by_meter[m] for m in opening.meter_ids.ids if m in by_meter]
            if not mine:
                continue
            try:
                with self.env.cr.savepoint():
                    opening._open()
            except (UserError, ValidationError, AccessError) as exc:
                results += [(line.id, "failed", str(exc)) for line in mine]
                continue
            state = "done" if opening.state == "opened" else "failed"
            error = "" if state == "done" else self.env._("The opening was not opened.")
            results += [(line.id, state, error) for line in mine]
        bulk_sql.update_rows(Line, ["state", "error"], results)
        Line.invalidate_model(["state", "error"])
