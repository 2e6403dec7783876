import dataclasses
import logging
from datetime import UTC, timedelta
from decimal import Decimal

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_manager
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from prepaid_engine.errors import ConfigError
from prepaid_engine.load import Action, Detection, Sample, classify
from prepaid_engine.load.params import enforces_profiles, meter_load_event, reads_load_events
from prepaid_engine.load.restore import day_bounds

_logger = logging.getLogger(__name__)

LOAD_STATES = [
    ("normal", "Normal"),
    ("tripped", "Tripped for Load"),
    ("locked", "Locked: Manager Restores"),
]
# Power samples looked at per detection: the last ones of this window (enough for a plateau before the step).
DETECTION_WINDOW = timedelta(minutes=30)
# Poll data is a sample a minute or so: one agreeing sample after an excursion makes it a step.
POLL_DETECTION = Detection(settle=1)
RECORDED = ("malicious", "overload")  # what becomes a load event (the others are ordinary use)
RESTORE_BATCH = 500
ENFORCEMENT_SELECTION = [("meter", "By the Meter"), ("platform", "By the Platform")]
# The meter's own trip reason (the engine's TripReason, by name).
TRIP_REASON_SELECTION = [
    ("none", "None"),
    ("malicious_load", "Malicious Load"),
    ("over_power", "Over Power"),
    ("over_current", "Over Current"),
    ("balance", "Balance"),
    ("remote", "Remote"),
]


def _sample(read_at, power_kw, power_factor):
    """The engine's :class:`Sample` of a stored reading (naive UTC time, kW, power factor)."""
    return Sample(
        at=read_at.replace(tzinfo=UTC),
        power_w=Decimal(f"{power_kw:.4f}") * 1000,
        power_factor=Decimal(f"{abs(power_factor):.3f}") if power_factor else None,
    )


def _aware(value):
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def _naive(value):
    return value.astimezone(UTC).replace(tzinfo=None) if value and value.tzinfo else value


