"""Settlement benchmark: readings ingested and settled in Odoo, per second, for a fleet of 100,000 meters.

Needs Odoo 18 importable by ``python3`` (or ``--odoo-path``) and a local PostgreSQL the current user can
create databases in. The database (``--db``, default ``prepaid_bench``) is created with the suite
(``prepaid_billing`` and what it depends on, no demo data) when it does not exist, and reused afterwards.

Set-up (not timed, once per database and fleet size): a building with a flat electricity tariff, ``--meters``
units, each with an open prepaid account (1,000.00 opening balance) and one electricity meter; then a baseline
reading per meter, ingested and settled (it only moves the settlement cursors: a first reading charges
nothing).

Measured, each run at a new quarter-hour after the last one:

1. **Set-based (the product's path)**: one new reading per meter, as engine ``Reading`` values, handed to
   ``prepaid.meter.reading._ingest`` in chunks of ``--chunk`` (one transaction each, committed, as the poll
   cron does per batch of gateways). ``_ingest`` bulk-inserts the readings and calls ``_after_ingest``, which
   settles them: engine ``consumption`` + ``rate_cycle``, one ledger deduction per meter, balances and
   cursors updated in bulk. Then the same with ``--workers`` processes at once, each on its own share of the
   meters (sharded poll crons on one machine). Target >= 10,000 readings/s.
2. **Naive per-record ORM loop** on a sample (``--sample``, default 1,000 other readings of the same fleet):
   per reading an ORM ``create`` of the reading (automatic settlement off), an ORM read of its cursor, the
   same engine calls, ``prepaid.account._post_ledger`` for its deduction and an ORM ``write`` of its cursor.
   Scaled to the fleet; target: the set-based path is >= 5 x faster.
3. **Raw PostgreSQL COPY** of the same rows (meter, time, index, source, company, utility, building) into a
   temporary copy of the readings table: the floor no Odoo code can beat (insert only, no settlement).

It prints, it never asserts. Exit status 0 unless the run itself broke.

    python3 bench/settlement.py                          # 100,000 meters (first run builds the fleet)
    python3 bench/settlement.py --meters 10000 --sample 300 --db prepaid_bench_small
    python3 bench/settlement.py --drop                   # start again from an empty database
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from prepaid_engine.types import Reading  # noqa: E402

TAG = "BENCH"
T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)
TARGET_RATE = 10_000
TARGET_RATIO = 5.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="prepaid_bench")
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000, help="readings per _ingest call (transaction)")
    parser.add_argument("--sample", type=int, default=1_000, help="readings of the naive ORM loop")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel processes for the second set-based run (sharded crons on one machine); 1: skip it",
    )
    parser.add_argument("--odoo-path", default=os.environ.get("ODOO_PATH", ""), help="Odoo 18 source tree")
    parser.add_argument("--addons-path", default="", help="extra addons paths (the suite's is added)")
    parser.add_argument("--drop", action="store_true", help="drop and recreate the database first")
    parser.add_argument(
        "--breakdown",
        type=int,
        default=20_000,
        help="meters of the stage breakdown (ingest alone, settle alone)",
    )
    return parser.parse_args(argv)


def odoo_bin(args):
    import odoo

    return str(Path(odoo.__file__).resolve().parent.parent / "odoo-bin")


def addons_path(args):
    import odoo

    paths = [str(Path(odoo.__file__).resolve().parent / "addons"), str(ROOT / "addons")]
    if args.addons_path:
        paths.insert(1, args.addons_path)
    return ",".join(paths)


def load_average():
    """The machine's 1, 5 and 15 minute load averages: other work running beside the bench skews it."""
    return "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def database_exists(name):
    out = subprocess.run(
        ["psql", "-d", "postgres", "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() == "1"


def vacuum(args):
    """What autovacuum does between poll cycles in a running system: reclaim the previous run's dead rows and
    refresh the planner statistics of the tables the settlement touches (not timed)."""
    tables = (
        "prepaid_account, prepaid_meter, prepaid_meter_reading, prepaid_ledger, prepaid_settlement_cursor"
    )
    subprocess.run(["psql", "-q", "-d", args.db, "-c", f"VACUUM (ANALYZE) {tables}"], check=True)


def create_database(args):
    print(f"creating database {args.db} with prepaid_billing (no demo data)...", flush=True)
    started = time.perf_counter()
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    subprocess.run(
        [
            sys.executable,
            odoo_bin(args),
            f"--addons-path={addons_path(args)}",
            "-d",
            args.db,
            "-i",
            "prepaid_billing",
            "--without-demo=all",
            "--stop-after-init",
            "--log-level=warn",
            "--http-port=18999",
        ],
        check=True,
        env=env,
    )
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)


def open_registry(args):
    import odoo
    from odoo.tools import config

    config.parse_config([f"--addons-path={addons_path(args)}", "-d", args.db, "--log-level=warn"])
    return odoo.modules.registry.Registry(args.db)


def bench_registry(args):
    """The bench's database, ready: Odoo importable (``--odoo-path`` first), dropped first with ``--drop``,
    created with prepaid_billing when missing; its registry, or None (said on stderr) without Odoo."""
    if getattr(args, "odoo_path", None) and args.odoo_path not in sys.path:
        sys.path.insert(0, args.odoo_path)
    try:
        import odoo  # noqa: F401
    except ImportError:
        print("Odoo 18 is not importable: set --odoo-path or ODOO_PATH", file=sys.stderr)
        return None
    if args.drop and database_exists(args.db):
        subprocess.run(["dropdb", args.db], check=True)
    if not database_exists(args.db):
        create_database(args)
    return open_registry(args)


def environment(cr):
    from odoo import SUPERUSER_ID, api

    return api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})


