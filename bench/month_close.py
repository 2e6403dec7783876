"""Month-close benchmark: fee charges, common-area apportionment and statements of one settlement cycle, for
10,000 accounts in 20 buildings.

Needs Odoo 18 importable by ``python3`` (or ``--odoo-path``) and a local PostgreSQL the current user can
create databases in. The database (``--db``, default ``prepaid_bench_month``) is created with
``prepaid_billing`` (no demo data) when it does not exist, and reused afterwards: the cycle measured is
always the same one, so a later run first undoes the previous run's month close with SQL (statements,
apportionment bills, fee charges, the fleet's apportionment and fee ledger lines; balances back to the sum
of the ledger) and says so.

Set-up (not timed, once per database; SQL for the bulk, as ``bench/settlement.py`` does): ``--buildings``
buildings on a monthly settlement calendar (cycle day 1, Asia/Shanghai) of ``--accounts`` / ``--buildings``
units each (areas 40-120 m2), one tenant, open prepaid account (1,000.00 opening balance), active tenancy
and electricity meter per unit; the cycle measured is November 2026 (local 2026-11-01 .. 2026-12-01): per
meter a daily consumption fact and a consumption ledger line for each of its 30 days; per building a common
(corridor) electricity meter with its own daily facts and an apportionment rule sharing it over the
building's units by their share of the cycle's consumption, at a price per kWh, deducted from the balances;
two fee items on all buildings for that cycle only: a property fee per m2 and a fixed service fee, both
deducted from the balance.

Measured (one process, each phase one call of the product's own cron or action, committed):

1. **fees**: ``prepaid.fee.charge._charge_fees(until=2026-11-30)``, what the hourly cron runs (one charge
   and one ledger line per fee item and tenancy: 2 x accounts);
2. **apportionment**: the rules' draft bills for the cycle, then their dispatch (one ledger line per unit);
3. **statements**: ``prepaid.statement`` generation for the cycle (one statement per account);

then the same three again with nothing new (target: <= 5 s in all), and a **naive per-record ORM loop** on
``--sample`` accounts (per account: the engine's fee charges, an ORM ``create`` of each charge and a
``_post_ledger`` call of its own; per unit share a ``_post_ledger`` call; per account an ORM search of its
ledger lines, the engine's statement and an ORM ``create`` of the statement and its lines), scaled to the
fleet. Targets: the month close <= 60 s for 10,000 accounts on a 2-core machine, >= 5 x the naive loop.

After the first and the second run it counts (SQL, printed against what the fleet should give) the cycle's
bills, dispatched bills, bill lines and posted lines, the apportionment ledger lines, the statements of the
cycle (settled) and of the next one, statements with a check error and statement lines, and prints what the
second run added (nothing, when it is idempotent).

It prints, it never asserts. Exit status 0 unless the run itself broke.

    python3 bench/month_close.py                        # 10,000 accounts (the first run builds them)
    python3 bench/month_close.py --accounts 1000 --buildings 4 --db prepaid_bench_month_small
    python3 bench/month_close.py --drop                 # start again from an empty database
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The settlement bench's Odoo plumbing (create the database with prepaid_billing, open its registry).
from settlement import bench_registry, load_average  # noqa: E402

TAG = "MCLOSE"
TZ = "Asia/Shanghai"
CYCLE_START = date(2026, 11, 1)  # local dates of the cycle measured
CYCLE_END = date(2026, 12, 1)
CLOSE_AT = datetime(2026, 12, 1, 2, 0)  # naive UTC: 10:00 in Shanghai, the cycle closed
TARGET_SECONDS = 60.0
TARGET_SECOND_RUN = 5.0
TARGET_RATIO = 5.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="prepaid_bench_month")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--buildings", type=int, default=20)
    parser.add_argument("--sample", type=int, default=200, help="accounts of the naive ORM loop")
    parser.add_argument("--odoo-path", default=os.environ.get("ODOO_PATH", ""), help="Odoo 18 source tree")
    parser.add_argument("--addons-path", default="", help="extra addons paths (the suite's is added)")
    parser.add_argument("--drop", action="store_true", help="drop and recreate the database first")
    return parser.parse_args(argv)


def environment(cr, **context):
    from odoo import SUPERUSER_ID, api

    return api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True, **context})


def vacuum(args):
    tables = (
        "prepaid_account, prepaid_ledger, prepaid_consumption, prepaid_tenancy, prepaid_property, "
        "prepaid_meter, prepaid_statement, prepaid_statement_line, prepaid_apportionment_bill, "
        "prepaid_apportionment_bill_line"
    )
    subprocess.run(["psql", "-q", "-d", args.db, "-c", f"VACUUM (ANALYZE) {tables}"], check=True)


# -- fleet ------------------------------------------------------------------------------------------------


def built_accounts(env):
    env.cr.execute("SELECT COUNT(*) FROM prepaid_account WHERE name LIKE %s", (f"{TAG}-A%",))
    return env.cr.fetchone()[0]


def built_buildings(env):
    env.cr.execute(
        "SELECT COUNT(*) FROM prepaid_property WHERE kind = 'building' AND code LIKE %s", (f"{TAG}-B%",)
    )
    return env.cr.fetchone()[0]


def reset_month_close(registry):
    """Undo what an earlier run's month close wrote (a reused database: the cycle measured is always the
    same one), with SQL: the statements and their lines, the apportionment bills and their lines, the fee
    charges (where the suite has them), the fleet's apportionment and fee ledger lines; then the balances
    are the sums of the ledger lines left. Returns what was removed (empty: nothing to undo)."""
    removed = {}
    with registry.cursor() as cr:
        cr.execute("SELECT to_regclass('prepaid_fee_charge') IS NOT NULL")
        has_fee_charges = cr.fetchone()[0]
        statements = [
            ("statements", "DELETE FROM prepaid_statement"),
            ("apportionment bills", "DELETE FROM prepaid_apportionment_bill"),
        ]
        if has_fee_charges:
            statements.append(("fee charges", "DELETE FROM prepaid_fee_charge"))
        cr.execute("DELETE FROM prepaid_statement_line")  # before the ledger lines they point to
        for label, query in statements:
            cr.execute(query)
            if cr.rowcount:
                removed[label] = cr.rowcount
        cr.execute(
            """DELETE FROM prepaid_ledger l USING prepaid_account a
                WHERE a.id = l.account_id AND a.name LIKE %s AND l.kind IN ('apportionment', 'fee')""",
            (f"{TAG}-A%",),
        )
        if cr.rowcount:
            removed["ledger lines"] = cr.rowcount
        if removed:
            cr.execute(
                """DELETE FROM mail_message WHERE model IN %(models)s;
                   DELETE FROM mail_followers WHERE res_model IN %(models)s;
                   UPDATE prepaid_account a SET balance = s.total
                     FROM (SELECT account_id, SUM(amount) AS total FROM prepaid_ledger GROUP BY account_id) s
                    WHERE a.id = s.account_id AND a.name LIKE %(accounts)s AND a.balance <> s.total""",
                {"models": ("prepaid.statement", "prepaid.apportionment.bill"), "accounts": f"{TAG}-A%"},
            )
        cr.commit()
    return removed


def month_close_counts(registry):
    """What the month close has written, counted with SQL (one query each): the cycle's apportionment bills
    and their dispatched (posted) lines, the fleet's apportionment ledger lines, the statements of the cycle
    and of the next one, the fee charges (where the suite has them)."""
    cycle_start_utc = datetime(2026, 10, 31, 16, 0)  # local midnight of 2026-11-01 in Shanghai
    with registry.cursor() as cr:
        counts = {}
        cr.execute(
            """SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'dispatched') FROM prepaid_apportionment_bill
                WHERE period_start = %s""",
            (cycle_start_utc,),
        )
        counts["bills"], counts["bills dispatched"] = cr.fetchone()
        cr.execute(
            """SELECT COUNT(*), COUNT(*) FILTER (WHERE l.state = 'posted' AND l.ledger_id IS NOT NULL)
                 FROM prepaid_apportionment_bill_line l JOIN prepaid_apportionment_bill b ON b.id = l.bill_id
                WHERE b.period_start = %s""",
            (cycle_start_utc,),
        )
        counts["bill lines"], counts["bill lines posted"] = cr.fetchone()
        cr.execute(
            """SELECT COUNT(*) FROM prepaid_ledger l JOIN prepaid_account a ON a.id = l.account_id
                WHERE l.kind = 'apportionment' AND a.name LIKE %s""",
            (f"{TAG}-A%",),
        )
        counts["apportionment ledger lines"] = cr.fetchone()[0]
        cr.execute(
            """SELECT COUNT(*) FILTER (WHERE cycle_start = %s),
                      COUNT(*) FILTER (WHERE cycle_start = %s AND state = 'settled'),
                      COUNT(*) FILTER (WHERE cycle_start > %s),
                      COUNT(*) FILTER (WHERE check_error IS NOT NULL)
                 FROM prepaid_statement""",
            (cycle_start_utc, cycle_start_utc, cycle_start_utc),
        )
        (
            counts["statements of the cycle"],
            counts["statements settled"],
            counts["statements of the next cycle"],
            counts["statements with a check error"],
        ) = cr.fetchone()
        cr.execute("SELECT COUNT(*) FROM prepaid_statement_line")
        counts["statement lines"] = cr.fetchone()[0]
        cr.execute("SELECT to_regclass('prepaid_fee_charge') IS NOT NULL")
        if cr.fetchone()[0]:
            cr.execute("SELECT COUNT(*) FROM prepaid_fee_charge")
            counts["fee charges"] = cr.fetchone()[0]
    return counts


def print_counts(counts, accounts, buildings):
    """The counts against what the fleet should give (printed, never asserted)."""
    expected = {
        "bills": buildings,
        "bills dispatched": buildings,
        "bill lines": accounts,
        "bill lines posted": accounts,
        "apportionment ledger lines": accounts,
        "statements of the cycle": accounts,
        "statements settled": accounts,
        "statements of the next cycle": accounts,
        "statements with a check error": 0,
    }
    for label, value in counts.items():
        want = expected.get(label)
        mark = "" if want is None else ("  [ok]" if value == want else f"  [expected {want}]")
        print(f"  {label}: {value}{mark}")


def build_fleet(registry, accounts, buildings):
    """Buildings, units, tenants, accounts, tenancies, meters, a cycle of daily facts and consumption lines,
    common meters with their rules, and the fee items: inserted with SQL where there are thousands (set-up
    is not what is measured), then the ORM caches are dropped."""
    per_building = accounts // buildings
    print(f"building {buildings} buildings x {per_building} accounts...", flush=True)
    started = time.perf_counter()
    with registry.cursor() as cr:
        env = environment(cr)
        company = env.ref("base.main_company")
        company.partner_id.tz = TZ
        company._prepaid_turn_on()
        tariff = env["prepaid.tariff"].create(
            {
                "name": "Month close flat",
                "code": f"{TAG}-FLAT",
                "utility": "electricity",
                "kind": "flat",
                "price": 0.6,
            }
        )
        Property = env["prepaid.property"]
        site = Property.create({"name": f"{TAG} park", "code": f"{TAG}-S", "kind": "site", "tz": TZ})
        model = env.ref("prepaid_metering.meter_model_acrel_ddsy1352")
        floors = []
        for b in range(buildings):
            building = Property.create(
                {
                    "name": f"{TAG} building {b + 1:02d}",
                    "code": f"{TAG}-B{b + 1:02d}",
                    "kind": "building",
                    "parent_id": site.id,
                    "tz": TZ,
                    "settlement_cycle": "monthly",
                    "settlement_day": 1,
                    "electricity_tariff_id": tariff.id,
                }
            )
            floor = Property.create(
                {"name": "F1", "code": f"{TAG}-B{b + 1:02d}-F1", "kind": "floor", "parent_id": building.id}
            )
            floors.append(floor)
        partners = env["res.partner"].create([{"name": f"{TAG} tenant {i + 1:05d}"} for i in range(accounts)])
        env.flush_all()
        cr.execute(
            """
            CREATE TEMP TABLE mclose_fleet AS
            SELECT g AS n, (g - 1) / %(per)s AS b, p.id AS partner_id,
                   nextval('prepaid_property_id_seq') AS unit_id,
                   nextval('prepaid_account_id_seq') AS account_id,
                   nextval('prepaid_meter_id_seq') AS meter_id,
                   nextval('prepaid_tenancy_id_seq') AS tenancy_id,
                   40 + (g * 37) %% 81 AS area
              FROM generate_series(1, %(n)s) AS g
              JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM res_partner
                     WHERE id = ANY(%(partners)s)) AS p ON p.rn = g;
            CREATE TEMP TABLE mclose_floor (b int, floor_id int, path varchar, name varchar, building_id int);
            """,
            {"per": per_building, "n": per_building * buildings, "partners": partners.ids},
        )
        for b, floor in enumerate(floors):
            cr.execute(
                "INSERT INTO mclose_floor VALUES (%s, %s, %s, %s, %s)",
                (b, floor.id, floor.parent_path, floor.complete_name, floor.parent_id.id),
            )
        params = {
            "company": company.id,
            "currency": company.currency_id.id,
            "site": site.id,
            "model": model.id,
            "tag": TAG,
            "tz": TZ,
            "start": CYCLE_START,
            "end": CYCLE_END,
        }
        cr.execute(
            """
            INSERT INTO prepaid_property (id, name, code, complete_name, kind, parent_id, parent_path,
                                          company_id, active, unit_type, area, effective_tz, site_id,
                                          building_id, floor_id, reading_interval, settlement_cycle,
                                          settlement_day, settlement_time,
                                          create_uid, create_date, write_uid, write_date)
            SELECT f.unit_id, %(tag)s || '-' || f.n, %(tag)s || '-U' || f.n,
                   fl.name || ' / ' || %(tag)s || '-' || f.n, 'unit', fl.floor_id,
                   fl.path || f.unit_id || '/', %(company)s, TRUE, 'room', f.area, %(tz)s,
                   %(site)s, fl.building_id, fl.floor_id, 15, 'monthly', 1, 0, 1, now(), 1, now()
              FROM mclose_fleet f JOIN mclose_floor fl ON fl.b = f.b;

            INSERT INTO prepaid_account (id, name, partner_id, company_id, currency_id, period, state, level,
                                         balance, warn_level_1, warn_level_2, warn_level_3, cutoff_level,
                                         overdraft_limit, keep_power, alert_level,
                                         create_uid, create_date, write_uid, write_date)
            SELECT account_id, %(tag)s || '-A' || lpad(n::text, 6, '0'), partner_id, %(company)s,
                   %(currency)s,
                   1, 'open', 'normal', 1000.00, 50, 20, 10, 0, 0, FALSE, 'normal', 1, now(), 1, now()
              FROM mclose_fleet;

            INSERT INTO prepaid_account_unit_rel (account_id, unit_id)
            SELECT account_id, unit_id FROM mclose_fleet;

            INSERT INTO prepaid_tenancy (id, name, partner_id, company_id, account_id, state, date_start,
                                         create_uid, create_date, write_uid, write_date)
            SELECT tenancy_id, %(tag)s || '-T' || lpad(n::text, 6, '0'), partner_id, %(company)s, account_id,
                   'active', %(start)s, 1, now(), 1, now()
              FROM mclose_fleet;

            INSERT INTO prepaid_tenancy_unit_rel (tenancy_id, unit_id)
            SELECT tenancy_id, unit_id FROM mclose_fleet;

            INSERT INTO prepaid_meter (id, name, model_id, unit_id, building_id, account_id, company_id,
                                       utility, protocol, billing_mode, ct_ratio, active, online,
                                       temporary_supply,
                                       create_uid, create_date, write_uid, write_date)
            SELECT f.meter_id, %(tag)s || '-M-' || lpad(f.n::text, 6, '0'), %(model)s, f.unit_id,
                   fl.building_id, f.account_id, %(company)s, 'electricity', 'modbus', 'platform', 1,
                   TRUE, TRUE, 'none',
                   1, now(), 1, now()
              FROM mclose_fleet f JOIN mclose_floor fl ON fl.b = f.b;

            -- The cycle's consumption: per meter and day 3 to 12 kWh at 0.60.
            CREATE TEMP TABLE mclose_days AS
            SELECT f.account_id, f.meter_id, f.unit_id, fl.building_id, f.partner_id, d::date AS day,
                   (3 + (f.n * 7 + EXTRACT(day FROM d)::int * 3) %% 10)::numeric AS quantity
              FROM mclose_fleet f JOIN mclose_floor fl ON fl.b = f.b
             CROSS JOIN generate_series(%(start)s::date, %(end)s::date - 1, interval '1 day') AS d;

            INSERT INTO prepaid_consumption (meter_id, account_id, company_id, unit_id, building_id,
                                             intervals, utility, day, quantity, sharp, peak, flat, valley,
                                             free_quantity, amount)
            SELECT meter_id, account_id, %(company)s, unit_id, building_id, 96, 'electricity', day, quantity,
                   0, 0, 0, 0, 0, quantity * 0.6
              FROM mclose_days;

            INSERT INTO prepaid_ledger (account_id, partner_id, company_id, currency_id, date, kind, amount,
                                        balance_after, idempotency_key, period, quantity, utility, res_model,
                                        res_id, create_uid, create_date)
            SELECT a.id, a.partner_id, a.company_id, a.currency_id, '2026-10-31 16:00', 'opening', 1000.00,
                   1000.00, %(tag)s || ':opening:' || a.id, 1, NULL, NULL, NULL, NULL, 1, now()
              FROM mclose_fleet f JOIN prepaid_account a ON a.id = f.account_id;

            INSERT INTO prepaid_ledger (account_id, partner_id, company_id, currency_id, date, kind, amount,
                                        balance_after, idempotency_key, period, quantity, utility, res_model,
                                        res_id, create_uid, create_date)
            SELECT account_id, partner_id, %(company)s, %(currency)s, (day + time '15:45'), 'consumption',
                   -(quantity * 0.6),
                   1000.00 - SUM(quantity * 0.6) OVER (PARTITION BY account_id ORDER BY day),
                   %(tag)s || ':cons:' || meter_id || ':' || day, 1, quantity, 'electricity', 'prepaid.meter',
                   meter_id, 1, now()
              FROM mclose_days ORDER BY account_id, day;

            UPDATE prepaid_account a SET balance = 1000.00 - s.spent
              FROM (SELECT account_id, SUM(quantity * 0.6) AS spent FROM mclose_days GROUP BY account_id) s
             WHERE a.id = s.account_id;
            """,
            params,
        )
        env.invalidate_all()
        setup_common_meters_and_fees(env, floors, tariff)
        cr.commit()
    print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)


def setup_common_meters_and_fees(env, floors, tariff):
    """Per building a corridor meter with a cycle of facts and an apportionment rule sharing it by
    consumption, deducted; every building's cycle closed; the fee items."""
    model = env.ref("prepaid_metering.meter_model_acrel_ddsy1352")
    cycle_end_utc = datetime(2026, 11, 30, 16, 0)  # local midnight of 2026-12-01 in Shanghai
    for floor in floors:
        building = floor.parent_id
        meter = env["prepaid.meter"].create(
            {
                "name": f"{TAG}-CM-{building.code}",
                "model_id": model.id,
                "utility": "electricity",
                "protocol": "modbus",
                "is_common": True,
                "common_property_id": building.id,
            }
        )
        env.flush_all()
        env.cr.execute(
            """INSERT INTO prepaid_consumption (meter_id, account_id, company_id, unit_id, building_id,
                                                 intervals, utility, day, quantity, sharp, peak, flat, valley,
                                                 free_quantity, amount)
               SELECT %s, NULL, %s, NULL, %s, 96, 'electricity', d::date, 40 + EXTRACT(day FROM d)::int,
                      0, 0, 0, 0, 0, 0
                 FROM generate_series(%s::date, %s::date - 1, interval '1 day') AS d""",
            (meter.id, meter.company_id.id, building.id, CYCLE_START, CYCLE_END),
        )
        env["prepaid.apportionment.rule"].create(
            {
                "name": f"Corridor lighting {building.code}",
                "property_id": building.id,
                "utility": "electricity",
                "meter_ids": [(6, 0, meter.ids)],
                "source": "consumption",
                "price": 0.6,
                "collection": "ledger",
                "date_start": CYCLE_START,
            }
        )
        building.settlement_closed_at = cycle_end_utc
    setup_fees(env, [floor.parent_id for floor in floors])


