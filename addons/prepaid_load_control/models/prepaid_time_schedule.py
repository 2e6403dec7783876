import logging
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_base.tools.numbers import check_numbers
from odoo.exceptions import ValidationError
from odoo.osv import expression

from prepaid_engine.errors import ConfigError
from prepaid_engine.load import ALL_DAYS, Schedule, Window, next_edge, supply_at
from prepaid_engine.types import Supply

_logger = logging.getLogger(__name__)

WEEKDAY_FIELDS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # 0 = Monday .. 6 = Sunday
SUPPLY_SELECTION = [(str(Supply.OFF), "Off"), (str(Supply.ON), "On")]


def _aware(value):
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def _naive(value):
    return value.astimezone(UTC).replace(tzinfo=None) if value and value.tzinfo else value


class PrepaidTimeSchedule(models.Model):
    """Time control: when the supply of a set of electricity meters is cut by the clock (dormitory
    lights-out, school nights). Weekly windows, holidays with their own windows (the dates listed here and the
    leaves of a working-time calendar), an effective date range; the engine's :func:`supply_at` says what the
    supply should be at an instant and the cron queues trip / close commands for the meters that differ."""

    _name = "prepaid.time.schedule"
    _description = "Time Control Schedule"
    _inherit = ["prepaid.guard.mixin", "mail.thread"]
    _order = "name, id"
    _check_company_auto = True
    _prepaid_protected_fields = ("last_run_at", "last_command_count")
    _prepaid_target_fields = ("property_ids", "meter_ids", "resource_calendar_id")

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    note = fields.Text()
    effective_from = fields.Date(
        tracking=True, help="First local day windows start on (inclusive). Empty: since always."
    )
    effective_until = fields.Date(
        tracking=True, help="Last local day windows start on (inclusive). Empty: no end."
    )
    default_supply = fields.Selection(
        SUPPLY_SELECTION,
        string="Outside the Windows",
        required=True,
        default=str(Supply.ON),
        help="The supply outside every window (and outside the effective range).",
    )
    window_ids = fields.One2many(
        "prepaid.time.schedule.window",
        "schedule_id",
        string="Weekly Windows",
        domain=[("holiday", "=", False)],
        context={"default_holiday": False},
        help="A window runs from its start on the weekdays ticked to its end (the next day when the end is "
        "not after the start: 23:30-06:00). Where an off and an on window overlap, off wins.",
    )
    holiday_ids = fields.One2many("prepaid.time.schedule.holiday", "schedule_id", string="Holidays")
    holiday_window_ids = fields.One2many(
        "prepaid.time.schedule.window",
        "schedule_id",
        string="Holiday Windows",
        domain=[("holiday", "=", True)],
        context={"default_holiday": True},
        help="On a holiday these windows replace the weekly windows starting that day (their weekdays are "
        "ignored); a window that started the evening before still runs to its end.",
    )
    resource_calendar_id = fields.Many2one(
        "resource.calendar",
        string="Holiday Calendar",
        check_company=True,
        help="The days of this calendar's global leaves (time off without a resource) are holidays too.",
    )
    property_ids = fields.Many2many(
        "prepaid.property",
        "prepaid_time_schedule_property_rel",
        "schedule_id",
        "property_id",
        string="Applies To",
        check_company=True,
        help="Sites, buildings, floors or units: every electricity meter below them.",
    )
    meter_ids = fields.Many2many(
        "prepaid.meter",
        "prepaid_time_schedule_meter_rel",
        "schedule_id",
        "meter_id",
        string="Meters",
        check_company=True,
        domain="[('utility', '=', 'electricity')]",
        help="Single electricity meters, besides those of the properties.",
    )
    window_summary = fields.Char(string="Windows", compute="_compute_window_summary")
    in_force = fields.Boolean(
        compute="_compute_in_force",
        search="_search_in_force",
        help="Today is within the effective range.",
    )
    tz = fields.Char(
        string="Time Zone",
        compute="_compute_tz",
        help="The zone the windows are read in for the next edge: the first property's (each meter's "
        "own building zone applies when the cron runs).",
    )
    next_edge_at = fields.Datetime(
        string="Next Change",
        compute="_compute_next_edge_at",
        help="The next time the desired supply changes, in the time zone shown.",
    )
    last_run_at = fields.Datetime(string="Last Run", readonly=True, copy=False)
    last_command_count = fields.Integer(
        string="Commands Queued", readonly=True, copy=False, help="Trip / close commands its last run queued."
    )

    @api.depends(
        "window_ids.start",
        "window_ids.end",
        "window_ids.supply",
        *(f"window_ids.{f}" for f in WEEKDAY_FIELDS),
    )
    def _compute_window_summary(self):
        for schedule in self:
            schedule.window_summary = "; ".join(w._prepaid_summary() for w in schedule.window_ids)

    @api.depends("effective_from", "effective_until")
    def _compute_in_force(self):
        today = fields.Date.context_today(self)
        for schedule in self:
            schedule.in_force = (not schedule.effective_from or schedule.effective_from <= today) and (
                not schedule.effective_until or schedule.effective_until >= today
            )

    def _search_in_force(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise ValidationError(self.env._("In Force is searched with = True or = False only."))
        today = fields.Date.context_today(self)
        domain = [
            "&",
            "|",
            ("effective_from", "=", False),
            ("effective_from", "<=", today),
            "|",
            ("effective_until", "=", False),
            ("effective_until", ">=", today),
        ]
        if (operator == "=") == value:
            return domain
        return ["!", *domain]

    @api.depends("property_ids.effective_tz", "meter_ids", "company_id")
    def _compute_tz(self):
        for schedule in self:
            prop = schedule.property_ids[:1]
            meter = schedule.meter_ids[:1]
            schedule.tz = (
                prop.effective_tz
                or (meter.building_id or meter.unit_id).effective_tz
                or schedule.company_id.partner_id.tz
                or "UTC"
            )

    @api.depends("tz", "window_ids", "holiday_window_ids", "holiday_ids", "effective_from", "effective_until")
    def _compute_next_edge_at(self):
        now = datetime.now(UTC)
        for schedule in self:
            edge = False
            try:
                found = next_edge(schedule._prepaid_engine_schedule(), now, schedule.tz)
                edge = _naive(found) if found else False
            except ConfigError:
                edge = False
            schedule.next_edge_at = edge

    # ------------------------------------------------------------------ engine

    @api.constrains("effective_from", "effective_until", "default_supply", "window_ids", "holiday_window_ids")
    def _check_schedule(self):
        for schedule in self:
            try:
                schedule._prepaid_engine_schedule()
            except ConfigError as exc:
                raise ValidationError(
                    self.env._("%(schedule)s: %(error)s", schedule=schedule.display_name, error=exc)
                ) from exc

    def _prepaid_holiday_dates(self):
        """The holidays of this schedule: its own dates and the local days of its calendar's global leaves."""
        self.ensure_one()
        days = set(self.holiday_ids.mapped("date"))
        calendar = self.resource_calendar_id.sudo()
        if calendar:
            info = ZoneInfo(calendar.tz or "UTC")
            leaves = (
                self.env["resource.calendar.leaves"]
                .sudo()
                .search([("calendar_id", "=", calendar.id), ("resource_id", "=", False)])
            )
            for leave in leaves:
                first = _aware(leave.date_from).astimezone(info).date()
                last = (_aware(leave.date_to) - timedelta(microseconds=1)).astimezone(info).date()
                days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
        return frozenset(days)

    def _prepaid_engine_schedule(self):
        """The engine's :class:`Schedule` of this record (:class:`ConfigError` if it is not one)."""
        self.ensure_one()
        return Schedule(
            windows=tuple(w._prepaid_engine_window() for w in self.window_ids),
            holidays=self._prepaid_holiday_dates(),
            holiday_windows=tuple(w._prepaid_engine_window() for w in self.holiday_window_ids),
            effective_from=self.effective_from or None,
            effective_until=self.effective_until or None,
            default=Supply(self.default_supply),
        )

    # ------------------------------------------------------------------ cron

    def _prepaid_covering(self, meters):
        """``{meter id: schedules of self covering it}`` (the meter explicitly, or one of its unit's or
        building's ancestors), within the schedule's company."""
        scopes = [(s, set(s.meter_ids.ids), set(s.property_ids.ids)) for s in self]
        found = {}
        for meter in meters:
            chain = set()
            for prop in (meter.unit_id, meter.building_id):
                if prop:
                    chain.update(prop._get_ancestor_chain_ids())
            found[meter.id] = self.browse(
                s.id
                for s, meter_ids, prop_ids in scopes
                if s.company_id == meter.company_id and (meter.id in meter_ids or chain & prop_ids)
            )
        return found

    @api.model
    def _prepaid_wanted_off(self, meters, now=None):
        """The ids of ``meters`` that an active schedule wants off at ``now`` (in each meter's building zone):
        what a load restore or a top-up must not close (time control closes them when the window ends)."""
        now = _aware(now) or datetime.now(UTC)
        schedules = self.sudo().search([])
        if not schedules or not meters:
            return set()
        covering = schedules._prepaid_covering(meters)
        off = set()
        for meter in meters:
            tz = (meter.building_id or meter.unit_id).effective_tz or meter.company_id.partner_id.tz or "UTC"
            for schedule in covering[meter.id]:
                try:
                    engine = schedule._prepaid_engine_schedule()
                except ConfigError:
                    continue
                if supply_at(engine, now, tz) == Supply.OFF:
                    off.add(meter.id)
                    break
        return off

    @api.model
    def _cron_apply(self, now=None):
        """Every minute: the supply every active schedule wants now for each meter it covers (in the meter's
        building time zone; off wins where schedules disagree), and one batch of trip / close commands for the
        meters whose supply differs. A close is only sent to a meter time control tripped (a meter tripped by
        hand, for its balance or for its load stays off), never to one cut off for its balance or tripped or
        locked by load control; keep-power meters are left alone. Returns the commands queued."""
        now = _aware(now) or datetime.now(UTC)
        Meter = self.env["prepaid.meter"].sudo()
        Command = self.env["prepaid.meter.command"].sudo()
        schedules = self.sudo().search([])
        engines = {}
        for schedule in schedules:
            try:
                engines[schedule.id] = schedule._prepaid_engine_schedule()
            except ConfigError as exc:
                _logger.warning("time control: schedule %s skipped: %s", schedule.display_name, exc)
        schedules = schedules.filtered(lambda s: s.id in engines)
        props = schedules.property_ids
        scope = [[("time_control_off", "=", True)]]
        if schedules.meter_ids:
            scope.append([("id", "in", schedules.meter_ids.ids)])
        if props:
            scope += [[("unit_id", "child_of", props.ids)], [("building_id", "child_of", props.ids)]]
        domain = expression.AND([[("utility", "=", "electricity")], expression.OR(scope)])
        meters = Meter.search(domain)
        queued = Command.search(
            [("meter_id", "in", meters.ids), ("state", "=", "queued"), ("kind", "in", ("trip", "close"))]
        )
        queued_kinds = {(c.meter_id.id, c.kind) for c in queued}
        fallback = self.env._("Time control")
        vals_list, flag_on, flag_off = [], Meter.browse(), Meter.browse()
        per_schedule = Counter()
        covering = schedules._prepaid_covering(meters)
        for meter in meters:
            tz = (meter.building_id or meter.unit_id).effective_tz or meter.company_id.partner_id.tz or "UTC"
            mine = covering[meter.id]
            wanted = {s: supply_at(engines[s.id], now, tz) for s in mine}
            off = next((s for s, supply in wanted.items() if supply == Supply.OFF), None)
            if meter.keep_power_state or meter.account_id.keep_power:
                if not off and meter.time_control_off:
                    flag_off |= meter
                continue
            if off:
                if meter.supply != str(Supply.OFF):
                    if not meter.time_control_off:
                        flag_on |= meter
                    if (meter.id, "trip") not in queued_kinds:
                        vals_list.append(self._prepaid_command_vals(meter, "trip", off.name))
                        per_schedule[off.id] += 1
                continue
            if not meter.time_control_off:
                continue
            flag_off |= meter
            if (
                (meter.supply == str(Supply.ON) and (meter.id, "trip") not in queued_kinds)
                or meter.account_id.supply_cut
                or meter.load_state != "normal"
                or (meter.id, "close") in queued_kinds
            ):
                continue
            origin = mine[:1]
            vals_list.append(self._prepaid_command_vals(meter, "close", origin.name or fallback))
            if origin:
                per_schedule[origin.id] += 1
        commands = Command._enqueue(vals_list, urgent=True) if vals_list else Command.browse()
        if flag_on:
            internal(flag_on).write({"time_control_off": True})
        if flag_off:
            internal(flag_off).write({"time_control_off": False})
        by_count = {}
        for schedule in schedules:
            by_count.setdefault(per_schedule[schedule.id], schedules.browse())
            by_count[per_schedule[schedule.id]] |= schedule
        for count, group in by_count.items():
            internal(group).write({"last_run_at": _naive(now), "last_command_count": count})
        return commands

    @api.model
    def _prepaid_command_vals(self, meter, kind, origin):
        return {"meter_id": meter.id, "kind": kind, "reason": "automatic", "origin": origin}


class PrepaidTimeScheduleWindow(models.Model):
    _name = "prepaid.time.schedule.window"
    _description = "Time Control Window"
    _order = "schedule_id, holiday, start, id"

    schedule_id = fields.Many2one("prepaid.time.schedule", required=True, ondelete="cascade", index=True)
    holiday = fields.Boolean(help="A window of holidays (its weekdays are ignored).")
    start = fields.Float(required=True, default=23.5, help="Local wall-clock time the window starts.")
    end = fields.Float(
        required=True,
        default=6.0,
        help="Local wall-clock time the window ends: the next day when it is not after the start.",
    )
    supply = fields.Selection(
        SUPPLY_SELECTION, required=True, default=str(Supply.OFF), help="The supply during the window."
    )
    mon = fields.Boolean(default=True)
    tue = fields.Boolean(default=True)
    wed = fields.Boolean(default=True)
    thu = fields.Boolean(default=True)
    fri = fields.Boolean(default=True)
    sat = fields.Boolean(default=True)
    sun = fields.Boolean(default=True)

    @api.model_create_multi
    def create(self, vals_list):
        check_numbers(self, vals_list, ("start", "end"))
        return super().create(vals_list)

    def write(self, vals):
        check_numbers(self, [vals], ("start", "end"))
        return super().write(vals)

    @api.constrains("start", "end", "supply", "holiday", *WEEKDAY_FIELDS)
    def _check_window(self):
        for window in self:
            try:
                window._prepaid_engine_window()
            except ConfigError as exc:
                raise ValidationError(
                    self.env._(
                        "%(schedule)s, window %(window)s: %(error)s",
                        schedule=window.schedule_id.display_name,
                        window=window._prepaid_summary(),
                        error=exc,
                    )
                ) from exc

    @api.model
    def _prepaid_wall_time(self, hours, end=False):
        """``hours`` (the float_time widget's value) as a wall-clock time; 24:00 is allowed as an end (the
        next midnight)."""
        minutes = round((hours or 0.0) * 60)
        if minutes < 0 or minutes > 24 * 60 or (minutes == 24 * 60 and not end):
            raise ConfigError(
                f"a window's times are 00:00 to 24:00, not {hours:g} h", kind="time.window", hours=hours
            )
        return time(0) if minutes == 24 * 60 else time(minutes // 60, minutes % 60)

    def _prepaid_weekdays(self):
        self.ensure_one()
        if self.holiday:
            return ALL_DAYS
        return frozenset(n for n, fname in enumerate(WEEKDAY_FIELDS) if self[fname])

    def _prepaid_engine_window(self):
        self.ensure_one()
        return Window(
            start=self._prepaid_wall_time(self.start),
            end=self._prepaid_wall_time(self.end, end=True),
            weekdays=self._prepaid_weekdays(),
            supply=Supply(self.supply),
        )

    def _prepaid_summary(self):
        """``Off 23:30-06:00 Sun, Mon, Tue, Wed, Thu`` (for lists and messages)."""
        self.ensure_one()

        def clock(hours):
            minutes = round((hours or 0.0) * 60)
            return f"{minutes // 60:02d}:{minutes % 60:02d}"

        supply = dict(self._fields["supply"]._description_selection(self.env)).get(self.supply, "")
        days = ""
        if not self.holiday:
            order = (6, 0, 1, 2, 3, 4, 5) if self.sun else range(7)
            days = ", ".join(
                self._fields[WEEKDAY_FIELDS[n]]._description_string(self.env)
                for n in order
                if self[WEEKDAY_FIELDS[n]]
            )
            if all(self[f] for f in WEEKDAY_FIELDS):
                days = self.env._("every day")
        return " ".join(part for part in (supply, f"{clock(self.start)}-{clock(self.end)}", days) if part)


class PrepaidTimeScheduleHoliday(models.Model):
    _name = "prepaid.time.schedule.holiday"
    _description = "Time Control Holiday"
    _order = "date, id"

    schedule_id = fields.Many2one("prepaid.time.schedule", required=True, ondelete="cascade", index=True)
    date = fields.Date(
        required=True, help="A local day on which the holiday windows replace the weekly ones."
    )
    name = fields.Char(string="Holiday")

    _sql_constraints = [
        ("date_unique", "UNIQUE(schedule_id, date)", "A schedule lists a holiday once."),
    ]
