import gc
import io
import logging
from contextlib import contextmanager
from datetime import UTC
from decimal import Decimal
from operator import attrgetter

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_ledger import CopiedMany2one
from odoo.tools import SQL

from prepaid_engine.types import READING_FIELDS

from .prepaid_meter import SUPPLY_SELECTION

_logger = logging.getLogger(__name__)

INGEST_CHUNK = 50_000  # readings per COPY + INSERT round of _ingest (bounds the memory of a huge import)
UPDATE_CHUNK = 2000  # meters per UPDATE statement of _update_meters (readings created through the ORM)
# Values of the engine's Reading that are not stored on a reading record.
UNSTORED_FIELDS = ("battery_low",)
# Reading value fields copied from the engine's Reading (its READING_FIELDS that are stored), in its order.
VALUE_FIELDS = tuple(name for name in READING_FIELDS if name not in UNSTORED_FIELDS)
VALUE_TYPES = {"supply": "varchar", "purchase_count": "int"}  # the others are numeric
reading_values = attrgetter(*VALUE_FIELDS)
SOURCE_SELECTION = [("poll", "Poll"), ("push", "Push"), ("manual", "Manual"), ("import", "Import")]
# The session temporary table _ingest COPYs readings into: meter, time and the value fields.
BULK_TABLE = "prepaid_reading_bulk"
BULK_COLUMNS = (
    ("meter_id", "int"),
    ("read_at", "timestamp"),
    *((name, VALUE_TYPES.get(name, "numeric")) for name in VALUE_FIELDS),
)
MAX_ID = 2**31 - 1  # ids are PostgreSQL integers: a larger meter key cannot be a meter
# What a reading tells its meter (written by _ingest and _update_meters).
METER_FIELDS = ("last_reading_at", "last_total", "supply", "meter_balance", "purchase_count", "online")
TAB = "\t"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


# Planner settings for the bulk statements of ingestion and settlement (see batch_planner).
BATCH_PLANNER_SETTINGS = (("jit", "off"), ("random_page_cost", "1.1"))


@contextmanager
def batch_planner(cr):
    """Plan the block's statements for batches (the settings go back to what they were after it; a rollback
    to a savepoint or of the transaction restores them anyway). Ingestion and settlement read and write the
    rows of one batch, a few thousand rows of tables of a hundred thousand, through their indexes:

    - ``jit = off``: their estimated cost passes ``jit_above_cost``, and compiling their expressions costs
      tens of milliseconds a statement (several microseconds a reading) for nothing; JIT pays off for long
      scans and aggregates, not for index lookups;
    - ``random_page_cost = 1.1``: the rows they touch are cached, so an index lookup costs about what a
      sequential page does; with the default (4, a spinning disk) the planner scans and hashes a whole table
      to update 2,000 of its rows, three times slower.
    """
    names = [name for name, _value in BATCH_PLANNER_SETTINGS]
    cr.execute(
        SQL(
            "SELECT %s",
            SQL(", ").join(
                SQL("current_setting(%s), set_config(%s, %s, true)", name, name, value)
                for name, value in BATCH_PLANNER_SETTINGS
            ),
        )
    )
    previous = cr.fetchone()[::2]
    yield
    cr.execute(
        SQL(
            "SELECT %s",
            SQL(", ").join(
                SQL("set_config(%s, %s, true)", name, value)
                for name, value in zip(names, previous, strict=True)
            ),
        )
    )


