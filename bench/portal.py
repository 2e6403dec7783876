"""Portal benchmark: the tenant's account page (balance, meters, usage charts, history) under 20 concurrent
tenants, on a database with two years of history, against the same page on a database without history.

What is measured: ``GET /my/prepaid/accounts/<id>`` (the account page; its chart data is computed from the
daily consumption facts with grouped queries and embedded in the page) through a real Odoo HTTP server with
prefork workers (``scripts/odoo_cli.py``, ``--workers 2 --max-cron-threads 0`` on a free port), each request
timed from sending it to the last byte of its body. ``--tenants`` portal users log in (``POST /web/login``
with the CSRF token of the login page, one ``requests.Session`` each), warm up, then each requests its own
account page ``--requests`` times as fast as it gets answers (``--think`` adds a pause between requests).

Targets: p95 <= 300 ms on the big database, and p95 big / p95 empty <= 1.5 (the page does not slow down as
history grows). Also printed: p50, max, requests/s, the page's time for one tenant alone (no queueing), per
request what Odoo's log says it spent (SQL queries, SQL time, the rest), the first error Odoo logged if
requests failed, and how many connections the kernel dropped meanwhile because Odoo's listen queue was full
(Odoo's prefork server listens with a backlog of 8 per worker: 16 for 2 workers, fewer than 20 tenants; a
dropped connection is retried by the client after a retransmission timeout, which shows in the tail).

The databases (built once, reused by later runs; ``--rebuild`` builds them again):

* ``--db`` (default ``prepaid_bench_portal``): the suite (``prepaid_base, prepaid_metering, prepaid_billing,
  prepaid_portal, payment_demo``, no demo data); through the ORM: one site, buildings of 20 floors x 10
  units, ``--accounts`` units each with an open prepaid account of its own tenant and ``--meters`` /
  ``--accounts`` meters (electricity, water, ...), one portal user per account (one ``create`` of all of
  them; the same password hash written once with SQL: hashing 1,000 passwords takes 600,000 PBKDF2 rounds
  each) bound to it as its holder (``prepaid.portal.binding._bind``, what staff's Bind does: the user's
  contact in ``portal_partner_ids``); then with SQL (``INSERT .. SELECT`` over ``generate_series``):
  ``--readings`` readings spread evenly over the meters and ``--days`` days up to the build time (default
  5,000 per meter, one every 210 minutes over two years: the chart shows this year and the year before), the
  daily consumption facts computed from those readings (one per meter and local day), and the ledger: an
  opening balance per account and one consumption deduction per meter and day, in posting order with
  consistent ``balance_after``, the account's balance being the last one (300.00 plus cents). Everything is
  inserted in time order (the facts and lines of an account are spread over the table as the settlement
  writes them), then ``VACUUM ANALYZE``.
* ``<db>_empty``: the same accounts, meters and users (a copy taken before the history was loaded), each
  account with its opening balance of 300.00 only: no readings, facts or deductions.

When addons/ changed since a database was built or last updated (a digest of its files, kept in the
database), the suite is updated in it first (``-u``, as soak.py does), so that the page measured is this
checkout's; ``--no-update`` measures the databases as they are.

It prints, it never asserts; exit status 0 unless the run itself broke (a database could not be built,
Odoo did not start, a tenant could not log in, requests failed).

    python3 bench/portal.py                      # builds both databases on first use, then measures
    python3 bench/portal.py --build              # build only (if missing)
    python3 bench/portal.py --rebuild            # drop and build again, then measure
    python3 bench/portal.py --db prepaid_bench_portal_small --accounts 100 --meters 200 --readings 100000 \\
        --tenants 5 --requests 10                # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
MODULES = "prepaid_base,prepaid_metering,prepaid_billing,prepaid_portal,payment_demo"
TAG = "BP"  # prefix of the bench's records (property codes, meter names, logins)
MARKER = "prepaid_bench.portal"  # ir.config_parameter: what the database was built with
# ir.config_parameter: digest of addons/ the database was last updated to
SUITE_MARKER = "prepaid_bench.suite"
SUITE_MODULES = "prepaid_base,prepaid_metering,prepaid_billing,prepaid_portal"
TZ = "Asia/Shanghai"
TARGET_P95_MS = 300.0
TARGET_RATIO = 1.5
OPENING_LEFT = 300  # what each account has left after its history (and the empty database's opening)
UNITS_PER_FLOOR = 10
FLOORS_PER_BUILDING = 20
UTILITIES = ("electricity", "water")
METER_MODELS = {
    "electricity": "prepaid_metering.meter_model_dlt645_2007_prepaid",
    "water": "prepaid_metering.meter_model_cjt188_water",
}
PAGE_MARK = "o_prepaid_account_page"  # in every rendered account page
# Odoo's werkzeug log line: ... "GET /path HTTP/1.1" 200 - <queries> <sql s> <other s>
LOG_LINE = re.compile(r'"GET (/my/prepaid/accounts/\d+)[^"]*" (\d{3}) \S+ (\d+) ([\d.]+) ([\d.]+)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("database")
    data.add_argument(
        "--db", default="prepaid_bench_portal", help="the big database (the empty one: <db>_empty)"
    )
    data.add_argument("--accounts", type=int, default=1000)
    data.add_argument("--meters", type=int, default=2000, help="meters (a multiple of --accounts)")
    data.add_argument("--readings", type=int, default=10_000_000, help="readings, spread over the meters")
    data.add_argument("--days", type=float, default=730, help="days of history the readings span")
    data.add_argument("--build", action="store_true", help="build the databases if missing, then stop")
    data.add_argument("--rebuild", action="store_true", help="drop and build the databases again first")
    data.add_argument(
        "--no-update", action="store_true", help="measure the databases as they are, even if addons/ changed"
    )
    load = parser.add_argument_group("load")
    load.add_argument("--tenants", type=int, default=20, help="concurrent logged-in tenants")
    load.add_argument("--requests", type=int, default=25, help="measured requests per tenant")
    load.add_argument("--warmup", type=int, default=3, help="requests per tenant before measuring")
    load.add_argument("--single", type=int, default=20, help="requests of one tenant alone (0: skip)")
    load.add_argument("--think", type=float, default=0.0, help="seconds a tenant waits between requests")
    load.add_argument("--only", choices=["big", "empty"], help="measure one database only (no ratio)")
    server = parser.add_argument_group("server")
    server.add_argument("--port", type=int, default=8269, help="Odoo's HTTP port")
    server.add_argument("--gevent-port", type=int, default=8272, help="Odoo's websocket (gevent) port")
    server.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers")
    server.add_argument("--password", default="bench-portal", help="the tenants' password")
    server.add_argument("--start-timeout", type=float, default=180, help="seconds to wait for Odoo")
    server.add_argument("--out", help="folder for Odoo's logs (default: a new folder in /tmp)")
    args = parser.parse_args(argv)
    if args.accounts < 1 or args.meters % args.accounts or args.meters < args.accounts:
        parser.error("--meters must be a positive multiple of --accounts")
    if args.readings < 2 * args.meters:
        parser.error("--readings must give each meter at least 2 readings")
    if args.tenants > args.accounts:
        parser.error("--tenants cannot exceed --accounts")
    return args


# ================================================================================================ helpers


def addons_path():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "odoo_paths.py")], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(out.stderr.strip() or "no Odoo 18 here (scripts/odoo_paths.py)")
    return out.stdout.strip()


def load_average():
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def psql(db, sql):
    out = subprocess.run(["psql", "-X", "-d", db, "-Atc", sql], capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def database_exists(name):
    return psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


def marker(db):
    """What ``db`` was built with (the MARKER parameter), or None (not built, or the build did not finish)."""
    value = psql(db, f"SELECT value FROM ir_config_parameter WHERE key = '{MARKER}'")
    return json.loads(value) if value else None


def suite_digest():
    """A digest of the suite's sources (addons/): a database last updated to another digest is updated first,
    so the bench measures the suite as this checkout has it."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "addons").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def set_parameter(db, key, value):
    import psycopg2

    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute(
            """INSERT INTO ir_config_parameter (key, value, create_uid, create_date, write_uid, write_date)
               VALUES (%s, %s, 1, now(), 1, now())
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
            (key, value),
        )
    conn.close()


def update_suite(db, args, out: Path):
    """``-u`` the suite's modules on ``db`` when addons/ changed since its last update (or its build)."""
    digest = suite_digest()
    if psql(db, f"SELECT value FROM ir_config_parameter WHERE key = '{SUITE_MARKER}'") == digest:
        return
    print(f"updating the suite in {db} (addons/ changed since its build or last update)...", flush=True)
    t0 = time.perf_counter()
    log = out / f"update-{db}.log"
    with open(log, "w") as output:
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "odoo_cli.py"),
                f"--addons-path={addons_path()}",
                "-d",
                db,
                "-u",
                SUITE_MODULES,
                "--stop-after-init",
                "--max-cron-threads=0",
                "--log-level=warn",
                "--log-handler=py.warnings:ERROR",
                f"--http-port={args.port}",
            ],
            cwd=ROOT,
            env=odoo_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode:
        raise SystemExit(f"updating the suite in {db} failed: see {log}")
    set_parameter(db, SUITE_MARKER, digest)
    print(f"  {time.perf_counter() - t0:.0f} s", flush=True)


