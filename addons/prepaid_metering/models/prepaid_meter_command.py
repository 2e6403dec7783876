import logging
from collections import Counter, defaultdict
from datetime import UTC, timedelta
from decimal import Decimal

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_base.tools import bulk_sql
from odoo.addons.prepaid_base.tools.transactions import owns_transaction
from odoo.exceptions import UserError
from odoo.tools import SQL
from odoo.tools.translate import LazyTranslate

from prepaid_engine.errors import EngineError
from prepaid_engine.load.params import parameters_from_json
from prepaid_engine.types import CommandKind, CommandOutcome, CommandStatus, MeterCommand

from .prepaid_comm_log import KIND_SELECTION as ERROR_KIND_SELECTION
from .prepaid_gateway import store_in_own_transaction

_logger = logging.getLogger(__name__)
_lt = LazyTranslate(__name__)

KIND_SELECTION = [
    (str(CommandKind.TRIP), "Trip"),
    (str(CommandKind.CLOSE), "Close"),
    (str(CommandKind.KEEP_POWER_ON), "Keep Power On"),
    (str(CommandKind.KEEP_POWER_OFF), "Keep Power Off"),
    (str(CommandKind.SET_PRICES), "Set Prices"),
    (str(CommandKind.SET_LOAD_PARAMETERS), "Set Load Parameters"),
    (str(CommandKind.RECHARGE), "Recharge"),
    (str(CommandKind.VALVE_OPEN), "Open Valve"),
    (str(CommandKind.VALVE_CLOSE), "Close Valve"),
]
STATE_SELECTION = [
    ("queued", "Queued"),
    ("sent", "Sent"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("expired", "Expired"),
    ("cancelled", "Cancelled"),
]
EXECUTOR_CRON = "prepaid_metering.ir_cron_execute_commands"
DEFAULT_BATCH = 200
BACKOFF_BASE = 30  # seconds before the first retry; doubles with each failed attempt
DEFAULT_EXPIRY = timedelta(days=1)
# A command still "sent" this long after it was sent lost its executor (a worker killed during the field
# I/O): it goes back to the queue as a failed attempt. Far longer than any executor run.
STALE_SENT = timedelta(hours=1)
# A queued command of one kind is superseded (cancelled) when its opposite is queued for the same meter.
OPPOSITE_KINDS = {
    "trip": "close",
    "close": "trip",
    "keep_power_on": "keep_power_off",
    "keep_power_off": "keep_power_on",
    "valve_open": "valve_close",
    "valve_close": "valve_open",
}
# Kinds that set a state: queuing one twice returns the queued one. Set-prices replaces the queued prices and
# set-load-parameters the queued values; recharges are money and are told apart by their purchase count.
STATE_KINDS = frozenset(OPPOSITE_KINDS)
# What a done command means for the meter record when the meter reports nothing more precise.
KIND_EFFECTS = {
    "trip": {"supply": "off"},
    "close": {"supply": "on"},
    "valve_open": {"supply": "on"},
    "valve_close": {"supply": "off"},
    "keep_power_on": {"keep_power_state": True},
    "keep_power_off": {"keep_power_state": False},
}
PRICE_FIELDS = ("price_sharp", "price_peak", "price_flat", "price_valley")
OUTCOME_FIELDS = ("outcome", "error_kind", "refusal", "detail")
# How a command ended, as data: the engine's CommandOutcome values and what the queue itself decides. The
# message people read is made from it in their language (_compute_message).
OUTCOME_SELECTION = [
    (str(CommandOutcome.CONFIRMED), "Confirmed"),
    (str(CommandOutcome.DONE_UNCONFIRMED), "Acknowledged"),
    (str(CommandOutcome.DUPLICATE), "Already Applied"),
    (str(CommandOutcome.REFUSED), "Refused by the Meter"),
    (str(CommandOutcome.NOT_CONFIRMED), "Not Confirmed"),
    (str(CommandOutcome.READBACK_FAILED), "Read-back Failed"),
    (str(CommandOutcome.NO_ANSWER), "No Answer"),
    (str(CommandOutcome.EXPIRED), "Expired"),
    (str(CommandOutcome.CYCLE_TIME), "Out of Time"),
    (str(CommandOutcome.UNKNOWN_METER), "Unknown Meter"),
    (str(CommandOutcome.UNSUPPORTED), "Unsupported"),
    ("superseded", "Superseded"),
    ("cancelled", "Cancelled"),
    ("interrupted", "Interrupted"),
    ("not_on_gateway", "Not Behind a Gateway"),
    ("engine_error", "Not Sendable"),
    ("no_result", "No Result"),
]


# The meter's error bits in words: DL/T 645 ERR byte and security SERR word, CJ/T 188 status, Modbus
# exception codes (the engine's names). A name not listed is shown as it is.
REFUSAL_LABELS = {
    "other": _lt("other error"),
    "illegal_data": _lt("illegal data"),
    "no_data": _lt("no such data"),
    "unauthorised": _lt("wrong password or not authorised"),
    "baud_fixed": _lt("baud rate cannot change"),
    "year_zones": _lt("too many year zones"),
    "day_periods": _lt("too many day periods"),
    "tariffs": _lt("too many tariffs"),
    "duplicate_recharge": _lt("duplicate recharge"),
    "esam_verify_failed": _lt("ESAM verification failed"),
    "authentication_failed": _lt("authentication (MAC) failed"),
    "customer_number_mismatch": _lt("customer number mismatch"),
    "recharge_count_error": _lt("purchase count out of sequence"),
    "over_hoarding_limit": _lt("over the hoarding limit"),
    "address_error": _lt("address error"),
    "meter_suspended": _lt("meter suspended"),
    "valve_open": _lt("valve open"),
    "valve_closed": _lt("valve closed"),
    "valve_abnormal": _lt("valve abnormal"),
    "battery_low": _lt("battery low"),
    "illegal_function": _lt("illegal function"),
    "illegal_data_address": _lt("illegal data address"),
    "illegal_data_value": _lt("illegal data value"),
    "device_failure": _lt("device failure"),
    "device_busy": _lt("device busy"),
}


def backoff(attempts):
    """Delay before the next attempt after ``attempts`` failed ones: 30 s, 1 min, 2 min, 4 min, ..."""
    return timedelta(seconds=BACKOFF_BASE * 2 ** max(attempts - 1, 0))


def _naive(value):
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0) if value else False