# -- fleet ------------------------------------------------------------------------------------------------


def fleet(env):
    """``[(meter id, company id, building id)]`` of the bench fleet, in id order (empty if not built)."""
    env.cr.execute(
        "SELECT m.id, m.company_id, m.building_id FROM prepaid_meter m WHERE m.name LIKE %s ORDER BY m.id",
        (f"{TAG}-M-%",),
    )
    return env.cr.fetchall()


def build_fleet(registry, count):
    """The building, tariff, units, accounts and meters of the bench, inserted with SQL (set-up is not what
    is measured), then the ORM caches and stored computations are brought in line."""
    print(f"building a fleet of {count} meters...", flush=True)
    started = time.perf_counter()
    with registry.cursor() as cr:
        env = environment(cr)
        company = env.ref("base.main_company")
        company.partner_id.tz = "Asia/Shanghai"
        tariff = env["prepaid.tariff"].create(
            {
                "name": "Bench flat",
                "code": f"{TAG}-FLAT",
                "utility": "electricity",
                "kind": "flat",
                "price": 0.617,
            }
        )
        Property = env["prepaid.property"]
        building = Property.create(
            {
                "name": f"{TAG} building",
                "code": f"{TAG}-B",
                "kind": "building",
                "tz": "Asia/Shanghai",
                "electricity_tariff_id": tariff.id,
            }
        )
        floor = Property.create(
            {"name": "F1", "code": f"{TAG}-F1", "kind": "floor", "parent_id": building.id}
        )
        partners = env["res.partner"].create([{"name": f"{TAG} tenant {i}"} for i in range(1000)])
        env.flush_all()
        model = env.ref("prepaid_metering.meter_model_acrel_ddsy1352")
        params = {
            "n": count,
            "company": company.id,
            "currency": company.currency_id.id,
            "floor": floor.id,
            "floor_path": floor.parent_path,
            "floor_name": floor.complete_name,
            "building": building.id,
            "site": building.site_id.id or None,
            "partners": partners.ids,
            "model": model.id,
            "tag": TAG,
        }
        cr.execute(
            """
            CREATE TEMP TABLE bench_fleet AS
            SELECT g AS n,
                   nextval('prepaid_property_id_seq') AS unit_id,
                   nextval('prepaid_account_id_seq') AS account_id,
                   nextval('prepaid_meter_id_seq') AS meter_id
              FROM generate_series(1, %(n)s) AS g;

            INSERT INTO prepaid_property (id, name, code, complete_name, kind, parent_id, parent_path,
                                          company_id,
                                          active, unit_type, effective_tz, site_id, building_id, floor_id,
                                          reading_interval, settlement_cycle, settlement_day, settlement_time,
                                          create_uid, create_date, write_uid, write_date)
            SELECT unit_id, %(tag)s || '-' || n, %(tag)s || '-U' || n,
                   %(floor_name)s || ' / ' || %(tag)s || '-' || n,
                   'unit', %(floor)s, %(floor_path)s || unit_id || '/', %(company)s, TRUE, 'room',
                   'Asia/Shanghai', %(site)s, %(building)s, %(floor)s, 15, 'monthly', 1, 0, 1, now(), 1, now()
              FROM bench_fleet;

            INSERT INTO prepaid_account (id, name, partner_id, company_id, currency_id, period, state, level,
                                         balance, warn_level_1, warn_level_2, warn_level_3, cutoff_level,
                                         overdraft_limit, keep_power, alert_level,
                                         create_uid, create_date, write_uid, write_date)
            SELECT account_id, %(tag)s || '-A' || lpad(n::text, 7, '0'),
                   (%(partners)s::int[])[1 + (n - 1) %% 1000], %(company)s, %(currency)s, 1, 'open', 'normal',
                   1000.00, 50, 20, 10, 0, 0, FALSE, 'normal', 1, now(), 1, now()
              FROM bench_fleet;

            INSERT INTO prepaid_account_unit_rel (account_id, unit_id)
            SELECT account_id, unit_id FROM bench_fleet;

            INSERT INTO prepaid_ledger (account_id, partner_id, company_id, currency_id, date, kind, amount,
                                        balance_after, idempotency_key, period, description,
                                        create_uid, create_date)
            SELECT a.id, a.partner_id, a.company_id, a.currency_id, now(), 'opening', 1000.00, 1000.00,
                   %(tag)s || ':opening:' || a.id, 1, 'Bench opening balance', 1, now()
              FROM bench_fleet f JOIN prepaid_account a ON a.id = f.account_id;

            INSERT INTO prepaid_meter (id, name, model_id, unit_id, building_id, account_id, company_id,
                                       utility,
                                       protocol, billing_mode, ct_ratio, active, online, temporary_supply,
                                       create_uid, create_date, write_uid, write_date)
            SELECT meter_id, %(tag)s || '-M-' || lpad(n::text, 7, '0'), %(model)s, unit_id, %(building)s,
                   account_id, %(company)s, 'electricity', 'modbus', 'platform', 1, TRUE, TRUE, 'none',
                   1, now(), 1, now()
              FROM bench_fleet;
            """,
            params,
        )
        env.invalidate_all()
    print(f"  inserted in {time.perf_counter() - started:.1f} s", flush=True)


