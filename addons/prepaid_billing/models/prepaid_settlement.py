import json
import logging
from collections import Counter, defaultdict
from datetime import UTC
from decimal import Decimal

from odoo import api, fields, models
from odoo.tools import SQL, split_every

from prepaid_engine.calendar import cycle_bounds
from prepaid_engine.errors import EngineError
from prepaid_engine.rating import ConsumptionError, CycleState, Register, Replacement, consumption, rate_cycle

_logger = logging.getLogger(__name__)

BATCH = 2000  # meters settled per batch: one readings query, one ledger INSERT, one cursor upsert
BANDS = ("sharp", "peak", "flat", "valley")
BILLABLE_ACCOUNT_STATES = ("open", "suspended")
UNIT_LABEL = {"electricity": "kWh", "water": "m³"}
CURSOR_COLUMNS = (
    ("meter_id", "int"),
    ("company_id", "int"),
    ("read_at", "timestamp"),
    ("total", "numeric"),
    ("sharp", "numeric"),
    ("peak", "numeric"),
    ("flat", "numeric"),
    ("valley", "numeric"),
    ("cycle_state", "jsonb"),
    ("cycle_start", "timestamp"),
    ("cycle_quantity", "numeric"),
    ("cycle_amount", "numeric"),
    ("unbilled_quantity", "numeric"),
    ("settled_at", "timestamp"),
    ("attempted_at", "timestamp"),
    ("last_error", "varchar"),
)


def aware(value):
    return value.replace(tzinfo=UTC) if value is not None else None


def naive(value):
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None


def exact(value):
    """A numeric column read as text (or None) as an exact Decimal."""
    return Decimal(value) if value is not None else None


def consumption_key(meter_id, interval):
    """Idempotency key of the deduction of one rated interval (or cycle piece) of one meter."""
    return f"cons:{meter_id}:{interval.start.isoformat()}:{interval.end.isoformat()}"


