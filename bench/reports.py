"""Reports benchmark: the consumption report of a site with 10,000 meters and a year of daily facts, as the
pivot view asks for it (rows: building, columns: month).

Needs Odoo 18 importable by ``python3`` (or ``--odoo-path``) and a local PostgreSQL the current user can
create databases in. The database (``--db``, default ``prepaid_bench_reports``) is created with
``prepaid_billing`` (no demo data) when it does not exist, and reused afterwards.

Set-up (not timed, once per database): a site of ``--buildings`` buildings with one floor each, ``--meters``
units with one electricity meter each (SQL), and per meter a daily consumption fact for each of the
``--days`` days up to yesterday, loaded with one PostgreSQL COPY; then VACUUM ANALYZE.

Measured: ``prepaid.consumption.report.read_group`` as the pivot view calls it, on the site's whole history:
the four groupings of a building x month pivot (total, by building, by month, by building and month) with
the measures quantity, quantity of the month before and of the year before; best of ``--repeat`` runs, and
the building x month call alone. Also the same calls on an empty report (a company without facts) for the
fixed cost. Target: <= 1 s; printed as the ratio measured / target (<= 1 is met).

It prints, it never asserts. Exit status 0 unless the run itself broke.

    python3 bench/reports.py                          # 10,000 meters x 365 days (the first run builds them)
    python3 bench/reports.py --meters 1000 --db prepaid_bench_reports_small
    python3 bench/reports.py --drop                   # start again from an empty database
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from settlement import bench_registry, load_average  # noqa: E402

TAG = "REPB"
TZ = "Asia/Shanghai"
TARGET_MS = 1000.0
MEASURES = ["quantity:sum", "quantity_prev_month:sum", "quantity_prev_year:sum"]
PIVOT_GROUPINGS = ([], ["building_id"], ["day:month"], ["building_id", "day:month"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="prepaid_bench_reports")
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--buildings", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--odoo-path", default=os.environ.get("ODOO_PATH", ""), help="Odoo 18 source tree")
    parser.add_argument("--addons-path", default="", help="extra addons paths (the suite's is added)")
    parser.add_argument("--drop", action="store_true", help="drop the database first")
    return parser.parse_args(argv)


def environment(cr, **context):
    from odoo import SUPERUSER_ID, api

    return api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True, **context})


def built_meters(env):
    env.cr.execute("SELECT COUNT(*) FROM prepaid_meter WHERE name LIKE %s", (f"{TAG}-M-%",))
    return env.cr.fetchone()[0]


def build_fleet(registry, meters, buildings, days):
    per_building = meters // buildings
    print(f"building {buildings} buildings x {per_building} meters x {days} days of facts...", flush=True)
    started = time.perf_counter()
    with registry.cursor() as cr:
        env = environment(cr)
        company = env.ref("base.main_company")
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
                }
            )
            floors.append(
                Property.create(
                    {
                        "name": "F1",
                        "code": f"{TAG}-B{b + 1:02d}-F1",
                        "kind": "floor",
                        "parent_id": building.id,
                    }
                )
            )
        env.flush_all()
        cr.execute(
            "CREATE TEMP TABLE repb_floor (b int, floor_id int, path varchar, name varchar, building_id int)"
        )
        for b, floor in enumerate(floors):
            cr.execute(
                "INSERT INTO repb_floor VALUES (%s, %s, %s, %s, %s)",
                (b, floor.id, floor.parent_path, floor.complete_name, floor.parent_id.id),
            )
        params = {
            "per": per_building,
            "n": per_building * buildings,
            "company": company.id,
            "site": site.id,
            "model": model.id,
            "tag": TAG,
            "tz": TZ,
        }
        cr.execute(
            """
            CREATE TEMP TABLE repb_fleet AS
            SELECT g AS n, (g - 1) / %(per)s AS b, nextval('prepaid_property_id_seq') AS unit_id,
                   nextval('prepaid_meter_id_seq') AS meter_id
              FROM generate_series(1, %(n)s) AS g;

            INSERT INTO prepaid_property (id, name, code, complete_name, kind, parent_id, parent_path,
                                          company_id, active, unit_type, area, effective_tz, site_id,
                                          building_id, floor_id, reading_interval, settlement_cycle,
                                          settlement_day, settlement_time,
                                          create_uid, create_date, write_uid, write_date)
            SELECT f.unit_id, %(tag)s || '-' || f.n, %(tag)s || '-U' || f.n,
                   fl.name || ' / ' || %(tag)s || '-' || f.n, 'unit', fl.floor_id,
                   fl.path || f.unit_id || '/', %(company)s, TRUE, 'room', 60, %(tz)s,
                   %(site)s, fl.building_id, fl.floor_id, 15, 'monthly', 1, 0, 1, now(), 1, now()
              FROM repb_fleet f JOIN repb_floor fl ON fl.b = f.b;

            INSERT INTO prepaid_meter (id, name, model_id, unit_id, building_id, company_id,
                                       utility, protocol, billing_mode, ct_ratio, active, online,
                                       temporary_supply,
                                       create_uid, create_date, write_uid, write_date)
            SELECT f.meter_id, %(tag)s || '-M-' || lpad(f.n::text, 6, '0'), %(model)s, f.unit_id,
                   fl.building_id, %(company)s, 'electricity', 'modbus', 'platform', 1, TRUE, TRUE, 'none',
                   1, now(), 1, now()
              FROM repb_fleet f JOIN repb_floor fl ON fl.b = f.b;
            """,
            params,
        )
        cr.execute(
            "SELECT f.meter_id, f.unit_id, fl.building_id FROM repb_fleet f JOIN repb_floor fl ON fl.b = f.b"
        )
        fleet = cr.fetchall()
        first = date.today() - timedelta(days=days)
        day_texts = [(first + timedelta(days=d)).isoformat() for d in range(days)]
        columns = (
            "meter_id",
            "day",
            "company_id",
            "utility",
            "unit_id",
            "building_id",
            "quantity",
            "sharp",
            "peak",
            "flat",
            "valley",
            "free_quantity",
            "amount",
            "intervals",
        )
        copy_sql = f"COPY prepaid_consumption ({', '.join(columns)}) FROM STDIN"
        chunk = 500
        for start in range(0, len(fleet), chunk):
            buf = io.StringIO()
            for meter_id, unit_id, building_id in fleet[start : start + chunk]:
                for d, day in enumerate(day_texts):
                    q = 3 + (meter_id * 7 + d * 3) % 10
                    buf.write(
                        f"{meter_id}\t{day}\t{company.id}\telectricity\t{unit_id}\t{building_id}\t{q}\t0\t"
                        f"{q * 0.3:.3f}\t{q * 0.5:.3f}\t{q * 0.2:.3f}\t0\t{q * 0.6:.2f}\t96\n"
                    )
            buf.seek(0)
            cr.copy_expert(copy_sql, buf)
        cr.commit()
    print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)


def vacuum(args):
    subprocess.run(
        [
            "psql",
            "-q",
            "-d",
            args.db,
            "-c",
            "VACUUM (ANALYZE) prepaid_consumption, prepaid_property, prepaid_meter",
        ],
        check=True,
    )


def pivot(env, domain):
    """What the pivot view asks: every prefix combination of its row and column groupings."""
    Report = env["prepaid.consumption.report"]
    timings = {}
    for groupby in PIVOT_GROUPINGS:
        started = time.perf_counter()
        Report.read_group(domain, MEASURES, groupby, lazy=False)
        timings[tuple(groupby)] = (time.perf_counter() - started) * 1000
    return timings


def best_of(registry, domain, repeat, uid=None):
    best_total, best_cell = float("inf"), float("inf")
    with registry.cursor() as cr:
        env = environment(cr)
        for _ in range(repeat):
            env.invalidate_all()
            timings = pivot(env, domain)
            best_total = min(best_total, sum(timings.values()))
            best_cell = min(best_cell, timings[("building_id", "day:month")])
        cr.rollback()
    return best_total, best_cell


def main(argv=None):
    args = parse_args(argv)
    registry = bench_registry(args)
    if registry is None:
        return 2
    with registry.cursor() as cr:
        env = environment(cr)
        count = built_meters(env)
    empty_total, empty_cell = best_of(registry, [("company_id", "=", 0)], args.repeat)
    if count == 0:
        build_fleet(registry, args.meters, args.buildings, args.days)
    vacuum(args)
    with registry.cursor() as cr:
        env = environment(cr)
        count = built_meters(env)
        cr.execute("SELECT COUNT(*) FROM prepaid_consumption")
        facts = cr.fetchone()[0]
        site = env["prepaid.property"].search([("code", "=", f"{TAG}-S")], limit=1).id
    print(f"consumption report: {count} meters, {facts} daily facts, database {args.db}")
    print(f"machine: {os.cpu_count()} CPUs, {load_average()} before the measurements")
    total, cell = best_of(registry, [("site_id", "=", site)], args.repeat)
    print(
        f"empty report, pivot building x month (4 read_group calls): {empty_total:.0f} ms "
        f"(building x month call {empty_cell:.0f} ms)"
    )
    for label, ms in (
        ("pivot building x month, 4 read_group calls", total),
        ("building x month read_group alone", cell),
    ):
        ratio = ms / TARGET_MS
        verdict = "met" if ratio <= 1 else "NOT met"
        print(
            f"{label}: {ms:.0f} ms, best of {args.repeat}; ratio {ratio:.2f} vs {TARGET_MS:.0f} ms "
            f"[target <= 1: {verdict}]"
        )
    print(f"machine: {load_average()} after the measurements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
