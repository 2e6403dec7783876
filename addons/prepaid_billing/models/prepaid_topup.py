import logging

from odoo import Command, api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import internal
from odoo.exceptions import UserError, ValidationError

_logger = logging.getLogger(__name__)

CHANNEL_SELECTION = [("cashier", "Cashier"), ("portal", "Portal")]
STATE_SELECTION = [
    ("draft", "Draft"),
    ("invoiced", "Awaiting Payment"),
    ("done", "Credited"),
    ("reversed", "Reversed"),
    ("cancelled", "Cancelled"),
]
# Accounts that can receive money.
FUNDABLE_STATES = ("open", "suspended")
# Everything a top-up holds is written by the suite's own actions (the cashier wizard, the portal, the paid
# hook, the reversal), never by a raw create or write.
TOPUP_FIELDS = (
    "name",
    "account_id",
    "amount",
    "journal_id",
    "channel",
    "memo",
    "date",
    "user_id",
    "state",
    "invoice_id",
    "payment_id",
    "ledger_id",
    "meter_id",
    "command_id",
    "reversal_move_id",
    "reversal_payment_id",
    "reversal_ledger_id",
    "reversal_reason",
)
# Receipt layouts (res.company.prepaid_receipt_layout) and their reports.
RECEIPT_REPORTS = {
    "ticket": "prepaid_billing.action_report_prepaid_topup_ticket",
    "a4": "prepaid_billing.action_report_prepaid_topup",
}


def topup_ledger_key(move):
    """Idempotency key of the ledger credit of a paid top-up invoice."""
    return f"topup:{move.id}"


