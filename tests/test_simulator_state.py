"""The simulator keeps its meters across restarts (``--state``) and is controlled as it runs (``--control``).

Sites run on OS-chosen ports with zero latency and instant byte times; the clock is frozen and moved where a
test is about values, and runs fast where it is about a running site.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from prepaid_engine.codecs import dlt645
from prepaid_engine.security import RechargeOrder, RechargeOutcome
from prepaid_engine.simulator import SimClock, Site, SiteThread, default_site
from prepaid_engine.simulator.clock import to_ms
from prepaid_engine.simulator.control import MAX_LINE, ControlError, ControlServer, control
from prepaid_engine.simulator.state import (
    StateError,
    StateFile,
    dump_state,
    load_state,
    read_state,
    write_state,
)

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2025, 3, 3, 16, 0, tzinfo=UTC)  # Tuesday 00:00 in Asia/Shanghai
FAST = {"latency": 0.0, "instant": True, "preamble": 0}
ELECTRICITY, WATER, MODBUS = "000000001101", "00000000001101", "sim-mb-1/1/1"


def config(**settings):
    return default_site(**{**FAST, **settings}).with_ports(0)


def frozen_site(start: datetime = START, **settings) -> Site:
    return Site(config(**settings), clock=SimClock(start, frozen=True))


def lived_in(site: Site) -> None:
    """Give the demo site's meters a history no fresh site has: recharges, trips, keep power, a closed valve,
    new prices and thresholds, a meter killed, a clock set by broadcast, a day and a half of consumption."""
    site.clock.advance(36 * 3600)
    one = site.meter(ELECTRICITY)
    assert one.recharge(RechargeOrder(one.meter_number, Decimal("25.50"), 1)) is RechargeOutcome.APPLIED
    assert one.recharge(RechargeOrder(one.meter_number, Decimal("4.25"), 2)) is RechargeOutcome.APPLIED
    one.set_prices([Decimal("1.1111"), Decimal("0.8888"), Decimal("0.5555"), Decimal("0.2222")])
    one.overdraft_micro = 5_000_000
    one.ledger.hoarding_limit = Decimal("5000.00")
    site.meter("000000001102").command_trip(restore_after_ms=600_000)  # auto-restore pending
    site.meter("000000001103").command_keep_power(True)
    poor = site.meter("000000001104")
    poor.set_balance(Decimal("0.20"))  # trips itself at zero within the next hours
    site.meter(WATER).set_valve("closed")
    site.meter("00000000001102").set_battery_low(True)
    site.meter("000000001105").set_meter_time(START + timedelta(days=40))
    site.meter("000000001106").dead = True
    site.clock.advance(6 * 3600)
    assert poor.relay_open and poor.self_tripped


# ============================================================================================ round trip


def test_a_restored_site_holds_every_meters_truth_and_its_clock_goes_on_from_the_saved_time():
    old = frozen_site()
    lived_in(old)
    data = json.loads(json.dumps(dump_state(old)))  # through JSON, as the file holds it
    ticks = [1000.0]
    clock = SimClock(None, speed=60, monotonic=lambda: ticks[0])  # the wall clock's now, a new speed
    new = Site(config(), clock=clock, state=data)
    assert new.clock.now_ms() == data["simulated_ms"] == to_ms(old.clock.now())
    assert new.restored.restored == tuple(key for key, _ in old.meters()) and not new.restored.fresh
    for key, meter in new.meters():
        assert meter.to_state() == data["meters"][key]
    for address in (ELECTRICITY, "000000001102", "000000001103", "000000001104", WATER, MODBUS):
        before, after = old.meter(address), new.meter(address)
        assert after.registers() == before.registers()
        assert (after.balance, after.purchase_count) == (before.balance, before.purchase_count)
        assert (after.relay_open, after.valve, after.keep_power) == (
            before.relay_open,
            before.valve,
            before.keep_power,
        )
    assert new.meter(ELECTRICITY).purchase_count == 2
    assert new.meter(ELECTRICITY).balance == old.meter(ELECTRICITY).balance
    assert new.meter(ELECTRICITY).prices == (
        Decimal("1.1111"),
        Decimal("0.8888"),
        Decimal("0.5555"),
        Decimal("0.2222"),
    )
    assert new.meter("000000001104").self_tripped and new.meter("000000001104").relay_open
    assert new.meter("000000001105").meter_local() == old.meter("000000001105").meter_local()
    assert new.meter("000000001106").dead
    # the clock runs at the new speed from the saved time; both sites then agree to the step
    ticks[0] += 10
    assert new.clock.now_ms() == data["simulated_ms"] + 600_000
    old.clock.advance(600)
    for address in (ELECTRICITY, "000000001102", WATER, MODBUS):
        assert new.meter(address).reading() == old.meter(address).reading()
    assert not new.meter("000000001102").relay_open  # the auto-restore came due in both


def test_a_recharge_replayed_after_a_restart_is_a_duplicate():
    old = frozen_site()
    meter = old.meter(ELECTRICITY)
    order = RechargeOrder(meter.meter_number, Decimal("10.00"), 1)
    assert meter.recharge(order) is RechargeOutcome.APPLIED
    new = Site(config(), state=dump_state(old))
    again = new.meter(ELECTRICITY)
    assert again.recharge(order) is RechargeOutcome.DUPLICATE
    assert (
        again.recharge(RechargeOrder(meter.meter_number, Decimal("1.00"), 3)) is RechargeOutcome.COUNT_ERROR
    )
    assert again.recharge(RechargeOrder(meter.meter_number, Decimal("1.00"), 2)) is RechargeOutcome.APPLIED
    assert again.balance == meter.balance + 1


def test_indexes_never_go_backwards_across_restarts_of_a_running_site():
    cfg = config(start=START, speed=3600.0)  # an hour a second: the wall clock is soon far behind
    state = None
    saved_ms = [to_ms(START)]
    last: dict[str, Decimal] = {}
    for _ in range(3):
        with SiteThread(cfg, state=state) as thread:
            assert thread.call(lambda site: site.clock.now_ms()) >= saved_ms[-1]
            for key in (ELECTRICITY, WATER, MODBUS):
                total = thread.call(lambda site, key=key: site.meter(key).total)
                assert total >= last.get(key, Decimal(0))
                last[key] = total
            state = thread.call(dump_state)
        assert state["simulated_ms"] > saved_ms[-1]
        saved_ms.append(state["simulated_ms"])


def test_meters_the_state_lacks_start_fresh_and_meters_the_site_lacks_are_ignored():
    old = frozen_site()
    lived_in(old)
    data = dump_state(old)
    del data["meters"]["sim-tg-1/2/00000000001101"]
    data["meters"]["sim-tg-1/1/000000009999"] = data["meters"]["sim-tg-1/1/000000001101"]
    data["meters"]["sim-tg-1/1/000000001102"] = {
        **data["meters"]["sim-tg-1/1/000000001102"],
        "model": "other",
    }
    data["gateways"]["gone"] = "silent"
    new = Site(config(), clock=SimClock(START, frozen=True), state=data)
    assert new.restored.fresh == ("sim-tg-1/1/000000001102", "sim-tg-1/2/00000000001101")
    assert new.restored.ignored == ("sim-tg-1/1/000000009999",)
    assert new.restored.ignored_gateways == ("gone",)
    fresh = new.meter(WATER)
    assert fresh.t_ms == data["simulated_ms"] and fresh.valve == "open"  # as configured, at the saved time
    assert fresh.total == frozen_site().meter(WATER).total
    assert new.meter("000000001102").restore_at > data["simulated_ms"] * 2  # no timer: fresh


def test_the_state_wins_over_the_configuration_of_the_meters_it_holds():
    old = frozen_site()
    old.meter(ELECTRICITY).dead = True
    data = dump_state(old)
    cfg = config().with_meter(f"sim-tg-1/1/{ELECTRICITY}", dead=False, balance=Decimal("5.00"))
    new = Site(cfg, state=data)
    assert new.meter(ELECTRICITY).dead
    assert new.meter(ELECTRICITY).balance == old.meter(ELECTRICITY).balance


def test_a_gateway_killed_at_run_time_stays_killed_after_a_restart_and_revives():
    async def scenario():
        old = frozen_site()
        await old.start()
        await old.kill_gateway("sim-tg-1", "refused")
        await old.kill_gateway("sim-mb-1", "silent")
        await old.stop()
        new = Site(config(), state=dump_state(old))
        site_map = await new.start()
        try:
            assert {k: g.state for k, g in new.gateways.items()} == {
                "sim-tg-1": "refused",
                "sim-mb-1": "silent",
            }
            port = site_map.gateway("sim-tg-1").buses[0].port
            assert port > 0
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", port)
            await new.revive_gateway("sim-tg-1")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(dlt645.read(ELECTRICITY, "00010000"))
            assert await asyncio.wait_for(reader.read(100), 2)
            writer.close()
        finally:
            await new.stop()

    asyncio.run(scenario())


# ================================================================================================= refusals


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "state version 2"),
        ({"site": "other"}, "site 'other'"),
        ({"seed": 7}, "seed 7"),
        ({"simulated_ms": 1.5}, "simulated_ms"),
        ({"meters": []}, "meters"),
        ({"gateways": {"sim-tg-1": "broken"}}, "gateway sim-tg-1"),
    ],
)
def test_a_state_of_another_site_seed_or_version_or_shape_is_refused_and_changes_nothing(change, message):
    data = {**dump_state(frozen_site()), **change}
    site = frozen_site(START + timedelta(days=3))
    before = {key: meter.to_state() for key, meter in site.meters()}
    with pytest.raises(StateError, match=message):
        load_state(site, data)
    assert site.clock.now() == START + timedelta(days=3)
    assert {key: meter.to_state() for key, meter in site.meters()} == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("acc", [1, 2, 3], "acc: expected a list of four integers"),
        ("acc", [1, 2, 3, -4], "non-negative"),
        ("balance_micro", 1.5, "balance_micro: expected an integer"),
        ("balance_micro", True, "an integer"),
        ("ledger_balance", 12.5, "a decimal as text"),
        ("ledger_balance", "NaN", "finite"),
        ("relay_open", 0, "true or false"),
        ("valve", "open", "an electricity meter none"),
        ("t_ms", 10**15, "after the state's simulated time"),
        ("purchase_count", None, "an integer"),
    ],
)
def test_a_garbled_meter_entry_is_refused_naming_it_and_changes_nothing(field, value, message):
    data = dump_state(frozen_site())
    data["meters"][f"sim-tg-1/1/{ELECTRICITY}"][field] = value
    site = frozen_site()
    before = {key: meter.to_state() for key, meter in site.meters()}
    with pytest.raises(StateError, match=message) as refused:
        load_state(site, data)
    assert f"meter sim-tg-1/1/{ELECTRICITY}" in str(refused.value)
    assert {key: meter.to_state() for key, meter in site.meters()} == before


def test_a_state_is_restored_before_the_site_starts():
    async def scenario():
        site = frozen_site()
        await site.start()
        try:
            with pytest.raises(StateError, match="before the site starts"):
                load_state(site, dump_state(site))
        finally:
            await site.stop()

    asyncio.run(scenario())


def test_the_state_file_is_replaced_atomically_and_read_back_exactly(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    assert read_state(path) is None
    site = frozen_site()
    lived_in(site)
    data = dump_state(site)
    write_state(path, data)
    assert read_state(path) == data
    assert "." not in json.dumps(read_state(path)["meters"][f"sim-tg-1/1/{ELECTRICITY}"]["acc"])  # no floats
    old_text = path.read_text()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_state(path, {**data, "simulated_ms": 1})
    assert path.read_text() == old_text
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # the temporary file went too


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{garbled", "not JSON"), (b"[1, 2]", "not a JSON object"), (b"\xff\xfe", "not JSON")],
)
def test_an_unreadable_state_file_is_refused(tmp_path, content, message):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError, match=message):
        read_state(path)
    with pytest.raises(StateError, match="cannot be read"):
        read_state(tmp_path)  # a directory


# ========================================================================================= control server


@pytest.fixture
def controlled(tmp_path):
    """A running demo site (frozen clock) with its control server and a state file: (thread, port, path)."""
    path = tmp_path / "state.json"
    thread = SiteThread(config(), clock=SimClock(START, frozen=True))
    thread.start()
    state_file = StateFile(path)
    server = thread.call(lambda site: ControlServer(site, state_file))
    port = thread.call(lambda site: server.start())
    try:
        yield thread, port, path
    finally:
        thread.call(lambda site: server.stop())
        thread.stop()


def test_control_kills_and_revives_meters_and_says_their_truth(controlled):
    thread, port, _ = controlled
    truth = control("127.0.0.1", port, "meter", address=ELECTRICITY)
    meter = thread.site.meter(ELECTRICITY)
    assert truth["key"] == f"sim-tg-1/1/{ELECTRICITY}"
    assert (truth["total"], truth["balance"], truth["purchase_count"]) == (
        str(meter.total),
        str(meter.balance),
        0,
    )
    assert (truth["relay_open"], truth["valve"], truth["dead"], truth["supply"]) == (False, None, False, "on")
    assert control("127.0.0.1", port, "kill_meter", address=ELECTRICITY) == {
        "ok": True,
        "key": f"sim-tg-1/1/{ELECTRICITY}",
        "dead": True,
    }
    bus_port = thread.site.site_map().gateway("sim-tg-1").buses[0].port
    with socket.create_connection(("127.0.0.1", bus_port), timeout=0.3) as sock:
        sock.sendall(dlt645.read(ELECTRICITY, "00010000"))
        with pytest.raises(TimeoutError):
            sock.recv(100)  # a dead meter never answers
    assert control("127.0.0.1", port, "meter", address=ELECTRICITY)["dead"] is True
    control("127.0.0.1", port, "revive_meter", address=f"sim-tg-1/1/{ELECTRICITY}")
    assert not meter.dead
    water = control("127.0.0.1", port, "meter", address=WATER)
    assert (water["valve"], water["relay_open"], water["utility"]) == ("open", None, "water")


@pytest.mark.parametrize("mode", ["silent", "refuse"])
def test_control_kills_and_revives_gateways(controlled, mode):
    thread, port, _ = controlled
    reply = control("127.0.0.1", port, "kill_gateway", gateway="sim-mb-1", mode=mode)
    assert reply["state"] == {"silent": "silent", "refuse": "refused"}[mode]
    assert control("127.0.0.1", port, "status")["gateways"]["sim-mb-1"] == reply["state"]
    assert control("127.0.0.1", port, "revive_gateway", gateway="sim-mb-1")["state"] == "up"
    assert thread.site.gateway("sim-mb-1").state == "up"


def test_control_saves_the_state_and_reports_status(controlled):
    thread, port, path = controlled
    thread.call(lambda site: site.clock.advance(3600))
    saved = control("127.0.0.1", port, "save_state")
    assert saved["file"] == str(path) and saved["meters"] == 50
    assert read_state(path)["simulated_ms"] == to_ms(START) + 3_600_000
    status = control("127.0.0.1", port, "status")
    assert status["simulated_at"] == (START + timedelta(hours=1)).isoformat()
    assert (status["site"], status["meters"], status["dead_meters"]) == ("default", 50, [])
    assert status["state"]["saves"] == 1 and status["state"]["file"] == str(path)
    assert isinstance(status["counters"], dict)


def test_control_answers_bad_requests_with_ok_false_and_keeps_serving(controlled):
    thread, port, _ = controlled
    lines = [
        b"not json",
        b"[1, 2]",
        b'{"op": 3}',
        b'{"op": "explode"}',
        b'{"op": "meter", "address": "999999999999"}',
        b'{"op": "meter"}',
        b'{"op": "kill_gateway", "gateway": "nope"}',
        b'{"op": "kill_gateway", "gateway": "sim-tg-1", "mode": "loud"}',
        b'{"op": "status", "pad": "' + b"x" * (MAX_LINE + 10) + b'"}',
        b'{"op": "status"}',
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"\n".join(lines) + b"\n")
        replies = []
        buffer = b""
        while len(replies) < len(lines):
            chunk = sock.recv(65536)
            assert chunk, f"the server closed after {replies}"
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            replies += [json.loads(line) for line in done]
    assert [r["ok"] for r in replies] == [False] * 9 + [True]
    errors = [r["error"] for r in replies[:9]]
    assert errors[0].startswith("not JSON")
    assert "unknown op 'explode'" in errors[3]
    assert "no meter '999999999999'" in errors[4]
    assert "needs 'address'" in errors[5]
    assert "no gateway 'nope'" in errors[6]
    assert "mode" in errors[7]
    assert str(MAX_LINE) in errors[8]
    assert thread.site.gateway("sim-tg-1").state == "up"
    # a huge line that never ends, then the client goes: the server is still there for the next one
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"x" * (3 * MAX_LINE))
        assert json.loads(sock.recv(65536).split(b"\n")[0])["ok"] is False
    assert control("127.0.0.1", port, "status")["control"]["refused"] == 10


def test_the_control_client_raises_on_refusals_and_unreachable_servers(controlled):
    _, port, _ = controlled
    with pytest.raises(ControlError, match="unknown op") as refused:
        control("127.0.0.1", port, "explode")
    assert refused.value.reply["ok"] is False
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed_port = free.getsockname()[1]
    with pytest.raises(ControlError, match=f"127.0.0.1:{closed_port}"):
        control("127.0.0.1", closed_port, "status", timeout=1)


def test_save_state_without_a_state_file_is_refused():
    async def scenario():
        site = frozen_site()
        server = ControlServer(site)
        return await server.handle(b'{"op": "save_state"}')

    reply = asyncio.run(scenario())
    assert reply["ok"] is False and "--state" in reply["error"]


def test_stopping_the_control_server_closes_connections_still_open():
    async def scenario():
        server = ControlServer(frozen_site())
        port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"op": "status"}\n')
        assert json.loads(await reader.readline())["ok"] is True
        await asyncio.wait_for(server.stop(), 0.5)
        assert await asyncio.wait_for(reader.read(), 1) == b""
        writer.close()

    asyncio.run(scenario())


# ===================================================================================================== CLI


class Simulator:
    """``python -m prepaid_engine.simulator`` in a subprocess, waited for until ready."""

    def __init__(self, *flags: str):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-m", "prepaid_engine.simulator", "--base-port", "0", "--baud", "instant"]
        args += ["--latency", "0", "--compact", *flags]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        self.notes: list[str] = []
        self.control_port = 0
        while True:
            line = self.proc.stderr.readline()
            if not line:
                self.returncode = self.proc.wait(timeout=20)
                self.notes.append(self.proc.stderr.read())
                return
            self.notes.append(line.strip())
            if line.startswith("# control on 127.0.0.1:"):
                self.control_port = int(line.rsplit(":", 1)[1])
            if line.strip() == "# simulator ready":
                self.returncode = None
                return

    def control(self, op: str, **fields):
        return control("127.0.0.1", self.control_port, op, **fields)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=20)
        self.notes += err.splitlines()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=20)


def test_cli_keeps_its_meters_and_a_killed_meter_across_a_restart(tmp_path):
    path = tmp_path / "sim.json"
    flags = ("--state", str(path), "--control", "0", "--speed", "600", "--state-every", "0.2")
    first = Simulator(*flags)
    try:
        assert first.returncode is None, first.notes
        assert first.control_port > 0
        assert any(n.startswith("# state: fresh meters") for n in first.notes)
        first.control("kill_meter", address=ELECTRICITY)
        before = first.control("meter", address="000000001102")
        assert first.stop() == 0, first.notes
    finally:
        first.kill()
    assert any(n.startswith("# state saved to") for n in first.notes)
    saved = read_state(path)
    assert saved["meters"][f"sim-tg-1/1/{ELECTRICITY}"]["dead"] is True
    assert saved["simulated_ms"] >= to_ms(datetime.fromisoformat(before["simulated_at"]))
    second = Simulator(*flags)
    try:
        assert second.returncode is None, second.notes
        assert any("50 meters restored" in n for n in second.notes)
        assert second.control("meter", address=ELECTRICITY)["dead"] is True  # the runtime dead flag is kept
        after = second.control("meter", address="000000001102")
        assert Decimal(after["total"]) >= Decimal(before["total"])
        assert after["simulated_at"] >= before["simulated_at"]
        assert second.stop() == 0
    finally:
        second.kill()


def test_cli_refuses_a_garbled_or_foreign_state_file_untouched_unless_fresh(tmp_path):
    path = tmp_path / "sim.json"
    path.write_text("{garbled")
    refused = Simulator("--state", str(path))
    assert refused.returncode == 2
    assert any(n.startswith(f"prepaid-simulator: state file {path}: not JSON") for n in refused.notes)
    assert path.read_text() == "{garbled"
    write_state(path, {**dump_state(frozen_site()), "seed": 9})
    foreign = path.read_text()
    refused = Simulator("--state", str(path))
    assert refused.returncode == 2 and "seed 9" in "\n".join(refused.notes)
    assert path.read_text() == foreign
    fresh = Simulator("--state", str(path), "--fresh", "--state-every", "0")
    try:
        assert fresh.returncode is None, fresh.notes
        assert fresh.stop() == 0
    finally:
        fresh.kill()
    assert read_state(path)["seed"] == 1


def test_cli_fresh_needs_a_state_file_and_help_documents_the_flags():
    assert Simulator("--fresh").returncode == 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "prepaid_engine.simulator", "--help"], capture_output=True, text=True, env=env
    )
    for flag in ("--state", "--state-every", "--fresh", "--control", "kill_meter", "save_state"):
        assert flag in result.stdout


def test_state_json_holds_no_floats():
    site = frozen_site()
    lived_in(site)
    text = json.dumps(dump_state(site))
    assert not any(isinstance(v, float) for v in _leaves(json.loads(text)))


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def test_the_configured_start_counts_only_for_fresh_meters():
    old = Site(config(start=START), clock=SimClock(START + timedelta(days=2), frozen=True))
    new = Site(config(start=START), state=dump_state(old))
    assert new.clock.now() >= START + timedelta(days=2)