def odoo_env():
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )


def port_busy(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def listen_overflows():
    """The kernel's count of connections dropped because a listen queue was full (all sockets of the
    machine: TcpExt ListenOverflows), or None where it cannot be read."""
    try:
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    except OSError:
        return None
    for names, values in itertools.pairwise(lines):
        if names[0] == "TcpExt:" and values[0] == "TcpExt:" and "ListenOverflows" in names:
            return int(values[names.index("ListenOverflows")])
    return None


def percentile(values, q):
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def step_minutes(args):
    per_meter = args.readings // args.meters
    return max(1, round(args.days * 1440 / per_meter)), per_meter


def wanted(args):
    minutes, per_meter = step_minutes(args)
    return {
        "accounts": args.accounts,
        "meters": args.meters,
        "readings_per_meter": per_meter,
        "step_minutes": minutes,
    }


# ================================================================================================ build


class Builder:
    """Creates ``<db>`` and ``<db>_empty`` (see the module docstring)."""

    def __init__(self, args, out: Path):
        self.args, self.out = args, out
        self.db, self.empty = args.db, f"{args.db}_empty"
        self.addons = addons_path()

    def drop(self):
        import odoo  # noqa: F401

        for db in (self.db, self.empty):
            if database_exists(db):
                print(f"dropping {db}...", flush=True)
                subprocess.run(["dropdb", "--force", db], check=True)
            self._config()
            from odoo.tools import config

            store = Path(config.filestore(db))
            if store.exists():
                subprocess.run(["rm", "-rf", str(store)], check=True)

    def _config(self):
        from odoo.tools import config

        if not getattr(self, "_configured", False):
            config.parse_config([f"--addons-path={self.addons}", "--log-level=warn", "--max-cron-threads=0"])
            self._configured = True

    def build(self):
        started = time.perf_counter()
        digest = suite_digest()
        if database_exists(self.db):
            subprocess.run(["dropdb", "--force", self.db], check=True)  # an unfinished build
        if database_exists(self.empty):
            subprocess.run(["dropdb", "--force", self.empty], check=True)
        self.create_database()
        self._config()
        import odoo

        registry = odoo.modules.registry.Registry(self.db)
        self.populate(registry)
        odoo.modules.registry.Registry.delete(self.db)
        odoo.sql_db.close_all()
        print(f"copying {self.db} to {self.empty} (the database without history)...", flush=True)
        t0 = time.perf_counter()
        odoo.service.db.exp_duplicate_database(self.db, self.empty)
        odoo.modules.registry.Registry.delete(self.empty)
        odoo.sql_db.close_all()
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
        self.load_empty()
        self.load_history()
        for db in (self.db, self.empty):
            set_parameter(db, SUITE_MARKER, digest)
        print(f"databases built in {time.perf_counter() - started:.0f} s", flush=True)

    def create_database(self):
        print(f"creating {self.db} with {MODULES} (no demo data)...", flush=True)
        t0 = time.perf_counter()
        log = self.out / f"install-{self.db}.log"
        env = odoo_env()
        with open(log, "w") as output:
            done = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "odoo_cli.py"),
                    f"--addons-path={self.addons}",
                    "-d",
                    self.db,
                    "-i",
                    MODULES,
                    "--without-demo=all",
                    "--stop-after-init",
                    "--max-cron-threads=0",
                    "--log-level=warn",
                    "--log-handler=py.warnings:ERROR",
                    f"--http-port={self.args.port}",
                ],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode:
            raise SystemExit(f"installing the suite failed: see {log}")
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)

    # -- the ORM part: estate, accounts, meters, portal users -----------------------------------------------

    def populate(self, registry):
        from odoo import SUPERUSER_ID, Command, api

        args = self.args
        print(
            f"creating {args.accounts} units and accounts, {args.meters} meters, {args.accounts} portal "
            "users "
            "(ORM)...",
            flush=True,
        )
        t0 = time.perf_counter()
        ctx = {"tracking_disable": True, "mail_create_nolog": True, "no_reset_password": True}
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, ctx)
            company = env.ref("base.main_company")
            company.partner_id.tz = TZ
            Property = env["prepaid.property"]
            site = Property.create({"name": f"{TAG} site", "code": f"{TAG}-S", "kind": "site", "tz": TZ})
            per_building = UNITS_PER_FLOOR * FLOORS_PER_BUILDING
            units = Property.browse()
            for b in range(math.ceil(args.accounts / per_building)):
                building = Property.create(
                    {
                        "name": f"Building {b + 1}",
                        "code": f"{TAG}-B{b + 1}",
                        "kind": "building",
                        "parent_id": site.id,
                    }
                )
                count = min(per_building, args.accounts - b * per_building)
                floors = Property.create(
                    [
                        {
                            "name": f"Floor {f + 1}",
                            "code": f"{TAG}-B{b + 1}-F{f + 1}",
                            "kind": "floor",
                            "parent_id": building.id,
                        }
                        for f in range(math.ceil(count / UNITS_PER_FLOOR))
                    ]
                )
                units |= Property.create(
                    [
                        {
                            "name": f"{b + 1}-{i // UNITS_PER_FLOOR + 1:02d}{i % UNITS_PER_FLOOR + 1:02d}",
                            "code": f"{TAG}-B{b + 1}-U{i + 1:03d}",
                            "kind": "unit",
                            "unit_type": "room",
                            "parent_id": floors[i // UNITS_PER_FLOOR].id,
                        }
                        for i in range(count)
                    ]
                )
            tenants = env["res.partner"].create(
                [{"name": f"{TAG} tenant {n + 1:04d}", "tz": TZ} for n in range(args.accounts)]
            )
            accounts = env["prepaid.account"].create(
                [
                    {"partner_id": tenant.id, "unit_ids": [Command.set(unit.ids)]}
                    for tenant, unit in zip(tenants, units, strict=True)
                ]
            )
            accounts.action_open()
            models = {utility: env.ref(xmlid) for utility, xmlid in METER_MODELS.items()}
            per_account = args.meters // args.accounts
            meters = env["prepaid.meter"].create(
                [
                    {
                        "name": f"{TAG}-{n + 1:04d} {UTILITIES[k % 2]}{'' if k < 2 else f' {k // 2 + 1}'}",
                        "utility": UTILITIES[k % 2],
                        "model_id": models[UTILITIES[k % 2]].id,
                        "address": f"{n * per_account + k + 1:012d}"
                        if k % 2 == 0
                        else f"{n * per_account + k + 1:014d}",
                        "unit_id": unit.id,
                        "billing_mode": "platform",
                    }
                    for n, unit in enumerate(units)
                    for k in range(per_account)
                ]
            )
            env.flush_all()
            unbilled = meters.filtered(lambda m: not m.account_id)
            if unbilled:
                raise SystemExit(f"{len(unbilled)} meters got no account from their unit")
            print(f"  estate, accounts and meters: {time.perf_counter() - t0:.0f} s", flush=True)
            t1 = time.perf_counter()
            portal = env.ref("base.group_portal")
            users = env["res.users"].create(
                [
                    {
                        "name": f"{TAG} portal {n + 1:04d}",
                        "login": f"{TAG.lower()}_tenant_{n + 1:04d}",
                        "groups_id": [Command.set(portal.ids)],
                        "company_id": company.id,
                        "company_ids": [Command.set(company.ids)],
                        "tz": TZ,
                    }
                    for n in range(args.accounts)
                ]
            )
            env.flush_all()
            digest = env["res.users"]._crypt_context().hash(args.password)
            cr.execute("UPDATE res_users SET password = %s WHERE id = ANY(%s)", (digest, users.ids))
            Binding = env["prepaid.portal.binding"]
            for account, user in zip(accounts, users, strict=True):
                Binding._bind(account, user, "holder", "staff")
            env.flush_all()
            print(f"  portal users and bindings: {time.perf_counter() - t1:.0f} s", flush=True)

    # -- the SQL part: readings, facts, ledger --------------------------------------------------------------

    def _connect(self, db):
        import psycopg2

        conn = psycopg2.connect(dbname=db)
        conn.autocommit = False
        return conn

    def _bench_meters(self, cr):
        cr.execute(
            f"""
            CREATE TEMP TABLE bench_meters AS
            SELECT m.id AS meter_id, m.account_id, m.utility, m.unit_id, m.building_id, m.company_id,
                   (CASE WHEN m.utility = 'electricity' THEN 0.30 + (m.id % 10) * 0.05
                         ELSE 0.010 + (m.id % 5) * 0.005 END)::numeric AS step,
                   (CASE WHEN m.utility = 'electricity' THEN 0.617 ELSE 3.50 END)::numeric AS price
              FROM prepaid_meter m WHERE m.name LIKE '{TAG}-%';
            CREATE TEMP TABLE bench_accounts AS
            SELECT a.id AS account_id, a.partner_id, a.company_id, a.currency_id
              FROM prepaid_account a WHERE a.id IN (SELECT account_id FROM bench_meters);
            ANALYZE bench_meters; ANALYZE bench_accounts;
            """
        )

    def _finish(self, conn, db, built):
        """Balances and levels from the ledger, the marker, then VACUUM ANALYZE."""
        with conn.cursor() as cr:
            cr.execute(
                """
                UPDATE prepaid_account a
                   SET balance = l.balance_after, level = 'normal', alert_level = 'normal'
                  FROM (SELECT DISTINCT ON (account_id) account_id, balance_after
                          FROM prepaid_ledger ORDER BY account_id, id DESC) l
                 WHERE a.id = l.account_id
                """
            )
            cr.execute(
                """SELECT COUNT(*) FROM prepaid_account
                    WHERE balance <= GREATEST(warn_level_1, warn_level_2, warn_level_3, cutoff_level)"""
            )
            if cr.fetchone()[0]:
                raise SystemExit(
                    "the bench's balances are not above the warning levels: level 'normal' is wrong"
                )
            cr.execute(
                """INSERT INTO ir_config_parameter
                          (key, value, create_uid, create_date, write_uid, write_date)
                   VALUES (%s, %s, 1, now(), 1, now())
                   ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
                (MARKER, json.dumps(built)),
            )
        conn.commit()
        print(f"  VACUUM ANALYZE {db}...", flush=True)
        t0 = time.perf_counter()
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute("VACUUM (ANALYZE)")
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)

    def load_empty(self):
        print(f"{self.empty}: an opening balance of {OPENING_LEFT}.00 per account...", flush=True)
        conn = self._connect(self.empty)
        with conn.cursor() as cr:
            self._bench_meters(cr)
            cr.execute(
                f"""
                INSERT INTO prepaid_ledger
                       (account_id, partner_id, company_id, currency_id, date, kind, amount, balance_after,
                        idempotency_key, period, description, create_uid, create_date)
                SELECT account_id, partner_id, company_id, currency_id, now() AT TIME ZONE 'UTC', 'opening',
                       {OPENING_LEFT}, {OPENING_LEFT}, '{TAG}:opening:' || account_id, 1, 'Opening balance',
                       1, now() AT TIME ZONE 'UTC'
                  FROM bench_accounts ORDER BY account_id
                """
            )
        built = dict(
            wanted(self.args), history=False, built_at=datetime.now(UTC).isoformat(timespec="seconds")
        )
        self._finish(conn, self.empty, built)
        conn.close()

    def load_history(self):
        args = self.args
        minutes, per_meter = step_minutes(args)
        end = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
        start = end - timedelta(minutes=minutes * (per_meter - 1))
        total = per_meter * args.meters
        print(
            f"{self.db}: {total:,} readings ({per_meter} per meter, one every {minutes} min from "
            f"{start:%Y-%m-%d} "
            f"to {end:%Y-%m-%d %H:%M} UTC), their daily facts, the ledger (SQL)...",
            flush=True,
        )
        conn = self._connect(self.db)
        with conn.cursor() as cr:
            self._bench_meters(cr)
            conn.commit()
            t0 = time.perf_counter()
            chunk = max(1, 500_000 // args.meters)  # reading times per statement (~500,000 rows)
            for k0 in range(0, per_meter, chunk):
                k1 = min(per_meter, k0 + chunk) - 1
                # Time-major (k outer, meters inner): the table fills as polling fills it.
                cr.execute(
                    """
                    INSERT INTO prepaid_meter_reading
                           (meter_id, read_at, ingested_at, source, state, company_id, utility, building_id,
                            total, sharp, peak, flat, valley, voltage, current, power, supply)
                    SELECT m.meter_id, %(start)s + k * %(step)s,
                           %(start)s + k * %(step)s + interval '40 seconds',
                           'poll', 'valid', m.company_id, m.utility, m.building_id,
                           1000 + k * m.step,
                           CASE WHEN e THEN 100 + k * m.step * 0.1 END,
                           CASE WHEN e THEN 300 + k * m.step * 0.3 END,
                           CASE WHEN e THEN 400 + k * m.step * 0.4 END,
                           CASE WHEN e THEN 200 + k * m.step * 0.2 END,
                           CASE WHEN e THEN 219.5 + (k %% 7) * 0.5 END,
                           CASE WHEN e THEN round(m.step * (1 + (k %% 5) * 0.1), 3) END,
                           CASE WHEN e THEN round(m.step * 0.2, 4) END, 'on'
                      FROM generate_series(%(k0)s, %(k1)s) AS k
                     CROSS JOIN LATERAL (SELECT bm.*, bm.utility = 'electricity' AS e FROM bench_meters bm) m
                    """,
                    {"start": start, "step": timedelta(minutes=minutes), "k0": k0, "k1": k1},
                )
                conn.commit()
                done = (k1 + 1) * args.meters
                elapsed = time.perf_counter() - t0
                if k1 + 1 == per_meter or (k0 // chunk) % 4 == 3:
                    print(
                        f"  readings: {done:,} in {elapsed:.0f} s ({done / elapsed:,.0f} rows/s)", flush=True
                    )
            t1 = time.perf_counter()
            cr.execute(
                """
                INSERT INTO prepaid_consumption
                       (meter_id, account_id, day, company_id, utility, unit_id, building_id, quantity,
                        sharp, peak, flat, valley, free_quantity, amount, intervals)
                SELECT f.meter_id, m.account_id, f.day, m.company_id, m.utility, m.unit_id, m.building_id,
                       f.n * m.step,
                       CASE WHEN m.utility = 'electricity' THEN f.n * m.step * 0.1 ELSE 0 END,
                       CASE WHEN m.utility = 'electricity' THEN f.n * m.step * 0.3 ELSE 0 END,
                       CASE WHEN m.utility = 'electricity' THEN f.n * m.step * 0.4 ELSE 0 END,
                       CASE WHEN m.utility = 'electricity' THEN f.n * m.step * 0.2 ELSE 0 END,
                       0, round(f.n * m.step * m.price, 2), f.n
                  FROM (SELECT r.meter_id, ((r.read_at AT TIME ZONE 'UTC') AT TIME ZONE %(tz)s)::date AS day,
                               COUNT(*) AS n
                          FROM prepaid_meter_reading r
                         WHERE r.meter_id IN (SELECT meter_id FROM bench_meters) AND r.read_at > %(start)s
                      GROUP BY 1, 2) f
                  JOIN bench_meters m ON m.meter_id = f.meter_id
              ORDER BY f.day, f.meter_id
                """,
                {"tz": TZ, "start": start},
            )
            facts = cr.rowcount
            conn.commit()
            print(f"  daily facts: {facts:,} in {time.perf_counter() - t1:.0f} s", flush=True)
            t2 = time.perf_counter()
            # The opening balance (what two years cost, plus what is left), then one deduction per meter and
            # day (the day's facts), in posting order: day, account, meter.
            cr.execute(
                f"""
                INSERT INTO prepaid_ledger
                       (account_id, partner_id, company_id, currency_id, date, kind, amount, balance_after,
                        idempotency_key, period, description, create_uid, create_date)
                SELECT a.account_id, a.partner_id, a.company_id, a.currency_id, %(start)s, 'opening',
                       s.spent + {OPENING_LEFT}, s.spent + {OPENING_LEFT}, '{TAG}:opening:' || a.account_id,
                       1, 'Opening balance', 1, %(start)s
                  FROM bench_accounts a
                  JOIN (SELECT account_id, SUM(amount) AS spent
                          FROM prepaid_consumption GROUP BY account_id) s
                    ON s.account_id = a.account_id
              ORDER BY a.account_id;

                INSERT INTO prepaid_ledger
                       (account_id, partner_id, company_id, currency_id, date, kind, amount, balance_after,
                        idempotency_key, period, utility, quantity, res_model, res_id, create_uid,
                        create_date)
                SELECT c.account_id, a.partner_id, a.company_id, a.currency_id, c.at, 'consumption',
                       -c.amount,
                       o.amount - SUM(c.amount) OVER (PARTITION BY c.account_id ORDER BY c.day, c.meter_id),
                       '{TAG}:cons:' || c.meter_id || ':' || c.day, 1, c.utility, c.quantity,
                       'prepaid.meter', c.meter_id, 1, c.at
                  FROM (SELECT f.*, LEAST(((f.day + 1)::timestamp AT TIME ZONE %(tz)s) AT TIME ZONE 'UTC'
                                          - interval '1 minute', %(end)s) AS at
                          FROM prepaid_consumption f WHERE f.amount > 0) c
                  JOIN bench_accounts a ON a.account_id = c.account_id
                  JOIN prepaid_ledger o ON o.idempotency_key = '{TAG}:opening:' || c.account_id
              ORDER BY c.day, c.account_id, c.meter_id;
                """,
                {"start": start, "end": end, "tz": TZ},
            )
            cr.execute("SELECT COUNT(*) FROM prepaid_ledger")
            lines = cr.fetchone()[0]
            cr.execute(
                """
                UPDATE prepaid_meter m
                   SET last_reading_at = %(end)s, last_total = 1000 + %(last)s * b.step, supply = 'on',
                       supply_at = %(end)s, online = TRUE
                  FROM bench_meters b WHERE b.meter_id = m.id
                """,
                {"end": start + timedelta(minutes=minutes * (per_meter - 1)), "last": per_meter - 1},
            )
            conn.commit()
            print(f"  ledger: {lines:,} lines in {time.perf_counter() - t2:.0f} s", flush=True)
        built = dict(
            wanted(args),
            history=True,
            readings=total,
            facts=facts,
            ledger_lines=lines,
            first_reading=start.isoformat(),
            last_reading=end.isoformat(),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._finish(conn, self.db, built)
        conn.close()


# ================================================================================================ the server


class OdooServer:
    """Odoo as the product runs it (``scripts/odoo_cli.py -c odoo.conf``), with prefork workers and no cron,
    in its own process group; its log in ``logfile``."""

    def __init__(self, args, db, logfile: Path):
        self.args, self.db, self.logfile = args, db, logfile
        self.url = f"http://127.0.0.1:{args.port}"
        self.proc = None

    def start(self):
        busy = [p for p in (self.args.port, self.args.gevent_port) if port_busy(p)]
        if busy:
            raise SystemExit(f"ports {busy} are in use: choose others (--port, --gevent-port)")
        env = odoo_env()
        command = [
            sys.executable,
            str(ROOT / "scripts" / "odoo_cli.py"),
            "-c",
            str(ROOT / "odoo.conf"),
            f"--addons-path={addons_path()}",
            "-d",
            self.db,
            f"--db-filter=^{self.db}$",
            f"--http-port={self.args.port}",
            f"--gevent-port={self.args.gevent_port}",
            f"--workers={self.args.workers}",
            "--max-cron-threads=0",
            f"--logfile={self.logfile}",
            "--log-level=info",
            "--log-handler=py.warnings:ERROR",
        ]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.args.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"Odoo stopped while starting (exit {self.proc.returncode}): see {self.logfile}"
                )
            try:
                if requests.get(self.url + "/web/login", timeout=10).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(1)
        raise SystemExit(f"Odoo did not answer on {self.url} within {self.args.start_timeout:.0f} s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None

    def log_offset(self):
        return self.logfile.stat().st_size if self.logfile.exists() else 0

    def first_error(self, start, end):
        """The exception of the first error Odoo logged between two offsets, or None."""
        with open(self.logfile, errors="replace") as log:
            log.seek(start)
            lines = log.read(end - start).splitlines()
        for i, line in enumerate(lines):
            if " ERROR " in line:
                for follow in lines[i + 1 : i + 200]:
                    if follow and not follow.startswith((" ", "Traceback", "The above")) and ":" in follow:
                        if re.match(r"^\d{4}-\d\d-\d\d ", follow):
                            break
                        return f"{line.split(' ERROR ', 1)[1].strip()} -> {follow.strip()}"
                return line.split(" ERROR ", 1)[1].strip()
        return None

    def page_lines(self, start, end):
        """(queries, sql s, other s) of the account-page requests Odoo logged between two offsets."""
        with open(self.logfile, errors="replace") as log:
            log.seek(start)
            text = log.read(end - start)
        return [(int(m[3]), float(m[4]), float(m[5])) for m in LOG_LINE.finditer(text) if m[2] == "200"]


# ================================================================================================ the tenants


class Tenant:
    """One tenant in a browser: logged in, loading the page of their account."""

    CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"')

    def __init__(self, url, login, password, account_id):
        self.url, self.login_name, self.password, self.account_id = url, login, password, account_id
        self.http = requests.Session()
        self.page = f"{url}/my/prepaid/accounts/{account_id}"

    def login(self):
        form = self.http.get(self.url + "/web/login", timeout=60)
        token = self.CSRF.search(form.text)
        if not token:
            raise RuntimeError(f"no CSRF token on the login page (HTTP {form.status_code})")
        answer = self.http.post(
            self.url + "/web/login",
            data={
                "login": self.login_name,
                "password": self.password,
                "csrf_token": token[1],
                "redirect": "",
            },
            allow_redirects=False,
            timeout=120,
        )
        if answer.status_code not in (302, 303):
            raise RuntimeError(f"{self.login_name} could not log in (HTTP {answer.status_code})")
        return self

    def load(self):
        """One page load: (seconds to the last byte, body bytes, ok)."""
        t0 = time.perf_counter()
        try:
            answer = self.http.get(self.page, timeout=120, allow_redirects=False)
            body = answer.content
        except requests.RequestException:
            return time.perf_counter() - t0, 0, False
        elapsed = time.perf_counter() - t0
        return elapsed, len(body), answer.status_code == 200 and PAGE_MARK.encode() in body


def tenants_of(db, args):
    """The (login, account id) of ``args.tenants`` tenants spread over the bench's accounts."""
    rows = psql(
        db,
        f"""SELECT u.login || ',' || b.account_id
              FROM prepaid_portal_binding b JOIN res_users u ON u.id = b.user_id
             WHERE u.login LIKE '{TAG.lower()}_tenant_%' AND b.state = 'active' ORDER BY b.account_id""",
    )
    pairs = [tuple(row.split(",")) for row in (rows or "").splitlines()]
    if len(pairs) < args.tenants:
        raise SystemExit(f"{db} has {len(pairs)} bound tenants, not {args.tenants}: --rebuild")
    spread = len(pairs) / args.tenants
    return [(pairs[int(i * spread)][0], int(pairs[int(i * spread)][1])) for i in range(args.tenants)]


def summary(latencies):
    ms = [v * 1000 for v in latencies]
    return {
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "max": max(ms),
        "mean": statistics.fmean(ms),
    }


def measure(args, db, label, out: Path):
    """Start Odoo on ``db``, log the tenants in, warm up, one tenant alone, then all at once; stop Odoo."""
    server = OdooServer(args, db, out / f"odoo-{label}.log")
    print(
        f"-- {label} database {db}: starting Odoo ({args.workers} workers, no cron) on port {args.port}...",
        flush=True,
    )
    server.start()
    try:
        tenants = [
            Tenant(server.url, login, args.password, account) for login, account in tenants_of(db, args)
        ]
        t0 = time.perf_counter()
        errors = []

        def log_in(tenant):
            try:
                tenant.login()
            except (RuntimeError, requests.RequestException) as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=log_in, args=(t,), daemon=True) for t in tenants]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise SystemExit(f"{len(errors)} tenants could not log in: {errors[0]}")
        print(f"   {len(tenants)} tenants logged in ({time.perf_counter() - t0:.1f} s)", flush=True)

        # Warm-up: every worker loads the registry, compiles the templates, fills its caches.
        run_clients(tenants, args.warmup, 0.0)
        result = {"db": db}
        if args.single:
            single = [tenants[0].load() for _ in range(args.single)]
            bad = sum(1 for _s, _b, ok in single if not ok)
            result["single"] = summary([s for s, _b, ok in single if ok] or [0])
            result["single_bad"] = bad
        offset = server.log_offset()
        overflows = listen_overflows()
        wall, samples = run_clients(tenants, args.requests, args.think)
        if overflows is not None:
            result["overflows"] = listen_overflows() - overflows
        time.sleep(0.5)  # the last log lines
        end = server.log_offset()
        logged = server.page_lines(offset, end)
        result["error"] = server.first_error(0, end)
        good = [s for s, _b, ok in samples if ok]
        result.update(
            requests=len(samples),
            failed=len(samples) - len(good),
            wall=wall,
            rate=len(samples) / wall if wall else float("inf"),
            bytes=statistics.fmean(b for _s, b, ok in samples if ok) if good else 0,
            logged=len(logged),
        )
        if good:
            result.update(summary(good))
        if logged:
            result["queries"] = statistics.fmean(q for q, _s, _o in logged)
            result["sql_ms"] = statistics.fmean(s for _q, s, _o in logged) * 1000
            result["other_ms"] = statistics.fmean(o for _q, _s, o in logged) * 1000
        return result
    finally:
        server.stop()