def _aware(value):
    return value.replace(tzinfo=UTC) if value else None


class PrepaidMeterCommand(models.Model):
    """One command for one meter, through one queue: relay, keep-power, valve, prices and recharges.

    Lifecycle: queued -> sent -> done | failed | expired; a failed attempt goes back to queued with an
    exponential backoff until ``max_attempts``; a command still queued at ``expires_at`` expires without being
    sent; queued commands can be cancelled. ``_enqueue`` is the only way in; urgent commands wake the executor
    cron at once."""

    _name = "prepaid.meter.command"
    _description = "Meter Command"
    _inherit = ["prepaid.guard.mixin"]
    _order = "id desc"
    _check_company_auto = True
    # Commands are queued by the suite's actions (_enqueue) and moved by the executor; nobody retargets or
    # rewrites one (its meter, kind, amount, purchase count, state...).
    _prepaid_internal_create = True
    _prepaid_protected_fields = (
        "name",
        "meter_id",
        "kind",
        "state",
        "reason",
        "requested_by",
        "requested_at",
        "sent_at",
        "done_at",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "expires_at",
        "urgent",
        "amount",
        "purchase_count",
        "price_sharp",
        "price_peak",
        "price_flat",
        "price_valley",
        "load_parameters",
        "outcome",
        "error_kind",
        "refusal",
        "detail",
        "cancelled_by",
        "confirmed",
        "res_model",
        "res_id",
        "origin",
    )

    name = fields.Char(required=True, readonly=True, copy=False, default=lambda self: self.env._("New"))
    meter_id = fields.Many2one(
        "prepaid.meter", required=True, ondelete="restrict", index=True, check_company=True
    )
    gateway_id = fields.Many2one(related="meter_id.gateway_id", store=True, index="btree_not_null")
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    kind = fields.Selection(KIND_SELECTION, required=True)
    state = fields.Selection(STATE_SELECTION, required=True, default="queued", index=True, readonly=True)
    reason = fields.Selection(
        [("manual", "Manual"), ("automatic", "Automatic"), ("batch", "Batch")],
        required=True,
        default="manual",
    )
    requested_by = fields.Many2one("res.users", default=lambda self: self.env.user, readonly=True)
    requested_at = fields.Datetime(default=fields.Datetime.now, required=True, readonly=True)
    sent_at = fields.Datetime(readonly=True, copy=False)
    done_at = fields.Datetime(readonly=True, copy=False)
    attempts = fields.Integer(readonly=True, copy=False)
    max_attempts = fields.Integer(default=5)
    next_attempt_at = fields.Datetime(
        readonly=True, copy=False, index="btree_not_null", help="Empty: as soon as the executor runs."
    )
    expires_at = fields.Datetime(help="A command still queued at this time expires without being sent.")
    urgent = fields.Boolean(help="Urgent commands wake the executor at once and go first.")
    currency_id = fields.Many2one(related="company_id.currency_id")
    amount = fields.Monetary(help="Recharge: the money credited to the meter.")
    purchase_count = fields.Integer(help="Recharge: the purchase count this recharge carries (previous + 1).")
    price_sharp = fields.Float(digits=(16, 4))
    price_peak = fields.Float(digits=(16, 4))
    price_flat = fields.Float(digits=(16, 4))
    price_valley = fields.Float(digits=(16, 4))
    load_parameters = fields.Text(
        readonly=True,
        help="Set load parameters: the values written to the meter, by parameter name (JSON, as the engine "
        "writes it: kW, modes, seconds and counts).",
    )
    outcome = fields.Selection(
        OUTCOME_SELECTION, readonly=True, copy=False, help="How the last attempt ended."
    )
    error_kind = fields.Selection(ERROR_KIND_SELECTION, string="Error", readonly=True, copy=False)
    refusal = fields.Char(
        readonly=True, copy=False, help="The meter's error bits when it refused the command (e.g. other)."
    )
    detail = fields.Char(
        string="Technical Detail", readonly=True, copy=False, help="What the engine said, word for word."
    )
    cancelled_by = fields.Many2one("res.users", readonly=True, copy=False)
    message = fields.Char(
        compute="_compute_message",
        help="The last result from the meter, or what the queue decided, in words.",
    )
    confirmed = fields.Boolean(readonly=True, copy=False, help="The new state was read back from the meter.")
    res_model = fields.Char(string="Origin Model", readonly=True)
    res_id = fields.Many2oneReference(string="Origin Record", model_field="res_model", readonly=True)
    origin = fields.Char(help="What asked for this command (document, rule, batch).")

    _sql_constraints = [
        ("max_attempts_positive", "CHECK(max_attempts > 0)", "A command needs at least one attempt."),
    ]

    @api.depends("outcome", "error_kind", "refusal", "detail", "cancelled_by", "kind", "meter_id.supply")
    @api.depends_context("lang")
    def _compute_message(self):
        errors = dict(self._fields["error_kind"]._description_selection(self.env))
        supplies = dict(self.env["prepaid.meter"]._fields["supply"]._description_selection(self.env))
        for command in self:
            command.message = command._outcome_message(errors, supplies)

    def _outcome_message(self, errors, supplies):
        """The outcome in words, in the reader's language (the engine's own words are in ``detail``)."""
        self.ensure_one()
        outcome, _ = self.outcome, self.env._
        error = errors.get(self.error_kind) or self.detail or ""
        if outcome == "confirmed":
            if "supply" in KIND_EFFECTS.get(self.kind, {}):
                return _(
                    "Done: the meter confirms it (supply %(supply)s).",
                    supply=supplies.get(self.meter_id.supply, "-"),
                )
            return _("Done: the meter confirms it.")
        if outcome == "done_unconfirmed":
            return _("Done: the meter acknowledged it (this model cannot confirm it).")
        if outcome == "duplicate":
            return _("The meter had already applied this recharge (same purchase count): nothing twice.")
        if outcome == "refused":
            names = [name for name in (self.refusal or "").split(",") if name]
            reasons = ", ".join(str(REFUSAL_LABELS[n]) if n in REFUSAL_LABELS else n for n in names)
            return _("The meter refused it: %(reasons)s.", reasons=reasons or error)
        if outcome == "not_confirmed":
            return _("The meter acknowledged it, but its read-back does not show the new state.")
        if outcome == "readback_failed":
            return _("The meter acknowledged it, but could not be read back (%(error)s).", error=error)
        if outcome == "no_answer":
            return _("No answer from the meter (%(error)s).", error=error)
        if outcome == "expired":
            return _("Expired before it could be sent.")
        if outcome == "cycle_time":
            return _("Not finished in time: it is tried again.")
        if outcome == "unknown_meter":
            return _("The meter is not on its gateway's bus.")
        if outcome == "unsupported":
            return _("This meter model cannot do that (%(error)s).", error=error)
        if outcome == "superseded":
            return _("Superseded by a newer command.")
        if outcome == "cancelled":
            return _("Cancelled by %(user)s.", user=self.cancelled_by.name or "-")
        if outcome == "interrupted":
            return _("Interrupted before the meter's answer was stored.")
        if outcome == "not_on_gateway":
            return _("The meter is not behind a gateway.")
        if outcome == "engine_error":
            return _("It cannot be sent: %(error)s", error=self.detail or "")
        if outcome == "no_result":
            return _("The engine returned no result.")
        return self.detail or False

    @api.model
    def _outcome_vals(self, outcome, error=None, refusal=(), detail=None):
        """The stored fields of an outcome (what ``message`` is made of)."""
        return {
            "outcome": str(outcome) if outcome else False,
            "error_kind": str(error) if error else False,
            "refusal": ",".join(refusal) or False,
            "detail": detail or False,
        }

    @api.model_create_multi
    def create(self, vals_list):
        now = fields.Datetime.now()
        unnamed = [vals for vals in vals_list if not vals.get("name") or vals["name"] == self.env._("New")]
        for vals, name in zip(
            unnamed, bulk_sql.next_names(self.env, "prepaid.meter.command", len(unnamed)), strict=True
        ):
            vals["name"] = name
        for vals in vals_list:
            requested_at = fields.Datetime.to_datetime(vals.get("requested_at")) or now
            vals.setdefault("requested_at", requested_at)
            vals.setdefault("expires_at", requested_at + DEFAULT_EXPIRY)
        return super().create(vals_list)

    # -- queue -----------------------------------------------------------------------------------------------
    @api.model
    @api.private
    def _enqueue(self, vals_list, urgent=False):
        """Queue commands (``vals_list``: ``meter_id``, ``kind``, optional values); return them in order.

        A state command (trip, close, keep-power, valve) already queued for the meter is returned instead of
        a new one, and queuing it cancels a queued opposite (a close supersedes a queued trip). A set-prices
        command replaces the prices of the queued one, a set-load-parameters command its values
        (``load_parameters``: :func:`~prepaid_engine.load.params.parameters_to_json` text). A recharge is new
        unless a queued one has the same purchase count, amount and origin record. With ``urgent`` the
        executor cron is triggered now.

        The queue is the suite's: callers check that the user may act on the meters (the meter buttons check
        write access on them); the commands are written under sudo, with the suite's sentinel.
        """
        self = self.sudo()
        # A new command of a meter named once in ``vals_list`` waits to be created with the others in one
        # batch (one INSERT per batch instead of one ORM create each: a batch operation queues thousands); a
        # meter named more than once is handled entry by entry (an entry sees what the earlier ones did).
        entries_of = Counter(vals["meter_id"] for vals in vals_list)
        commands = [None] * len(vals_list)
        pending = []
        # The queued commands of all these meters in one search, kept up to date below as commands are
        # cancelled or created (a later entry of the same meter sees what an earlier one did).
        queued_of = defaultdict(self.browse)
        meter_ids = list({vals["meter_id"] for vals in vals_list})
        if meter_ids:
            queued = self.search([("meter_id", "in", meter_ids), ("state", "=", "queued")], order="id")
            queued_of.update(queued.grouped(lambda c: c.meter_id.id))
        for position, vals in enumerate(vals_list):
            vals = dict(vals, urgent=urgent or vals.get("urgent", False))
            kind, meter_id = vals["kind"], vals["meter_id"]
            queued = queued_of[meter_id]
            opposite = queued.filtered(lambda c, kind=kind: c.kind == OPPOSITE_KINDS.get(kind))
            if opposite:
                queued_of[meter_id] = queued - opposite
                internal(opposite).write(
                    {
                        "state": "cancelled",
                        "done_at": fields.Datetime.now(),
                        **self._outcome_vals("superseded"),
                    }
                )
            same = queued.filtered(lambda c, kind=kind: c.kind == kind)
            if kind == "recharge":
                # Money: only the very same recharge (count, amount, origin) is the same command.
                same = same.filtered(
                    lambda c, vals=vals: (
                        c.purchase_count == vals.get("purchase_count", 0)
                        and c.currency_id.compare_amounts(c.amount, vals.get("amount", 0.0)) == 0
                        and (c.res_model or False, c.res_id or False)
                        == (vals.get("res_model") or False, vals.get("res_id") or False)
                    )
                )
            if same:
                command = same[:1]
                updates = {"urgent": True} if vals["urgent"] and not command.urgent else {}
                if kind == "set_prices":
                    updates.update({f: vals[f] for f in PRICE_FIELDS if f in vals})
                if kind == "set_load_parameters" and "load_parameters" in vals:
                    updates["load_parameters"] = vals["load_parameters"]
                if updates:
                    internal(command).write(updates)
            elif entries_of[meter_id] == 1:
                pending.append((position, vals))
                continue
            else:
                command = internal(self).create([vals])
                queued_of[meter_id] |= command
            commands[position] = command
        if pending:
            created = self._insert([vals for _position, vals in pending])
            for (position, _vals), command in zip(pending, created, strict=True):
                commands[position] = command
        # In order, each command once (two entries may name the same queued command).
        result = self.browse(list(dict.fromkeys(command.id for command in commands)))
        if urgent and result:
            self.env.ref(EXECUTOR_CRON).sudo()._trigger()
        return result

    @api.model
    @api.private
    def _insert(self, vals_list):
        """New commands of ``vals_list`` in one INSERT, as :meth:`create` would make them (the model's
        defaults, a name each, the meter's gateway and company): the queue's own path for thousands of
        commands at once (a batch operation). Values the table cannot take as they are (an x2many, a field
        not stored) or a name of their own go through the ORM's create instead."""
        if not vals_list:
            return self.browse()
        columns = {
            fname
            for fname, field in self._fields.items()
            if field.store and field.column_type and fname not in models.LOG_ACCESS_COLUMNS and fname != "id"
        }
        given = {fname for vals in vals_list for fname in vals}
        if not given <= columns or "name" in given:
            return internal(self).create(vals_list)
        defaults = self.default_get(sorted(columns - given - {"gateway_id", "company_id"}))
        now = fields.Datetime.now()
        names = bulk_sql.next_names(self.env, "prepaid.meter.command", len(vals_list))
        meters = self.env["prepaid.meter"].browse({vals["meter_id"] for vals in vals_list})
        place = {meter.id: (meter.gateway_id.id, meter.company_id.id) for meter in meters}
        fnames = sorted(given | set(defaults) | {"name", "gateway_id", "company_id", "requested_at"})
        fnames += ["expires_at"] if "expires_at" not in fnames else []
        fnames += ["create_uid", "create_date", "write_uid", "write_date"]
        rows = []
        for vals, name in zip(vals_list, names, strict=True):
            row = {**defaults, **vals, "name": name}
            row["gateway_id"], row["company_id"] = place[vals["meter_id"]]
            requested_at = fields.Datetime.to_datetime(row.get("requested_at")) or now
            row["requested_at"] = requested_at
            row["expires_at"] = row.get("expires_at") or requested_at + DEFAULT_EXPIRY
            row.update(create_uid=self.env.uid, create_date=now, write_uid=self.env.uid, write_date=now)
            rows.append(tuple(row.get(fname, False) for fname in fnames))
        returned = bulk_sql.insert_rows(self, fnames, rows, returning=("id", "name"))
        inserted = {name: cid for cid, name in returned}
        return self.browse([inserted[name] for name in names])

    def action_cancel(self):
        self.check_access("read")
        todo = self.filtered(lambda c: c.state == "queued")
        if todo != self:
            raise UserError(self.env._("Only queued commands can be cancelled."))
        internal(todo).sudo().write(
            {
                "state": "cancelled",
                "done_at": fields.Datetime.now(),
                "cancelled_by": self.env.user.id,
                **self._outcome_vals("cancelled"),
            }
        )
        return True

    def action_retry(self):
        self.check_access("read")
        todo = self.filtered(lambda c: c.state in ("failed", "expired"))
        if todo != self:
            raise UserError(self.env._("Only failed or expired commands can be retried."))
        now = fields.Datetime.now()
        internal(todo).sudo().write(
            {
                "state": "queued",
                "attempts": 0,
                "next_attempt_at": False,
                "expires_at": now + DEFAULT_EXPIRY,
                **self._outcome_vals(False),
            }
        )
        self.env.ref(EXECUTOR_CRON).sudo()._trigger()
        return True

    # -- executor --------------------------------------------------------------------------------------------
    @api.model
    def _expire_queued(self, now):
        """Queued commands past their expiry become expired, never sent."""
        expired = self.search([("state", "=", "queued"), ("expires_at", "<=", now)])
        internal(expired).write({"state": "expired", "done_at": now, **self._outcome_vals("expired")})
        return expired

    @api.model
    def _requeue_stale_sent(self, now):
        """Commands still "sent" :data:`STALE_SENT` after they were sent (their executor died during the
        field I/O) go back to the queue as a failed attempt. Sending again is safe: relay, valve and price
        commands set a state, and a recharge carries the same purchase count (a duplicate is success)."""
        stale = self.search([("state", "=", "sent"), ("sent_at", "<=", now - STALE_SENT)])
        stale._apply_failure(self._outcome_vals("interrupted"))
        return stale

    @api.model
    def _due_domain(self, now):
        return [
            ("state", "=", "queued"),
            "|",
            ("next_attempt_at", "=", False),
            ("next_attempt_at", "<=", now),
        ]

    @api.model
    def _cron_execute(self, batch=DEFAULT_BATCH):
        """Send the due queued commands (urgent first), at most ``batch`` per call, grouped by gateway in one
        engine call; apply the results. Rows are locked with SKIP LOCKED so concurrent executors never send
        the same command twice."""
        self = self.sudo()
        now = fields.Datetime.now()
        self._expire_queued(now)
        self._requeue_stale_sent(now)
        self.flush_model()
        rows = self.env.execute_query(
            SQL(
                """SELECT id FROM prepaid_meter_command
                    WHERE state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
                 ORDER BY urgent DESC, COALESCE(next_attempt_at, requested_at), id
                    LIMIT %s
                      FOR UPDATE SKIP LOCKED""",
                now,
                batch,
            )
        )
        commands = self.browse(sorted(row[0] for row in rows))
        if commands:
            commands._execute(own_transaction=owns_transaction(self.env))
        remaining = self.search_count(self._due_domain(now))
        self.env["ir.cron"]._notify_progress(done=len(commands), remaining=remaining)
        return len(commands)

    def _prepare_engine_command(self):
        """The engine's :class:`MeterCommand` (``key`` = the record id, ``meter_key`` = the meter id);
        :class:`~prepaid_engine.errors.ConfigError` for load parameters the engine cannot read."""
        self.ensure_one()
        prices = tuple(Decimal(str(self[f])) for f in PRICE_FIELDS) if self.kind == "set_prices" else ()
        parameters = ()
        if self.kind == "set_load_parameters":
            parameters = tuple(parameters_from_json(self.load_parameters or "").items())
        return MeterCommand(
            key=str(self.id),
            meter_key=str(self.meter_id.id),
            kind=CommandKind(self.kind),
            prices=prices,
            parameters=parameters,
            amount=Decimal(str(self.amount)).quantize(Decimal("0.01")) if self.kind == "recharge" else None,
            purchase_count=self.purchase_count if self.kind == "recharge" else None,
            # The queue's expiry is ours; a relay command's own validity is the engine's, on the meter's clock
            expires_at=_aware(self.expires_at),
            attempts=1,
        )

    def _execute(self, own_transaction=False):
        """Send these commands now (marks them sent, calls the engine, applies the results).

        ``own_transaction`` (the executor cron, see :func:`~.prepaid_gateway.in_own_transaction`): the field
        I/O happens between transactions, as the poll's does. The commands are marked sent and committed
        first (two executors never send one command twice; a command whose executor dies stays "sent" until
        :meth:`_requeue_stale_sent`), and the results are stored in a transaction of its own that starts
        after the I/O, with the commanded meters' rows locked first and retried on a concurrent update
        (:func:`~.prepaid_gateway.store_in_own_transaction`): a poll that stores its readings of the same
        meters meanwhile never makes the executor fail, nor the other way round."""
        now = fields.Datetime.now()
        for attempts, commands in self.grouped("attempts").items():
            internal(commands).write({"state": "sent", "sent_at": now, "attempts": attempts + 1})
        unreachable = self.filtered(lambda c: not c.meter_id.gateway_id or not c.meter_id.bus_id)
        unreachable._apply_failure(self._outcome_vals("not_on_gateway"), final=True)
        todo = self - unreachable
        results = {}
        by_gateway = todo.grouped(lambda c: c.meter_id.gateway_id)
        specs, engine_commands = [], []
        for gateway, commands in by_gateway.items():
            prepared = []
            for command in commands:  # a command the engine cannot read fails alone
                try:
                    prepared.append(command._prepare_engine_command())
                except EngineError as exc:
                    command._apply_failure(self._outcome_vals("engine_error", detail=str(exc)), final=True)
                    todo -= command
                    commands -= command
            if not commands:
                continue
            try:
                specs.append(gateway._prepare_engine_gateway(commands.meter_id))
                engine_commands += prepared
            except EngineError as exc:
                commands._apply_failure(self._outcome_vals("engine_error", detail=str(exc)), final=True)
                todo -= commands
        poller = self.env["prepaid.gateway"]._get_poller()
        if own_transaction:
            # No query after this until the results are stored: it would start the next transaction.
            self.env.cr.commit()  # pylint: disable=invalid-commit
        if engine_commands:
            results = self._execute_specs(specs, engine_commands, poller)

        def store():
            missing = todo.filtered(lambda c: str(c.id) not in results)
            missing._apply_failure(self._outcome_vals("no_result"))
            (todo - missing)._apply_results(results)
            self._after_execute()

        if own_transaction:
            store_in_own_transaction(self.env, store, lambda: todo.meter_id.ids)
        else:
            store()

    @api.model
    def _execute_specs(self, specs, engine_commands, poller=None):
        """``{command key: CommandResult}`` from the engine (``poller``: default the gateways' poller); if
        the engine refuses the batch as a whole, the gateways are tried one by one so that one bad gateway
        only fails its own commands."""
        poller = poller or self.env["prepaid.gateway"]._get_poller()
        try:
            return {r.key: r for r in poller.execute_sync(specs, engine_commands)}
        except EngineError as exc:
            if len(specs) == 1:
                _logger.warning("commands on gateway %s failed: %s", specs[0].key, exc)
                return {}
            _logger.warning("commands on %s gateways failed as a batch (%s): one by one", len(specs), exc)
        results = {}
        meters_of = {spec.key: {m.key for bus in spec.buses for m in bus.meters} for spec in specs}
        for spec in specs:
            mine = [c for c in engine_commands if c.meter_key in meters_of[spec.key]]
            results.update(self._execute_specs([spec], mine, poller))
        return results

    def _apply_result(self, result):
        """Record the engine's :class:`CommandResult` on this command and, when done, on its meter."""
        self.ensure_one()
        self._apply_results({str(self.id): result})

    def _apply_results(self, results):
        """Record the engine's results (``{command key: CommandResult}``) on these commands, set-based: the
        done ones in one UPDATE, their meters in one ORM write per set of values (the tracked supply and
        keep-power go through the ORM, the per-meter times in one UPDATE), the others per outcome."""
        now = fields.Datetime.now()
        done_rows, meter_times, meters_by_vals = [], [], defaultdict(list)
        expired, failed = defaultdict(list), defaultdict(list)
        for command in self:
            result = results[str(command.id)]
            status = CommandStatus(result.status)
            outcome = self._outcome_vals(result.outcome, result.error, result.refusal, result.message)
            if status == CommandStatus.EXPIRED:
                expired[tuple(outcome.items())].append(command.id)
                continue
            if status != CommandStatus.DONE:
                failed[tuple(outcome.items())].append(command.id)
                continue
            done_at = _naive(result.at) or now
            done_rows.append(
                (command.id, "done", done_at, bool(result.confirmed), *(outcome[f] for f in OUTCOME_FIELDS))
            )
            meter_vals = dict(KIND_EFFECTS.get(command.kind, {}))
            if result.supply is not None:
                meter_vals["supply"] = str(result.supply)
            if "supply" in meter_vals:
                meter_times.append((command.meter_id.id, done_at))
            if result.balance is not None:
                meter_vals["meter_balance"] = float(result.balance)
            if result.purchase_count is not None:
                meter_vals["purchase_count"] = result.purchase_count
            elif command.kind == "recharge" and command.purchase_count:
                meter_vals["purchase_count"] = command.purchase_count
            if meter_vals:
                meters_by_vals[tuple(sorted(meter_vals.items()))].append(command.meter_id.id)
        self.flush_recordset()  # the "sent" of this run first, then the results over it
        bulk_sql.update_rows(self, ["state", "done_at", "confirmed", *OUTCOME_FIELDS], done_rows)
        self.invalidate_recordset(["state", "done_at", "confirmed", *OUTCOME_FIELDS, "message"])
        Meter = self.env["prepaid.meter"]
        for meter_vals, meter_ids in meters_by_vals.items():
            internal(Meter.browse(meter_ids)).write(dict(meter_vals))
        # A meter commanded twice in one run keeps the later time.
        latest = {}
        for meter_id, done_at in meter_times:
            latest[meter_id] = max(done_at, latest.get(meter_id, done_at))
        Meter.flush_model(["supply_at"])
        bulk_sql.update_rows(Meter, ["supply_at"], list(latest.items()))
        Meter.invalidate_model(["supply_at"])
        for outcome, ids in expired.items():
            internal(self.browse(ids)).write({"state": "expired", "done_at": now, **dict(outcome)})
        for outcome, ids in failed.items():
            self.browse(ids)._apply_failure(dict(outcome))

    def _apply_failure(self, outcome, final=False):
        """A failed attempt (``outcome``: :meth:`_outcome_vals`): back to the queue with a backoff, or failed
        for good after ``max_attempts``."""
        now = fields.Datetime.now()
        exhausted = self if final else self.filtered(lambda c: c.attempts >= c.max_attempts)
        internal(exhausted).write({"state": "failed", "done_at": now, **outcome})
        for attempts, commands in (self - exhausted).grouped("attempts").items():
            internal(commands).write(
                {"state": "queued", "next_attempt_at": now + backoff(attempts), **outcome}
            )

    def _after_execute(self):
        """Hook called with the commands of one executor run once their results are applied (billing
        extends it, e.g. to settle recharges the meter confirmed)."""
        return True
