import logging
import secrets
from datetime import UTC, datetime

import psycopg2
from odoo import api, fields, models
from odoo.tools import SQL, mute_logger

from prepaid_engine import push
from prepaid_engine.errors import ConfigError, EngineError, FrameError, SecurityError
from prepaid_engine.types import Supply

from .prepaid_comm_log import frame_hex
from .prepaid_meter_reading import VALUE_FIELDS
from .prepaid_push_message import conflict_answer

_logger = logging.getLogger(__name__)

MANAGER = "prepaid_base.group_prepaid_manager"
# Answers to the platform: (HTTP status, JSON body). Platforms retry anything but 2xx: what we merely cannot
# use (an unknown device, an undecodable payload) is acknowledged with 200 and recorded; what is forged,
# stale, malformed or in conflict with what we hold gets a 4xx whose body says why, and is logged.
# Engine error -> (status, error code), most specific first.
REFUSALS = (
    (push.BodyTooLarge, 413, "too_large"),
    (push.UnsupportedMediaType, 415, "unsupported_media_type"),
    (SecurityError, 403, "forbidden"),
    (EngineError, 400, "malformed"),
)


def refusal(exc):
    """The (status, error code) answering engine error ``exc``."""
    return next((status, code) for kind, status, code in REFUSALS if isinstance(exc, kind))


def _route_key():
    return secrets.token_urlsafe(16)


