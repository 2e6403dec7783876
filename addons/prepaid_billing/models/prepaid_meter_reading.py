import logging

from odoo import api, models
from odoo.tools import SQL

from .prepaid_settlement import settlement_savepoint

_logger = logging.getLogger(__name__)


class PrepaidMeterReading(models.Model):
    _inherit = "prepaid.meter.reading"

    @api.model
    @api.private
    def _after_ingest(self, new_reading_ids, meter_ids=None):
        """Settle the meters of the new readings right away, in the ingesting transaction. If another
        transaction holds their cursors or accounts, the readings stay stored and the settlement cron settles
        them on its next run (a conflict must not lose the readings). With the context key
        ``prepaid_skip_settlement`` (bulk imports of history) the readings wait for the settlement cron."""
        result = super()._after_ingest(new_reading_ids, meter_ids)
        if not new_reading_ids or self.env.context.get("prepaid_skip_settlement"):
            return result
        if meter_ids is None:
            meter_ids = [
                row[0]
                for row in self.env.execute_query(
                    SQL(
                        "SELECT DISTINCT meter_id FROM prepaid_meter_reading WHERE id = ANY(%s)",
                        list(new_reading_ids),
                    )
                )
            ]
        with settlement_savepoint(self.env) as outcome:
            self.env["prepaid.settlement"].sudo()._settle_meters(meter_ids)
        if outcome.conflict:
            # Another transaction is settling some of these meters (a cron, a click): nothing is lost, the
            # settlement cron charges these readings on its next run.
            _logger.info(
                "settlement of %s meters deferred to the settlement cron: %s",
                len(meter_ids),
                outcome.conflict.pgerror,
            )
        return result
