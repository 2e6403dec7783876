"""Recharge benchmark: a cut-off tenant pays on the portal (payment_demo) -> the meter's relay is closed.

What is measured, per recharge, on the real product path: the suite with its demo data, the meter simulator
running the product's demo site (``python3 -m prepaid_engine.simulator``, the site the demo gateways point
at, its three ports renumbered from ``--sim-base-port`` so that it never meets another simulator, with a
state file and a control port), and Odoo with prefork workers and cron workers (``scripts/odoo_cli.py -c
odoo.conf --workers 2 --max-cron-threads 2``: the poll cron, the command executor, the settlement run as in
production). Each of ``--recharges`` recharges is made on an account whose supply is cut, as its tenant (a
portal user bound to the account by its binding code on ``/my/prepaid/bind``) does it in a browser:

1. ``GET /my/prepaid/accounts/<id>/recharge``, ``POST`` the amount, follow the redirect to
   ``/my/prepaid/topups/<id>/pay`` (Odoo's payment form; the demo provider's radio button read from it);
2. **the click on "Pay" (the clock starts)**: JSON-RPC to the form's transaction route
   ``/my/prepaid/topups/<id>/transaction`` with what the payment form's JS sends (provider_id,
   payment_method_id, token_id null, amount, flow 'direct', tokenization_requested false, landing_route,
   is_validation false, csrf_token);
3. what payment_demo's JS does: ``/payment/demo/simulate_payment`` with the reference, payment details
   '4242' and the state 'done', then the status page: ``GET /payment/status`` and ``/payment/status/poll``
   (JSON) as its JS polls it (at once, then every 3 s) until a final state, then the landing route (the
   account page);
4. **the relay closed (the clock stops)**: the simulator's truth of the account's electricity meter
   (``relay_open`` false, control op ``meter``), asked every 50 ms; beside it, when the platform knows it
   (the account page's status route ``/my/prepaid/accounts/<id>/status`` says the meter is 'on'), asked every
   0.5 s.

Target: p95 <= 2 s from the click to the relay closed. Also printed: p50, max, and the stages (transaction
route, payment confirmed by the status poll, platform confirmation).

The demo site has 24 tenant accounts with an electricity meter, one of which keeps power (never cut: left
out), so the recharges are made in rounds: each round cuts up to 23 accounts at once (set-up, not timed: a
negative 'adjustment' posted to each with ``prepaid.account._post_ledger`` in-process, which leaves the
balance 5.00 below the cut-off threshold; the supervision queues the trips and the executor cron sends them;
the round starts when the simulator says every relay is open and the platform has the trips confirmed), then
recharges them one after the other.

Before the first round the bench waits until the cron jobs due when Odoo started have run (at start every
job is due and both cron workers are busy for a minute). Set-up also gives the demo payment provider its
payment method line when it has none (what saving the provider's form does; see ``ensure_provider``).
Printed at the end: the commands the run made by kind and outcome, and the errors Odoo logged.

The database (``--db``, default ``prepaid_bench_recharge``) is created with the demo data on first use and
reused (``--rebuild`` to start again); when addons/ changed since it was built or last updated, the suite is
updated in it first (``--no-update`` to use it as it is). The simulator keeps its meters in
``.state/bench-recharge-<db>.json`` (so that indexes never go backwards from one run to the next). It prints,
it never asserts; exit status 0 unless the run itself broke (Odoo or the simulator did not start, the
accounts could not be cut, recharges failed).

    python3 bench/recharge.py                       # 50 recharges
    python3 bench/recharge.py --recharges 5         # a quick look
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
import time
from html.parser import HTMLParser
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from prepaid_engine.simulator.control import ControlError, control  # noqa: E402

MODULES = "prepaid_base,prepaid_metering,prepaid_billing,prepaid_portal,payment_demo"
SUITE_MODULES = "prepaid_base,prepaid_metering,prepaid_billing,prepaid_portal"
SUITE_MARKER = "prepaid_bench.suite"  # ir.config_parameter: digest of addons/ the database was updated to
EXECUTOR_CRON = "prepaid_metering.ir_cron_execute_commands"
TARGET_P95 = 2.0  # seconds
BELOW_CUTOFF = 5  # a cut account's balance: the threshold minus this
LOGIN_PREFIX = "bench_recharge_"
STATUS_POLL_DELAYS = (0, 3, 3, 3, 3, 3, 3, 3, 3, 10)  # payment/static/src/js/post_processing.js


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", default="prepaid_bench_recharge")
    parser.add_argument("--recharges", type=int, default=50, help="recharges of cut-off accounts")
    parser.add_argument("--amount", default="50", help="the amount of each recharge (a preset of the form)")
    parser.add_argument("--rebuild", action="store_true", help="drop and create the database again first")
    parser.add_argument(
        "--no-update", action="store_true", help="use the database as it is, even if addons/ changed"
    )
    parser.add_argument("--port", type=int, default=8369, help="Odoo's HTTP port")
    parser.add_argument("--gevent-port", type=int, default=8372, help="Odoo's websocket (gevent) port")
    parser.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers")
    parser.add_argument(
        "--cron-threads", type=int, default=2, help="Odoo cron workers (the executor runs there)"
    )
    parser.add_argument("--sim-base-port", type=int, default=16381, help="first of the simulator's 3 ports")
    parser.add_argument("--control-port", type=int, default=16391, help="the simulator's control port")
    parser.add_argument("--speed", type=float, default=60, help="simulator speed (scripts/run.sh's default)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a recharge may take")
    parser.add_argument("--cut-timeout", type=float, default=300, help="seconds a round's trips may take")
    parser.add_argument("--password", default="bench-recharge", help="the tenants' password")
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds to wait for Odoo")
    parser.add_argument("--out", help="folder for the logs (default: a new folder in /tmp)")
    args = parser.parse_args(argv)
    if args.recharges < 1:
        parser.error("--recharges must be positive")
    return args


# ================================================================================================ helpers


def addons_path():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "odoo_paths.py")], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(out.stderr.strip() or "no Odoo 18 here (scripts/odoo_paths.py)")
    return out.stdout.strip()


def odoo_env():
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )


def load_average():
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def psql(db, sql):
    out = subprocess.run(["psql", "-X", "-d", db, "-Atc", sql], capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def database_exists(name):
    return psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


def port_busy(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def percentile(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def suite_digest():
    """A digest of addons/: a database last updated to another digest is updated first."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "addons").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_odoo_init(args, out: Path, name, extra):
    """``odoo_cli.py ... --stop-after-init`` (install or update); its output in ``out/<name>.log``."""
    log = out / f"{name}.log"
    with open(log, "w") as output:
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "odoo_cli.py"),
                f"--addons-path={addons_path()}",
                "-d",
                args.db,
                *extra,
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
        raise SystemExit(f"{name} failed: see {log}")