def run_clients(tenants, count, think):
    """Each tenant loads its page ``count`` times, all at once; returns (wall s, [(s, bytes, ok)])."""
    samples, lock = [], threading.Lock()
    barrier = threading.Barrier(len(tenants) + 1)

    def client(tenant):
        mine = []
        barrier.wait()
        for i in range(count):
            mine.append(tenant.load())
            if think and i + 1 < count:
                time.sleep(think)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in tenants]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t0, samples


def report(label, r, args):
    if not r.get("p95"):
        print(f"{label}: every request failed ({r['failed']} of {r['requests']})")
        if r.get("error"):
            print(f"    first error in Odoo's log: {r['error']}")
        return
    verdict = "met" if r["p95"] <= TARGET_P95_MS else "NOT met"
    print(
        f"{label}: {r['requests']} requests by {args.tenants} tenants in {r['wall']:.2f} s = "
        f"{r['rate']:.1f} req/s; "
        f"latency p50 {r['p50']:.0f} ms, p95 {r['p95']:.0f} ms, max {r['max']:.0f} ms"
        + (f"  [target p95 <= {TARGET_P95_MS:.0f} ms: {verdict}]" if label.startswith("big") else "")
    )
    details = [f"page {r['bytes'] / 1024:.0f} kB", f"{r['failed']} failed"]
    if r["failed"] and r.get("error"):
        details.append(f"first error in Odoo's log: {r['error']}")
    if "queries" in r:
        details.append(
            f"Odoo per request: {r['queries']:.0f} SQL queries, {r['sql_ms']:.1f} ms SQL + "
            f"{r['other_ms']:.1f} ms "
            f"other ({r['logged']} logged)"
        )
    if r.get("overflows"):
        details.append(
            f"{r['overflows']} connections dropped by the kernel meanwhile (listen queue full: Odoo listens "
            f"with a backlog of 8 x {args.workers} workers = {8 * args.workers}, fewer than {args.tenants} "
            "tenants; each "
            "drop costs a retransmission)"
        )
    if "single" in r:
        s = r["single"]
        details.append(
            f"one tenant alone: p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms ({args.single} requests"
            + (f", {r['single_bad']} failed" if r["single_bad"] else "")
            + ")"
        )
    print("    " + "; ".join(details))


