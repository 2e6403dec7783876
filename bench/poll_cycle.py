"""Poll-cycle benchmark: how close the poller keeps a large site to the RS-485 floor, and its CPU per reading.

Phase 1 (cycle time): the simulator runs in its own process (``python -m prepaid_engine.simulator``) with a
generated site (default 100 gateways x 4 buses x 25 DL/T 645-2007 meters = 10,000 meters, 9600 baud, 60 ms
meter latency); the poller reads it once to warm up, then ``--cycles`` measured times. The floor is what the
wire itself needs: the busiest bus's meter count x one read's bus time, where one read's bus time is
(request bytes + reply bytes) x 11 bits / baud + latency, with the byte counts taken from a real exchange
with the simulator (FE preambles included). Target: cycle / floor <= 1.1.

Phase 2 (CPU): the same site against a zero-latency, instant-baud simulator; the poller process's CPU time
(``time.process_time``) over the measured cycles / readings. Target: <= 100 microseconds per reading.

Each meter is read with ONE block read per cycle unless ``--reads model``: the DL/T 645-2007 energy block
``0001FF00`` (total + 4 tariffs; model ``dlt645_2007_basic`` narrowed to that identifier). With
``--reads model`` every identifier of ``--model`` is read.

It prints, it never asserts; it exits 0 unless the run itself broke (simulator did not start, a cycle raised).

    python bench/poll_cycle.py                     # the issue's site, both phases
    python bench/poll_cycle.py --gateways 10 --cycles 1 --skip-cpu
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import os
import pstats
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from prepaid_engine.adapters import FrameStep, adapter_for  # noqa: E402
from prepaid_engine.catalog import builtin_models  # noqa: E402
from prepaid_engine.poller import Poller  # noqa: E402
from prepaid_engine.sitemap import load_site_map  # noqa: E402
from prepaid_engine.types import GatewaySpec, MeterModel, Protocol  # noqa: E402

BLOCK_DI = "0001FF00"
BITS_PER_BYTE = 11  # 8E1: start + 8 data + parity + stop


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=100)
    parser.add_argument("--buses", type=int, default=4, help="buses per gateway")
    parser.add_argument("--meters", type=int, default=25, help="meters per bus")
    parser.add_argument("--latency", type=float, default=60.0, help="meter latency, ms (phase 1)")
    parser.add_argument("--baud", default="9600", help="baud rate (phase 1), or 'instant'")
    parser.add_argument("--cycles", type=int, default=2, help="measured cycles per phase (after a warm-up)")
    parser.add_argument("--model", default="dlt645_2007_basic", help="meter model of the generated site")
    parser.add_argument(
        "--reads", choices=["block", "model"], default="block", help="one 0001FF00 block read, or the model's"
    )
    parser.add_argument("--timeout", type=float, default=1.0, help="per-request timeout, s")
    parser.add_argument("--skip-cycle", action="store_true", help="skip phase 1")
    parser.add_argument("--skip-cpu", action="store_true", help="skip phase 2")
    parser.add_argument(
        "--stagger",
        default="0",
        help="spread the buses' starts over this many seconds ('auto': one read's bus time in phase 1, 0 in "
        "phase 2; default 0: all buses start at once, as the poller does by default)",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile phase 2's measured cycles into FILE")
    return parser.parse_args(argv)


class Simulator:
    """``python -m prepaid_engine.simulator`` in its own process; the site map it prints."""

    def __init__(self, args, *, latency_ms: float, baud: str):
        self.cmd = [
            sys.executable,
            "-m",
            "prepaid_engine.simulator",
            "--gateways",
            str(args.gateways),
            "--buses",
            str(args.buses),
            "--meters",
            str(args.meters),
            "--model",
            args.model,
            "--latency",
            str(latency_ms),
            "--baud",
            str(baud),
            "--base-port",
            "0",
            "--seed",
            "1",
            "--compact",
        ]
        self.proc: subprocess.Popen | None = None
        self.stderr: list[str] = []

    def __enter__(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        site_json = self.proc.stdout.readline()
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.stderr.append(line.rstrip())
                if "simulator ready" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not site_json.strip() or not ready.wait(120) or self.proc.poll() is not None:
            self.__exit__()
            raise SystemExit(
                f"simulator did not start: {' '.join(self.cmd)}\n" + "\n".join(self.stderr[-20:])
            )
        self.site_map = load_site_map(site_json)
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def poller_models(args) -> dict[str, MeterModel]:
    models = builtin_models()
    if args.reads == "block":
        model = models[args.model]
        if BLOCK_DI not in model.reads:
            raise SystemExit(f"model {args.model} does not read {BLOCK_DI}; use --reads model")
        models[args.model] = dataclasses.replace(model, reads=(BLOCK_DI,))
    return models


def gateway_specs(site_map, args) -> list[GatewaySpec]:
    specs = site_map.gateway_specs(models=poller_models(args))
    return [dataclasses.replace(g, timeout=args.timeout) for g in specs]


async def wire_bytes(gateway: GatewaySpec) -> list[tuple[int, int]]:
    """(request bytes, reply bytes) of each read of the first meter, counted on the socket."""
    meter = gateway.buses[0].meters[0]
    plan = adapter_for(meter.model.protocol).read_plan(meter)
    counts = []
    reader, writer = await asyncio.open_connection(gateway.host, gateway.buses[0].port)
    try:
        for step in plan.steps:
            if not isinstance(step, FrameStep):
                raise SystemExit("the floor is computed for framed (DL/T 645 / CJ/T 188) meters only")
            deframer = step.deframer()
            writer.write(step.request)
            received = 0
            frame = None
            while frame is None:
                chunk = await asyncio.wait_for(reader.read(4096), 10)
                if not chunk:
                    raise SystemExit("the simulator closed the connection")
                received += len(chunk)
                deframer.feed(chunk)
                frame = deframer.next_frame()
            step.parse(frame)
            counts.append((len(step.request), received))
    finally:
        writer.close()
    return counts


def floor_seconds(
    gateways: list[GatewaySpec], counts, baud: int, latency_s: float
) -> tuple[float, float, int]:
    busiest = max(len(bus.meters) for g in gateways for bus in g.buses)
    per_read = sum((req + rep) * BITS_PER_BYTE / baud + latency_s for req, rep in counts)
    return busiest * per_read, per_read, busiest


def line(label: str, run: dict) -> str:
    return (
        f"{label:<9} {run['cycle']:.3f} s, {run['readings']} readings, {run['errors']} errors {run['kinds']}"
    )


def summarise(result, cycle_s: float) -> dict:
    kinds: dict[str, int] = {}
    for error in result.errors:
        kinds[str(error.kind)] = kinds.get(str(error.kind), 0) + 1
    return {"readings": len(result.readings), "errors": len(result.errors), "kinds": kinds, "cycle": cycle_s}


def decode_cache():
    """The DL/T 645 adapter's cache of decoded values (a pure function of the reply bytes)."""
    return adapter_for(Protocol.DLT645_2007)._memo


