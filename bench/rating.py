"""Rating throughput: 100,000 time-of-use intervals through the engine, on one core.

A settlement run rates one or a few new intervals per meter for many meters. This bench builds a fleet of
1,000 meters with 100 quarter-hour readings each (a day and a bit, so intervals cross every period boundary
of an 8-period tariff with a free allowance) and times the ways the billing addon can call the engine. It
prints intervals per second and the ratio to the 50,000/s floor; it does not assert (timings depend on the
machine). Rates are per CPU second of this process (one core), with the wall-clock rate beside them.

    python3 bench/rating.py [meters] [intervals-per-meter]
"""

from __future__ import annotations

import sys
import time as clock
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from prepaid_engine.calendar import SettlementCalendar, cycle_bounds
from prepaid_engine.rating import CycleState, Register, Tariff, consumption, rate, rate_cycle

FLOOR = 50_000  # intervals per second
ZONE = "Asia/Shanghai"


def tariff() -> Tariff:
    return Tariff(
        "bench-tou",
        "tou",
        "electricity",
        band_prices={"sharp": "1.2000", "peak": "0.9500", "flat": "0.6200", "valley": "0.3100"},
        periods=(
            (time(0), "valley"),
            (time(8), "flat"),
            (time(10), "peak"),
            (time(11), "sharp"),
            (time(13), "flat"),
            (time(18), "peak"),
            (time(21), "flat"),
            (time(23), "valley"),
        ),
        free_allowance=Decimal("2"),
        tz=ZONE,
    )


def fleet(meters: int, per_meter: int) -> list[list[Register]]:
    """Readings every quarter hour with a few seconds of jitter, a deterministic 0.00-0.96 kWh each."""
    start = datetime(2024, 3, 10, 15, 50, tzinfo=UTC)
    step = timedelta(minutes=15)
    out = []
    for meter in range(meters):
        total = Decimal(meter) + Decimal("1000.00")
        readings = [Register(start, total)]
        for i in range(1, per_meter + 1):
            total += Decimal((i * 7919 + meter * 31) % 97) / 100
            readings.append(Register(start + step * i + timedelta(seconds=(i * 13 + meter) % 29), total))
        out.append(readings)
    return out


class Timer:
    """CPU time of this process (one core, whatever else the machine runs) and wall time."""

    def __enter__(self) -> Timer:
        self.cpu, self.wall = clock.process_time(), clock.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu, self.wall = clock.process_time() - self.cpu, clock.perf_counter() - self.wall


def report(name: str, count: int, timer: Timer) -> None:
    per_cpu_second = count / timer.cpu
    print(
        f"{name:<54} {per_cpu_second:>9,.0f} intervals/s  {per_cpu_second / FLOOR:5.2f} x floor"
        f"  (wall {count / timer.wall:,.0f}/s)"
    )


def main() -> None:
    meters = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    per_meter = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    count = meters * per_meter
    t = tariff()
    calendar = SettlementCalendar("monthly", 1, time(0), ZONE)
    readings = fleet(meters, per_meter)
    print(f"{count:,} intervals: {meters:,} meters x {per_meter} quarter hours, tariff {t.code} in {ZONE}")

    with Timer() as timer:
        intervals = [[consumption(a, b) for a, b in pairwise(meter)] for meter in readings]
    report("consumption(): register pairs -> intervals", count, timer)

    charged = Decimal(0)
    with Timer() as timer:
        for meter in intervals:  # a run that settles each meter's new intervals in one call
            for rated in rate_cycle(t, meter, calendar):
                charged += rated.charge
    report("rate_cycle(): one call per meter, all its intervals", count, timer)

    cycle_start = cycle_bounds(calendar, intervals[0][0].start)[0]
    again = Decimal(0)
    with Timer() as timer:
        for meter in intervals:  # the bare engine: rate() with the state chained by the caller
            state = CycleState(cycle_start)
            for interval in meter:
                rated = rate(t, state, interval)
                state = rated.new_state
                again += rated.charge
    report("rate(): one call per interval, state chained", count, timer)

    states: dict[int, CycleState] = {}
    with Timer() as timer:
        for step in range(per_meter):  # a run after every poll: one new interval per meter
            for index, meter in enumerate(intervals):
                states[index] = rate_cycle(t, [meter[step]], calendar, states.get(index))[-1].new_state
    report("rate_cycle(): one call per meter and interval", count, timer)

    same = all(
        states[i] == rate_cycle(t, meter, calendar)[-1].new_state for i, meter in enumerate(intervals[:10])
    )
    print(
        f"charged {charged} {t.currency} (rate() chain: {again}); per-poll states = per-meter states: {same}"
    )


if __name__ == "__main__":
    main()