def state_file(args):
    return ROOT / ".state" / f"bench-recharge-{args.db}.json"


def prepare_database(args, out: Path):
    """Create the database with the demo data if it is missing (or --rebuild), else update the suite in it
    when addons/ changed since."""
    digest = suite_digest()
    if args.rebuild and database_exists(args.db):
        print(f"dropping {args.db}...", flush=True)
        subprocess.run(["dropdb", "--force", args.db], check=True)
    if not database_exists(args.db):
        state_file(args).unlink(missing_ok=True)  # a new database has read no meter yet
        print(f"creating {args.db} with {MODULES} and the demo data...", flush=True)
        t0 = time.perf_counter()
        run_odoo_init(args, out, "install", ["-i", MODULES])
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    elif (
        not args.no_update
        and psql(args.db, f"SELECT value FROM ir_config_parameter WHERE key = '{SUITE_MARKER}'") != digest
    ):
        print(
            f"updating the suite in {args.db} (addons/ changed since it was built or last updated)...",
            flush=True,
        )
        t0 = time.perf_counter()
        run_odoo_init(args, out, "update", ["-u", SUITE_MODULES])
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    return digest


# ================================================================================================ processes


class Simulator:
    """The demo site (``python3 -m prepaid_engine.simulator``) on renumbered ports, in its own process."""

    def __init__(self, args, out: Path):
        self.args, self.out = args, out
        self.proc = None
        self.site = None

    def start(self):
        ports = [self.args.sim_base_port + i for i in range(3)] + [self.args.control_port]
        busy = [p for p in ports if port_busy(p)]
        if busy:
            raise SystemExit(f"ports {busy} are in use: choose others (--sim-base-port, --control-port)")
        state = state_file(self.args)
        state.parent.mkdir(exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "prepaid_engine.simulator",
            "--speed",
            str(self.args.speed),
            "--state",
            str(state),
            "--control",
            str(self.args.control_port),
            "--base-port",
            str(self.args.sim_base_port),
            "--compact",
        ]
        self.log = self.out / "simulator.log"
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=odoo_env(),
            stdout=subprocess.PIPE,
            stderr=open(self.log, "w"),  # noqa: SIM115 (the simulator's lifetime)
            text=True,
            start_new_session=True,
        )
        site_json = self.proc.stdout.readline()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the simulator stopped while starting: see {self.log}")
            if "simulator ready" in self.log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"the simulator did not start: see {self.log}")
        self.site = json.loads(site_json)
        return self

    def ports(self):
        """``{(gateway key, bus key): port}`` of the site."""
        return {(g["key"], b["key"]): b["port"] for g in self.site["gateways"] for b in g["buses"]}

    def check_alive(self):
        """Stop the run if the simulator is gone (someone ended it: its meters answer nothing any more)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise SystemExit(
                f"the simulator stopped during the run (exit {self.proc.returncode}; a signal from another "
                f"process?): see {self.log}"
            )

    def relay_open(self, address):
        self.check_alive()
        return control("127.0.0.1", self.args.control_port, "meter", address=address)["relay_open"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # it saves its meters
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class OdooServer:
    """Odoo as the product runs it, with prefork HTTP workers and cron workers, in its own process group."""

    def __init__(self, args, logfile: Path):
        self.args, self.logfile = args, logfile
        self.url = f"http://127.0.0.1:{args.port}"
        self.proc = None

    def start(self):
        busy = [p for p in (self.args.port, self.args.gevent_port) if port_busy(p)]
        if busy:
            raise SystemExit(f"ports {busy} are in use: choose others (--port, --gevent-port)")
        command = [
            sys.executable,
            str(ROOT / "scripts" / "odoo_cli.py"),
            "-c",
            str(ROOT / "odoo.conf"),
            f"--addons-path={addons_path()}",
            "-d",
            self.args.db,
            f"--db-filter=^{self.args.db}$",
            f"--http-port={self.args.port}",
            f"--gevent-port={self.args.gevent_port}",
            f"--workers={self.args.workers}",
            f"--max-cron-threads={self.args.cron_threads}",
            f"--logfile={self.logfile}",
            "--log-level=info",
            "--log-handler=py.warnings:ERROR",
            "--limit-time-real=600",
            "--limit-time-real-cron=900",
        ]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=odoo_env(),
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
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None

    def errors(self):
        """The ERROR / CRITICAL lines of Odoo's log (with the exception that follows each)."""
        if not self.logfile.exists():
            return []
        lines = self.logfile.read_text(errors="replace").splitlines()
        found = []
        for i, line in enumerate(lines):
            if " ERROR " in line or " CRITICAL " in line:
                what = next(
                    (
                        follow.strip()
                        for follow in lines[i + 1 : i + 200]
                        if follow
                        and not follow.startswith((" ", "Traceback", "The above"))
                        and not re.match(r"^\d{4}-\d\d-\d\d ", follow)
                    ),
                    "",
                )
                found.append(
                    line.split(" ERROR " if " ERROR " in line else " CRITICAL ", 1)[1].strip()
                    + (f" -> {what}" if what else "")
                )
        return found


