import logging
from decimal import Decimal, InvalidOperation

from odoo import api, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from prepaid_engine.plausibility import Limits
from prepaid_engine.rating import Register, Replacement

from .prepaid_settlement import aware, settlement_savepoint

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
        meter_ids = self._meters_of_readings(new_reading_ids, meter_ids)
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

    # -- plausibility: the register limit and the replacements billing records -------------------------
    @api.model
    def _plausibility_meter_columns(self):
        return (*super()._plausibility_meter_columns(), "rollover_at")

    @api.model
    def _plausibility_limits(self, utility, capacity, ct_ratio, factor, extra):
        """A meter's register limit (``rollover_at``): a wrap through it is a plausible step, a value above
        it is not."""
        limits = super()._plausibility_limits(utility, capacity, ct_ratio, factor, extra)
        try:
            rollover_at = Decimal((extra.get("rollover_at") or "").strip() or "0")
        except InvalidOperation:
            rollover_at = Decimal(0)
        if not rollover_at.is_finite() or rollover_at <= 0:
            return limits  # none, or not a limit (the meter's constraint refuses such values)
        return Limits(
            limits.utility,
            limits.capacity,
            ct_ratio=limits.ct_ratio,
            rollover_at=rollover_at,
            factor=limits.factor,
        )

    @api.model
    def _plausibility_replacements(self, meter_ids):
        """The recorded meter replacements of these meters (one query): a reading of the new meter is judged
        across the swap, as the settlement charges it."""
        result = super()._plausibility_replacements(meter_ids)
        self.env["prepaid.meter.replacement"].flush_model()
        rows = self.env.execute_query(
            SQL(
                """SELECT meter_id, replaced_at, old_final::text, new_initial::text
                     FROM prepaid_meter_replacement
                    WHERE meter_id = ANY(%s::int[]) ORDER BY meter_id, replaced_at""",
                list(meter_ids),
            )
        )
        for meter_id, at, old_final, new_initial in rows:
            at = aware(at)
            result.setdefault(meter_id, []).append(
                Replacement(Register(at, Decimal(old_final)), Register(at, Decimal(new_initial)), at)
            )
        return result

    @api.private
    def _accept_quarantined(self):
        """Settle the meters first, so that their cursors stand at their last valid reading: the accepted
        readings after it are then charged once from there, and an accepted reading older than it (the meter
        moved on with plausible readings meanwhile) lies behind the cursor and charges nothing more (the
        consumption across it was charged). A concurrent settlement of the same meters makes the manager try
        again rather than accept half-way."""
        meter_ids = self.filtered(lambda r: r.state == "quarantined").meter_id.ids
        if meter_ids:
            with settlement_savepoint(self.env) as outcome:
                self.env["prepaid.settlement"].sudo()._settle_meters(meter_ids)
            if outcome.conflict:
                raise UserError(
                    self.env._(
                        "These meters are being settled right now: accept the readings again in a moment."
                    )
                )
        return super()._accept_quarantined()