async def measure(
    gateways, cycles: int, profile: str | None = None, stagger: float = 0.0, cold: bool = False
):
    """Warm-up + ``cycles`` measured polls; ``cold`` empties the decode cache before each measured cycle, so
    every reply is decoded (the worst case: every meter's registers changed since the last cycle)."""
    poller = Poller(keep_links=True, stagger=stagger)  # an edge collector keeps its bus connections
    t0 = time.perf_counter()
    warm = await poller.poll(gateways)
    warm_s = time.perf_counter() - t0
    runs = []
    profiler = cProfile.Profile() if profile else None
    cache = decode_cache()
    misses0 = cache.misses
    cpu0 = time.process_time()
    for _ in range(cycles):
        if cold:
            cache.clear()
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        result = await poller.poll(gateways)
        elapsed = time.perf_counter() - t0
        if profiler:
            profiler.disable()
        runs.append(summarise(result, elapsed))
    cpu = time.process_time() - cpu0
    runs[-1]["decoded"] = cache.misses - misses0
    await poller.close()
    if profiler:
        profiler.dump_stats(profile)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return summarise(warm, warm_s), runs, cpu


def meters_and_buses(gateways) -> tuple[int, int]:
    buses = sum(len(g.buses) for g in gateways)
    return sum(len(b.meters) for g in gateways for b in g.buses), buses


def phase_cycle(args) -> None:
    instant = args.baud == "instant"
    baud = None if instant else int(args.baud)
    print(
        f"== phase 1: cycle time ({args.gateways} gateways x {args.buses} buses x {args.meters} meters, "
        f"{args.baud} baud, {args.latency:g} ms latency, reads: {args.reads})"
    )
    with Simulator(args, latency_ms=args.latency, baud=args.baud) as sim:
        gateways = gateway_specs(sim.site_map, args)
        counts = asyncio.run(wire_bytes(gateways[0]))
        per_read = 0.0 if instant else floor_seconds(gateways, counts, baud, args.latency / 1000)[1]
        stagger = per_read if args.stagger == "auto" else float(args.stagger)
        warm, runs, _cpu = asyncio.run(measure(gateways, args.cycles, stagger=stagger))
    meters, buses = meters_and_buses(gateways)
    print(f"meters:   {meters}")
    print(f"buses:    {buses}")
    print(f"stagger:  bus starts spread over {stagger * 1000:.1f} ms")
    print("per read: " + ", ".join(f"{req} request + {rep} reply bytes" for req, rep in counts))
    print(line("warm-up:", warm))
    for i, run in enumerate(runs, 1):
        print(line(f"cycle {i}:", run))
    if instant:
        print("floor:    0 (instant baud): no ratio")
        return
    floor, per_read, busiest = floor_seconds(gateways, counts, baud, args.latency / 1000)
    best = min(run["cycle"] for run in runs)
    print(
        f"floor:    {floor:.3f} s = {busiest} meters on the busiest bus x {per_read * 1000:.2f} ms per read"
    )
    print(f"measured: {best:.3f} s (best of {len(runs)})")
    print(f"ratio:    {best / floor:.3f} (target <= 1.1)")


def phase_cpu(args) -> None:
    print(
        f"== phase 2: CPU per reading ({args.gateways} x {args.buses} x {args.meters} meters, "
        "instant baud, zero latency)"
    )
    with Simulator(args, latency_ms=0, baud="instant") as sim:
        gateways = gateway_specs(sim.site_map, args)
        stagger = 0.0 if args.stagger == "auto" else float(args.stagger)
        for cold in (False, True):
            _warm, runs, cpu = asyncio.run(measure(gateways, args.cycles, args.profile, stagger, cold))
            readings = sum(run["readings"] for run in runs)
            decoded = runs[-1]["decoded"]
            label = "every reply decoded (cache emptied each cycle)" if cold else "as it runs"
            print(f"-- {label}: {decoded} of {readings} replies decoded (the others from the decode cache)")
            for i, run in enumerate(runs, 1):
                print(line(f"cycle {i}:", run))
            if readings:
                per = cpu / readings * 1e6
                print(
                    f"cpu:      {cpu:.3f} s / {readings} readings = {per:.1f} us per reading (target <= 100)"
                )
            else:
                print("cpu:      no readings")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"machine:  {load()}")
    if not args.skip_cycle:
        phase_cycle(args)
    if not args.skip_cpu:
        phase_cpu(args)
    print(f"machine:  {load()}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