# ============================================================================================ in-process Odoo


class Backend:
    """The bench's own access to the database (set-up only, nothing timed): an Odoo registry in this process
    for what only the suite's Python API does (posting ledger lines, the tenants' users), plain SQL reads for
    the states it waits on."""

    def __init__(self, args):
        import odoo
        from odoo.tools import config

        config.parse_config(
            [
                f"--addons-path={addons_path()}",
                "-d",
                args.db,
                "--log-level=warn",
                "--log-handler=py.warnings:ERROR",
                "--max-cron-threads=0",
            ]
        )
        self.args = args
        self.registry = odoo.modules.registry.Registry(args.db)

    def env(self, cr):
        from odoo import SUPERUSER_ID, api

        return api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})

    def set_bus_ports(self, ports):
        """Point the demo gateways' buses at this run's simulator ports."""
        with self.registry.cursor() as cr:
            env = self.env(cr)
            for bus in env["prepaid.gateway.bus"].search([]):
                port = ports.get((bus.gateway_id.code, bus.name))
                if port and bus.port != port:
                    bus.write({"port": port})

    def ensure_provider(self):
        """The demo payment provider with its one payment method line on a bank journal: what saving the
        provider's form does (``journal_id`` is a computed field whose inverse makes the line). The demo data
        enables the provider with a plain write, which makes none; the first payments' post-processings then
        each make one when they run at once, and every payment after fails ("Expected singleton:
        account.payment.method.line"). Returns a note of what had to be done, or None."""
        with self.registry.cursor() as cr:
            env = self.env(cr)
            provider = env.ref("payment.payment_provider_demo")
            if provider.state not in ("enabled", "test"):
                raise SystemExit("the demo payment provider is not enabled in the database: --rebuild")
            Line = env["account.payment.method.line"]
            lines = Line.search([("payment_provider_id", "=", provider.id)], order="id")
            if len(lines) > 1:
                cr.execute(
                    """SELECT DISTINCT payment_method_line_id FROM account_payment
                        WHERE payment_method_line_id = ANY(%s)""",
                    (lines.ids,),
                )
                used = {row[0] for row in cr.fetchall()}
                keep = lines.filtered(lambda line: line.id in used)[:1] or lines[:1]
                (lines - keep).filtered(lambda line: line.id not in used).unlink()
                left = Line.search_count([("payment_provider_id", "=", provider.id)])
                return (
                    f"the demo provider had {len(lines)} payment method lines (made at once by concurrent "
                    f"post-processings); {left} left"
                )
            if not lines:
                journal = env["account.journal"].search(
                    [("company_id", "=", provider.company_id.id), ("type", "=", "bank")], order="id", limit=1
                )
                provider.journal_id = journal
                return f"the demo provider had no payment method line: journal {journal.name} set (line made)"
            return None

    def accounts(self):
        """The demo accounts the bench recharges: open, not keeping power (never cut), with a platform-billed
        electricity meter on a bus; ``[{id, number, code, meter_id, meter_name, address, threshold}]``."""
        with self.registry.cursor() as cr:
            env = self.env(cr)
            rows = []
            domain = [("state", "=", "open"), ("keep_power", "=", False)]
            for account in env["prepaid.account"].search(domain, order="id"):
                meters = account.meter_ids.filtered(
                    lambda m: (
                        m.active and m.utility == "electricity" and m.billing_mode == "platform" and m.bus_id
                    )
                )
                if not meters:
                    continue
                if not account.portal_code:
                    account.action_generate_portal_code()
                rows.append(
                    {
                        "id": account.id,
                        "number": account.name,
                        "code": account.portal_code,
                        "meter_id": meters[0].id,
                        "meter_name": meters[0].name,
                        "address": meters[0].address,
                        "threshold": account._get_cutoff_threshold(),
                    }
                )
            return rows

    def tenant_users(self, accounts, password):
        """One portal user per account (created once, with one password hash): ``{account id: login}``."""
        from odoo import Command

        with self.registry.cursor() as cr:
            env = self.env(cr)
            env = env(context=dict(env.context, no_reset_password=True))
            Users = env["res.users"]
            logins = {a["id"]: f"{LOGIN_PREFIX}{a['number'].replace('/', '_').lower()}" for a in accounts}
            existing = set(Users.search([("login", "in", list(logins.values()))]).mapped("login"))
            portal = env.ref("base.group_portal")
            company = env.ref("base.main_company")
            new = Users.create(
                [
                    {
                        "name": f"Bench tenant {a['number']}",
                        "login": logins[a["id"]],
                        "groups_id": [Command.set(portal.ids)],
                        "company_id": company.id,
                        "company_ids": [Command.set(company.ids)],
                    }
                    for a in accounts
                    if logins[a["id"]] not in existing
                ]
            )
            if new:
                env.flush_all()
                digest = Users._crypt_context().hash(password)
                cr.execute("UPDATE res_users SET password = %s WHERE id = ANY(%s)", (digest, new.ids))
            return logins

    def bound(self, account_id, login):
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT 1 FROM prepaid_portal_binding b JOIN res_users u ON u.id = b.user_id
                    WHERE b.account_id = %s AND u.login = %s AND b.state = 'active'""",
                (account_id, login),
            )
            return bool(cr.fetchone())

    def cut(self, accounts, tag):
        """Leave each account's balance BELOW_CUTOFF under its cut-off threshold with one 'adjustment'
        (the supervision queues the trips); then wake the command executor. Returns the lines posted."""
        from decimal import Decimal

        with self.registry.cursor() as cr:
            env = self.env(cr)
            Account = env["prepaid.account"]
            vals = []
            for row in accounts:
                account = Account.browse(row["id"])
                target = Decimal(str(account._get_cutoff_threshold())) - BELOW_CUTOFF
                amount = target - Decimal(str(account.balance))
                if amount < 0:
                    vals.append(
                        {
                            "account_id": account.id,
                            "kind": "adjustment",
                            "amount": amount,
                            "idempotency_key": f"bench:recharge:cut:{tag}:{account.id}",
                            "description": "Recharge bench: down to the cut-off",
                        }
                    )
            lines = Account._post_ledger(vals, count_only=True) if vals else 0
            env.ref(EXECUTOR_CRON)._trigger()
            return lines

    def states(self, account_ids):
        """``{account id: (supply_cut, balance, meter supply)}`` of the accounts' electricity meters."""
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT a.id, COALESCE(a.supply_cut, FALSE), a.balance, m.supply
                     FROM prepaid_account a
                     JOIN prepaid_meter m ON m.account_id = a.id AND m.utility = 'electricity'
                                         AND m.billing_mode = 'platform' AND m.bus_id IS NOT NULL
                    WHERE a.id = ANY(%s)""",
                (list(account_ids),),
            )
            return {row[0]: row[1:] for row in cr.fetchall()}

    def overdue_crons(self):
        """The names of the active cron jobs due for over 5 seconds (running, or waiting for a worker)."""
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT cron_name FROM ir_cron
                    WHERE active AND nextcall < (now() AT TIME ZONE 'UTC') - interval '5 seconds'"""
            )
            return [row[0] for row in cr.fetchall()]

    def trigger_executor(self):
        with self.registry.cursor() as cr:
            self.env(cr).ref(EXECUTOR_CRON)._trigger()

    def commands(self, since_id):
        """``{(kind, state, outcome): count}`` of the commands created after ``since_id``."""
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT kind, state, COALESCE(outcome, ''), COUNT(*) FROM prepaid_meter_command
                    WHERE id > %s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
                (since_id,),
            )
            return {row[:3]: row[3] for row in cr.fetchall()}

    def last_command_id(self):
        with self.registry.cursor() as cr:
            cr.execute("SELECT COALESCE(MAX(id), 0) FROM prepaid_meter_command")
            return cr.fetchone()[0]

    def set_digest(self, digest):
        with self.registry.cursor() as cr:
            self.env(cr)["ir.config_parameter"].set_param(SUITE_MARKER, digest)

    def close(self):
        import odoo

        odoo.modules.registry.Registry.delete(self.args.db)
        odoo.sql_db.close_all()


