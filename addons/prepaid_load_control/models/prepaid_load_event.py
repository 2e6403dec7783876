from datetime import UTC
from zoneinfo import ZoneInfo

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_internal
from odoo.exceptions import AccessError

from prepaid_engine.load import RestoreAction, decide_restore

CLASSIFICATION_SELECTION = [
    ("malicious", "Malicious Load"),
    ("overload", "Over Power"),
    ("whitelisted", "Whitelisted Appliance"),
    ("normal", "Normal"),
    ("unknown", "Unknown"),
]
ACTION_SELECTION = [("none", "None"), ("alarm", "Alarm"), ("trip", "Trip")]
RESTORE_SELECTION = [
    ("none", "Nothing to Restore"),
    ("auto", "Automatic Restore Planned"),
    ("manager", "Waits for a Manager"),
    ("balance", "Cut Off for Balance"),
    ("restored", "Restored"),
]


class PrepaidLoadEvent(models.Model):
    """A load event: a step in a meter's power the engine judged malicious or over the limit (or any step
    while the meter learns an appliance), or a trip the meter recorded itself (source meter, read by the
    poll), what was done (alarm, trip) and how the supply came back."""

    _name = "prepaid.load.event"
    _description = "Load Event"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "at desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name")
    meter_id = fields.Many2one("prepaid.meter", required=True, readonly=True, index=True, ondelete="cascade")
    unit_id = fields.Many2one("prepaid.property", readonly=True, index=True)
    building_id = fields.Many2one("prepaid.property", readonly=True, index=True)
    account_id = fields.Many2one("prepaid.account", readonly=True, index="btree_not_null")
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    profile_id = fields.Many2one("prepaid.load.profile", readonly=True, ondelete="set null")
    at = fields.Datetime(string="Time", required=True, readonly=True, index=True)
    step_w = fields.Float(string="Power Step (W)", digits=(10, 0), readonly=True, aggregator="avg")
    level_w = fields.Float(string="Total After (W)", digits=(10, 0), readonly=True, aggregator="max")
    power_factor = fields.Float(string="Step Power Factor", digits=(4, 3), readonly=True, aggregator="avg")
    classification = fields.Selection(CLASSIFICATION_SELECTION, required=True, readonly=True, index=True)
    appliance_id = fields.Many2one("prepaid.appliance", string="Matched Appliance", readonly=True)
    action = fields.Selection(ACTION_SELECTION, string="Action Taken", required=True, readonly=True)
    source = fields.Selection(
        [("platform", "Platform (power samples)"), ("meter", "Meter (trip record)")],
        required=True,
        readonly=True,
        default="platform",
    )
    trips_today = fields.Integer(string="Load Trips That Day", readonly=True, aggregator="max")
    restore = fields.Selection(RESTORE_SELECTION, required=True, readonly=True, default="none", tracking=True)
    restore_at = fields.Datetime(string="Restore Planned At", readonly=True)
    restored_at = fields.Datetime(readonly=True)
    restored_by_id = fields.Many2one("res.users", readonly=True)
    restore_reason = fields.Text(readonly=True)
    command_id = fields.Many2one("prepaid.meter.command", string="Trip Command", readonly=True)
    month = fields.Char(
        compute="_compute_month", store=True, help="YYYY-MM of the event, for repeat offenders."
    )

    _sql_constraints = [
        (
            "step_uniq",
            "UNIQUE(meter_id, at, classification)",
            "A step of a meter is recorded once.",
        )
    ]

    @api.depends("meter_id", "classification", "at")
    def _compute_name(self):
        labels = dict(self._fields["classification"]._description_selection(self.env))
        for event in self:
            event.name = f"{event.meter_id.display_name} {labels.get(event.classification, '')}"

    @api.depends("at")
    def _compute_month(self):
        for event in self:
            event.month = f"{event.at:%Y-%m}" if event.at else False

    @api.model_create_multi
    def create(self, vals_list):
        if not is_internal(self.env):
            raise AccessError(self.env._("Load events are recorded by load control only."))
        return super().create(vals_list)

    def write(self, vals):
        if not is_internal(self.env) and set(vals) - {"message_main_attachment_id"}:
            raise AccessError(self.env._("Load events cannot be edited."))
        return super().write(vals)

    # ------------------------------------------------------------------ acting on an event

    def _prepaid_trip(self, profile, queue=True):
        """Trip the meter for this event and decide, with the platform's count of the day's load trips
        (the engine's :func:`decide_restore`), when it comes back: after the profile's delay, or when a
        manager restores it (the trip after the day's automatic restores), or when the balance allows.
        ``queue`` False: the meter tripped itself (a meter-side event): only the decision is kept."""
        self.ensure_one()
        meter = self.meter_id.sudo()
        command = self.env["prepaid.meter.command"]
        if queue:
            command = (
                self.env["prepaid.meter.command"]
                .sudo()
                ._enqueue(
                    [
                        {
                            "meter_id": meter.id,
                            "kind": "trip",
                            "reason": "automatic",
                            "origin": self.env._("Load control: %(event)s", event=self.name),
                            "res_model": self._name,
                            "res_id": self.id,
                        }
                    ],
                    urgent=True,
                )
            )
        times, tz = meter._prepaid_load_trip_times(self.at)
        policy = profile._prepaid_restore_policy()
        cut = bool(meter.account_id.supply_cut)
        decision = decide_restore(times, policy, tz=tz, balance_cut_off=cut)
        restore_at = decision.at.astimezone(UTC).replace(tzinfo=None) if decision.at else False
        if decision.action == RestoreAction.MANAGER:
            state, restore, restore_at = "locked", "manager", False
        elif decision.action == RestoreAction.NEVER:
            # Cut off for its balance too: load control closes it after the delay once the balance allows.
            state, restore = "tripped", "balance"
            restore_at = (
                fields.Datetime.to_datetime(self.at) + policy.delay if policy.delay is not None else False
            )
        else:
            state, restore = "tripped", "auto"
        internal(meter).write({"load_state": state, "load_restore_at": restore_at})
        internal(self).write(
            {
                "command_id": command[:1].id,
                "trips_today": decision.trips_today,
                "restore": restore,
                "restore_at": restore_at,
            }
        )

    def _prepaid_notify(self):
        """Tell the tenant (SMS queued, e-mail and a message on the account, shown on the portal) and give the
        building's manager (else the profile's responsible) an activity."""
        for event in self.sudo():
            account = event.account_id
            if account:
                partner = account.partner_id
                env = event.with_context(lang=partner.lang or event.env.lang).env
                labels = dict(event._fields["classification"]._description_selection(env))
                zone = ZoneInfo((event.building_id or event.unit_id).effective_tz or "UTC")
                watts = event.step_w or event.level_w
                power = format(watts, ".0f")  # not an f-string in the call: Babel reads the call
                when = event.at.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
                if watts:
                    body = env._(
                        "%(meter)s: %(kind)s of %(power)s W detected at %(time)s.",
                        meter=event.meter_id.display_name,
                        kind=labels[event.classification],
                        power=power,
                        time=when,
                    )
                else:  # a meter's own trip record without its power
                    body = env._(
                        "%(meter)s: %(kind)s detected at %(time)s.",
                        meter=event.meter_id.display_name,
                        kind=labels[event.classification],
                        time=when,
                    )
                if event.action == "trip" and event.restore == "auto" and event.restore_at:
                    back = event.restore_at.replace(tzinfo=UTC).astimezone(zone).strftime("%H:%M")
                    body += " " + env._(
                        "The supply is cut; it comes back automatically at %(time)s.", time=back
                    )
                elif event.action == "trip":
                    body += " " + env._("The supply is cut until the property office restores it.")
                account._message_sms(body, partner_ids=partner.ids, put_in_queue=True)
                account.with_context(mail_notify_force_send=False).message_post(
                    author_id=account.company_id.partner_id.id,
                    body=body,
                    partner_ids=partner.ids,
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                )
            manager = event.building_id.load_manager_id or event.profile_id.user_id
            if manager:
                event.activity_schedule(
                    "prepaid_load_control.mail_activity_load_event",
                    user_id=manager.id,
                    summary=event.name,
                )

    def action_restore(self):
        """Managers: open the restore wizard for this event's meter."""
        self.ensure_one()
        return self.meter_id.action_load_restore()
