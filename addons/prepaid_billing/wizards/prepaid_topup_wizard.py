from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_base.tools.transactions import run_in_own_transaction
from odoo.exceptions import UserError
from odoo.tools import SQL


class PrepaidTopupWizard(models.TransientModel):
    """The cashier's top-up: amount, payment journal, memo -> a paid "Prepaid credit" invoice, a credited
    ledger and a printed receipt."""

    _name = "prepaid.topup.wizard"
    _description = "Top Up a Prepaid Account"
    _check_company_auto = True

    account_id = fields.Many2one(
        "prepaid.account",
        string="Prepaid Account",
        required=True,
        domain="[('state', 'in', ('open', 'suspended'))]",
        help="Any open account of your companies: type the tenant's name, the account number or a unit.",
    )
    # The account's company once one is chosen; before that the current company (the payment journals
    # offered are the company's). The account's own domain does not depend on it: a cashier of several
    # companies finds the accounts of all of them.
    company_id = fields.Many2one(
        "res.company",
        compute="_compute_company_id",
        store=True,
        readonly=False,
        required=True,
        default=lambda self: self.env.company,
    )
    partner_id = fields.Many2one(related="account_id.partner_id", string="Tenant")
    currency_id = fields.Many2one(related="account_id.currency_id")
    balance = fields.Monetary(related="account_id.balance", string="Current Balance")
    level = fields.Selection(related="account_id.level")
    amount = fields.Monetary(required=True)
    journal_id = fields.Many2one(
        "account.journal",
        string="Paid With",
        required=True,
        check_company=True,
        domain="[('type', 'in', ('cash', 'bank')), ('company_id', '=', company_id)]",
        default=lambda self: self.env.company._prepaid_default_cash_journal(),
        help="Cash, bank transfer, card terminal, WeChat Pay, Alipay...",
    )
    memo = fields.Char()
    meter_id = fields.Many2one(
        "prepaid.meter",
        string="Recharge Meter",
        check_company=True,
        domain="[('account_id', '=', account_id), ('billing_mode', '=', 'meter')]",
        help="Meter-side billing: the meter the money is sent to as a recharge.",
    )
    has_meter_side = fields.Boolean(compute="_compute_has_meter_side")
    print_receipt = fields.Boolean(default=True)
    topup_id = fields.Many2one(
        "prepaid.topup", string="Top-up", readonly=True, help="The top-up this wizard made."
    )

    @api.depends("account_id")
    def _compute_company_id(self):
        for wizard in self:
            wizard.company_id = wizard.account_id.company_id or wizard.company_id or self.env.company

    @api.onchange("company_id")
    def _onchange_company_id(self):
        if self.journal_id.company_id != self.company_id:
            self.journal_id = self.company_id._prepaid_default_cash_journal()

    @api.depends("account_id")
    def _compute_has_meter_side(self):
        for wizard in self:
            wizard.has_meter_side = any(m.billing_mode == "meter" for m in wizard.account_id.meter_ids)

    @api.onchange("account_id")
    def _onchange_account_id(self):
        meters = self.account_id.meter_ids.filtered(lambda m: m.billing_mode == "meter")
        self.meter_id = meters if len(meters) == 1 else False

    def _prepare_topup_vals(self):
        self.ensure_one()
        return {
            "account_id": self.account_id.id,
            "amount": self.amount,
            "journal_id": self.journal_id.id,
            "channel": "cashier",
            "memo": self.memo,
            "meter_id": self.meter_id.id,
        }

    def action_confirm(self):
        """Take the money: a paid top-up invoice, the ledger credited, the receipt. The top-up runs in a
        transaction of its own (:func:`~odoo.addons.prepaid_base.tools.transactions.run_in_own_transaction`):
        cashiers topping up one account at once queue on it and all succeed. Confirming the same wizard again
        (a double click, a retried request) returns the top-up it made, never a second one."""
        self.ensure_one()
        if self.currency_id.compare_amounts(self.amount, 0) <= 0:
            raise UserError(self.env._("The top-up amount must be positive."))
        if self.has_meter_side and not self.meter_id:
            raise UserError(self.env._("Choose the meter this money is sent to."))
        self.account_id.check_access("write")
        if self.journal_id.company_id != self.account_id.company_id:
            raise UserError(self.env._("Choose a payment journal of the account's company."))
        topup_id = run_in_own_transaction(self.env, lambda env: self.with_env(env)._confirm_once())
        topup = self.env["prepaid.topup"].browse(topup_id)
        if self.print_receipt:
            # The top-up committed in its own transaction, after this request's snapshot: the receipt action
            # names it without reading it (the download is a request of its own). The dialog closes once the
            # receipt is downloaded and the account form behind it reloads.
            return topup._receipt_action(self.company_id.prepaid_receipt_layout or "ticket")
        return {"type": "ir.actions.act_window_close"}

    def _confirm_once(self):
        """The top-up of this wizard (made now, or the one an earlier confirmation made); returns its id."""
        self.env.cr.execute(
            SQL("SELECT topup_id FROM %s WHERE id = %s FOR UPDATE", SQL.identifier(self._table), self.id)
        )
        done = self.env.cr.fetchone()[0]
        if done:
            return done
        # The account first (the suite's one lock order): top-ups of one account queue here.
        self.account_id._prepaid_lock()
        topup = internal(self.env["prepaid.topup"]).sudo().create([self._prepare_topup_vals()])
        topup.action_confirm()
        self.write({"topup_id": topup.id})
        self.flush_recordset(["topup_id"])
        return topup.id