# ================================================================================================ the tenant


class FormParser(HTMLParser):
    """The payment form's data attributes and the demo provider's radio button, as the JS reads them."""

    def __init__(self):
        super().__init__()
        self.form = None
        self.radios = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "o_payment_form":
            self.form = attrs
        elif tag == "input" and attrs.get("name") == "o_payment_radio":
            self.radios.append(attrs)


class Tenant:
    """A tenant in a browser: logged in, recharging their account as the pages' JS does."""

    CSRF_INPUT = re.compile(r'name="csrf_token"\s+value="([^"]+)"')
    CSRF_JS = re.compile(r'csrf_token\s*:\s*"([^"]+)"')

    def __init__(self, url, login, password, account):
        self.url, self.login_name, self.password, self.account = url, login, password, account
        self.http = requests.Session()
        self.ids = itertools.count(1)

    def _csrf(self, text):
        found = self.CSRF_INPUT.search(text)
        if not found:
            raise RuntimeError("no CSRF token on the page")
        return found[1]

    def rpc(self, path, params):
        body = {"jsonrpc": "2.0", "method": "call", "id": next(self.ids), "params": params}
        answer = self.http.post(self.url + path, json=body, timeout=120)
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code} on {path}")
        data = answer.json()
        if "error" in data:
            error = data["error"].get("data") or {}
            raise RuntimeError(
                f"{path}: {error.get('name', '')}: {error.get('message') or data['error'].get('message')}"
            )
        return data.get("result")  # Odoo leaves out a None result

    def login(self):
        form = self.http.get(self.url + "/web/login", timeout=60)
        answer = self.http.post(
            self.url + "/web/login",
            data={
                "login": self.login_name,
                "password": self.password,
                "csrf_token": self._csrf(form.text),
                "redirect": "",
            },
            allow_redirects=False,
            timeout=120,
        )
        if answer.status_code not in (302, 303):
            raise RuntimeError(f"{self.login_name} could not log in (HTTP {answer.status_code})")
        return self

    def bind(self):
        """Bind the account by its number and code, as the tenant does on /my/prepaid/bind."""
        page = self.http.get(self.url + "/my/prepaid/bind", timeout=60)
        answer = self.http.post(
            self.url + "/my/prepaid/bind",
            data={
                "account": self.account["number"],
                "code": self.account["code"],
                "csrf_token": self._csrf(page.text),
            },
            allow_redirects=False,
            timeout=60,
        )
        if answer.status_code not in (302, 303):
            raise RuntimeError(
                f"{self.login_name} could not bind {self.account['number']} (HTTP {answer.status_code})"
            )

    def status(self):
        return self.rpc(f"/my/prepaid/accounts/{self.account['id']}/status", {})

    def recharge(self, amount, simulator, timeout):
        """One recharge; returns the stage times in seconds from the click on Pay (see the docstring)."""
        account_id = self.account["id"]
        form = self.http.get(f"{self.url}/my/prepaid/accounts/{account_id}/recharge", timeout=60)
        if form.status_code != 200:
            raise RuntimeError(f"recharge page: HTTP {form.status_code}")
        pay = self.http.post(
            f"{self.url}/my/prepaid/accounts/{account_id}/recharge",
            data={"amount": amount, "csrf_token": self._csrf(form.text)},
            timeout=60,
        )
        if pay.status_code != 200 or "/pay" not in pay.url:
            raise RuntimeError(f"recharge form: HTTP {pay.status_code} at {pay.url}")
        parser = FormParser()
        parser.feed(pay.text)
        demo = [r for r in parser.radios if r.get("data-provider-code") == "demo"]
        if not parser.form or not demo:
            raise RuntimeError("the pay page has no payment form with the demo provider")
        form_data, radio = parser.form, demo[0]
        csrf = self.CSRF_JS.search(pay.text)
        params = {
            "provider_id": int(radio["data-provider-id"]),
            "payment_method_id": int(radio["data-payment-option-id"]),
            "token_id": None,
            "amount": float(form_data["data-amount"]) if form_data.get("data-amount") else None,
            "flow": "direct",  # payment_demo's _prepareInlineForm
            "tokenization_requested": False,
            "landing_route": form_data.get("data-landing-route"),
            "is_validation": form_data.get("data-mode") == "validation",
            "csrf_token": csrf[1] if csrf else None,
        }
        if form_data.get("data-access-token"):
            params["access_token"] = form_data["data-access-token"]
        stages = {}
        t0 = time.perf_counter()  # the click on Pay
        processing = self.rpc(form_data["data-transaction-route"], params)
        stages["transaction"] = time.perf_counter() - t0
        self.rpc(
            "/payment/demo/simulate_payment",
            {"reference": processing["reference"], "payment_details": "4242", "simulated_state": "done"},
        )
        stages["simulated"] = time.perf_counter() - t0
        self.http.get(self.url + "/payment/status", timeout=60)
        landing = None
        for delay in itertools.chain(STATUS_POLL_DELAYS, itertools.repeat(30)):
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError("the payment status never reached a final state")
            time.sleep(delay)
            try:
                polled = self.rpc("/payment/status/poll", {"csrf_token": params["csrf_token"]})
            except RuntimeError as exc:
                if "retry" in str(exc):
                    continue
                raise
            if polled["state"] in ("authorized", "done", "cancel", "error"):
                if polled["state"] != "done":
                    raise RuntimeError(f"the payment ended {polled['state']}")
                landing = polled["landing_route"]
                break
        stages["paid"] = time.perf_counter() - t0
        self.http.get(self.url + landing, timeout=60)
        stages["landing"] = time.perf_counter() - t0
        next_status = 0.0
        while "relay" not in stages or "platform" not in stages:
            now = time.perf_counter() - t0
            if now > timeout:
                missing = [k for k in ("relay", "platform") if k not in stages]
                raise RuntimeError(f"not seen within {timeout:.0f} s: {', '.join(missing)}")
            if "relay" not in stages and simulator.relay_open(self.account["address"]) is False:
                stages["relay"] = time.perf_counter() - t0
            if "platform" not in stages and now >= next_status:
                next_status = now + 0.5
                if self.status()["meters"].get(str(self.account["meter_id"])) == "on":
                    stages["platform"] = time.perf_counter() - t0
            time.sleep(0.05)
        return stages