class PrepaidMeter(models.Model):
    _inherit = "prepaid.meter"
    _prepaid_protected_fields = (
        "load_state",
        "load_restore_at",
        "load_learning_since",
        "time_control_off",
        "load_trip_reason",
        "load_meter_event_count",
    )

    load_state = fields.Selection(
        LOAD_STATES, required=True, default="normal", readonly=True, copy=False, tracking=True, index=True
    )
    load_restore_at = fields.Datetime(readonly=True, copy=False)
    load_learning_since = fields.Datetime(
        readonly=True,
        copy=False,
        help="Learning since then: the samples since are the appliance's signature (no load trip meanwhile).",
    )
    time_control_off = fields.Boolean(
        string="Off by Time Control",
        readonly=True,
        copy=False,
        index=True,
        help="Time control tripped this meter: it closes it again when its schedules want the supply on "
        "(a meter tripped by hand, for its balance or for its load is never closed by time control).",
    )
    load_trip_reason = fields.Selection(
        TRIP_REASON_SELECTION,
        string="Meter Trip Reason",
        readonly=True,
        copy=False,
        help="Why the meter says it last opened its relay (read with each poll from meters whose model holds "
        "the load-control parameters).",
    )
    load_meter_event_count = fields.Integer(
        string="Meter Load Events Read",
        readonly=True,
        copy=False,
        help="The meter's own count of load events when last read: the next poll reads the records after it.",
    )
    load_profile_id = fields.Many2one("prepaid.load.profile", compute="_compute_load_profile")
    load_enforcement = fields.Selection(
        ENFORCEMENT_SELECTION,
        string="Load Profile Enforced",
        compute="_compute_load_enforcement",
        help="By the meter: its model holds the profile's parameters (power limit, malicious-load rule, "
        "restore) and it is behind a gateway, so Apply to Meters on the profile writes them to it. By the "
        "platform: detected from its polled power.",
    )
    load_event_ids = fields.One2many("prepaid.load.event", "meter_id", string="Load Events")
    load_event_count = fields.Integer(compute="_compute_load_event_count")

    def _compute_load_profile(self):
        profiles = self.env["prepaid.load.profile"]._profiles_of(self.filtered("id"))
        for meter in self:
            meter.load_profile_id = profiles.get(meter.id, False)

    @api.depends("model_id", "gateway_id", "bus_id", "utility")
    def _compute_load_enforcement(self):
        profiles = self.env["prepaid.load.profile"]._profiles_of(self.filtered("id"))
        with_profile = self.filtered(lambda m: m.id in profiles and m.utility == "electricity")
        enforcement = with_profile._prepaid_load_enforcement()
        for meter in self:
            meter.load_enforcement = enforcement.get(meter.id, False)

    def _prepaid_load_enforcement(self):
        """``{meter id: "meter" | "platform"}``: whether each of these meters can enforce a load profile
        itself (an electricity meter behind a gateway whose model holds the parameters,
        :func:`~prepaid_engine.load.params.enforces_profiles`) or the platform does it for it."""
        capable = {}
        for model in self.sudo().model_id:
            try:
                capable[model.id] = enforces_profiles(model._get_engine_model())
            except ConfigError:
                capable[model.id] = False
        return {
            meter.id: "meter"
            if meter.utility == "electricity"
            and meter.gateway_id
            and meter.bus_id
            and capable.get(meter.sudo().model_id.id)
            else "platform"
            for meter in self
        }

    def _compute_load_event_count(self):
        counts = dict(
            self.env["prepaid.load.event"]._read_group(
                [("meter_id", "in", self.ids)], ["meter_id"], ["__count"]
            )
        )
        for meter in self:
            meter.load_event_count = counts.get(meter, 0)

    # ------------------------------------------------------------------ detection (platform side)

    @api.model
    def _prepaid_detect_loads(self, meter_ids):
        """Classify the recent power samples of these meters against their load profiles (the engine's
        :func:`classify`) and act on what is malicious or over the limit: a load event (once per step:
        ``UNIQUE(meter, at, classification)``), a trip where the profile says so, the tenant told, a
        manager's activity."""
        meters = (
            self.sudo()
            .browse(meter_ids)
            .filtered(lambda m: m.utility == "electricity" and m.billing_mode == "platform")
        )
        profiles = self.env["prepaid.load.profile"]._profiles_of(meters)
        meters = meters.filtered(lambda m: m.id in profiles and not m.load_learning_since)
        if not meters:
            return self.env["prepaid.load.event"]
        rows = self.env.execute_query(
            SQL(
                """SELECT r.meter_id, r.read_at, r.power, r.power_factor
                     FROM prepaid_meter_reading r
                     JOIN prepaid_meter m ON m.id = r.meter_id
                    WHERE r.meter_id = ANY(%s) AND r.power IS NOT NULL
                      AND r.read_at >= m.last_reading_at - %s * interval '1 second'
                      AND r.state IS DISTINCT FROM 'quarantined'
                 ORDER BY r.meter_id, r.read_at""",
                meters.ids,
                int(DETECTION_WINDOW.total_seconds()),
            )
        )
        samples = {}
        for meter_id, read_at, power, power_factor in rows:
            samples.setdefault(meter_id, []).append(_sample(read_at, power, power_factor))
        catalogue = {a.code: a for a in self.env["prepaid.appliance"].sudo().search([])}
        engine_catalogue = {code: a._prepaid_engine_appliance() for code, a in catalogue.items()}
        created = self.env["prepaid.load.event"]
        engine_profiles = {profile: profile._prepaid_engine_profile() for profile in set(profiles.values())}
        for meter in meters:
            profile = profiles[meter.id]
            events = classify(
                samples.get(meter.id, ()),
                engine_profiles[profile],
                POLL_DETECTION,
                engine_catalogue,
            )
            for event in events:
                if str(event.classification) not in RECORDED:
                    continue
                created |= meter._prepaid_record_load_event(event, profile, catalogue)
        return created

    # ------------------------------------------------------------------ detection (meter side)

    def _prepare_engine_meter(self, models_cache=None):
        """Electricity meters whose model holds the load status and event records are followed by the poll
        (``MeterSpec.load_events_seen``: the meter's event count last read)."""
        spec = super()._prepare_engine_meter(models_cache)
        if self.utility == "electricity" and reads_load_events(spec.model):
            spec = dataclasses.replace(spec, load_events_seen=self.sudo().load_meter_event_count)
        return spec

    @api.model
    @api.private
    def _prepaid_meter_load_data(self, items):
        """Store each meter's trip reason and event count (its newest reading), and record its new event
        records as load events (source meter). A failure never loses the readings: it is logged."""
        super()._prepaid_meter_load_data(items)
        by_meter = {}
        for meter_id, reading in items:
            by_meter.setdefault(meter_id, []).append(reading)
        meters = self.sudo().browse(list(by_meter)).exists()
        if not meters:
            return
        profiles = self.env["prepaid.load.profile"]._profiles_of(meters)
        for meter in meters:
            try:
                with self.env.cr.savepoint():
                    meter._prepaid_record_meter_events(by_meter[meter.id], profiles.get(meter.id))
            except Exception:  # advisory next to storing the readings: log, never lose them
                _logger.exception("meter-side load events of meter %s failed", meter.id)

    def _prepaid_record_meter_events(self, readings, profile):
        """Record the event records of ``readings`` (engine Readings of this meter) that are load events
        (the engine's :func:`~prepaid_engine.load.params.meter_load_event`), oldest first, once each.

        The meter tripped itself: no trip command is queued (its relay is open already, and by the time the
        poll reads the record the meter may have restored itself after its delay: a trip then would cut it
        again). The platform keeps its own restore bookkeeping by the profile's policy all the same (load
        state, restore time, the day's count): its restore cron closes the meter when the policy says (a
        close of a closed relay is harmless), and a meter the policy locks waits for a manager's restore,
        so a meter is never left open by a disagreement with its own count."""
        self.ensure_one()
        readings = sorted(readings, key=lambda r: r.read_at)
        latest = readings[-1]
        vals = {}
        if latest.trip_reason is not None:
            vals["load_trip_reason"] = latest.trip_reason.name.lower()
        if latest.load_event_count is not None:
            vals["load_meter_event_count"] = latest.load_event_count
        records = {}
        for reading in readings:
            for record in reading.load_events:
                records.setdefault((record.at, record.reason), record)
        created = self.env["prepaid.load.event"]
        if records:
            model = self.model_id.sudo()._get_engine_model()
            events = [
                meter_load_event(model, record) for record in sorted(records.values(), key=lambda r: r.at)
            ]
            events = [event for event in events if event is not None]
            # A meter clock ahead of the poll would date events in the future: they are shifted back by that
            # skew (their spacing kept), never stored after the reading that brought them.
            skew = max((event.at - latest.read_at for event in events), default=timedelta(0))
            for event in events:
                if skew > timedelta(0):
                    event = dataclasses.replace(event, at=event.at - skew)
                created |= self._prepaid_record_load_event(event, profile, {}, source="meter")
        if vals:
            internal(self.sudo()).write(vals)
        return created

    def _prepaid_record_load_event(self, event, profile, catalogue, source="platform"):
        """Record one engine :class:`LoadEvent` (nothing if the step is recorded already) and act on it.
        ``source`` meter: the meter tripped itself (no trip command, see
        :meth:`_prepaid_record_meter_events`); ``profile`` may then be none (no restore bookkeeping)."""
        self.ensure_one()
        at = _naive(event.at)
        Event = internal(self.env["prepaid.load.event"].sudo())
        self.env.cr.execute(
            SQL(
                "SELECT 1 FROM prepaid_load_event WHERE meter_id = %s AND at = %s AND classification = %s",
                self.id,
                at,
                str(event.classification),
            )
        )
        if self.env.cr.fetchone():
            return Event.browse()
        appliance = catalogue.get(event.appliance) if event.appliance else None
        vals = {
            "meter_id": self.id,
            "unit_id": self.unit_id.id,
            "building_id": (self.building_id or self.unit_id.building_id).id,
            "account_id": self.account_id.id,
            "partner_id": self.account_id.partner_id.id,
            "company_id": self.company_id.id,
            "profile_id": profile.id if profile else False,
            "at": at,
            "step_w": float(event.step_w),
            "level_w": float(event.level_w),
            "power_factor": float(event.power_factor) if event.power_factor is not None else 0.0,
            "classification": str(event.classification),
            "appliance_id": appliance.id if appliance else False,
            "action": str(event.action),
            "source": source,
        }
        with self.env.cr.savepoint():
            record = Event.with_context(mail_create_nolog=True).create([vals])
        if source == "meter":
            if profile and event.action == Action.TRIP:
                record._prepaid_trip(profile, queue=False)
        elif event.action == Action.TRIP and self.load_state == "normal":
            record._prepaid_trip(profile)
        record._prepaid_notify()
        return record

    # ------------------------------------------------------------------ restore

    def _prepaid_load_trip_times(self, until):
        """The times of this meter's load trips (events with action trip) of ``until``'s local day."""
        self.ensure_one()
        tz = (self.building_id or self.unit_id).effective_tz or "UTC"
        start, end = day_bounds(_aware(until), tz)
        events = (
            self.env["prepaid.load.event"]
            .sudo()
            .search(
                [
                    ("meter_id", "=", self.id),
                    ("action", "=", "trip"),
                    ("at", ">=", _naive(start)),
                    ("at", "<", _naive(end)),
                ]
            )
        )
        return [_aware(e.at) for e in events], tz

    @api.model
    def _cron_load_restore(self, batch=RESTORE_BATCH):
        """Every minute: close the meters whose automatic load restore is due, unless their account is cut
        off for its balance (the balance rule restores them; load control never hands out unpaid power)."""
        now = fields.Datetime.now()
        meters = self.sudo().search(
            [
                ("load_state", "=", "tripped"),
                ("load_restore_at", "!=", False),
                ("load_restore_at", "<=", now),
            ],
            limit=batch,
            order="load_restore_at, id",
        )
        restored = self.browse()
        for meter in meters:
            if meter.account_id.supply_cut:
                continue
            meter._prepaid_load_close(self.env._("Automatic restore after a load trip."))
            restored |= meter
        return len(restored)

    def _prepaid_load_close(self, reason, user=None):
        """Close this meter's relay again after a load trip, and mark its open events restored. During a
        time-control window that wants it off, it is only flagged: time control closes it when the window
        ends."""
        self.ensure_one()
        held = self.id in self.env["prepaid.time.schedule"]._prepaid_wanted_off(self)
        if held:
            internal(self.sudo()).write({"time_control_off": True})
        else:
            self._prepaid_queue_load_close(user)
        self._prepaid_mark_restored(reason, user)

    def _prepaid_queue_load_close(self, user=None):
        self.env["prepaid.meter.command"].sudo()._enqueue(
            [
                {
                    "meter_id": self.id,
                    "kind": "close",
                    "reason": "manual" if user else "automatic",
                    "origin": self.env._("Load control"),
                }
            ],
            urgent=True,
        )

    def _prepaid_mark_restored(self, reason, user=None):
        internal(self.sudo()).write({"load_state": "normal", "load_restore_at": False})
        events = (
            self.env["prepaid.load.event"]
            .sudo()
            .search([("meter_id", "=", self.id), ("restore", "in", ("auto", "manager", "balance"))])
        )
        internal(events).write(
            {
                "restore": "restored",
                "restored_at": fields.Datetime.now(),
                "restored_by_id": user.id if user else False,
                "restore_reason": reason,
            }
        )
        self.sudo().message_post(body=reason)

    def action_load_restore(self):
        """Managers: restore a meter tripped for its load (with a reason, in the wizard)."""
        self.ensure_one()
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers restore a meter tripped for its load."))
        self.check_access("write")
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Restore After a Load Trip"),
            "res_model": "prepaid.load.restore.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_meter_id": self.id},
        }

    def _prepaid_manager_restore(self, reason):
        self.ensure_one()
        if self.load_state == "normal":
            raise UserError(self.env._("%(meter)s is not tripped for its load.", meter=self.display_name))
        if self.account_id.supply_cut:
            raise UserError(
                self.env._(
                    "%(meter)s is also cut off for its balance: it comes back once the account is topped up.",
                    meter=self.display_name,
                )
            )
        self._prepaid_load_close(
            self.env._("Restored by %(user)s: %(reason)s", user=self.env.user.name, reason=reason),
            user=self.env.user,
        )

    # ------------------------------------------------------------------ learning an appliance

    def action_load_learn_start(self):
        """Managers: start learning an appliance on this meter (switch it on after this; finish when a few
        polls have read it). Load trips wait meanwhile."""
        self.ensure_one()
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers learn appliances."))
        self.check_access("write")
        if self.utility != "electricity":
            raise UserError(self.env._("Only electricity meters learn appliances."))
        internal(self.sudo()).write({"load_learning_since": fields.Datetime.now()})
        self.sudo().message_post(body=self.env._("Learning an appliance: switch it on now."))
        return True

    def action_load_learn_finish(self):
        """Managers: name the appliance learnt since the start and add it to the catalogue (wizard)."""
        self.ensure_one()
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers learn appliances."))
        self.check_access("write")
        if not self.load_learning_since:
            raise UserError(self.env._("%(meter)s is not learning an appliance.", meter=self.display_name))
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Learn an Appliance"),
            "res_model": "prepaid.load.learn.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_meter_id": self.id},
        }

    def action_load_learn_cancel(self):
        self.ensure_one()
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers learn appliances."))
        self.check_access("write")
        internal(self.sudo()).write({"load_learning_since": False})
        return True

    def _prepaid_learning_samples(self, baseline_window=timedelta(minutes=15)):
        """(baseline, samples) of the learning: the meter's power samples before and since the start."""
        self.ensure_one()
        since = self.load_learning_since
        rows = self.env.execute_query(
            SQL(
                """SELECT read_at, power, power_factor FROM prepaid_meter_reading
                    WHERE meter_id = %s AND power IS NOT NULL AND read_at >= %s
                      AND state IS DISTINCT FROM 'quarantined'
                 ORDER BY read_at""",
                self.id,
                since - baseline_window,
            )
        )
        baseline, samples = [], []
        for read_at, power, power_factor in rows:
            sample = _sample(read_at, power, power_factor)
            (samples if read_at > since else baseline).append(sample)
        return baseline, samples

    def action_view_load_events(self):
        """Staff: the meter's load events (tenants read their notices on the account, not the events)."""
        self.ensure_one()
        if not self.env.user.has_group("prepaid_base.group_prepaid_user"):
            raise AccessError(self.env._("Load events are for the property's staff."))
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_load_control.prepaid_load_event_action"
        )
        action["domain"] = [("meter_id", "=", self.id)]
        return action