class PrepaidSettlement(models.AbstractModel):
    """Readings -> consumption intervals -> rated charges -> ledger deductions, set-based.

    Per batch of meters: the cursors are locked (``FOR UPDATE``, meter order), one query fetches every new
    reading of the batch, the engine turns consecutive readings into intervals (:func:`consumption`:
    roll-over, replacement, band registers) and rates them with the effective tariff in the property's time
    zone, cut at the building's settlement cycles (:func:`rate_cycle`: tiers and allowances restart each
    cycle). Each rated interval with a charge becomes one ledger deduction keyed ``cons:<meter>:<from>:<to>``;
    all of a batch's lines go in with one ``INSERT`` and the balances with one ``UPDATE``
    (``prepaid.account._post_ledger_bulk``), and the cursors move with one upsert, in the same transaction:
    settling twice deducts once, and a crash leaves nothing half-done.
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
                          c.cycle_state, c.unbilled_quantity::text AS unbilled_quantity, c.last_error
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
        # for the first time its latest reading only (its baseline: billing starts there).
        cr.execute(
            SQL(
                """SELECT r.meter_id, r.read_at, r.total::text, r.sharp::text, r.peak::text, r.flat::text,
                          r.valley::text
                     FROM prepaid_meter_reading r
                     JOIN prepaid_settlement_cursor c ON c.meter_id = r.meter_id AND r.read_at > c.read_at
                    WHERE r.meter_id = ANY(%s) AND r.total IS NOT NULL
                UNION ALL
                   SELECT * FROM (
                       SELECT DISTINCT ON (r.meter_id)
                              r.meter_id, r.read_at, r.total::text, r.sharp::text, r.peak::text, r.flat::text,
                              r.valley::text
                         FROM prepaid_meter_reading r
                        WHERE r.meter_id = ANY(%s) AND r.total IS NOT NULL
                     ORDER BY r.meter_id, r.read_at DESC) AS latest
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
        """Per meter to rate: (engine tariff or None, settlement calendar); tariffs are built once per tariff
        and time zone, calendars once per building."""
        Property = self.env["prepaid.property"].sudo()
        Tariff = self.env["prepaid.tariff"].sudo()
        companies = self.env["res.company"].sudo().browse({row["company_id"] for row in meters.values()})
        quantum = {
            company.id: Decimal(1).scaleb(-company.currency_id.decimal_places) for company in companies
        }
        unit_ids = {row["unit_id"] for row in meters.values() if row["unit_id"]}
        building_ids = {row["building_id"] for row in meters.values() if row["building_id"]}
        places = Property.browse(unit_ids | building_ids)
        tz_of = {prop.id: prop.effective_tz for prop in places}
        effective = {}
        for utility in ("electricity", "water"):
            units = Property.browse(
                [row["unit_id"] for row in meters.values() if row["unit_id"] and row["utility"] == utility]
            )
            if units:
                effective[utility] = {
                    uid: tariff.id for uid, tariff in units._get_effective_tariffs(utility).items()
                }
        calendars, default_calendars, engine_tariffs, context = {}, {}, {}, {}
        for meter_id, row in meters.items():
            building_id = row["building_id"]
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
            tariff_id = row["tariff_id"] or effective.get(row["utility"], {}).get(row["unit_id"])
            tz = tz_of.get(row["unit_id"]) or tz_of.get(building_id) or calendar.tz
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
        for meter_id, row in sorted(meters.items()):
            new = readings.get(meter_id, [])
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
            )
            cursor.update(meter_id=meter_id, company_id=row["company_id"], settled_at=now)
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
                        "description": f"{utilities[utility]} {interval.total} {UNIT_LABEL[utility]}",
                        "utility": utility,
                        "res_model": "prepaid.meter",
                        "res_id": meter_id,
                    }
                )
        stats["lines"] = self.env["prepaid.account"].sudo()._post_ledger_bulk(ledger_rows)
        self._write_cursors(cursors)
        if errors:
            self._report_errors(errors)
        return stats

    def _settle_meter(self, row, new, replacements, tariff, calendar, billable, quantum):
        """Settle one meter's new readings. Returns (rated intervals, cursor values, error message or None).

        A pair of readings that makes no consumption (the index fell without a declared replacement or a
        plausible roll-over) charges nothing: the later reading becomes the new baseline and the error is
        reported. A tariff the engine refuses, or a billable meter without a tariff, holds the cursor (nothing
        is lost: the readings are settled once the tariff is fixed)."""
        state = CycleState.from_dict(row["cycle_state"]) if row["cycle_state"] else None
        cursor = {
            "read_at": row["read_at"],
            **{name: exact(row[name]) for name in ("total", *BANDS)},
            "cycle_state": row["cycle_state"],
            "unbilled_quantity": exact(row["unbilled_quantity"]) or Decimal(0),
            "attempted_at": row["last_reading_at"],
        }
        if state:
            cursor.update(
                cycle_start=naive(state.cycle_start),
                cycle_quantity=state.consumed_total,
                cycle_amount=state.charged(quantum),
            )
        if not new:
            cursor["last_error"] = None
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
                return [], dict(cursor, last_error=message), message
            if state and cycle_bounds(calendar, state.cycle_start)[0] != state.cycle_start:
                state = None  # the building's calendar changed: the new cycle starts from scratch
            try:
                rated = rate_cycle(tariff, intervals, calendar, state)
            except EngineError as exc:
                return [], dict(cursor, last_error=str(exc)), str(exc)
            if rated:
                state = rated[-1].new_state
        elif intervals:
            cursor["unbilled_quantity"] += sum((interval.total for interval in intervals), Decimal(0))
        if last is not None:
            cursor.update(
                read_at=last[0],
                **{name: exact(v) for name, v in zip(("total", *BANDS), last[1:], strict=True)},
            )
        if state:
            cursor.update(
                cycle_state=state.to_dict(),
                cycle_start=naive(state.cycle_start),
                cycle_quantity=state.consumed_total,
                cycle_amount=state.charged(quantum),
            )
        error = "; ".join(problems) or None
        cursor["last_error"] = error
        return rated, cursor, error

    @staticmethod
    def _make_register(read_at, total, sharp=None, peak=None, flat=None, valley=None):
        """An engine register from stored values (numeric columns read as text: exact decimals)."""
        return Register(aware(read_at), *(exact(value) for value in (total, sharp, peak, flat, valley)))

    def _write_cursors(self, cursors):
        if not cursors:
            return
        arrays = []
        for name, _sql_type in CURSOR_COLUMNS:
            values = [cursor.get(name) for cursor in cursors]
            if name == "cycle_state":
                values = [json.dumps(value) if value is not None else None for value in values]
            arrays.append(values)
        names = SQL(", ").join(SQL.identifier(name) for name, _type in CURSOR_COLUMNS)
        self.env.cr.execute(
            SQL(
                """INSERT INTO prepaid_settlement_cursor (%s)
                   SELECT * FROM unnest(%s)
                   ON CONFLICT (meter_id) DO UPDATE SET %s""",
                names,
                SQL(", ").join(
                    SQL("%s::%s[]", values, SQL(sql_type))
                    for values, (_name, sql_type) in zip(arrays, CURSOR_COLUMNS, strict=True)
                ),
                SQL(", ").join(
                    SQL("%s = EXCLUDED.%s", SQL.identifier(name), SQL.identifier(name))
                    for name, _type in CURSOR_COLUMNS
                    if name != "meter_id"
                ),
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