class PrepaidTopup(models.Model):
    """One top-up of a prepaid account, whatever the channel: a "Prepaid credit" invoice paid and reconciled
    in Odoo accounting, credited to the ledger exactly once when the invoice is paid
    (``_invoice_paid_hook``)."""

    _name = "prepaid.topup"
    _description = "Prepaid Top-up"
    _inherit = ["prepaid.guard.mixin", "mail.thread"]
    _prepaid_internal_create = True
    _prepaid_protected_fields = TOPUP_FIELDS
    _order = "date desc, id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Number", required=True, copy=False, readonly=True, default=lambda self: self.env._("New")
    )
    account_id = fields.Many2one(
        "prepaid.account",
        string="Prepaid Account",
        required=True,
        index=True,
        check_company=True,
        readonly=True,
    )
    partner_id = fields.Many2one(related="account_id.partner_id", store=True, string="Tenant")
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="account_id.currency_id", store=True, string="Currency")
    amount = fields.Monetary(required=True, readonly=True, tracking=True)
    journal_id = fields.Many2one(
        "account.journal",
        string="Payment Journal",
        check_company=True,
        readonly=True,
        domain="[('type', 'in', ('cash', 'bank'))]",
        help="Where the money was taken: cash, bank, card terminal, WeChat Pay, Alipay...",
    )
    channel = fields.Selection(CHANNEL_SELECTION, required=True, default="cashier", readonly=True)
    memo = fields.Char(readonly=True)
    date = fields.Datetime(required=True, default=fields.Datetime.now, readonly=True, index=True)
    user_id = fields.Many2one(
        "res.users", string="Cashier", default=lambda self: self.env.user, readonly=True
    )
    state = fields.Selection(STATE_SELECTION, required=True, default="draft", readonly=True, tracking=True)
    invoice_id = fields.Many2one("account.move", readonly=True, copy=False, index="btree_not_null")
    payment_id = fields.Many2one("account.payment", readonly=True, copy=False)
    ledger_id = fields.Many2one("prepaid.ledger", string="Ledger Line", readonly=True, copy=False)
    meter_id = fields.Many2one(
        "prepaid.meter",
        string="Recharged Meter",
        readonly=True,
        check_company=True,
        help="Meter-side billing: the meter this money is sent to as a recharge command.",
    )
    command_id = fields.Many2one(
        "prepaid.meter.command", string="Recharge Command", readonly=True, copy=False
    )
    reversal_move_id = fields.Many2one("account.move", string="Credit Note", readonly=True, copy=False)
    reversal_payment_id = fields.Many2one(
        "account.payment", string="Refund Payment", readonly=True, copy=False
    )
    reversal_ledger_id = fields.Many2one("prepaid.ledger", string="Reversal Line", readonly=True, copy=False)
    reversal_reason = fields.Char(readonly=True, copy=False)

    _sql_constraints = [
        ("amount_positive", "CHECK(amount > 0)", "A top-up amount must be positive."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if not vals.get("name") or vals["name"] == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code("prepaid.topup") or self.env._("New")
        topups = super().create(vals_list)
        topups._check_fundable()
        return topups

    def _check_fundable(self):
        for topup in self:
            if topup.account_id.state not in FUNDABLE_STATES:
                raise UserError(
                    self.env._(
                        "Account %(account)s cannot be topped up: it is not open.",
                        account=topup.account_id.name,
                    )
                )
            if topup.meter_id and (
                topup.meter_id.account_id != topup.account_id or topup.meter_id.billing_mode != "meter"
            ):
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s is not a meter-side billing meter of account %(account)s.",
                        meter=topup.meter_id.display_name,
                        account=topup.account_id.name,
                    )
                )

    # ------------------------------------------------------------------ invoice and payment

    def _prepare_invoice_vals(self):
        """The "Prepaid credit" invoice of this top-up (no tax unless the product carries one)."""
        self.ensure_one()
        company = self.company_id
        product = company.prepaid_topup_product_id
        taxes = product.taxes_id.filtered_domain(self.env["account.tax"]._check_company_domain(company))
        return {
            "move_type": "out_invoice",
            "partner_id": self.partner_id.id,
            "company_id": company.id,
            "currency_id": self.currency_id.id,
            "invoice_date": fields.Date.context_today(self),
            "ref": self.name,
            "narration": self.memo or False,
            "invoice_line_ids": [
                Command.create(
                    {
                        "product_id": product.id,
                        "name": self.env._(
                            "Prepaid credit for %(account)s (%(topup)s)",
                            account=self.account_id.name,
                            topup=self.name,
                        ),
                        "quantity": 1.0,
                        "price_unit": self.amount,
                        "account_id": company.prepaid_deposit_account_id.id,
                        "tax_ids": [Command.set(taxes.ids)],
                    }
                )
            ],
        }

    def _create_invoice(self):
        """Create and post the top-up invoice of each draft top-up."""
        for topup in self:
            if topup.state != "draft":
                raise UserError(self.env._("Top-up %(topup)s is already invoiced.", topup=topup.name))
            topup.company_id._prepaid_ensure_setup()
            invoice = (
                self.env["account.move"]
                .sudo()
                .with_company(topup.company_id)
                .create([topup._prepare_invoice_vals()])
            )
            invoice.action_post()
            internal(topup).write({"invoice_id": invoice.id, "state": "invoiced"})
        return self.invoice_id

    def _register_payment(self):
        """Pay each invoiced top-up through its payment journal (``account.payment.register``): the payment
        reconciles the invoice, which fires ``_invoice_paid_hook`` and credits the ledger."""
        for topup in self:
            if topup.state != "invoiced" or not topup.journal_id:
                raise UserError(
                    self.env._(
                        "Top-up %(topup)s has no invoice to pay or no payment journal.", topup=topup.name
                    )
                )
            wizard = (
                self.env["account.payment.register"]
                .sudo()
                .with_company(topup.company_id)
                .with_context(active_model="account.move", active_ids=topup.invoice_id.ids)
                .create(
                    {
                        "journal_id": topup.journal_id.id,
                        "amount": topup.invoice_id.amount_residual,
                        "payment_date": topup.invoice_id.invoice_date,
                        "communication": topup.memo or topup.name,
                    }
                )
            )
            payment = wizard._create_payments()
            internal(topup).write({"payment_id": payment[:1].id})
        return self.payment_id

    @api.private
    def action_confirm(self):
        """Cashier flow: invoice, pay and reconcile (the paid hook credits the ledger)."""
        self._create_invoice()
        self._register_payment()
        not_credited = self.filtered(lambda t: t.state != "done")
        if not_credited:
            raise UserError(
                self.env._(
                    "The payment of %(topups)s did not settle the invoice: nothing was credited.",
                    topups=", ".join(not_credited.mapped("name")),
                )
            )
        return True

    # ------------------------------------------------------------------ ledger

    @api.model
    @api.private
    def _credit_paid_invoices(self, moves):
        """Credit the ledger for the top-ups of ``moves`` whose invoice is paid. Idempotent: the ledger key is
        ``topup:<move id>`` (UNIQUE in the database) and a credited top-up is left alone, so the paid hook
        firing twice (in payment, then paid) credits once."""
        paid = moves.filtered(
            lambda m: m.move_type == "out_invoice" and m.payment_state in ("paid", "in_payment")
        )
        if not paid:
            return self.browse()
        topups = self.sudo().search([("invoice_id", "in", paid.ids), ("state", "=", "invoiced")])
        if not topups:
            return topups
        Account = self.env["prepaid.account"].sudo()
        vals_list = [topup._prepare_ledger_vals() for topup in topups]
        lines = Account._post_ledger(vals_list)
        line_of = {line.idempotency_key: line for line in lines}
        credited = self.browse()
        for topup in topups:
            line = line_of.get(topup_ledger_key(topup.invoice_id))
            if not line:
                # The invoice put nothing on the deposit account (edited after posting?): nothing to credit;
                # the payment goes through and the top-up says why it was not credited.
                _logger.error(
                    "top-up %s: invoice %s credits no prepaid deposit", topup.name, topup.invoice_id.name
                )
                topup._message_log(
                    body=self.env._(
                        "Invoice %(invoice)s was paid but puts nothing on the prepaid deposit account: "
                        "nothing was credited.",
                        invoice=topup.invoice_id.name,
                    )
                )
                continue
            internal(topup).write({"state": "done", "ledger_id": line.id})
            credited |= topup
        credited._send_meter_recharges()
        return credited

    def _prepare_ledger_vals(self):
        """The ledger credit of this top-up: what the invoice put on the deposit account for it."""
        self.ensure_one()
        invoice = self.invoice_id
        deposit = self.company_id.prepaid_deposit_account_id
        credited = -sum(invoice.line_ids.filtered(lambda line: line.account_id == deposit).mapped("balance"))
        return {
            "account_id": self.account_id.id,
            "kind": "topup",
            "amount": self.currency_id.round(credited),
            "idempotency_key": topup_ledger_key(invoice),
            "date": self.date,
            "res_model": self._name,
            "res_id": self.id,
        }

    def _send_meter_recharges(self):
        """Meter-side billing: send the credited money to the meter as a recharge (next purchase count)."""
        Command_ = self.env["prepaid.meter.command"].sudo()
        for topup in self.filtered(lambda t: t.meter_id and not t.command_id):
            internal(topup).command_id = Command_._enqueue(
                [
                    {
                        "meter_id": topup.meter_id.id,
                        "kind": "recharge",
                        "amount": topup.ledger_id.amount,
                        "purchase_count": topup.meter_id._prepaid_next_purchase_count(),
                        "reason": "automatic",
                        "res_model": self._name,
                        "res_id": topup.id,
                        "origin": topup.name,
                    }
                ],
                urgent=True,
            )

    # ------------------------------------------------------------------ reversal

    def _check_reversible(self):
        """Raise unless this top-up can be reversed cleanly: credited, the last one of its account, covered by
        the balance, and (meter-side billing) its recharge never reached the meter."""
        self.ensure_one()
        account = self.account_id
        if self.state != "done":
            raise UserError(
                self.env._("Only a credited top-up can be reversed (%(topup)s).", topup=self.name)
            )
        last = account._prepaid_last_topup()
        if last != self:
            raise UserError(
                self.env._(
                    "Only the last top-up of %(account)s can be reversed, which is %(last)s.",
                    account=account.name,
                    last=last.name,
                )
            )
        if account.state not in FUNDABLE_STATES:
            raise UserError(self.env._("Account %(account)s is not open.", account=account.name))
        if account.currency_id.compare_amounts(account.balance, self.ledger_id.amount) < 0:
            raise UserError(
                self.env._(
                    "The balance of %(account)s (%(balance)s) no longer covers top-up %(topup)s "
                    "(%(amount)s): part of it was already spent. Refund what is left instead.",
                    account=account.name,
                    balance=account.currency_id.format(account.balance),
                    topup=self.name,
                    amount=account.currency_id.format(self.ledger_id.amount),
                )
            )
        command = self.command_id
        if command:
            meter_saw_it = command.state in ("done", "sent") or (
                command.state == "failed" and command.meter_id.purchase_count >= command.purchase_count
            )
            if meter_saw_it:
                raise UserError(
                    self.env._(
                        "Top-up %(topup)s was already sent to meter %(meter)s (recharge %(command)s, "
                        "purchase %(count)s). A meter only accepts positive recharges: refund the tenant "
                        "from the meter's balance instead.",
                        topup=self.name,
                        meter=command.meter_id.display_name,
                        command=command.name,
                        count=command.purchase_count,
                    )
                )

    @api.private
    def _reverse(self, journal=None, reason=None):
        """Reverse this top-up: a credit note reversing its invoice, an outbound payment giving the money back
        (reconciled with the credit note) and a ledger reversal line (``reversal:<top-up id>``). A recharge
        still waiting for the meter is cancelled. Everything in one transaction."""
        self.ensure_one()
        self._check_reversible()
        journal = journal or self.journal_id
        if self.command_id.state == "queued":
            self.command_id.sudo().action_cancel()
        invoice = self.invoice_id.sudo()
        refund = invoice._reverse_moves(
            default_values_list=[
                {
                    "ref": self.env._(
                        "Reversal of %(topup)s: %(reason)s", topup=self.name, reason=reason or "-"
                    ),
                    "invoice_date": fields.Date.context_today(self),
                    "date": fields.Date.context_today(self),
                }
            ]
        )
        refund.action_post()
        payment = self._pay_refund(refund, journal, reason or self.name)
        line = (
            self.env["prepaid.account"]
            .sudo()
            ._post_ledger(
                [
                    {
                        "account_id": self.account_id.id,
                        "kind": "reversal",
                        "amount": -self.ledger_id.amount,
                        "idempotency_key": f"reversal:{self.id}",
                        "res_model": self._name,
                        "res_id": self.id,
                    }
                ]
            )
        )
        internal(self).write(
            {
                "state": "reversed",
                "reversal_move_id": refund.id,
                "reversal_payment_id": payment.id,
                "reversal_ledger_id": line.id,
                "reversal_reason": reason,
            }
        )
        self._message_log(
            body=self.env._(
                "Reversed by %(user)s: credit note %(refund)s, refund payment %(payment)s.",
                user=self.env.user.name,
                refund=refund.name,
                payment=payment.name,
            )
        )
        return refund

    @api.model
    def _pay_refund(self, refund, journal, memo):
        """Pay a posted credit note back through ``journal`` (an outbound payment reconciled with it)."""
        wizard = (
            self.env["account.payment.register"]
            .sudo()
            .with_company(refund.company_id)
            .with_context(active_model="account.move", active_ids=refund.ids)
            .create(
                {
                    "journal_id": journal.id,
                    "amount": refund.amount_residual,
                    "payment_date": refund.invoice_date,
                    "communication": memo,
                }
            )
        )
        return wizard._create_payments()[:1]

    # ------------------------------------------------------------------ buttons

    def _receipt_action(self, layout):
        """Download the receipts of ``self`` in ``layout`` (a key of RECEIPT_REPORTS). ``config=False``: a
        receipt draws its own company header, so Odoo's "Configure your document layout" dialog (shown to
        administrators of a company without a document layout) never stands between the cashier and the
        download; the top-up dialog closes once the file is downloaded."""
        report = self.env.ref(RECEIPT_REPORTS[layout])
        action = report.report_action(self, config=False)
        action["close_on_report_download"] = True
        return action

    def action_print_receipt(self):
        """The receipt in the layout the company prints by default (Settings > Prepaid Cashier)."""
        return self._receipt_action(self.company_id[:1].prepaid_receipt_layout or "ticket")

    def action_print_ticket(self):
        return self._receipt_action("ticket")

    def action_print_a4(self):
        return self._receipt_action("a4")

    def action_view_invoice(self):
        self.ensure_one()
        self.check_access("read")
        return self.invoice_id._get_records_action()
