import logging
from datetime import UTC
from decimal import Decimal, InvalidOperation
from operator import attrgetter

from odoo import api, fields, models
from odoo.addons.prepaid_base.models.prepaid_ledger import CopiedMany2one
from odoo.addons.prepaid_base.tools.bulk_sql import batch_planner, copy_text, copy_to_temp, gc_paused
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import SQL

from prepaid_engine.errors import ConfigError
from prepaid_engine.plausibility import MAX_COUNT, REGISTERS, Limits, judge, sanitize, storable
from prepaid_engine.types import READING_FIELDS, Capacity, Reading

from .prepaid_meter import SUPPLY_SELECTION

_logger = logging.getLogger(__name__)

INGEST_CHUNK = 50_000  # readings per COPY + INSERT round of _ingest (bounds the memory of a huge import)
UPDATE_CHUNK = 2000  # meters per UPDATE statement of _update_meters (readings created through the ORM)
# Values of the engine's Reading that are not stored on a reading record.
UNSTORED_FIELDS = ("battery_low",)
# Reading value fields copied from the engine's Reading (its READING_FIELDS that are stored), in its order.
VALUE_FIELDS = tuple(name for name in READING_FIELDS if name not in UNSTORED_FIELDS)
VALUE_TYPES = {
    "supply": "varchar",
    "purchase_count": "int",
    "cover_open_count": "int",
    "magnetic_count": "int",
}  # the others are numeric
reading_values = attrgetter(*VALUE_FIELDS)
SOURCE_SELECTION = [("poll", "Poll"), ("push", "Push"), ("manual", "Manual"), ("import", "Import")]
# Valid: counts (the meter and billing follow it). Quarantined: implausible (prepaid_engine.plausibility),
# stored aside, charged nothing, waiting on an anomaly for a manager. Rejected: out of billing for good.
STATE_SELECTION = [("valid", "Valid"), ("quarantined", "Quarantined"), ("rejected", "Rejected")]
# The session temporary table _ingest COPYs readings into: meter, time, state and the value fields.
BULK_TABLE = "prepaid_reading_bulk"
BULK_COLUMNS = (
    ("meter_id", "int"),
    ("read_at", "timestamp"),
    ("state", "varchar"),
    *((name, VALUE_TYPES.get(name, "numeric")) for name in VALUE_FIELDS),
)
# What a reading is once stored: written by ingestion, changed only by accepting or rejecting it.
PROTECTED_FIELDS = frozenset(
    {
        "meter_id",
        "read_at",
        "state",
        "source",
        "anomaly_ids",
        "company_id",
        "utility",
        "building_id",
        *VALUE_FIELDS,
    }
)
# The registers of a reading, as the engine's plausibility judges them, in the order of its REGISTERS.
REGISTER_COLUMNS = SQL(", ").join(SQL("r.%s::text", SQL.identifier(name)) for name in REGISTERS)
# Multiplies every meter's capacity when readings are judged (see readme/CONFIGURE.md).
FACTOR_PARAM = "prepaid_metering.plausibility_factor"
# The stored capacity of a meter model (from its definition), as the plausibility context reads it.
CAPACITY_FIELDS = ["max_current", "nominal_voltage", "phases", "max_flow"]
MAX_ID = 2**31 - 1  # ids are PostgreSQL integers: a larger meter key cannot be a meter
# What a reading tells its meter (written by _ingest and _update_meters).
METER_FIELDS = (
    "last_reading_at",
    "last_total",
    "supply",
    "supply_at",
    "meter_balance",
    "purchase_count",
    "online",
)
# A reading's supply state counts when it is newer than what the meter last told (m: the meter, v: the
# reading): a confirmed trip is not undone by a reading taken just before it and stored after it.
SUPPLY_IS_NEWER = SQL("v.supply IS NOT NULL AND (m.supply_at IS NULL OR m.supply_at <= v.read_at)")
SUPPLY_IF_NEWER = SQL("CASE WHEN %s THEN v.supply ELSE m.supply END", SUPPLY_IS_NEWER)
SUPPLY_AT_IF_NEWER = SQL("CASE WHEN %s THEN v.read_at ELSE m.supply_at END", SUPPLY_IS_NEWER)
TAB = "\t"


