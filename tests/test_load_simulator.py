"""Load control in the simulator, end to end: parameters written over DL/T 645 through the real link and
the adapters' steps, a kettle forced on through the control channel, the meter tripping itself for a
malicious load, its trip reason and event records read back, automatic restore after the delay and the
daily count honoured, polled through the real poller; scheduled appliances stay exact and reproducible;
state files keep (and old ones lack) the new fields."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prepaid_engine.load import LoadProfile, MaliciousMode, PowerRange, RestorePolicy, TripReason
from prepaid_engine.load.params import profile_parameters, read_plan, write_steps
from prepaid_engine.poller import Poller, default_link_factory
from prepaid_engine.simulator import Site, default_site
from prepaid_engine.simulator.control import ControlServer
from prepaid_engine.simulator.state import dump_state, load_state
from prepaid_engine.types import Supply

ELECTRIC = "sim-tg-1/1/000000001101"
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
PROFILE = LoadProfile(
    malicious_mode=MaliciousMode.TRIP, ranges=(PowerRange(300, 6000),), pf_threshold=Decimal("0.90")
)
POLICY = RestorePolicy(timedelta(seconds=60), 3)


def run(coro):
    return asyncio.run(coro)


class Bench:
    """A running demo site with a poller, a DL/T 645 link to bus 1 and the control server, all in-process."""

    def __init__(self, site: Site):
        self.site = site
        self.gateways = [dataclasses.replace(g, timeout=0.5) for g in site.site_map().gateway_specs()]
        self.gateway = next(g for g in self.gateways if g.key == "sim-tg-1")
        self.bus = next(b for b in self.gateway.buses if b.key == "1")
        self.spec = next(m for m in self.bus.meters if m.key == ELECTRIC)
        self.link = default_link_factory(self.gateway, self.bus, "framed", None)
        self.control = ControlServer(site)
        self.poller = Poller()

    async def exchange(self, steps):
        replies = []
        for step in steps:
            frame = await self.link.exchange(
                step.request, timeout=0.5, expect=step.expect, deframer=step.deframer
            )
            replies.append(step.parse(frame))
        return replies

    async def write(self, values):
        await self.exchange(write_steps(self.spec, values))

    async def read(self, *names):
        plan = read_plan(self.spec, names)
        return plan.fold(plan.steps, await self.exchange(plan.steps))

    async def op(self, op, **fields):
        reply = await self.control.handle(json.dumps({"op": op, **fields}))
        assert reply["ok"], reply
        return reply

    async def poll(self):
        result = await self.poller.poll([self.gateway])
        return next(r for r in result.readings if r.meter_key == ELECTRIC)

    def advance(self, seconds):
        self.site.clock.advance(seconds)


async def bench(scenario):
    config = default_site(latency=0, instant=True, start=START).with_ports(0)
    async with Site(config) as site:
        site.clock.freeze()
        b = Bench(site)
        try:
            return await scenario(b)
        finally:
            await b.link.close()


def test_a_kettle_trips_the_meter_for_malicious_load_and_it_is_restored_after_the_delay():
    async def scenario(b: Bench):
        await b.write(profile_parameters(PROFILE, POLICY))
        settings = await b.read(
            "malicious_mode", "range_1_low", "range_1_high", "pf_threshold", "restore_delay"
        )
        before = await b.poll()
        await b.op("appliance_on", address=ELECTRIC, appliance="kettle")
        tripped = await b.poll()
        records = await b.read("trip_reason", "event_count", "event_1", "event_2", "restores_today")
        await b.op("appliance_off", address=ELECTRIC, appliance="kettle")
        b.advance(59)
        still = await b.poll()
        b.advance(1)
        restored = await b.poll()
        load = await b.op("load", address=ELECTRIC)
        return settings, before, tripped, records, still, restored, load

    settings, before, tripped, records, still, restored, load = run(bench(scenario))
    assert settings == {
        "malicious_mode": MaliciousMode.TRIP,
        "range_1_low": Decimal("0.3"),
        "range_1_high": Decimal("6"),
        "pf_threshold": Decimal("0.9"),
        "restore_delay": 60,
    }
    assert before.supply is Supply.ON
    assert tripped.supply is Supply.OFF and tripped.power == 0
    assert records["trip_reason"] is TripReason.MALICIOUS_LOAD
    assert records["event_count"] == 1 and records["event_2"] is None and records["restores_today"] == 1
    event = records["event_1"]
    assert event.reason is TripReason.MALICIOUS_LOAD
    assert event.at == START.replace(tzinfo=None)  # the meter's clock runs in UTC on the wire
    kettle_w = Decimal(event.power_kw * 1000) - before.power * 1000
    assert 1500 <= kettle_w <= 2200
    assert still.supply is Supply.OFF
    assert restored.supply is Supply.ON
    assert (
        load["trip_reason"] == "malicious_load" and load["restores_today"] == 1 and load["restore_at"] is None
    )


def test_a_kettle_left_on_uses_up_the_days_restores_and_the_fourth_trip_stays_open_until_a_close():
    async def scenario(b: Bench):
        await b.write(profile_parameters(PROFILE, POLICY))
        await b.op("appliance_on", address=ELECTRIC, appliance="kettle")
        supplies = []
        for _ in range(4):
            b.advance(60)
            supplies.append((await b.poll()).supply)
        records = await b.read("event_count", "restores_today", "event_1", "event_4", "event_5")
        b.advance(3600)
        later = (await b.poll()).supply
        return supplies, records, later, await b.op("load", address=ELECTRIC)

    supplies, records, later, load = run(bench(scenario))
    # each restore brings the kettle back: it trips again at once
    assert supplies == [Supply.OFF] * 4
    assert records["event_count"] == 4 and records["restores_today"] == 3
    assert records["event_1"].at - records["event_4"].at == timedelta(minutes=3)
    assert records["event_5"] is None
    assert later is Supply.OFF and load["restore_at"] is None
    assert [e["reason"] for e in load["events"]] == ["malicious_load"] * 4


def test_the_daily_count_starts_again_on_the_next_local_day():
    async def scenario(b: Bench):
        await b.write(profile_parameters(PROFILE, RestorePolicy(timedelta(seconds=60), 1)))
        await b.op("appliance_on", address=ELECTRIC, appliance="kettle")
        b.advance(60)  # restored once, tripped again: stays open
        await b.op("appliance_off", address=ELECTRIC, appliance="kettle")
        b.advance(15 * 3600)  # 01:01 the next day in Shanghai
        meter = b.site.meter(ELECTRIC)
        meter.close()  # a manager closes it
        await b.op("appliance_on", address=ELECTRIC, appliance="kettle")
        return await b.read("restores_today", "event_count"), (await b.op("load", address=ELECTRIC))[
            "restore_at"
        ]

    records, restore_at = run(bench(scenario))
    assert records == {"restores_today": 1, "event_count": 3}
    assert restore_at is not None


def test_a_laptop_never_trips_and_over_power_trips_with_its_own_reason():
    async def scenario(b: Bench):
        await b.write(profile_parameters(PROFILE, POLICY))
        await b.op("appliance_on", address=ELECTRIC, appliance="laptop")
        laptop = (await b.poll()).supply
        await b.write({"power_limit": Decimal("1.0")})
        await b.op("appliance_on", address=ELECTRIC, appliance="air_conditioner")  # PF below 0.90
        over = await b.read("trip_reason")
        return laptop, over, (await b.poll()).supply

    laptop, over, supply = run(bench(scenario))
    assert laptop is Supply.ON
    assert over["trip_reason"] is TripReason.OVER_POWER and supply is Supply.OFF


def test_a_remote_trip_cancels_a_pending_load_restore_and_a_trip_of_a_closed_relay_is_recorded_as_remote():
    async def scenario(b: Bench):
        await b.write(profile_parameters(PROFILE, POLICY))
        await b.op("appliance_on", address=ELECTRIC, appliance="kettle")
        await b.op("appliance_off", address=ELECTRIC, appliance="kettle")
        meter = b.site.meter(ELECTRIC)
        meter.command_trip()  # the platform cuts it off (its balance): a plain 1A trip
        b.advance(120)
        held = (await b.poll()).supply, await b.read("trip_reason", "event_count")
        meter.command_close()
        meter.command_trip()
        return held, await b.read("trip_reason", "event_count")

    (supply, before), after = run(bench(scenario))
    assert supply is Supply.OFF  # the load restore did not override the cut-off
    assert before == {"trip_reason": TripReason.MALICIOUS_LOAD, "event_count": 1}
    assert after == {"trip_reason": TripReason.REMOTE, "event_count": 2}


def test_the_control_channel_refuses_unknown_appliances_and_water_meters():
    async def scenario(b: Bench):
        bad = await b.control.handle(
            json.dumps({"op": "appliance_on", "address": ELECTRIC, "appliance": "x"})
        )
        water = await b.control.handle(json.dumps({"op": "load", "address": "00000000001101"}))
        off = await b.control.handle(
            json.dumps({"op": "appliance_off", "address": ELECTRIC, "appliance": "iron"})
        )
        return bad, water, off

    bad, water, off = run(bench(scenario))
    assert not bad["ok"] and "unknown appliance" in bad["error"]
    assert not water["ok"] and "water meter" in water["error"]
    assert not off["ok"]


# ------------------------------------------------------------------------------------- scheduled appliances


def appliance_site(**settings):
    config = default_site(latency=0, instant=True, start=START, **settings)
    return config.with_meter(ELECTRIC, appliances=("laptop", "desk_fan", "kettle", "hair_dryer", "tv"))


def test_scheduled_appliances_are_reproducible_and_do_not_depend_on_how_often_the_meter_is_read():
    once, often = Site(appliance_site()), Site(appliance_site())
    plain = Site(default_site(latency=0, instant=True, start=START))
    for site in (once, often, plain):
        site.clock.freeze()
    powers = set()
    for _ in range(96):
        often.clock.advance(1800)
        powers.add(often.meter(ELECTRIC).instantaneous()["power"])
    once.clock.advance(96 * 1800)
    plain.clock.advance(96 * 1800)
    assert once.meter(ELECTRIC).registers() == often.meter(ELECTRIC).registers()
    assert once.meter(ELECTRIC).total > plain.meter(ELECTRIC).total  # the appliances add consumption
    assert len(powers) > 10


def test_meters_without_appliances_or_load_settings_are_unchanged():
    a = Site(default_site(latency=0, instant=True, start=START))
    b = Site(appliance_site())
    for site in (a, b):
        site.clock.freeze()
        site.clock.advance(86400)
    key = "sim-tg-1/1/000000001102"
    assert a.meter(key).registers() == b.meter(key).registers()
    assert a.meter(key).lc.event_count == 0


def test_a_scheduled_forbidden_appliance_trips_a_meter_with_the_rule_on():
    site = Site(appliance_site())
    site.clock.freeze()
    meter = site.meter(ELECTRIC)
    meter.lc.malicious_mode, meter.lc.ranges[0], meter.lc.ranges[1] = 2, 300, 6000
    site.clock.advance(7 * 86400)
    meter.advance()
    reasons = {e[1] for e in meter.lc.events}
    assert meter.lc.event_count > 0 and reasons == {int(TripReason.MALICIOUS_LOAD)}


# ---------------------------------------------------------------------------------------------- state file


def test_the_state_file_keeps_load_control_and_an_old_file_without_it_still_loads():
    async def scenario(b: Bench):
        await b.write(profile_parameters(PROFILE, POLICY))
        await b.op("appliance_on", address=ELECTRIC, appliance="kettle")
        return dump_state(b.site)

    data = run(bench(scenario))
    saved = data["meters"][ELECTRIC]["load"]
    assert saved["malicious_mode"] == 2 and saved["forced"] == ["kettle"] and saved["event_count"] == 1
    config = default_site(latency=0, instant=True, start=START).with_ports(0)
    again = Site(config, state=json.loads(json.dumps(data)))
    meter = again.meter(ELECTRIC)
    assert meter.lc.to_state() == saved
    assert meter.relay_open and meter.restore_at == data["meters"][ELECTRIC]["restore_at"]
    old = json.loads(json.dumps(data))
    for entry in old["meters"].values():
        entry.pop("load", None)
    fresh = Site(config)
    load_state(fresh, old)
    assert fresh.meter(ELECTRIC).lc.event_count == 0 and fresh.meter(ELECTRIC).lc.forced == []


def test_a_garbled_load_entry_is_refused():
    import pytest

    from prepaid_engine.simulator.state import StateError

    site = Site(default_site(latency=0, instant=True, start=START))
    data = dump_state(site)
    data["meters"][ELECTRIC]["load"]["malicious_mode"] = 7
    with pytest.raises(StateError, match="malicious_mode"):
        load_state(Site(default_site(latency=0, instant=True, start=START)), data)


def test_alarm_mode_records_the_kettle_without_tripping_and_a_balance_trip_records_its_reason():
    async def scenario(b: Bench):
        await b.write(
            profile_parameters(dataclasses.replace(PROFILE, malicious_mode=MaliciousMode.ALARM), POLICY)
        )
        await b.op("appliance_on", address=ELECTRIC, appliance="kettle")
        alarmed = (await b.poll()).supply, await b.read("trip_reason", "event_1")
        b.site.meter(ELECTRIC).set_balance(Decimal("0.05"))
        b.advance(600)  # a few hundredths of a kWh at 1.2-0.3 yuan: the balance runs out
        return alarmed, (await b.poll()).supply, await b.read("trip_reason", "event_count")

    (supply, alarm), after, records = run(bench(scenario))
    assert supply is Supply.ON
    assert alarm["trip_reason"] is TripReason.NONE and alarm["event_1"].reason is TripReason.MALICIOUS_LOAD
    assert after is Supply.OFF
    assert records == {"trip_reason": TripReason.BALANCE, "event_count": 2}


def test_more_current_than_the_meter_passes_trips_it_for_over_current():
    site = Site(default_site(latency=0, instant=True, start=START))
    site.clock.freeze()
    meter = site.meter(ELECTRIC)  # 60 A at 220 V
    heaters = ("kettle", "oil_heater", "electric_heater", "induction_hob", "electric_oven", "iron", "hot_pot")
    for code in (*heaters, "hair_dryer", "toaster", "electric_cooker", "immersion_heater", "microwave_oven"):
        meter.appliance_on(code)
    assert meter.relay_open and meter.lc.trip_reason == TripReason.OVER_CURRENT
    assert meter.lc.events[0][2] > 13_200


def test_a_modbus_meter_takes_its_load_parameters_at_the_maps_registers_and_trips_for_a_kettle():
    from prepaid_engine.load.params import decode_parameter, encode_parameter, parameter_spec

    site = Site(default_site(latency=0, instant=True, start=START))
    site.clock.freeze()
    meter = site.meter("sim-mb-1/1/1")  # Acrel DDSY1352
    model = meter.model

    def write(name, value):
        spec = parameter_spec(model, name)
        words = encode_parameter(model, name, value)
        pdu = bytes((16,)) + spec.register.address.to_bytes(2, "big") + len(words).to_bytes(2, "big")
        pdu += bytes((2 * len(words),)) + b"".join(w.to_bytes(2, "big") for w in words)
        return meter.handle_pdu(pdu)

    def read(name):
        spec = parameter_spec(model, name)
        r = spec.register
        reply, _, _ = meter.handle_pdu(
            bytes((3,)) + r.address.to_bytes(2, "big") + r.count.to_bytes(2, "big")
        )
        words = tuple(int.from_bytes(reply[2 + 2 * i : 4 + 2 * i], "big") for i in range(r.count))
        return decode_parameter(model, name, words)

    for name, value in profile_parameters(PROFILE, POLICY).items():
        reply, _, error = write(name, value)
        assert error == (), (name, reply)
    assert read("malicious_mode") is MaliciousMode.TRIP and read("range_1_high") == Decimal(6)
    assert write("trip_reason", TripReason.REMOTE)[2] == ("illegal_data_address",)  # read-only
    assert write("pf_threshold", Decimal("0"))[2] == ("illegal_data_value",)
    meter.appliance_on("kettle")
    assert meter.relay_open
    assert read("trip_reason") is TripReason.MALICIOUS_LOAD and read("event_count") == 1
    assert read("restores_today") == 1
