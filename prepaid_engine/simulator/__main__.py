"""``python -m prepaid_engine.simulator`` (console script ``prepaid-simulator``): run a simulated site.

Starts every gateway port, prints the site map as one JSON document on stdout, then the line
``# simulator ready`` on stderr, and serves until SIGINT or SIGTERM, when it closes every port and exits 0.
With ``--state FILE`` the meters and the simulated clock go on from the state in FILE (:mod:`.state`) and are
saved there while it runs and when it stops; ``--control PORT`` serves the control ops (:mod:`.control`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ..types import Protocol, Transport
from .clock import from_ms
from .config import DEFAULT_MODEL, config_from_overrides, default_site, generate_site, load_config
from .control import ControlServer
from .faults import FaultRates
from .site import Site
from .state import StateError, StateFile, check_state, read_state

EPILOG = """\
Without --config or --gateways the demo site starts (the one the Odoo demo data points at):
  sim-tg-1 (transparent, 127.0.0.1): bus 1 port 16101 at 9600 baud, 24 DL/T 645-2007 prepaid meters
  000000001101..1108, 1201..1208, 1301..1308; bus 2 port 16102 at 2400 baud, 24 CJ/T 188 water meters
  00000000001101.. likewise; sim-mb-1 (Modbus-TCP): bus 1 port 16201, Acrel DDSY1352 unit ids 1 and 2.

Generated sites (--gateways N): bus b of gateway g (0-based) listens on base-port + g x buses + b; DL/T 645
addresses are GGGGGBBMMMMM, CJ/T 188 GGGGGGBBMMMMMM, Modbus unit ids 1..N.

Timing: each reply is written (request bytes + reply bytes) x 11 bits / baud + latency after the request,
one request at a time per bus. --baud instant (or --instant) makes byte times zero.

Faults are per request, drawn from a seeded RNG per bus: timeouts (no reply), garbled replies, bad
checksums, wrong-address replies, disconnects; --dead-meters is the fraction of meters that never answer.
The meter always executes the request first (a lost reply to a trip still trips).

State (--state FILE): at start the meters' truth (registers, relay, valve, keep power, meter-side balance,
prices, thresholds, purchase count, timers, the dead flag set at run time) and the simulated time are read
from FILE when it exists; the clock goes on from the saved simulated time at this run's --speed, so indexes
never go backwards. Meters the file lacks start fresh, meters the configuration lacks are ignored (one note
on stderr). The state wins over the configuration's starting total, balance and dead flag of the meters it
holds; gateways killed at run time stay killed. FILE is written atomically every --state-every seconds and
when the simulator stops. A FILE of another site name or seed, another version, or not readable as a state
is refused (exit 2, FILE untouched); --fresh ignores it and starts fresh meters (and then overwrites it).
--start and the configuration's starting total, balance and dead flag count only for fresh meters.

Control (--control PORT, 0: the OS picks): newline-delimited JSON on 127.0.0.1:PORT, one reply line per
request line, {"ok": true, ...} or {"ok": false, "error": ...}. Ops: {"op": "kill_meter", "address": A},
revive_meter, {"op": "kill_gateway", "gateway": G, "mode": "silent"|"refuse"}, revive_gateway,
{"op": "meter", "address": A} (its truth), save_state, status. Client: prepaid_engine.simulator.control.