def monotonic_readings(meters, step_index, previous):
    """Readings at ``step_index`` whose index is the previous one plus 0.05-0.60 kWh (seeded per step)."""
    rng = random.Random(step_index)
    at = T0 + STEP * step_index
    out = []
    for meter_id, _company, _building in meters:
        total = previous.get(meter_id, Decimal(1000)) + Decimal(rng.randint(5, 60)) / 100
        previous[meter_id] = total
        out.append(Reading(str(meter_id), at, total=total, power=Decimal("1.2"), voltage=Decimal("220.1")))
    return out


def last_totals(env, meters):
    env.cr.execute(
        """SELECT m.id, m.last_total::text, m.last_reading_at FROM prepaid_meter m
            WHERE m.id = ANY(%s)""",
        ([m[0] for m in meters],),
    )
    rows = env.cr.fetchall()
    totals = {meter_id: Decimal(total) for meter_id, total, _at in rows if total is not None}
    last_at = max((at for _id, _total, at in rows if at is not None), default=None)
    return totals, last_at


def next_step(last_at):
    if last_at is None:
        return 0
    return int((last_at.replace(tzinfo=UTC) - T0) / STEP) + 1


# -- measurements ----------------------------------------------------------------------------------------


def ingest_in_chunks(registry, readings, chunk):
    """``_ingest`` per chunk, one committed transaction each; returns (seconds, inserted, ledger lines)."""
    from odoo.tools import SQL

    with registry.cursor() as cr:
        cr.execute("SELECT COALESCE(MAX(id), 0) FROM prepaid_ledger")
        before = cr.fetchone()[0]
    inserted = 0
    started = time.perf_counter()
    for start in range(0, len(readings), chunk):
        with registry.cursor() as cr:
            env = environment(cr)
            inserted += len(
                env["prepaid.meter.reading"]._ingest(readings[start : start + chunk], source="poll")
            )
    elapsed = time.perf_counter() - started
    with registry.cursor() as cr:
        cr.execute(SQL("SELECT COUNT(*) FROM prepaid_ledger WHERE id > %s AND kind = 'consumption'", before))
        lines = cr.fetchone()[0]
    return elapsed, inserted, lines


def ingest_in_parallel(registry, readings, chunk, workers):
    """Like :func:`ingest_in_chunks` with ``workers`` processes at once, each on its own contiguous share of
    the meters (as poll crons sharded by gateway run on one machine); returns (wall seconds, inserted)."""
    import multiprocessing

    import odoo

    size = -(-len(readings) // workers)
    shares = [readings[i : i + size] for i in range(0, len(readings), size)]
    odoo.sql_db.close_all()  # the workers open their own connections
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(shares) + 1)
    results = context.Queue()

    def work(share):
        barrier.wait()
        inserted = 0
        for start in range(0, len(share), chunk):
            with registry.cursor() as cr:
                env = environment(cr)
                inserted += len(
                    env["prepaid.meter.reading"]._ingest(share[start : start + chunk], source="poll")
                )
        results.put(inserted)

    processes = [context.Process(target=work, args=(share,)) for share in shares]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    inserted = sum(results.get() for _process in processes)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return elapsed, inserted


