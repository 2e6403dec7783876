import io
from collections import defaultdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from types import SimpleNamespace

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_account import LEVEL_SELECTION, LEVEL_THRESHOLDS
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL
from psycopg2.errors import UniqueViolation

# Levels from harmless to severe.
LEVEL_RANK = {level: rank for rank, (level, _label) in enumerate(LEVEL_SELECTION)}
WARNING_LEVELS = ("warning_1", "warning_2", "warning_3")
# The command that cuts / restores the supply of a meter, per utility.
CUT_COMMAND = {"electricity": "trip", "water": "valve_close"}
RESTORE_COMMAND = {"electricity": "close", "water": "valve_open"}
PENDING_COMMAND_STATES = ("queued", "sent")
# Ledger columns the bulk posting COPYs, in order (the id comes from the table's sequence).
LEDGER_BULK_COLUMNS = (
    "account_id",
    "partner_id",
    "company_id",
    "currency_id",
    "date",
    "kind",
    "amount",
    "balance_after",
    "idempotency_key",
    "period",
    "description",
    "utility",
    "res_model",
    "res_id",
    "create_uid",
    "create_date",
)
# Account columns the level depends on (read as text: exact decimals).
LEVEL_COLUMNS = ("warn_level_1", "warn_level_2", "warn_level_3", "cutoff_level", "overdraft_limit")
NULL = "\\N"  # COPY's NULL
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value):
    """``value`` in COPY text format: NULL, numbers and datetimes as PostgreSQL reads them, text escaped."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is Decimal or kind is int:
        return str(value)
    if kind is datetime:
        return value.isoformat(sep=" ")
    return str(value).translate(_COPY_ESCAPES)


def id_array(ids):
    """``ids`` as one PostgreSQL array literal, for ``= ANY(%s::int[])``: the server reads a literal of
    thousands of ids at once, where a Python list becomes an ``ARRAY[..]`` expression of one constant per
    id (several microseconds each to parse)."""
    return "{" + ",".join(map(str, ids)) + "}"


def level_of(balance, limits, quantum):
    """The level of ``balance`` (Decimal) for an account whose level columns are ``limits`` (a namespace of
    Decimals): base's :data:`LEVEL_THRESHOLDS` table, compared to the currency's quantum like
    ``prepaid.account._get_level`` does, without the ORM (thousands of accounts per settlement batch)."""
    for level, threshold in LEVEL_THRESHOLDS:
        if (balance - threshold(limits)).quantize(quantum, rounding=ROUND_HALF_UP) <= 0:
            return level
    return "normal"


@lru_cache(maxsize=1024)
def level_table(limits, places):
    """:func:`level_of` as a function of the balance alone, for accounts whose level columns read ``limits``
    (texts, :data:`LEVEL_COLUMNS` order) in a currency of ``places`` decimals. Accounts mostly share their
    company's levels, so the thresholds are worked out once, not once per account and balance.

    ``(balance - threshold).quantize(quantum, ROUND_HALF_UP) <= 0`` holds exactly when ``balance - threshold``
    is below half a quantum (half a quantum already rounds up, away from zero), so each level is one
    comparison with ``threshold + quantum / 2``."""
    namespace = SimpleNamespace(**dict(zip(LEVEL_COLUMNS, map(Decimal, limits), strict=True)))
    half = Decimal(1).scaleb(-places) / 2
    cuts = tuple((level, threshold(namespace) + half) for level, threshold in LEVEL_THRESHOLDS)

    def level(balance):
        for name, cut in cuts:
            if balance < cut:
                return name
        return "normal"

    return level


class LockedBalances(dict):
    """``{account id: balance before}`` as :meth:`_on_balance_changed` takes it, from the bulk posting, which
    also hands billing's level check (:meth:`_prepaid_apply_levels`) the account rows it read under the lock
    and the balances and levels it wrote (``rows``), so the check need not read thousands of accounts
    again. Other overrides of the hook see a plain dict."""

    __slots__ = ("rows",)


# Alert templates per kind of level.
SMS_TEMPLATES = {
    "warning": "prepaid_billing.sms_template_low_balance",
    "cutoff": "prepaid_billing.sms_template_cutoff",
}
MAIL_TEMPLATES = {
    "warning": "prepaid_billing.mail_template_low_balance",
    "cutoff": "prepaid_billing.mail_template_cutoff",
}


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    topup_ids = fields.One2many("prepaid.topup", "account_id", string="Top-ups", readonly=True)
    topup_count = fields.Integer(compute="_compute_topup_count")
    alert_level = fields.Selection(
        LEVEL_SELECTION,
        string="Alerted Level",
        default="normal",
        readonly=True,
        copy=False,
        help="The most severe level the tenant was alerted of since the balance last rose: each level is "
        "notified once per descent.",
    )
    last_alert_level = fields.Selection(LEVEL_SELECTION, readonly=True, copy=False)
    last_alert_date = fields.Datetime(string="Last Alert", readonly=True, copy=False)
    last_alert_message = fields.Char(
        readonly=True, copy=False, help="The last alert sent to the tenant, as the portal shows it."
    )
    pending_command_ids = fields.Many2many(
        "prepaid.meter.command", string="Pending Commands", compute="_compute_pending_commands"
    )
    pending_command_count = fields.Integer(compute="_compute_pending_commands")
    cutoff_threshold = fields.Monetary(
        string="Cut-off Threshold",
        compute="_compute_cutoff_threshold",
        help="The balance at or below which the supply is cut: cut-off level minus overdraft allowance.",
    )

    def _compute_topup_count(self):
        counts = dict(
            self.env["prepaid.topup"]._read_group(
                [("account_id", "in", self.ids)], ["account_id"], ["__count"]
            )
        )
        for account in self:
            account.topup_count = counts.get(account, 0)

    @api.model_create_multi
    def create(self, vals_list):
        accounts = super().create(vals_list)
        accounts.company_id._prepaid_turn_on()  # a company's first prepaid account turns prepaid on
        return accounts

    def _compute_pending_commands(self):
        commands = self.env["prepaid.meter.command"].search(
            [("meter_id.account_id", "in", self.ids), ("state", "in", PENDING_COMMAND_STATES)]
        )
        for account in self:
            mine = commands.filtered(lambda c, account=account: c.meter_id.account_id == account)
            account.pending_command_ids = mine
            account.pending_command_count = len(mine)

    @api.depends("cutoff_level", "overdraft_limit")
    def _compute_cutoff_threshold(self):
        for account in self:
            account.cutoff_threshold = account._get_cutoff_threshold()

    # ------------------------------------------------------------------ bulk ledger posting

    @api.model
    @api.private
    def _post_ledger_bulk(self, rows):
        """Set-based twin of :meth:`_post_ledger` for settlement batches (thousands of lines), with the
        same invariants: account rows locked ``FOR UPDATE`` in id order, existing idempotency keys skipped (a
        key on another account is refused), lines written with ``balance_after`` and the account's period,
        stored balances updated in the same transaction (one ``UPDATE``), :meth:`_on_balance_changed` called.

        :param rows: dicts with ``account_id``, ``kind``, ``amount`` (Decimal, signed),
            ``idempotency_key``, ``date`` (naive UTC datetime) and optional ``description``, ``utility``,
            ``res_model``, ``res_id``, in posting order.
        :return: the number of lines inserted.

        The lines are COPYed straight into the ledger, optimistically (a settlement's keys are new unless a
        cursor was moved back): if the database refuses a key that exists, the attempt is rolled back to a
        savepoint and the lines are posted again knowing the existing keys; a key refused then (booked by
        another transaction meanwhile) refuses the whole batch rather than leave a balance that differs from
        its ledger.
        """
        if not rows:
            return 0
        Ledger = self.env["prepaid.ledger"]
        account_ids = sorted({row["account_id"] for row in rows})
        self.flush_model()
        Ledger.flush_model()
        locked = {
            row[0]: row[1:]
            for row in self.env.execute_query(
                SQL(
                    """SELECT a.id, a.balance::text, a.state, a.period, a.partner_id, a.company_id,
                              a.currency_id, c.decimal_places, a.warn_level_1::text, a.warn_level_2::text,
                              a.warn_level_3::text, a.cutoff_level::text, a.overdraft_limit::text,
                              a.alert_level, a.keep_power
                         FROM prepaid_account a
                         JOIN res_currency c ON c.id = a.currency_id
                        WHERE a.id = ANY(%s::int[])
                     ORDER BY a.id
                          FOR UPDATE OF a""",
                    id_array(account_ids),
                )
            )
        }
        if len(locked) != len(account_ids):
            raise ValidationError(self.env._("Ledger lines refer to accounts that do not exist."))
        old_balances = {aid: Decimal(values[0] or 0) for aid, values in locked.items()}
        cr = self.env.cr
        cr.execute(SQL("SAVEPOINT prepaid_ledger_bulk"))
        try:
            balances, count = self._prepaid_insert_ledger_rows(rows, locked, old_balances, {})
        except UniqueViolation:
            cr.execute(SQL("ROLLBACK TO SAVEPOINT prepaid_ledger_bulk"))
            existing = dict(
                self.env.execute_query(
                    SQL(
                        """SELECT idempotency_key, account_id FROM prepaid_ledger
                            WHERE idempotency_key = ANY(%s)""",
                        [row["idempotency_key"] for row in rows],
                    )
                )
            )
            try:
                balances, count = self._prepaid_insert_ledger_rows(rows, locked, old_balances, existing)
            except UniqueViolation as exc:
                cr.execute(SQL("ROLLBACK TO SAVEPOINT prepaid_ledger_bulk"))
                raise ValidationError(
                    self.env._(
                        "A ledger line of this batch was booked by another transaction meanwhile: batch "
                        "refused (%(error)s).",
                        error=exc.diag.message_detail or exc.pgerror,
                    )
                ) from exc
        cr.execute(SQL("RELEASE SAVEPOINT prepaid_ledger_bulk"))
        if not count:
            return 0
        changed_ids = [aid for aid in account_ids if balances[aid] != old_balances[aid]]
        if changed_ids:
            # The stored level moves with the balance in the same UPDATE (base's threshold table, see
            # level_table), so the ORM does not recompute it account by account.
            levels = [level_table(locked[aid][7:12], locked[aid][6])(balances[aid]) for aid in changed_ids]
            # The ids twice: ``account.id = ANY(..)`` lets the planner fetch the accounts by their index
            # instead of hashing the whole table for a batch that is a small part of it.
            changed_array = id_array(changed_ids)
            self.env.execute_query(
                SQL(
                    """UPDATE prepaid_account AS account
                          SET balance = new.balance, level = new.level, write_uid = %s, write_date = %s
                         FROM unnest(%s::int[], %s::numeric[], %s::varchar[]) AS new(id, balance, level)
                        WHERE account.id = new.id AND account.id = ANY(%s::int[])""",
                    self.env.uid,
                    self.env.cr.now(),
                    changed_array,
                    "{" + ",".join(str(balances[aid]) for aid in changed_ids) + "}",
                    "{" + ",".join(levels) + "}",
                    changed_array,
                )
            )
            changed = self.browse(changed_ids)
            changed.invalidate_recordset(["balance", "level", "write_uid", "write_date", "ledger_ids"])
            changed.modified(["balance"])
            self.env.remove_to_compute(self._fields["level"], changed)
            old = LockedBalances((aid, float(old_balances[aid])) for aid in changed_ids)
            old.rows = [
                (
                    aid,
                    locked[aid][1],
                    balances[aid],
                    level,
                    *locked[aid][12:14],
                    locked[aid][6],
                    *locked[aid][7:12],
                )
                for aid, level in zip(changed_ids, levels, strict=True)
            ]
            changed._on_balance_changed(old)
        return count

    def _prepaid_insert_ledger_rows(self, rows, locked, old_balances, existing):
        """COPY the lines of ``rows`` whose key is not in ``existing`` (``{key: account id}``) into the
        ledger, with their ``balance_after``; returns (new balances, lines written). A key the database
        already holds raises :class:`~psycopg2.errors.UniqueViolation` (the caller's savepoint undoes it)."""
        balances = dict(old_balances)
        quanta = {places: Decimal(1).scaleb(-places) for places in {values[6] for values in locked.values()}}
        quantum = {aid: quanta[values[6]] for aid, values in locked.items()}
        seen = set()
        lines = []
        uid = self.env.uid
        now = copy_text(self.env.cr.now().replace(tzinfo=None))
        dates = {}
        for row in rows:
            key, account_id = row["idempotency_key"], row["account_id"]
            if key in existing or key in seen:
                if existing.get(key, account_id) != account_id:
                    raise ValidationError(
                        self.env._("Idempotency key %(key)s is already used by another account.", key=key)
                    )
                continue
            _balance, state, period, partner_id, company_id, currency_id, *_rest = locked[account_id]
            if state == "closed":
                raise UserError(
                    self.env._("Account %(account)s is closed: reopen it first.", account=account_id)
                )
            amount = Decimal(row["amount"]).quantize(quantum[account_id], rounding=ROUND_HALF_UP)
            if not amount:
                continue
            seen.add(key)
            balance = balances[account_id] = balances[account_id] + amount
            date = row["date"]
            date_text = dates.get(date)
            if date_text is None:
                date_text = dates[date] = copy_text(date)
            description, utility, res_model, res_id = (
                row.get("description"),
                row.get("utility"),
                row.get("res_model"),
                row.get("res_id"),
            )
            lines.append(
                f"{account_id}\t{partner_id}\t{company_id}\t{currency_id}\t{date_text}\t{row['kind']}\t"
                f"{amount}\t{balance}\t{key.translate(_COPY_ESCAPES)}\t{period}\t"
                f"{NULL if description is None else description.translate(_COPY_ESCAPES)}\t"
                f"{NULL if utility is None else utility}\t{NULL if res_model is None else res_model}\t"
                f"{NULL if res_id is None else res_id}\t{uid}\t{now}\n"
            )
        if lines:
            self.env.cr.copy_from(io.StringIO("".join(lines)), "prepaid_ledger", columns=LEDGER_BULK_COLUMNS)
        return balances, len(lines)

    # ------------------------------------------------------------------ levels: alerts, cut-off, restore

    def _on_balance_changed(self, old_balances):
        res = super()._on_balance_changed(old_balances)
        self._prepaid_apply_levels(old_balances)
        return res

    def _prepaid_is_supervised(self):
        """Whether the platform watches this account's level: it has no meter yet or at least one meter billed
        by the platform. Accounts whose meters all bill themselves (meter-side billing) are warned and cut by
        their meters."""
        self.ensure_one()
        meters = self.meter_ids.filtered("active")
        return not meters or any(meter.billing_mode == "platform" for meter in meters)

    @api.private
    def _prepaid_apply_levels(self, old_balances):
        """Alerts, cut-off and restore after a balance change (called with the account rows locked).

        - Each warning level (and the cut-off) is notified once per descent: ``alert_level`` remembers the
          most severe level notified; a rise of the balance brings it back up, so the next descent notifies
          again.
        - Reaching the cut-off threshold (cut-off level minus overdraft allowance) queues a trip (valve close)
          per platform-billed meter, unless the account keeps power.
        - Rising above it queues a close (valve open) per meter, urgent: the command executor is woken now.

        The accounts are screened with one query (most balance changes move no level); only those whose
        level or alerted level moves go through the ORM.
        """
        if not self:
            return
        rows = getattr(old_balances, "rows", None)
        if rows is None:
            self.flush_recordset(["balance", "level", "alert_level", "state", "keep_power", *LEVEL_COLUMNS])
            rows = self.env.execute_query(
                SQL(
                    """SELECT a.id, a.state, a.balance::text, a.level, a.alert_level, a.keep_power,
                              c.decimal_places, a.warn_level_1::text, a.warn_level_2::text,
                              a.warn_level_3::text, a.cutoff_level::text, a.overdraft_limit::text
                         FROM prepaid_account a JOIN res_currency c ON c.id = a.currency_id
                        WHERE a.id = ANY(%s::int[])""",
                    id_array(self.ids),
                )
            )
        now = fields.Datetime.now()
        reset, notify, cut, restore = defaultdict(list), defaultdict(list), [], []
        for aid, state, balance, level, alerted, keep_power, places, *limits in rows:
            if state not in ("open", "suspended"):
                continue
            level_at = level_table(tuple(limits), places)
            new_level = level or level_at(Decimal(balance or 0))  # balance: text (query) or Decimal (rows)
            old = old_balances.get(aid)
            old_level = new_level if old is None else level_at(Decimal(str(old)))
            alerted = alerted or "normal"
            if LEVEL_RANK[new_level] < LEVEL_RANK[alerted]:
                reset[new_level].append(aid)
                alerted = new_level
            if new_level == old_level:
                continue
            if LEVEL_RANK[new_level] > LEVEL_RANK[alerted]:
                notify[new_level].append(aid)
            if new_level == "cutoff":
                if not keep_power:
                    cut.append(aid)
            elif old_level == "cutoff":
                restore.append(aid)
        for level, ids in reset.items():
            self.browse(ids).sudo().write({"alert_level": level})
        supervised = self.browse([aid for ids in notify.values() for aid in ids] + cut + restore).filtered(
            lambda account: account._prepaid_is_supervised()
        )
        for level, ids in notify.items():
            accounts = self.browse(ids).sudo() & supervised
            if accounts:
                accounts.write({"alert_level": level, "last_alert_level": level, "last_alert_date": now})
                accounts._prepaid_send_alerts(level)
        if cut:
            (self.browse(cut) & supervised)._prepaid_queue_supply(CUT_COMMAND, urgent=False)
        if restore:
            (self.browse(restore) & supervised)._prepaid_queue_supply(RESTORE_COMMAND, urgent=True)

    def _prepaid_send_alerts(self, level):
        """SMS (queued for the SMS cron), e-mail and a chatter message the tenant sees on the portal."""
        kind = "cutoff" if level == "cutoff" else "warning"
        sms_template = self.env.ref(SMS_TEMPLATES[kind], raise_if_not_found=False)
        mail_template = self.env.ref(MAIL_TEMPLATES[kind], raise_if_not_found=False)
        levels = dict(self._fields["alert_level"]._description_selection(self.env))
        for account in self:
            recipients = account.partner_id
            if sms_template:
                body = sms_template._render_field("body", account.ids, compute_lang=True)[account.id]
                account.last_alert_message = body
                account._message_sms(body, partner_ids=recipients.ids, put_in_queue=True)
            if mail_template:
                subject = mail_template._render_field("subject", account.ids, compute_lang=True)[account.id]
                body = mail_template._render_field("body_html", account.ids, compute_lang=True)[account.id]
                account.with_context(mail_notify_force_send=False).message_post(
                    body=body,
                    subject=subject,
                    partner_ids=recipients.ids,
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                )
            if not (sms_template or mail_template):
                account.message_post(
                    body=self.env._("Balance alert: %(level)s.", level=levels[level]),
                    subtype_xmlid="mail.mt_note",
                )

    def _prepaid_platform_meters(self):
        return self.meter_ids.filtered(lambda m: m.active and m.billing_mode == "platform")

    def _prepaid_supply_command_vals(self, meters, kinds, reason):
        """The values of the supply command ``kinds[utility]`` of each of ``meters`` whose utility is in
        ``kinds``, on behalf of this account."""
        self.ensure_one()
        return [
            {
                "meter_id": meter.id,
                "kind": kinds[meter.utility],
                "reason": reason,
                "res_model": self._name,
                "res_id": self.id,
                "origin": self.name,
            }
            for meter in meters
            if meter.utility in kinds
        ]

    def _prepaid_queue_supply(self, kinds, urgent):
        """Queue, for each platform-billed meter of these accounts, the command ``kinds[utility]``."""
        vals_list = [
            vals
            for account in self
            for vals in account._prepaid_supply_command_vals(
                account._prepaid_platform_meters(), kinds, "automatic"
            )
        ]
        if vals_list:
            self.env["prepaid.meter.command"].sudo()._enqueue(vals_list, urgent=urgent)

    # ------------------------------------------------------------------ top-up, reversal, refund

    def _prepaid_last_topup(self):
        self.ensure_one()
        return self.env["prepaid.topup"].search(
            [("account_id", "=", self.id), ("state", "in", ("done", "reversed"))],
            order="date desc, id desc",
            limit=1,
        )

    def _prepaid_check_manager(self):
        if not (self.env.su or self.env.user.has_group("prepaid_base.group_prepaid_manager")):
            raise UserError(self.env._("Only prepaid managers can do this."))

    def _prepaid_wizard_action(self, model, name):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": name,
            "res_model": model,
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def action_open_topup_wizard(self):
        return self._prepaid_wizard_action("prepaid.topup.wizard", self.env._("Top Up"))

    def action_open_reverse_wizard(self):
        self._prepaid_check_manager()
        return self._prepaid_wizard_action("prepaid.reverse.wizard", self.env._("Reverse Last Top-up"))

    def action_open_refund_wizard(self):
        self._prepaid_check_manager()
        return self._prepaid_wizard_action("prepaid.refund.wizard", self.env._("Refund and Close"))

    def action_view_topups(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_billing.prepaid_topup_action")
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id}
        return action

    def action_view_pending_commands(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_metering.prepaid_meter_command_action"
        )
        action["domain"] = [("id", "in", self.pending_command_ids.ids)]
        return action

    @api.private
    def _refund_and_close(self, journal, reason=None):
        """Give the remaining balance back and close the account: an ``out_refund`` on the top-up product for
        the balance, an outbound payment through ``journal`` reconciled with it, a ledger refund line
        (``refund:<credit note id>``), a trip (valve close) per meter, then the account is closed."""
        self.ensure_one()
        self._prepaid_check_manager()
        if self.state not in ("open", "suspended"):
            raise UserError(self.env._("Account %(account)s is not open.", account=self.name))
        currency = self.currency_id
        if currency.compare_amounts(self.balance, 0) < 0:
            raise UserError(
                self.env._(
                    "Account %(account)s owes %(amount)s: collect it with a top-up before closing.",
                    account=self.name,
                    amount=currency.format(-self.balance),
                )
            )
        refund = self.env["account.move"]
        payment = self.env["account.payment"]
        if not currency.is_zero(self.balance):
            self.company_id._prepaid_ensure_setup()
            amount = self.balance
            refund = (
                self.env["account.move"]
                .sudo()
                .with_company(self.company_id)
                .create([self._prepare_refund_vals(amount, reason)])
            )
            refund.action_post()
            payment = self.env["prepaid.topup"]._pay_refund(refund, journal, reason or self.name)
            self.sudo()._post_ledger(
                [
                    {
                        "account_id": self.id,
                        "kind": "refund",
                        "amount": -amount,
                        "idempotency_key": f"refund:{refund.id}",
                        "description": self.env._(
                            "Refund of the balance on closure (%(refund)s)", refund=refund.name
                        ),
                        "res_model": "account.move",
                        "res_id": refund.id,
                    }
                ]
            )
        cuts = self._prepaid_supply_command_vals(self.meter_ids.filtered("active"), CUT_COMMAND, "manual")
        if cuts:
            self.env["prepaid.meter.command"].sudo()._enqueue(cuts, urgent=True)
        self.action_close()
        self.message_post(
            body=self.env._(
                "Closed by %(user)s. Refunded %(amount)s (%(refund)s, %(payment)s).",
                user=self.env.user.name,
                amount=currency.format(-sum(refund.mapped("amount_total_signed")) if refund else 0.0),
                refund=refund.name or "-",
                payment=payment.name or "-",
            )
        )
        return refund

    def _prepare_refund_vals(self, amount, reason):
        self.ensure_one()
        company = self.company_id
        product = company.prepaid_topup_product_id
        return {
            "move_type": "out_refund",
            "partner_id": self.partner_id.id,
            "company_id": company.id,
            "currency_id": self.currency_id.id,
            "invoice_date": fields.Date.context_today(self),
            "ref": self.env._("Closure of %(account)s: %(reason)s", account=self.name, reason=reason or "-"),
            "invoice_line_ids": [
                fields.Command.create(
                    {
                        "product_id": product.id,
                        "name": self.env._("Refund of prepaid credit of %(account)s", account=self.name),
                        "quantity": 1.0,
                        "price_unit": amount,
                        "account_id": company.prepaid_deposit_account_id.id,
                        "tax_ids": [fields.Command.clear()],
                    }
                )
            ],
        }