# ================================================================================================ the run


def wait_crons_idle(backend, timeout):
    """Wait until the cron jobs that were due when Odoo started have run (at start every job is due at once
    and both cron workers are busy for a while): no job overdue. Returns the seconds waited."""
    t0 = time.perf_counter()
    while backend.overdue_crons() and time.perf_counter() - t0 < timeout:
        time.sleep(2)
    return time.perf_counter() - t0


def wait_cut(backend, simulator, accounts, timeout):
    """Wait until every account is held cut, its meter's relay open (the simulator) and the trip confirmed
    (the meter's supply 'off' in the platform); returns (seconds, the accounts that are not)."""
    t0 = time.perf_counter()
    pending = {a["id"]: a for a in accounts}
    last_trigger = t0
    while pending and time.perf_counter() - t0 < timeout:
        simulator.check_alive()
        states = backend.states(pending)
        for account_id, (cut, _balance, supply) in states.items():
            account = pending[account_id]
            if cut and supply == "off":
                try:
                    if simulator.relay_open(account["address"]):
                        del pending[account_id]
                except ControlError:
                    pass
        if pending and time.perf_counter() - last_trigger > 20:
            backend.trigger_executor()  # trips retried after a failure wait for the next executor run
            last_trigger = time.perf_counter()
        time.sleep(1)
    return time.perf_counter() - t0, list(pending.values())


