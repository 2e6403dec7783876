import logging
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import UTC
from decimal import Decimal
from types import SimpleNamespace
from typing import NamedTuple

from odoo import api, fields, models
from odoo.addons.prepaid_base.tools.bulk_sql import (
    batch_planner,
    copy_text,
    copy_to_temp,
    gc_paused,
    id_array,
)
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL, split_every
from psycopg2 import Error as PsycopgError
from psycopg2.errors import UniqueViolation

from prepaid_engine.calendar import cycle_bounds
from prepaid_engine.errors import EngineError
from prepaid_engine.rating import (
    Bands,
    ConsumptionError,
    CycleState,
    Register,
    Replacement,
    consumption,
    rate_cycle,
)

_logger = logging.getLogger(__name__)

CURSOR_UNIQUE = "prepaid_settlement_cursor_meter_uniq"


def is_settlement_conflict(exc):
    """Whether ``exc`` means another transaction is settling the same meters: a lock or serialization
    conflict, or the first cursor of a never-settled meter inserted by a transaction that committed after
    this one's snapshot (Odoo's REPEATABLE READ does not show it; the second INSERT violates UNIQUE(meter)).
    Either way nothing was charged twice: the caller rolls its savepoint back and settles again later."""
    if isinstance(exc, PG_CONCURRENCY_EXCEPTIONS_TO_RETRY):
        return True
    return isinstance(exc, UniqueViolation) and exc.diag.constraint_name == CURSOR_UNIQUE


@contextmanager
def settlement_savepoint(env):
    """Run the block (a settlement) in a savepoint of ``env``'s cursor and absorb a settlement conflict
    (:func:`is_settlement_conflict`): the savepoint is rolled back, the caches are dropped and the error is
    left on the yielded namespace's ``conflict`` (None when the block went through) for the caller to log and
    defer the work; any other error propagates."""
    outcome = SimpleNamespace(conflict=None)
    try:
        with env.cr.savepoint():
            yield outcome
    except PsycopgError as exc:
        if not is_settlement_conflict(exc):
            raise
        env.invalidate_all()
        outcome.conflict = exc


BATCH = 2000  # meters settled per batch: one locking read, one ledger COPY, one balance and one cursor UPDATE
BILLABLE_ACCOUNT_STATES = ("open", "suspended")
ZERO = Decimal(0)
ZERO_BANDS = Bands(ZERO, ZERO, ZERO, ZERO)
# Cursor columns written by the settlement, with their SQL types (numeric ones carry exact decimals), in the
# order of a cursor's COPY line: the meter, the values _settle_meter returns, when it was settled.
CURSOR_COLUMNS = (
    ("meter_id", "int"),
    ("read_at", "timestamp"),
    ("total", "numeric"),
    ("sharp", "numeric"),
    ("peak", "numeric"),
    ("flat", "numeric"),
    ("valley", "numeric"),
    ("cycle_start", "timestamp"),
    ("cycle_quantity", "numeric"),
    ("cycle_sharp", "numeric"),
    ("cycle_peak", "numeric"),
    ("cycle_flat", "numeric"),
    ("cycle_valley", "numeric"),
    ("cycle_exact", "numeric"),
    ("cycle_amount", "numeric"),
    ("unbilled_quantity", "numeric"),
    ("attempted_at", "timestamp"),
    ("last_error", "varchar"),
    ("settled_at", "timestamp"),
)
NULL = "\\N"  # COPY's NULL
TAB = "\t"
NO_STATE = (None,) * 8  # the cursor's cycle columns when there is no cycle state
CURSOR_BULK_TABLE = "prepaid_cursor_bulk"
# What the settlement reads of a meter, its unit and its cursor (numeric cursor columns as text: exact).
METER_COLUMNS = SQL(
    """m.id, m.account_id, a.state, m.billing_mode, m.utility, m.unit_id, m.tariff_id, m.building_id,
       m.company_id, m.rollover_at, m.last_reading_at, u.parent_id, u.electricity_tariff_id,
       u.water_tariff_id, u.effective_tz, c.id, c.read_at, c.total::text, c.sharp::text, c.peak::text,
       c.flat::text, c.valley::text, c.cycle_start, c.cycle_quantity::text, c.cycle_sharp::text,
       c.cycle_peak::text, c.cycle_flat::text, c.cycle_valley::text, c.cycle_exact::text,
       c.unbilled_quantity::text, c.last_error"""
)
READING_COLUMNS = SQL("r.read_at, r.total::text, r.sharp::text, r.peak::text, r.flat::text, r.valley::text")


