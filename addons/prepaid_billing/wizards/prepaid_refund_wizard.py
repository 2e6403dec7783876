from odoo import fields, models
from odoo.exceptions import UserError


class PrepaidRefundWizard(models.TransientModel):
    """Managers: refund the remaining balance, trip the meters and close the account."""

    _name = "prepaid.refund.wizard"
    _description = "Refund and Close a Prepaid Account"
    _check_company_auto = True

    account_id = fields.Many2one(
        "prepaid.account", string="Prepaid Account", required=True, check_company=True
    )
    company_id = fields.Many2one(related="account_id.company_id")
    currency_id = fields.Many2one(related="account_id.currency_id")
    balance = fields.Monetary(related="account_id.balance", string="Balance to Refund")
    journal_id = fields.Many2one(
        "account.journal",
        string="Refund Through",
        check_company=True,
        domain="[('type', 'in', ('cash', 'bank')), ('company_id', '=', company_id)]",
        default=lambda self: self.env.company._prepaid_default_cash_journal(),
    )
    reason = fields.Char(required=True)

    def action_refund_and_close(self):
        self.ensure_one()
        if self.currency_id.compare_amounts(self.balance, 0) > 0 and not self.journal_id:
            raise UserError(self.env._("Choose the journal the balance is paid back through."))
        self.account_id._refund_and_close(self.journal_id, self.reason)
        return {"type": "ir.actions.act_window_close"}
