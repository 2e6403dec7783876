"""Meter-side load events through the real poller: a meter that holds the load-control parameters and is
followed (``MeterSpec.load_events_seen``) has its trip reason, event count and new event records read with
its reading; a model without them, or a meter not followed, costs no extra request."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prepaid_engine.load import LoadProfile, MaliciousMode, PowerRange, RestorePolicy, TripReason
from prepaid_engine.load.params import event_time, new_event_names, profile_parameters, write_steps
from prepaid_engine.poller import Poller, default_link_factory
from prepaid_engine.simulator import Site, default_site
from prepaid_engine.simulator.control import ControlServer
from prepaid_engine.types import CommandKind, MeterCommand, Supply

ELECTRIC = "sim-tg-1/1/000000001101"
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
PROFILE = LoadProfile(
    malicious_mode=MaliciousMode.TRIP, ranges=(PowerRange(300, 6000),), pf_threshold=Decimal("0.90")
)
POLICY = RestorePolicy(timedelta(seconds=60), 3)


class Bench:
    def __init__(self, site: Site):
        self.site = site
        gateways = [dataclasses.replace(g, timeout=0.5) for g in site.site_map().gateway_specs()]
        self.gateway = next(g for g in gateways if g.key == "sim-tg-1")
        self.bus = next(b for b in self.gateway.buses if b.key == "1")
        self.spec = next(m for m in self.bus.meters if m.key == ELECTRIC)
        self.link = default_link_factory(self.gateway, self.bus, "framed", None)
        self.control = ControlServer(site)

    async def write(self, values):
        for step in write_steps(self.spec, values):
            frame = await self.link.exchange(
                step.request, timeout=0.5, expect=step.expect, deframer=step.deframer
            )
            step.parse(frame)

    async def op(self, op, **fields):
        reply = await self.control.handle(json.dumps({"op": op, **fields}))
        assert reply["ok"], reply
        return reply

    async def poll(self, spec=None):
        """Poll the one meter (as ``spec``), returning its reading and how many requests it took."""
        spec = spec or self.spec
        gateway = dataclasses.replace(self.gateway, buses=(dataclasses.replace(self.bus, meters=(spec,)),))
        poller = Poller(trace=True)
        result = await poller.poll([gateway])
        assert not result.errors, result.errors
        (reading,) = result.readings
        return reading, sum(1 for t in result.traces if t.direction == "tx")


async def bench(scenario):
    config = default_site(latency=0, instant=True, start=START).with_ports(0)
    async with Site(config) as site:
        site.clock.freeze()
        b = Bench(site)
        try:
            return await scenario(b)
        finally:
            await b.link.close()


def run(scenario):
    return asyncio.run(bench(scenario))


def test_a_meter_that_trips_itself_for_a_kettle_reports_the_reason_and_the_event_at_the_next_poll():
    async def scenario(b: Bench):
        await b.write(profile_parameters(PROFILE, POLICY))
        followed = dataclasses.replace(b.spec, load_events_seen=0)
        before, _ = await b.poll(followed)
        await b.op("appliance_on", address=ELECTRIC, appliance="kettle")
        tripped, requests = await b.poll(followed)
        seen = dataclasses.replace(b.spec, load_events_seen=tripped.load_event_count)
        again, again_requests = await b.poll(seen)
        plain, plain_requests = await b.poll()
        return before, tripped, requests, again, again_requests, plain, plain_requests

    before, tripped, requests, again, again_requests, plain, plain_requests = run(scenario)
    assert before.trip_reason is TripReason.NONE and before.load_event_count == 0 and before.load_events == ()
    assert tripped.supply is Supply.OFF
    assert tripped.trip_reason is TripReason.MALICIOUS_LOAD and tripped.load_event_count == 1
    (event,) = tripped.load_events
    assert event.reason is TripReason.MALICIOUS_LOAD
    assert event.at == START.replace(tzinfo=None)  # the simulated meters' clocks run in UTC
    assert 1.5 <= event.power_kw <= 2.5
    # the poll read its reading, trip reason and count, and the one new record
    assert requests == plain_requests + 3
    # the count has not moved since: trip reason and count only
    assert again.trip_reason is TripReason.MALICIOUS_LOAD and again.load_events == ()
    assert again_requests == plain_requests + 2
    # a meter not followed: as before, nothing more
    assert plain.trip_reason is None and plain.load_event_count is None and plain.load_events == ()


def test_a_model_without_the_parameters_costs_no_extra_request():
    async def scenario(b: Bench):
        model = dataclasses.replace(b.spec.model, code="no-load-params", parameters=())
        bare = dataclasses.replace(b.spec, model=model)
        return await b.poll(bare), await b.poll(dataclasses.replace(bare, load_events_seen=0))

    (plain, plain_requests), (followed, followed_requests) = run(scenario)
    assert followed_requests == plain_requests
    assert followed.trip_reason is None and followed.load_events == ()
    assert dataclasses.replace(followed, read_at=plain.read_at) == plain


def test_new_event_names_reads_what_moved_at_most_the_records_held():
    model = default_site().site_map().gateway_specs()[0].buses[0].meters[0].model
    assert new_event_names(model, 3, 3) == () and new_event_names(model, 3, None) == ()
    assert new_event_names(model, 3, 5) == ("event_1", "event_2")
    assert len(new_event_names(model, 0, 40)) == 10
    assert new_event_names(model, 7, 2) == ("event_1", "event_2")  # reset: counted from 0


def test_event_time_is_the_meters_clock_zone_in_utc():
    spec = default_site().site_map().gateway_specs()[0].buses[0].meters[0]
    record = type("R", (), {"at": datetime(2025, 3, 3, 10, 0)})()
    assert event_time(spec.model, record) == datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
    shanghai = dataclasses.replace(
        spec.model, options=(*spec.model.options, ("clock_timezone", "Asia/Shanghai"))
    )
    assert event_time(shanghai, record) == datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def test_an_event_record_is_a_load_event_only_for_the_load():
    from prepaid_engine.load import Action, Classification
    from prepaid_engine.load.params import EventRecord, meter_load_event

    model = default_site().site_map().gateway_specs()[0].buses[0].meters[0].model
    at = datetime(2025, 3, 3, 10, 0)
    event = meter_load_event(model, EventRecord(at, TripReason.MALICIOUS_LOAD, Decimal("2.1234")))
    assert event.classification is Classification.MALICIOUS and event.action is Action.TRIP
    assert event.at == at.replace(tzinfo=UTC) and event.level_w == Decimal("2123.4")
    over = meter_load_event(model, EventRecord(at, TripReason.OVER_CURRENT, Decimal(1)))
    assert over.classification is Classification.OVERLOAD
    assert meter_load_event(model, EventRecord(at, TripReason.BALANCE, Decimal(1))) is None
    assert meter_load_event(model, EventRecord(at, TripReason.REMOTE, Decimal(1))) is None


def test_a_modbus_meter_without_event_records_reports_its_trip_as_one_record_of_the_poll():
    async def scenario(b: Bench):
        gateway = next(
            dataclasses.replace(g, timeout=0.5)
            for g in b.site.site_map().gateway_specs()
            if g.key == "sim-mb-1"
        )
        bus = gateway.buses[0]
        spec = dataclasses.replace(next(m for m in bus.meters if m.key == "sim-mb-1/1/1"), load_events_seen=0)
        poller = Poller()
        (done,) = await poller.execute(
            [gateway],
            [
                MeterCommand(
                    "c1",
                    spec.key,
                    CommandKind.SET_LOAD_PARAMETERS,
                    parameters=tuple(profile_parameters(PROFILE, POLICY).items()),
                )
            ],
        )
        assert done.status == "done", done

        async def poll():
            one = dataclasses.replace(gateway, buses=(dataclasses.replace(bus, meters=(spec,)),))
            result = await poller.poll([one])
            assert not result.errors, result.errors
            return result.readings[0]

        await b.op("appliance_on", address=spec.key, appliance="kettle")
        tripped = await poll()
        spec = dataclasses.replace(spec, load_events_seen=tripped.load_event_count)
        again = await poll()
        return tripped, again

    tripped, again = run(scenario)
    assert tripped.supply is Supply.OFF and tripped.trip_reason is TripReason.MALICIOUS_LOAD
    (record,) = tripped.load_events
    assert record.reason is TripReason.MALICIOUS_LOAD and record.power_kw == 0
    assert record.at == tripped.read_at.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    assert again.load_events == () and again.trip_reason is TripReason.MALICIOUS_LOAD
