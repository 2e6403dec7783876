from odoo import api, fields, models
from odoo.exceptions import ValidationError


class PrepaidMeterReplacement(models.Model):
    """A meter swapped in place: the old meter's final index and the new one's initial index, so the
    settlement charges the consumption on both sides of the swap instead of seeing the index fall."""

    _name = "prepaid.meter.replacement"
    _description = "Meter Replacement"
    _order = "replaced_at desc, id desc"
    _check_company_auto = True

    meter_id = fields.Many2one(
        "prepaid.meter", required=True, index=True, check_company=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    replaced_at = fields.Datetime(required=True, default=fields.Datetime.now)
    old_final = fields.Float(string="Old Meter Final Index", digits=(16, 3), required=True)
    new_initial = fields.Float(string="New Meter Initial Index", digits=(16, 3), required=True)
    unit = fields.Char(related="meter_id.unit", string="Unit of Measure")
    note = fields.Char()

    _sql_constraints = [
        ("indexes_positive", "CHECK(old_final >= 0 AND new_initial >= 0)", "Indexes cannot be negative."),
        ("meter_time_uniq", "UNIQUE(meter_id, replaced_at)", "This meter was already replaced at that time."),
    ]

    @api.constrains("replaced_at", "meter_id")
    def _check_not_settled(self):
        for replacement in self:
            cursor = replacement.meter_id.settlement_cursor_ids[:1]
            if cursor.read_at and replacement.replaced_at <= cursor.read_at:
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s is settled up to %(date)s: record the replacement before it is read "
                        "again, or adjust the balance by hand.",
                        meter=replacement.meter_id.display_name,
                        date=cursor.read_at,
                    )
                )
