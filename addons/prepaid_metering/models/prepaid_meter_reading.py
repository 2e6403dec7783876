import logging
from datetime import UTC

from odoo import api, fields, models
from odoo.tools import SQL, create_index

from .prepaid_meter import SUPPLY_SELECTION

_logger = logging.getLogger(__name__)

INGEST_CHUNK = 2000  # rows per INSERT statement
# Reading value fields copied from the engine's Reading, in column order.
VALUE_FIELDS = (
    "total",
    "sharp",
    "peak",
    "flat",
    "valley",
    "voltage",
    "current",
    "power",
    "power_factor",
    "frequency",
    "supply",
    "balance",
    "purchase_count",
)
SUPPLY_INDEX = VALUE_FIELDS.index("supply")
# Insert row layout: meter_id, read_at, ingested_at, source, company_id, utility, building_id, *VALUE_FIELDS.
ROW_PREFIX = 7
# Where the values a meter keeps (total, supply, balance, purchase count) sit in an insert row.
UPDATE_COLUMNS = tuple(
    ROW_PREFIX + VALUE_FIELDS.index(f) for f in ("total", "supply", "balance", "purchase_count")
)
SOURCE_SELECTION = [("poll", "Poll"), ("push", "Push"), ("manual", "Manual"), ("import", "Import")]


def _naive_utc(value):
    return (
        value.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        if value.tzinfo
        else value.replace(microsecond=0)
    )


