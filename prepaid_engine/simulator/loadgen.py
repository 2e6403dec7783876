"""``python -m prepaid_engine.simulator.loadgen``: how many requests per second a simulator sustains.

Starts the simulator in its own process (a generated DL/T 645-2007 site, instant baud, zero latency by
default), then keeps one request in flight on every bus port from this process with a deliberately dumb
client (pre-encoded ``0001FF00`` block reads, replies counted by length, nothing decoded), and prints the
requests answered per second of wall time and per second of the simulator process's CPU time.

    python -m prepaid_engine.simulator.loadgen --gateways 100 --buses 4 --meters 25 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..sitemap import load_site_map


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Bus(asyncio.Protocol):
    def __init__(self, requests: list[bytes], reply_len: int, counter: list[int]):
        self.requests = requests
        self.reply_len = reply_len
        self.counter = counter
        self.got = 0
        self.index = 0
        self.transport = None
        self.running = True

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.requests[0])

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        while self.got >= self.reply_len:
            self.got -= self.reply_len
            self.counter[0] += 1
            if self.running:
                self.index = (self.index + 1) % len(self.requests)
                self.transport.write(self.requests[self.index])


async def _drive(site_map, seconds: float, pid: int) -> tuple[int, float, float]:
    from ..codecs import dlt645

    loop = asyncio.get_running_loop()
    counter = [0]
    protocols = []
    for gateway in site_map.gateways:
        for bus in gateway.buses:
            requests = [dlt645.read(m.address, "0001FF00") for m in bus.meters]
            reply_len = 4 + 12 + 4 + 20  # FE x4, header, DI, five 4-byte energies
            _, protocol = await loop.create_connection(
                lambda r=requests, n=reply_len: _Bus(r, n, counter), gateway.host, bus.port
            )
            protocols.append(protocol)
    await asyncio.sleep(1.0)  # warm up
    start_count, start_wall, start_cpu = counter[0], time.perf_counter(), _cpu_seconds(pid)
    await asyncio.sleep(seconds)
    count, wall, cpu = (
        counter[0] - start_count,
        time.perf_counter() - start_wall,
        _cpu_seconds(pid) - start_cpu,
    )
    for protocol in protocols:
        protocol.running = False
        protocol.transport.close()
    return count, wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=100)
    parser.add_argument("--buses", type=int, default=4)
    parser.add_argument("--meters", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency", type=float, default=0.0, help="meter latency, ms")
    parser.add_argument("--baud", default="instant")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "prepaid_engine.simulator", "--gateways", str(args.gateways)]
    cmd += ["--buses", str(args.buses), "--meters", str(args.meters), "--model", "dlt645_2007_basic"]
    cmd += ["--latency", str(args.latency), "--baud", args.baud, "--base-port", "0", "--preamble", "4"]
    cmd += ["--compact", "--fault-rate", "0"] if not args.fault_rate else ["--compact"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        site_map = load_site_map(proc.stdout.readline())
        count, wall, cpu = asyncio.run(_drive(site_map, args.seconds, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    print(
        f"{count} requests in {wall:.2f} s: {count / wall:,.0f} requests/s wall; simulator CPU {cpu:.2f} s "
        f"= {count / cpu if cpu else float('inf'):,.0f} requests per CPU second "
        f"({1e6 * cpu / max(count, 1):.0f} us per request)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
