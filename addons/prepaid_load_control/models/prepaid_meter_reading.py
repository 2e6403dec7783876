import logging

from odoo import api, models

_logger = logging.getLogger(__name__)


class PrepaidMeterReading(models.Model):
    _inherit = "prepaid.meter.reading"

    @api.model
    @api.private
    def _after_ingest(self, new_reading_ids, meter_ids=None):
        """Classify the new power samples of the meters under a load profile, right after they are stored
        (within the poll that read them). A failure of detection never loses the readings."""
        result = super()._after_ingest(new_reading_ids, meter_ids)
        if not new_reading_ids:
            return result
        meter_ids = self._meters_of_readings(new_reading_ids, meter_ids)
        try:
            with self.env.cr.savepoint():
                self.env["prepaid.meter"].sudo()._prepaid_detect_loads(list(meter_ids))
        except Exception:  # detection is advisory next to storing the readings: log, never lose them
            _logger.exception("load detection failed for meters %s", list(meter_ids)[:20])
        return result
