import datetime
import io
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, split_every
from psycopg2.errors import UniqueViolation

from prepaid_engine.levels import Levels, level_function, quantum_of

from ..tools.bulk_sql import copy_line, id_array
from .prepaid_guard import internal, is_manager

LEVEL_SELECTION = [
    ("normal", "Normal"),
    ("warning_1", "Warning 1"),
    ("warning_2", "Warning 2"),
    ("warning_3", "Warning 3"),
    ("cutoff", "Cut-off"),
]
# Button -> (states it may start from, state it leads to, whether only prepaid managers may press it).
ACCOUNT_TRANSITIONS = {
    "action_open": (("draft",), "open", False),
    "action_suspend": (("open",), "suspended", False),
    "action_reopen": (("suspended",), "open", False),
    "action_reopen_closed": (("closed",), "open", True),
    "action_close": (("draft", "open", "suspended"), "closed", True),
}
# Money-risk settings only prepaid managers may change.
MANAGER_FIELDS = (
    "warn_level_1",
    "warn_level_2",
    "warn_level_3",
    "cutoff_level",
    "overdraft_limit",
    "keep_power",
)
# Money-risk settings whose defaults come from the account's company (res.company prepaid_* fields).
COMPANY_DEFAULT_FIELDS = ("warn_level_1", "warn_level_2", "warn_level_3", "cutoff_level", "overdraft_limit")
# Fields nobody writes directly: the ledger API and the state buttons maintain them.
PROTECTED_FIELDS = ("balance", "period", "last_topup_date", "state", "level")
# Fields frozen once the account has ledger lines (the ledger copies them).
FROZEN_WITH_LEDGER = ("partner_id", "company_id")
# Vals keys of _post_ledger the API turns into columns itself (everything else is passed through).
LEDGER_API_FIELDS = ("account_id", "kind", "amount", "idempotency_key", "date")
# Ledger columns the API fills from the account (related fields, stored as copies).
LEDGER_COPIED_FIELDS = ("partner_id", "company_id", "currency_id")
# The columns every posted line gets, in this order, then the extra fields of the vals (sorted).
LEDGER_COLUMNS = (
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
    "create_uid",
    "create_date",
)
# Every settlement batch rewrites the balance of each account it charges, all the accounts of a page in one
# transaction: pages half empty keep those updates in place (HOT: no new index entries, dead versions
# pruned by the next visit) instead of moving every row to a new page at every batch.
ACCOUNT_FILLFACTOR = 50
# Up to this many new lines a posting INSERTs them (and gets their ids back); above it (settlement batches)
# it COPYs them, which costs a few milliseconds for thousands of lines.
COPY_ABOVE = 200
LEDGER_INSERT_BATCH = 1000  # rows per INSERT statement
LEVEL_COLUMNS = ("warn_level_1", "warn_level_2", "warn_level_3", "cutoff_level", "overdraft_limit")


def _to_naive_utc(value):
    """Odoo stores UTC datetimes without tzinfo; accept aware datetimes (the engine's) and strings."""
    if not value:
        return fields.Datetime.now()
    if isinstance(value, datetime.datetime):
        if value.tzinfo:
            return value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value
    return fields.Datetime.to_datetime(value)


def _money(value):
    """An amount given as float, int, text or Decimal, as an exact Decimal (None if it is not a finite
    number)."""
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def levels_ordered(warn_level_1, warn_level_2, warn_level_3, cutoff_level):
    """Whether low-balance levels are in order: warning 1 > warning 2 > warning 3 >= cut-off (the engine's
    rule, for an account's levels and for the company defaults new accounts take)."""
    return Levels.of(warn_level_1, warn_level_2, warn_level_3, cutoff_level).ordered


class LockedAccount:
    """An account row as a posting reads it under its lock (exact decimals)."""

    __slots__ = (
        "balance",
        "company_id",
        "currency_id",
        "id",
        "levels",
        "partner_id",
        "period",
        "quantum",
        "state",
    )

    def __init__(self, row):
        (
            self.id,
            balance,
            self.state,
            self.period,
            self.partner_id,
            self.company_id,
            self.currency_id,
            places,
        ) = row[:8]
        self.balance = Decimal(balance or 0)
        self.quantum = quantum_of(places)
        self.levels = Levels.of(*row[8:13])

    def level(self, balance):
        return str(level_function(self.levels, self.quantum)(balance))


