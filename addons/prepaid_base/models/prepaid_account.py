import datetime

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, split_every

LEVEL_SELECTION = [
    ("normal", "Normal"),
    ("warning_1", "Warning 1"),
    ("warning_2", "Warning 2"),
    ("warning_3", "Warning 3"),
    ("cutoff", "Cut-off"),
]
# Most severe first: an account is at the first level whose threshold its balance is at or below.
LEVEL_THRESHOLDS = (
    ("cutoff", lambda account: account.cutoff_level - account.overdraft_limit),
    ("warning_3", lambda account: account.warn_level_3),
    ("warning_2", lambda account: account.warn_level_2),
    ("warning_1", lambda account: account.warn_level_1),
)
# Button -> (states it may start from, state it leads to).
ACCOUNT_TRANSITIONS = {
    "action_open": (("draft",), "open"),
    "action_suspend": (("open",), "suspended"),
    "action_reopen": (("suspended", "closed"), "open"),
    "action_close": (("draft", "open", "suspended"), "closed"),
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
PROTECTED_FIELDS = ("balance", "period", "last_topup_date")
# Fields frozen once the account has ledger lines (the ledger copies them).
FROZEN_WITH_LEDGER = ("partner_id", "company_id")
# Context key set by the ledger API and the state buttons for their own writes.
INTERNAL_WRITE = "prepaid_account_internal_write"
# Context key that lets prepaid.ledger.create() through (the ledger API itself inserts in bulk).
LEDGER_POST = "prepaid_ledger_post"
# Vals keys of _post_ledger the API turns into columns itself (everything else is passed through).
LEDGER_API_FIELDS = ("account_id", "kind", "amount", "idempotency_key", "date")
# Ledger columns the API fills from the account (related fields, stored as copies).
LEDGER_COPIED_FIELDS = ("partner_id", "company_id", "currency_id")
# Columns whose values the API has already converted (ids, rounded amounts, naive UTC datetimes).
RAW_COLUMNS = (
    "account_id",
    "partner_id",
    "company_id",
    "currency_id",
    "amount",
    "balance_after",
    "date",
    "period",
)
# Who posted a line and when, written by the bulk insert (ledger lines are never written again).
LOG_COLUMNS = ("create_uid", "create_date")
# Every settlement batch rewrites the balance of each account it charges, all the accounts of a page in one
# transaction: pages half empty keep those updates in place (HOT: no new index entries, dead versions
# pruned by the next visit) instead of moving every row to a new page at every batch.
ACCOUNT_FILLFACTOR = 50
# Rows per INSERT statement.
LEDGER_INSERT_BATCH = 1000


def _to_naive_utc(value):
    """Odoo stores UTC datetimes without tzinfo; accept aware datetimes (the engine's) and strings."""
    if not value:
        return fields.Datetime.now()
    if isinstance(value, datetime.datetime) and value.tzinfo:
        return value.astimezone(datetime.UTC).replace(tzinfo=None)
    return fields.Datetime.to_datetime(value)


def _column_value(Ledger, field, row):
    """The database value of ``field`` in a ledger row (None is NULL)."""
    value = row.get(field.name)
    if value is None or field.name in RAW_COLUMNS:
        return value
    return field.convert_to_column(value, Ledger, row, validate=False)


def levels_ordered(warn_level_1, warn_level_2, warn_level_3, cutoff_level):
    """Whether low-balance levels are in order: warning 1 > warning 2 > warning 3 >= cut-off (the rule for
    an account's levels and for the company defaults new accounts take)."""
    return warn_level_1 > warn_level_2 > warn_level_3 >= cutoff_level


class PrepaidAccount(models.Model):
    """The tenant's prepaid wallet.

    The balance is the sum of the account's ledger (``prepaid.ledger``); the stored ``balance`` is a cache
    that only :meth:`_post_ledger` changes, under a row lock, in the same transaction as the ledger lines.
    """

    _name = "prepaid.account"
    _description = "Prepaid Account"
    _inherit = ["mail.thread", "mail.activity.mixin", "portal.mixin"]
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
        """The level ('normal', 'warning_1' .. 'warning_3', 'cutoff') this account is at with ``balance``.

        Billing uses it with the balances handed to :meth:`_on_balance_changed` to tell the level before a
        change from the level after it.
        """
        self.ensure_one()
        currency = self.currency_id or self.env.company.currency_id
        for level, threshold in LEVEL_THRESHOLDS:
            if currency.compare_amounts(balance, threshold(self)) <= 0:
                return level
        return "normal"

    def _get_cutoff_threshold(self):
        """The balance at or below which the supply is cut (cut-off level minus overdraft allowance)."""
        self.ensure_one()
        return self.cutoff_level - self.overdraft_limit

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

    def _check_manager_fields(self, vals):
        if self.env.su or self.env.user.has_group("prepaid_base.group_prepaid_manager"):
            return
        changed = [fname for fname in MANAGER_FIELDS if fname in vals]
        if changed:
            raise AccessError(
                self.env._(
                    "Only prepaid managers can change %(fields)s.",
                    fields=", ".join(self._fields[f]._description_string(self.env) for f in changed),
                )
            )

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.context.get(INTERNAL_WRITE):
            for vals in vals_list:
                if any(vals.get(fname) for fname in PROTECTED_FIELDS):
                    raise UserError(self.env._("A new account starts empty: post ledger lines to fund it."))
        for vals in vals_list:
            company = self.env["res.company"].browse(vals.get("company_id")) or self.env.company
            defaults = {fname: self._get_company_default(fname, company) for fname in MANAGER_FIELDS}
            # Levels not given come from the account's company (field defaults use the current company).
            for fname in COMPANY_DEFAULT_FIELDS:
                vals.setdefault(fname, defaults[fname])
            # An operator may create accounts with the company's default levels, not with others.
            self._check_manager_fields(
                {
                    fname: vals[fname]
                    for fname in MANAGER_FIELDS
                    if fname in vals and vals[fname] != defaults[fname]
                }
            )
        for vals in vals_list:
            if not vals.get("name") or vals["name"] == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code("prepaid.account") or self.env._("New")
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.context.get(INTERNAL_WRITE):
            protected = [fname for fname in PROTECTED_FIELDS if fname in vals]
            if protected:
                raise UserError(
                    self.env._("The balance of a prepaid account changes only through its ledger.")
                )
        self._check_manager_fields(vals)
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
        allowed, target = ACCOUNT_TRANSITIONS[action]
        wrong = self.filtered(lambda a: a.state not in allowed)
        if wrong:
            raise UserError(
                self.env._(
                    "Accounts %(accounts)s cannot go to that state from their current state.",
                    accounts=", ".join(wrong.mapped("name")),
                )
            )
        self.write({"state": target})

    def action_open(self):
        self._change_state("action_open")

    def action_suspend(self):
        self._change_state("action_suspend")

    def action_reopen(self):
        closed = self.filtered(lambda a: a.state == "closed")
        self._change_state("action_reopen")
        # Reopening after closure starts a new ledger period.
        for account in closed:
            account.with_context(**{INTERNAL_WRITE: True}).period = account.period + 1

    def _check_can_close(self):
        """Raise unless these accounts can be closed: their balance must be zero (refund it first)."""
        not_empty = self.filtered(lambda a: not a.currency_id.is_zero(a.balance))
        if not_empty:
            raise UserError(
                self.env._(
                    "Refund the remaining balance of %(accounts)s before closing.",
                    accounts=", ".join(not_empty.mapped("name")),
                )
            )

    def action_close(self):
        self._check_can_close()
        self._change_state("action_close")

    def action_view_ledger(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_base.prepaid_ledger_action")
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id}
        return action

    # ------------------------------------------------------------------ money API

    @api.model
    @api.private
    def _post_ledger(self, vals_list):
        """Post ledger lines and update the balances: the ONLY way to change a prepaid balance.

        :param vals_list: list of dicts, each with

            - ``account_id`` (int, required): the prepaid.account
            - ``kind`` (required): a ``prepaid.ledger`` kind (topup, consumption, fee, ...)
            - ``amount`` (float/Decimal, required): signed, in the account's currency: credits > 0,
              deductions < 0; rounded here with the currency (a line that rounds to zero posts nothing)
            - ``idempotency_key`` (str, required): unique across all ledgers, e.g.
              ``"topup:account.move:42"`` or ``"consumption:meter:7:2026-01-01T00:15"``
            - ``date`` (datetime, optional, default now; aware datetimes are converted to UTC)
            - ``description``, ``utility``, ``res_model``/``res_id`` (source document), all optional

        Guarantees, in this order, in the caller's transaction:

        1. the affected accounts' rows are locked (``SELECT ... ORDER BY id FOR UPDATE``): concurrent
           postings to the same account are serialised (under Odoo's REPEATABLE READ a transaction that
           had to wait fails with a serialization error and is retried by Odoo, then sees the new balance);
        2. a vals whose key already exists (or repeats an earlier vals) posts nothing and yields the
           existing line: posting twice posts once; the key on another account raises ValidationError;
        3. lines are written with ``balance_after`` and the account's current ``period``, and the stored
           balance (and ``last_topup_date``) is updated in the same transaction;
        4. :meth:`_on_balance_changed` runs on the accounts whose balance changed.

        Closed accounts refuse postings. The caller needs write access to the accounts (or sudo).
        Database backstop: ``UNIQUE(idempotency_key)`` and ``CHECK(amount <> 0)`` on the ledger.

        :return: the ``prepaid.ledger`` lines of ``vals_list``, in order, without duplicates (new and
            already existing ones).
        """
        Ledger = self.env["prepaid.ledger"]
        if not vals_list:
            return Ledger
        kinds = dict(Ledger._fields["kind"].selection)
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

        account_ids = sorted({int(vals["account_id"]) for vals in vals_list})
        accounts = self.browse(account_ids)
        accounts.check_access("write")
        self.flush_model()
        Ledger.flush_model()
        locked = dict(
            self.env.execute_query(
                SQL(
                    "SELECT id, balance FROM prepaid_account WHERE id IN %s ORDER BY id FOR UPDATE",
                    tuple(account_ids),
                )
            )
        )
        if len(locked) != len(account_ids):
            raise ValidationError(self.env._("Ledger lines refer to accounts that do not exist."))
        accounts.invalidate_recordset(["balance"])
        keys = tuple({vals["idempotency_key"] for vals in vals_list})
        existing = {
            key: (line_id, account_id)
            for key, line_id, account_id in self.env.execute_query(
                SQL(
                    "SELECT idempotency_key, id, account_id FROM prepaid_ledger WHERE idempotency_key IN %s",
                    keys,
                )
            )
        }

        # Records taken from the recordset keep its prefetch set: one query reads what the loop needs.
        account_by_id = {account.id: account for account in accounts}
        old_balances = {aid: balance or 0.0 for aid, balance in locked.items()}
        balances = dict(old_balances)
        last_topup = {}
        to_create, line_keys, new_keys = [], [], {}
        for vals in vals_list:
            key = vals["idempotency_key"]
            account_id = int(vals["account_id"])
            known = existing.get(key) or new_keys.get(key)
            if known:
                if known[1] != account_id:
                    raise ValidationError(
                        self.env._("Idempotency key %(key)s is already used by another account.", key=key)
                    )
                line_keys.append(key)
                continue
            account = account_by_id[account_id]
            if account.state == "closed":
                raise UserError(
                    self.env._("Account %(account)s is closed: reopen it first.", account=account.name)
                )
            currency = account.currency_id
            amount = currency.round(float(vals["amount"]))
            if currency.is_zero(amount):
                continue
            balances[account_id] = currency.round(balances[account_id] + amount)
            date = _to_naive_utc(vals.get("date"))
            if vals["kind"] == "topup" and amount > 0:
                last_topup[account_id] = max(last_topup.get(account_id, date), date)
            row = {fname: value for fname, value in vals.items() if fname not in LEDGER_API_FIELDS}
            row.update(
                {
                    "account_id": account_id,
                    "partner_id": account.partner_id.id,
                    "company_id": account.company_id.id,
                    "currency_id": currency.id,
                    "kind": vals["kind"],
                    "amount": amount,
                    "balance_after": balances[account_id],
                    "idempotency_key": key,
                    "period": account.period,
                    "date": date,
                }
            )
            to_create.append(row)
            new_keys[key] = (None, account_id)
            line_keys.append(key)

        ids_by_key = {key: line_id for key, (line_id, _account) in existing.items()}
        ids_by_key.update(self._insert_ledger_rows(to_create))

        changed_ids = [aid for aid in account_ids if balances[aid] != old_balances[aid] or aid in last_topup]
        if changed_ids:
            rows = SQL(", ").join(
                SQL("(%s, %s::numeric, %s::timestamp)", aid, balances[aid], last_topup.get(aid))
                for aid in changed_ids
            )
            self.env.cr.execute(
                SQL(
                    """
                    UPDATE prepaid_account AS account
                       SET balance = new.balance,
                           last_topup_date = GREATEST(account.last_topup_date, new.last_topup),
                           write_uid = %s,
                           write_date = %s
                      FROM (VALUES %s) AS new(id, balance, last_topup)
                     WHERE account.id = new.id
                    """,
                    self.env.uid,
                    self.env.cr.now(),
                    rows,
                )
            )
            changed = self.browse(changed_ids)
            changed.invalidate_recordset(["balance", "last_topup_date", "write_uid", "write_date"])
            changed.modified(["balance", "last_topup_date"])
            changed._on_balance_changed({aid: old_balances[aid] for aid in changed_ids})
        return Ledger.browse(list(dict.fromkeys(ids_by_key[key] for key in line_keys)))

    @api.model
    def _insert_ledger_rows(self, rows):
        """Insert prepared ledger rows in bulk (the hot path of settlement); return ``{key: line id}``.

        Every key of a row must be a stored, non-computed field of ``prepaid.ledger`` (modules that add
        fields to the ledger, such as a meter, pass them in the vals given to :meth:`_post_ledger`).
        """
        if not rows:
            return {}
        Ledger = self.env["prepaid.ledger"]
        fnames = sorted({fname for row in rows for fname in row})
        unknown = [
            fname
            for fname in fnames
            if fname not in Ledger._fields
            or not Ledger._fields[fname].column_type
            or (Ledger._fields[fname].compute and fname not in LEDGER_COPIED_FIELDS)
        ]
        if unknown:
            raise ValidationError(
                self.env._("Ledger lines have no field(s) %(fields)s.", fields=", ".join(unknown))
            )
        fields_ = [Ledger._fields[fname] for fname in fnames]
        columns = SQL(", ").join(SQL.identifier(fname) for fname in [*fnames, *LOG_COLUMNS])
        log_values = (self.env.uid, self.env.cr.now())
        ids_by_key = {}
        for batch in split_every(LEDGER_INSERT_BATCH, rows):
            values = SQL(", ").join(
                SQL("%s", (*(_column_value(Ledger, field, row) for field in fields_), *log_values))
                for row in batch
            )
            ids_by_key.update(
                self.env.execute_query(
                    SQL(
                        "INSERT INTO prepaid_ledger (%s) VALUES %s RETURNING idempotency_key, id",
                        columns,
                        values,
                    )
                )
            )
        # Tell the ORM, as create() would: caches of the accounts' ledger and fields depending on it. The
        # copies of the account's fields were written with the rows: nothing to recompute there.
        lines = Ledger.browse(ids_by_key.values())
        lines.modified(fnames, create=True)
        for fname in LEDGER_COPIED_FIELDS:
            self.env.remove_to_compute(Ledger._fields[fname], lines)
        return ids_by_key

    @api.private
    def _on_balance_changed(self, old_balances):
        """Hook run by :meth:`_post_ledger` (and the balance recomputation) after the balances of ``self``
        changed, in the same transaction, with the account rows still locked.

        :param old_balances: ``{account id: balance before the change}``; ``account.balance`` is the new
            one and ``account._get_level(old_balances[account.id])`` the level before.

        Base only recomputes (and stores) the level. Billing extends it for alerts, cut-off and restore.
        """
        self.flush_recordset(["level"])

    # ------------------------------------------------------------------ balance check

    @api.private
    def _check_balance(self):
        """Compare each account's stored balance with the sum of its ledger.

        :return: ``{account id: (stored balance, ledger sum)}`` for the accounts that differ.
        """
        self.flush_recordset(["balance"])
        self.env["prepaid.ledger"].flush_model(["account_id", "amount"])
        sums = dict(
            self.env.execute_query(
                SQL(
                    "SELECT account_id, SUM(amount) FROM prepaid_ledger "
                    "WHERE account_id IN %s GROUP BY account_id",
                    tuple(self.ids) or (0,),
                )
            )
        )
        mismatches = {}
        for account in self:
            ledger_sum = account.currency_id.round(sums.get(account.id) or 0.0)
            if account.currency_id.compare_amounts(account.balance, ledger_sum):
                mismatches[account.id] = (account.balance, ledger_sum)
        return mismatches

    def action_recompute_balance(self):
        """Managers: reset each stored balance to its ledger sum and report what was wrong."""
        if not (self.env.su or self.env.user.has_group("prepaid_base.group_prepaid_manager")):
            raise AccessError(self.env._("Only prepaid managers can recompute balances."))
        accounts = self.sorted("id")
        if accounts:
            self.env.execute_query(
                SQL(
                    "SELECT id FROM prepaid_account WHERE id IN %s ORDER BY id FOR UPDATE",
                    tuple(accounts.ids),
                )
            )
            accounts.invalidate_recordset(["balance"])
        mismatches = accounts._check_balance()
        if mismatches:
            rows = SQL(", ").join(
                SQL("(%s, %s::numeric)", aid, ledger_sum) for aid, (_stored, ledger_sum) in mismatches.items()
            )
            self.env.cr.execute(
                SQL(
                    "UPDATE prepaid_account AS account SET balance = new.balance "
                    "FROM (VALUES %s) AS new(id, balance) WHERE account.id = new.id",
                    rows,
                )
            )
            fixed = self.browse(list(mismatches))
            fixed.invalidate_recordset(["balance"])
            fixed.modified(["balance"])
            for account in fixed:
                stored, ledger_sum = mismatches[account.id]
                account.message_post(
                    body=self.env._(
                        "Balance corrected from %(stored)s to the ledger sum %(ledger)s.",
                        stored=account.currency_id.format(stored),
                        ledger=account.currency_id.format(ledger_sum),
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
