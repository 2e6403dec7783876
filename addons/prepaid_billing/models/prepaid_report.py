from odoo import fields, models, tools
from odoo.addons.prepaid_base.models.prepaid_ledger import LEDGER_KINDS
from odoo.addons.prepaid_base.models.prepaid_tariff import UTILITY_SELECTION
from odoo.tools import SQL

from .prepaid_topup import CHANNEL_SELECTION

# What a ledger line's money is for, in the income summary: the utility of a consumption, else its kind.
COMPOSITION_SELECTION = [
    ("electricity", "Electricity"),
    ("water", "Water"),
    ("fee", "Fees"),
    ("apportionment", "Apportionment"),
    ("topup", "Top-ups"),
    ("reversal", "Reversals"),
    ("refund", "Refunds"),
    ("other", "Other"),
]


class PrepaidOrderReport(models.Model):
    """Every movement of the prepaid ledgers (top-ups, reversals, refunds, fees, apportionment, consumption)
    with what the staff filter and group by: the account's building and unit, the top-up's channel and
    journal, and the operator (the cashier who took the money of a top-up, else whoever posted the line).
    Read-only SQL view over ``prepaid_ledger``; its figures are the ledger's."""

    _name = "prepaid.order.report"
    _description = "Prepaid Order Overview"
    _auto = False
    _order = "date desc, id desc"
    _rec_name = "date"

    date = fields.Datetime(readonly=True)
    ledger_id = fields.Many2one("prepaid.ledger", string="Ledger Line", readonly=True)
    account_id = fields.Many2one("prepaid.account", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    unit_id = fields.Many2one("prepaid.property", readonly=True)
    building_id = fields.Many2one("prepaid.property", readonly=True)
    site_id = fields.Many2one("prepaid.property", readonly=True)
    kind = fields.Selection(LEDGER_KINDS, readonly=True)
    utility = fields.Selection(UTILITY_SELECTION, readonly=True)
    composition = fields.Selection(COMPOSITION_SELECTION, readonly=True)
    topup_id = fields.Many2one("prepaid.topup", string="Top-up", readonly=True)
    channel = fields.Selection(CHANNEL_SELECTION, readonly=True)
    journal_id = fields.Many2one("account.journal", readonly=True)
    user_id = fields.Many2one(
        "res.users",
        string="Operator",
        readonly=True,
        help="The cashier who took the money of a top-up (and of its reversal); else who posted the line.",
    )
    amount = fields.Monetary(
        readonly=True, aggregator="sum", help="Credits are positive, deductions negative."
    )
    income = fields.Monetary(
        readonly=True,
        aggregator="sum",
        help="What was charged: the deductions (consumption, fees, apportionment).",
    )
    quantity = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")

    def _query(self):
        return SQL(
            """
            SELECT l.id AS id, l.id AS ledger_id, l.date, l.account_id, l.partner_id, l.company_id,
                   l.currency_id, u.unit_id, p.building_id, p.site_id, l.kind, l.utility,
                   CASE WHEN l.kind = 'consumption' THEN COALESCE(l.utility, 'other')
                        WHEN l.kind IN ('fee', 'apportionment', 'topup', 'reversal', 'refund') THEN l.kind
                        ELSE 'other' END AS composition,
                   COALESCE(t.id, r.id) AS topup_id,
                   COALESCE(t.channel, r.channel) AS channel,
                   COALESCE(t.journal_id, r.journal_id) AS journal_id,
                   COALESCE(t.user_id, r.user_id, l.create_uid) AS user_id,
                   l.amount,
                   CASE WHEN l.kind IN ('consumption', 'fee', 'apportionment') THEN -l.amount ELSE 0 END
                       AS income,
                   l.quantity
              FROM prepaid_ledger l
              LEFT JOIN prepaid_topup t ON t.ledger_id = l.id
              LEFT JOIN prepaid_topup r ON r.reversal_ledger_id = l.id
              LEFT JOIN LATERAL (SELECT MIN(rel.unit_id) AS unit_id FROM prepaid_account_unit_rel rel
                                  WHERE rel.account_id = l.account_id) u ON TRUE
              LEFT JOIN prepaid_property p ON p.id = u.unit_id
            """
        )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL("CREATE OR REPLACE VIEW %s AS (%s)", SQL.identifier(self._table), self._query())
        )