def setup_fees(env, buildings):
    """Two fee items on every building for the cycle only (a property fee per m2 and a fixed service fee),
    deducted; skipped where the suite has no fee charges (say so in the output)."""
    if "prepaid.fee.charge" not in env:
        return
    env["prepaid.fee.item"].create(
        [
            {
                "name": "Property fee",
                "kind": "property_fee",
                "calculation": "per_area",
                "unit_price": 2.5,
                "recurrence": "monthly",
                "charge_mode": "deduct",
                "property_ids": [(6, 0, [b.id for b in buildings])],
                "date_from": CYCLE_START,
                "date_to": date(2026, 11, 30),
            },
            {
                "name": "Service fee",
                "kind": "service_fee",
                "calculation": "fixed",
                "amount": 30.0,
                "recurrence": "monthly",
                "charge_mode": "deduct",
                "property_ids": [(6, 0, [b.id for b in buildings])],
                "date_from": CYCLE_START,
                "date_to": date(2026, 11, 30),
            },
        ]
    )


def timed(registry, label, work):
    """Run ``work(env)`` in a transaction of its own, committed; print and return its seconds."""
    started = time.perf_counter()
    with registry.cursor() as cr:
        result = work(environment(cr))
        cr.commit()
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed:.2f} s ({result})", flush=True)
    return elapsed


