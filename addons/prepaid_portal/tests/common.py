from odoo import Command
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.addons.prepaid_billing.tests.common import BillingCommon
from odoo.tests import new_test_user

CODE = "24681357"


class PortalCommon(BillingCommon):
    """Billing's company and accounts, a binding code on account 1, two portal users who are nobody's
    tenant yet, and Odoo's demo payment provider enabled for the company."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company_vals = {"company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)]}
        cls.alice = new_test_user(
            cls.env, login="pp_alice", groups="base.group_portal", name="Alice Portal", **company_vals
        )
        cls.bob = new_test_user(
            cls.env, login="pp_bob", groups="base.group_portal", name="Bob Portal", **company_vals
        )
        internal(cls.account_1).write({"portal_code": CODE})
        cls.account_2.action_generate_portal_code()
        # Odoo's demo provider, for this test company (providers are per company).
        cls.provider = (
            cls.env.ref("payment.payment_provider_demo")
            .sudo()
            .copy({"company_id": cls.company.id, "state": "test", "is_published": True})
        )
        cls.provider.journal_id = cls.company_data["default_journal_bank"]
        cls.post(cls, cls.account_1, 5.0, "pp:opening", kind="opening")

    def bind(self, user, account, code=None):
        return self.env["prepaid.account"]._prepaid_portal_bind(user, account.name, code=code or CODE)

    def portal_topup(self, user, account, amount):
        """A portal top-up as the route makes it: its invoice posted, waiting for the provider."""
        return self.env["prepaid.topup"].with_user(user).sudo()._prepaid_portal_create(account.sudo(), amount)

    def transaction(self, topup, state="draft"):
        """A demo transaction on the top-up's invoice, as the transaction route makes it."""
        tx = (
            self.env["payment.transaction"]
            .sudo()
            .create(
                {
                    "provider_id": self.provider.id,
                    "payment_method_id": self.env.ref("payment_demo.payment_method_demo").id,
                    "reference": f"PP-{topup.id}-{self.env['payment.transaction'].search_count([])}",
                    "amount": topup.invoice_id.amount_residual,
                    "currency_id": topup.currency_id.id,
                    "partner_id": topup.partner_id.id,
                    "operation": "online_direct",
                    "invoice_ids": [Command.set(topup.invoice_id.ids)],
                }
            )
        )
        if state != "draft":
            self.notify(tx, state)
        return tx

    def notify(self, tx, state):
        """What the provider's webhook does: the notification sets the state."""
        self.env["payment.transaction"].sudo()._handle_notification_data(
            "demo", {"reference": tx.reference, "simulated_state": state}
        )
