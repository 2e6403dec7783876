from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal, is_manager
from odoo.addons.prepaid_base.tools.numbers import check_numbers
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL

# Written by the opening action only.
OPENING_PROTECTED_FIELDS = (
    "state",
    "tenancy_id",
    "account_id",
    "topup_id",
    "opened_by_id",
    "opened_at",
    "temporary_quantity",
)
# Above this an opening balance is a typing error, not money.
MAX_OPENING_BALANCE = 1e9
NUMBER_FIELDS = ("opening_balance", "warn_level_1", "warn_level_2", "warn_level_3", "cutoff_level")


class PrepaidAccountOpening(models.Model):
    """A pre-set account opening: tenant, unit, tariff, levels and opening balance prepared in advance
    (form or import) and opened in one action on the move-in date: account opened, tariff written, opening
    balance credited once through the standard top-up path, settlement cursors moved to the latest reading
    (temporary consumption is never charged) and the supply closed."""

    _name = "prepaid.account.opening"
    _description = "Account Opening"
    _inherit = ["prepaid.guard.mixin", "mail.thread"]
    _prepaid_protected_fields = OPENING_PROTECTED_FIELDS
    _order = "move_in_date, id"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    state = fields.Selection(
        [("draft", "Draft"), ("ready", "Ready"), ("opened", "Opened"), ("cancelled", "Cancelled")],
        default="draft",
        required=True,
        readonly=True,
        tracking=True,
        index=True,
    )
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id")
    partner_id = fields.Many2one("res.partner", string="Tenant", required=True, tracking=True)
    unit_id = fields.Many2one(
        "prepaid.property", required=True, domain="[('kind', '=', 'unit')]", check_company=True, tracking=True
    )
    meter_ids = fields.Many2many(
        "prepaid.meter",
        compute="_compute_meter_ids",
        store=True,
        readonly=False,
        check_company=True,
        help="The meters opened with the account (by default the unit's).",
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff", check_company=True, help="Written on the unit for its utility when set."
    )
    warn_level_1 = fields.Monetary(string="Warning Level 1")
    warn_level_2 = fields.Monetary(string="Warning Level 2")
    warn_level_3 = fields.Monetary(string="Warning Level 3")
    cutoff_level = fields.Monetary(string="Cut-off Level")
    override_levels = fields.Boolean(help="Use these levels instead of the company defaults.")
    opening_balance = fields.Monetary()
    journal_id = fields.Many2one(
        "account.journal",
        string="Paid With",
        check_company=True,
        domain="[('type', 'in', ('cash', 'bank'))]",
    )
    move_in_date = fields.Date(required=True, default=fields.Date.context_today, tracking=True)
    auto_open = fields.Boolean(help="Opened by the scheduler once the move-in date has come.")
    temporary_choice = fields.Selection(
        [("carry", "Carry (kept on the meter, not charged)"), ("clear", "Clear")],
        string="Temporary Consumption",
        default="carry",
        required=True,
    )
    temporary_quantity = fields.Float(
        digits=(16, 3), readonly=True, help="Consumption before opening, never charged to the tenant."
    )
    tenancy_id = fields.Many2one("prepaid.tenancy", readonly=True)
    account_id = fields.Many2one("prepaid.account", readonly=True)
    topup_id = fields.Many2one("prepaid.topup", string="Opening Top-up", readonly=True)
    opened_by_id = fields.Many2one("res.users", readonly=True)
    opened_at = fields.Datetime(readonly=True)

    _sql_constraints = [
        ("topup_uniq", "UNIQUE(topup_id)", "An opening credits its balance once."),
    ]

    @api.depends("partner_id", "unit_id")
    def _compute_name(self):
        for opening in self:
            opening.name = " / ".join(filter(None, [opening.unit_id.display_name, opening.partner_id.name]))

    @api.depends("unit_id")
    def _compute_meter_ids(self):
        Meter = self.env["prepaid.meter"]
        for opening in self:
            opening.meter_ids = (
                Meter.search([("unit_id", "=", opening.unit_id.id)]) if opening.unit_id else Meter
            )

    @api.model
    def get_import_templates(self):
        return [
            {
                "label": self.env._("Import Template for Account Openings"),
                "template": "/prepaid_billing/static/csv/prepaid_account_opening_template.csv",
            }
        ]

    @api.model_create_multi
    def create(self, vals_list):
        check_numbers(self, vals_list, NUMBER_FIELDS)
        return super().create(vals_list)

    def write(self, vals):
        check_numbers(self, [vals], NUMBER_FIELDS)
        return super().write(vals)

    @api.constrains("opening_balance")
    def _check_opening_balance(self):
        for opening in self:
            value = opening.opening_balance
            if value != value or value < 0 or value > MAX_OPENING_BALANCE:
                raise ValidationError(
                    self.env._(
                        "The opening balance of %(opening)s must be between 0 and %(max)s.",
                        opening=opening.display_name,
                        max=MAX_OPENING_BALANCE,
                    )
                )

    @api.constrains("meter_ids", "unit_id")
    def _check_meters(self):
        for opening in self:
            if opening.meter_ids.filtered(lambda m, o=opening: m.unit_id != o.unit_id):
                raise ValidationError(self.env._("The meters of an opening must be meters of its unit."))

    def _check_manager(self):
        if not is_manager(self.env):
            raise AccessError(self.env._("Only prepaid managers can open accounts."))

    def action_ready(self):
        self._check_manager()
        self.filtered(lambda o: o.state == "draft").with_context()._set_state("ready")

    def action_cancel(self):
        self._check_manager()
        if self.filtered(lambda o: o.state == "opened"):
            raise UserError(self.env._("An opened account opening cannot be cancelled."))
        self._set_state("cancelled")

    def action_draft(self):
        self._check_manager()
        self.filtered(lambda o: o.state == "cancelled")._set_state("draft")

    def _set_state(self, state):
        self.check_access("write")
        internal(self).write({"state": state})

    def action_open_accounts(self):
        """Managers: open every ready opening of ``self`` in one action."""
        self._check_manager()
        self.check_access("write")
        todo = self.filtered(lambda o: o.state == "ready")
        if not todo:
            raise UserError(self.env._("No ready opening among the selected ones."))
        todo._open()
        return True

    @api.model
    def _cron_open_due(self):
        due = self.search(
            [("state", "=", "ready"), ("auto_open", "=", True), ("move_in_date", "<=", fields.Date.today())]
        )
        for opening in due:
            with self.env.cr.savepoint():
                opening.sudo()._open()
        return len(due)

    @api.private
    def _open(self):
        """Open these ready openings (locked first: re-clicking or two users at once open once)."""
        if not self:
            return
        self.flush_recordset()
        rows = self.env.execute_query(
            SQL(
                """SELECT id FROM prepaid_account_opening WHERE id = ANY(%s) AND state = 'ready'
                ORDER BY id FOR UPDATE""",
                list(self.ids),
            )
        )
        todo = self.browse([row[0] for row in rows])
        todo.invalidate_recordset()
        todo = todo.filtered(lambda o: o.state == "ready")
        if not todo:
            return
        Account = self.env["prepaid.account"].sudo()
        live = Account.search([("unit_ids", "in", todo.unit_id.ids), ("state", "in", ("open", "suspended"))])
        if live:
            raise UserError(
                self.env._(
                    "These units already have an open account: %(units)s.",
                    units=", ".join(
                        live.unit_ids.filtered(lambda u: u in todo.unit_id).mapped("display_name")
                    ),
                )
            )
        accounts = Account.create([opening._prepare_account_vals() for opening in todo])
        Tenancy = self.env["prepaid.tenancy"].sudo()
        for opening, account in zip(todo, accounts, strict=True):
            if opening.tariff_id:
                fname = f"{opening.tariff_id.utility}_tariff_id"
                opening.unit_id.sudo().write({fname: opening.tariff_id.id})
            tenancy = Tenancy.create([opening._prepare_tenancy_vals(account)])
            tenancy.action_activate()
            internal(opening).write({"account_id": account.id, "tenancy_id": tenancy.id})
        accounts.action_open()
        todo.meter_ids.sudo().write({"account_id": False})
        for opening in todo:
            opening.meter_ids.sudo().write({"account_id": opening.account_id.id})
        quantities = todo.meter_ids.sudo()._move_cursors_to_latest()
        todo.meter_ids.sudo()._end_temporary_supply()
        commands = [
            {
                "meter_id": meter.id,
                "kind": "close" if meter.utility == "electricity" else "valve_open",
                "reason": "automatic",
            }
            for meter in todo.meter_ids
        ]
        if commands:
            self.env["prepaid.meter.command"].sudo()._enqueue(commands, urgent=True)
        now = fields.Datetime.now()
        for opening in todo:
            internal(opening).write(
                {
                    "state": "opened",
                    "opened_by_id": self.env.uid,
                    "opened_at": now,
                    "temporary_quantity": sum(quantities.get(m.id, 0.0) for m in opening.meter_ids),
                }
            )
            opening._credit_opening_balance()
            opening._message_log(
                body=self.env._(
                    "Account %(account)s opened; temporary consumption %(quantity)s (%(choice)s), "
                    "not charged.",
                    account=opening.account_id.name,
                    quantity=opening.temporary_quantity,
                    choice=dict(self._fields["temporary_choice"]._description_selection(self.env))[
                        opening.temporary_choice
                    ],
                )
            )

    def _prepare_account_vals(self):
        self.ensure_one()
        vals = {
            "partner_id": self.partner_id.id,
            "company_id": self.company_id.id,
            "unit_ids": [(6, 0, self.unit_id.ids)],
        }
        if self.override_levels:
            vals.update(
                warn_level_1=self.warn_level_1,
                warn_level_2=self.warn_level_2,
                warn_level_3=self.warn_level_3,
                cutoff_level=self.cutoff_level,
            )
        return vals

    def _prepare_tenancy_vals(self, account):
        self.ensure_one()
        return {
            "partner_id": self.partner_id.id,
            "account_id": account.id,
            "unit_ids": [(6, 0, self.unit_id.ids)],
            "date_start": self.move_in_date,
            "company_id": self.company_id.id,
        }

    def _credit_opening_balance(self):
        """The opening balance as a top-up through the standard cashier path (a paid invoice, a real journal
        entry), at most once per opening (``topup_id`` UNIQUE, set under the opening's row lock)."""
        self.ensure_one()
        if self.topup_id or self.currency_id.is_zero(self.opening_balance):
            return
        journal = self.journal_id or self.company_id._prepaid_default_cash_journal()
        topup = (
            internal(self.env["prepaid.topup"])
            .sudo()
            .create(
                [
                    {
                        "account_id": self.account_id.id,
                        "amount": self.opening_balance,
                        "journal_id": journal.id,
                        "channel": "cashier",
                        "memo": self.env._("Opening balance"),
                    }
                ]
            )
        )
        topup.action_confirm()
        internal(self).write({"topup_id": topup.id})