def close_month(registry):
    """One month close as the crons do it; returns ``{phase: seconds}``."""
    cycle_end_utc = datetime(2026, 11, 30, 16, 0)
    during = datetime(2026, 11, 30, 15, 0)  # 23:00 on the cycle's last day, local

    def fees(env):
        if "prepaid.fee.charge" not in env:
            return "no fee charges in this suite: skipped"
        Charge = env["prepaid.fee.charge"]
        before = Charge.search_count([])
        Charge._charge_fees(until=date(2026, 11, 30))
        return f"{Charge.search_count([]) - before} charges"

    def apportion(env):
        rules = env["prepaid.apportionment.rule"].search([("name", "like", "Corridor lighting")])
        bills = rules._create_bills(now=CLOSE_AT.replace(tzinfo=UTC))
        drafts = bills.filtered(lambda b: b.state == "draft")
        drafts._dispatch()
        lines = env["prepaid.ledger"].search_count([("kind", "=", "apportionment")])
        return f"{len(bills)} bills, {lines} apportionment lines in the ledger"

    def statements_during(env):
        done = env["prepaid.statement"]._generate_all(now=during.replace(tzinfo=UTC))
        return f"{done} accounts"

    def statements_close(env):
        done = env["prepaid.statement"]._generate_all(now=CLOSE_AT.replace(tzinfo=UTC))
        settled = env["prepaid.statement"].search_count(
            [("state", "=", "settled"), ("cycle_end", "=", cycle_end_utc)]
        )
        return f"{done} accounts, {settled} statements of the cycle settled"

    return {
        "fees": timed(registry, "fee charges", fees),
        "apportionment": timed(registry, "apportionment bills + dispatch", apportion),
        "statements (cycle)": timed(registry, "statements of the cycle", statements_during),
        "statements (close)": timed(registry, "statements settled at the close", statements_close),
    }


