from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_internal
from odoo.addons.prepaid_base.models.prepaid_ledger import LEDGER_KINDS
from odoo.addons.prepaid_base.models.prepaid_tariff import UTILITY_SELECTION
from odoo.exceptions import AccessError

from prepaid_engine.billing.statement import EntryKind

from .prepaid_statement import BAND_SELECTION


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
        """Sections in the engine's order; a utility's band rows right after its total."""
        order = {kind: index for index, kind in enumerate(EntryKind)}
        utilities = {"electricity": 1, "water": 2}
        for line in self:
            line.sequence = (
                order.get(line.kind, 99) * 100 + utilities.get(line.utility, 0) * 10 + (1 if line.band else 0)
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
