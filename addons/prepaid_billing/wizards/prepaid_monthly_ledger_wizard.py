from datetime import date

from dateutil.relativedelta import relativedelta
from odoo import fields, models


def _default_month(_self):
    return date.today().replace(day=1) - relativedelta(months=1)


class PrepaidMonthlyLedgerWizard(models.TransientModel):
    """Managers: generate (or refresh the drafts of) the monthly ledgers of a month for some buildings."""

    _name = "prepaid.monthly.ledger.wizard"
    _description = "Generate Monthly Ledgers"

    month = fields.Date(
        required=True,
        default=_default_month,
        help="Any day of the month: its settlement cycle is the ledger's.",
    )
    building_ids = fields.Many2many(
        "prepaid.property",
        string="Buildings",
        domain="[('kind', '=', 'building')]",
        help="Leave empty for every building with accounts.",
    )

    def action_generate(self):
        self.ensure_one()
        Ledger = self.env["prepaid.monthly.ledger"]
        Ledger._prepaid_check_manager()
        buildings = self.building_ids or Ledger._buildings_with_accounts()
        buildings.check_access("read")
        ledgers = Ledger._generate(buildings, self.month.year, self.month.month)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Monthly Ledger"),
            "res_model": "prepaid.monthly.ledger",
            "view_mode": "list,form",
            "domain": [("id", "in", ledgers.ids)],
        }