def breakdown(registry, readings, chunk):
    """The two stages of the set-based path apart, one process: ``_ingest`` with the settlement switched off,
    then ``prepaid.settlement._settle_meters`` on the same meters; returns (ingest s, settle s)."""
    ingest = settle = 0.0
    for start in range(0, len(readings), chunk):
        part = readings[start : start + chunk]
        with registry.cursor() as cr:
            env = environment(cr)
            started = time.perf_counter()
            env["prepaid.meter.reading"].with_context(prepaid_skip_settlement=True)._ingest(
                part, source="poll"
            )
            cr.commit()
            ingest += time.perf_counter() - started
            started = time.perf_counter()
            env["prepaid.settlement"]._settle_meters([int(reading.meter_key) for reading in part])
            cr.commit()
            settle += time.perf_counter() - started
    return ingest, settle


def naive_loop(registry, readings):
    """The per-record baseline: every step through the ORM, one reading at a time."""
    from prepaid_engine.rating import CycleState, Register, consumption, rate_cycle

    started = time.perf_counter()
    with registry.cursor() as cr:
        env = environment(cr)
        Reading_ = env["prepaid.meter.reading"].with_context(prepaid_skip_settlement=True)
        Cursor = env["prepaid.settlement.cursor"]
        Meter = env["prepaid.meter"]
        Account = env["prepaid.account"]
        for reading in readings:
            meter = Meter.browse(int(reading.meter_key))
            Reading_.create(
                [
                    {
                        "meter_id": meter.id,
                        "read_at": reading.read_at.replace(tzinfo=None),
                        "total": float(reading.total),
                        "power": float(reading.power),
                        "voltage": float(reading.voltage),
                        "source": "poll",
                    }
                ]
            )
            cursor = Cursor.search([("meter_id", "=", meter.id)])
            prev = Register(cursor.read_at.replace(tzinfo=UTC), Decimal(f"{cursor.total:.3f}"))
            curr = Register(reading.read_at, reading.total)
            interval = consumption(prev, curr)
            calendar = meter.building_id._prepaid_settlement_calendar()
            tariff = meter._get_effective_tariff()._prepare_engine_tariff(calendar.tz, Decimal("0.01"))
            state = (
                CycleState(
                    cursor.cycle_start.replace(tzinfo=UTC),
                    Decimal(f"{cursor.cycle_quantity:.3f}"),
                    exact_charge=Decimal(f"{cursor.cycle_exact:.6f}"),
                )
                if cursor.cycle_start
                else None
            )
            rated = rate_cycle(tariff, [interval], calendar, state)
            for item in rated:
                if item.charge:
                    Account._post_ledger(
                        [
                            {
                                "account_id": meter.account_id.id,
                                "kind": "consumption",
                                "amount": -float(item.charge),
                                "idempotency_key": f"naive:{meter.id}:{item.interval.start.isoformat()}",
                                "date": item.interval.end,
                                "utility": "electricity",
                                "res_model": "prepaid.meter",
                                "res_id": meter.id,
                            }
                        ]
                    )
            new_state = rated[-1].new_state if rated else state
            cursor.write(
                {
                    "read_at": reading.read_at.replace(tzinfo=None),
                    "total": float(reading.total),
                    "cycle_start": new_state.cycle_start.replace(tzinfo=None) if new_state else False,
                    "cycle_quantity": float(new_state.consumed_total) if new_state else 0.0,
                    "cycle_exact": float(new_state.exact_charge) if new_state else 0.0,
                    "attempted_at": reading.read_at.replace(tzinfo=None),
                }
            )
            env.flush_all()
    return time.perf_counter() - started


