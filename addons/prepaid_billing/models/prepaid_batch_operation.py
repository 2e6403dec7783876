"""Batch operations: one command (or one tariff, one recharge) for many meters or accounts at once.

The targets are chosen by property (any level, children included), meter model, utility, account level or
a free domain; each target gets a result line, created set-based, and the commands go through the meter
command queue (one ``_enqueue`` call per chunk). The line states follow their commands (a hook on the
executor run, :meth:`prepaid.meter.command._after_execute`). A recharge makes one top-up per (batch,
account), kept on the line (UNIQUE): re-running or retrying never credits an account twice."""

from odoo import _, api, fields, models
from odoo.addons.prepaid_base.models.prepaid_account import levels_ordered
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_base.tools import bulk_sql
from odoo.addons.prepaid_base.tools.numbers import check_numbers
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL
from odoo.tools.safe_eval import safe_eval

CHUNK = 1000
RELAY_KINDS = ("trip", "close", "keep_power_on", "keep_power_off")
ACCOUNT_KINDS = ("recharge", "open_accounts", "set_levels")
LEVEL_FIELDS = ("warn_level_1", "warn_level_2", "warn_level_3", "cutoff_level")
MONEY_KINDS = ("recharge",)
KIND_SELECTION = [
    ("trip", "Trip"),
    ("close", "Close (Power On)"),
    ("keep_power_on", "Keep Power On"),
    ("keep_power_off", "Keep Power Off"),
    ("set_tariff", "Set Tariff"),
    ("set_levels", "Set Alarm Levels"),
    ("recharge", "Recharge a Fixed Amount"),
    ("open_accounts", "Open Accounts"),
]
STATE_SELECTION = [
    ("draft", "Draft"),
    ("scheduled", "Scheduled"),
    ("running", "Running"),
    ("done", "Done"),
    ("partly_failed", "Partly Failed"),
    ("cancelled", "Cancelled"),
]
LINE_STATE_SELECTION = [
    ("queued", "Queued"),
    ("sent", "Sent"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("skipped", "Skipped"),
]
# A command's state as the line's.
COMMAND_LINE_STATE = {
    "queued": "queued",
    "sent": "sent",
    "done": "done",
    "failed": "failed",
    "expired": "failed",
    "cancelled": "failed",
}
LEVEL_SELECTION = [
    ("normal", "Normal"),
    ("warn_1", "Warning 1"),
    ("warn_2", "Warning 2"),
    ("cutoff", "Cut-off"),
]


class PrepaidBatchOperation(models.Model):
    _name = "prepaid.batch.operation"
    _description = "Batch Operation"
    _inherit = ["mail.thread", "prepaid.guard.mixin"]
    _order = "id desc"
    _check_company_auto = True
    _prepaid_protected_fields = ("state", "run_at", "run_by")

    name = fields.Char(required=True, readonly=True, copy=False, default=lambda self: self.env._("New"))
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    kind = fields.Selection(KIND_SELECTION, required=True, default="close", tracking=True)
    state = fields.Selection(STATE_SELECTION, required=True, default="draft", readonly=True, tracking=True)
    property_ids = fields.Many2many(
        "prepaid.property",
        string="Properties",
        check_company=True,
        help="Sites, buildings, floors or units: their meters and accounts, children included.",
    )
    meter_model_ids = fields.Many2many("prepaid.meter.model", string="Meter Models")
    utility = fields.Selection([("electricity", "Electricity"), ("water", "Water")])
    level = fields.Selection(LEVEL_SELECTION, string="Account Level")
    meter_domain = fields.Char(string="Meter Filter", default="[]")
    tariff_id = fields.Many2one("prepaid.tariff", check_company=True)
    amount = fields.Monetary(help="Recharge: the money credited to each account.")
    # Set alarm levels: the accounts' new levels (the company's defaults to start from).
    warn_level_1 = fields.Monetary(
        string="Warning Level 1", default=lambda self: self.env.company.prepaid_warn_level_1
    )
    warn_level_2 = fields.Monetary(
        string="Warning Level 2", default=lambda self: self.env.company.prepaid_warn_level_2
    )
    warn_level_3 = fields.Monetary(
        string="Warning Level 3", default=lambda self: self.env.company.prepaid_warn_level_3
    )
    cutoff_level = fields.Monetary(
        string="Cut-off Level", default=lambda self: self.env.company.prepaid_cutoff_level
    )
    journal_id = fields.Many2one(
        "account.journal",
        string="Payment Journal",
        check_company=True,
        domain="[('type', 'in', ('cash', 'bank'))]",
    )
    scheduled_at = fields.Datetime(string="Scheduled For", tracking=True)
    operator_id = fields.Many2one(related="create_uid", string="Operator")
    run_at = fields.Datetime(readonly=True, copy=False)
    run_by = fields.Many2one("res.users", readonly=True, copy=False)
    line_ids = fields.One2many("prepaid.batch.operation.line", "operation_id", string="Results")
    target_count = fields.Integer(compute="_compute_counts", string="Targets")
    queued_count = fields.Integer(compute="_compute_counts", string="Queued")
    sent_count = fields.Integer(compute="_compute_counts", string="Sent")
    done_count = fields.Integer(compute="_compute_counts", string="Done")
    failed_count = fields.Integer(compute="_compute_counts", string="Failed")
    progress = fields.Float(compute="_compute_counts")
    command_count = fields.Integer(compute="_compute_counts", string="Commands")

    @api.depends("line_ids.state")
    def _compute_counts(self):
        counts = {
            op.id: dict.fromkeys(("queued", "sent", "done", "failed", "skipped", "cmd"), 0) for op in self
        }
        if self.ids:
            self.env["prepaid.batch.operation.line"].flush_model(["state", "command_id", "operation_id"])
            rows = self.env.execute_query(
                SQL(
                    "SELECT operation_id, state, count(*), count(command_id)"
                    " FROM prepaid_batch_operation_line WHERE operation_id IN %s"
                    " GROUP BY operation_id, state",
                    tuple(self.ids),
                )
            )
            for op_id, state, count, commands in rows:
                counts[op_id][state] = count
                counts[op_id]["cmd"] += commands
        for op in self:
            c = counts[op.id]
            total = sum(v for k, v in c.items() if k != "cmd")
            op.target_count = total
            op.queued_count, op.sent_count = c["queued"], c["sent"]
            op.done_count, op.failed_count = c["done"], c["failed"]
            op.command_count = c["cmd"]
            settled = c["done"] + c["failed"] + c["skipped"]
            op.progress = 100.0 * settled / total if total else 0.0

    @api.model_create_multi
    def create(self, vals_list):
        check_numbers(self, vals_list, ["amount", *LEVEL_FIELDS])
        for vals in vals_list:
            if vals.get("name", _("New")) == _("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code("prepaid.batch.operation") or _("New")
        records = super().create(vals_list)
        records._check_params()
        return records

    def write(self, vals):
        check_numbers(self, [vals], ["amount", *LEVEL_FIELDS])
        result = super().write(vals)
        if {"kind", "amount", "tariff_id", "journal_id", *LEVEL_FIELDS} & set(vals):
            self._check_params()
        return result

    def _check_params(self):
        for op in self:
            if op.kind in MONEY_KINDS:
                if not self.env.user.has_group("prepaid_base.group_prepaid_manager") and not self.env.su:
                    raise AccessError(_("Only prepaid managers may run a recharge batch."))
                if op.amount and op.currency_id.compare_amounts(op.amount, 0) <= 0:
                    raise ValidationError(_("The recharge amount must be positive."))
            if op.kind == "set_levels" and not levels_ordered(*(op[f] for f in LEVEL_FIELDS)):
                raise ValidationError(
                    _("The alarm levels must be ordered: warning 1 > warning 2 > warning 3 >= cut-off.")
                )

    # -- targets ------------------------------------------------------------------------------------------
    def _target_meters(self):
        self.ensure_one()
        domain = [("company_id", "=", self.company_id.id)]
        if self.property_ids:
            domain.append(("unit_id", "child_of", self.property_ids.ids))
        if self.meter_model_ids:
            domain.append(("model_id", "in", self.meter_model_ids.ids))
        if self.utility:
            domain.append(("utility", "=", self.utility))
        if self.level:
            domain.append(("account_id.level", "=", self.level))
        if self.meter_domain and self.meter_domain != "[]":
            try:
                extra = safe_eval(self.meter_domain)
            except Exception as exc:
                raise UserError(_("The meter filter is not a valid domain: %s", exc)) from exc
            domain += list(extra)
        return self.env["prepaid.meter"].search(domain, order="id")

    def _targets(self):
        """``[(meter id or False, account id or False)]`` of this batch."""
        if self.kind == "open_accounts":
            openings = self._openings_in_scope()
            if not openings and not self.line_ids:
                raise UserError(_("No ready account opening among the targets of this batch."))
            return [(meter.id, False) for meter in openings.meter_ids.sorted("id")]
        meters = self._target_meters()
        if self.kind in ACCOUNT_KINDS:
            return [(False, a.id) for a in meters.account_id.sorted("id")]
        return [(m.id, m.account_id.id) for m in meters]

    def _openings_in_scope(self):
        """The ready account openings of the targets: of the chosen properties, with a targeted meter."""
        self.ensure_one()
        domain = [("state", "=", "ready"), ("company_id", "=", self.company_id.id)]
        if self.property_ids:
            domain.append(("unit_id", "child_of", self.property_ids.ids))
        openings = self.env["prepaid.account.opening"].search(domain, order="id")
        meters = self._target_meters()
        return openings.filtered(lambda o: not o.meter_ids or o.meter_ids & meters)

    def action_preview_targets(self):
        self.ensure_one()
        self.check_access("read")
        meters = self._target_meters()
        return {
            "type": "ir.actions.act_window",
            "name": _("Targets"),
            "res_model": "prepaid.meter",
            "view_mode": "list,form",
            "domain": [("id", "in", meters.ids)],
        }

    # -- run ----------------------------------------------------------------------------------------------
    def _check_run_rights(self):
        if not self.env.user.has_group("prepaid_base.group_prepaid_manager"):
            raise AccessError(_("Only prepaid managers may run batch operations."))
        self.check_access("write")

    def action_run(self):
        self._check_run_rights()
        for op in self:
            if op.state not in ("draft", "scheduled", "running", "done", "partly_failed"):
                raise UserError(_("A cancelled batch cannot run."))
            op._check_params()
            if op.kind in MONEY_KINDS and not (op.amount and op.journal_id):
                raise UserError(_("A recharge batch needs an amount and a payment journal."))
            if op.kind == "set_tariff" and not op.tariff_id:
                raise UserError(_("Choose the tariff to set."))
        for op in self:
            op.sudo()._run()
        return True

    def action_schedule(self):
        self._check_run_rights()
        for op in self:
            if op.state != "draft":
                raise UserError(_("Only a draft batch can be scheduled."))
            if not op.scheduled_at:
                raise UserError(_("Set the date and time to run the batch at."))
        internal(self).write({"state": "scheduled"})
        return True

    def action_cancel(self):
        self._check_run_rights()
        internal(self.filtered(lambda o: o.state in ("draft", "scheduled"))).write({"state": "cancelled"})
        return True

    def action_retry_failed(self):
        self._check_run_rights()
        for op in self:
            failed = op.line_ids.filtered(lambda line: line.state == "failed")
            op.sudo()._run_lines(failed)
            op.sudo()._update_state()
        return True

    def action_refresh(self):
        self.check_access("read")
        self.sudo().line_ids._sync_from_commands()
        self.sudo()._update_state()
        return True

    @api.private
    def _run(self):
        """Create the missing result lines set-based, then act on every line not done yet."""
        self.ensure_one()
        # One run of a batch at a time: a second one waits here and then finds the lines made.
        self.env.cr.execute(SQL("SELECT id FROM prepaid_batch_operation WHERE id = %s FOR UPDATE", self.id))
        Line = self.env["prepaid.batch.operation.line"]
        now = fields.Datetime.now()
        rows = [
            (
                self.id,
                meter_id,
                account_id,
                "queued",
                self.company_id.id,
                self.env.uid,
                now,
                self.env.uid,
                now,
            )
            for meter_id, account_id in self._targets()
        ]
        bulk_sql.insert_rows(
            Line,
            [
                "operation_id",
                "meter_id",
                "account_id",
                "state",
                "company_id",
                "create_uid",
                "create_date",
                "write_uid",
                "write_date",
            ],
            rows,
            on_conflict=SQL("ON CONFLICT DO NOTHING"),
        )
        Line.invalidate_model()
        self.invalidate_recordset(["line_ids"])
        internal(self).write({"state": "running", "run_at": now, "run_by": self.env.uid})
        todo = self.line_ids.filtered(lambda line: line.state not in ("done", "skipped"))
        self._run_lines(todo)
        self._update_state()

    @api.private
    def _run_lines(self, lines):
        kind = self.kind
        if not lines:
            return
        if kind in RELAY_KINDS:
            self._run_commands(lines, {"kind": kind})
        elif kind == "set_tariff":
            self._run_set_tariff(lines)
        elif kind == "recharge":
            self._run_recharge(lines)
        elif kind == "set_levels":
            self._run_set_levels(lines)
        elif kind == "open_accounts":
            self._run_open_accounts(lines)

    def _run_commands(self, lines, vals, only=None):
        Command = self.env["prepaid.meter.command"].sudo()
        lines = lines.filtered(lambda line: line.meter_id and (only is None or only(line)))
        origin = self.name
        for start in range(0, len(lines), CHUNK):
            chunk = lines[start : start + CHUNK]
            commands = Command._enqueue(
                [
                    {
                        "meter_id": line.meter_id.id,
                        "res_model": self._name,
                        "res_id": self.id,
                        "origin": origin,
                        "reason": "batch",
                        **(vals(line) if callable(vals) else vals),
                    }
                    for line in chunk
                ]
            )
            bulk_sql.update_rows(
                self.env["prepaid.batch.operation.line"],
                ["command_id", "state", "error"],
                [
                    (line.id, command.id, COMMAND_LINE_STATE[command.state], False)
                    for line, command in zip(chunk, commands, strict=True)
                ],
            )
        lines.invalidate_recordset(["command_id", "state", "error"])
        lines._sync_from_commands()
        if lines:
            # Run now means now: the executor is woken (the commands keep their place behind urgent ones).
            self.env.ref("prepaid_metering.ir_cron_execute_commands").sudo()._trigger()

    def _run_set_tariff(self, lines):
        """The tariff on the targeted meters (one write); meter-side billing meters also get a set-prices
        command with the tariff's flat price."""
        meters = lines.meter_id
        internal(meters).write({"tariff_id": self.tariff_id.id})
        meter_side = lines.filtered(lambda line: line.meter_id.billing_mode == "meter")
        Line = self.env["prepaid.batch.operation.line"]
        bulk_sql.update_rows(
            Line, ["state", "error"], [(line.id, "done", False) for line in lines - meter_side]
        )
        Line.invalidate_model(["state", "error"])
        if meter_side:
            price = self.tariff_id.price or 0.0
            self._run_commands(
                meter_side,
                {
                    "kind": "set_prices",
                    "price_sharp": price,
                    "price_peak": price,
                    "price_flat": price,
                    "price_valley": price,
                },
            )

    def _run_recharge(self, lines):
        """One confirmed top-up per (batch, account), kept on its line: a line with a top-up is done."""
        Line = self.env["prepaid.batch.operation.line"]
        Topup = internal(self.env["prepaid.topup"]).sudo()
        for line in lines.filtered(lambda line: not line.topup_id and line.account_id):
            try:
                with self.env.cr.savepoint():
                    line.account_id._prepaid_lock()
                    topup = Topup.create(
                        [
                            {
                                "account_id": line.account_id.id,
                                "amount": self.amount,
                                "journal_id": self.journal_id.id,
                                "channel": "cashier",
                                "memo": self.name,
                            }
                        ]
                    )
                    topup.action_confirm()
                    bulk_sql.update_rows(
                        Line, ["topup_id", "state", "error"], [(line.id, topup.id, "done", False)]
                    )
            except (UserError, ValidationError) as exc:
                bulk_sql.update_rows(Line, ["state", "error"], [(line.id, "failed", str(exc))])
        done = lines.filtered("topup_id")
        bulk_sql.update_rows(Line, ["state"], [(line.id, "done") for line in done])
        Line.invalidate_model(["topup_id", "state", "error"])

    def _run_set_levels(self, lines):
        """The alarm levels on the targeted accounts, in one write: each account is held to its new levels
        at once (alerts, cut-off or restore commands as its balance now calls for)."""
        Line = self.env["prepaid.batch.operation.line"]
        lines = lines.filtered("account_id")
        try:
            with self.env.cr.savepoint():
                lines.account_id.write({f: self[f] for f in LEVEL_FIELDS})
        except (UserError, ValidationError) as exc:
            bulk_sql.update_rows(Line, ["state", "error"], [(line.id, "failed", str(exc)) for line in lines])
        else:
            bulk_sql.update_rows(Line, ["state", "error"], [(line.id, "done", False) for line in lines])
        Line.invalidate_model(["state", "error"])

    def _run_open_accounts(self, lines):
        """Open the ready openings of the targets: one result line per meter of each opening, done when the
        opening opened, failed with the reason when it could not (each opening in its own savepoint: one
        refused opening never stops the others)."""
        Line = self.env["prepaid.batch.operation.line"]
        by_meter = {line.meter_id.id: line for line in lines if line.meter_id}
        results = []
        for opening in self._openings_in_scope().filtered(lambda o: o.meter_ids.ids):
            mine = [by_meter[m] for m in opening.meter_ids.ids if m in by_meter]
            if not mine:
                continue
            try:
                with self.env.cr.savepoint():
                    opening._open()
            except (UserError, ValidationError, AccessError) as exc:
                results += [(line.id, "failed", str(exc)) for line in mine]
                continue
            state = "done" if opening.state == "opened" else "failed"
            error = "" if state == "done" else _("The opening was not opened.")
            results += [(line.id, state, error) for line in mine]
        bulk_sql.update_rows(Line, ["state", "error"], results)
        Line.invalidate_model(["state", "error"])

    @api.private
    def _update_state(self):
        for op in self:
            if op.state not in ("running", "done", "partly_failed"):
                continue
            states = set(op.line_ids.mapped("state"))
            if states & {"queued", "sent"}:
                new = "running"
            elif "failed" in states:
                new = "partly_failed"
            else:
                new = "done"
            if new != op.state:
                internal(op).write({"state": new})

    @api.model
    def _cron_run_scheduled(self):
        due = self.search([("state", "=", "scheduled"), ("scheduled_at", "<=", fields.Datetime.now())])
        for op in due:
            op._run()
        return True

    def action_view_lines(self):
        self.ensure_one()
        self.check_access("read")
        return {
            "type": "ir.actions.act_window",
            "name": _("Results"),
            "res_model": "prepaid.batch.operation.line",
            "view_mode": "list,form",
            "domain": [("operation_id", "=", self.id)],
        }

    def action_view_commands(self):
        self.ensure_one()
        self.check_access("read")
        return {
            "type": "ir.actions.act_window",
            "name": _("Commands"),
            "res_model": "prepaid.meter.command",
            "view_mode": "list,form",
            "domain": [("id", "in", self.line_ids.command_id.ids)],
        }


class PrepaidBatchOperationLine(models.Model):
    _name = "prepaid.batch.operation.line"
    _description = "Batch Operation Result"
    _inherit = ["prepaid.guard.mixin"]
    _order = "id"
    _prepaid_internal_create = True
    _prepaid_protected_fields = (
        "operation_id",
        "meter_id",
        "account_id",
        "state",
        "error",
        "command_id",
        "topup_id",
    )

    operation_id = fields.Many2one(
        "prepaid.batch.operation", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    meter_id = fields.Many2one("prepaid.meter", readonly=True, index="btree_not_null")
    account_id = fields.Many2one("prepaid.account", readonly=True, index="btree_not_null")
    state = fields.Selection(LINE_STATE_SELECTION, required=True, default="queued", readonly=True, index=True)
    error = fields.Char(readonly=True)
    command_id = fields.Many2one("prepaid.meter.command", readonly=True, index="btree_not_null")
    topup_id = fields.Many2one("prepaid.topup", readonly=True)

    _sql_constraints = [
        (
            "target_unique",
            "UNIQUE NULLS NOT DISTINCT (operation_id, meter_id, account_id)",
            "A batch has one result line per target.",
        ),
    ]

    @api.private
    def _sync_from_commands(self):
        """The lines' states and errors from their commands, in one query."""
        if not self:
            return
        self.env["prepaid.meter.command"].flush_model()
        self.flush_recordset()
        rows = self.env.execute_query(
            SQL(
                "SELECT l.id, c.state, c.id FROM prepaid_batch_operation_line l"
                " JOIN prepaid_meter_command c ON c.id = l.command_id WHERE l.id IN %s",
                tuple(self.ids),
            )
        )
        commands = self.env["prepaid.meter.command"].sudo().browse([r[2] for r in rows])
        message_of = {
            c.id: c.message
            for c in commands.filtered(lambda c: c.state in ("failed", "expired", "cancelled"))
        }
        bulk_sql.update_rows(
            self,
            ["state", "error"],
            [(lid, COMMAND_LINE_STATE[state], message_of.get(cid) or False) for lid, state, cid in rows],
        )
        self.invalidate_recordset(["state", "error"])
