from odoo import models


class PrepaidMeterCommand(models.Model):
    _inherit = "prepaid.meter.command"

    def _after_execute(self):
        result = super()._after_execute()
        self._prepaid_book_recharges()
        self._prepaid_sync_batch_lines()
        return result

    def _prepaid_book_recharges(self):
        """Meter-side billing: once the meter confirmed a recharge of a top-up, the money has left the
        platform's wallet for the meter's: book it in the ledger as that utility's consumption
        (``recharge:<command id>``, recognised as revenue by the summary entries). The meter spends it
        itself; its own deductions are not in the ledger."""
        done = self.filtered(
            lambda c: (
                c.kind == "recharge" and c.state == "done" and c.res_model == "prepaid.topup" and c.amount > 0
            )
        )
        vals_list = []
        for command in done:
            account = command.meter_id.account_id
            if not account or account.state == "closed":
                continue
            vals_list.append(
                {
                    "account_id": account.id,
                    "kind": "consumption",
                    "amount": -command.amount,
                    "idempotency_key": f"recharge:{command.id}",
                    "utility": command.meter_id.utility,
                    "res_model": self._name,
                    "res_id": command.id,
                }
            )
        if vals_list:
            self.env["prepaid.account"].sudo()._post_ledger(vals_list)

    def _prepaid_sync_batch_lines(self):
        """The batch result lines of these commands follow their states (one query)."""
        lines = self.env["prepaid.batch.operation.line"].sudo().search([("command_id", "in", self.ids)])
        if lines:
            lines._sync_from_commands()
            lines.operation_id._update_state()
