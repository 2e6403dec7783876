from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import AccessError

# What the suite's checks and the buttons write (internal, the suite's sentinel); a manager changes by hand
# only the assignee and the note. The related copies of the meter's fields are here too: writing one would
# write the meter.
PROTECTED_FIELDS = (
    "kind",
    "state",
    "resolution",
    "meter_id",
    "company_id",
    "utility",
    "unit_id",
    "building_id",
    "date",
    "period_start",
    "period_end",
    "reading_id",
    "reading_ids",
    "evidence",
    "resolved_by_id",
    "resolved_at",
)
KIND_SELECTION = [("implausible_reading", "Implausible Reading")]
STATE_SELECTION = [("open", "Open"), ("acknowledged", "Acknowledged"), ("resolved", "Resolved")]
RESOLUTION_SELECTION = [("accepted", "Accepted"), ("rejected", "Rejected")]
OPEN_STATES = ("open", "acknowledged")
UNIT_OF_UTILITY = {"electricity": "kWh", "water": "m³"}


def _number(text):
    """A verdict's decimal string for display: plain digits, NaN and infinities as they are."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError):
        return str(text)
    if not value.is_finite() or value.adjusted() > 15:
        return str(value)
    return f"{value:f}"


class PrepaidAnomaly(models.Model):
    """Something about a meter that needs a person: a reading the plausibility check refused (more kinds
    come with later checks). An anomaly is raised by the suite, never created by hand; a manager looks at
    its evidence and resolves it: for an implausible reading, *Accept* (the reading becomes valid and is
    charged by the next settlement) or *Reject* (it stays out of billing for good).

    One open anomaly per meter and kind collects the meter's quarantined readings until it is resolved, so
    a meter that keeps sending implausible readings makes one to-do, not one per reading."""

    _name = "prepaid.anomaly"
    _description = "Anomaly"
    _inherit = ["prepaid.guard.mixin", "mail.thread", "mail.activity.mixin"]
    _prepaid_internal_create = True
    _prepaid_protected_fields = PROTECTED_FIELDS
    _order = "date desc, id desc"
    _check_company_auto = True

    kind = fields.Selection(KIND_SELECTION, required=True, readonly=True, tracking=True)
    state = fields.Selection(
        STATE_SELECTION, required=True, default="open", readonly=True, tracking=True, index=True
    )
    resolution = fields.Selection(RESOLUTION_SELECTION, readonly=True, tracking=True)
    meter_id = fields.Many2one(
        "prepaid.meter", required=True, readonly=True, index=True, ondelete="cascade", check_company=True
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    utility = fields.Selection(related="meter_id.utility", store=True)
    unit_id = fields.Many2one(related="meter_id.unit_id", store=True, string="Unit")
    building_id = fields.Many2one(related="meter_id.building_id", store=True, string="Building")
    date = fields.Datetime(string="Detected At", required=True, readonly=True, default=fields.Datetime.now)
    period_start = fields.Datetime(
        readonly=True, help="Time of the last accepted reading the first implausible one was compared with."
    )
    period_end = fields.Datetime(readonly=True, help="Time of the latest reading of this anomaly.")
    reading_id = fields.Many2one(
        "prepaid.meter.reading", string="First Reading", readonly=True, ondelete="set null"
    )
    reading_ids = fields.Many2many(
        "prepaid.meter.reading", "prepaid_anomaly_reading_rel", "anomaly_id", "reading_id", readonly=True
    )
    reading_count = fields.Integer(compute="_compute_reading_count")
    evidence = fields.Json(
        string="Evidence Data",
        readonly=True,
        help="What the check found, per reading, as the engine said it.",
    )
    description = fields.Text(compute="_compute_description", string="Evidence")
    user_id = fields.Many2one("res.users", string="Assignee", tracking=True, index="btree_not_null")
    note = fields.Text()
    resolved_by_id = fields.Many2one("res.users", readonly=True)
    resolved_at = fields.Datetime(readonly=True)

    @api.depends("kind", "meter_id")
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for anomaly in self:
            anomaly.display_name = f"{kinds.get(anomaly.kind, '')}: {anomaly.meter_id.display_name or ''}"

    @api.depends("reading_ids")
    def _compute_reading_count(self):
        for anomaly in self:
            anomaly.reading_count = len(anomaly.reading_ids)

    @api.depends("evidence", "utility")
    @api.depends_context("lang", "tz")
    def _compute_description(self):
        for anomaly in self:
            unit = UNIT_OF_UTILITY.get(anomaly.utility, "")
            anomaly.description = "\n".join(
                anomaly._describe_finding(item, unit) for item in anomaly.evidence or ()
            )

    # -- evidence in words -----------------------------------------------------------------------------------
    def _describe_finding(self, item, unit):
        """One line of evidence (a verdict of :func:`prepaid_engine.plausibility.judge`, as ``to_dict`` gave
        it, with the reading's time) in the user's language."""
        _ = self.env._
        registers = {
            "total": _("index"),
            "sharp": _("sharp"),
            "peak": _("peak"),
            "flat": _("flat"),
            "valley": _("valley"),
            "bands": _("band registers"),
        }
        values = {
            "time": self._format_time(item.get("read_at")),
            "register": registers.get(item.get("field"), item.get("field") or ""),
            "value": _number(item.get("value")),
            "reference": _number(item.get("reference")),
            "step": _number(item.get("step")),
            "allowed": _number(item.get("allowed")),
            "elapsed": self._format_elapsed(item.get("elapsed")),
            "unit": unit,
        }
        messages = {
            "not_finite": lambda: _(
                "%(time)s: the %(register)s reads %(value)s, which is not a number.", **values
            ),
            "negative": lambda: _("%(time)s: the %(register)s reads %(value)s, below zero.", **values),
            "out_of_range": lambda: _(
                "%(time)s: the %(register)s reads %(value)s %(unit)s, more than this meter can ever show "
                "(%(allowed)s %(unit)s).",
                **values,
            ),
            "index_fell": lambda: _(
                "%(time)s: the index fell from %(reference)s to %(value)s %(unit)s, neither a roll-over of "
                "the register nor across a recorded meter replacement.",
                **values,
            ),
            "too_fast": lambda: _(
                "%(time)s: the index rose by %(step)s %(unit)s (from %(reference)s to %(value)s) in "
                "%(elapsed)s; this meter can pass at most %(allowed)s %(unit)s in that time.",
                **values,
            ),
            "bands_inconsistent": lambda: _(
                "%(time)s: the %(register)s do not follow the total (%(step)s %(unit)s).", **values
            ),
        }
        message = messages.get(item.get("finding"))
        return message() if message else f"{values['time']}: {item.get('message', '')}"

    def _format_time(self, text):
        if not text:
            return ""
        at = datetime.fromisoformat(text)
        local = fields.Datetime.context_timestamp(self, at.astimezone(UTC).replace(tzinfo=None))
        return local.strftime("%Y-%m-%d %H:%M:%S")

    def _format_elapsed(self, text):
        """Seconds as days, hours, minutes and seconds (the largest two that are not zero)."""
        _ = self.env._
        try:
            seconds = int(Decimal(text))
        except (InvalidOperation, TypeError, ValueError):
            return ""
        parts = []
        for size, label in (
            (86400, lambda n: _("%(count)s d", count=n)),
            (3600, lambda n: _("%(count)s h", count=n)),
            (60, lambda n: _("%(count)s min", count=n)),
            (1, lambda n: _("%(count)s s", count=n)),
        ):
            count, seconds = divmod(seconds, size)
            if count:
                parts.append(label(count))
        return " ".join(parts[:2]) or _("%(count)s s", count=0)

    # -- raising ---------------------------------------------------------------------------------------------
    @api.model
    @api.private
    def _raise_implausible_readings(self, quarantined):
        """For ``[(reading id, (verdict, reference time))]``: extend the meter's open implausible-reading
        anomaly with its readings, or raise one (with a to-do for a prepaid manager). Called by ingestion
        and manual entry, under sudo; a handful of ORM writes per meter with quarantined readings."""
        Reading = self.env["prepaid.meter.reading"].sudo()
        readings = Reading.browse([reading_id for reading_id, _found in quarantined])
        found = dict(quarantined)
        by_meter = {}
        for reading in readings.sorted(lambda r: (r.meter_id.id, r.read_at)):
            by_meter.setdefault(reading.meter_id, Reading)
            by_meter[reading.meter_id] |= reading
        meters = self.env["prepaid.meter"].sudo().browse([meter.id for meter in by_meter])
        open_ones = {
            anomaly.meter_id: anomaly
            for anomaly in self.search(
                [
                    ("meter_id", "in", meters.ids),
                    ("kind", "=", "implausible_reading"),
                    ("state", "in", OPEN_STATES),
                ],
                order="id",
            )
        }
        writer = internal(self.with_context(mail_create_nolog=True))
        new_vals = []
        for meter, meter_readings in by_meter.items():
            evidence = [self._evidence_item(reading, *found[reading.id]) for reading in meter_readings]
            anomaly = open_ones.get(meter)
            if anomaly:
                writer.browse(anomaly.id).write(
                    {
                        "evidence": (anomaly.evidence or []) + evidence,
                        "reading_ids": [(4, reading.id) for reading in meter_readings],
                        "period_end": max(filter(None, (anomaly.period_end, meter_readings[-1].read_at))),
                    }
                )
                continue
            first = meter_readings[0]
            reference_at = found[first.id][1]
            new_vals.append(
                {
                    "kind": "implausible_reading",
                    "meter_id": meter.id,
                    "reading_id": first.id,
                    "reading_ids": [(6, 0, meter_readings.ids)],
                    "evidence": evidence,
                    "period_start": reference_at.astimezone(UTC).replace(tzinfo=None)
                    if reference_at
                    else False,
                    "period_end": meter_readings[-1].read_at,
                    "user_id": self._manager_of(meter.company_id).id or False,
                }
            )
        if new_vals:
            writer.create(new_vals)._schedule_review()

    @api.model
    def _evidence_item(self, reading, verdict, reference_at):
        item = verdict.to_dict()
        item["reading_id"] = reading.id
        item["read_at"] = reading.read_at.replace(tzinfo=UTC).isoformat()
        item["source"] = reading.source
        if reference_at is not None:
            item["reference_at"] = reference_at.astimezone(UTC).isoformat()
        return item

    @api.model
    def _manager_of(self, company):
        """The prepaid manager who reviews the company's anomalies: the first one (by id) of the company."""
        managers = self.env.ref("prepaid_base.group_prepaid_manager").users.filtered(
            lambda user: company in user.company_ids and not user._is_superuser()
        )
        return managers.sorted("id")[:1]

    def _schedule_review(self):
        for anomaly in self:
            anomaly.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=self.env._("Review an implausible reading"),
                note=self.env._(
                    "Readings of %(meter)s failed the plausibility check and are not charged. Accept them if "
                    "the meter really counted that (they are charged with the next settlement), reject them "
                    "otherwise.",
                    meter=anomaly.meter_id.display_name,
                ),
                user_id=(anomaly.user_id or self.env.user).id,
            )

    # -- actions ---------------------------------------------------------------------------------------------
    def _check_manager(self):
        if not self.env.user.has_group("prepaid_base.group_prepaid_manager"):
            raise AccessError(self.env._("Only a prepaid manager resolves anomalies."))
        self.check_access("write")

    def _open_ones(self):
        return self.filtered(lambda anomaly: anomaly.state in OPEN_STATES)

    def action_acknowledge(self):
        """Say the anomaly is being looked at (it still collects the meter's implausible readings)."""
        self._check_manager()
        todo = self.filtered(lambda anomaly: anomaly.state == "open")
        internal(todo).write({"state": "acknowledged", "user_id": self.env.user.id})
        return True

    def action_accept(self):
        """The readings are real: they become valid and the settlement charges their consumption (once, from
        the last settled reading). Readings older than an accepted later one are valid too but charge
        nothing more: the consumption across them was charged from the later reading."""
        self._check_manager()
        for anomaly in self._open_ones():
            readings = anomaly.sudo().reading_ids.filtered(lambda r: r.state == "quarantined")
            readings._accept_quarantined()
            anomaly._resolve("accepted", len(readings))
        return True

    def action_reject(self):
        """The readings are wrong: they stay out of billing for good; the meter's next readings are judged
        against its last accepted one."""
        self._check_manager()
        for anomaly in self._open_ones():
            readings = anomaly.sudo().reading_ids.filtered(lambda r: r.state == "quarantined")
            readings._reject_quarantined()
            anomaly._resolve("rejected", len(readings))
        return True

    def _resolve(self, resolution, count):
        self.ensure_one()
        internal(self).write(
            {
                "state": "resolved",
                "resolution": resolution,
                "resolved_by_id": self.env.user.id,
                "resolved_at": fields.Datetime.now(),
            }
        )
        if resolution == "accepted":
            feedback = self.env._("%(count)s reading(s) accepted: they are charged.", count=count)
        else:
            feedback = self.env._("%(count)s reading(s) rejected: they stay out of billing.", count=count)
        self.sudo().activity_ids.action_feedback(feedback=feedback)
        self._message_log(body=feedback)

    def action_view_readings(self):
        self.ensure_one()
        return self.env["prepaid.gateway"]._action_related(
            "prepaid_metering.prepaid_meter_reading_action", [("id", "in", self.reading_ids.ids)]
        )
