"""The simulator's injected faults for anomaly detection (control ops bypass, stuck, tamper; dead meter is
kill_meter) and the DL/T 645-2007 tamper identifiers, from the meter's answer to the Reading's fields."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

from prepaid_engine.anomaly import TamperState, tamper
from prepaid_engine.codecs import dlt645
from prepaid_engine.simulator import SimClock, Site, default_site
from prepaid_engine.simulator.control import ControlServer

START = datetime(2025, 3, 3, 16, 0, tzinfo=UTC)
FAST = {"latency": 0.0, "instant": True, "preamble": 0}
ADDRESS = "000000001101"


def _site() -> Site:
    return Site(default_site(**FAST).with_ports(0), clock=SimClock(START, frozen=True))


def _op(site: Site, op: str, **fields) -> dict:
    reply = asyncio.run(ControlServer(site).handle(json.dumps({"op": op, "address": ADDRESS, **fields})))
    return reply


def _tamper_state(meter) -> TamperState:
    values = {}
    for di in ("00020000", "03300D00", "03350000"):
        raw = dlt645.encode_value(di, meter.readers[di](meter, None))
        values.update(dlt645.reading_values(di, raw))
    return TamperState(**values)


def test_bypass_registers_only_the_share_of_the_true_load():
    clean, theft = _site(), _site()
    assert _op(theft, "bypass", share="0.25")["ok"]
    start = clean.meter(ADDRESS).total
    assert theft.meter(ADDRESS).total == start
    for site in (clean, theft):
        site.clock.advance(2 * 86_400)
    true_use = clean.meter(ADDRESS).total - start
    registered = theft.meter(ADDRESS).total - start
    assert true_use > 0
    assert abs(registered - true_use / 4) <= Decimal("0.05")


def test_bypass_refuses_a_share_outside_0_1():
    site = _site()
    assert not _op(site, "bypass", share="1.5")["ok"]
    assert not _op(site, "bypass", share="nan")["ok"]


def test_stuck_register_freezes_and_frees():
    site = _site()
    meter = site.meter(ADDRESS)
    site.clock.advance(3600)
    assert _op(site, "stuck")["stuck"] is True
    frozen = meter.total
    site.clock.advance(86_400)
    assert meter.total == frozen
    assert meter.instantaneous()["power"] >= 0  # the load still runs; only the register is stuck
    _op(site, "stuck", stuck=False)
    site.clock.advance(86_400)
    assert meter.total > frozen


def test_tamper_events_are_answered_and_found_by_the_detector():
    site = _site()
    meter = site.meter(ADDRESS)
    before = _tamper_state(meter)
    assert before == TamperState(reverse_total=Decimal("0.00"), cover_open_count=0, magnetic_count=0)
    assert tamper(ADDRESS, before, _tamper_state(meter)) == []
    _op(site, "tamper", event="cover_open")
    _op(site, "tamper", event="magnetic")
    _op(site, "tamper", event="reverse", kwh="2.5")
    after = _tamper_state(meter)
    assert after == TamperState(reverse_total=Decimal("2.50"), cover_open_count=1, magnetic_count=1)
    assert sorted(f.evidence["event"] for f in tamper(ADDRESS, before, after)) == [
        "cover_open",
        "magnetic",
        "reverse_energy",
    ]
    assert not _op(site, "tamper", event="smoke")["ok"]


def test_faults_survive_a_state_file_and_an_old_file_restores_a_clean_meter():
    site = _site()
    _op(site, "bypass", share="0.5")
    _op(site, "tamper", event="cover_open")
    meter = site.meter(ADDRESS)
    entry = meter.to_state()
    other = _site().meter(ADDRESS)
    other.from_state(entry)
    assert (other.registered_permille, other.cover_open_count) == (500, 1)
    old = {k: v for k, v in entry.items() if k not in ("registered_permille", "cover_open_count")}
    other.from_state(old)
    assert (other.registered_permille, other.cover_open_count) == (1000, 0)


def test_dlt645_tamper_identifiers_fill_the_reading_fields():
    assert dlt645.reading_values("03300D00", dlt645.encode_value("03300D00", 7)) == {"cover_open_count": 7}
    assert dlt645.reading_values("03350000", dlt645.encode_value("03350000", 2)) == {"magnetic_count": 2}
    raw = dlt645.encode_value("00020000", Decimal("12.34"))
    assert dlt645.reading_values("00020000", raw) == {"reverse_total": Decimal("12.34")}
