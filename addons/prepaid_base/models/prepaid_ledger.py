from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import create_index

from .prepaid_tariff import UTILITY_SELECTION

UNIT_OF_UTILITY = {"electricity": "kWh", "water": "m³"}
LEDGER_KINDS = [
    ("topup", "Top-up"),
    ("consumption", "Consumption"),
    ("fee", "Fee"),
    ("apportionment", "Apportionment"),
    ("reversal", "Reversal"),
    ("refund", "Refund"),
    ("adjustment", "Adjustment"),
    ("opening", "Opening Balance"),
]


class CopiedMany2one(fields.Many2one):
    """A stored Many2one without a foreign key of its own, for the suite's append-only tables of millions of
    rows written in bulk by our own code, where every foreign key costs a lookup and a row lock per inserted
    row. Only for a value that is a copy of a reference already checked elsewhere: a ledger line's tenant,
    company and currency are its account's (frozen while the account has lines), a reading's company and
    building are its meter's; the original cannot be deleted while it has rows (``ondelete='restrict'`` /
    ``'cascade'`` on the reference the copy comes from). Also the ledger's poster (``create_uid``), a copy of
    the posting transaction's user: users who worked are archived, not deleted."""

    def update_db_foreign_key(self, model, column):
        return None


class PrepaidLedger(models.Model):
    """One movement of a prepaid balance. Append-only: lines are written only by
    ``prepaid.account._post_ledger`` (with SQL, for one line and for a settlement batch alike) and never
    created through the ORM, changed or deleted (corrections are new lines).

    Sized for the settlement's hot path (one line per meter and interval, millions a day): a line is
    written once, so it keeps who posted it and when (``create_uid``, ``create_date``) but no
    ``write_uid``/``write_date`` (``_log_access`` off); the tenant, company and currency are copies of the
    account's (frozen while the account has lines) without foreign keys of their own
    (:class:`CopiedMany2one`, like the poster): the one foreign key checked per line is the account's
    (``ondelete='restrict'``)."""

    _name = "prepaid.ledger"
    _description = "Prepaid Ledger Line"
    # Posting order: the order balance_after runs in (a consumption line's date is its reading's time, which
    # can be earlier than lines posted before it).
    _order = "id desc"
    _rec_name = "idempotency_key"
    _allow_sudo_commands = False
    _log_access = False

    # Indexed by (account, date, id) in init(): the account's lines in order, and any search by account.
    account_id = fields.Many2one("prepaid.account", required=True, ondelete="restrict", readonly=True)
    partner_id = CopiedMany2one(related="account_id.partner_id", store=True, string="Tenant")
    company_id = CopiedMany2one(related="account_id.company_id", store=True)
    currency_id = CopiedMany2one(related="account_id.currency_id", store=True, string="Currency")
    create_uid = CopiedMany2one(
        "res.users", string="Created by", readonly=True, default=lambda self: self.env.uid
    )
    create_date = fields.Datetime(string="Created on", readonly=True, default=fields.Datetime.now)
    date = fields.Datetime(required=True, index=True, readonly=True, default=fields.Datetime.now)
    kind = fields.Selection(LEDGER_KINDS, required=True, readonly=True)
    amount = fields.Monetary(
        required=True, readonly=True, aggregator="sum", help="Credits are positive, deductions negative."
    )
    balance_after = fields.Monetary(readonly=True, aggregator=None)
    idempotency_key = fields.Char(
        required=True,
        readonly=True,
        help="Unique key of the event this line books: posting the same event twice books it once.",
    )
    period = fields.Integer(string="Ledger Period", readonly=True, aggregator=None)
    description = fields.Char(
        string="Note", readonly=True, help="Free text given with the line (an opening balance's origin...)."
    )
    quantity = fields.Float(
        digits=(16, 3), readonly=True, aggregator="sum", help="Consumption: the energy or water it charges."
    )
    label = fields.Char(
        string="Description",
        compute="_compute_label",
        help="What the line books, in your language: the utility and quantity of a consumption, the document "
        "of a top-up, reversal or refund.",
    )
    utility = fields.Selection(UTILITY_SELECTION, readonly=True)
    res_model = fields.Char(string="Source Model", readonly=True)
    res_id = fields.Many2oneReference(string="Source ID", model_field="res_model", readonly=True)
    source_ref = fields.Reference(
        selection="_selection_source_model", string="Source Document", compute="_compute_source_ref"
    )

    _sql_constraints = [
        (
            "idempotency_key_uniq",
            "UNIQUE(idempotency_key)",
            "This event is already booked in a prepaid ledger (same idempotency key).",
        ),
        ("amount_not_zero", "CHECK(amount <> 0)", "A ledger line cannot have a zero amount."),
    ]

    def init(self):
        res = super().init()
        # "Latest lines of an account" (account form, portal) reads this index in order.
        create_index(
            self.env.cr,
            indexname="prepaid_ledger_account_id_idx",
            tablename=self._table,
            expressions=["account_id", "id DESC"],
        )
        return res

    @api.model
    def _selection_source_model(self):
        return [(model.model, model.name) for model in self.env["ir.model"].sudo().search([])]

    @api.depends("res_model", "res_id")
    def _compute_source_ref(self):
        for line in self:
            if line.res_model and line.res_id and line.res_model in self.env:
                line.source_ref = f"{line.res_model},{line.res_id}"
            else:
                line.source_ref = False

    @api.depends("kind", "utility", "quantity", "description", "res_model", "res_id")
    @api.depends_context("lang")
    def _compute_label(self):
        """The line's description in the reader's language, from what the line holds (not a text written in
        the poster's language): ``Electricity 1.250 kWh``, ``Top-up TP/2026/00027``, else its note or kind."""
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        utilities = dict(self._fields["utility"]._description_selection(self.env))
        documents = {}
        for model, lines in (
            self.filtered(lambda line: line.res_model and line.res_id).grouped("res_model").items()
        ):
            if model in self.env:
                sources = self.env[model].sudo().browse(lines.mapped("res_id")).exists()
                documents.update({(model, source.id): source.display_name for source in sources})
        for line in self:
            document = documents.get((line.res_model, line.res_id))
            if line.kind == "consumption" and line.utility and line.quantity:
                quantity = format(line.quantity, ".3f")  # not an f-string in the call: Babel reads the call
                label = self.env._(
                    "%(utility)s %(quantity)s %(unit)s",
                    utility=utilities.get(line.utility, line.utility),
                    quantity=quantity,
                    unit=UNIT_OF_UTILITY.get(line.utility, ""),
                )
            elif document and line.res_model == "prepaid.meter.command":
                # Meter-side billing: the money of a top-up left for the meter as a recharge.
                label = self.env._("Sent to the meter: %(document)s", document=document)
            elif document and line.res_model != "prepaid.meter":
                label = self.env._(
                    "%(kind)s %(document)s", kind=kinds.get(line.kind, line.kind), document=document
                )
            else:
                label = line.description or kinds.get(line.kind, line.kind)
            line.label = label

    @api.depends("account_id", "label")
    @api.depends_context("lang")
    def _compute_display_name(self):
        for line in self:
            line.display_name = f"{line.account_id.name} {line.label}"

    @api.model_create_multi
    # No ORM create, ever: lines are posted by prepaid.account._post_ledger.
    def create(self, vals_list):  # pylint: disable=method-required-super
        raise AccessError(self.env._("Ledger lines are posted through the prepaid account, not created."))

    def write(self, vals):
        if self:
            raise AccessError(self.env._("Ledger lines cannot be changed: post a correcting line instead."))
        return super().write(vals)

    @api.ondelete(at_uninstall=True)
    def _unlink_never(self):
        raise AccessError(self.env._("Ledger lines cannot be deleted: post a correcting line instead."))