def report(results, failures, args):
    print(f"recharges: {len(results)} measured, {len(failures)} failed")
    for what, error in failures[:10]:
        print(f"    failed: {what}: {error}")
    if not results:
        return
    relay = [r["relay"] for r in results]
    p95 = percentile(relay, 95)
    verdict = "met" if p95 <= TARGET_P95 else "NOT met"
    print(
        f"click on Pay -> relay closed (simulator): p50 {percentile(relay, 50):.2f} s, p95 {p95:.2f} s, "
        f"max {max(relay):.2f} s, mean {statistics.fmean(relay):.2f} s  "
        f"[target p95 <= {TARGET_P95:.0f} s: {verdict}]"
    )
    for key, label in (
        ("transaction", "transaction route answered"),
        ("paid", "payment confirmed (status poll: done, ledger credited)"),
        ("platform", "platform shows the supply on (status route)"),
    ):
        values = [r[key] for r in results]
        print(
            f"    {label}: p50 {percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s, "
            f"max {max(values):.2f} s"
        )
    after_paid = [r["relay"] - r["paid"] for r in results]
    print(
        f"    payment confirmed -> relay closed: p50 {percentile(after_paid, 50):.2f} s, "
        f"p95 {percentile(after_paid, 95):.2f} s, max {max(after_paid):.2f} s"
    )