# The monthly aggregate of the daily facts the consumption report reads (a year of 10,000 meters' days is
# 3.65 M facts, their months 120,000 rows). Kept by statement-level triggers on ``prepaid_consumption`` in the
# transaction that writes the facts (the settlement's upsert, the backfill, a meter's cascade), set-based:
# one aggregate upsert per statement, so the report is always the facts' sum.
MONTH_TABLE = "prepaid_consumption_month"
MONTH_KEY = "meter_id, COALESCE(account_id, 0), month, COALESCE(unit_id, 0), COALESCE(building_id, 0)"
MONTH_SUMS = ("quantity", "sharp", "peak", "flat", "valley", "free_quantity", "amount")


class PrepaidConsumptionReport(models.Model):
    """The consumption per meter and month with the property tree (site, building, floor, unit) and, beside
    each month's quantity and amount, the month before and the same month a year before (the months shifted
    forward by one month / twelve as rows of their own, so any grouping by month or year sums them right).
    Read-only SQL view over the monthly aggregate of ``prepaid_consumption`` (the days themselves are in
    Billing > Consumption)."""

    _name = "prepaid.consumption.report"
    _description = "Prepaid Consumption Report"
    _auto = False
    _order = "day desc, id desc"
    _rec_name = "day"

    day = fields.Date(string="Month", readonly=True, help="The first day of the month.")
    meter_id = fields.Many2one("prepaid.meter", readonly=True)
    account_id = fields.Many2one("prepaid.account", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    utility = fields.Selection(UTILITY_SELECTION, readonly=True)
    unit_id = fields.Many2one("prepaid.property", readonly=True)
    floor_id = fields.Many2one("prepaid.property", readonly=True)
    building_id = fields.Many2one("prepaid.property", readonly=True)
    site_id = fields.Many2one("prepaid.property", readonly=True)
    quantity = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    sharp = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    peak = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    flat = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    valley = fields.Float(digits=(16, 3), readonly=True, aggregator="sum")
    free_quantity = fields.Float(
        string="Free Allowance Used", digits=(16, 3), readonly=True, aggregator="sum"
    )
    amount = fields.Monetary(readonly=True, aggregator="sum")
    quantity_prev_month = fields.Float(
        string="Quantity Previous Month", digits=(16, 3), readonly=True, aggregator="sum"
    )
    quantity_prev_year = fields.Float(
        string="Quantity Previous Year", digits=(16, 3), readonly=True, aggregator="sum"
    )
    amount_prev_month = fields.Monetary(string="Amount Previous Month", readonly=True, aggregator="sum")
    amount_prev_year = fields.Monetary(string="Amount Previous Year", readonly=True, aggregator="sum")

    def _query(self):
        return SQL(
            """
            SELECT f.id * 3 + s.shift AS id,
                   CASE s.shift WHEN 0 THEN f.month
                                WHEN 1 THEN (f.month + INTERVAL '1 month')::date
                                ELSE (f.month + INTERVAL '1 year')::date END AS day,
                   f.meter_id, f.account_id, f.company_id, rc.currency_id, f.utility, f.unit_id,
                   un.floor_id, f.building_id, b.site_id,
                   CASE WHEN s.shift = 0 THEN f.quantity ELSE 0 END AS quantity,
                   CASE WHEN s.shift = 0 THEN f.sharp ELSE 0 END AS sharp,
                   CASE WHEN s.shift = 0 THEN f.peak ELSE 0 END AS peak,
                   CASE WHEN s.shift = 0 THEN f.flat ELSE 0 END AS flat,
                   CASE WHEN s.shift = 0 THEN f.valley ELSE 0 END AS valley,
                   CASE WHEN s.shift = 0 THEN f.free_quantity ELSE 0 END AS free_quantity,
                   CASE WHEN s.shift = 0 THEN f.amount ELSE 0 END AS amount,
                   CASE WHEN s.shift = 1 THEN f.quantity ELSE 0 END AS quantity_prev_month,
                   CASE WHEN s.shift = 2 THEN f.quantity ELSE 0 END AS quantity_prev_year,
                   CASE WHEN s.shift = 1 THEN f.amount ELSE 0 END AS amount_prev_month,
                   CASE WHEN s.shift = 2 THEN f.amount ELSE 0 END AS amount_prev_year
              FROM prepaid_consumption_month f
             CROSS JOIN (VALUES (0), (1), (2)) AS s(shift)
              JOIN res_company rc ON rc.id = f.company_id
              LEFT JOIN prepaid_property un ON un.id = f.unit_id
              LEFT JOIN prepaid_property b ON b.id = f.building_id
             WHERE s.shift = 0
                OR (s.shift = 1 AND f.month + INTERVAL '1 month' <= CURRENT_DATE)
                OR (s.shift = 2 AND f.month + INTERVAL '1 year' <= CURRENT_DATE)
            """
        )

    def _init_month_table(self):
        cr = self.env.cr
        cr.execute(SQL("SELECT to_regclass(%s)", MONTH_TABLE))
        exists = bool(cr.fetchone()[0])
        sums = SQL(", ").join(SQL("%s numeric NOT NULL DEFAULT 0", SQL.identifier(c)) for c in MONTH_SUMS)
        if not exists:
            cr.execute(
                SQL(
                    """
                CREATE TABLE %(table)s (
                    id serial PRIMARY KEY, meter_id int NOT NULL, account_id int, month date NOT NULL,
                    company_id int NOT NULL, utility varchar, unit_id int, building_id int, %(sums)s);
                CREATE UNIQUE INDEX prepaid_consumption_month_key ON %(table)s (%(key)s);
                CREATE INDEX prepaid_consumption_month_building ON %(table)s (building_id, month);
                """,
                    table=SQL.identifier(MONTH_TABLE),
                    sums=sums,
                    key=SQL(MONTH_KEY),
                )
            )
        # One function for the three triggers: each statement's rows, added (new) or taken off (old).
        added = SQL(", ").join(SQL("COALESCE(SUM(%s), 0)", SQL.identifier(c)) for c in MONTH_SUMS)
        taken = SQL(", ").join(SQL("-COALESCE(SUM(%s), 0)", SQL.identifier(c)) for c in MONTH_SUMS)
        updates = SQL(", ").join(
            SQL(
                "%s = %s.%s + EXCLUDED.%s",
                SQL.identifier(c),
                SQL.identifier(MONTH_TABLE),
                SQL.identifier(c),
                SQL.identifier(c),
            )
            for c in MONTH_SUMS
        )
        columns = SQL(", ").join(SQL.identifier(c) for c in MONTH_SUMS)
        head = SQL(
            "meter_id, account_id, date_trunc('month', day)::date, company_id, utility, unit_id, building_id"
        )
        group = SQL(
            "meter_id, account_id, date_trunc('month', day), company_id, utility, unit_id, building_id"
        )

        def upsert(rows, sums):
            return SQL(
                "INSERT INTO %(table)s (meter_id, account_id, month, company_id, utility, unit_id, "
                "building_id, %(columns)s) SELECT %(head)s, %(sums)s FROM %(rows)s GROUP BY %(group)s "
                "ON CONFLICT (%(key)s) DO UPDATE SET %(updates)s;",
                table=SQL.identifier(MONTH_TABLE),
                columns=columns,
                head=head,
                sums=sums,
                rows=SQL(rows),
                group=group,
                key=SQL(MONTH_KEY),
                updates=updates,
            )

        cr.execute(
            SQL(
                """
                CREATE OR REPLACE FUNCTION prepaid_consumption_month_keep() RETURNS trigger AS $$
                BEGIN
                    IF TG_OP IN ('UPDATE', 'DELETE') THEN
                        %(taken)s
                    END IF;
                    IF TG_OP IN ('INSERT', 'UPDATE') THEN
                        %(added)s
                    END IF;
                    RETURN NULL;
                END $$ LANGUAGE plpgsql;
                CREATE OR REPLACE TRIGGER prepaid_consumption_month_ins AFTER INSERT ON prepaid_consumption
                    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                    EXECUTE FUNCTION prepaid_consumption_month_keep();
                CREATE OR REPLACE TRIGGER prepaid_consumption_month_upd AFTER UPDATE ON prepaid_consumption
                    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                    EXECUTE FUNCTION prepaid_consumption_month_keep();
                CREATE OR REPLACE TRIGGER prepaid_consumption_month_del AFTER DELETE ON prepaid_consumption
                    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                    EXECUTE FUNCTION prepaid_consumption_month_keep();
                """,
                taken=upsert("old_rows", taken),
                added=upsert("new_rows", added),
            )
        )
        # The function and triggers are replaced at each update (a fix reaches running databases); the facts
        # already there are added once, when the table is made (the module installed on a running database).
        if not exists:
            cr.execute(upsert("prepaid_consumption", added))

    def init(self):
        self._init_month_table()
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL("CREATE OR REPLACE VIEW %s AS (%s)", SQL.identifier(self._table), self._query())
        )
