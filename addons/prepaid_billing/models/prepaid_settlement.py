import logging
from collections import Counter, defaultdict
from datetime import UTC
from decimal import Decimal

from odoo import api, fields, models
from odoo.tools import SQL, split_every

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

from .bulk_sql import copy_to_temp

_logger = logging.getLogger(__name__)

BATCH = 2000  # meters settled per batch: one readings query, one ledger INSERT, one cursor write
BANDS = ("sharp", "peak", "flat", "valley")
BILLABLE_ACCOUNT_STATES = ("open", "suspended")
UNIT_LABEL = {"electricity": "kWh", "water": "m³"}
ZERO = Decimal(0)
# Cursor columns written by the settlement, with their SQL types (numeric ones carry exact decimals).
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
    ("settled_at", "timestamp"),
    ("attempted_at", "timestamp"),
    ("last_error", "varchar"),
)
STATE_COLUMNS = ("cycle_quantity", "cycle_sharp", "cycle_peak", "cycle_flat", "cycle_valley", "cycle_exact")


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


def consumption_key(meter_id, interval):
    """Idempotency key of the deduction of one rated interval (or cycle piece) of one meter."""
    return f"cons:{meter_id}:{compact(interval.start)}:{compact(interval.end)}"


class PrepaidSettlement(models.AbstractModel):
    """Readings -> consumption intervals -> rated charges -> ledger deductions, set-based.

    Per batch of meters: the cursors are locked (``FOR UPDATE``, meter order), one query fetches every new
    reading of the batch, the engine turns consecutive readings into intervals (:func:`consumption`:
    roll-over, replacement, band registers) and rates them with the effective tariff in the property's time
    zone, cut at the building's settlement cycles (:func:`rate_cycle`: tiers and allowances restart each
    cycle). Each rated interval with a charge becomes one ledger deduction keyed ``cons:<meter>:<from>:<to>``;
    all of a batch's lines go in with one ``INSERT`` and the balances with one ``UPDATE``
    (``prepaid.account._post_ledger_bulk``), and the cursors move with one ``UPDATE`` (and one ``INSERT``
    for meters settled the first time), in the same transaction: settling twice deducts once, and a crash
    leaves nothing half-done.
    """

    _name = "prepaid.settlement"
    _description = "Prepaid Settlement"

    @api.model
    def _get_meter_ids_to_settle(self, limit=None):
        """Active meters read since their last settlement attempt, in id order."""
        self.env["prepaid.meter"].flush_model(["active", "last_reading_at"])
        self.env["prepaid.settlement.cursor"].flush_model()
        rows = self.env.execute_query(
            SQL(
                """SELECT m.id FROM prepaid_meter m
                     LEFT JOIN prepaid_settlement_cursor c ON c.meter_id = m.id
                    WHERE m.active AND m.last_reading_at IS NOT NULL
                      AND (c.id IS NULL OR c.attempted_at IS NULL OR m.last_reading_at > c.attempted_at)
                 ORDER BY m.id %s""",
                SQL("LIMIT %s", limit) if limit else SQL(),
            )
        )
        return [row[0] for row in rows]

    @api.model
    @api.private
    def _settle_meters(self, meter_ids):
        """Settle these meters in batches of :data:`BATCH`; returns counters (meters, readings, intervals,
        lines, errors)."""
        stats = Counter(meters=0, readings=0, intervals=0, lines=0, errors=0)
        for chunk in split_every(BATCH, sorted(set(meter_ids)), list):
            stats.update(self._settle_batch(chunk))
        return stats

    # ------------------------------------------------------------------ one batch

    def _fetch_batch(self, meter_ids):
        cr = self.env.cr
        for model in (
            "prepaid.meter",
            "prepaid.meter.reading",
            "prepaid.settlement.cursor",
            "prepaid.meter.replacement",
            "prepaid.account",
        ):
            self.env[model].flush_model()
        cr.execute(
            SQL(
                """SELECT id FROM prepaid_settlement_cursor
                    WHERE meter_id = ANY(%s) ORDER BY meter_id FOR UPDATE""",
                meter_ids,
            )
        )
        cr.execute(
            SQL(
                """SELECT m.id, m.account_id, a.state AS account_state, m.billing_mode, m.utility, m.unit_id,
                          m.tariff_id, m.building_id, m.company_id, m.rollover_at, m.last_reading_at,
                          c.id AS cursor_id, c.read_at, c.total::text AS total, c.sharp::text AS sharp,
                          c.peak::text AS peak, c.flat::text AS flat, c.valley::text AS valley,
                          c.cycle_start, c.cycle_quantity::text AS cycle_quantity,
                          c.cycle_sharp::text AS cycle_sharp, c.cycle_peak::text AS cycle_peak,
                          c.cycle_flat::text AS cycle_flat, c.cycle_valley::text AS cycle_valley,
                          c.cycle_exact::text AS cycle_exact, c.unbilled_quantity::text AS unbilled_quantity,
                          c.last_error
                     FROM prepaid_meter m
                LEFT JOIN prepaid_account a ON a.id = m.account_id
                LEFT JOIN prepaid_settlement_cursor c ON c.meter_id = m.id
                    WHERE m.id = ANY(%s)""",
                meter_ids,
            )
        )
        meters = {row["id"]: row for row in cr.dictfetchall()}
        with_baseline = [mid for mid, row in meters.items() if row["read_at"] is not None]
        without = [mid for mid, row in meters.items() if row["read_at"] is None]
        # The one query for the readings of the batch: what came after each cursor, and for a meter settled
        # for the first time its latest reading only (its baseline: billing starts there). Both read the
        # (meter, time) index from the cursor on: the cost follows the new readings, not a meter's history.
        cr.execute(
            SQL(
                """SELECT c.meter_id, r.read_at, r.total::text, r.sharp::text, r.peak::text, r.flat::text,
                          r.valley::text
                     FROM prepaid_settlement_cursor c
               CROSS JOIN LATERAL (
                          SELECT read_at, total, sharp, peak, flat, valley FROM prepaid_meter_reading
                           WHERE meter_id = c.meter_id AND read_at > c.read_at AND total IS NOT NULL
                        ) AS r
                    WHERE c.meter_id = ANY(%s)
                UNION ALL
                   SELECT m.id, r.read_at, r.total::text, r.sharp::text, r.peak::text, r.flat::text,
                          r.valley::text
                     FROM unnest(%s::int[]) AS m(id)
               CROSS JOIN LATERAL (
                          SELECT read_at, total, sharp, peak, flat, valley FROM prepaid_meter_reading
                           WHERE meter_id = m.id AND total IS NOT NULL
                        ORDER BY read_at DESC LIMIT 1
                        ) AS r
                 ORDER BY 1, 2""",
                with_baseline,
                without,
            )
        )
        readings = defaultdict(list)
        for row in cr.fetchall():
            readings[row[0]].append(row[1:])
        cr.execute(
            SQL(
                """SELECT meter_id, replaced_at, old_final::text, new_initial::text
                     FROM prepaid_meter_replacement
                    WHERE meter_id = ANY(%s) ORDER BY meter_id, replaced_at""",
                meter_ids,
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
        companies = self.env["res.company"].sudo().browse({row["company_id"] for row in meters.values()})
        quantum = {c.id: Decimal(1).scaleb(-c.currency_id.decimal_places) for c in companies}
        place_ids = {row["unit_id"] for row in meters.values() if row["unit_id"]}
        place_ids |= {row["building_id"] for row in meters.values() if row["building_id"]}
        Property.flush_model()
        places = {
            row[0]: row[1:]
            for row in self.env.execute_query(
                SQL(
                    """SELECT id, parent_id, electricity_tariff_id, water_tariff_id, effective_tz
                         FROM prepaid_property WHERE id = ANY(%s)""",
                    list(place_ids),
                )
            )
        }
        own = {"electricity": 1, "water": 2}
        inherited = {}
        for utility, column in own.items():
            parents = {
                places[row["unit_id"]][0]
                for row in meters.values()
                if row["unit_id"] and row["utility"] == utility and not places[row["unit_id"]][column]
            }
            parents.discard(None)
            if parents:
                effective = Property.browse(parents)._get_effective_tariffs(utility)
                inherited[utility] = {pid: tariff.id for pid, tariff in effective.items()}
        calendars, default_calendars, engine_tariffs, context = {}, {}, {}, {}
        for meter_id, row in meters.items():
            building_id, unit_id, utility = row["building_id"], row["unit_id"], row["utility"]
            if building_id:
                if building_id not in calendars:
                    calendars[building_id] = Property.browse(building_id)._prepaid_settlement_calendar()
                calendar = calendars[building_id]
            else:
                company_id = row["company_id"]
                if company_id not in default_calendars:
                    default_calendars[company_id] = Property._prepaid_default_calendar(
                        companies.browse(company_id)
                    )
                calendar = default_calendars[company_id]
            tariff_id = row["tariff_id"]
            if not tariff_id and unit_id:
                parent_id, *tariffs, _tz = places[unit_id]
                tariff_id = tariffs[own[utility] - 1] or inherited.get(utility, {}).get(parent_id)
            tz = (places.get(unit_id) or places.get(building_id) or (None,) * 4)[3] or calendar.tz
            key = (tariff_id, tz, row["company_id"])
            if tariff_id and key not in engine_tariffs:
                try:
                    engine_tariffs[key] = Tariff.browse(tariff_id)._prepare_engine_tariff(
                        tz, quantum[row["company_id"]]
                    )
                except EngineError as exc:
                    engine_tariffs[key] = exc
            context[meter_id] = (engine_tariffs.get(key) if tariff_id else None, calendar)
        return context, quantum

    def _settle_batch(self, meter_ids):
        meters, readings, replacements = self._fetch_batch(meter_ids)
        context, quantum = self._rating_context(meters)
        utilities = dict(self.env["prepaid.meter"]._fields["utility"]._description_selection(self.env))
        now = fields.Datetime.now()
        ledger_rows, cursors, errors = [], [], {}
        stats = Counter(meters=len(meters))
        checked_starts = {}  # (calendar, cycle start) -> whether it is a cycle start of the calendar
        for meter_id, row in sorted(meters.items()):
            new = readings.get(meter_id, ())
            stats["readings"] += len(new)
            tariff, calendar = context[meter_id]
            billable = (
                row["billing_mode"] == "platform"
                and row["account_id"]
                and row["account_state"] in BILLABLE_ACCOUNT_STATES
            )
            lines, cursor, error = self._settle_meter(
                row,
                new,
                replacements.get(meter_id, ()),
                tariff if billable else None,
                calendar,
                billable,
                quantum[row["company_id"]],
                checked_starts,
            )
            cursor["meter_id"] = meter_id
            cursor["settled_at"] = now
            cursors.append(cursor)
            stats["intervals"] += len(lines)
            if error:
                stats["errors"] += 1
                if error != row["last_error"]:
                    errors[meter_id] = error
            utility = row["utility"]
            for rated in lines:
                if not rated.charge:
                    continue
                interval = rated.interval
                ledger_rows.append(
                    {
                        "account_id": row["account_id"],
                        "kind": "consumption",
                        "amount": -rated.charge,
                        "idempotency_key": consumption_key(meter_id, interval),
                        "date": naive(interval.end),
                        "description": f"{utilities[utility]} {interval.total:.3f} {UNIT_LABEL[utility]}",
                        "utility": utility,
                        "res_model": "prepaid.meter",
                        "res_id": meter_id,
                    }
                )
        stats["lines"] = self.env["prepaid.account"].sudo()._post_ledger_bulk(ledger_rows)
        self._write_cursors(cursors, {mid for mid, row in meters.items() if row["cursor_id"]})
        if errors:
            self._report_errors(errors)
        return stats

    @staticmethod
    def _state_of(row):
        """The engine's cycle state stored on a cursor row (exact), or None."""
        if row["cycle_start"] is None:
            return None
        quantity, sharp, peak, flat, valley, exact_charge = (
            Decimal(row[name] or 0) for name in STATE_COLUMNS
        )
        return CycleState(aware(row["cycle_start"]), quantity, Bands(sharp, peak, flat, valley), exact_charge)

    @staticmethod
    def _state_values(state, quantum):
        if state is None:
            return {}
        return {
            "cycle_start": naive(state.cycle_start),
            "cycle_quantity": state.consumed_total,
            "cycle_sharp": state.consumed_by_band.sharp,
            "cycle_peak": state.consumed_by_band.peak,
            "cycle_flat": state.consumed_by_band.flat,
            "cycle_valley": state.consumed_by_band.valley,
            "cycle_exact": state.exact_charge,
            "cycle_amount": state.charged(quantum),
        }

    def _settle_meter(self, row, new, replacements, tariff, calendar, billable, quantum, checked_starts):
        """Settle one meter's new readings. Returns (rated intervals, cursor values, error message or None).

        A pair of readings that makes no consumption (the index fell without a declared replacement or a
        plausible roll-over) charges nothing: the later reading becomes the new baseline and the error is
        reported. A tariff the engine refuses, or a billable meter without a tariff, holds the cursor (nothing
        is lost: the readings are settled once the tariff is fixed)."""
        state = self._state_of(row)
        cursor = {
            "read_at": row["read_at"],
            "total": exact(row["total"]),
            "sharp": exact(row["sharp"]),
            "peak": exact(row["peak"]),
            "flat": exact(row["flat"]),
            "valley": exact(row["valley"]),
            "unbilled_quantity": exact(row["unbilled_quantity"]) or ZERO,
            "attempted_at": row["last_reading_at"],
            "last_error": None,
        }
        if not new:
            cursor.update(self._state_values(state, quantum))
            return [], cursor, None
        rollover_at = Decimal(row["rollover_at"].strip()) if row["rollover_at"] else None
        prev = None
        if row["read_at"] is not None:
            prev = self._make_register(row["read_at"], row["total"], *(row[name] for name in BANDS))
        intervals, problems, last = [], [], None
        for values in new:
            try:
                curr = self._make_register(*values)
            except ConsumptionError as exc:
                problems.append(str(exc))
                continue
            last = values
            if prev is not None:
                replacement = next((r for r in replacements if prev.at <= r.at <= curr.at), None)
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
                cursor.update(self._state_values(state, quantum))
                return [], dict(cursor, last_error=message), message
            if state is not None:
                key = (calendar, state.cycle_start)
                if key not in checked_starts:
                    checked_starts[key] = cycle_bounds(calendar, state.cycle_start)[0] == state.cycle_start
                if not checked_starts[key]:
                    state = None  # the building's calendar changed: the new cycle starts from scratch
            try:
                rated = rate_cycle(tariff, intervals, calendar, state)
            except EngineError as exc:
                cursor.update(self._state_values(self._state_of(row), quantum))
                return [], dict(cursor, last_error=str(exc)), str(exc)
            if rated:
                state = rated[-1].new_state
        elif intervals:
            cursor["unbilled_quantity"] += sum((interval.total for interval in intervals), ZERO)
        if last is not None:
            read_at, total, sharp, peak, flat, valley = last
            cursor.update(
                read_at=read_at,
                total=exact(total),
                sharp=exact(sharp),
                peak=exact(peak),
                flat=exact(flat),
                valley=exact(valley),
            )
        cursor.update(self._state_values(state, quantum))
        error = "; ".join(problems) or None
        cursor["last_error"] = error
        return rated, cursor, error

    @staticmethod
    def _make_register(read_at, total, sharp=None, peak=None, flat=None, valley=None):
        """An engine register from stored values (numeric columns read as text: exact decimals)."""
        return Register(aware(read_at), exact(total), exact(sharp), exact(peak), exact(flat), exact(valley))

    def _write_cursors(self, cursors, existing):
        """The cursors travel by COPY; one ``UPDATE .. FROM`` moves those that exist, one ``INSERT .. SELECT``
        adds the meters settled for the first time."""
        names = [name for name, _type in CURSOR_COLUMNS]
        copy_to_temp(
            self.env.cr,
            "prepaid_cursor_bulk",
            (*CURSOR_COLUMNS, ("is_new", "boolean")),
            [
                (*(cursor.get(name) for name in names), cursor["meter_id"] not in existing)
                for cursor in cursors
            ],
        )
        columns = SQL(", ").join(SQL.identifier(name) for name in names)
        self.env.cr.execute(
            SQL(
                """UPDATE prepaid_settlement_cursor AS c SET %s
                     FROM prepaid_cursor_bulk AS v
                    WHERE c.meter_id = v.meter_id AND NOT v.is_new""",
                SQL(", ").join(
                    SQL("%s = v.%s", SQL.identifier(name), SQL.identifier(name))
                    for name in names
                    if name != "meter_id"
                ),
            )
        )
        if len(existing) < len(cursors):
            self.env.cr.execute(
                SQL(
                    """INSERT INTO prepaid_settlement_cursor (%s)
                       SELECT %s FROM prepaid_cursor_bulk WHERE is_new""",
                    columns,
                    columns,
                )
            )
        self.env["prepaid.settlement.cursor"].invalidate_model()
        self.env["prepaid.meter"].invalidate_model(
            ["settlement_cursor_ids", "settled_until", "settlement_error", "cycle_quantity", "cycle_amount"]
        )

    def _report_errors(self, errors):
        """A to-do for a prepaid manager on each meter whose readings could not be charged."""
        Meter = self.env["prepaid.meter"].sudo()
        manager_group = self.env.ref("prepaid_base.group_prepaid_manager")
        for meter in Meter.browse(sorted(errors)):
            _logger.warning("settlement of meter %s (%s): %s", meter.id, meter.name, errors[meter.id])
            user = manager_group.users.filtered(
                lambda u, company=meter.company_id: company in u.company_ids and not u._is_superuser()
            )[:1]
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
