import logging

from odoo import api, fields, models
from odoo.addons.prepaid_base.tools.bulk_sql import copy_line, copy_to_temp, id_array
from odoo.tools import SQL

from prepaid_engine.rating import Band
from prepaid_engine.rating.daily import add_day_facts

_logger = logging.getLogger(__name__)

# The session temporary table a settlement batch COPYs its day facts into, then one upsert adds them.
FACTS_TABLE = "prepaid_consumption_bulk"
FACT_COLUMNS = (
    ("meter_id", "int"),
    ("account_id", "int"),
    ("day", "date"),
    ("company_id", "int"),
    ("utility", "varchar"),
    ("unit_id", "int"),
    ("building_id", "int"),
    ("quantity", "numeric"),
    ("sharp", "numeric"),
    ("peak", "numeric"),
    ("flat", "numeric"),
    ("valley", "numeric"),
    ("free_quantity", "numeric"),
    ("amount", "numeric"),
    ("intervals", "int"),
)
# What an upsert adds to a day that already has a fact.
ADDED = ("quantity", "sharp", "peak", "flat", "valley", "free_quantity", "amount", "intervals")
UNIQUE_INDEX = "prepaid_consumption_meter_account_day_uniq"


class PrepaidConsumption(models.Model):
    """What one meter consumed on one local day (in its property's time zone), and what it was charged there
    for one account: the daily fact the reports, statements and the portal read, never the raw readings.

    Written by the settlement in the same transaction as the ledger lines it adds up (one COPY and one
    upsert per batch: a day's fact grows with each batch), so the facts are exactly the settled consumption:
    settling again adds nothing (the readings are behind the cursor), and a deduction whose key was already
    booked adds nothing either. Consumption that nothing was charged for (a meter without an open account,
    meter-side billing) is there with an amount of zero and no account. Intervals count on the local day
    their end falls on. ``sharp`` .. ``valley`` are the quantities charged per time-of-use band (or the band
    registers' for other tariffs); ``free_quantity`` the free allowance used (outside the bands).

    Days settled before the facts existed are filled in by :meth:`_backfill` (from the readings and the
    ledger), once at installation and again on request."""

    _name = "prepaid.consumption"
    _description = "Daily Consumption"
    _order = "day desc, meter_id"
    _rec_name = "day"
    _log_access = False

    meter_id = fields.Many2one("prepaid.meter", required=True, readonly=True, ondelete="cascade", index=True)
    account_id = fields.Many2one(
        "prepaid.account", readonly=True, ondelete="set null", index="btree_not_null"
    )
    partner_id = fields.Many2one(related="account_id.partner_id", string="Tenant")
    day = fields.Date(required=True, readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    utility = fields.Selection(related="meter_id.utility", store=True, readonly=True)
    unit_id = fields.Many2one("prepaid.property", readonly=True, index="btree_not_null")
    building_id = fields.Many2one("prepaid.property", readonly=True, index="btree_not_null")
    quantity = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    sharp = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    peak = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    flat = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    valley = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    free_quantity = fields.Float(
        string="Free Allowance Used", digits=(16, 3), readonly=True, aggregator="sum"
    )
    amount = fields.Monetary(readonly=True, aggregator="sum", help="What the settlement deducted for it.")
    intervals = fields.Integer(readonly=True, aggregator="sum", help="Settled intervals that day.")
    unit_of_measure = fields.Char(compute="_compute_unit_of_measure", string="Unit of Measure")

    def init(self):
        res = super().init()
        # One fact per meter, account (none: unbilled) and day; the settlement's upsert names this index.
        self.env.cr.execute(
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS %s ON %s (meter_id, COALESCE(account_id, 0), day)",
                SQL.identifier(UNIQUE_INDEX),
                SQL.identifier(self._table),
            )
        )
        # An account's days (the portal's charts, days left, statements): bounded by the days asked for,
        # not by the account's whole history.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS %s ON %s (account_id, day) WHERE account_id IS NOT NULL",
                SQL.identifier("prepaid_consumption_account_day_idx"),
                SQL.identifier(self._table),
            )
        )
        return res

    @api.depends("utility")
    def _compute_unit_of_measure(self):
        units = {"electricity": "kWh", "water": "m³"}
        for fact in self:
            fact.unit_of_measure = units.get(fact.utility, "")

    # ------------------------------------------------------------------ written by the settlement

    @api.model
    @api.private
    def _add_settled(self, contributions):
        """Add what a settlement batch consumed to the facts, in the caller's transaction.

        :param contributions: ``[(meter row, tz, items, billed)]``: the settlement's row of a meter (its
            account, company, unit, building), its time zone, the rated intervals its account was charged
            for in this batch (``billed``) or the intervals it consumed without a charge.
        """
        lines = []
        for row, tz, items, billed in contributions:
            if not items:
                continue
            account_id = row.account_id if billed else None
            for fact in add_day_facts(items, tz or "UTC").values():
                lines.append(
                    copy_line(
                        (
                            row.id,
                            account_id,
                            fact.day.isoformat(),
                            row.company_id,
                            row.utility,
                            row.unit_id,
                            row.building_id,
                            fact.quantity,
                            *(fact.bands[band] for band in Band),
                            fact.free,
                            fact.amount,
                            fact.intervals,
                        )
                    )
                )
        if lines:
            self._upsert(lines)
        return len(lines)

    def _upsert(self, lines):
        cr = self.env.cr
        copy_to_temp(cr, FACTS_TABLE, FACT_COLUMNS, lines)
        names = [name for name, _type in FACT_COLUMNS]
        columns = SQL(", ").join(SQL.identifier(name) for name in names)
        cr.execute(
            SQL(
                """INSERT INTO prepaid_consumption AS c (%s)
                   SELECT %s FROM %s
                   ON CONFLICT (meter_id, COALESCE(account_id, 0), day) DO UPDATE SET %s""",
                columns,
                columns,
                SQL.identifier(FACTS_TABLE),
                SQL(", ").join(SQL("%s = c.%s + EXCLUDED.%s", *(SQL.identifier(n),) * 3) for n in ADDED),
            )
        )
        self.invalidate_model()

    # ------------------------------------------------------------------ backfill

    @api.model
    @api.private
    def _backfill(self, meter_ids=None):
        """Fill in the days that have no fact yet from what is stored: the quantities from the meters' valid
        readings (the rise of the index from one reading to the next; a fall is left out), the amounts and the
        account from the ledger's consumption lines of the meter, each counted on the local day of its
        reading (or line) time. Days that have a fact already are left as they are. Returns the number of
        facts added."""
        for model in ("prepaid.meter", "prepaid.meter.reading", "prepaid.ledger", "prepaid.property"):
            self.env[model].flush_model()
        self.flush_model()
        meter_filter = SQL("AND m.id = ANY(%s::int[])", id_array(meter_ids)) if meter_ids else SQL()
        has_state = "state" in self.env["prepaid.meter.reading"]._fields
        valid = SQL("AND r.state = 'valid'") if has_state else SQL()
        self.env.cr.execute(
            SQL(
                """WITH meters AS (
                        SELECT m.id, m.company_id, m.utility, m.unit_id, m.building_id,
                               COALESCE(u.effective_tz, b.effective_tz, p.tz, 'UTC') AS tz
                          FROM prepaid_meter m
                     LEFT JOIN prepaid_property u ON u.id = m.unit_id
                     LEFT JOIN prepaid_property b ON b.id = m.building_id
                          JOIN res_company co ON co.id = m.company_id
                          JOIN res_partner p ON p.id = co.partner_id
                         WHERE TRUE %(meters)s
                   ), steps AS (
                        SELECT r.meter_id, r.read_at,
                               r.total - LAG(r.total) OVER w AS quantity,
                               r.sharp - LAG(r.sharp) OVER w AS sharp, r.peak - LAG(r.peak) OVER w AS peak,
                               r.flat - LAG(r.flat) OVER w AS flat, r.valley - LAG(r.valley) OVER w AS valley
                          FROM prepaid_meter_reading r JOIN meters m ON m.id = r.meter_id
                         WHERE r.total IS NOT NULL %(valid)s
                        WINDOW w AS (PARTITION BY r.meter_id ORDER BY r.read_at)
                   ), used AS (
                        SELECT s.meter_id, (s.read_at AT TIME ZONE 'UTC' AT TIME ZONE m.tz)::date AS day,
                               SUM(s.quantity) AS quantity, SUM(GREATEST(s.sharp, 0)) AS sharp,
                               SUM(GREATEST(s.peak, 0)) AS peak, SUM(GREATEST(s.flat, 0)) AS flat,
                               SUM(GREATEST(s.valley, 0)) AS valley, COUNT(*) AS intervals
                          FROM steps s JOIN meters m ON m.id = s.meter_id
                         WHERE s.quantity > 0
                      GROUP BY 1, 2
                   ), charged AS (
                        SELECT l.res_id AS meter_id,
                               (l.date AT TIME ZONE 'UTC' AT TIME ZONE m.tz)::date AS day,
                               MAX(l.account_id) AS account_id, -SUM(l.amount) AS amount
                          FROM prepaid_ledger l JOIN meters m ON m.id = l.res_id
                         WHERE l.res_model = 'prepaid.meter' AND l.kind = 'consumption'
                      GROUP BY 1, 2
                   )
                   INSERT INTO prepaid_consumption
                          (meter_id, account_id, day, company_id, utility, unit_id, building_id, quantity,
                           sharp, peak, flat, valley, free_quantity, amount, intervals)
                   SELECT u.meter_id, c.account_id, u.day, m.company_id, m.utility, m.unit_id, m.building_id,
                          u.quantity, COALESCE(u.sharp, 0), COALESCE(u.peak, 0), COALESCE(u.flat, 0),
                          COALESCE(u.valley, 0), 0, COALESCE(c.amount, 0), u.intervals
                     FROM used u JOIN meters m ON m.id = u.meter_id
                LEFT JOIN charged c ON c.meter_id = u.meter_id AND c.day = u.day
                    WHERE NOT EXISTS (
                          SELECT 1 FROM prepaid_consumption f WHERE f.meter_id = u.meter_id AND f.day = u.day
                          )
                   ON CONFLICT DO NOTHING""",
                meters=meter_filter,
                valid=valid,
            )
        )
        added = self.env.cr.rowcount
        self.invalidate_model()
        _logger.info("daily consumption: %s days filled in from readings and ledger", added)
        return added

    def action_backfill(self):
        """Managers: fill in the days that have no fact yet (see :meth:`_backfill`)."""
        self.env["prepaid.account"]._prepaid_check_manager()
        added = self.sudo()._backfill()
        return self.env["prepaid.gateway"]._notify(
            self.env._("Daily consumption"),
            self.env._("%(count)s days filled in from the readings and the ledger.", count=added),
        )