class PrepaidPlatform(models.Model):
    """A carrier IoT platform (CTWing, OneNET) that pushes NB-IoT / 4G meter reports to our endpoint
    ``/prepaid/push/<kind>/<route key>``. Each platform has its own secret token and route key."""

    _name = "prepaid.platform"
    _description = "IoT Platform"
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True)
    kind = fields.Selection([("ctwing", "CTWing"), ("onenet", "OneNET")], required=True, default="ctwing")
    token = fields.Char(
        groups=MANAGER,
        copy=False,
        help="CTWing: the secret the platform sends in the X-Prepaid-Token header (or the token query "
        "parameter). OneNET: the token configured on the platform, used to check signatures.",
    )
    route_key = fields.Char(
        required=True,
        copy=False,
        groups=MANAGER,
        default=lambda self: _route_key(),
        help="Random part of the push URL; change it to revoke the old URL.",
    )
    push_url = fields.Char(
        string="Push URL",
        compute="_compute_push_url",
        groups=MANAGER,
        help="The URL to give the platform; it holds the route key, so only managers see it.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    active = fields.Boolean(default=True)
    allowed_skew = fields.Integer(
        string="Allowed Clock Skew (s)",
        default=push.DEFAULT_SKEW,
        help="Pushes whose timestamp is further than this from our clock are refused as replays.",
    )
    meter_ids = fields.One2many("prepaid.meter", "platform_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_counts")
    message_count = fields.Integer(compute="_compute_counts", string="Messages")

    _sql_constraints = [
        ("route_key_uniq", "UNIQUE(route_key)", "The route key must be unique."),
        ("allowed_skew_positive", "CHECK(allowed_skew > 0)", "The allowed clock skew must be positive."),
    ]

    @api.depends("kind", "route_key")
    def _compute_push_url(self):
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        for platform in self:
            platform.push_url = f"{base_url}/prepaid/push/{platform.kind}/{platform.route_key}"

    def _compute_counts(self):
        meters = dict(
            self.env["prepaid.meter"]._read_group(
                [("platform_id", "in", self.ids)], ["platform_id"], ["__count"]
            )
        )
        messages = dict(
            self.env["prepaid.push.message"]._read_group(
                [("platform_id", "in", self.ids)], ["platform_id"], ["__count"]
            )
        )
        for platform in self:
            platform.meter_count = meters.get(platform, 0)
            platform.message_count = messages.get(platform, 0)

    def action_regenerate_route_key(self):
        for platform in self:
            platform.route_key = _route_key()
        return True

    def action_view_meters(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_metering.prepaid_meter_action")
        action["domain"] = [("platform_id", "=", self.id)]
        action["context"] = {"default_platform_id": self.id, "default_company_id": self.company_id.id}
        return action

    def action_view_messages(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_metering.prepaid_push_message_action")
        action["domain"] = [("platform_id", "=", self.id)]
        return action

    # -- push handling (called by the controller under sudo) -------------------------------------------------
    @api.model
    @api.private
    def _get_by_route(self, kind, route_key):
        """The active platform of ``kind`` behind ``route_key`` (sudo, in its company), or nothing."""
        try:
            push.check_text(route_key, "route key")
        except FrameError:
            return self.sudo().browse()
        platform = self.sudo().search([("kind", "=", kind), ("route_key", "=", route_key)], limit=1)
        return platform.with_company(platform.company_id) if platform else platform

    @api.private
    def _refuse(self, exc, what="push"):
        """Log the refusal of a push at WARNING with this platform and the reason; the (status, JSON body)
        answering engine error ``exc``."""
        status, code = refusal(exc)
        _logger.warning("platform %s: %s refused (%s %s): %s", self.name, what, status, code, exc)
        return status, {"error": code, "reason": str(exc)}

    @api.private
    def _receive_ctwing(self, token, body, now=None, content_type=None):
        """A CTWing push: token check, parse, then :meth:`_receive_message`. Returns (status, JSON body)."""
        self.ensure_one()
        try:
            push.check_token(self.sudo().token or "", token)
            message = push.parse_ctwing(body, content_type)
        except EngineError as exc:
            return self._refuse(exc, "CTWing push")
        return self._receive_guarded(message, now)

    @api.private
    def _receive_onenet(self, body, now=None, content_type=None):
        """A OneNET push: signature check and parse, then :meth:`_receive_message`."""
        self.ensure_one()
        try:
            message = push.parse_onenet(body, self.sudo().token or "", content_type)
        except EngineError as exc:
            return self._refuse(exc, "OneNET push")
        return self._receive_guarded(message, now)

    def _receive_guarded(self, message, now):
        """:meth:`_receive_message` in a savepoint: an engine error it does not answer itself undoes what it
        wrote and is refused with its reason (4xx), never a 500."""
        try:
            with self.env.cr.savepoint():
                return self._receive_message(message, now=now)
        except EngineError as exc:
            return self._refuse(exc, f"push {message.message_id}")

    @api.private
    def _verify_onenet_url(self, msg, nonce, signature):
        """OneNET URL verification: the text to echo, or None when the signature does not match."""
        self.ensure_one()
        try:
            return push.onenet_url_check(self.sudo().token or "", msg or "", nonce or "", signature or "")
        except SecurityError as exc:
            _logger.warning("platform %s: OneNET URL verification refused: %s", self.name, exc)
            return None

    @api.private
    def _receive_message(self, message, now=None):
        """Store an authenticated :class:`~prepaid_engine.push.PushMessage`: refuse it when stale (403),
        answer a repeated message id as before (``{"duplicate": true}``, or the same refusal), log unknown
        devices, and ingest the reading of a known meter like a polled one (source ``push``).

        A reading of a meter that already has one in the same second (readings are unique per meter and
        second) is a duplicate when it says the same, and is refused with 409 otherwise: never acknowledged
        and dropped."""
        self.ensure_one()
        now = now or datetime.now(UTC)
        try:
            push.check_skew(message.at, now, self.allowed_skew)
        except SecurityError as exc:
            return self._refuse(exc, f"push {message.message_id}")
        Message = self.env["prepaid.push.message"].sudo()
        known = Message.search(
            [("platform_id", "=", self.id), ("message_id", "=", message.message_id)], limit=1
        )
        if known:
            return known._repeat_answer()
        meter = (
            self.env["prepaid.meter"]
            .sudo()
            .search([("platform_id", "=", self.id), ("device_ref", "in", list(message.device_ids))], limit=1)
        )
        vals = Message._prepare_vals(self, message, meter)
        try:
            with self.env.cr.savepoint(), mute_logger("odoo.sql_db"):
                record = Message.create([vals])
        except psycopg2.errors.UniqueViolation:
            # The same message arrived twice at the same time: the other request stored it.
            return 200, {"duplicate": True}
        if not meter:
            _logger.info("platform %s: push from unknown device %s", self.name, ", ".join(message.device_ids))
            record.write({"state": "unknown_device"})
            return 200, {"unknown_device": True}
        if message.kind != push.PushKind.DATA or not (message.payload or message.values):
            record.write({"state": "ignored"})
            return 200, {"ignored": True}
        try:
            reading = push.decode_reading(
                message,
                meter.model_id._get_engine_model(),
                str(meter.id),
                address=meter.address or "",
                ct_ratio=meter.ct_ratio or 1,
            )
        except (FrameError, ConfigError) as exc:
            record.write({"state": "error", "message": str(exc)})
            self.env["prepaid.comm.log"].sudo().create(
                [
                    {
                        "meter_id": meter.id,
                        "direction": "error",
                        "kind": "frame",
                        "message": str(exc),
                        "data_hex": frame_hex(message.payload) or False,
                        "company_id": meter.company_id.id,
                    }
                ]
            )
            return 200, {"error": "undecodable"}
        reading_ids = self.env["prepaid.meter.reading"].sudo()._ingest([reading], "push")
        if reading_ids:
            record.write({"state": "done", "reading_id": reading_ids[0]})
            return 200, {"stored": len(reading_ids)}
        return self._same_second(record, meter, reading)

    def _same_second(self, record, meter, reading):
        """``reading`` was not inserted: ``meter`` has a reading in the same second. The same values: a
        duplicate (a re-send under another message id), linked to the reading held. Other values: refused
        with 409 and the reason, recorded on the message. The values are compared by the database, numbers
        as numbers (12.34 = 12.340; in Python the stored ones would come back as floats)."""
        at = reading.read_at.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        same = SQL(" AND ").join(
            SQL("%s IS NOT DISTINCT FROM %s", SQL.identifier(name), _sql_value(getattr(reading, name)))
            for name in VALUE_FIELDS
        )
        rows = self.env.execute_query(
            SQL(
                "SELECT id, %s FROM prepaid_meter_reading WHERE meter_id = %s AND read_at = %s",
                same,
                meter.id,
                at,
            )
        )
        if rows and rows[0][1]:
            message = self.env._("The same values as the reading held for that second: a duplicate.")
            record.write({"state": "done", "reading_id": rows[0][0], "message": message})
            return 200, {"duplicate": True}
        reason = self.env._(
            "Device %(device)s already has a reading at %(at)s UTC with other values: a meter keeps one "
            "reading per second.",
            device=record.device_ref,
            at=at.isoformat(sep=" "),
        )
        record.write({"state": "refused", "message": reason})
        _logger.warning("platform %s: push %s refused (409): %s", self.name, record.message_id, reason)
        return conflict_answer(reason)


def _sql_value(value):
    """A reading value as a query parameter (the supply state as its text)."""
    return str(value) if isinstance(value, Supply) else value
