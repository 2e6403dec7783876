import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal

_logger = logging.getLogger(__name__)

# Transaction states that may still pay a top-up's invoice.
LIVE_TX_STATES = ("draft", "pending", "authorized", "done")
# A portal top-up whose payment was never even started is cancelled after this long.
ABANDONED_AFTER = timedelta(hours=24)


class PrepaidTopup(models.Model):
    _inherit = "prepaid.topup"

    @api.model
    def _prepaid_portal_create(self, account, amount, meter=None):
        """A portal top-up of ``amount`` for ``account`` (sudo, ownership already checked), its invoice
        posted and waiting for the payment provider. An unpaid portal top-up of the same account, amount and
        meter whose payment never started is reused instead of making another invoice."""
        account.ensure_one()
        Topup = self.sudo()
        reusable = Topup.search(
            [
                ("account_id", "=", account.id),
                ("channel", "=", "portal"),
                ("state", "=", "invoiced"),
                ("meter_id", "=", meter.id if meter else False),
                ("user_id", "=", self.env.uid),
            ],
            order="id desc",
        ).filtered(
            lambda t: (
                account.currency_id.compare_amounts(t.amount, amount) == 0
                and t.invoice_id.payment_state == "not_paid"
                and not t.invoice_id.transaction_ids.filtered(lambda tx: tx.state in LIVE_TX_STATES[1:])
            )
        )
        if reusable:
            return reusable[0]
        topup = internal(Topup).create(
            [
                {
                    "account_id": account.id,
                    "amount": amount,
                    "channel": "portal",
                    "meter_id": meter.id if meter else False,
                    "memo": self.env._("Online recharge"),
                    "user_id": self.env.uid,
                }
            ]
        )
        topup._create_invoice()
        return topup

    def _prepaid_portal_cancel_unpaid(self):
        """Cancel the portal top-ups of ``self`` whose invoice nothing pays: no transaction still live on it
        and nothing received. Their invoices are cancelled (nothing half-made stays posted)."""
        cancelled = self.browse()
        for topup in self.sudo().filtered(lambda t: t.channel == "portal" and t.state == "invoiced"):
            invoice = topup.invoice_id
            if invoice.payment_state != "not_paid" or invoice.transaction_ids.filtered(
                lambda tx: tx.state in LIVE_TX_STATES[1:]
            ):
                continue
            if invoice.state == "posted":
                invoice.button_draft()
            if invoice.state == "draft":
                invoice.button_cancel()
            internal(topup).write({"state": "cancelled"})
            topup._message_log(body=self.env._("Online payment not completed: top-up and invoice cancelled."))
            cancelled |= topup
        return cancelled

    def _prepaid_portal_revive(self):
        """A payment the provider confirmed after the top-up was cancelled (an error that turned into done):
        the same invoice is posted again so the payment pays it and the ledger is credited."""
        for topup in self.sudo().filtered(lambda t: t.channel == "portal" and t.state == "cancelled"):
            invoice = topup.invoice_id
            if invoice.state == "cancel":
                invoice.button_draft()
            if invoice.state == "draft":
                invoice.action_post()
            internal(topup).write({"state": "invoiced"})
            topup._message_log(body=self.env._("Online payment confirmed late: top-up invoiced again."))
        return True

    @api.model
    def _cron_prepaid_portal_cleanup(self):
        """Cancel portal top-ups left waiting: their payment was never started, or every attempt failed."""
        stale = self.sudo().search(
            [
                ("channel", "=", "portal"),
                ("state", "=", "invoiced"),
                ("date", "<", fields.Datetime.now() - ABANDONED_AFTER),
            ]
        )
        cancelled = stale._prepaid_portal_cancel_unpaid()
        if cancelled:
            _logger.info("cancelled %s abandoned portal top-ups", len(cancelled))
        return True