class MeterRow(NamedTuple):
    """A meter as the settlement reads it (:data:`METER_COLUMNS`)."""

    id: int
    account_id: int | None
    account_state: str | None
    billing_mode: str
    utility: str
    unit_id: int | None
    tariff_id: int | None
    building_id: int | None
    company_id: int
    rollover_at: str | None
    last_reading_at: object
    unit_parent_id: int | None
    unit_electricity_tariff_id: int | None
    unit_water_tariff_id: int | None
    unit_tz: str | None
    cursor_id: int | None
    read_at: object
    total: str | None
    sharp: str | None
    peak: str | None
    flat: str | None
    valley: str | None
    cycle_start: object
    cycle_quantity: str | None
    cycle_sharp: str | None
    cycle_peak: str | None
    cycle_flat: str | None
    cycle_valley: str | None
    cycle_exact: str | None
    unbilled_quantity: str | None
    last_error: str | None


METER_WIDTH = len(MeterRow._fields)


def aware(value):
    return value.replace(tzinfo=UTC) if value is not None else None


def naive(value):
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None


def exact(value):
    """A numeric column read as text (or None) as an exact Decimal."""
    return Decimal(value) if value is not None else None


def compact(at):
    """``2026-03-02T08:15:00Z`` style UTC stamp (microseconds only when there are some)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


class PrepaidSettlement(models.AbstractModel):
    """Readings -> consumption intervals -> rated charges -> ledger deductions, set-based.

    Per batch of meters: one query locks the cursors (``FOR UPDATE``, meter order) and reads them with their
    meters, units, accounts and every new reading; the engine turns consecutive readings into intervals
    (:func:`consumption`: roll-over, replacement, band registers) and rates them with the effective tariff
    in the property's time zone, cut at the building's settlement cycles (:func:`rate_cycle`: tiers and
    allowances restart each cycle). Each rated interval with a charge becomes one ledger deduction keyed
    ``cons:<meter>:<from>:<to>``; all of a batch's lines go in with one ``COPY`` and the balances with one
    ``UPDATE`` (``prepaid.account._post_ledger``), and the cursors move with one ``UPDATE`` (and one
    ``INSERT`` for meters settled the first time), in the same transaction: settling twice deducts once,
    and a crash leaves nothing half-done.
    """

    _name = "prepaid.settlement"
    _description = "Prepaid Settlement"

    @api.model
    def _get_meter_ids_to_settle(self, limit=None):
        """Active meters read since their last settlement attempt, in id order."""
        rows = self._query_meters_to_settle(
            SQL("m.id"), SQL("ORDER BY m.id %s", SQL("LIMIT %s", limit) if limit else SQL())
        )
        return [row[0] for row in rows]

    @api.model
    def _count_meters_to_settle(self):
        """How many meters :meth:`_get_meter_ids_to_settle` would return."""
        return self._query_meters_to_settle(SQL("COUNT(*)"), SQL())[0][0]

    def _query_meters_to_settle(self, select, tail):
        self.env["prepaid.meter"].flush_model(["active", "last_reading_at"])
        self.env["prepaid.settlement.cursor"].flush_model()
        return self.env.execute_query(
            SQL(
                """SELECT %s FROM prepaid_meter m
                     LEFT JOIN prepaid_settlement_cursor c ON c.meter_id = m.id
                    WHERE m.active AND m.last_reading_at IS NOT NULL
                      AND (c.id IS NULL OR c.attempted_at IS NULL OR m.last_reading_at > c.attempted_at)
                    %s""",
                select,
                tail,
            )
        )

    @api.model
    @api.private
    def _settle_meters(self, meter_ids):
        """Settle these meters in batches of :data:`BATCH`; returns counters (meters, readings, intervals,
        lines, errors). The bulk statements are planned for batches (:func:`batch_planner`) and the garbage
        collector pauses meanwhile (:func:`gc_paused`)."""
        stats = Counter(meters=0, readings=0, intervals=0, lines=0, errors=0)
        with gc_paused(), batch_planner(self.env.cr):
            for chunk in split_every(BATCH, sorted(set(meter_ids)), list):
                stats.update(self._settle_batch(chunk))
        return stats

    # ------------------------------------------------------------------ one batch

    def _fetch_batch(self, meter_ids):
        """``({meter id: MeterRow}, {meter id: [reading values]}, {meter id: [Replacement]})`` of a batch.

        One query locks the cursors of the meters settled before (in meter order) and reads them with
        their meters, units, accounts and new readings (after the cursor, from the (meter, time) index: the
        cost follows the new readings, not a meter's history). Meters without a settled reading yet (no
        cursor, or a cursor that never saw a reading) take their latest reading as their baseline: billing
        starts there. Only valid readings count: a quarantined or rejected one is never charged (an accepted
        one is valid again, and charged from the cursor like any new reading)."""
        cr = self.env.cr
        for model in (
            "prepaid.meter",
            "prepaid.meter.reading",
            "prepaid.settlement.cursor",
            "prepaid.meter.replacement",
            "prepaid.account",
            "prepaid.property",
        ):
            self.env[model].flush_model()
        # Driven by the batch's ids, one meter at a time (LATERAL .. OFFSET 0 keeps the planner from
        # hashing whole tables for a batch that is a small part of the fleet): lock the cursor, then read its
        # meter and that meter's readings after it.
        cr.execute(
            SQL(
                """SELECT %s, %s
                     FROM unnest(%s::int[]) AS b(meter_id)
               CROSS JOIN LATERAL (
                          SELECT * FROM prepaid_settlement_cursor WHERE meter_id = b.meter_id FOR UPDATE
                          ) AS c
               CROSS JOIN LATERAL (SELECT * FROM prepaid_meter WHERE id = b.meter_id OFFSET 0) AS m
                LEFT JOIN prepaid_account a ON a.id = m.account_id
                LEFT JOIN prepaid_property u ON u.id = m.unit_id
                LEFT JOIN LATERAL (
                          SELECT read_at, total, sharp, peak, flat, valley FROM prepaid_meter_reading
                           WHERE meter_id = b.meter_id AND read_at > c.read_at AND total IS NOT NULL
                             AND state = 'valid'
                          OFFSET 0
                          ) AS r ON TRUE""",
                METER_COLUMNS,
                READING_COLUMNS,
                id_array(meter_ids),
            ),
            # Meeting another settlement of these meters here is expected (settlement_savepoint defers the
            # batch): not a "bad query" for Odoo's SQL log.
            log_exceptions=False,
        )
        meters, readings = {}, defaultdict(list)
        for row in cr.fetchall():
            meter_id = row[0]
            if meter_id not in meters:
                meters[meter_id] = MeterRow._make(row[:METER_WIDTH])
            if row[METER_WIDTH] is not None:
                readings[meter_id].append(row[METER_WIDTH:])
        for values in readings.values():
            if len(values) > 1:
                values.sort()
        baseline = [mid for mid in meter_ids if mid not in meters or meters[mid].read_at is None]
        if baseline:
            cr.execute(
                SQL(
                    """SELECT %s, %s
                         FROM prepaid_meter m
                    LEFT JOIN prepaid_account a ON a.id = m.account_id
                    LEFT JOIN prepaid_property u ON u.id = m.unit_id
                    LEFT JOIN prepaid_settlement_cursor c ON c.meter_id = m.id
                    LEFT JOIN LATERAL (
                              SELECT read_at, total, sharp, peak, flat, valley FROM prepaid_meter_reading
                               WHERE meter_id = m.id AND total IS NOT NULL AND state = 'valid'
                            ORDER BY read_at DESC LIMIT 1
                              ) AS r ON TRUE
                        WHERE m.id = ANY(%s::int[])""",
                    METER_COLUMNS,
                    READING_COLUMNS,
                    id_array(baseline),
                )
            )
            for row in cr.fetchall():
                meter_id = row[0]
                meters[meter_id] = MeterRow._make(row[:METER_WIDTH])
                if row[METER_WIDTH] is not None:
                    readings[meter_id] = [row[METER_WIDTH:]]
        cr.execute(
            SQL(
                """SELECT meter_id, replaced_at, old_final::text, new_initial::text
                     FROM prepaid_meter_replacement
                    WHERE meter_id = ANY(%s::int[]) ORDER BY meter_id, replaced_at""",
                id_array(meter_ids),
            )
        )
        replacements = defaultdict(list)
        for meter_id, at, old_final, new_initial in cr.fetchall():
            at = aware(at)
            replacements[meter_id].append(
                Replacement(Register(at, Decimal(old_final)), Register(at, Decimal(new_initial)), at)
            )
        return meters, readings, replacements

    def _rating_context(self, meters):
        """Per meter to rate: (engine tariff, an EngineError or None; settlement calendar). Tariffs are built
        once per tariff and time zone, calendars once per building; the tariff a unit inherits is resolved
        once per parent (``prepaid.property._get_effective_tariffs``), not once per unit."""
        Property = self.env["prepaid.property"].sudo()
        Tariff = self.env["prepaid.tariff"].sudo()
        companies = self.env["res.company"].sudo().browse({row.company_id for row in meters.values()})
        quantum = {c.id: Decimal(1).scaleb(-c.currency_id.decimal_places) for c in companies}
        # The time zone of a meter without a unit is its building's (a unit's comes with the meter's row).
        buildings = {row.building_id for row in meters.values() if row.building_id and not row.unit_id}
        building_tz = (
            dict(
                self.env.execute_query(
                    SQL(
                        "SELECT id, effective_tz FROM prepaid_property WHERE id = ANY(%s::int[])",
                        id_array(buildings),
                    )
                )
            )
            if buildings
            else {}
        )
        own = {"electricity": "unit_electricity_tariff_id", "water": "unit_water_tariff_id"}
        inherited = {}
        for utility, column in own.items():
            parents = {
                row.unit_parent_id
                for row in meters.values()
                if row.unit_id and row.utility == utility and not getattr(row, column)
            }
            parents.discard(None)
            if parents:
                effective = Property.browse(parents)._get_effective_tariffs(utility)
                inherited[utility] = {pid: tariff.id for pid, tariff in effective.items()}
        calendars, default_calendars, engine_tariffs, context = {}, {}, {}, {}
        # Buildings and tariffs are browsed one at a time below, but read together (one query per model).
        building_ids = tuple({row.building_id for row in meters.values()} - {None})
        tariff_ids = {
            tid
            for row in meters.values()
            for tid in (row.tariff_id, row.unit_electricity_tariff_id, row.unit_water_tariff_id)
        }
        tariff_ids.update(tid for tariffs in inherited.values() for tid in tariffs.values())
        tariff_ids = tuple(tariff_ids - {None, False})
        for meter_id, row in meters.items():
            building_id, unit_id, utility = row.building_id, row.unit_id, row.utility
            if building_id:
                calendar = calendars.get(building_id)
                if calendar is None:
                    calendar = calendars[building_id] = (
                        Property.browse(building_id)
                        .with_prefetch(building_ids)
                        ._prepaid_settlement_calendar()
                    )
            else:
                company_id = row.company_id
                if company_id not in default_calendars:
                    default_calendars[company_id] = Property._prepaid_default_calendar(
                        companies.browse(company_id)
                    )
                calendar = default_calendars[company_id]
            tariff_id = row.tariff_id
            if not tariff_id and unit_id:
                tariff_id = getattr(row, own[utility]) or inherited.get(utility, {}).get(row.unit_parent_id)
            tz = (row.unit_tz if unit_id else building_tz.get(building_id)) or calendar.tz
            key = (tariff_id, tz, row.company_id)
            tariff = engine_tariffs.get(key)
            if tariff_id and tariff is None:
                try:
                    tariff = (
                        Tariff.browse(tariff_id)
                        .with_prefetch(tariff_ids)
                        ._prepare_engine_tariff(tz, quantum[row.company_id])
                    )
                except EngineError as exc:
                    tariff = exc
                engine_tariffs[key] = tariff
            context[meter_id] = (tariff if tariff_id else None, calendar, tz)
        return context, quantum

    def _settle_batch(self, meter_ids):
        meters, readings, replacements = self._fetch_batch(meter_ids)
        context, quantum = self._rating_context(meters)
        settled_at = copy_text(fields.Datetime.now())
        ledger_rows, cursor_lines, errors = [], [], {}
        n_readings = n_intervals = n_errors = 0
        checked_starts = {}  # (calendar, cycle start) -> whether it is a cycle start of the calendar
        stamps = {}  # instant -> its compact UTC stamp (idempotency keys)
        ends = {}  # instant -> naive UTC (ledger dates)
        new_cursors = False
        consumed = []  # (meter row, tz, rated or unbilled intervals, billed): the batch's daily facts
        for meter_id in sorted(meters):
            row = meters[meter_id]
            new = readings.get(meter_id, ())
            n_readings += len(new)
            tariff, calendar, tz = context[meter_id]
            billable = (
                row.billing_mode == "platform"
                and row.account_id
                and row.account_state in BILLABLE_ACCOUNT_STATES
            )
            lines, cursor, error, unbilled = self._settle_meter(
                row,
                new,
                replacements.get(meter_id, ()),
                tariff if billable else None,
                calendar,
                billable,
                quantum[row.company_id],
                checked_starts,
            )
            is_new = not row.cursor_id
            new_cursors = new_cursors or is_new
            cursor_lines.append(self._cursor_line(meter_id, cursor, settled_at, is_new))
            n_intervals += len(lines)
            if error:
                n_errors += 1
                if error != row.last_error:
                    errors[meter_id] = error
            if unbilled:
                consumed.append((row, tz, unbilled, False))
            if not lines:
                continue
            consumed.append((row, tz, lines, True))
            utility = row.utility
            for rated in lines:
                if not rated.charge:
                    continue
                interval = rated.interval
                end = interval.end
                ledger_rows.append(
                    {
                        "account_id": row.account_id,
                        "kind": "consumption",
                        "amount": -rated.charge,
                        "idempotency_key": self._deduction_key(meter_id, rated, stamps),
                        "date": ends.get(end) or ends.setdefault(end, naive(end)),
                        "quantity": interval.total,
                        "utility": utility,
                        "res_model": "prepaid.meter",
                        "res_id": meter_id,
                    }
                )
        posted = (
            self.env["prepaid.account"].sudo()._post_ledger(ledger_rows, count_only=True, return_keys=True)
        )
        lines = len(posted)
        if len(posted) < len(ledger_rows):
            # Deductions whose key was booked already (a cursor moved back): their consumption is counted.
            booked = {r["idempotency_key"] for r in ledger_rows} - posted
            consumed = [
                (row, tz, [r for r in items if self._deduction_key(row.id, r, stamps) not in booked], billed)
                if billed
                else (row, tz, items, billed)
                for row, tz, items, billed in consumed
            ]
        self.env["prepaid.consumption"].sudo()._add_settled(consumed)
        self.env["prepaid.anomaly"].sudo()._raise_unbilled(
            [(row, items) for row, _tz, items, billed in consumed if not billed]
        )
        unbilled = defaultdict(float)
        for row, _tz, items, billed in consumed:
            if not billed and items:
                unbilled[row.id] += float(sum(item.total for item in items))
        if unbilled:
            self.env["prepaid.meter"].sudo()._track_temporary_use(unbilled)
        self._write_cursors(cursor_lines, [mid for mid, row in meters.items() if row.cursor_id], new_cursors)
        if errors:
            self._report_errors(errors)
        return Counter(
            meters=len(meters), readings=n_readings, intervals=n_intervals, lines=lines, errors=n_errors
        )

    @staticmethod
    def _deduction_key(meter_id, rated, stamps):
        """The deduction's idempotency key: ``cons:<meter>:<interval start>:<interval end>`` (``stamps``:
        the batch's cache of compact UTC stamps)."""
        start, end = rated.interval.start, rated.interval.end
        start_stamp = stamps.get(start) or stamps.setdefault(start, compact(start))
        end_stamp = stamps.get(end) or stamps.setdefault(end, compact(end))
        return f"cons:{meter_id}:{start_stamp}:{end_stamp}"

    @staticmethod
    def _state_of(row):
        """The engine's cycle state stored on a cursor row (exact), or None."""
        if row.cycle_start is None:
            return None
        sharp, peak, flat, valley = (
            row.cycle_sharp,
            row.cycle_peak,
            row.cycle_flat,
            row.cycle_valley,
        )
        if sharp == peak == flat == valley == "0" or sharp == peak == flat == valley is None:
            bands = ZERO_BANDS
        else:
            bands = Bands(*(Decimal(value or 0) for value in (sharp, peak, flat, valley)))
        return CycleState(
            aware(row.cycle_start),
            Decimal(row.cycle_quantity or 0),
            bands,
            Decimal(row.cycle_exact or 0),
        )

    @staticmethod
    def _state_values(state, quantum):
        """The cursor's cycle columns (cycle start .. cycle amount) of ``state``."""
        if state is None:
            return NO_STATE
        bands = state.consumed_by_band
        return (
            naive(state.cycle_start),
            state.consumed_total,
            bands.sharp,
            bands.peak,
            bands.flat,
            bands.valley,
            state.exact_charge,
            state.charged(quantum),
        )

    def _settle_meter(self, row, new, replacements, tariff, calendar, billable, quantum, checked_starts):
        """Settle one meter's new readings. Returns (rated intervals, cursor values, error message or None,
        intervals consumed without a charge); the cursor values are its columns from ``read_at`` to
        ``last_error`` (:data:`CURSOR_COLUMNS` without the meter and ``settled_at``).

        A pair of readings that makes no consumption (the index fell without a declared replacement or a
        plausible roll-over) charges nothing: the later reading becomes the new baseline and the error is
        reported. A tariff the engine refuses, or a billable meter without a tariff, holds the cursor (nothing
        is lost: the readings are settled once the tariff is fixed)."""
        state = self._state_of(row)
        consumed_unbilled = ()
        registers = (row.read_at, row.total, row.sharp, row.peak, row.flat, row.valley)
        unbilled = row.unbilled_quantity or "0"
        attempted_at = row.last_reading_at
        if not new:
            return (
                [],
                (*registers, *self._state_values(state, quantum), unbilled, attempted_at, None),
                None,
                (),
            )
        rollover_at = Decimal(row.rollover_at.strip()) if row.rollover_at else None
        prev = None
        if row.read_at is not None:
            prev = self._make_register(*registers)
        intervals, problems, last = [], [], None
        for values in new:
            try:
                curr = self._make_register(*values)
            except ConsumptionError as exc:
                problems.append(str(exc))
                continue
            last = values
            if prev is not None:
                replacement = (
                    next((r for r in replacements if prev.at <= r.at <= curr.at), None)
                    if replacements
                    else None
                )
                try:
                    intervals.append(
                        consumption(prev, curr, rollover_at=rollover_at, replacement=replacement)
                    )
                except ConsumptionError as exc:
                    problems.append(str(exc))
            prev = curr
        rated = []
        if billable and intervals:
            if tariff is None or isinstance(tariff, EngineError):
                message = str(tariff) if tariff else self.env._("No tariff applies to this meter.")
                state_values = self._state_values(state, quantum)
                return [], (*registers, *state_values, unbilled, attempted_at, message), message, ()
            if state is not None:
                key = (id(calendar), state.cycle_start)
                if key not in checked_starts:
                    checked_starts[key] = cycle_bounds(calendar, state.cycle_start)[0] == state.cycle_start
                if not checked_starts[key]:
                    state = None  # the building's calendar changed: the new cycle starts from scratch
            try:
                rated = rate_cycle(tariff, intervals, calendar, state)
            except EngineError as exc:
                state_values = self._state_values(self._state_of(row), quantum)
                return [], (*registers, *state_values, unbilled, attempted_at, str(exc)), str(exc), ()
            if rated:
                state = rated[-1].new_state
        elif intervals:
            unbilled = Decimal(unbilled) + sum((interval.total for interval in intervals), ZERO)
            consumed_unbilled = intervals
        if last is not None:
            registers = last
        error = "; ".join(problems) or None
        return (
            rated,
            (*registers, *self._state_values(state, quantum), unbilled, attempted_at, error),
            error,
            consumed_unbilled,
        )

    @staticmethod
    def _make_register(read_at, total, sharp=None, peak=None, flat=None, valley=None):
        """An engine register from stored values (numeric columns read as text: exact decimals)."""
        if sharp is None and peak is None and flat is None and valley is None:
            return Register(aware(read_at), exact(total))
        return Register(aware(read_at), exact(total), exact(sharp), exact(peak), exact(flat), exact(valley))

    @staticmethod
    def _cursor_line(meter_id, cursor, settled_at, is_new):
        """The COPY line of a meter's cursor (:data:`CURSOR_COLUMNS`, then whether it is new). Every value but
        the error is a number, a numeric column's text or a datetime: ``str()`` is their COPY text."""
        *values, error = cursor
        return (
            f"{meter_id}\t{TAB.join([NULL if value is None else str(value) for value in values])}\t"
            f"{copy_text(error)}\t{settled_at}\t{'t' if is_new else 'f'}\n"
        )

    def _write_cursors(self, lines, existing, any_new):
        """The cursors travel by COPY into a session temporary table; one ``UPDATE .. FROM`` moves those
        that exist (the meters ``existing``), one ``INSERT .. SELECT`` adds the meters settled for the first
        time."""
        cr = self.env.cr
        copy_to_temp(cr, CURSOR_BULK_TABLE, (*CURSOR_COLUMNS, ("is_new", "boolean")), lines)
        names = [name for name, _type in CURSOR_COLUMNS]
        # ``c.meter_id = ANY(..)``: the cursors by their index, not the whole table hashed (see above).
        cr.execute(
            SQL(
                """UPDATE prepaid_settlement_cursor AS c SET %s
                     FROM %s AS v
                    WHERE c.meter_id = v.meter_id AND NOT v.is_new AND c.meter_id = ANY(%s::int[])""",
                SQL(", ").join(
                    SQL("%s = v.%s", SQL.identifier(name), SQL.identifier(name))
                    for name in names
                    if name != "meter_id"
                ),
                SQL.identifier(CURSOR_BULK_TABLE),
                id_array(existing),
            )
        )
        if any_new:
            columns = SQL(", ").join(SQL.identifier(name) for name in names)
            cr.execute(
                SQL(
                    "INSERT INTO prepaid_settlement_cursor (%s) SELECT %s FROM %s WHERE is_new",
                    columns,
                    columns,
                    SQL.identifier(CURSOR_BULK_TABLE),
                ),
                log_exceptions=False,  # another first settlement of the meter: expected, deferred
            )
        self.env["prepaid.settlement.cursor"].invalidate_model()
        self.env["prepaid.meter"].invalidate_model(
            ["settlement_cursor_ids", "settled_until", "settlement_error", "cycle_quantity", "cycle_amount"]
        )

    def _report_errors(self, errors):
        """A to-do for a prepaid manager on each meter whose readings could not be charged."""
        Meter = self.env["prepaid.meter"].sudo()
        Anomaly = self.env["prepaid.anomaly"]
        managers = {}  # company -> the manager its meters' to-dos go to (once per company, not per meter)
        for meter in Meter.browse(sorted(errors)):
            _logger.warning("settlement of meter %s (%s): %s", meter.id, meter.name, errors[meter.id])
            company = meter.company_id
            if company not in managers:
                managers[company] = Anomaly._manager_of(company)  # who reviews the company's anomalies
            user = managers[company]
            meter.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=self.env._("Readings not charged"),
                note=self.env._(
                    "The settlement could not charge readings of this meter: %(error)s Check the readings "
                    "(replacement, register limit, tariff) and adjust the balance if needed.",
                    error=errors[meter.id],
                ),
                user_id=(user or self.env.user).id,
            )
