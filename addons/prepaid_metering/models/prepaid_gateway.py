import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_base.tools.transactions import commit_retrying, owns_transaction
from odoo.exceptions import UserError
from odoo.tools import SQL

from prepaid_engine.errors import EngineError
from prepaid_engine.types import ErrorKind, GatewaySpec, PollError, PollResult, Transport

_logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 15  # minutes between two polls when the gateway's building sets none
DEFAULT_BATCH = 200  # gateways handed to the engine per cron call
STORE_TRIES = 5  # transactions a poll result is stored in before the poll cron gives up (serialization)
TRANSPORT_SELECTION = [
    (str(Transport.TRANSPARENT), "Transparent (RTU over TCP)"),
    (str(Transport.MODBUS_TCP), "Modbus-TCP"),
    (str(Transport.SERIAL), "Serial port"),
]


def _utc(value):
    """An aware UTC datetime (engine side) as Odoo's naive UTC datetime, to the second."""
    if not value:
        return False
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def store_in_own_transaction(env, store, meter_ids):
    """Run ``store()`` (write what a poll or a command execution brought back) in a transaction of its own,
    committed at once; for callers that already ended the transaction they read in before their field I/O.

    The transaction first takes the row locks of the meters ``meter_ids()`` returns, in id order (the poll and
    the command executor both write meter rows; a row that the other is writing is waited for). Odoo runs in
    REPEATABLE READ: when the other committed a change to those rows meanwhile, PostgreSQL refuses this
    transaction's snapshot ("could not serialize access due to concurrent update"). That happens on the lock
    statement, which is run without Odoo's "bad query" error log, and the whole transaction is rolled back and
    run again from the same results (no field I/O repeated; the writes are idempotent: readings by
    ``UNIQUE(meter_id, read_at)``, command states by their command), up to :data:`STORE_TRIES` times with a
    random backoff (:func:`~odoo.addons.prepaid_base.tools.transactions.commit_retrying`)."""

    def work():
        locked = meter_ids()
        if locked:
            env.cr.execute(
                SQL(
                    "SELECT id FROM prepaid_meter WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                    sorted(locked),
                ),
                log_exceptions=False,
            )
        store()

    commit_retrying(env, work, tries=STORE_TRIES, label="storing meter results")


def next_slot(last, minutes):
    """The start of the polling slot after ``last``: slots of ``minutes`` counted from midnight UTC, so that
    readings of a 15-minute building land on :00, :15, :30 and :45."""
    day = last.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (last - day) // timedelta(minutes=minutes)
    return day + timedelta(minutes=minutes) * (elapsed + 1)