Output: the site map JSON on stdout (and in --site-map-out), then "# state: ..." (with --state),
"# control on 127.0.0.1:PORT" (with --control) and "# simulator ready" on stderr.
Stop with SIGINT (Ctrl-C) or SIGTERM.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prepaid-simulator",
        description="Simulated gateways and prepaid meters (DL/T 645, CJ/T 188, Modbus) on localhost ports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    site = parser.add_argument_group("site")
    site.add_argument("--config", metavar="FILE", help="site configuration JSON (a site map + 'simulator')")
    site.add_argument("--gateways", type=int, metavar="N", help="generate a site with N gateways")
    site.add_argument("--buses", type=int, default=4, metavar="N", help="buses per gateway (default 4)")
    site.add_argument("--meters", type=int, default=25, metavar="N", help="meters per bus (default 25)")
    site.add_argument(
        "--protocol",
        choices=[str(p) for p in Protocol],
        default=str(Protocol.DLT645_2007),
        help="protocol of generated meters (default dlt645_2007)",
    )
    site.add_argument(
        "--model",
        metavar="CODE",
        help="meter model of generated meters (default per protocol: "
        + ", ".join(f"{p}={m}" for p, m in DEFAULT_MODEL.items())
        + ")",
    )
    site.add_argument(
        "--transport",
        choices=[str(Transport.TRANSPARENT), str(Transport.MODBUS_TCP)],
        help="gateway transport of a generated site (default: modbus_tcp for Modbus, else transparent)",
    )
    site.add_argument("--name", help="site name")
    network = parser.add_argument_group("network")
    network.add_argument("--host", help="listen address of every gateway (default 127.0.0.1)")
    network.add_argument(
        "--base-port",
        type=int,
        metavar="P",
        help="first port (generated sites: default 17000; the demo site: renumbers its 3 ports from P); "
        "0 lets the OS choose every port",
    )
    network.add_argument("--baud", metavar="BAUD", help="baud rate of generated buses, or 'instant'")
    network.add_argument("--instant", action="store_true", help="zero byte times (CPU benchmarks, tests)")
    sim = parser.add_argument_group("simulation")
    sim.add_argument("--seed", type=int, help="seed of readings, profiles, faults (default 1)")
    sim.add_argument("--speed", type=float, help="simulated seconds per real second (default 1; demos: 60)")
    sim.add_argument(
        "--start", metavar="ISO", help="simulated start time, ISO 8601 with offset (default now)"
    )
    sim.add_argument("--timezone", metavar="TZ", help="site time zone for TOU bands (default Asia/Shanghai)")
    sim.add_argument("--latency", type=float, metavar="MS", help="meter answer delay in ms (default 60)")
    sim.add_argument("--jitter", type=float, metavar="F", help="latency jitter fraction 0..1 (default 0)")
    sim.add_argument(
        "--preamble", type=int, metavar="N", help="FE bytes before replies 0..4 (default per meter)"
    )
    sim.add_argument(
        "--master-key",
        metavar="HEX",
        help="recharge master key, 16 or 24 bytes hex (default 00112233445566778899AABBCCDDEEFF)",
    )
    sim.add_argument(
        "--button", choices=["immediate", "manual"], help="1B closing allowed: button pressed when"
    )
    faults = parser.add_argument_group("faults (rates per request, 0..1)")
    faults.add_argument(
        "--fault-rate", type=float, metavar="R", help="total rate, split evenly over the kinds"
    )
    faults.add_argument("--timeouts", type=float, metavar="R")
    faults.add_argument("--garbled", type=float, metavar="R")
    faults.add_argument("--bad-checksum", type=float, metavar="R")
    faults.add_argument("--wrong-address", type=float, metavar="R")
    faults.add_argument("--disconnects", type=float, metavar="R")
    faults.add_argument("--dead-meters", type=float, metavar="R", help="fraction of meters that never answer")
    state = parser.add_argument_group("state and control")
    state.add_argument(
        "--state",
        metavar="FILE",
        help="load the meters and the simulated time from FILE if it exists; save them there while running",
    )
    state.add_argument(
        "--state-every",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="real seconds between saves of --state (default 30; 0: only at stop and on save_state)",
    )
    state.add_argument(
        "--fresh", action="store_true", help="ignore the --state file: start fresh meters and overwrite it"
    )
    state.add_argument(
        "--control", type=int, metavar="PORT", help="serve the control ops on 127.0.0.1:PORT (0: any port)"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--site-map-out", metavar="FILE", help="also write the site map JSON to FILE")
    out.add_argument("--compact", action="store_true", help="print the site map on one line")
    return parser


def config_from_args(argv: list[str] | None = None):
    """The :class:`SiteConfig` the command line asks for (``argparse`` exits on bad flags)."""
    args = build_parser().parse_args(argv)
    instant = args.instant
    baud = None
    if args.baud is not None:
        if args.baud == "instant":
            instant = True
        else:
            try:
                baud = int(args.baud)
            except ValueError as exc:
                raise ConfigError(f"--baud takes a number or 'instant', not {args.baud!r}") from exc
    if args.config and args.gateways:
        raise ConfigError("--config and --gateways are alternatives")
    if args.config:
        config = load_config(Path(args.config))
    elif args.gateways:
        config = generate_site(
            args.gateways,
            args.buses,
            args.meters,
            protocol=args.protocol,
            model=args.model or "",
            base_port=17000 if args.base_port is None else args.base_port,
            baud=baud,
            transport=args.transport,
        )
    else:
        config = default_site()
    if args.base_port is not None and not args.gateways:
        config = config.with_ports(args.base_port)
    if args.host:
        config = config.with_host(args.host)
    kinds = {
        "timeout": args.timeouts,
        "garbled": args.garbled,
        "bad_checksum": args.bad_checksum,
        "wrong_address": args.wrong_address,
        "disconnect": args.disconnects,
    }
    faults = config.faults
    if args.fault_rate is not None:
        faults = FaultRates.uniform(args.fault_rate, dead_meters=faults.dead_meters)
    if any(v is not None for v in kinds.values()):
        faults = replace(faults, **{k: v for k, v in kinds.items() if v is not None})
    if args.dead_meters is not None:
        faults = replace(faults, dead_meters=args.dead_meters)
    return config_from_overrides(
        config,
        name=args.name,
        seed=args.seed,
        speed=args.speed,
        start=args.start,
        timezone=args.timezone,
        latency=None if args.latency is None else args.latency / 1000.0,
        jitter=args.jitter,
        preamble=args.preamble,
        master_key=args.master_key,
        button=args.button,
        instant=instant or None,
        faults=faults,
    )


async def serve(
    config,
    *,
    site_map_out: str | None = None,
    compact: bool = False,
    state: dict | None = None,
    state_file: StateFile | None = None,
    state_every: float = 30.0,
    control_port: int | None = None,
) -> int:
    """Run the site until SIGINT/SIGTERM; ``state`` (a read state document) restores it, ``state_file``
    saves it. Exit status: 0, 2 when it cannot start (a port, a state that does not fit, an unwritable
    state file), 1 when the last save failed."""
    try:
        site = Site(config, state=state)
    except StateError as exc:
        return _refused_state(state_file, exc)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    controller = ControlServer(site, state_file)
    try:
        site_map = await site.start()
        if control_port is not None:
            await controller.start("127.0.0.1", control_port)
    except OSError as exc:
        await site.stop()
        print(f"# simulator cannot listen: {exc}", file=sys.stderr, flush=True)
        return 2
    if state_file is not None:
        try:
            await state_file.save(site)  # at once: a state file that cannot be written fails here, not later
        except OSError as exc:
            await controller.stop()
            await site.stop()
            print(_unwritable(state_file, exc), file=sys.stderr, flush=True)
            return 2
    text = site_map.to_json(indent=None if compact else 2)
    if site_map_out:
        Path(site_map_out).write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    ports = sum(len(g.buses) for g in site_map.gateways)
    note = functools.partial(print, file=sys.stderr, flush=True)
    note(f"# {site_map.meter_count} meters, {len(site_map.gateways)} gateways, {ports} ports")
    if state_file is not None:
        for line in _state_notes(site, state_file):
            note(line)
    if control_port is not None:
        note(f"# control on 127.0.0.1:{controller.port}")
    note("# simulator ready")
    saver = None
    if state_file is not None and state_every > 0:
        saver = asyncio.create_task(_keep_saving(site, state_file, stop, state_every))
    status = 0
    try:
        await stop.wait()
    finally:
        if saver is not None:
            await saver  # returns once stop is set, after a save under way
        await controller.stop()
        await site.stop()
        if state_file is not None:
            try:
                saved = await state_file.save(site)
                note(f"# state saved to {saved['file']} at simulated {saved['simulated_at']}")
            except OSError as exc:
                note(_unwritable(state_file, exc))
                status = 1
        counters = dict(sorted(site.counters.items()))
        note(f"# simulator stopped: {counters}")
    return status


def _refused_state(state_file: StateFile | None, exc: StateError) -> int:
    where = f"state file {state_file.path}: " if state_file is not None else ""
    print(f"prepaid-simulator: {where}{exc}; --fresh ignores it, starts fresh meters", file=sys.stderr)
    return 2


def _unwritable(state_file: StateFile, exc: OSError) -> str:
    return f"prepaid-simulator: cannot write state file {state_file.path}: {exc.strerror or exc}"


def _state_notes(site: Site, state_file: StateFile) -> list[str]:
    restored = site.restored
    if restored is None:
        at = site.clock.now().isoformat()
        return [f"# state: fresh meters at simulated {at}, saved to {state_file.path}"]
    fresh = f", {len(restored.fresh)} fresh" if restored.fresh else ""
    notes = [
        f"# state: {len(restored.restored)} meters restored from {state_file.path}{fresh}, "
        f"simulated time goes on from {from_ms(restored.simulated_ms).isoformat()}"
    ]
    ignored = (*restored.ignored, *(f"gateway {key}" for key in restored.ignored_gateways))
    if ignored:
        shown = ", ".join(ignored[:10]) + (" ..." if len(ignored) > 10 else "")
        notes.append(f"# state: {len(ignored)} of {state_file.path} not in this site, ignored: {shown}")
    return notes


async def _keep_saving(site: Site, state_file: StateFile, stop: asyncio.Event, every: float) -> None:
    """Save every ``every`` real seconds until ``stop`` (never cancelled halfway through a save)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        try:
            await state_file.save(site)
        except OSError as exc:  # the disk may come back: say so and go on serving
            print(f"# {_unwritable(state_file, exc)}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    try:
        config = config_from_args(argv)
    except ConfigError as exc:
        print(f"prepaid-simulator: {exc}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    if args.fresh and not args.state:
        print("prepaid-simulator: --fresh goes with --state FILE", file=sys.stderr)
        return 2
    if args.state_every < 0 or (args.control is not None and not 0 <= args.control < 65536):
        print("prepaid-simulator: --state-every must be >= 0 and --control a port 0..65535", file=sys.stderr)
        return 2
    state = state_file = None
    if args.state:
        state_file = StateFile(args.state)
        try:
            state = None if args.fresh else read_state(state_file.path)
            if state is not None:
                check_state(state, config.name, config.seed)
        except StateError as exc:
            return _refused_state(state_file, exc)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(
            serve(
                config,
                site_map_out=args.site_map_out,
                compact=args.compact,
                state=state,
                state_file=state_file,
                state_every=args.state_every,
                control_port=args.control,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
