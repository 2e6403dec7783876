from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_guard import is_internal
from odoo.exceptions import AccessError

from prepaid_engine.billing.monthly import FIGURES

# Line fields that carry the engine's figures (same names as prepaid_engine.billing.monthly.AccountFigures).
LINE_FIGURES = FIGURES


def percent_label(env, percent, none):
    """``+12.5 %``, ``-3.0 %``, or ``new`` when last month had nothing (the engine's None)."""
    if none:
        return env._("new")
    return f"{percent:+.1f} %"


class PrepaidMonthlyLedgerFigures(models.AbstractModel):
    """The figures of a monthly ledger: one tenant account's on a line, their totals on the ledger (the same
    names as :data:`prepaid_engine.billing.monthly.FIGURES`). Defined here, before both models that inherit
    it: the ledger's module imports this one first."""

    _name = "prepaid.monthly.ledger.figures"
    _description = "Monthly Ledger Figures"

    currency_id = fields.Many2one("res.currency")
    electricity_quantity = fields.Float(string="Electricity (kWh)", digits=(16, 3), readonly=True)
    previous_electricity_quantity = fields.Float(
        string="Electricity Last Month (kWh)", digits=(16, 3), readonly=True
    )
    electricity_difference = fields.Float(
        string="Electricity Difference (kWh)", digits=(16, 3), readonly=True
    )
    electricity_percent = fields.Float(string="Electricity Change (%)", digits=(16, 1), readonly=True)
    electricity_percent_none = fields.Boolean(string="Electricity New", readonly=True)
    electricity_amount = fields.Monetary(string="Electricity Charge", readonly=True)
    water_quantity = fields.Float(string="Water (m³)", digits=(16, 3), readonly=True)
    previous_water_quantity = fields.Float(string="Water Last Month (m³)", digits=(16, 3), readonly=True)
    water_difference = fields.Float(string="Water Difference (m³)", digits=(16, 3), readonly=True)
    water_percent = fields.Float(string="Water Change (%)", digits=(16, 1), readonly=True)
    water_percent_none = fields.Boolean(string="Water New", readonly=True)
    water_amount = fields.Monetary(string="Water Charge", readonly=True)
    apportionment = fields.Monetary(string="Apportioned Shares", readonly=True)
    fees = fields.Monetary(readonly=True)
    total = fields.Monetary(readonly=True, help="Electricity + water + apportioned shares + fees.")


class PrepaidMonthlyLedgerLine(models.Model):
    """One tenant account's month in a building's monthly ledger: what the ledger's generation computed from
    the daily consumption facts and the fee and apportionment ledger lines, frozen once the ledger is
    reviewed.
    Written only by the ledger (under the suite's internal sentinel), never by a user."""

    _name = "prepaid.monthly.ledger.line"
    _description = "Monthly Ledger Line"
    _inherit = ["prepaid.guard.mixin", "prepaid.monthly.ledger.figures"]
    _prepaid_internal_create = True
    _order = "ledger_id, sequence, id"
    _allow_sudo_commands = False

    ledger_id = fields.Many2one(
        "prepaid.monthly.ledger",
        string="Monthly Ledger",
        required=True,
        readonly=True,
        ondelete="cascade",
        index=True,
    )
    sequence = fields.Integer(readonly=True)
    company_id = fields.Many2one(related="ledger_id.company_id", store=True)
    currency_id = fields.Many2one(related="ledger_id.currency_id")
    account_id = fields.Many2one("prepaid.account", string="Prepaid Account", readonly=True, index=True)
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True)
    unit_names = fields.Char(string="Units", readonly=True)
    electricity_change = fields.Char(compute="_compute_changes")
    water_change = fields.Char(compute="_compute_changes")

    @api.depends("electricity_percent", "electricity_percent_none", "water_percent", "water_percent_none")
    @api.depends_context("lang")
    def _compute_changes(self):
        for line in self:
            line.electricity_change = percent_label(
                self.env, line.electricity_percent, line.electricity_percent_none
            )
            line.water_change = percent_label(self.env, line.water_percent, line.water_percent_none)

    def _prepaid_check_protected(self, vals_list, create=False):
        # The figures are computed, never typed: only the ledger's own refresh writes lines.
        if not is_internal(self.env) and any(vals_list):
            raise AccessError(
                self.env._("Monthly ledger lines are computed by the ledger, they cannot be changed by hand.")
            )
        return super()._prepaid_check_protected(vals_list, create=create)
