"""The whole-site simulator, driven from the outside with the engine's codecs over raw sockets.

Every test runs a site on OS-chosen ports (``with_ports(0)``) and, unless it is about timing, with zero
latency and instant byte times, so the suite stays fast. Simulated time is frozen and moved explicitly.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest

from prepaid_engine.errors import ConfigError, MeterError
from prepaid_engine.simulator import (
    FaultRates,
    MeterConfig,
    SimClock,
    Site,
    SiteThread,
    byte_time,
    default_site,
    exchange_time,
    generate_site,
    load_config,
)
from prepaid_engine.simulator.config import BusConfig, GatewayConfig, SiteConfig, config_to_dict
from prepaid_engine.simulator.faults import FaultInjector
from prepaid_engine.simulator.profile import SLOT_MS, Calendar
from prepaid_engine.types import Protocol, Supply, Transport, Utility

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2025, 3, 3, 16, 0, tzinfo=UTC)  # Tuesday 00:00 in Asia/Shanghai
FAST = {"latency": 0.0, "instant": True, "preamble": 0}


def frozen_site(config: SiteConfig, start: datetime = START) -> Site:
    return Site(config.with_ports(0), clock=SimClock(start, frozen=True))


def modbus_config(transport: Transport = Transport.MODBUS_TCP, **settings) -> SiteConfig:
    meters = tuple(
        MeterConfig(str(unit), "acrel_ddsy1352", Protocol.MODBUS, Utility.ELECTRICITY, profile=profile)
        for unit, profile in ((1, "lighting"), (2, "pump"), (3, "residential"))
    )
    gateway = GatewayConfig("mb", transport, (BusConfig("1", 0, 9600, meters),))
    return SiteConfig(name="modbus", gateways=(gateway,), **{**FAST, **settings})


def rtu(unit: int, pdu: bytes) -> bytes:
    from prepaid_engine.codecs.modbus import rtu_frame

    return rtu_frame(unit, pdu)


async def exchange(port: int, data: bytes, reply_len: int, timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.readexactly(reply_len), timeout)
    finally:
        writer.close()


def run(coro):
    return asyncio.run(coro)


# ================================================================================== truth and accumulation


def test_registers_follow_the_day_night_shape_of_the_profile():
    site = frozen_site(default_site(**FAST))
    meter = site.meter("sim-mb-1/1/1")  # lobby lighting: on at night, nearly off by day
    night, midday = [], []
    for day in range(3):
        base = START + timedelta(days=day)  # local midnight
        site.clock.set_time(base + timedelta(hours=2))
        before = meter.total
        site.clock.set_time(base + timedelta(hours=4))
        night.append(meter.total - before)
        site.clock.set_time(base + timedelta(hours=11))
        before = meter.total
        site.clock.set_time(base + timedelta(hours=13))
        midday.append(meter.total - before)
    assert min(night) > 3 * max(midday) > 0


def test_bands_accumulate_by_the_local_tou_schedule():
    site = frozen_site(default_site(**FAST))
    meter = site.meter("sim-tg-1/1/000000001101")
    site.clock.set_time(START + timedelta(hours=1))  # 01:00 local: valley
    before = meter.bands
    site.clock.set_time(START + timedelta(hours=6))  # 06:00 local
    after = meter.bands
    assert after["valley"] > before["valley"]
    assert [after[b] - before[b] for b in ("sharp", "peak", "flat")] == [0, 0, 0]
    site.clock.set_time(START + timedelta(hours=10))  # 10:00-11:00 local: sharp
    before = meter.bands
    site.clock.set_time(START + timedelta(hours=11))
    after = meter.bands
    assert after["sharp"] > before["sharp"]
    assert [after[b] - before[b] for b in ("peak", "flat", "valley")] == [0, 0, 0]
    assert meter.total == sum(meter.bands.values())


def test_reading_often_or_once_gives_the_same_registers_and_balance():
    often, once = frozen_site(default_site(**FAST)), frozen_site(default_site(**FAST))
    addresses = ["000000001203", "00000000001305", "sim-mb-1/1/2"]
    for _ in range(96):
        often.clock.advance(137.5)
        for address in addresses:
            often.meter(address).advance()
    once.clock.advance(96 * 137.5)
    for address in addresses:
        a, b = often.meter(address), once.meter(address)
        assert (a.total, a.bands, a.balance) == (b.total, b.bands, b.balance)
        assert a.total > 0


def test_same_seed_same_readings_other_seed_other_readings():
    a, b = frozen_site(default_site(**FAST)), frozen_site(default_site(**FAST))
    c = frozen_site(default_site(seed=2, **FAST))
    for site in (a, b, c):
        site.clock.advance(86_400)
    totals = [
        [s.meter(addr).total for addr in ("000000001101", "00000000001101", "sim-mb-1/1/1")]
        for s in (a, b, c)
    ]
    assert totals[0] == totals[1]
    assert totals[0] != totals[2]


def test_nothing_accumulates_while_the_relay_is_open_or_the_valve_closed():
    site = frozen_site(default_site(**FAST))
    meter, water = site.meter("000000001101"), site.meter("00000000001101")
    site.clock.advance(3600)
    meter.trip()
    water.set_valve("closed")
    frozen = (meter.total, meter.balance, water.total)
    site.clock.advance(6 * 3600)
    assert (meter.total, meter.balance, water.total) == frozen
    assert meter.instantaneous()["power"] == 0
    meter.close()
    water.set_valve("open")
    site.clock.advance(6 * 3600)
    assert meter.total > frozen[0] and water.total > frozen[2]


def test_meter_side_billing_deducts_register_steps_at_its_prices_and_trips_at_zero():
    site = frozen_site(default_site(**FAST))
    meter = site.meter("000000001102")
    meter.set_prices([Decimal("1.5000"), Decimal("1.0000"), Decimal("0.7500"), Decimal("0.2500")])
    meter.set_balance(Decimal("3.00"))
    bands_before = meter.bands
    for _ in range(7 * 24):
        site.clock.advance(3600)
        if meter.relay_open:
            break
    assert meter.relay_open and meter.supply == Supply.OFF
    spent = sum(
        (meter.bands[b] - bands_before[b]) * p for b, p in zip(bands_before, meter.prices, strict=True)
    )
    # the meter deducts each 0.01 kWh step at its band's price and shows the balance rounded down
    assert (Decimal("3.00") - spent).quantize(Decimal("0.01"), rounding=ROUND_FLOOR) == meter.balance
    assert Decimal("-1.50") < meter.balance <= 0
    frozen = meter.total
    site.clock.advance(86_400)
    assert meter.total == frozen


def test_keep_power_runs_into_overdraft_and_clearing_it_trips():
    site = frozen_site(default_site(**FAST))
    meter = site.meter("000000001103")
    meter.set_balance(Decimal("0.10"))
    assert meter.command_keep_power(True) is None
    assert meter.command_trip() == "other"  # refused while keep power is on
    site.clock.advance(2 * 86_400)
    assert not meter.relay_open and meter.balance < 0
    meter.command_keep_power(False)
    assert meter.relay_open


def test_set_total_and_bands_for_tests():
    site = frozen_site(default_site(**FAST))
    meter = site.meter("000000001104")
    meter.set_total(Decimal("1000.00"), {"sharp": "100", "peak": "200", "flat": "300.5", "valley": "399.5"})
    assert meter.total == Decimal("1000.00")
    assert meter.bands["flat"] == Decimal("300.50")
    with pytest.raises(ConfigError):
        meter.set_total(Decimal("10"), {"flat": "9"})
    water = site.meter("00000000001104")
    water.set_total(Decimal("12.34"))
    assert water.total == Decimal("12.34")


def test_water_settlement_total_is_taken_at_local_month_start():
    site = frozen_site(default_site(**FAST))
    water = site.meter("00000000001201")
    site.clock.set_time(datetime(2025, 3, 31, 15, 59, tzinfo=UTC))  # 23:59 local on the 31st
    at_month_end = water.total
    site.clock.set_time(datetime(2025, 4, 2, tzinfo=UTC))
    assert water.settlement_total == at_month_end or water.settlement_total > at_month_end
    assert water.settlement_total <= water.total
    assert water.settlement_total - at_month_end < Decimal("0.1")


def test_calendar_slots_are_local_hours():
    calendar = Calendar("Asia/Shanghai")
    slot = int(START.timestamp() * 1000) // SLOT_MS
    assert calendar.slot_info(slot) == (0, 3)  # midnight local, valley
    assert calendar.slot_info(slot + 4 * 19) == (19, 0)  # 19:00 local, sharp


def test_clock_freeze_advance_set_time_and_speed():
    ticks = [100.0]
    clock = SimClock(START, speed=60, monotonic=lambda: ticks[0])
    ticks[0] += 2.0
    assert clock.now() == START + timedelta(minutes=2)
    frozen = clock.freeze()
    ticks[0] += 10
    assert clock.now() == frozen
    clock.advance(30)
    assert clock.now() == frozen + timedelta(seconds=30)
    clock.set_time(START + timedelta(days=1))
    assert clock.now() == START + timedelta(days=1)
    with pytest.raises(ConfigError):
        clock.set_time(START)
    clock.resume()
    ticks[0] += 1
    assert clock.now() == START + timedelta(days=1, minutes=1)


# ====================================================================================== DL/T 645 / CJ/T 188


class Client:
    """A raw TCP client that speaks through the codecs: send request bytes, get the first reply frame."""

    def __init__(self, deframer_class):
        self.deframer_class = deframer_class
        self.reader = self.writer = None

    async def connect(self, port: int) -> Client:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        return self

    async def ask(self, data: bytes, timeout: float = 1.0):
        """The reply frame, or ``None`` if nothing complete arrives in time (deframer errors raise)."""
        deframer = self.deframer_class()
        self.writer.write(data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = deframer.next_frame()
            if frame is not None:
                return frame
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                chunk = await asyncio.wait_for(self.reader.read(4096), left)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionResetError("the gateway closed the connection")
            deframer.feed(chunk)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def dlt_site(**settings) -> SiteConfig:
    """Two DL/T 645-2007 prepaid meters (one at the worked-frame address 123456789012) and a basic one."""
    meters = (
        MeterConfig("123456789012", "dlt645_2007_prepaid", Protocol.DLT645_2007, Utility.ELECTRICITY),
        MeterConfig("123456789013", "dlt645_2007_prepaid", Protocol.DLT645_2007, Utility.ELECTRICITY),
        MeterConfig("000000000777", "dlt645_2007_basic", Protocol.DLT645_2007, Utility.ELECTRICITY),
    )
    gateway = GatewayConfig("tg", Transport.TRANSPARENT, (BusConfig("1", 0, 9600, meters),))
    return SiteConfig(name="dlt", gateways=(gateway,), **{**FAST, **settings})


async def _dlt_session(config: SiteConfig, scenario, start: datetime = START):
    from prepaid_engine.codecs import dlt645

    site = frozen_site(config, start)
    site_map = await site.start()
    client = await Client(dlt645.Deframer).connect(site_map.gateways[0].buses[0].port)
    try:
        return await scenario(site, client)
    finally:
        client.close()
        await site.stop()


def test_dlt645_read_reply_is_byte_for_byte_the_worked_frame():
    from prepaid_engine.codecs import dlt645

    async def scenario(site, client):
        meter = site.meter("123456789012")
        meter.set_total(Decimal("12345.67"), {"flat": Decimal("12345.67")})
        frame = await client.ask(bytes.fromhex("FEFEFEFE 68 129078563412 68 11 04 33333433 68 16"))
        assert frame.raw == bytes.fromhex("68 129078563412 68 91 08 33333433 9A785634 88 16")
        assert meter.last_exchange.said == {"total": Decimal("12345.67")}
        block = dlt645.parse_reply(await client.ask(dlt645.read(meter.address, "0001FF00")), meter.address)
        assert dlt645.reading_values(block.di, block.value) == {"total": meter.total, **meter.bands}

    run(_dlt_session(dlt_site(), scenario))


def test_dlt645_prepaid_identifiers_and_status_word_answer_the_truth():
    from prepaid_engine.codecs import dlt645

    async def scenario(site, client):
        meter = site.meter("123456789013")
        meter.set_balance(Decimal("42.50"))
        values = {}
        for di in ("00900200", "03330201", "04000503", "02010100", "02030000", "04050103"):
            reply = dlt645.parse_reply(await client.ask(dlt645.read(meter.address, di)), meter.address, di)
            values[di] = dlt645.decode_value(di, reply.value)
        assert values["00900200"] == Decimal("42.50")
        assert values["03330201"] == 0
        status = dlt645.StatusWord3.from_word(values["04000503"])
        assert (status.relay_open, status.meter_type, status.keep_power) == (False, 2, False)
        assert values["02010100"] == meter.instantaneous()["voltage"]
        assert values["02030000"] == meter.instantaneous()["power"]
        assert values["04050103"] == Decimal("0.6000")
        basic = site.meter("000000000777")  # no meter-side money: the prepaid identifiers do not exist
        with pytest.raises(MeterError) as refused:
            dlt645.parse_reply(await client.ask(dlt645.read(basic.address, "00900200")), basic.address)
        assert refused.value.names == ("no_data",)

    run(_dlt_session(dlt_site(), scenario))


def test_dlt645_relay_commands_move_the_relay_and_status_word_3_follows():
    from prepaid_engine.codecs import dlt645

    code = dlt645.RelayCode

    async def scenario(site, client):
        meter = site.meter("123456789012")
        address = meter.address
        valid = START + timedelta(minutes=10)

        async def relay(n1, **kwargs):
            return dlt645.parse_reply(await client.ask(dlt645.relay(address, n1, valid, **kwargs)), address)

        async def relay_bit() -> bool:
            reply = dlt645.parse_reply(await client.ask(dlt645.read(address, "04000503")), address)
            return dlt645.StatusWord3.from_word(dlt645.decode_value("04000503", reply.value)).relay_open

        await relay(code.TRIP)
        assert await relay_bit() and meter.supply == Supply.OFF
        await relay(code.CLOSE)
        assert not await relay_bit()
        await relay(code.TRIP_AUTO_RESTORE)
        assert await relay_bit()
        site.clock.advance(site.config.auto_restore)
        assert not await relay_bit()
        await relay(code.KEEP_POWER)
        with pytest.raises(MeterError) as refused:
            await relay(code.TRIP)
        assert refused.value.names == ("other",)  # keep power refuses trips
        assert not await relay_bit()
        await relay(code.KEEP_POWER_CLEAR)
        await relay(code.ALARM)
        assert meter.alarm
        with pytest.raises(MeterError) as refused:
            await relay(code.TRIP, password="123456")
        assert refused.value.names == ("unauthorised",)
        site.clock.advance(11 * 60)  # past the command's validity
        with pytest.raises(MeterError) as refused:
            await relay(code.TRIP)
        assert refused.value.names == ("other",)
        assert not meter.relay_open

    run(_dlt_session(dlt_site(), scenario))


@pytest.mark.parametrize("button", ["immediate", "manual"])
def test_dlt645_closing_allowed_waits_for_the_button(button):
    from prepaid_engine.codecs import dlt645

    async def scenario(site, client):
        meter = site.meter("123456789012")
        valid = START + timedelta(minutes=10)
        for n1 in (dlt645.RelayCode.TRIP, dlt645.RelayCode.CLOSE_ALLOWED):
            dlt645.parse_reply(await client.ask(dlt645.relay(meter.address, n1, valid)), meter.address)
        if button == "manual":
            assert meter.relay_open
            assert meter.press_button()
        assert not meter.relay_open

    run(_dlt_session(dlt_site(button=button), scenario))


def test_dlt645_prices_are_written_with_the_password_and_bill_from_then_on():
    from prepaid_engine.codecs import dlt645

    async def scenario(site, client):
        meter = site.meter("123456789013")
        address = meter.address
        reply = await client.ask(dlt645.write(address, "04050103", Decimal("0.8123")))
        assert isinstance(dlt645.parse_reply(reply, address), dlt645.AckReply)
        assert meter.prices[2] == Decimal("0.8123")
        with pytest.raises(MeterError) as refused:
            dlt645.parse_reply(
                await client.ask(dlt645.write(address, "04050103", Decimal(1), password="999999")), address
            )
        assert refused.value.names == ("unauthorised",)
        assert meter.prices[2] == Decimal("0.8123")
        reply = dlt645.parse_reply(await client.ask(dlt645.read(address, "04050103")), address, "04050103")
        assert dlt645.decode_value("04050103", reply.value) == Decimal("0.8123")

    run(_dlt_session(dlt_site(), scenario))


def test_dlt645_recharge_applies_once_and_refuses_replays_jumps_bad_macs_and_hoarding():
    from prepaid_engine import security
    from prepaid_engine.codecs import dlt645
    from prepaid_engine.errors import DuplicateRecharge, RechargeRefused
    from prepaid_engine.simulator import DEFAULT_MASTER_KEY

    async def scenario(site, client):
        meter = site.meter("123456789012")
        address = meter.address

        async def recharge(amount: str, count: int, key: bytes = DEFAULT_MASTER_KEY):
            order = security.RechargeOrder(address, Decimal(amount), count)
            frame = await client.ask(dlt645.recharge(address, security.build_recharge(key, order)))
            return dlt645.parse_reply(frame, address)

        await recharge("50.00", 1)
        assert (meter.balance, meter.purchase_count) == (Decimal("150.00"), 1)
        with pytest.raises(DuplicateRecharge):
            await recharge("50.00", 1)  # the same order again: a replay
        with pytest.raises(RechargeRefused) as refused:
            await recharge("20.00", 3)
        assert refused.value.names == ("recharge_count_error",)
        with pytest.raises(RechargeRefused) as refused:
            await recharge("20.00", 2, key=bytes(range(16)))
        assert refused.value.names == ("authentication_failed",)
        with pytest.raises(RechargeRefused) as refused:
            await recharge("99999.00", 2)
        assert refused.value.names == ("over_hoarding_limit",)
        assert (meter.balance, meter.purchase_count) == (Decimal("150.00"), 1)
        await recharge("20.00", 2)
        assert (meter.balance, meter.purchase_count) == (Decimal("170.00"), 2)
        reply = dlt645.parse_reply(await client.ask(dlt645.read(address, "03330201")), address)
        assert dlt645.decode_value("03330201", reply.value) == 2

    run(_dlt_session(dlt_site(), scenario))


def test_a_recharge_restores_a_meter_that_tripped_itself_at_zero():
    from prepaid_engine import security
    from prepaid_engine.codecs import dlt645
    from prepaid_engine.simulator import DEFAULT_MASTER_KEY

    async def scenario(site, client):
        meter = site.meter("123456789012")
        meter.set_balance(Decimal("0.05"))
        site.clock.advance(86_400)
        assert meter.relay_open and meter.balance <= 0
        order = security.RechargeOrder(meter.address, Decimal("10.00"), 1)
        frame = await client.ask(
            dlt645.recharge(meter.address, security.build_recharge(DEFAULT_MASTER_KEY, order))
        )
        dlt645.parse_reply(frame, meter.address)
        assert not meter.relay_open and meter.balance > Decimal("9.90")

    run(_dlt_session(dlt_site(), scenario))


def test_dlt645_broadcast_wildcard_and_unknown_addresses():
    from prepaid_engine.codecs import dlt645

    async def scenario(site, client):
        when = START + timedelta(hours=5)
        assert await client.ask(dlt645.broadcast_time(when), timeout=0.2) is None
        meter = site.meter("123456789012")
        reply = dlt645.parse_reply(await client.ask(dlt645.read(meter.address, "04000102")), meter.address)
        assert dlt645.decode_value("04000102", reply.value) == when.time()
        assert await client.ask(dlt645.read("999999999998", "00010000"), timeout=0.2) is None
        # three meters on the bus: a wildcard read-address would collide, nobody is heard
        assert await client.ask(dlt645.read_address(), timeout=0.2) is None
        short = dlt645.parse_reply(await client.ask(dlt645.read("AAAAAA000777", "00010000")), "AAAAAA000777")
        assert short.address == "000000000777"

    run(_dlt_session(dlt_site(), scenario))


def test_dlt645_1997_meter_answers_its_two_byte_identifiers():
    from prepaid_engine.codecs import dlt645, dlt645_1997

    meters = (MeterConfig("000000001997", "dlt645_1997", Protocol.DLT645_1997, Utility.ELECTRICITY),)
    config = SiteConfig(
        gateways=(GatewayConfig("tg", Transport.TRANSPARENT, (BusConfig("1", 0, 1200, meters),)),), **FAST
    )

    async def scenario(site, client):
        meter = site.meter("000000001997")
        address = meter.address
        reply = dlt645_1997.parse_reply(await client.ask(dlt645_1997.read(address, "901F")), address, "901F")
        assert dlt645_1997.reading_values("901F", reply.value) == {"total": meter.total, **meter.bands}
        reply = dlt645_1997.parse_reply(await client.ask(dlt645_1997.read(address, "B611")), address)
        assert dlt645_1997.decode_value("B611", reply.value) == int(meter.instantaneous()["voltage"])
        with pytest.raises(MeterError):
            dlt645_1997.parse_reply(await client.ask(dlt645_1997.read(address, "9999")), address)
        assert (
            await client.ask(dlt645.read(address, "00010000"), timeout=0.2) is None
        )  # 2007 request: silence

    run(_dlt_session(config, scenario))


def test_cjt188_flow_reply_is_byte_correct_and_the_valve_stops_the_flow():
    from prepaid_engine.codecs import cjt188

    async def scenario():
        site = frozen_site(default_site(**FAST))
        site_map = await site.start()
        client = await Client(cjt188.Deframer).connect(site_map.gateways[0].buses[1].port)
        try:
            meter = site.meter("00000000001203")
            meter.set_total(Decimal("123.45"))
            meter.set_battery_low(True)
            frame = await client.ask(cjt188.read(meter.address))
            settlement = cjt188._flow_bytes(meter.settlement_total, 0x2C)
            body = (
                bytes.fromhex("68 10 03 12 00 00 00 00 00 81 16 90 1F 00 45 23 01 00 2C")
                + settlement
                + bytes.fromhex(
                    "00 00 16 03 03 25 20 04 00"
                )  # 16:00:00 on 2025-03-03 (UTC clocks), battery low
            )
            assert frame.raw == body + bytes((sum(body) & 0xFF, 0x16))
            reply = cjt188.parse_reply(await client.ask(cjt188.valve(meter.address, False)), meter.address)
            assert cjt188.reading_values(reply)["supply"] == Supply.OFF
            site.clock.advance(86_400)
            assert meter.total == Decimal("123.45")
            cjt188.parse_reply(await client.ask(cjt188.valve(meter.address, True)), meter.address)
            site.clock.advance(86_400)
            assert meter.total > Decimal("123.45")
            reply = cjt188.parse_reply(await client.ask(cjt188.read(meter.address)), meter.address)
            assert cjt188.reading_values(reply) == {
                "total": meter.total,
                "supply": Supply.ON,
                "battery_low": True,
            }
            assert await client.ask(cjt188.read(meter.address, meter_type=0x30), timeout=0.2) is None
        finally:
            client.close()
            await site.stop()

    run(scenario())


# ============================================================================ timing, faults, dead things


def test_dlt645_bus_serialises_requests_and_never_answers_faster_than_the_wire():
    from prepaid_engine.codecs import dlt645

    latency = 0.02
    config = dlt_site(latency=latency, instant=False, preamble=2)

    async def scenario():
        site = frozen_site(config)
        site_map = await site.start()
        port = site_map.gateways[0].buses[0].port
        addresses = ["123456789012", "123456789013", "000000000777"]
        requests = [dlt645.read(a, "0001FF00") for a in addresses]
        reply_len = 2 + 12 + 4 + 20
        try:
            started = time.perf_counter()
            results = await asyncio.gather(*(_timed(port, r, reply_len) for r in requests))
            elapsed = time.perf_counter() - started
        finally:
            await site.stop()
        floor = exchange_time(len(requests[0]), reply_len, 9600, latency)
        return floor, [rtt for rtt, _ in results], elapsed

    floor, rtts, elapsed = run(scenario())
    assert floor == pytest.approx((20 + 38) * 11 / 9600 + latency)
    assert min(rtts) / floor >= 0.999
    assert max(rtts) / (3 * floor) >= 0.999  # one at a time: the last reply waited for the other two
    assert elapsed / (3 * floor) >= 0.999


def _fault_run(rates: FaultRates, requests: int = 200) -> tuple[collections.Counter, list[str], dict]:
    """Send ``requests`` reads one at a time; classify what came back. Returns (site counters, classes,
    values wrongly accepted)."""
    from prepaid_engine.codecs import dlt645
    from prepaid_engine.errors import AddressError, ChecksumError, FrameError

    async def scenario():
        site = frozen_site(dlt_site(faults=rates))
        site_map = await site.start()
        port = site_map.gateways[0].buses[0].port
        addresses = ["123456789012", "123456789013"]
        classes, wrong = [], {}
        client = await Client(dlt645.Deframer).connect(port)
        try:
            for i in range(requests):
                address = addresses[i % 2]
                try:
                    frame = await client.ask(dlt645.read(address, "0001FF00"), timeout=0.05)
                    if frame is None:  # reconnect, as the poller does, so a late reply cannot be misread
                        classes.append("silence")
                        client.close()
                        client = await Client(dlt645.Deframer).connect(port)
                        continue
                    reply = dlt645.parse_reply(frame, address, "0001FF00")
                except ChecksumError:
                    classes.append("checksum")
                except AddressError:
                    classes.append("address")
                except FrameError:
                    classes.append("frame")
                except ConnectionResetError:
                    classes.append("disconnect")
                    client.close()
                    client = await Client(dlt645.Deframer).connect(port)
                else:
                    values = dlt645.reading_values(reply.di, reply.value)
                    truth = {"total": site.meter(address).total, **site.meter(address).bands}
                    classes.append("ok")
                    if values != truth:
                        wrong[i] = values
        finally:
            client.close()
            await site.stop()
        return collections.Counter(site.counters), classes, wrong

    return run(scenario())


def test_faults_come_at_the_configured_rates_are_seeded_and_never_carry_a_wrong_value():
    rates = FaultRates(timeout=0.1, garbled=0.1, bad_checksum=0.1, wrong_address=0.1, disconnect=0.05)
    counters, classes, wrong = _fault_run(rates)
    assert wrong == {}
    assert counters["requests"] == 200
    for kind in ("timeout", "garbled", "bad_checksum", "wrong_address", "disconnect"):
        expected = getattr(rates, kind) * 200
        assert 0.4 * expected <= counters[kind] <= 1.6 * expected, (kind, counters[kind])
    seen = collections.Counter(classes)
    assert seen["ok"] == counters["answered"]
    assert seen["address"] == counters["wrong_address"]
    assert seen["disconnect"] == counters["disconnect"]
    # a bad checksum is a checksum error; garbage is a checksum error or no frame at all
    assert seen["checksum"] >= counters["bad_checksum"]
    assert seen["silence"] + seen["checksum"] + seen["frame"] == (
        counters["timeout"] + counters["garbled"] + counters["bad_checksum"]
    )
    again = _fault_run(rates)
    assert (again[0], again[1]) == (counters, classes)  # the same seed gives the same faults


def test_a_lost_reply_to_a_trip_still_trips():
    from prepaid_engine.codecs import dlt645

    async def scenario(site, client):
        meter = site.meter("123456789012")
        site.set_faults(FaultRates(timeout=1.0))
        frame = await client.ask(
            dlt645.relay(meter.address, dlt645.RelayCode.TRIP, START + timedelta(minutes=5)), 0.1
        )
        assert frame is None
        assert meter.relay_open
        assert meter.last_exchange.fault == "timeout"

    run(_dlt_session(dlt_site(), scenario))


def test_dead_meters_are_chosen_by_the_seed_and_never_answer():
    config = generate_site(1, 1, 40, base_port=0, faults=FaultRates(dead_meters=0.25), **FAST)
    dead = sorted(address for address, m in frozen_site(config).meters() if m.dead)
    assert dead == sorted(address for address, m in frozen_site(config).meters() if m.dead)
    assert 4 <= len(dead) <= 18

    from prepaid_engine.codecs import dlt645

    async def scenario():
        site = frozen_site(config)
        site_map = await site.start()
        client = await Client(dlt645.Deframer).connect(site_map.gateways[0].buses[0].port)
        try:
            answered = {}
            for meter in site_map.gateways[0].buses[0].meters:
                answered[meter.address] = (
                    await client.ask(dlt645.read(meter.address, "00010000"), 0.05) is not None
                )
        finally:
            client.close()
            await site.stop()
        return answered

    answered = run(scenario())
    assert sorted(f"gen-1/1/{a}" for a, ok in answered.items() if not ok) == dead


@pytest.mark.parametrize("mode", ["silent", "refused"])
def test_a_killed_gateway_goes_dead_and_comes_back(mode):
    from prepaid_engine.codecs import dlt645

    async def scenario():
        site = frozen_site(dlt_site())
        site_map = await site.start()
        port = site_map.gateways[0].buses[0].port
        request = dlt645.read("123456789012", "00010000")
        try:
            await site.kill_gateway("tg", mode)
            if mode == "silent":
                client = await Client(dlt645.Deframer).connect(port)
                assert await client.ask(request, 0.1) is None
                client.close()
            else:
                with pytest.raises(OSError):
                    await Client(dlt645.Deframer).connect(port)
            await site.revive_gateway("tg")
            client = await Client(dlt645.Deframer).connect(port)
            assert await client.ask(request) is not None
            client.close()
        finally:
            await site.stop()

    run(scenario())


# ================================================================================================ Modbus


def test_modbus_tcp_gateway_answers_pymodbus_from_the_register_map():
    from pymodbus.client import AsyncModbusTcpClient

    from prepaid_engine.codecs import modbus

    async def scenario():
        site = frozen_site(modbus_config())
        site_map = await site.start()
        port = site_map.gateways[0].buses[0].port
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await client.connect()
        try:
            meter = site.meter("1")
            model = meter.model
            (block,) = modbus.read_plan(model)
            reply = await client.read_holding_registers(block.address, count=block.count, device_id=1)
            values = modbus.decode(model, {block: reply.registers})
            assert values["total"] == meter.total
            assert {k: values[k] for k in ("sharp", "peak", "flat", "valley")} == meter.bands
            assert values["supply"] == Supply.ON
            assert values == meter.last_exchange.said
            trip = modbus.command_write(model, "trip")
            await client.write_registers(trip.address, list(trip.values), device_id=1)
            assert meter.relay_open
            meter.set_keep_power(True)
            close = modbus.command_write(model, "close")
            await client.write_registers(close.address, list(close.values), device_id=1)
            refused = await client.write_registers(trip.address, list(trip.values), device_id=1)
            assert refused.isError() and refused.exception_code == 3
            assert not meter.relay_open
            bad = await client.read_holding_registers(0x4000, count=2, device_id=1)
            assert bad.isError() and bad.exception_code == 2
        finally:
            client.close()
            await site.stop()

    run(scenario())


def test_modbus_rtu_over_a_transparent_port_with_crc():
    async def scenario():
        site = frozen_site(modbus_config(Transport.TRANSPARENT))
        site_map = await site.start()
        port = site_map.gateways[0].buses[0].port
        try:
            reply = await exchange(port, rtu(2, bytes.fromhex("0300000002")), 9)
            total = int.from_bytes(reply[3:7], "big")
            assert reply == rtu(2, bytes.fromhex("0304") + total.to_bytes(4, "big"))
            assert Decimal(total).scaleb(-2) == site.meter("2").total
        finally:
            await site.stop()

    run(scenario())


def test_modbus_bus_answers_one_request_at_a_time_no_faster_than_the_byte_time_floor():
    latency = 0.03
    config = modbus_config(Transport.TRANSPARENT, latency=latency, instant=False)

    async def scenario():
        site = frozen_site(config)
        site_map = await site.start()
        port = site_map.gateways[0].buses[0].port
        request = rtu(1, bytes.fromhex("0300000002"))
        floor = exchange_time(len(request), 9, 9600, latency)
        try:
            started = time.perf_counter()
            results = await asyncio.gather(*(_timed(port, request, 9) for _ in range(3)))
            elapsed = time.perf_counter() - started
        finally:
            await site.stop()
        return floor, results, elapsed

    floor, results, elapsed = run(scenario())
    assert floor == pytest.approx(17 * 11 / 9600 + latency)
    assert min(rtt for rtt, _ in results) / floor >= 0.999
    assert sorted(rtt for rtt, _ in results)[-1] / (3 * floor) >= 0.999  # serialised: the last waited for two
    assert elapsed / (3 * floor) >= 0.999


async def _timed(port: int, data: bytes, reply_len: int) -> tuple[float, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        writer.write(data)
        reply = await asyncio.wait_for(reader.readexactly(reply_len), 5)
        return time.perf_counter() - started, reply
    finally:
        writer.close()


def test_byte_time_is_eleven_bits_per_byte():
    assert byte_time(9600) == pytest.approx(0.0011458, rel=1e-4)
    assert byte_time(2400) == pytest.approx(0.0045833, rel=1e-4)
    assert exchange_time(20, 20, 9600, 0.06) == pytest.approx(40 * 11 / 9600 + 0.06)


# ================================================================================================ faults


def test_fault_dice_follow_the_configured_rates_and_the_seed():
    import random

    rates = FaultRates(timeout=0.1, garbled=0.05, bad_checksum=0.05, wrong_address=0.02, disconnect=0.03)
    dice = FaultInjector(rates, random.Random(7))
    counts = collections.Counter(str(dice.pick()) for _ in range(20_000))
    again = FaultInjector(rates, random.Random(7))
    assert collections.Counter(str(again.pick()) for _ in range(20_000)) == counts
    for kind in ("timeout", "garbled", "bad_checksum", "wrong_address", "disconnect"):
        expected = getattr(rates, kind) * 20_000
        assert abs(counts[kind] - expected) < 0.15 * expected + 30, kind
    assert counts["None"] == pytest.approx(0.75 * 20_000, rel=0.05)
    assert FaultRates.uniform(0.2).total == pytest.approx(0.2)
    with pytest.raises(ConfigError):
        FaultRates(timeout=0.8, garbled=0.5)


def test_garbled_bytes_never_hold_a_valid_frame():
    import random

    from prepaid_engine.simulator.gateways import RtuWire

    dice = FaultInjector(FaultRates(garbled=1.0), random.Random(3))
    wire = RtuWire([])
    reply = rtu(1, bytes.fromhex("0304000012D6"))
    for _ in range(2000):
        assert not wire.has_frame(dice.garble(reply, wire.has_frame))


# ================================================================================================ config


def test_generated_site_numbers_ports_and_addresses():
    config = generate_site(3, 4, 5, base_port=20000)
    site_map = config.site_map()
    assert [b.port for g in site_map.gateways for b in g.buses] == list(range(20000, 20012))
    assert site_map.meter_count == 60
    assert site_map.gateways[2].buses[3].meters[4].address == "000030400005"
    water = generate_site(1, 1, 2, protocol="cjt188", base_port=20000).site_map()
    assert water.gateways[0].buses[0].meters[1].address == "00000101000002"
    assert water.gateways[0].buses[0].baud == 2400
    modbus = generate_site(1, 2, 3, protocol="modbus", base_port=0)
    assert modbus.gateways[0].transport == Transport.MODBUS_TCP
    with pytest.raises(ConfigError):
        generate_site(1, 1, 1, protocol="cjt188", model="dlt645_2007_prepaid")


def test_config_file_round_trip_keeps_simulator_settings(tmp_path):
    config = default_site(latency=0.01, faults=FaultRates(timeout=0.2), start=START, speed=60.0)
    path = tmp_path / "site.json"
    path.write_text(json.dumps(config_to_dict(config)))
    assert load_config(path) == config
    with pytest.raises(ConfigError, match="unknown simulator settings"):
        load_config({**config_to_dict(config), "simulator": {"warp": 9}})


def test_bus_mixing_framings_is_refused():
    meters = (
        MeterConfig("000000000001", "dlt645_2007_basic", Protocol.DLT645_2007, Utility.ELECTRICITY),
        MeterConfig("00000000000001", "cjt188_water", Protocol.CJT188, Utility.WATER),
    )
    with pytest.raises(ConfigError, match="one framing"):
        SiteConfig(gateways=(GatewayConfig("g", Transport.TRANSPARENT, (BusConfig("1", 0, 9600, meters),)),))


# =========================================================================================== site thread


def test_site_thread_serves_and_reads_truth_from_another_thread():
    with SiteThread(replace(modbus_config(Transport.TRANSPARENT), start=START)) as thread:
        site_map = thread.site.site_map()
        port = site_map.gateways[0].buses[0].port
        assert port > 0
        truth = thread.call(lambda site: site.meter("3").total)

        async def ask():
            return await exchange(port, rtu(3, bytes.fromhex("0300000002")), 9)

        reply = asyncio.run(ask())
        assert Decimal(int.from_bytes(reply[3:7], "big")).scaleb(-2) >= truth
        thread.call(lambda site: site.meter("3").trip())
        assert thread.call(lambda site: site.meter("3").supply) == Supply.OFF


# ============================================================================================= the CLI


@pytest.mark.parametrize(
    ("flags", "meters"),
    [
        ([], 50),  # the demo site
        (["--gateways", "2", "--buses", "2", "--meters", "3", "--protocol", "modbus"], 12),
        (
            [
                "--gateways",
                "1",
                "--buses",
                "2",
                "--meters",
                "3",
                "--protocol",
                "cjt188",
                "--fault-rate",
                "0.2",
            ],
            6,
        ),
    ],
)
def test_cli_prints_a_site_map_and_stops_on_sigterm(flags, meters, tmp_path):
    from prepaid_engine.sitemap import load_site_map

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out_file = tmp_path / "site.json"
    args = [sys.executable, "-m", "prepaid_engine.simulator", *flags, "--base-port", "0", "--baud", "instant"]
    args += ["--latency", "0", "--site-map-out", str(out_file)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        while True:
            line = proc.stderr.readline()
            assert line, "the simulator exited before it was ready"
            if line.strip() == "# simulator ready":
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    site_map = load_site_map(out)
    assert site_map.meter_count == meters
    assert all(b.port > 0 for g in site_map.gateways for b in g.buses)
    assert load_site_map(out_file.read_text()) == site_map
    if not flags:
        expected = default_site().site_map().to_dict()
        for gateway in expected["gateways"]:
            for bus in gateway["buses"]:
                bus["port"] = site_map.gateway(gateway["key"]).buses[int(bus["key"]) - 1].port
        assert site_map.to_dict() == expected
    assert "simulator stopped" in err


def test_cli_help_documents_every_flag():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "prepaid_engine.simulator", "--help"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0
    for flag in (
        "--config",
        "--gateways",
        "--seed",
        "--speed",
        "--latency",
        "--fault-rate",
        "--timeouts",
        "--garbled",
        "--host",
        "--base-port",
        "--master-key",
        "--site-map-out",
        "--baud",
    ):
        assert flag in result.stdout
