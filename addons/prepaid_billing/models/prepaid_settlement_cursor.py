from odoo import fields, models
from odoo.tools import SQL

# Every settlement rewrites each cursor row: room in each page lets PostgreSQL update it in place (HOT
# update, no index entry to add) instead of moving it.
CURSOR_FILLFACTOR = 50


class PrepaidSettlementCursor(models.Model):
    """Where a meter's settlement stands: the last settled reading (time and registers) and the rating
    engine's cycle state (consumption and exact charge so far in the cycle). One row per meter, written in
    bulk by the settlement in the same transaction as the ledger lines it books."""

    _name = "prepaid.settlement.cursor"
    _description = "Settlement Cursor"
    _order = "meter_id"
    _rec_name = "meter_id"
    _log_access = False

    meter_id = fields.Many2one("prepaid.meter", required=True, ondelete="cascade", readonly=True)
    company_id = fields.Many2one(related="meter_id.company_id")
    read_at = fields.Datetime(string="Settled Until", readonly=True, help="Time of the last settled reading.")
    total = fields.Float(string="Index", digits=(16, 3), readonly=True)
    sharp = fields.Float(digits=(16, 3), readonly=True)
    peak = fields.Float(digits=(16, 3), readonly=True)
    flat = fields.Float(digits=(16, 3), readonly=True)
    valley = fields.Float(digits=(16, 3), readonly=True)
    # The rating engine's cycle state, exactly (numeric columns, read back as text by the settlement).
    cycle_start = fields.Datetime(readonly=True)
    cycle_quantity = fields.Float(string="Cycle Consumption", digits=(16, 3), readonly=True)
    cycle_sharp = fields.Float(digits=(16, 3), readonly=True)
    cycle_peak = fields.Float(digits=(16, 3), readonly=True)
    cycle_flat = fields.Float(digits=(16, 3), readonly=True)
    cycle_valley = fields.Float(digits=(16, 3), readonly=True)
    cycle_exact = fields.Float(
        string="Cycle Charge (Exact)",
        digits=(16, 6),
        readonly=True,
        help="Unrounded charge of the cycle so far.",
    )
    cycle_amount = fields.Float(string="Cycle Charge", digits=(16, 2), readonly=True)
    unbilled_quantity = fields.Float(
        digits=(16, 3),
        readonly=True,
        help="Consumption settled without a charge: no open account, or the meter bills itself.",
    )
    settled_at = fields.Datetime(readonly=True)
    attempted_at = fields.Datetime(
        readonly=True, help="The meter's last reading time when the settlement last looked at it."
    )
    last_error = fields.Char(readonly=True, help="Why the last settlement of this meter charged nothing.")

    _sql_constraints = [
        ("meter_uniq", "UNIQUE(meter_id)", "A meter has one settlement cursor."),
    ]

    def init(self):
        res = super().init()
        self.env.cr.execute(
            SQL("ALTER TABLE %s SET (fillfactor = %s)", SQL.identifier(self._table), CURSOR_FILLFACTOR)
        )
        return res