def main(argv=None):
    args = parse_args(argv)
    try:
        import odoo  # noqa: F401
    except ImportError:
        print("Odoo 18 is not importable by this python3 (see scripts/odoo_paths.py)", file=sys.stderr)
        return 2
    out = Path(args.out or tempfile.mkdtemp(prefix="prepaid-bench-recharge."))
    out.mkdir(parents=True, exist_ok=True)
    digest = prepare_database(args, out)
    simulator = Simulator(args, out)
    server = OdooServer(args, out / "odoo.log")
    backend = None
    results, failures, commands = [], [], {}
    try:
        print(
            f"starting the meter simulator (demo site, speed {args.speed:g}, ports from "
            f"{args.sim_base_port}, "
            f"control {args.control_port})...",
            flush=True,
        )
        simulator.start()
        backend = Backend(args)
        if not args.no_update:
            backend.set_digest(digest)
        backend.set_bus_ports(simulator.ports())
        note = backend.ensure_provider()
        if note:
            print(f"set-up: {note}", flush=True)
        accounts = backend.accounts()
        if not accounts:
            raise SystemExit(
                f"{args.db} has no open account with a platform-billed electricity meter on a bus"
            )
        logins = backend.tenant_users(accounts, args.password)
        print(
            f"starting Odoo ({args.workers} workers, {args.cron_threads} cron workers) on port "
            f"{args.port}...",
            flush=True,
        )
        server.start()
        print(
            f"recharge bench: {args.recharges} recharges of {args.amount} on {len(accounts)} demo accounts; "
            f"machine: {load_average()}; logs in {out}",
            flush=True,
        )
        tenants = {}
        for account in accounts:
            tenant = Tenant(server.url, logins[account["id"]], args.password, account).login()
            if not backend.bound(account["id"], tenant.login_name):
                tenant.bind()
            tenants[account["id"]] = tenant
        waited = wait_crons_idle(backend, args.cut_timeout)
        print(f"the cron jobs due at start ran ({waited:.0f} s)", flush=True)
        first_command = backend.last_command_id()
        run_tag = time.strftime("%Y%m%d%H%M%S")
        rounds = math.ceil(args.recharges / len(accounts))
        left = args.recharges
        for number in range(1, rounds + 1):
            batch = accounts[: min(left, len(accounts))]
            lines = backend.cut(batch, f"{run_tag}:{number}")
            waited, not_cut = wait_cut(backend, simulator, batch, args.cut_timeout)
            print(
                f"round {number}/{rounds}: {len(batch)} accounts cut ({lines} adjustments) in {waited:.0f} s"
                + (f", {len(not_cut)} not cut: {[a['number'] for a in not_cut]}" if not_cut else ""),
                flush=True,
            )
            for account in batch:
                left -= 1
                if account in not_cut:
                    failures.append((account["number"], "not cut off within --cut-timeout"))
                    continue
                try:
                    stages = tenants[account["id"]].recharge(args.amount, simulator, args.timeout)
                except (RuntimeError, requests.RequestException, ControlError, KeyError, ValueError) as exc:
                    failures.append((account["number"], str(exc)))
                    continue
                results.append(stages)
                print(
                    f"    {account['number']}: relay closed {stages['relay']:.2f} s after Pay (paid "
                    f"{stages['paid']:.2f} s, platform {stages['platform']:.2f} s)",
                    flush=True,
                )
        commands = backend.commands(first_command)
    finally:
        server.stop()
        simulator.stop()
        if backend:
            backend.close()
    print(f"machine: {load_average()} after")
    print(
        "commands of the run: "
        + ", ".join(f"{k} {s}{' ' + o if o else ''}: {n}" for (k, s, o), n in commands.items())
    )
    errors = server.errors()
    if errors:
        print(f"Odoo logged {len(errors)} errors; the first: {errors[0]}")
    report(results, failures, args)
    return 1 if failures or not results else 0


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
