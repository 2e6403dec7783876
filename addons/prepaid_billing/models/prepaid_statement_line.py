from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_internal
from odoo.addons.prepaid_base.models.prepaid_ledger import LEDGER_KINDS
from odoo.addons.prepaid_base.models.prepaid_tariff import UTILITY_SELECTION
from odoo.addons.prepaid_base.tools.bulk_sql import insert_rows
from odoo.exceptions import AccessError

from prepaid_engine.billing.statement import EntryKind

from .prepaid_statement import BAND_SELECTION

LINE_FIELDS = (
    "statement_id",
    "kind",
    "utility",
    "band",
    "date",
    "ledger_id",
    "ledger_count",
    "quantity",
    "amount",
)
_KIND_ORDER = {kind: index for index, kind in enumerate(EntryKind)}
_UTILITY_ORDER = {"electricity": 1, "water": 2}


def line_sequence(kind, utility, band):
    """Sections in the engine's order; a utility's band rows right after its total."""
    return _KIND_ORDER.get(kind, 99) * 100 + _UTILITY_ORDER.get(utility, 0) * 10 + (1 if band else 0)


class PrepaidStatementLine(models.Model):
    """One row of a statement: a ledger line (top-up, fee, apportioned share, refund...) or, for consumption,
    the total of a utility's lines (``ledger_count`` of them, reachable with the statement's ledger domain)
    and its split per time-of-use band from the daily facts (``band`` set, no amount)."""

    _name = "prepaid.statement.line"
    _description = "Prepaid Statement Line"
    _inherit = ["prepaid.guard.mixin"]
    _prepaid_internal_create = True
    _order = "statement_id, sequence, id"
    _log_access = False

    statement_id = fields.Many2one("prepaid.statement", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(compute="_compute_sequence", store=True)
    currency_id = fields.Many2one(related="statement_id.currency_id")
    kind = fields.Selection(LEDGER_KINDS, required=True)
    utility = fields.Selection(UTILITY_SELECTION)
    band = fields.Selection(BAND_SELECTION)
    date = fields.Datetime()
    ledger_id = fields.Many2one(
        "prepaid.ledger", string="Ledger Line", ondelete="restrict", index="btree_not_null"
    )
    ledger_count = fields.Integer(string="Ledger Lines")
    quantity = fields.Float(digits=(16, 3))
    price = fields.Float(digits=(16, 4), compute="_compute_price")
    amount = fields.Monetary()
    label = fields.Char(string="Description", compute="_compute_label")

    @api.depends("kind", "utility", "band")
    def _compute_sequence(self):
        for line in self:
            line.sequence = line_sequence(line.kind, line.utility, line.band)

    @api.model
    @api.private
    def _insert_lines(self, vals_list):
        """Insert the lines of refreshed statements in one statement (what ``create`` would store)."""
        insert_rows(
            self,
            (*LINE_FIELDS, "sequence"),
            [
                (
                    *(vals.get(fname) for fname in LINE_FIELDS),
                    line_sequence(vals.get("kind"), vals.get("utility"), vals.get("band")),
                )
                for vals in vals_list
            ],
            returning=("id",),
        )

    @api.depends("quantity", "amount", "band")
    def _compute_price(self):
        for line in self:
            line.price = -line.amount / line.quantity if line.quantity and not line.band else 0.0

    @api.depends("kind", "utility", "band", "ledger_id")
    @api.depends_context("lang")
    def _compute_label(self):
        utilities = dict(self._fields["utility"]._description_selection(self.env))
        bands = dict(self._fields["band"]._description_selection(self.env))
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for line in self:
            if line.band:
                line.label = bands.get(line.band)
            elif line.kind == "consumption":
                line.label = utilities.get(line.utility, line.utility)
            elif line.ledger_id:
                line.label = line.ledger_id.sudo().label
            else:
                line.label = kinds.get(line.kind)

    def write(self, vals):
        if not is_internal(self.env):
            raise AccessError(self.env._("Statements are computed from the ledger, they cannot be edited."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        if not is_internal(self.env) and not self.env.su:
            raise AccessError(self.env._("Statements cannot be deleted."))

    def action_view_ledger(self):
        """The ledger lines this row shows (its own, or the utility's consumption lines)."""
        self.ensure_one()
        self.check_access("read")
        domain = self.statement_id._ledger_domain()
        if self.ledger_id:
            domain = [("id", "=", self.ledger_id.id)]
        else:
            domain += [("kind", "=", self.kind)] + ([("utility", "=", self.utility)] if self.utility else [])
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_base.prepaid_ledger_action")
        action.update({"domain": domain, "context": {"create": False}})
        return action