def copy_rows(registry, readings, meters):
    """COPY the same rows into a temporary twin of the readings table; returns seconds."""
    where = {meter_id: (company, building) for meter_id, company, building in meters}
    buffer = io.StringIO()
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    for reading in readings:
        company, building = where[int(reading.meter_key)]
        at = reading.read_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        buffer.write(
            f"{reading.meter_key}\t{at}\t{now}\tpoll\t{company}\telectricity\t{building}\t{reading.total}\t"
            f"{reading.power}\t{reading.voltage}\n"
        )
    with registry.cursor() as cr:
        cr.execute(
            "CREATE TEMP TABLE bench_copy (LIKE prepaid_meter_reading INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        buffer.seek(0)
        started = time.perf_counter()
        cr.copy_from(
            buffer,
            "bench_copy",
            columns=(
                "meter_id",
                "read_at",
                "ingested_at",
                "source",
                "company_id",
                "utility",
                "building_id",
                "total",
                "power",
                "voltage",
            ),
        )
        elapsed = time.perf_counter() - started
        cr.rollback()
    return elapsed


def main(argv=None):
    args = parse_args(argv)
    registry = bench_registry(args)
    if registry is None:
        return 2

    with registry.cursor() as cr:
        meters = fleet(environment(cr))
    if len(meters) < args.meters:
        if meters:
            print(
                f"the fleet of {args.db} has {len(meters)} meters, not {args.meters}: use --drop",
                file=sys.stderr,
            )
            return 2
        build_fleet(registry, args.meters)
        with registry.cursor() as cr:
            meters = fleet(environment(cr))
    meters = meters[: args.meters]
    sample = meters[: args.sample]

    with registry.cursor() as cr:
        previous, last_at = last_totals(environment(cr), meters)
    step = next_step(last_at)
    if step == 0:
        print("baseline: one reading per meter (settled: it only sets the cursors)...", flush=True)
        elapsed, inserted, _lines = ingest_in_chunks(
            registry, monotonic_readings(meters, 0, previous), args.chunk
        )
        print(f"  {inserted} readings in {elapsed:.1f} s", flush=True)
        step = 1

    print(f"settlement bench: {len(meters)} meters, database {args.db}, chunks of {args.chunk} readings")
    print(f"machine: {os.cpu_count()} CPUs, {load_average()} before the measurements")
    vacuum(args)
    readings = monotonic_readings(meters, step, previous)
    elapsed, inserted, lines = ingest_in_chunks(registry, readings, args.chunk)
    rate = inserted / elapsed if elapsed else float("inf")
    print(
        f"set-based ingest + settlement, 1 process: {inserted} readings in {elapsed:.2f} s = {rate:,.0f} "
        f"readings/s, {lines} ledger deductions"
    )
    best = rate
    if args.workers > 1:
        step += 1
        parallel = monotonic_readings(meters, step, previous)
        vacuum(args)
        elapsed, inserted = ingest_in_parallel(registry, parallel, args.chunk, args.workers)
        parallel_rate = inserted / elapsed if elapsed else float("inf")
        best = max(best, parallel_rate)
        print(
            f"set-based ingest + settlement, {args.workers} processes: {inserted} readings in "
            f"{elapsed:.2f} s = {parallel_rate:,.0f} readings/s"
        )
    verdict = "met" if best >= TARGET_RATE else "NOT met"
    print(f"best: {best:,.0f} readings/s  [target >= {TARGET_RATE:,}: {verdict}]")

    if args.breakdown:
        step += 1
        staged = monotonic_readings(meters[: args.breakdown], step, previous)
        vacuum(args)
        ingest, settle = breakdown(registry, staged, args.chunk)
        count = len(staged)
        print(
            f"stages, 1 process, {count} readings: _ingest alone {ingest:.2f} s "
            f"({ingest / count * 1e6:.0f} us/reading), settlement alone {settle:.2f} s "
            f"({settle / count * 1e6:.0f} us/reading)"
        )

    naive_readings = monotonic_readings(sample, step + 1, previous)
    vacuum(args)
    naive_elapsed = naive_loop(registry, naive_readings)
    naive_rate = len(naive_readings) / naive_elapsed
    scaled = len(meters) / naive_rate
    ratio = rate / naive_rate
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(
        f"naive per-record ORM loop: {len(naive_readings)} readings in {naive_elapsed:.2f} s = "
        f"{naive_rate:,.0f} readings/s; {len(meters)} would take {scaled:,.0f} s"
    )
    print(f"set-based (1 process) / naive: {ratio:.1f} x  [target >= {TARGET_RATIO:.0f} x: {verdict}]")

    copy_elapsed = copy_rows(registry, readings, meters)
    copy_rate = len(readings) / copy_elapsed
    print(
        f"raw PostgreSQL COPY of the same rows (insert only, no settlement): {len(readings)} rows in "
        f"{copy_elapsed:.2f} s = {copy_rate:,.0f} rows/s; set-based ingest + settlement runs at "
        f"{rate / copy_rate:.1%} of COPY speed ({copy_rate / rate:.1f} x slower)"
    )
    print(f"machine: {load_average()} after the measurements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
