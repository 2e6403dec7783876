from odoo import api, fields, models
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
        check_company=True,
    )
    company_id = fields.Many2one(related="account_id.company_id")
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
        self.account_id.check_access("write")
        topup = self.env["prepaid.topup"].create([self._prepare_topup_vals()])
        topup.sudo().action_confirm()
        if self.print_receipt:
            return topup.action_print_receipt()
        return topup._get_records_action()