class PrepaidMeterReading(models.Model):
    """What a meter said at one moment. A lean, append-only table sized for 100,000 meters read every 15
    minutes: no chatter, no write tracking, one row per (meter, time) enforced by the database.

    ``_log_access`` is off: rows are written once, by the poller, a push or an import, never edited, so
    ``create_uid``/``write_uid``/``write_date`` would be four columns of nothing on the largest table of the
    suite. ``ingested_at`` keeps the one timestamp worth keeping (when the row arrived)."""

    _name = "prepaid.meter.reading"
    _description = "Meter Reading"
    _order = "read_at desc, id desc"
    _rec_name = "read_at"
    _log_access = False

    meter_id = fields.Many2one("prepaid.meter", required=True, ondelete="cascade", index=False)
    read_at = fields.Datetime(required=True, help="When the meter was read (UTC).")
    ingested_at = fields.Datetime(string="Stored At", default=fields.Datetime.now, readonly=True)
    total = fields.Float(string="Index", digits=(16, 3), aggregator="max")
    sharp = fields.Float(digits=(16, 3), aggregator="max")
    peak = fields.Float(digits=(16, 3), aggregator="max")
    flat = fields.Float(digits=(16, 3), aggregator="max")
    valley = fields.Float(digits=(16, 3), aggregator="max")
    voltage = fields.Float(string="Voltage (V)", digits=(16, 1), aggregator="avg")
    current = fields.Float(string="Current (A)", digits=(16, 3), aggregator="avg")
    power = fields.Float(string="Power (kW)", digits=(16, 4), aggregator="avg")
    power_factor = fields.Float(digits=(16, 3), aggregator="avg")
    frequency = fields.Float(string="Frequency (Hz)", digits=(16, 2), aggregator="avg")
    supply = fields.Selection(SUPPLY_SELECTION)
    balance = fields.Float(string="Meter Balance", digits=(16, 2), aggregator="min")
    purchase_count = fields.Integer(aggregator="max")
    source = fields.Selection(SOURCE_SELECTION, required=True, default="manual")
    company_id = fields.Many2one("res.company", related="meter_id.company_id", store=True, index=True)
    utility = fields.Selection(related="meter_id.utility", store=True)
    building_id = fields.Many2one("prepaid.property", related="meter_id.building_id", store=True)
    unit_id = fields.Many2one("prepaid.property", related="meter_id.unit_id", string="Unit")

    _sql_constraints = [
        ("meter_read_at_uniq", "UNIQUE(meter_id, read_at)", "A meter has one reading per moment."),
    ]

    def init(self):
        res = super().init()
        create_index(
            self.env.cr,
            "prepaid_meter_reading_meter_read_at_desc_idx",
            self._table,
            ["meter_id", "read_at DESC"],
        )
        return res

    @api.model_create_multi
    def create(self, vals_list):
        if self.env.context.get("import_file"):
            for vals in vals_list:
                vals.setdefault("source", "import")
        readings = super().create(vals_list)
        # Readings entered by hand or imported count like ingested ones: the meter and billing follow.
        readings.flush_recordset()
        # Read back as stored: values left empty are NULL there (the ORM would show 0.0 / False).
        stored = self.env.execute_query(
            SQL(
                """SELECT meter_id, read_at, total, supply, balance, purchase_count
                     FROM prepaid_meter_reading WHERE id = ANY(%s)""",
                readings.ids,
            )
        )
        self._update_meters(stored, mark_online=False)
        self._after_ingest(readings.ids)
        return readings

    # -- ingestion -------------------------------------------------------------------------------------------
    @api.model
    @api.private
    def _ingest(self, readings, source="poll"):
        """Store engine :class:`~prepaid_engine.types.Reading` values (``meter_key`` = meter id) in bulk.

        One ``INSERT .. ON CONFLICT (meter_id, read_at) DO NOTHING RETURNING`` per chunk of rows; readings
        of unknown meters are skipped. The meters of the rows really inserted get their last reading, index,
        supply, balance and purchase count (when newer than what they hold) and go online, in one
        ``UPDATE .. FROM (VALUES ..)``. Re-ingesting the same readings inserts and changes nothing.

        Returns the ids of the inserted rows, after calling :meth:`_after_ingest` with them.
        """
        by_key = {}
        for reading in readings:
            if reading.meter_key.isdecimal():
                by_key.setdefault(int(reading.meter_key), []).append(reading)
        if not by_key:
            return []
        Meter = self.env["prepaid.meter"]
        Meter.flush_model()
        known = {
            row[0]: row[1:]
            for row in self.env.execute_query(
                SQL(
                    """SELECT m.id, m.company_id, m.utility, m.building_id
                         FROM prepaid_meter m WHERE m.id = ANY(%s)""",
                    list(by_key),
                )
            )
        }
        unknown = set(by_key) - set(known)
        if unknown:
            _logger.warning(
                "ingest: %s readings of unknown meters skipped", sum(len(by_key[k]) for k in unknown)
            )
        now = fields.Datetime.now()
        rows = []
        for meter_id, meter_readings in by_key.items():
            if meter_id not in known:
                continue
            company_id, utility, building_id = known[meter_id]
            for reading in meter_readings:
                values = [getattr(reading, fname) for fname in VALUE_FIELDS]
                values[SUPPLY_INDEX] = values[SUPPLY_INDEX] and str(values[SUPPLY_INDEX])
                rows.append(
                    (
                        meter_id,
                        _naive_utc(reading.read_at),
                        now,
                        source,
                        company_id,
                        utility,
                        building_id,
                        *values,
                    )
                )
        columns = SQL(", ").join(
            SQL.identifier(name)
            for name in (
                "meter_id",
                "read_at",
                "ingested_at",
                "source",
                "company_id",
                "utility",
                "building_id",
                *VALUE_FIELDS,
            )
        )
        self.flush_model()
        inserted = []
        for start in range(0, len(rows), INGEST_CHUNK):
            chunk = rows[start : start + INGEST_CHUNK]
            values = SQL(", ").join(SQL("(%s)", SQL(", ").join(SQL("%s", v) for v in row)) for row in chunk)
            inserted += self.env.execute_query(
                SQL(
                    """INSERT INTO prepaid_meter_reading (%s) VALUES %s
                       ON CONFLICT (meter_id, read_at) DO NOTHING
                       RETURNING id, meter_id, read_at""",
                    columns,
                    values,
                )
            )
        new_ids = [row[0] for row in inserted]
        if new_ids:
            meter_values = {(row[0], row[1]): row for row in rows}
            self._update_meters(
                [
                    (meter_id, read_at, *(meter_values[meter_id, read_at][i] for i in UPDATE_COLUMNS))
                    for _id, meter_id, read_at in inserted
                ],
                mark_online=source in ("poll", "push"),
            )
            self.invalidate_model()
        self._after_ingest(new_ids)
        return new_ids

    @api.model
    def _update_meters(self, values, mark_online=True):
        """Bring meters up to date with readings ``values``: ``(meter_id, read_at, total, supply, balance,
        purchase_count)`` tuples. Per meter the newest one counts, and only when it is not older than what
        the meter holds; with ``mark_online`` the meters also go online (they just answered). One
        ``UPDATE .. FROM (VALUES ..)`` per chunk of meters."""
        latest = {}
        for row in values:
            if row[0] not in latest or latest[row[0]][1] < row[1]:
                latest[row[0]] = row
        rows = list(latest.values())
        for start in range(0, len(rows), INGEST_CHUNK):
            chunk = SQL(", ").join(
                SQL("(%s, %s::timestamp, %s::numeric, %s::varchar, %s::numeric, %s::integer)", *row)
                for row in rows[start : start + INGEST_CHUNK]
            )
            self.env.execute_query(
                SQL(
                    """UPDATE prepaid_meter m
                          SET last_reading_at = v.read_at,
                              last_total = COALESCE(v.total, m.last_total),
                              supply = COALESCE(v.supply, m.supply),
                              meter_balance = COALESCE(v.balance, m.meter_balance),
                              purchase_count = COALESCE(v.purchase_count, m.purchase_count),
                              online = m.online OR %s
                         FROM (VALUES %s) AS v(meter_id, read_at, total, supply, balance, purchase_count)
                        WHERE m.id = v.meter_id
                          AND (m.last_reading_at IS NULL OR m.last_reading_at <= v.read_at)""",
                    bool(mark_online),
                    chunk,
                )
            )
        self.env["prepaid.meter"].invalidate_model(
            ["last_reading_at", "last_total", "supply", "meter_balance", "purchase_count", "online"]
        )

    @api.model
    @api.private
    def _after_ingest(self, new_reading_ids):
        """Hook called by :meth:`_ingest` with the ids of the readings it really inserted (possibly none).

        Billing extends it to settle the new readings right after ingestion. Nothing to do here.
        """
        return new_reading_ids
