"""Report export benchmark: the order overview of ``--rows`` ledger movements (default 100,000) exported to
XLSX by ``prepaid.report.export.wizard``, as the administrator (record rules apply, no superuser).

Needs Odoo 18 importable by ``python3`` (or ``--odoo-path``) and a local PostgreSQL the current user can
create databases in. The database (``--db``, default ``prepaid_bench_report_export``) is created with
``prepaid_billing`` (no demo data) when it does not exist, and reused afterwards. The building, unit, tenant,
account and movements are inserted with SQL in the measured transaction and rolled back after it.

Measured: ``_export_xlsx`` into a temporary file (search_read in chunks, constant-memory workbook): wall time
and how much the process's peak memory grew. Targets: <= 120 s (Odoo's default ``limit_time_real`` of an HTTP
worker: the download must finish inside it) and <= 100 MB of growth (a workbook that held the rows would grow
with them); printed as ratios measured / target (<= 1 is met).

It prints, it never asserts. Exit status 0 unless the run itself broke.

    python3 bench/report_export.py
    python3 bench/report_export.py --rows 20000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from settlement import bench_registry, load_average  # noqa: E402

TAG = "REPX"
TARGET_S = 120.0  # Odoo's default limit_time_real
TARGET_MB = 100.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="prepaid_bench_report_export")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--odoo-path", default=os.environ.get("ODOO_PATH", ""), help="Odoo 18 source tree")
    parser.add_argument("--addons-path", default="", help="extra addons paths (the suite's is added)")
    parser.add_argument("--drop", action="store_true", help="drop the database first")
    return parser.parse_args(argv)


def build_movements(env, rows):
    """A building, a unit, a tenant and an open account with ``rows`` fee movements over the last days."""
    company = env.ref("base.main_company")
    building = env["prepaid.property"].create(
        {"name": f"{TAG} building", "code": f"{TAG}-B", "kind": "building"}
    )
    unit = env["prepaid.property"].create(
        {"name": f"{TAG}-101", "code": f"{TAG}-101", "kind": "unit", "parent_id": building.id}
    )
    partner = env["res.partner"].create({"name": f"{TAG} tenant"})
    env.flush_all()
    env.cr.execute(
        """
        INSERT INTO prepaid_account (name, partner_id, company_id, currency_id, period, state, level, balance,
                                     warn_level_1, warn_level_2, warn_level_3, cutoff_level, overdraft_limit,
                                     keep_power, alert_level, create_uid, create_date, write_uid, write_date)
        VALUES (%(tag)s || '-A', %(partner)s, %(company)s, %(currency)s, 1, 'open', 'normal', 0, 50, 20, 10,
                0, 0, FALSE, 'normal', 1, now(), 1, now())
        RETURNING id
        """,
        {"tag": TAG, "partner": partner.id, "company": company.id, "currency": company.currency_id.id},
    )
    account_id = env.cr.fetchone()[0]
    env.cr.execute(
        """
        INSERT INTO prepaid_account_unit_rel (account_id, unit_id) VALUES (%(account)s, %(unit)s);
        INSERT INTO prepaid_ledger (account_id, partner_id, company_id, currency_id, create_uid, kind,
                                    idempotency_key, amount, quantity, date, create_date)
        SELECT %(account)s, %(partner)s, %(company)s, %(currency)s, 1, 'fee', %(tag)s || ':' || g, -1.25, 0.5,
               (now() AT TIME ZONE 'UTC') - (g || ' seconds')::interval, now()
          FROM generate_series(1, %(rows)s) g;
        ANALYZE prepaid_ledger;
        """,
        {
            "account": account_id,
            "unit": unit.id,
            "partner": partner.id,
            "company": company.id,
            "currency": company.currency_id.id,
            "tag": TAG,
            "rows": rows,
        },
    )
    return building


def main(argv=None):
    args = parse_args(argv)
    registry = bench_registry(args)
    if registry is None:
        return 2
    from odoo import SUPERUSER_ID, api, fields

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
        building = build_movements(env, args.rows)
        admin = env.ref("base.user_admin")
        today = fields.Date.context_today(env["res.users"].with_user(admin))
        wizard = (
            env["prepaid.report.export.wizard"]
            .with_user(admin)
            .create(
                {
                    "date_from": today.replace(day=1, month=1, year=today.year - 1),
                    "date_to": today,
                    "building_ids": [(6, 0, building.ids)],
                }
            )
        )
        count = wizard.env["prepaid.order.report"].search_count(wizard._domain())
        print(f"order overview: {count} movements, database {args.db}")
        print(f"machine: {os.cpu_count()} CPUs, {load_average()} before the measurement")
        env.invalidate_all()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            wizard._export_xlsx(out)
            size = out.seek(0, 2)
        seconds = time.perf_counter() - started
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        cr.rollback()
    print(f"workbook: {size / 1e6:.1f} MB")
    for label, value, target, unit in (
        ("export time", seconds, TARGET_S, "s"),
        ("peak memory growth", grown, TARGET_MB, "MB"),
    ):
        ratio = value / target
        verdict = "met" if ratio <= 1 else "NOT met"
        print(
            f"{label}: {value:.1f} {unit}; ratio {ratio:.2f} vs {target:.0f} {unit} [target <= 1: {verdict}]"
        )
    print(f"machine: {load_average()} after the measurement")
    return 0


if __name__ == "__main__":
    sys.exit(main())
