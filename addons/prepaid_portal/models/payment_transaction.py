from odoo import models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.tools import SQL


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    def _prepaid_portal_topups(self):
        invoices = self.invoice_ids
        if not invoices:
            return self.env["prepaid.topup"].sudo()
        return (
            self.env["prepaid.topup"]
            .sudo()
            .search([("invoice_id", "in", invoices.ids), ("channel", "=", "portal")])
        )

    def _post_process(self):
        """Post-processing of transactions that pay portal top-ups, made safe to run any number of times at
        once (the provider's webhook, the customer's status poll, the retry cron):

        - the transactions' rows are locked first: a second post-processing of the same transaction waits,
          then fails with a serialization error (Odoo's REPEATABLE READ) and is retried or dropped by its
          caller, so one payment is created and the paid hook credits the ledger once (its idempotency key
          is UNIQUE anyway); a transaction found post-processed once the lock is taken is skipped;
        - a top-up cancelled after an error whose transaction the provider then confirms is invoiced again,
          so the money received is credited;
        - a cancelled or failed transaction cancels its top-up and invoice unless another transaction may
          still pay it (nothing half-made stays posted)."""
        topups = self._prepaid_portal_topups()
        if not topups:
            return super()._post_process()
        self.env.cr.execute(
            SQL("SELECT id FROM payment_transaction WHERE id IN %s FOR UPDATE", tuple(self.ids))
        )
        self.invalidate_recordset()
        # What another post-processing finished while this one waited for the lock is left alone: running it
        # again would only repeat its messages (and its writes would make the next waiter fail again).
        if all(tx.is_post_processed for tx in self):
            return None
        self = self.filtered(lambda tx: not tx.is_post_processed)
        done_invoices = self.filtered(lambda tx: tx.state == "done").invoice_ids
        topups.filtered(
            lambda t: t.state == "cancelled" and t.invoice_id in done_invoices
        )._prepaid_portal_revive()
        result = super()._post_process()
        for tx in self:
            tx_topups = topups.filtered(lambda t, tx=tx: t.invoice_id in tx.invoice_ids)
            if tx.state in ("cancel", "error"):
                tx_topups._prepaid_portal_cancel_unpaid()
            elif tx.state == "done" and tx.payment_id:
                for topup in tx_topups.filtered(lambda t: not t.payment_id):
                    internal(topup).write(
                        {"payment_id": tx.payment_id.id, "journal_id": tx.provider_id.journal_id.id}
                    )
        return result
