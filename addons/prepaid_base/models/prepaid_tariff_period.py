from odoo import api, fields, models

from .prepaid_tariff import BAND_SELECTION


class PrepaidTariffPeriod(models.Model):
    """One daily time-of-use period: from ``start`` (hour of day, local time of the property) until the next
    period's start, consumption is priced in ``band``."""

    _name = "prepaid.tariff.period"
    _description = "Prepaid Tariff Daily Period"
    _order = "tariff_id, start, id"

    tariff_id = fields.Many2one("prepaid.tariff", required=True, index=True, ondelete="cascade")
    sequence = fields.Integer(
        string="Period",
        compute="_compute_sequence",
        store=True,
        help="Period number within the day (1 to 8), in order of start time, as programmed into meters.",
    )
    start = fields.Float(required=True, default=0.0, help="Hour of the day (local time) the period starts.")
    band = fields.Selection(BAND_SELECTION, required=True, default="flat")

    @api.depends("tariff_id.period_ids.start")
    def _compute_sequence(self):
        for tariff in self.tariff_id:
            for number, period in enumerate(tariff.period_ids.sorted(lambda p: (p.start, p.id)), start=1):
                period.sequence = number
        for period in self.filtered(lambda p: not p.tariff_id):
            period.sequence = 0

    @api.constrains("start", "band", "tariff_id")
    def _check_tariff_periods(self):
        self.tariff_id._check_engine_rules()