@contextmanager
def gc_paused():
    """Run the block with Python's cyclic garbage collector paused (if it was running; it runs again after
    the block, errors included). A bulk batch allocates hundreds of thousands of short-lived objects that
    reference counting frees by itself; each 700 allocations set off a collection, and every so often a
    full one that walks every object of the registry (over 100 ms in a loaded server, several microseconds
    a reading) for garbage that is not there. Cycles made meanwhile are collected after the block."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _naive_utc(value):
    return (
        value.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        if value.tzinfo
        else value.replace(microsecond=0)
    )


def _copy_value(value):
    """``value`` in COPY text format (numbers as they are, text escaped, None as NULL)."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is Decimal or kind is int:
        return str(value)
    return str(value).translate(_COPY_ESCAPES)


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
    company_id = CopiedMany2one("res.company", related="meter_id.company_id", store=True)
    utility = fields.Selection(related="meter_id.utility", store=True)
    building_id = CopiedMany2one("prepaid.property", related="meter_id.building_id", store=True)
    unit_id = fields.Many2one("prepaid.property", related="meter_id.unit_id", string="Unit")

    # Also the (meter, time) index: a meter's readings in order, and its latest ones read backwards.
    _sql_constraints = [
        ("meter_read_at_uniq", "UNIQUE(meter_id, read_at)", "A meter has one reading per moment."),
    ]

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
        self._after_ingest(readings.ids, readings.meter_id.ids)
        return readings

    # -- ingestion -------------------------------------------------------------------------------------------
    @api.model
    @api.private
    def _ingest(self, readings, source="poll"):
        """Store engine :class:`~prepaid_engine.types.Reading` values (``meter_key`` = meter id) in bulk.

        The readings travel by ``COPY`` into a session temporary table, and one statement per round of
        :data:`INGEST_CHUNK` readings does the rest: ``INSERT .. SELECT`` joined with the meters (which gives
        each row its meter's company, utility and building, and leaves out readings of unknown meters, which
        are counted and logged) ``ON CONFLICT (meter_id, read_at) DO NOTHING RETURNING``, and in the same
        statement the meters of the rows really inserted get their last reading, index, supply, balance and
        purchase count (the newest reading per meter, when it is not older than what the meter holds) and
        go online (poll and push only). Re-ingesting the same readings inserts and changes nothing.

        Returns the ids of the inserted rows, after calling :meth:`_after_ingest` with them and their
        meters. The garbage collector pauses meanwhile (:func:`gc_paused`).
        """
        with gc_paused():
            return self._ingest_readings(readings, source)

    def _ingest_readings(self, readings, source):
        now = fields.Datetime.now()
        stamps = {}  # read_at -> its text in COPY (many readings share a poll's instants)
        lines = []
        skipped = 0
        meter_ids = []
        for reading in readings:
            key = reading.meter_key
            meter_id = int(key) if key.isdecimal() else 0
            if not 0 < meter_id <= MAX_ID:
                skipped += 1
                continue
            at = reading.read_at
            stamp = stamps.get(at)
            if stamp is None:
                stamp = stamps[at] = _naive_utc(at).isoformat(sep=" ")
            meter_ids.append(meter_id)
            lines.append(f"{meter_id}\t{stamp}\t{TAB.join(map(_copy_value, reading_values(reading)))}\n")
        new_ids = []
        new_meter_ids = set()
        if lines:
            self.env["prepaid.meter"].flush_model()
            self.flush_model()
            self.env.cr.execute(
                SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS %s (%s) ON COMMIT DELETE ROWS",
                    SQL.identifier(BULK_TABLE),
                    SQL(", ").join(
                        SQL("%s %s", SQL.identifier(name), SQL(kind)) for name, kind in BULK_COLUMNS
                    ),
                )
            )
            online = source in ("poll", "push")
            with batch_planner(self.env.cr):
                for start in range(0, len(lines), INGEST_CHUNK):
                    chunk = lines[start : start + INGEST_CHUNK]
                    chunk_meters = sorted(set(meter_ids[start : start + INGEST_CHUNK]))
                    rows = self._ingest_lines(chunk, chunk_meters, now, source, online)
                    if len(rows) < len(chunk):
                        skipped += self._count_unknown_meters()
                    new_ids += [row[0] for row in rows]
                    new_meter_ids.update(row[1] for row in rows)
            if new_ids:
                self.invalidate_model()
                self.env["prepaid.meter"].invalidate_model(METER_FIELDS)
        if skipped:
            _logger.warning("ingest: %s readings of unknown meters skipped", skipped)
        self._after_ingest(new_ids, sorted(new_meter_ids))
        return new_ids

    def _ingest_lines(self, lines, meter_ids, now, source, online):
        """COPY ``lines`` (text rows of :data:`BULK_COLUMNS`, of the meters ``meter_ids``) and store them;
        returns ``(id, meter id)`` of the new readings. The meters are named twice (``m.id = ANY(..)``) so
        the planner reads them by their index instead of hashing the whole table for a batch that is a small
        part of it."""
        cr = self.env.cr
        cr.execute(SQL("TRUNCATE %s", SQL.identifier(BULK_TABLE)))
        cr.copy_from(io.StringIO("".join(lines)), BULK_TABLE, columns=[name for name, _kind in BULK_COLUMNS])
        values = SQL(", ").join(SQL("b.%s", SQL.identifier(name)) for name in VALUE_FIELDS)
        cr.execute(
            SQL(
                """WITH new AS (
                        INSERT INTO prepaid_meter_reading AS r
                               (meter_id, read_at, ingested_at, source, company_id, utility, building_id,
                                %(columns)s)
                        SELECT b.meter_id, b.read_at, %(now)s, %(source)s, m.company_id, m.utility,
                               m.building_id, %(values)s
                          FROM %(bulk)s AS b JOIN prepaid_meter AS m ON m.id = b.meter_id
                         WHERE m.id = ANY(%(meters)s::int[])
                        ON CONFLICT (meter_id, read_at) DO NOTHING
                        RETURNING r.id, r.meter_id, r.read_at, r.total, r.supply, r.balance, r.purchase_count
                   ), latest AS (
                        SELECT DISTINCT ON (meter_id) * FROM new ORDER BY meter_id, read_at DESC
                   ), moved AS (
                        UPDATE prepaid_meter AS m
                           SET last_reading_at = v.read_at,
                               last_total = COALESCE(v.total, m.last_total),
                               supply = COALESCE(v.supply, m.supply),
                               meter_balance = COALESCE(v.balance, m.meter_balance),
                               purchase_count = COALESCE(v.purchase_count, m.purchase_count),
                               online = m.online OR %(online)s
                          FROM latest AS v
                         WHERE m.id = v.meter_id AND m.id = ANY(%(meters)s::int[])
                           AND (m.last_reading_at IS NULL OR m.last_reading_at <= v.read_at)
                   )
                   SELECT id, meter_id FROM new""",
                columns=SQL(", ").join(SQL.identifier(name) for name in VALUE_FIELDS),
                now=now,
                source=source,
                values=values,
                bulk=SQL.identifier(BULK_TABLE),
                meters="{" + ",".join(map(str, meter_ids)) + "}",
                online=bool(online),
            )
        )
        return cr.fetchall()

    def _count_unknown_meters(self):
        """How many readings of the last COPY name no meter."""
        return self.env.execute_query(
            SQL(
                """SELECT COUNT(*) FROM %s AS b
                    WHERE NOT EXISTS (SELECT 1 FROM prepaid_meter m WHERE m.id = b.meter_id)""",
                SQL.identifier(BULK_TABLE),
            )
        )[0][0]

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
        for start in range(0, len(rows), UPDATE_CHUNK):
            chunk = SQL(", ").join(
                SQL("(%s, %s::timestamp, %s::numeric, %s::varchar, %s::numeric, %s::integer)", *row)
                for row in rows[start : start + UPDATE_CHUNK]
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
        self.env["prepaid.meter"].invalidate_model(METER_FIELDS)

    @api.model
    @api.private
    def _after_ingest(self, new_reading_ids, meter_ids=None):
        """Hook called by :meth:`_ingest` with the ids of the readings it really inserted (possibly none) and
        the ids of their meters (``None``: not given, read them from the readings).

        Billing extends it to settle the new readings right after ingestion. Nothing to do here.
        """
        return new_reading_ids