def _naive_utc(value):
    return (
        value.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        if value.tzinfo
        else value.replace(microsecond=0)
    )


def _aware(value):
    return value.replace(tzinfo=UTC) if value is not None else None


NO_BANDS = (None, None, None, None)


def _registers(at, texts):
    """An engine registers tuple ``(at, total, sharp, peak, flat, valley)`` (what
    :func:`prepaid_engine.plausibility.judge` compares with) from a time and registers read as text."""
    if texts[1:] == NO_BANDS:
        return (at.replace(tzinfo=UTC), Decimal(texts[0]), None, None, None, None)
    return (_aware(at), *(None if text is None else Decimal(text) for text in texts))


def _reading_registers(reading):
    return (reading.read_at, reading.total, reading.sharp, reading.peak, reading.flat, reading.valley)


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
    # Tamper data (where the meter's model reads it): anomaly detection compares consecutive readings.
    reverse_total = fields.Float(string="Reverse Energy", digits=(16, 3), aggregator="max")
    cover_open_count = fields.Integer(string="Cover Openings", aggregator="max")
    magnetic_count = fields.Integer(string="Magnetic Interferences", aggregator="max")
    source = fields.Selection(SOURCE_SELECTION, required=True, default="manual")
    state = fields.Selection(
        STATE_SELECTION,
        required=True,
        default="valid",
        readonly=True,
        help="Valid readings count. A quarantined reading failed the plausibility check (not finite, "
        "negative, a falling index, more than the meter can pass in the time): it is charged nothing until "
        "a manager accepts it on its anomaly. A rejected reading stays out of billing for good.",
    )
    anomaly_ids = fields.Many2many(
        "prepaid.anomaly", "prepaid_anomaly_reading_rel", "reading_id", "anomaly_id", readonly=True
    )
    company_id = CopiedMany2one("res.company", related="meter_id.company_id", store=True)
    utility = fields.Selection(related="meter_id.utility", store=True)
    building_id = CopiedMany2one("prepaid.property", related="meter_id.building_id", store=True)
    unit_id = fields.Many2one("prepaid.property", related="meter_id.unit_id", string="Unit")

    # Also the (meter, time) index: a meter's readings in order, and its latest ones read backwards.
    _sql_constraints = [
        ("meter_read_at_uniq", "UNIQUE(meter_id, read_at)", "A meter has one reading per moment."),
    ]

    def init(self):
        res = super().init()
        # Rows inserted by SQL without a state (ours always give one) are valid.
        self.env.cr.execute(
            SQL("ALTER TABLE %s ALTER COLUMN state SET DEFAULT 'valid'", SQL.identifier(self._table))
        )
        return res

    @api.model_create_multi
    def create(self, vals_list):
        """Readings entered by hand or imported: refused when a value is not a number a meter can show (NaN,
        infinite, beyond :data:`~prepaid_engine.plausibility.MAX_VALUE`), judged like ingested ones
        otherwise (an implausible one is stored quarantined, with an anomaly), and the meter and billing
        follow the valid ones. The state is the plausibility check's, whatever the values say."""
        if self.env.context.get("import_file"):
            for vals in vals_list:
                vals.setdefault("source", "import")
        self._check_storable(vals_list)
        items = [(vals.get("meter_id"), self._engine_reading(vals)) for vals in vals_list]
        verdicts = self._judge(items)
        for vals, verdict in zip(vals_list, verdicts, strict=True):
            vals["state"] = "valid" if verdict is None else "quarantined"
            vals.pop("anomaly_ids", None)
        readings = super().create(vals_list)
        readings.flush_recordset()
        # Read back as stored: values left empty are NULL there (the ORM would show 0.0 / False).
        stored = self.env.execute_query(
            SQL(
                """SELECT meter_id, read_at, total, supply, balance, purchase_count
                     FROM prepaid_meter_reading WHERE id = ANY(%s) AND state = 'valid'""",
                readings.ids,
            )
        )
        self._update_meters(stored, mark_online=False)
        quarantined = [
            (reading.id, verdict)
            for reading, verdict in zip(readings, verdicts, strict=True)
            if verdict is not None
        ]
        if quarantined:
            self._raise_anomalies(quarantined)
        valid = readings.filtered(lambda r: r.state == "valid")
        self._after_ingest(valid.ids, valid.meter_id.ids)
        return readings

    def write(self, vals):
        """Readings are not edited: a wrong one is rejected (on its anomaly) and a right one entered anew.
        Only ingestion, acceptance and rejection set what a reading says and its state."""
        protected = PROTECTED_FIELDS.intersection(vals)
        if protected:
            raise AccessError(
                self.env._(
                    "A reading is not edited (%(fields)s): enter a new reading, or reject this one on its "
                    "anomaly.",
                    fields=", ".join(sorted(protected)),
                )
            )
        return super().write(vals)

    def _check_storable(self, vals_list):
        """Refuse values no meter shows: a NaN or infinite number, a number beyond the engine's bound, a
        purchase count beyond a 32-bit integer (see :func:`prepaid_engine.plausibility.storable`)."""
        for vals in vals_list:
            for name in VALUE_FIELDS:
                value = vals.get(name)
                if value is None or value is False or isinstance(value, str):
                    continue
                bad = not storable(value) if isinstance(value, (int, float, Decimal)) else True
                if name in ("purchase_count", "cover_open_count", "magnetic_count") and not bad:
                    bad = not 0 <= value <= MAX_COUNT
                if bad:
                    raise ValidationError(
                        self.env._(
                            "%(field)s = %(value)s is not a value a meter shows: the reading is not stored.",
                            field=self._fields[name]._description_string(self.env),
                            value=value,
                        )
                    )

    @api.model
    def _engine_reading(self, vals):
        """The engine :class:`Reading` of a reading's record values (as the ORM will store them: registers
        to 3 decimals), for the plausibility check."""

        def number(name, digits):
            value = vals.get(name)
            if value is None or value is False or isinstance(value, bool):
                return None
            try:
                return Decimal(f"{float(value):.{digits}f}")
            except (TypeError, ValueError, InvalidOperation):
                return None

        at = fields.Datetime.to_datetime(vals.get("read_at"))
        return Reading(
            meter_key=str(vals.get("meter_id") or 0),
            read_at=at.replace(tzinfo=UTC, microsecond=0) if at else None,
            **{name: number(name, 3) for name in REGISTERS},
        )

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

        Every reading is judged first (:meth:`_judge`, the engine's plausibility rule): an implausible one is
        stored all the same, ``quarantined``, moves nothing on its meter, is charged nothing and raises an
        anomaly for a manager (:meth:`_raise_anomalies`). Values no column should hold (NaN, infinite,
        absurdly large) are stored empty and logged.

        Returns the ids of the inserted rows, after calling :meth:`_after_ingest` with the valid ones and
        their meters. The garbage collector pauses meanwhile (:func:`gc_paused`).
        """
        with gc_paused():
            return self._ingest_readings(readings, source)

    def _ingest_readings(self, readings, source):
        now = fields.Datetime.now()
        items = []  # (meter id, engine reading)
        skipped = 0
        for reading in readings:
            key = reading.meter_key
            meter_id = int(key) if key.isdecimal() else 0
            if not 0 < meter_id <= MAX_ID:
                skipped += 1
                continue
            items.append((meter_id, reading))
        inserted, valid_ids, new_meter_ids, quarantined = [], [], set(), []
        if items:
            self.env["prepaid.meter"].flush_model()
            self.flush_model()
            verdicts = self._judge(items)
            lines, meter_ids, pending = self._prepare_lines(items, verdicts)
            online = source in ("poll", "push")
            with batch_planner(self.env.cr):
                for start in range(0, len(lines), INGEST_CHUNK):
                    chunk = lines[start : start + INGEST_CHUNK]
                    chunk_meters = sorted(set(meter_ids[start : start + INGEST_CHUNK]))
                    rows = self._ingest_lines(chunk, chunk_meters, now, source, online)
                    if len(rows) < len(chunk):
                        skipped += self._count_unknown_meters()
                    for reading_id, meter_id, read_at, state in rows:
                        inserted.append(reading_id)
                        if state == "valid":
                            valid_ids.append(reading_id)
                            new_meter_ids.add(meter_id)
                        else:
                            quarantined.append((reading_id, pending[meter_id, read_at]))
            if inserted:
                self.invalidate_model()
                self.env["prepaid.meter"].invalidate_model(METER_FIELDS)
        if skipped:
            _logger.warning("ingest: %s readings of unknown meters skipped", skipped)
        if quarantined:
            self._raise_anomalies(quarantined)
        self._after_ingest(valid_ids, sorted(new_meter_ids))
        load_items = [(meter_id, r) for meter_id, r in items if r.trip_reason is not None or r.load_events]
        if load_items:
            self.env["prepaid.meter"].sudo()._prepaid_meter_load_data(load_items)
        return inserted

    def _prepare_lines(self, items, verdicts):
        """The COPY lines of judged readings (values no column should hold blanked, see
        :func:`~prepaid_engine.plausibility.sanitize`), their meters, and the verdicts of the quarantined
        ones by (meter, stored time)."""
        stamps = {}  # read_at -> (its text in COPY, the stored time); many readings share a poll's instants
        lines, meter_ids, pending = [], [], {}
        for (meter_id, reading), verdict in zip(items, verdicts, strict=True):
            stored, dropped = sanitize(reading)
            if dropped:
                _logger.warning(
                    "ingest: meter %s at %s: %s not stored (not a value a meter shows)",
                    meter_id,
                    reading.read_at,
                    ", ".join(f"{name}={getattr(reading, name)}" for name in dropped),
                )
            at = reading.read_at
            stamp = stamps.get(at)
            if stamp is None:
                naive = _naive_utc(at)
                stamp = stamps[at] = (naive.isoformat(sep=" "), naive)
            if verdict is None:
                state = "valid"
            else:
                state = "quarantined"
                pending[meter_id, stamp[1]] = verdict
            meter_ids.append(meter_id)
            lines.append(
                f"{meter_id}\t{stamp[0]}\t{state}\t{TAB.join(map(copy_text, reading_values(stored)))}\n"
            )
        return lines, meter_ids, pending

    def _ingest_lines(self, lines, meter_ids, now, source, online):
        """COPY ``lines`` (text rows of :data:`BULK_COLUMNS`, of the meters ``meter_ids``) and store them;
        returns ``(id, meter id, read_at, state)`` of the new readings. The meters are named twice
        (``m.id = ANY(..)``) so the planner reads them by their index instead of hashing the whole table for
        a batch that is a small part of it. Only valid readings move their meter."""
        cr = self.env.cr
        copy_to_temp(cr, BULK_TABLE, BULK_COLUMNS, lines)
        values = SQL(", ").join(SQL("b.%s", SQL.identifier(name)) for name in VALUE_FIELDS)
        cr.execute(
            SQL(
                """WITH new AS (
                        INSERT INTO prepaid_meter_reading AS r
                               (meter_id, read_at, ingested_at, source, state, company_id, utility,
                                building_id, %(columns)s)
                        SELECT b.meter_id, b.read_at, %(now)s, %(source)s, b.state, m.company_id, m.utility,
                               m.building_id, %(values)s
                          FROM %(bulk)s AS b JOIN prepaid_meter AS m ON m.id = b.meter_id
                         WHERE m.id = ANY(%(meters)s::int[])
                        ON CONFLICT (meter_id, read_at) DO NOTHING
                        RETURNING r.id, r.meter_id, r.read_at, r.state, r.total, r.supply, r.balance,
                                  r.purchase_count
                   ), latest AS (
                        -- The newest valid reading per meter; a meter with quarantined ones only gets a row
                        -- without a time, which moves nothing. (No WHERE on the state here: the planner
                        -- would then expect one row and loop over the meters' ANY() array for each.)
                        SELECT DISTINCT ON (meter_id) meter_id,
                               CASE WHEN state = 'valid' THEN read_at END AS read_at,
                               total, supply, balance, purchase_count
                          FROM new ORDER BY meter_id, state = 'valid' DESC, read_at DESC
                   ), moved AS (
                        UPDATE prepaid_meter AS m
                           SET last_reading_at = v.read_at,
                               last_total = COALESCE(v.total, m.last_total),
                               supply = %(supply)s,
                               supply_at = %(supply_at)s,
                               meter_balance = COALESCE(v.balance, m.meter_balance),
                               purchase_count = COALESCE(v.purchase_count, m.purchase_count),
                               online = m.online OR %(online)s
                          FROM latest AS v
                         WHERE m.id = v.meter_id AND m.id = ANY(%(meters)s::int[]) AND v.read_at IS NOT NULL
                           AND (m.last_reading_at IS NULL OR m.last_reading_at <= v.read_at)
                   )
                   SELECT id, meter_id, read_at, state FROM new""",
                columns=SQL(", ").join(SQL.identifier(name) for name in VALUE_FIELDS),
                now=now,
                source=source,
                values=values,
                bulk=SQL.identifier(BULK_TABLE),
                supply=SUPPLY_IF_NEWER,
                supply_at=SUPPLY_AT_IF_NEWER,
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
                              supply = %s,
                              supply_at = %s,
                              meter_balance = COALESCE(v.balance, m.meter_balance),
                              purchase_count = COALESCE(v.purchase_count, m.purchase_count),
                              online = m.online OR %s
                         FROM (VALUES %s) AS v(meter_id, read_at, total, supply, balance, purchase_count)
                        WHERE m.id = v.meter_id
                          AND (m.last_reading_at IS NULL OR m.last_reading_at <= v.read_at)""",
                    SUPPLY_IF_NEWER,
                    SUPPLY_AT_IF_NEWER,
                    bool(mark_online),
                    chunk,
                )
            )
        self.env["prepaid.meter"].invalidate_model(METER_FIELDS)

    # -- plausibility ----------------------------------------------------------------------------------------
    @api.model
    def _judge(self, items):
        """Judge ``(meter id, engine Reading)`` pairs with the engine (:func:`prepaid_engine.plausibility
        .judge`); returns, in the same order, ``None`` for a plausible reading, else ``(verdict, time of the
        accepted reading it was compared with or None)``.

        Set-based: one query gives every meter of the batch its limits and its last accepted reading (the
        latest valid one with a total); a meter's readings are judged in time order, each plausible one
        becoming the reference of the next. A reading older than its meter's last accepted one (it arrived
        late) is judged against the accepted readings on both sides of it (one more query, only when there
        are such readings). A reading at the very time of the accepted one is that reading again (the
        insert leaves it out). A quarantined reading is never a reference: the next ones are judged against
        the last accepted reading (see readme/USAGE.md)."""
        results = [None] * len(items)
        meter_ids = sorted({mid for mid, _reading in items if isinstance(mid, int) and 0 < mid <= MAX_ID})
        if not meter_ids:
            return results
        limits, references = self._plausibility_context(meter_ids)
        replacements = self._plausibility_replacements(meter_ids)
        order = range(len(items))
        if len(meter_ids) < len(items):
            order = sorted(
                (i for i in order if items[i][1].read_at is not None),
                key=lambda i: (str(items[i][0]), items[i][1].read_at),
            )
        late = []
        for i in order:
            meter_id, reading = items[i]
            meter_limits = limits.get(meter_id)
            if meter_limits is None or reading.read_at is None:
                continue  # an unknown meter (left out by the insert) or no time (refused by the ORM)
            reference = references.get(meter_id)
            if reference is not None and reading.read_at <= reference[0]:
                if reading.read_at < reference[0]:
                    late.append(i)
                continue
            replacement = (
                self._replacement_between(replacements, meter_id, reference, reading.read_at)
                if replacements
                else None
            )
            verdict = judge(reading, meter_limits, reference, replacement=replacement)
            if verdict.plausible:
                if reading.total is not None:
                    references[meter_id] = _reading_registers(reading)
            else:
                results[i] = (verdict, reference[0] if reference else None)
        if late:
            self._judge_late(items, late, limits, replacements, results)
        return results

    def _judge_late(self, items, late, limits, replacements, results):
        """Judge readings older than their meter's last accepted one against the accepted readings just
        before and just after each (one query)."""
        rows = self.env.execute_query(
            SQL(
                """SELECT b.i, p.read_at, %(before)s, f.read_at, %(after)s
                     FROM unnest(%(index)s::int[], %(meters)s::int[], %(times)s::timestamp[])
                          AS b(i, meter_id, at)
                LEFT JOIN LATERAL (
                          SELECT * FROM prepaid_meter_reading
                           WHERE meter_id = b.meter_id AND read_at < b.at AND state = 'valid'
                             AND total IS NOT NULL
                        ORDER BY read_at DESC LIMIT 1
                          ) AS p ON TRUE
                LEFT JOIN LATERAL (
                          SELECT * FROM prepaid_meter_reading
                           WHERE meter_id = b.meter_id AND read_at > b.at AND state = 'valid'
                             AND total IS NOT NULL
                        ORDER BY read_at LIMIT 1
                          ) AS f ON TRUE""",
                before=SQL(", ").join(SQL("p.%s::text", SQL.identifier(name)) for name in REGISTERS),
                after=SQL(", ").join(SQL("f.%s::text", SQL.identifier(name)) for name in REGISTERS),
                index=late,
                meters=[items[i][0] for i in late],
                times=[_naive_utc(items[i][1].read_at) for i in late],
            )
        )
        width = len(REGISTERS)
        for i, before_at, *rest in rows:
            meter_id, reading = items[i]
            after_at, after = rest[width], rest[width + 1 :]
            previous = _registers(before_at, rest[:width]) if before_at else None
            following = _registers(after_at, after) if after_at else None
            if previous is not None and reading.read_at <= previous[0]:
                continue  # the reading is stored already (its own time)
            if following is not None and reading.read_at >= following[0]:
                continue
            replacement = self._replacement_between(replacements, meter_id, previous, reading.read_at)
            verdict = judge(reading, limits[meter_id], previous, following, replacement=replacement)
            if not verdict.plausible:
                results[i] = (verdict, previous[0] if previous else None)

    @staticmethod
    def _replacement_between(replacements, meter_id, reference, at):
        """The first meter replacement of the meter between ``reference`` (a registers tuple) and ``at``."""
        swaps = replacements.get(meter_id) if replacements else None
        if not swaps or reference is None:
            return None
        return next((swap for swap in swaps if reference[0] <= swap.at <= at), None)

    @staticmethod
    def _plausibility_factor(text):
        """The system parameter ``prepaid_metering.plausibility_factor`` (default 1) as a Decimal."""
        try:
            factor = Decimal((text or "1").strip())
        except InvalidOperation:
            factor = None
        if factor is None or not factor.is_finite() or factor <= 0:
            _logger.warning("%s = %r is not a positive number: 1 is used", FACTOR_PARAM, text)
            return Decimal(1)
        return factor

    @api.model
    def _plausibility_meter_columns(self):
        """Extra columns of ``prepaid_meter`` :meth:`_plausibility_limits` reads (billing adds the register
        limit)."""
        return ()

    @api.model
    def _plausibility_limits(self, utility, capacity, ct_ratio, factor, extra):
        """The engine :class:`~prepaid_engine.plausibility.Limits` of a meter (``extra``: the values of
        :meth:`_plausibility_meter_columns`, by name)."""
        return Limits(utility, capacity, ct_ratio=max(ct_ratio or 1, 1), factor=factor)

    @api.model
    def _plausibility_replacements(self, meter_ids):
        """``{meter id: [engine Replacement, ...]}`` in time order (billing records replacements)."""
        return {}

    @api.model
    def _plausibility_context(self, meter_ids):
        """``({meter id: Limits}, {meter id: registers tuple of its last accepted reading})`` in one query
        (which also reads the factor parameter and the models' capacities). Limits are built once per
        capacity, CT ratio and extra values; a model without a capacity is judged by its utility's
        default."""
        extra = self._plausibility_meter_columns()
        self.env["prepaid.meter.model"].flush_model(CAPACITY_FIELDS)
        self.env["ir.config_parameter"].flush_model()
        rows = self.env.execute_query(
            SQL(
                """SELECT m.id, m.utility, m.ct_ratio, mm.max_current::text, mm.nominal_voltage::text,
                          mm.phases, mm.max_flow::text%(extra_m)s,
                          (SELECT value FROM ir_config_parameter WHERE key = %(param)s),
                          r.read_at, %(registers)s
                     FROM unnest(%(meters)s::int[]) AS b(id)
               CROSS JOIN LATERAL (
                          SELECT id, utility, ct_ratio, model_id%(extra)s
                            FROM prepaid_meter WHERE id = b.id OFFSET 0
                          ) AS m
                     JOIN prepaid_meter_model mm ON mm.id = m.model_id
                LEFT JOIN LATERAL (
                          SELECT read_at, %(names)s FROM prepaid_meter_reading
                           WHERE meter_id = b.id AND state = 'valid' AND total IS NOT NULL
                        ORDER BY read_at DESC LIMIT 1
                          ) AS r ON TRUE""",
                names=SQL(", ").join(SQL.identifier(name) for name in REGISTERS),
                extra=SQL("").join(SQL(", %s", SQL.identifier(name)) for name in extra),
                extra_m=SQL("").join(SQL(", m.%s", SQL.identifier(name)) for name in extra),
                param=FACTOR_PARAM,
                registers=REGISTER_COLUMNS,
                meters=meter_ids,
            )
        )
        cache, limits, references = {}, {}, {}
        width = 7 + len(extra)
        factor = self._plausibility_factor(rows[0][width]) if rows else Decimal(1)
        for row in rows:
            meter_id = row[0]
            key = row[1:width]
            meter_limits = cache.get(key)
            if meter_limits is None:
                meter_limits = cache[key] = self._build_limits(meter_id, row, extra, factor)
            limits[meter_id] = meter_limits
            if row[width + 1] is not None:
                references[meter_id] = _registers(row[width + 1], row[width + 2 :])
        return limits, references

    @api.model
    def _build_limits(self, meter_id, row, extra, factor):
        utility, ct_ratio, max_current, voltage, phases, max_flow = row[1:7]
        try:
            if utility == "water":
                capacity = Capacity(max_flow=Decimal(max_flow)) if max_flow and Decimal(max_flow) else None
            elif max_current and voltage and phases and Decimal(max_current) and Decimal(voltage):
                capacity = Capacity(Decimal(max_current), Decimal(voltage), phases)
            else:
                capacity = None
            return self._plausibility_limits(
                utility, capacity, ct_ratio, factor, dict(zip(extra, row[7 : 7 + len(extra)], strict=True))
            )
        except ConfigError as exc:
            _logger.warning("meter %s: no plausibility limits (%s): its utility's default", meter_id, exc)
            return Limits(utility, None, ct_ratio=max(ct_ratio or 1, 1), factor=factor)

    # -- quarantine -----------------------------------------------------------------------------------------
    @api.model
    def _raise_anomalies(self, quarantined):
        """Raise (or extend) an anomaly for each meter with quarantined readings: ``quarantined`` is a list of
        ``(reading id, (verdict, time of the accepted reading it was compared with))``."""
        self.env["prepaid.anomaly"].sudo()._raise_implausible_readings(quarantined)

    @api.private
    def _accept_quarantined(self):
        """Make these quarantined readings valid: the meters and billing follow them as if they had just
        arrived (the settlement charges their consumption from the last settled reading). Returns them."""
        readings = self.filtered(lambda r: r.state == "quarantined")
        if readings:
            self._set_state(readings, "valid")
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

    @api.private
    def _reject_quarantined(self):
        """Keep these quarantined readings out of billing for good. Returns them."""
        readings = self.filtered(lambda r: r.state == "quarantined")
        if readings:
            self._set_state(readings, "rejected")
        return readings

    def _set_state(self, readings, state):
        self.env.execute_query(
            SQL("UPDATE prepaid_meter_reading SET state = %s WHERE id = ANY(%s)", state, readings.ids)
        )
        readings.invalidate_recordset(["state"])

    @api.model
    @api.private
    def _after_ingest(self, new_reading_ids, meter_ids=None):
        """Hook called by :meth:`_ingest` (and manual entry, and accepting quarantined readings) with the ids
        of the valid readings it really inserted (possibly none) and the ids of their meters (``None``: not
        given, read them from the readings).

        Billing extends it to settle the new readings right after ingestion. Nothing to do here.
        """
        return new_reading_ids

    @api.model
    def _meters_of_readings(self, reading_ids, meter_ids=None):
        """The meter ids of these readings (``meter_ids`` when the caller knows them already): what the
        hooks of :meth:`_after_ingest` work on."""
        if meter_ids is not None:
            return list(meter_ids)
        return [
            row[0]
            for row in self.env.execute_query(
                SQL(
                    "SELECT DISTINCT meter_id FROM prepaid_meter_reading WHERE id = ANY(%s)",
                    list(reading_ids),
                )
            )
        ]
