from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidReverseWizard(models.TransientModel):
    """Managers: reverse the last top-up of an account (credit note, refund payment, ledger reversal)."""

    _name = "prepaid.reverse.wizard"
    _description = "Reverse the Last Top-up"
    _check_company_auto = True

    account_id = fields.Many2one(
        "prepaid.account", string="Prepaid Account", required=True, check_company=True
    )
    company_id = fields.Many2one(related="account_id.company_id")
    currency_id = fields.Many2one(related="account_id.currency_id")
    balance = fields.Monetary(related="account_id.balance", string="Current Balance")
    topup_id = fields.Many2one("prepaid.topup", string="Top-up", compute="_compute_topup_id")
    amount = fields.Monetary(related="topup_id.amount")
    topup_date = fields.Datetime(related="topup_id.date")
    journal_id = fields.Many2one(
        "account.journal",
        string="Refund Through",
        check_company=True,
        domain="[('type', 'in', ('cash', 'bank')), ('company_id', '=', company_id)]",
        compute="_compute_journal_id",
        store=True,
        readonly=False,
    )
    reason = fields.Char(required=True)

    @api.depends("account_id")
    def _compute_topup_id(self):
        for wizard in self:
            last = wizard.account_id._prepaid_last_topup() if wizard.account_id else self.env["prepaid.topup"]
            wizard.topup_id = last if last.state == "done" else False

    @api.depends("topup_id")
    def _compute_journal_id(self):
        for wizard in self:
            wizard.journal_id = wizard.topup_id.journal_id

    def action_reverse(self):
        self.ensure_one()
        self.account_id._prepaid_check_manager()
        if not self.topup_id:
            raise UserError(
                self.env._("Account %(account)s has no top-up to reverse.", account=self.account_id.name)
            )
        if not self.journal_id:
            raise UserError(self.env._("Choose the journal the money is given back through."))
        self.topup_id.sudo()._reverse(self.journal_id, self.reason)
        return {"type": "ir.actions.act_window_close"}