def naive_loop(registry, sample):
    """The fee charges, the apportionment dispatch and the statements for ``sample`` accounts one record at a
    time through the ORM, rolled back: per account and fee item the engine's charges, an ORM ``create`` of
    each and a ``_post_ledger`` call of its own; its share posted by a ``_post_ledger`` call, then an ORM
    search of its cycle's ledger lines, the engine's statement of them, and an ORM ``create`` of the statement
    and of each of its lines (one per ledger line but consumption, one per utility for consumption)."""
    from decimal import Decimal

    from odoo.addons.prepaid_base.models.prepaid_guard import internal

    from prepaid_engine.billing import EntryKind, StatementEntry, statement
    from prepaid_engine.billing.fees import fee_charges

    started = time.perf_counter()
    with registry.cursor() as cr:
        env = environment(cr)
        accounts = env["prepaid.account"].search([("name", "like", f"{TAG}-A")], limit=sample, order="id")
        Ledger = env["prepaid.ledger"]
        has_fees = "prepaid.fee.charge" in env
        items = (
            env["prepaid.fee.item"].search([("name", "in", ("Property fee", "Service fee"))])
            if has_fees
            else []
        )
        Charge = internal(env["prepaid.fee.charge"]) if has_fees else None
        calendar = (
            env["prepaid.property"]
            .search([("kind", "=", "building")], limit=1)
            ._prepaid_settlement_calendar()
        )
        Statement = internal(env["prepaid.statement"])
        Line = internal(env["prepaid.statement.line"])
        for account in accounts:
            tenancy = env["prepaid.tenancy"].search([("account_id", "=", account.id)], limit=1)
            for item in items:  # per fee item: the engine's charges, an ORM create and a posting of each
                for charge in fee_charges(
                    item._prepaid_engine_item(),
                    calendar,
                    tenancy.date_start,
                    tenancy.date_end or None,
                    date(2026, 11, 30),
                    area=Decimal(str(sum(tenancy.unit_ids.mapped("area")))),
                ):
                    record = Charge.create(
                        {
                            "name": f"{item.name} {charge.period.key} naive",
                            "fee_item_id": item.id,
                            "tenancy_id": tenancy.id,
                            "partner_id": account.partner_id.id,
                            "account_id": account.id,
                            "company_id": account.company_id.id,
                            "period_key": f"{charge.period.key}-naive",
                            "collection": "deduct",
                            "state": "posted",
                            "amount": float(charge.amount),
                        }
                    )
                    account._post_ledger(
                        [
                            {
                                "account_id": account.id,
                                "kind": "fee",
                                "amount": -charge.amount,
                                "idempotency_key": f"{TAG}:naive:fee:{record.id}",
                                "res_model": "prepaid.fee.charge",
                                "res_id": record.id,
                            }
                        ]
                    )
            account._post_ledger(
                [
                    {
                        "account_id": account.id,
                        "kind": "apportionment",
                        "amount": -1.23,
                        "idempotency_key": f"{TAG}:naive:appt:{account.id}",
                        "utility": "electricity",
                    }
                ]
            )
            lines = Ledger.search([("account_id", "=", account.id), ("kind", "!=", "opening")], order="id")
            result = statement(
                Decimal("1000.00"),
                [
                    StatementEntry(
                        kind=EntryKind(line.kind),
                        amount=Decimal(str(line.amount)),
                        # The engine takes a utility and a quantity on consumption lines only (an
                        # apportioned share names its utility in the ledger, not in the statement).
                        utility=(line.utility or None) if line.kind == "consumption" else None,
                        quantity=Decimal(str(line.quantity)) if line.kind == "consumption" else None,
                    )
                    for line in lines
                ],
            )
            record = Statement.create(
                {
                    "name": f"{account.name}/naive",
                    "account_id": account.id,
                    "company_id": account.company_id.id,
                    "partner_id": account.partner_id.id,
                    "cycle_start": datetime(2030, 1, 1),
                    "cycle_end": datetime(2030, 2, 1),
                    "opening_balance": 1000.0,
                    "closing_balance": float(result.closing),
                }
            )
            per_utility = {}
            for line in lines:
                if line.kind == "consumption":
                    per_utility[line.utility] = per_utility.get(line.utility, 0.0) + line.amount
                else:
                    Line.create(
                        {
                            "statement_id": record.id,
                            "kind": line.kind,
                            "amount": line.amount,
                            "ledger_id": line.id,
                        }
                    )
            for utility, amount in per_utility.items():
                Line.create(
                    {"statement_id": record.id, "kind": "consumption", "utility": utility, "amount": amount}
                )
            env.flush_all()
        cr.rollback()
    return time.perf_counter() - started


