from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import UserError


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
        self.ensure_one()
        if self.currency_id.compare_amounts(self.amount, 0) <= 0:
            raise UserError(self.env._("The top-up amount must be positive."))
        if self.has_meter_side and not self.meter_id:
            raise UserError(self.env._("Choose the meter this money is sent to."))
        account = self.account_id
        account.check_access("write")
        if self.journal_id.company_id != account.company_id:
            raise UserError(self.env._("Choose a payment journal of the account's company."))
        # The account first (the suite's one lock order): top-ups of one account queue here instead of
        # deadlocking later in the posting.
        account._prepaid_lock()
        topup = internal(self.env["prepaid.topup"]).sudo().create([self._prepare_topup_vals()])
        topup.action_confirm()
        if self.print_receipt:
            action = topup.with_user(self.env.user).action_print_receipt()
            # The dialog closes once the receipt is downloaded and the account form behind it reloads.
            action["close_on_report_download"] = True
            return action
        return {"type": "ir.actions.act_window_close"}
