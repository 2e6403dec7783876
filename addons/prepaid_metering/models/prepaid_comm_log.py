import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from prepaid_engine.types import ErrorKind

from .prepaid_gateway import _utc

_logger = logging.getLogger(__name__)

KIND_SELECTION = [
    (str(ErrorKind.TIMEOUT), "Timeout"),
    (str(ErrorKind.CHECKSUM), "Checksum"),
    (str(ErrorKind.FRAME), "Frame"),
    (str(ErrorKind.ADDRESS), "Address"),
    (str(ErrorKind.METER), "Meter Error"),
    (str(ErrorKind.LINK), "Link"),
    (str(ErrorKind.SECURITY), "Security"),
    (str(ErrorKind.UNSUPPORTED), "Unsupported"),
    (str(ErrorKind.CANCELLED), "Cancelled"),
    ("no_data", "No Such Data"),  # a warning: the meter lacks identifiers of its model (PollWarning)
    ("trace", "Frame Trace"),  # a frame sent or received, kept for a gateway that traces its frames
]
DEFAULT_RETENTION_DAYS = 30
PURGE_CHUNK = 10000
MAX_PURGE_CHUNKS = 100  # per autovacuum run; the rest waits for the next day


def frame_hex(data):
    """Frame bytes as the logs show them: upper-case hex bytes separated by spaces ("" for no bytes)."""
    return data.hex(" ").upper()


class PrepaidCommLog(models.Model):
    """Frames (hex) and errors per gateway and meter. Lean like the readings: written by the poller only,
    never edited, purged after a retention period (system parameter ``prepaid_metering.comm_log_days``)."""

    _name = "prepaid.comm.log"
    _description = "Communication Log"
    _order = "at desc, id desc"
    _rec_name = "at"
    _log_access = False

    at = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    gateway_id = fields.Many2one("prepaid.gateway", ondelete="cascade", index="btree_not_null")
    meter_id = fields.Many2one("prepaid.meter", ondelete="cascade", index="btree_not_null")
    direction = fields.Selection(
        [("tx", "Sent"), ("rx", "Received"), ("error", "Error"), ("warning", "Warning")], required=True
    )
    kind = fields.Selection(KIND_SELECTION)
    bus = fields.Char()
    data_hex = fields.Char(string="Frame (hex)")
    message = fields.Char(
        string="Technical Detail",
        help="What the engine said, word for word (a log for technicians, as Odoo's server log); the Kind "
        "says what happened in your language.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )

    @api.model
    def _log_poll_result(self, result, gateways, warnings=()):
        """Errors (always), ``warnings`` (the poll's :class:`~prepaid_engine.types.PollWarning` values worth a
        line: what a meter was first found lacking) and frame traces (for gateways with "trace frames") of a
        poll, in one create."""
        gateway_of = {str(g.id): g for g in gateways}
        meter_ids = {
            int(item.meter_key)
            for item in (*result.errors, *warnings, *result.traces)
            if item.meter_key and item.meter_key.isdecimal()
        }
        known_meters = set(self.env["prepaid.meter"].browse(meter_ids).exists().ids)

        def common(item):
            gateway = gateway_of.get(item.gateway_key, self.env["prepaid.gateway"])
            meter_id = int(item.meter_key) if item.meter_key and item.meter_key.isdecimal() else False
            return {
                "at": _utc(item.at) or fields.Datetime.now(),
                "gateway_id": gateway.id,
                "meter_id": meter_id if meter_id in known_meters else False,
                "bus": item.bus_key or False,
                "company_id": gateway.company_id.id or self.env.company.id,
            }

        vals_list = [
            dict(common(error), direction="error", kind=str(error.kind), message=error.message)
            for error in result.errors
        ]
        vals_list += [
            dict(
                common(warning),
                direction="warning",
                kind="no_data",
                message=self.env._(
                    'The meter has no %(identifiers)s (it answers "no such data"): the rest of its reading '
                    "is kept and these are no longer asked for.",
                    identifiers=", ".join(warning.missing),
                ),
            )
            for warning in warnings
        ]
        traced = {key for key, gateway in gateway_of.items() if gateway.trace_frames}
        vals_list += [
            dict(
                common(trace),
                direction=trace.direction,
                kind="trace",
                data_hex=frame_hex(trace.data),
                message=trace.summary or False,
            )
            for trace in result.traces
            if trace.gateway_key in traced
        ]
        return self.create(vals_list) if vals_list else self.browse()

    @api.model
    def _get_retention_days(self):
        value = self.env["ir.config_parameter"].sudo().get_param("prepaid_metering.comm_log_days")
        try:
            days = int(value)
        except (TypeError, ValueError):
            days = DEFAULT_RETENTION_DAYS
        return max(days, 1)

    @api.autovacuum
    def _gc_comm_log(self):
        """Delete log rows older than the retention period, in chunks."""
        limit = fields.Datetime.now() - timedelta(days=self._get_retention_days())
        removed = 0
        for _chunk in range(MAX_PURGE_CHUNKS):
            rows = self.env.execute_query(
                SQL(
                    """DELETE FROM prepaid_comm_log
                        WHERE id IN (SELECT id FROM prepaid_comm_log WHERE at < %s LIMIT %s)
                    RETURNING id""",
                    limit,
                    PURGE_CHUNK,
                )
            )
            removed += len(rows)
            if len(rows) < PURGE_CHUNK:
                break
        if removed:
            self.invalidate_model()
            _logger.info("communication log: %s rows older than %s removed", removed, limit)
        return removed