def main(argv=None):
    args = parse_args(argv)
    registry = bench_registry(args)
    if registry is None:
        return 2
    with registry.cursor() as cr:
        count = built_accounts(environment(cr))
    if count == 0:
        build_fleet(registry, args.accounts, args.buildings)
    else:
        removed = reset_month_close(registry)
        if removed:
            undone = ", ".join(f"{n} {label}" for label, n in removed.items())
            print(f"reused database: the previous run's month close undone ({undone})", flush=True)
    with registry.cursor() as cr:
        env = environment(cr)
        count, buildings = built_accounts(env), built_buildings(env)
    vacuum(args)
    print(f"month close: {count} accounts in {buildings} buildings, database {args.db}")
    print(f"machine: {os.cpu_count()} CPUs, {load_average()} before the measurements")
    first = close_month(registry)
    total = sum(first.values())
    verdict = "met" if total <= TARGET_SECONDS else "NOT met"
    print(f"month close: {total:.1f} s  [target <= {TARGET_SECONDS:.0f} s: {verdict}]")
    after_first = month_close_counts(registry)
    print("written by the month close:")
    print_counts(after_first, count, buildings)
    print("second run (nothing new):")
    second = sum(close_month(registry).values())
    verdict = "met" if second <= TARGET_SECOND_RUN else "NOT met"
    print(f"second run: {second:.1f} s  [target <= {TARGET_SECOND_RUN:.0f} s: {verdict}]")
    after_second = month_close_counts(registry)
    new = {label: after_second[label] - after_first[label] for label in after_first}
    changed = ", ".join(f"{label} {n:+d}" for label, n in new.items() if n)
    print(f"written by the second run: {changed or 'nothing new'}")
    naive = naive_loop(registry, args.sample)
    scaled = naive / args.sample * count
    ratio = scaled / total if total else float("inf")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(
        f"naive per-record ORM loop: {args.sample} accounts in {naive:.2f} s; "
        f"{count} would take {scaled:.0f} s"
    )
    print(f"naive / set-based: {ratio:.1f} x  [target >= {TARGET_RATIO:.0f} x: {verdict}]")
    print(f"machine: {load_average()} after the measurements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
