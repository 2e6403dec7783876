"""Batch-operation benchmark: a close batch over N simulated meters, until every result line settled.

The simulator runs in its own process (as in ``bench/poll_cycle.py``) with a generated Modbus site (Acrel
DDSY1352 meters, ``--gateways`` x ``--buses`` x meters per bus, 9600 baud, ``--latency`` ms); an Odoo
database with prepaid_billing (made as ``bench/settlement.py`` makes its own) gets gateway and meter records
pointing at it. One ``prepaid.batch.operation`` (kind close) over all of them is run (result lines and
commands made set-based) and the command executor is called until no line is queued or sent.

The floor is the wire's: the busiest bus's meter count x one close exchange's bus time, the latter measured
from a real close of one meter against the same simulator (an otherwise idle bus). Target: elapsed / floor
<= 1.1. It prints, it never asserts.

    python bench/batch.py --drop          # 10,000 meters (100 gateways x 4 buses x 25)
    python bench/batch.py --drop --meters 500    # a small check (a fresh database per run)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from poll_cycle import Simulator, load  # noqa: E402
from settlement import bench_registry, environment  # noqa: E402

from prepaid_engine.catalog import builtin_models  # noqa: E402
from prepaid_engine.poller import Poller  # noqa: E402
from prepaid_engine.types import CommandKind, MeterCommand  # noqa: E402

MODEL = "acrel_ddsy1352"
PER_BUS = 25


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="prepaid_bench_batch")
    parser.add_argument(
        "--meters", type=int, default=10_000, help="meters in all (25 per bus, 4 buses a gateway)"
    )
    parser.add_argument("--latency", type=float, default=60.0, help="meter latency, ms")
    parser.add_argument("--baud", default="9600")
    parser.add_argument("--addons-path", default="", help="extra addons paths (the suite's is added)")
    parser.add_argument("--odoo-path", default="")
    parser.add_argument("--drop", action="store_true", help="drop and recreate the database first")
    args = parser.parse_args(argv)
    buses = max(1, -(-args.meters // PER_BUS))
    args.buses = min(4, buses)
    args.gateways = -(-buses // args.buses)
    args.meters_per_bus = PER_BUS if args.meters >= PER_BUS else args.meters
    return args


def sim_args(args):
    return SimpleNamespace(
        gateways=args.gateways, buses=args.buses, meters=args.meters_per_bus, model=MODEL, timeout=2.0
    )


def one_close_seconds(site_map) -> float:
    """Bus time of one close, measured: a close of the first meter, alone on its bus."""
    gateways = site_map.gateway_specs(models=builtin_models())
    spec = gateways[0]
    meter = spec.buses[0].meters[0]
    bus = dataclasses.replace(spec.buses[0], meters=(meter,))
    spec_one = dataclasses.replace(spec, buses=(bus,))
    poller = Poller()
    command = MeterCommand(key="floor", meter_key=meter.key, kind=CommandKind.CLOSE, attempts=1)
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        poller.execute_sync([spec_one], [command])
        elapsed = time.perf_counter() - t0
        best = elapsed if best is None else min(best, elapsed)
    return best


def build(registry, site_map):
    with registry.cursor() as cr:
        env = environment(cr)
        company = env.ref("base.main_company")
        env["prepaid.gateway"].search([]).active = False
        building = env["prepaid.property"].create({"name": "Batch bench", "code": "BB", "kind": "building"})
        unit = env["prepaid.property"].create(
            {"name": "BB-1", "code": "BB-1", "kind": "unit", "parent_id": building.id}
        )
        model = env["prepaid.meter.model"].search([("code", "=", MODEL)], limit=1)
        meter_vals = []
        for site_gateway in site_map.gateways:
            gateway = env["prepaid.gateway"].create(
                {
                    "name": site_gateway.key,
                    "code": site_gateway.key,
                    "host": "127.0.0.1",
                    "transport": str(site_gateway.transport),
                    "property_id": building.id,
                    "timeout": 2.0,
                    "retries": 0,
                    "company_id": company.id,
                    "bus_ids": [(0, 0, {"name": b.key, "port": b.port}) for b in site_gateway.buses],
                }
            )
            for site_bus in site_gateway.buses:
                bus = gateway.bus_ids.filtered(lambda b, key=site_bus.key: b.name == key)
                for site_meter in site_bus.meters:
                    meter_vals.append(
                        {
                            "name": f"{site_gateway.key}/{site_bus.key}/{site_meter.address}",
                            "utility": model.utility,
                            "model_id": model.id,
                            "address": site_meter.address,
                            "bus_id": bus.id,
                            "unit_id": unit.id,
                        }
                    )
        env["prepaid.meter"].create(meter_vals)
        cr.commit()
        return building.id


def run_batch(registry, building_id):
    with registry.cursor() as cr:
        env = environment(cr)
        env.user.groups_id |= env.ref("prepaid_base.group_prepaid_manager")
        t0 = time.perf_counter()
        batch = env["prepaid.batch.operation"].create(
            {"kind": "close", "property_ids": [(6, 0, [building_id])]}
        )
        batch.action_run()
        cr.commit()
        lines = len(batch.line_ids)
        made = time.perf_counter() - t0
        while True:
            env["prepaid.meter.command"]._cron_execute(batch=lines)
            cr.commit()
            env.invalidate_all()
            if not batch.queued_count and not batch.sent_count:
                break
        elapsed = time.perf_counter() - t0
        return lines, made, elapsed, batch.done_count, batch.failed_count


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"machine:  {load()}")
    registry = bench_registry(args)
    if registry is None:
        return 2
    simulator = Simulator(sim_args(args), latency_ms=args.latency, baud=args.baud)
    simulator.cmd += ["--protocol", "modbus"]
    with simulator as sim:
        building_id = build(registry, sim.site_map)
        per_close = one_close_seconds(sim.site_map)
        busiest = max(len(b.meters) for g in sim.site_map.gateways for b in g.buses)
        floor = busiest * per_close
        lines, made, elapsed, done, failed = run_batch(registry, building_id)
    print(f"meters:   {lines} ({args.gateways} gateways x {args.buses} buses x {args.meters_per_bus})")
    print(f"lines+commands made in {made:.3f} s")
    print(f"settled:  {done} done, {failed} failed in {elapsed:.3f} s")
    print(
        f"floor:    {floor:.3f} s = {busiest} meters on the busiest bus x {per_close * 1000:.2f} ms per close"
    )
    print(f"ratio:    {elapsed / floor:.3f} (target <= 1.1)")
    print(f"machine:  {load()}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    sys.exit(main())