def main(argv=None):
    args = parse_args(argv)
    try:
        import odoo  # noqa: F401
    except ImportError:
        print("Odoo 18 is not importable by this python3 (see scripts/odoo_paths.py)", file=sys.stderr)
        return 2
    out = Path(args.out or tempfile.mkdtemp(prefix="prepaid-bench-portal."))
    out.mkdir(parents=True, exist_ok=True)
    builder = Builder(args, out)
    empty = f"{args.db}_empty"
    want = wanted(args)
    if args.rebuild:
        builder.drop()
    found = {db: marker(db) if database_exists(db) else None for db in (args.db, empty)}
    complete = all(found.values())
    if complete and any({k: v for k, v in found[db].items() if k in want} != want for db in found):
        print(
            f"{args.db} was built with { ({k: found[args.db][k] for k in want}) }, not {want}: use --rebuild "
            "(or another --db)",
            file=sys.stderr,
        )
        return 2
    if not complete:
        builder.build()
    elif args.build:
        print(
            f"{args.db} and {empty} are built already ({found[args.db].get('built_at')}): --rebuild to "
            "rebuild"
        )
    if args.build:
        return 0

    built = marker(args.db)
    print(
        f"portal bench: {args.accounts} accounts, {args.meters} meters, {built.get('readings', 0):,} "
        "readings, "
        f"{built.get('facts', 0):,} daily facts, {built.get('ledger_lines', 0):,} ledger lines (built "
        f"{built.get('built_at')}); {args.tenants} tenants x {args.requests} requests"
        + (f", {args.think} s think time" if args.think else "")
    )
    print(f"machine: {load_average()} before; logs in {out}")
    plan = [(label, db) for label, db in (("empty", empty), ("big", args.db)) if args.only in (None, label)]
    for _label, db in plan:
        if not args.no_update:
            update_suite(db, args, out)
    results = {}
    for label, db in plan:
        results[label] = measure(args, db, label, out)
    print(f"machine: {load_average()} after")
    if "big" in results:
        report(f"big database ({built.get('readings', 0):,} readings)", results["big"], args)
    if "empty" in results:
        report("empty database (no history)", results["empty"], args)
    if len(results) == 2 and results["big"].get("p95") and results["empty"].get("p95"):
        ratio = results["big"]["p95"] / results["empty"]["p95"]
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(f"ratio p95 big / empty: {ratio:.2f}  [target <= {TARGET_RATIO}: {verdict}]")
    broken = [label for label, r in results.items() if r["failed"]]
    return 1 if broken else 0


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops the run and its Odoo processes, also when started in the background of a script (where
    # SIGINT is ignored by default).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
