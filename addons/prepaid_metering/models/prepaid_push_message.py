from odoo import api, fields, models

from .prepaid_comm_log import frame_hex
from .prepaid_gateway import _utc

CONFLICT = 409  # a second reading of a meter in the same second, with other values


def conflict_answer(reason):
    """The answer refusing a message that conflicts with a reading held: (409, JSON body with the reason)."""
    return CONFLICT, {"error": "conflict", "reason": reason}


class PrepaidPushMessage(models.Model):
    """One message a platform pushed, kept to deduplicate by message id (the database refuses a second row
    with the same platform and message id) and to audit what arrived. A refused message (a second reading of
    its meter in the same second, with other values) keeps its reason, and the platform's retries of it get
    the same refusal."""

    _name = "prepaid.push.message"
    _description = "Pushed Message"
    _order = "id desc"
    _rec_name = "message_id"

    platform_id = fields.Many2one("prepaid.platform", required=True, ondelete="cascade", index=True)
    message_id = fields.Char(string="Message ID", required=True)
    received_at = fields.Datetime(default=fields.Datetime.now, required=True, index=True)
    sent_at = fields.Datetime(help="The platform's timestamp of the message.")
    kind = fields.Selection(
        [
            ("data", "Data Report"),
            ("command_response", "Command Response"),
            ("event", "Event"),
            ("other", "Other"),
        ]
    )
    device_ref = fields.Char(string="Device ID")
    meter_id = fields.Many2one("prepaid.meter", ondelete="set null", index="btree_not_null")
    reading_id = fields.Many2one("prepaid.meter.reading", ondelete="set null")
    state = fields.Selection(
        [
            ("received", "Received"),
            ("done", "Stored"),
            ("ignored", "Ignored"),
            ("unknown_device", "Unknown Device"),
            ("error", "Error"),
            ("refused", "Refused"),
        ],
        required=True,
        default="received",
    )
    payload_hex = fields.Char(string="Payload (hex)")
    message = fields.Char(help="Why the message was not stored, or was refused (the reason sent back).")
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )

    _sql_constraints = [
        (
            "platform_message_uniq",
            "UNIQUE(platform_id, message_id)",
            "A platform message is stored once.",
        ),
    ]

    @api.model
    def _prepare_vals(self, platform, message, meter):
        return {
            "platform_id": platform.id,
            "message_id": message.message_id,
            "sent_at": _utc(message.at),
            "kind": str(message.kind),
            "device_ref": message.device_ids[0] if message.device_ids else False,
            "meter_id": meter.id or False,
            "payload_hex": frame_hex(message.payload) or False,
            "company_id": platform.company_id.id,
        }

    @api.private
    def _repeat_answer(self):
        """The answer to a platform's retry of this message: the same refusal when it was refused (409 and
        its reason), else ``{"duplicate": true}`` (stored or recorded already: nothing more to do)."""
        self.ensure_one()
        if self.state == "refused":
            return conflict_answer(self.message or "")
        return 200, {"duplicate": True}
