from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _invoice_paid_hook(self):
        res = super()._invoice_paid_hook()
        # Whatever paid it (cashier, portal payment provider, bank statement), a paid top-up invoice
        # credits its prepaid account once; the hook may fire twice (in payment, then paid).
        self.env["prepaid.topup"]._credit_paid_invoices(self)
        return res