class PrepaidGateway(models.Model):
    """A gateway in the field: a Modbus-TCP converter, a transparent (RTU over TCP) gateway with one TCP port
    per RS-485 bus, or a local serial port. The poll cron hands due gateways to the engine's poller."""

    _name = "prepaid.gateway"
    _description = "Meter Gateway"
    _inherit = ["mail.thread"]
    _order = "code, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    code = fields.Char(
        required=True,
        tracking=True,
        help="Key of the gateway in the site map; unique per company.",
    )
    host = fields.Char(required=True, default="127.0.0.1", tracking=True)
    transport = fields.Selection(TRANSPORT_SELECTION, required=True, default="transparent", tracking=True)
    bus_ids = fields.One2many("prepaid.gateway.bus", "gateway_id", string="Buses", copy=True)
    timeout = fields.Float(
        string="Reply Timeout (s)", default=1.0, digits=(16, 2), help="Seconds to wait for one reply."
    )
    retries = fields.Integer(default=1, help="Extra attempts per request after a timeout or a garbled reply.")
    connect_timeout = fields.Float(string="Connect Timeout (s)", default=3.0, digits=(16, 2))
    property_id = fields.Many2one(
        "prepaid.property",
        string="Building",
        domain="[('kind', 'in', ('site', 'building'))]",
        check_company=True,
        tracking=True,
        help="The building this gateway serves: its reading interval sets how often the gateway is polled.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company, tracking=True
    )
    active = fields.Boolean(default=True, tracking=True)
    trace_frames = fields.Boolean(
        help="Keep every frame sent and received in the communication log (for troubleshooting: it grows "
        "fast)."
    )
    online = fields.Boolean(readonly=True, copy=False, tracking=True)
    last_contact = fields.Datetime(readonly=True, copy=False, help="Last time the gateway answered.")
    last_poll_at = fields.Datetime(string="Last Poll", readonly=True, copy=False)
    poll_interval = fields.Integer(
        string="Poll Interval (min)",
        compute="_compute_poll_interval",
        help="The reading interval of the gateway's building (15 minutes when none is set).",
    )
    next_poll_at = fields.Datetime(
        string="Next Poll",
        compute="_compute_next_poll_at",
        store=True,
        index=True,
        copy=False,
        help="Empty: due now. Slots are counted from midnight UTC in steps of the poll interval.",
    )
    shard = fields.Integer(
        copy=False,
        help="Shard number for sharded polling: the cron of shard i of n polls the gateways whose shard "
        "modulo n equals i. Defaults to the record id (an even spread); give gateways the same number to "
        "keep them on one worker.",
    )
    failure_count = fields.Integer(
        string="Failed Polls", readonly=True, copy=False, help="Polls in a row the gateway did not answer."
    )
    meter_ids = fields.One2many("prepaid.meter", "gateway_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_counts")
    offline_meter_count = fields.Integer(compute="_compute_counts", string="Offline Meters")
    error_count = fields.Integer(compute="_compute_counts", string="Errors (24 h)")

    _sql_constraints = [
        ("code_company_uniq", "UNIQUE(code, company_id)", "A gateway code must be unique per company."),
        ("timeout_positive", "CHECK(timeout > 0 AND connect_timeout > 0)", "Timeouts must be positive."),
        ("retries_positive", "CHECK(retries >= 0)", "Retries cannot be negative."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        gateways = super().create(vals_list)
        for gateway, vals in zip(gateways, vals_list, strict=True):
            if "shard" not in vals:
                gateway.shard = gateway.id
        return gateways

    @api.depends("property_id.building_id.reading_interval", "property_id.reading_interval")
    def _compute_poll_interval(self):
        for gateway in self:
            building = gateway.property_id.building_id or gateway.property_id
            gateway.poll_interval = building.reading_interval or DEFAULT_INTERVAL

    @api.depends("last_poll_at", "property_id.building_id.reading_interval", "property_id.reading_interval")
    def _compute_next_poll_at(self):
        for gateway in self:
            gateway.next_poll_at = (
                next_slot(gateway.last_poll_at, gateway.poll_interval) if gateway.last_poll_at else False
            )

    def _compute_counts(self):
        Meter = self.env["prepaid.meter"]
        totals = dict(Meter._read_group([("gateway_id", "in", self.ids)], ["gateway_id"], ["__count"]))
        offline = dict(
            Meter._read_group(
                [("gateway_id", "in", self.ids), ("online", "=", False)], ["gateway_id"], ["__count"]
            )
        )
        since = fields.Datetime.now() - timedelta(days=1)
        errors = dict(
            self.env["prepaid.comm.log"]._read_group(
                [("gateway_id", "in", self.ids), ("direction", "=", "error"), ("at", ">=", since)],
                ["gateway_id"],
                ["__count"],
            )
        )
        for gateway in self:
            gateway.meter_count = totals.get(gateway, 0)
            gateway.offline_meter_count = offline.get(gateway, 0)
            gateway.error_count = errors.get(gateway, 0)

    # -- engine input ----------------------------------------------------------------------------------------
    def _get_pollable_meters(self):
        """The active meters behind these gateways that the poller can reach (on a bus)."""
        return self.env["prepaid.meter"].search([("gateway_id", "in", self.ids), ("bus_id", "!=", False)])

    def _prepare_engine_gateway(self, meters=None, all_buses=False):
        """The engine's :class:`GatewaySpec` for this gateway: its buses with ``meters`` (default: all its
        pollable meters). ``GatewaySpec.key`` is the record id, ``MeterSpec.key`` the meter's record id.
        Buses without any of the meters are left out, unless ``all_buses`` (a connection test)."""
        self.ensure_one()
        meters = self._get_pollable_meters() if meters is None else meters
        meters_of_bus = meters.grouped("bus_id")
        models_cache = {}
        buses = [
            bus._prepare_engine_bus(meters_of_bus.get(bus, meters.browse()), models_cache)
            for bus in self.bus_ids
            if all_buses or bus in meters_of_bus
        ]
        return GatewaySpec(
            key=str(self.id),
            host=self.host,
            transport=Transport(self.transport),
            buses=tuple(buses),
            timeout=self.timeout,
            retries=self.retries,
            connect_timeout=self.connect_timeout,
        )

    @api.model
    def _get_master_key(self):
        """The master key the meter keys are derived from (system parameter, hex)."""
        value = self.env["ir.config_parameter"].sudo().get_param("prepaid_metering.master_key") or ""
        try:
            key = bytes.fromhex(value.strip())
        except ValueError as exc:
            raise UserError(
                self.env._("The system parameter prepaid_metering.master_key is not hexadecimal.")
            ) from exc
        if len(key) != 16:
            raise UserError(
                self.env._(
                    "The system parameter prepaid_metering.master_key must hold 16 bytes (32 hex digits)."
                )
            )
        return key

    @api.model
    def _get_poller(self, trace=False):
        from prepaid_engine.poller import Poller

        return Poller(master_key=self._get_master_key(), trace=trace)

    # -- polling ---------------------------------------------------------------------------------------------
    @api.model
    def _get_due_gateway_ids(self, now, shard=None, shards=None):
        """Ids of the active gateways due at ``now`` (of shard ``shard`` of ``shards``), oldest due first."""
        shard_clause = SQL("AND MOD(g.shard, %s) = %s", shards, shard) if shards else SQL()
        self.flush_model(["active", "next_poll_at", "shard"])
        self.env["prepaid.meter"].flush_model(["gateway_id", "bus_id", "active"])
        rows = self.env.execute_query(
            SQL(
                """SELECT g.id FROM prepaid_gateway g
                    WHERE g.active AND (g.next_poll_at IS NULL OR g.next_poll_at <= %s) %s
                      AND EXISTS (SELECT 1 FROM prepaid_meter m
                                   WHERE m.gateway_id = g.id AND m.bus_id IS NOT NULL AND m.active)
                 ORDER BY g.next_poll_at NULLS FIRST, g.id""",
                now,
                shard_clause,
            )
        )
        return [row[0] for row in rows]

    @api.model
    def _cron_poll(self, shard=None, shards=None, batch=DEFAULT_BATCH):
        """Poll the due gateways (of one shard): at most ``batch`` per call, all of them concurrently in the
        engine. The cron runner calls again while progress reports work remaining."""
        if shards and not 0 <= (shard or 0) < shards:
            raise UserError(
                self.env._(
                    "Shard %(shard)s does not exist among %(shards)s shards.", shard=shard, shards=shards
                )
            )
        due_ids = self._get_due_gateway_ids(fields.Datetime.now(), shard or 0, shards)
        todo = self.sudo().browse(due_ids[:batch])
        if todo:
            todo._poll(own_transaction=owns_transaction(self.env))
        self.env["ir.cron"]._notify_progress(done=len(todo), remaining=len(due_ids) - len(todo))
        return len(todo)

    def _poll(self, meters=None, own_transaction=False):
        """Poll these gateways now (``meters``: only those meters) and store what came back. Returns the
        engine's :class:`PollResult`. One gateway failing never stops the others.

        ``own_transaction`` (the poll cron; ``owns_transaction`` of the base's tools): a poll cycle is never
        lost to a command that commits on the same meter rows while the engine talks to the field (tens of
        seconds for a bus of slow meters). Odoo runs in REPEATABLE READ, so a transaction that read the
        meters before that commit cannot update them after it ("could not serialize access due to concurrent
        update"). So the poll ends its transaction (it has only read) before the engine I/O, and stores the
        result in a transaction of its own that starts after it (:meth:`_store_poll_result`). Without it
        (buttons, tests) the poll runs in the caller's transaction, which Odoo's request handling retries as
        a whole."""
        started = fields.Datetime.now()
        specs, failures = {}, []
        # The meters of all these gateways in one search (not one per gateway), then split by gateway.
        polled = self._get_pollable_meters() if meters is None else meters
        meters_of_gateway = polled.grouped("gateway_id")
        for gateway in self:
            try:
                specs[gateway.id] = gateway._prepare_engine_gateway(
                    meters_of_gateway.get(gateway, polled.browse())
                )
            except EngineError as exc:
                _logger.warning("gateway %s cannot be polled: %s", gateway.code, exc)
                failures.append((gateway, exc))
        trace = any(self.mapped("trace_frames"))
        poller = self._get_poller(trace=trace)
        if own_transaction:
            # Only read so far: end the transaction, so that the writes see the meters as they are after
            # the engine I/O, not as they were before it (no query until then: it would start the next).
            self.env.cr.commit()  # pylint: disable=invalid-commit
        result = self._poll_specs(list(specs.values()), trace=trace, poller=poller)
        now = datetime.now(UTC)
        for gateway, exc in failures:
            result.errors.append(PollError(str(gateway.id), "", None, ErrorKind.UNSUPPORTED, str(exc), now))
        if own_transaction:
            self._store_poll_result(result, polled_at=started, meters=meters, polled=polled)
        else:
            self._apply_poll_result(result, polled_at=started, meters=meters, polled=polled)
        return result

    def _store_poll_result(self, result, polled_at, meters, polled):
        """:meth:`_apply_poll_result` in transactions of its own (:func:`store_in_own_transaction`), with the
        row locks of the ``polled`` meters that have commands queued or being sent (the meter rows the
        command executor writes meanwhile) taken first. Commits."""
        ids = polled.ids

        def commanded():
            rows = self.env.execute_query(
                SQL(
                    """SELECT DISTINCT meter_id FROM prepaid_meter_command
                        WHERE meter_id = ANY(%s) AND state IN ('queued', 'sent')""",
                    ids,
                )
            )
            return [row[0] for row in rows]

        def store():
            self._apply_poll_result(result, polled_at=polled_at, meters=meters, polled=polled)

        store_in_own_transaction(self.env, store, commanded)

    @api.model
    def _poll_specs(self, specs, trace=False, poller=None):
        """Hand the specs to the engine in one call (``poller``: default :meth:`_get_poller`); if the engine
        refuses the batch as a whole, poll them one by one so that one bad gateway only fails itself."""
        started = datetime.now(UTC)
        if not specs:
            return PollResult(started_at=started, finished_at=started)
        poller = poller or self._get_poller(trace=trace)
        try:
            return poller.poll_sync(specs)
        except EngineError as exc:
            if len(specs) == 1:
                now = datetime.now(UTC)
                return PollResult(
                    started_at=started,
                    finished_at=now,
                    errors=[PollError(specs[0].key, "", None, ErrorKind.LINK, str(exc), now)],
                )
            _logger.warning(
                "poll of %s gateways failed as a batch (%s): polling them one by one", len(specs), exc
            )
        merged = PollResult(started_at=started, finished_at=started)
        for spec in specs:
            part = self._poll_specs([spec], trace=trace, poller=poller)
            merged.readings.extend(part.readings)
            merged.errors.extend(part.errors)
            merged.traces.extend(part.traces)
            merged.gateways.update(part.gateways)
            merged.finished_at = part.finished_at
        return merged

    def _apply_poll_result(self, result, polled_at=None, meters=None, source="poll", polled=None):
        """Store a poll result for these gateways: readings (idempotent), errors and traces in the
        communication log, what meters were found lacking (on the meters, and a warning in the log the first
        time), gateway and meter online states, next poll time.

        ``meters``: the meters a partial poll asked ("Read now" on meters); such a poll does not move the
        gateways' schedule nor their failure count. ``polled``: the meters the poll asked, when the caller
        already has them (default: ``meters``, else the gateways' pollable meters)."""
        Reading = self.env["prepaid.meter.reading"].sudo()
        Reading._ingest(result.readings, source)
        meter_ids = {int(r.meter_key) for r in result.readings if r.meter_key.isdecimal()}
        # Meters that lack identifiers were read all the same (they stay online): what is new is logged.
        new_warnings = self.env["prepaid.meter"]._remember_missing_identifiers(result.warnings)
        self.env["prepaid.comm.log"].sudo()._log_poll_result(result, self, new_warnings)
        # Meters: online with a reading this cycle; offline with an error and no reading this cycle.
        Meter = self.env["prepaid.meter"].sudo().with_context(tracking_disable=True)
        errored = set()
        if polled is None:
            polled = self._get_pollable_meters() if meters is None else meters
        behind = None  # (gateway key, bus name or "" for the whole gateway) -> ids of the meters behind it
        for error in result.errors:
            if error.meter_key is not None and error.meter_key.isdecimal():
                errored.add(int(error.meter_key))
                continue
            # The gateway or a bus failed: every meter behind it that gave no reading is offline.
            if behind is None:
                behind = defaultdict(set)
                for meter in polled:
                    gateway_key = str(meter.gateway_id.id)
                    behind[gateway_key, ""].add(meter.id)
                    behind[gateway_key, meter.bus_id.name].add(meter.id)
            errored |= behind.get((error.gateway_key, error.bus_key), set())
        internal(Meter.browse(meter_ids).filtered(lambda m: not m.online)).write({"online": True})
        internal(Meter.browse(errored - meter_ids).exists().filtered("online")).write({"online": False})
        # Gateways: state from the engine; a gateway the engine says nothing about did not answer.
        for gateway in self:
            state = result.gateways.get(str(gateway.id))
            online = bool(state and state.online)
            vals = {"online": online}
            if meters is None:
                vals["last_poll_at"] = polled_at or fields.Datetime.now()
                vals["failure_count"] = 0 if online else gateway.failure_count + 1
            if state and state.last_contact:
                vals["last_contact"] = _utc(state.last_contact)
            gateway.write(vals)

    # -- buttons ---------------------------------------------------------------------------------------------
    @api.model
    def _notify(self, title, message, kind="success"):
        """A notification action (sticky unless a success) that reloads the view; meters use it too."""
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": message,
                "type": kind,
                "sticky": kind != "success",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_read_now(self):
        """Poll this gateway now, synchronously, and report what came back."""
        self.ensure_one()
        self.check_access("write")
        result = self.sudo()._poll()
        meters = self._get_pollable_meters()
        read = {r.meter_key for r in result.readings}
        return self._notify(
            self.env._("Read %(gateway)s", gateway=self.display_name),
            self.env._(
                "%(read)s of %(total)s meters answered, %(errors)s errors.",
                read=len(read),
                total=len(meters),
                errors=len(result.errors),
            ),
            "success" if len(read) == len(meters) else "warning",
        )

    def action_test_connection(self):
        """Test the gateway in a few seconds without polling it: open each bus's port (connect timeout) and
        send the first meter of the bus one request (reply timeout); a notification says which buses
        answered, with the error for the others. Nothing is stored."""
        self.ensure_one()
        self.check_access("write")
        gateway = self.sudo()
        first_meters = gateway._get_pollable_meters().grouped("bus_id")
        meters = self.env["prepaid.meter"].sudo().concat(*(found[:1] for found in first_meters.values()))
        try:
            spec = gateway._prepare_engine_gateway(meters, all_buses=True)
        except EngineError as exc:
            return self._notify(
                self.env._("Connection test"),
                self.env._(
                    "%(gateway)s cannot be tested: %(error)s", gateway=self.display_name, error=str(exc)
                ),
                "danger",
            )
        checks = gateway._get_poller().test_connection_sync(spec)
        ports = {bus.name: bus.port or bus.device for bus in self.bus_ids}
        lines = [self._describe_bus_check(check, ports.get(check.bus_key)) for check in checks]
        if not checks:
            lines = [self.env._("%(gateway)s has no bus to test.", gateway=self.display_name)]
        answered = [check.connected and check.answered is not False for check in checks]
        kind = "success" if checks and all(answered) else "warning" if any(answered) else "danger"
        return self._notify(
            self.env._("Connection test: %(gateway)s", gateway=self.display_name), " ".join(lines), kind
        )

    def _describe_bus_check(self, check, port):
        """One line of the connection test's notification for an engine :class:`BusCheck`."""
        meter = self.env["prepaid.meter"].browse(int(check.meter_key)) if check.meter_key else None
        values = {
            "bus": check.bus_key,
            "port": port or "-",
            "meter": meter.sudo().display_name if meter else "",
            "error": check.message,
        }
        if not check.connected:
            return self.env._("Bus %(bus)s (port %(port)s): no connection: %(error)s.", **values)
        if check.answered is None:
            return self.env._("Bus %(bus)s (port %(port)s): connected; no meter to ask.", **values)
        if check.answered:
            return self.env._("Bus %(bus)s (port %(port)s): meter %(meter)s answered.", **values)
        return self.env._(
            "Bus %(bus)s (port %(port)s): connected, but meter %(meter)s did not answer: %(error)s.", **values
        )

    @api.model
    def _action_related(self, xmlid, domain, context=None):
        """The window action ``xmlid`` restricted to ``domain`` (with ``context``); meters use it too."""
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action["domain"] = domain
        action["context"] = context or {}
        return action

    def action_view_meters(self):
        self.ensure_one()
        self.check_access("read")
        return self._action_related(
            "prepaid_metering.prepaid_meter_action",
            [("gateway_id", "=", self.id)],
            {"default_gateway_id": self.id, "default_company_id": self.company_id.id},
        )

    def action_view_readings(self):
        self.ensure_one()
        self.check_access("read")
        return self._action_related(
            "prepaid_metering.prepaid_meter_reading_action", [("meter_id.gateway_id", "=", self.id)]
        )

    def action_view_comm_log(self):
        self.ensure_one()
        self.check_access("read")
        return self._action_related(
            "prepaid_metering.prepaid_comm_log_action", [("gateway_id", "=", self.id)]
        )
