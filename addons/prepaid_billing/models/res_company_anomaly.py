from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    # Anomaly detection (prepaid.anomaly._cron_detect_anomalies)
    prepaid_anomaly_zero_days = fields.Integer(
        string="Zero Consumption Days",
        default=3,
        help="An occupied unit whose meter counts nothing for this many days in a row raises an anomaly.",
    )
    prepaid_anomaly_spike_factor = fields.Float(
        string="Spike Factor",
        default=6.0,
        help="A day's consumption above the meter's median by more than this many robust standard "
        "deviations (median absolute deviation x 1.4826) is a spike.",
    )
    prepaid_anomaly_spike_floor = fields.Float(
        string="Spike Floor",
        default=5.0,
        help="A spike must also exceed the median by at least this much (kWh or m³), so small meters do "
        "not alarm.",
    )
    prepaid_anomaly_spike_min_days = fields.Integer(
        string="Spike History Days",
        default=14,
        help="Days of history a meter needs before spikes are judged.",
    )
    prepaid_anomaly_not_read_cycles = fields.Integer(
        string="Missed Reading Cycles",
        default=96,
        help="A meter without a reading for more than this many reading cycles raises an anomaly.",
    )
    prepaid_anomaly_line_loss_percent = fields.Float(
        string="Line Loss Threshold (%)",
        default=10.0,
        help="A master meter counting more than its sub-meters together by more than this share raises an "
        "anomaly.",
    )
    prepaid_anomaly_balance_tolerance = fields.Monetary(
        string="Balance Tolerance",
        currency_field="currency_id",
        default=1.0,
        help="Meter-side billing: a meter balance that differs from the platform's by more raises an "
        "anomaly.",
    )

    @api.constrains(
        "prepaid_anomaly_zero_days",
        "prepaid_anomaly_spike_factor",
        "prepaid_anomaly_spike_floor",
        "prepaid_anomaly_spike_min_days",
        "prepaid_anomaly_not_read_cycles",
        "prepaid_anomaly_line_loss_percent",
        "prepaid_anomaly_balance_tolerance",
    )
    def _check_anomaly_settings(self):
        for company in self:
            counts = (
                company.prepaid_anomaly_zero_days,
                company.prepaid_anomaly_spike_min_days,
                company.prepaid_anomaly_not_read_cycles,
            )
            amounts = (
                company.prepaid_anomaly_spike_factor,
                company.prepaid_anomaly_spike_floor,
                company.prepaid_anomaly_balance_tolerance,
            )
            if (
                any(n < 1 or n > 100_000 for n in counts)
                or any(not 0 <= a <= 1_000_000 for a in amounts)
                or not 0 <= company.prepaid_anomaly_line_loss_percent <= 100
            ):
                raise ValidationError(
                    self.env._(
                        "Anomaly settings: day and cycle counts are at least 1, factors, floors and "
                        "tolerances are not negative, the line loss threshold is between 0 and 100 %."
                    )
                )