class PrepaidAccount(models.Model):
    """The tenant's prepaid wallet.

    The balance is the sum of the account's ledger (``prepaid.ledger``); the stored ``balance`` is a cache
    that only :meth:`_post_ledger` changes, under a row lock, in the same transaction as the ledger lines.
    The state changes only through the state buttons (:data:`ACCOUNT_TRANSITIONS`), the period only by
    reopening a closed account.
    """

    _name = "prepaid.account"
    _description = "Prepaid Account"
    _inherit = ["prepaid.guard.mixin", "mail.thread", "mail.activity.mixin", "portal.mixin"]
    _prepaid_protected_fields = PROTECTED_FIELDS
    _prepaid_manager_fields = MANAGER_FIELDS
    _prepaid_target_fields = ("partner_id", "unit_ids", "portal_partner_ids")
    _order = "name desc, id desc"
    _rec_names_search = ["name", "partner_id.name"]
    _check_company_auto = True

    name = fields.Char(
        string="Number", required=True, copy=False, readonly=True, default=lambda self: self.env._("New")
    )
    partner_id = fields.Many2one(
        "res.partner", string="Tenant", required=True, index=True, tracking=True, check_company=True
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company, tracking=True
    )
    currency_id = fields.Many2one(related="company_id.currency_id", store=True)
    unit_ids = fields.Many2many(
        "prepaid.property",
        "prepaid_account_unit_rel",
        "account_id",
        "unit_id",
        string="Units",
        domain="[('kind', '=', 'unit')]",
        check_company=True,
        tracking=True,
    )
    tenancy_ids = fields.One2many("prepaid.tenancy", "account_id", string="Tenancies")
    state = fields.Selection(
        [("draft", "Draft"), ("open", "Open"), ("suspended", "Suspended"), ("closed", "Closed")],
        required=True,
        default="draft",
        copy=False,
        tracking=True,
        index=True,
    )
    balance = fields.Monetary(
        readonly=True,
        copy=False,
        default=0.0,
        help="Sum of the ledger. Changed only by posting ledger lines.",
    )
    warn_level_1 = fields.Monetary(
        string="Warning Level 1",
        tracking=True,
        default=lambda self: self.env.company.prepaid_warn_level_1,
        help="First low-balance warning: the balance is at or below this amount.",
    )
    warn_level_2 = fields.Monetary(
        string="Warning Level 2",
        tracking=True,
        default=lambda self: self.env.company.prepaid_warn_level_2,
        help="Second low-balance warning.",
    )
    warn_level_3 = fields.Monetary(
        string="Warning Level 3",
        tracking=True,
        default=lambda self: self.env.company.prepaid_warn_level_3,
        help="Last low-balance warning before the cut-off.",
    )
    cutoff_level = fields.Monetary(
        string="Cut-off Level",
        tracking=True,
        default=lambda self: self.env.company.prepaid_cutoff_level,
        help="The supply is cut when the balance is at or below this level minus the overdraft allowance.",
    )
    overdraft_limit = fields.Monetary(
        string="Overdraft Allowance",
        tracking=True,
        default=lambda self: self.env.company.prepaid_overdraft_limit,
        help="How far below the cut-off level the balance may go before the supply is cut.",
    )
    keep_power = fields.Boolean(
        tracking=True, help="Never cut the supply of this account, whatever its balance."
    )
    portal_partner_ids = fields.Many2many(
        "res.partner",
        "prepaid_account_portal_partner_rel",
        "account_id",
        "partner_id",
        string="Portal Users",
        help="Contacts allowed to see and recharge this account on the portal, besides the tenant.",
    )
    level = fields.Selection(
        LEVEL_SELECTION,
        compute="_compute_level",
        store=True,
        index=True,
        help="Where the balance stands against the warning and cut-off levels.",
    )
    ledger_ids = fields.One2many("prepaid.ledger", "account_id", readonly=True)
    ledger_count = fields.Integer(compute="_compute_ledger_count")
    last_topup_date = fields.Datetime(string="Last Top-up", readonly=True, copy=False)
    period = fields.Integer(
        string="Ledger Period",
        default=1,
        readonly=True,
        copy=False,
        help="Starts at 1; reopening a closed account starts a new period.",
    )
    note = fields.Html()
    can_edit_levels = fields.Boolean(compute="_compute_can_edit_levels")

    _sql_constraints = [
        ("overdraft_positive", "CHECK(overdraft_limit >= 0)", "The overdraft allowance cannot be negative."),
    ]

    def init(self):
        res = super().init()
        self.env.cr.execute(
            SQL("ALTER TABLE %s SET (fillfactor = %s)", SQL.identifier(self._table), ACCOUNT_FILLFACTOR)
        )
        return res

    # ------------------------------------------------------------------ computes

    @api.depends("balance", "warn_level_1", "warn_level_2", "warn_level_3", "cutoff_level", "overdraft_limit")
    def _compute_level(self):
        for account in self:
            account.level = account._get_level(account.balance)

    def _prepaid_levels(self):
        """The engine's :class:`~prepaid_engine.levels.Levels` of this account."""
        self.ensure_one()
        return Levels.of(*(self[fname] for fname in LEVEL_COLUMNS))

    def _compute_ledger_count(self):
        counts = dict(
            self.env["prepaid.ledger"]._read_group(
                [("account_id", "in", self.ids)], ["account_id"], ["__count"]
            )
        )
        for account in self:
            account.ledger_count = counts.get(account, 0)

    @api.depends_context("uid")
    def _compute_can_edit_levels(self):
        can_edit = self.env.user.has_group("prepaid_base.group_prepaid_manager")
        for account in self:
            account.can_edit_levels = can_edit

    def _compute_access_url(self):
        for account in self:
            account.access_url = f"/my/prepaid/accounts/{account.id}"

    @api.depends("name", "partner_id")
    def _compute_display_name(self):
        for account in self:
            account.display_name = (
                f"{account.name} - {account.partner_id.name}" if account.partner_id else account.name
            )

    def _get_level(self, balance):
        """The level ('normal', 'warning_1' .. 'warning_3', 'cutoff') this account is at with ``balance``:
        the engine's rule (:mod:`prepaid_engine.levels`), the same for one account and for a settlement
        batch."""
        self.ensure_one()
        currency = self.currency_id or self.env.company.currency_id
        return str(
            level_function(self._prepaid_levels(), quantum_of(currency.decimal_places))(_money(balance))
        )

    def _get_cutoff_threshold(self):
        """The balance at or below which the supply is cut (cut-off level minus overdraft allowance)."""
        self.ensure_one()
        return float(self._prepaid_levels().cutoff_threshold)

    # ------------------------------------------------------------------ constraints

    @api.constrains("warn_level_1", "warn_level_2", "warn_level_3", "cutoff_level")
    def _check_levels(self):
        for account in self:
            if not levels_ordered(
                account.warn_level_1, account.warn_level_2, account.warn_level_3, account.cutoff_level
            ):
                raise ValidationError(
                    self.env._(
                        "Levels of %(account)s must be ordered: "
                        "warning 1 > warning 2 > warning 3 >= cut-off.",
                        account=account.display_name,
                    )
                )

    @api.constrains("unit_ids")
    def _check_units_are_units(self):
        for account in self:
            if account.unit_ids.filtered(lambda unit: unit.kind != "unit"):
                raise ValidationError(
                    self.env._("Account %(account)s can only cover units.", account=account.display_name)
                )

    @api.constrains("unit_ids", "state")
    def _check_unit_single_account(self):
        live = ("open", "suspended")
        for account in self.filtered(lambda a: a.state in live and a.unit_ids):
            # sudo: the other account may be invisible to the current user.
            other = self.sudo().search(
                [("id", "!=", account.id), ("state", "in", live), ("unit_ids", "in", account.unit_ids.ids)],
                limit=1,
            )
            if other:
                raise ValidationError(
                    self.env._(
                        "%(units)s already covered by open account %(other)s.",
                        units=", ".join((account.unit_ids.sudo() & other.unit_ids).mapped("display_name")),
                        other=other.name,
                    )
                )

    # ------------------------------------------------------------------ ORM

    @api.model
    def _get_company_default(self, fname, company):
        """The company default of a money-risk setting (what an operator may create accounts with)."""
        if fname == "keep_power":
            return False
        return company[f"prepaid_{fname}"]

    def _get_accounts_with_ledger(self):
        """The accounts of ``self`` that have ledger lines (whoever can see them)."""
        if not self.ids:
            return self.browse()
        self.env["prepaid.ledger"].flush_model(["account_id"])
        rows = self.env.execute_query(
            SQL("SELECT DISTINCT account_id FROM prepaid_ledger WHERE account_id IN %s", tuple(self.ids))
        )
        return self.browse([row[0] for row in rows])

    def _prepaid_manager_defaults(self, vals):
        company = self.env["res.company"].browse(vals.get("company_id")) or self.env.company
        return {fname: self._get_company_default(fname, company) for fname in MANAGER_FIELDS}

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            # Levels not given come from the account's company (field defaults use the current company). An
            # operator may create accounts with the company's default levels, not with others.
            defaults = self._prepaid_manager_defaults(vals)
            for fname in COMPANY_DEFAULT_FIELDS:
                vals.setdefault(fname, defaults[fname])
            if not vals.get("name") or vals["name"] == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code("prepaid.account") or self.env._("New")
        return super().create(vals_list)

    def write(self, vals):
        frozen = [fname for fname in FROZEN_WITH_LEDGER if fname in vals]
        if frozen:
            with_ledger = self._get_accounts_with_ledger().filtered(
                lambda a: any(a[f].id != vals[f] for f in frozen)
            )
            if with_ledger:
                raise UserError(
                    self.env._(
                        "The tenant and company of %(accounts)s cannot change: the account has ledger lines.",
                        accounts=", ".join(with_ledger.mapped("name")),
                    )
                )
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_used(self):
        used = self.filtered(lambda a: a.state != "draft") | self._get_accounts_with_ledger()
        if used:
            raise UserError(
                self.env._(
                    "Only draft accounts without ledger lines can be deleted: %(accounts)s.",
                    accounts=", ".join(used.mapped("name")),
                )
            )

    # ------------------------------------------------------------------ state buttons

    def _change_state(self, action):
        """Move these accounts along :data:`ACCOUNT_TRANSITIONS` (the only way their state changes)."""
        allowed, target, managers_only = ACCOUNT_TRANSITIONS[action]
        if managers_only and not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can close or reopen a closed account."))
        self.check_access("write")
        wrong = self.filtered(lambda a: a.state not in allowed)
        if wrong:
            raise UserError(
                self.env._(
                    "Accounts %(accounts)s cannot go to that state from their current state.",
                    accounts=", ".join(wrong.mapped("name")),
                )
            )
        before = {account: account.state for account in self}
        internal(self).write({"state": target})
        self._on_state_changed(before)

    @api.private
    def _on_state_changed(self, old_states):
        """Hook run after the state buttons moved these accounts (``old_states``: ``{account: state}``).
        Billing extends it: a closed account's meters are tripped, an opened one is supervised at once."""
        return True

    def action_open(self):
        self._change_state("action_open")

    def action_suspend(self):
        self._change_state("action_suspend")

    def action_reopen(self):
        closed = self.filtered(lambda a: a.state == "closed")
        (self - closed)._change_state("action_reopen")
        if closed:
            closed._change_state("action_reopen_closed")
            # Reopening after closure starts a new ledger period.
            for account in closed:
                internal(account).write({"period": account.period + 1})

    def _check_can_close(self):
        """Raise unless these accounts can be closed: their balance must be zero (money on an account is
        given back by "Refund and Close", which closes it)."""
        not_empty = self.filtered(lambda a: not a.currency_id.is_zero(a.balance))
        if not_empty:
            raise UserError(
                self.env._(
                    "Refund the remaining balance of %(accounts)s before closing (Refund and Close).",
                    accounts=", ".join(not_empty.mapped("name")),
                )
            )

    def action_close(self):
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can close or reopen a closed account."))
        self._prepaid_lock()
        self._check_can_close()
        self._change_state("action_close")

    def action_view_ledger(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_base.prepaid_ledger_action")
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id}
        return action

    # ------------------------------------------------------------------ money API

    @api.private
    def _prepaid_lock(self):
        """Lock these accounts' rows (``FOR NO KEY UPDATE``, in id order) and drop their cached balances.

        The one lock order of the suite: an operation that will change a balance takes its accounts' locks
        first, before it writes anything that refers to them (a top-up, a refund, a closure), and the posting
        takes them again (a no-op then). ``NO KEY UPDATE`` does not conflict with the ``KEY SHARE`` locks that
        rows referring to an account (top-ups, ledger lines, invoices' links) take on it, so concurrent
        operations on one account queue on this lock instead of deadlocking on a lock upgrade.
        """
        if not self.ids:
            return self
        self.flush_recordset()
        # An account changed by a transaction that committed after this one's snapshot fails here with a
        # serialization error: every caller retries it (Odoo's request and cron retry, run_in_own_transaction)
        # or defers it (settlement_savepoint), so it is not a "bad query" for Odoo's SQL log.
        self.env.cr.execute(
            SQL(
                "SELECT id FROM prepaid_account WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                sorted(self.ids),
            ),
            log_exceptions=False,
        )
        self.invalidate_recordset(["balance", "state", "period", "last_topup_date", "level"])
        return self

    @api.model
    @api.private
    def _post_ledger(self, vals_list, count_only=False, return_keys=False):
        """Post ledger lines and update the balances: the ONLY way to change a prepaid balance, for one
        cashier top-up and for a settlement batch of thousands of lines alike.

        :param vals_list: list of dicts, each with

            - ``account_id`` (int, required): the prepaid.account
            - ``kind`` (required): a ``prepaid.ledger`` kind (topup, consumption, fee, ...)
            - ``amount`` (float/Decimal/text, required): signed, in the account's currency: credits > 0,
              deductions < 0; rounded here (half up) to the currency (a line that rounds to zero posts
              nothing)
            - ``idempotency_key`` (str, required): unique across all ledgers, e.g. ``"topup:42"`` or
              ``"cons:7:2026-01-01T00:15:00Z:2026-01-01T00:30:00Z"``
            - ``date`` (datetime, optional, default now; aware datetimes are converted to UTC)
            - any other stored field of ``prepaid.ledger`` (``description``, ``utility``,
              ``res_model``/``res_id`` of the source document, fields added by other modules)

        :param count_only: return the number of lines written instead of the lines (settlement batches).
        :param return_keys: return the set of the idempotency keys written (the lines this call booked).

        Guarantees, in this order, in the caller's transaction:

        1. the affected accounts' rows are locked (:meth:`_prepaid_lock`'s order): concurrent postings to
           the same account are serialised (under Odoo's REPEATABLE READ a transaction that had to wait fails
           with a serialization error and is retried by Odoo, then sees the new balance);
        2. a vals whose key already exists (or repeats an earlier vals) posts nothing and yields the existing
           line: posting twice posts once; the key on another account raises ValidationError;
        3. lines are written with ``balance_after`` (exact decimals, in the order given) and the account's
           current ``period``; up to :data:`COPY_ABOVE` new lines with ``INSERT``, more with ``COPY`` (keys
           assumed new; if the database refuses one, the attempt is rolled back to a savepoint and redone
           knowing the existing keys);
        4. the stored balance, level (the engine's rule) and ``last_topup_date`` are updated in one statement
           of the same transaction;
        5. :meth:`_on_balance_changed` runs on the accounts whose balance changed.

        Closed accounts refuse postings. The caller needs write access to the accounts (or sudo).
        Database backstop: ``UNIQUE(idempotency_key)`` and ``CHECK(amount <> 0)`` on the ledger.
        """
        Ledger = self.env["prepaid.ledger"]
        if not vals_list:
            return set() if return_keys else 0 if count_only else Ledger
        self._prepaid_check_ledger_vals(vals_list)
        account_ids = sorted({int(vals["account_id"]) for vals in vals_list})
        self.browse(account_ids).check_access("write")
        self.flush_model()
        Ledger.flush_model()
        accounts = self._prepaid_lock_for_posting(account_ids)
        cr = self.env.cr
        if len(vals_list) <= COPY_ABOVE:
            existing = self._prepaid_existing_keys(vals_list)
            rows, balances, last_topup = self._prepaid_ledger_rows(vals_list, accounts, existing)
            ids_by_key = {key: line_id for key, (line_id, _account) in existing.items()}
            ids_by_key.update(self._prepaid_insert_lines(rows))
        else:
            cr.execute(SQL("SAVEPOINT prepaid_ledger_copy"))
            try:
                rows, balances, last_topup = self._prepaid_ledger_rows(vals_list, accounts, {})
                self._prepaid_copy_lines(rows)
            except UniqueViolation:
                cr.execute(SQL("ROLLBACK TO SAVEPOINT prepaid_ledger_copy"))
                existing = self._prepaid_existing_keys(vals_list)
                rows, balances, last_topup = self._prepaid_ledger_rows(vals_list, accounts, existing)
                try:
                    self._prepaid_copy_lines(rows)
                except UniqueViolation as exc:
                    cr.execute(SQL("ROLLBACK TO SAVEPOINT prepaid_ledger_copy"))
                    raise ValidationError(
                        self.env._(
                            "A ledger line of this batch was booked by another transaction meanwhile: batch "
                            "refused (%(error)s).",
                            error=exc.diag.message_detail or exc.pgerror,
                        )
                    ) from exc
            cr.execute(SQL("RELEASE SAVEPOINT prepaid_ledger_copy"))
            ids_by_key = None
        changed = {
            aid: balance
            for aid, balance in balances.items()
            if balance != accounts[aid].balance or aid in last_topup
        }
        if changed:
            self._prepaid_store_balances(accounts, changed, last_topup)
            self.browse(list(changed)).invalidate_recordset(["ledger_ids"])
            self.browse(list(changed))._on_balance_changed(
                {aid: accounts[aid].balance for aid in changed if balances[aid] != accounts[aid].balance}
            )
        if return_keys:
            return {row["idempotency_key"] for row in rows}
        if count_only:
            return len(rows)
        if ids_by_key is None:
            ids_by_key = {
                key: line_id for key, (line_id, _account) in self._prepaid_existing_keys(vals_list).items()
            }
        return Ledger.browse(
            list(
                dict.fromkeys(
                    ids_by_key[vals["idempotency_key"]]
                    for vals in vals_list
                    if vals["idempotency_key"] in ids_by_key
                )
            )
        )

    def _prepaid_check_ledger_vals(self, vals_list):
        Ledger = self.env["prepaid.ledger"]
        kinds = dict(Ledger._fields["kind"].selection)
        extra = set()
        for vals in vals_list:
            if not vals.get("idempotency_key"):
                raise ValidationError(self.env._("Every ledger line needs an idempotency key."))
            if not vals.get("account_id"):
                raise ValidationError(self.env._("Every ledger line needs an account."))
            if vals.get("kind") not in kinds:
                raise ValidationError(
                    self.env._("Unknown ledger line kind: %(kind)s.", kind=vals.get("kind"))
                )
            if vals.get("amount") is None:
                raise ValidationError(self.env._("Every ledger line needs an amount."))
            if _money(vals["amount"]) is None:
                raise ValidationError(
                    self.env._(
                        "A ledger amount must be a finite number, not %(amount)s.", amount=vals["amount"]
                    )
                )
            extra.update(fname for fname in vals if fname not in LEDGER_API_FIELDS)
        unknown = sorted(
            fname
            for fname in extra
            if fname not in Ledger._fields
            or not Ledger._fields[fname].column_type
            or Ledger._fields[fname].compute
            or fname in LEDGER_COLUMNS
        )
        if unknown:
            raise ValidationError(
                self.env._("Ledger lines have no field(s) %(fields)s.", fields=", ".join(unknown))
            )

    def _prepaid_lock_for_posting(self, account_ids):
        """``{account id: LockedAccount}`` of these accounts, read under their row locks."""
        self.env.cr.execute(
            SQL(
                """SELECT a.id, a.balance::text, a.state, a.period, a.partner_id, a.company_id, a.currency_id,
                          c.decimal_places, a.warn_level_1::text, a.warn_level_2::text, a.warn_level_3::text,
                          a.cutoff_level::text, a.overdraft_limit::text
                     FROM prepaid_account a JOIN res_currency c ON c.id = a.currency_id
                    WHERE a.id = ANY(%s::int[])
                 ORDER BY a.id
                      FOR NO KEY UPDATE OF a""",
                id_array(account_ids),
            ),
            log_exceptions=False,  # a conflict here is retried or deferred by the caller (see _prepaid_lock)
        )
        rows = self.env.cr.fetchall()
        if len(rows) != len(account_ids):
            raise ValidationError(self.env._("Ledger lines refer to accounts that do not exist."))
        self.browse(account_ids).invalidate_recordset(
            ["balance", "level", "last_topup_date", "state", "period"]
        )
        return {row[0]: LockedAccount(row) for row in rows}

    def _prepaid_existing_keys(self, vals_list):
        """``{key: (line id, account id)}`` of the keys of ``vals_list`` the ledger already holds."""
        keys = list({vals["idempotency_key"] for vals in vals_list})
        return {
            key: (line_id, account_id)
            for key, line_id, account_id in self.env.execute_query(
                SQL(
                    """SELECT idempotency_key, id, account_id FROM prepaid_ledger
                        WHERE idempotency_key = ANY(%s)""",
                    keys,
                )
            )
        }

    def _prepaid_ledger_rows(self, vals_list, accounts, existing):
        """The ledger rows to write for ``vals_list`` (keys in ``existing`` or repeated are skipped), with the
        new balances and top-up dates: ``(rows, {account id: balance}, {account id: last top-up})``."""
        balances = {aid: account.balance for aid, account in accounts.items()}
        last_topup = {}
        seen = set()
        rows = []
        uid, now = self.env.uid, self.env.cr.now().replace(tzinfo=None)
        for vals in vals_list:
            key, account_id = vals["idempotency_key"], int(vals["account_id"])
            known = existing.get(key)
            if known or key in seen:
                if known and known[1] != account_id:
                    raise ValidationError(
                        self.env._("Idempotency key %(key)s is already used by another account.", key=key)
                    )
                continue
            account = accounts[account_id]
            if account.state == "closed":
                name = self.browse(account_id).sudo().name
                raise UserError(self.env._("Account %(account)s is closed: reopen it first.", account=name))
            amount = _money(vals["amount"]).quantize(account.quantum, rounding=ROUND_HALF_UP)
            if not amount:
                continue
            seen.add(key)
            balance = balances[account_id] = balances[account_id] + amount
            date = _to_naive_utc(vals.get("date"))
            if vals["kind"] == "topup" and amount > 0:
                last_topup[account_id] = max(last_topup.get(account_id, date), date)
            row = {fname: value for fname, value in vals.items() if fname not in LEDGER_API_FIELDS}
            row.update(
                account_id=account_id,
                partner_id=account.partner_id,
                company_id=account.company_id,
                currency_id=account.currency_id,
                date=date,
                kind=vals["kind"],
                amount=amount,
                balance_after=balance,
                idempotency_key=key,
                period=account.period,
                create_uid=uid,
                create_date=now,
            )
            rows.append(row)
        return rows, balances, last_topup

    def _prepaid_line_columns(self, rows):
        """The columns of ``rows``: :data:`LEDGER_COLUMNS`, then the extra fields (sorted)."""
        extra = sorted({fname for row in rows for fname in row} - set(LEDGER_COLUMNS))
        return [*LEDGER_COLUMNS, *extra], extra

    def _prepaid_extra_value(self, field, value):
        if value is None or value is False:
            return None
        return field.convert_to_column(value, self.env["prepaid.ledger"], {}, validate=False)

    def _prepaid_insert_lines(self, rows):
        """INSERT ``rows``; returns ``{key: line id}``."""
        if not rows:
            return {}
        Ledger = self.env["prepaid.ledger"]
        columns, extra = self._prepaid_line_columns(rows)
        extra_fields = [Ledger._fields[fname] for fname in extra]
        ids_by_key = {}
        for batch in split_every(LEDGER_INSERT_BATCH, rows):
            values = SQL(", ").join(
                SQL(
                    "%s",
                    (
                        *(row[c] for c in LEDGER_COLUMNS),
                        *(self._prepaid_extra_value(f, row.get(f.name)) for f in extra_fields),
                    ),
                )
                for row in batch
            )
            ids_by_key.update(
                self.env.execute_query(
                    SQL(
                        "INSERT INTO prepaid_ledger (%s) VALUES %s RETURNING idempotency_key, id",
                        SQL(", ").join(SQL.identifier(c) for c in columns),
                        values,
                    )
                )
            )
        # Tell the ORM, as create() would, about the new lines (caches of the accounts' ledger and what
        # depends on it). The copies of the account's fields were written with the rows.
        lines = Ledger.browse(ids_by_key.values())
        lines.modified(columns, create=True)
        for fname in LEDGER_COPIED_FIELDS:
            self.env.remove_to_compute(Ledger._fields[fname], lines)
        return ids_by_key

    def _prepaid_copy_lines(self, rows):
        """COPY ``rows`` into the ledger (raises UniqueViolation on a key the database holds)."""
        if not rows:
            return
        Ledger = self.env["prepaid.ledger"]
        columns, extra = self._prepaid_line_columns(rows)
        extra_fields = [Ledger._fields[fname] for fname in extra]
        lines = []
        for row in rows:
            values = [row[c] for c in LEDGER_COLUMNS]
            values += [self._prepaid_extra_value(f, row.get(f.name)) for f in extra_fields]
            lines.append(copy_line(values))
        self.env.cr.copy_from(io.StringIO("".join(lines)), "prepaid_ledger", columns=columns)

    def _prepaid_store_balances(self, accounts, balances, last_topup):
        """Write the new ``balances`` (``{account id: Decimal}``) of these locked ``accounts`` with their
        levels (the engine's rule) and ``last_topup`` dates in one UPDATE, and tell the ORM."""
        ids = sorted(balances)
        array = id_array(ids)
        self.env.execute_query(
            SQL(
                """UPDATE prepaid_account AS account
                      SET balance = new.balance, level = new.level,
                          last_topup_date = GREATEST(account.last_topup_date, new.last_topup),
                          write_uid = %s, write_date = %s
                     FROM unnest(%s::int[], %s::numeric[], %s::varchar[], %s::timestamp[])
                          AS new(id, balance, level, last_topup)
                    WHERE account.id = new.id AND account.id = ANY(%s::int[])""",
                self.env.uid,
                self.env.cr.now(),
                array,
                [str(balances[aid]) for aid in ids],
                [accounts[aid].level(balances[aid]) for aid in ids],
                [last_topup.get(aid) for aid in ids],
                array,
            )
        )
        changed = self.browse(ids)
        changed.invalidate_recordset(["balance", "level", "last_topup_date", "write_uid", "write_date"])
        changed.modified(["balance", "last_topup_date"])
        self.env.remove_to_compute(self._fields["level"], changed)

    @api.private
    def _on_balance_changed(self, old_balances):
        """Hook run by :meth:`_post_ledger` (and the balance recomputation) after the balances of ``self``
        changed, in the same transaction, with the account rows still locked.

        :param old_balances: ``{account id: balance before the change}`` (Decimal); ``account.balance`` and
            ``account.level`` are the new ones (already stored).

        Billing extends it for alerts, cut-off and restore.
        """
        return True

    # ------------------------------------------------------------------ balance check

    @api.private
    def _check_balance(self):
        """Compare each account's stored balance with the sum of its ledger (exact decimals).

        :return: ``{account id: (stored balance, ledger sum)}`` (Decimals) for the accounts that differ.
        """
        if not self.ids:
            return {}
        self.flush_recordset(["balance"])
        self.env["prepaid.ledger"].flush_model(["account_id", "amount"])
        rows = self.env.execute_query(
            SQL(
                """SELECT a.id, a.balance::text, COALESCE(SUM(l.amount), 0)::text
                     FROM prepaid_account a LEFT JOIN prepaid_ledger l ON l.account_id = a.id
                    WHERE a.id = ANY(%s) GROUP BY a.id""",
                list(self.ids),
            )
        )
        return {
            aid: (Decimal(stored or 0), Decimal(total))
            for aid, stored, total in rows
            if Decimal(stored or 0) != Decimal(total)
        }

    def action_recompute_balance(self):
        """Managers: reset each stored balance to its ledger sum and report what was wrong."""
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can recompute balances."))
        mismatches = {}
        if self.ids:
            accounts = self._prepaid_lock_for_posting(sorted(self.ids))
            mismatches = self._check_balance()
        if mismatches:
            self._prepaid_store_balances(
                accounts, {aid: total for aid, (_stored, total) in mismatches.items()}, {}
            )
            fixed = self.browse(sorted(mismatches))
            for account in fixed:
                stored, ledger_sum = mismatches[account.id]
                account._message_log(
                    body=self.env._(
                        "Balance corrected from %(stored)s to the ledger sum %(ledger)s.",
                        stored=account.currency_id.format(float(stored)),
                        ledger=account.currency_id.format(float(ledger_sum)),
                    )
                )
            fixed._on_balance_changed({aid: stored for aid, (stored, _sum) in mismatches.items()})
        message = (
            self.env._(
                "%(count)s balance(s) differed from the ledger and were corrected.", count=len(mismatches)
            )
            if mismatches
            else self.env._("All balances match their ledger.")
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "warning" if mismatches else "success",
                "message": message,
                "sticky": False,
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
