"""Anomaly detection end to end: simulated meters -> the poll -> ingestion and settlement -> the daily job.

The site: 126 DL/T 645-2007 electricity meters of the engine's simulator on four buses of one transparent
gateway, each on an occupied unit (an active tenancy and an open prepaid account): 120 billed by the
platform, 6 billing themselves (meter-side billing, holding their balance). Five of the platform meters are
the sub-meters of a master meter (a line-loss apportionment rule). The simulated meters draw the simulator's
residential load profile (seeded, 15-minute slots) and report tamper data (reverse energy, cover-open and
magnetic counters).

How the readings travel: the simulator's meters are driven **in-process**, not over TCP. The Odoo poll
(:meth:`prepaid.gateway._poll`, what the poll cron runs) builds the engine's gateway spec from the records and
hands it to the engine's real :class:`~prepaid_engine.poller.Poller` and adapters; only the link is replaced
(:class:`WireLink`): each request's bytes go to the simulated bus's wire (the simulator's own request parser
and meters, the code its TCP servers run), the reply bytes come back through the adapter's deframer and
parser. So the frames are the real ones and the readings reach ``prepaid.meter.reading._ingest`` (and the
settlement right after it) as in production, without sockets or wall-clock timeouts. The master meter is not
a simulated meter (the simulator has no meter that sums others): it reads what its sub-meters truly drew, from
a twin site of the same seed with no fault injected, plus 3 % technical loss, and its readings are ingested
through the same ``_ingest``.

Simulated time: a poll every day at 15:55 UTC (23:55 in Asia/Shanghai, the property's zone, so that each
interval falls on one local day) for 32 days, and the daily detection job ten minutes after each poll (just
after local midnight) once two weeks of history exist.

The faults go through the simulator's control ops (``ControlServer``: bypass, stuck, tamper, kill_meter,
appliance_on/off); a meter-side balance drift has no control op and is the meter's ``set_balance``.
"""

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest.mock import patch

from odoo import Command
from odoo.tests import tagged

from prepaid_engine.errors import LinkTimeout
from prepaid_engine.poller import Poller
from prepaid_engine.simulator import BusConfig, GatewayConfig, MeterConfig, SimClock, Site, SiteConfig
from prepaid_engine.simulator.config import generated_address
from prepaid_engine.simulator.control import ControlServer
from prepaid_engine.types import Protocol, Reading, Transport, Utility

from .common import BillingCommon

_logger = logging.getLogger(__name__)

FIRST_POLL = datetime(2026, 2, 17, 15, 55, tzinfo=UTC)
POLLS = 32  # daily polls: FIRST_POLL .. FIRST_POLL + 31 days
DETECT_AFTER = timedelta(minutes=10)  # the nightly job, just after local midnight
FIRST_DETECTION = 15  # the job runs after poll 15 onwards (14 days of history for spikes)
BUSES, PER_BUS = 4, 30  # platform-billed meters
METER_SIDE = 6  # meter-side billing meters (bus 4)
SUB_METERS = 5
TECHNICAL_LOSS = Decimal("1.03")
SEED = 13
DETECTED = ("zero_consumption", "consumption_spike", "tamper", "not_read", "line_loss", "balance_mismatch")
TAMPER_READS = ["00020000", "03300D00", "03350000"]


class WireLink:
    """A framed link that hands each request's bytes to a simulated bus's wire in this process: the
    simulator's request parser, its meter answering, its reply bytes through the adapter's deframer. A meter
    that does not answer (dead) is a :class:`LinkTimeout` at once."""

    def __init__(self, wire):
        self.wire = wire
        self.parse = wire.new_parser()
        self.connected = False
        self.trace = None

    async def connect(self):
        self.connected = True

    async def close(self):
        self.connected = False

    async def exchange(self, request, *, timeout, expect=None, deframer=None):
        for parsed in self.parse(request):
            outcome = self.wire.answer(parsed)
            if outcome is None:
                continue
            reader = (deframer or self.wire.deframer_class)()
            reader.feed(outcome.reply)
            while (frame := reader.next_frame()) is not None:
                if expect is None or expect(frame):
                    return frame
        raise LinkTimeout("no reply (simulated bus)")


def _model_definition(code):
    """The engine's built-in model ``code``, also reading the tamper identifiers."""
    with open(_engine_model_path(code)) as handle:
        definition = json.load(handle)
    definition["code"] = f"e2e_{code}"
    definition["reads"] = definition["reads"] + TAMPER_READS
    return json.dumps(definition)


def _engine_model_path(code):
    from pathlib import Path

    import prepaid_engine

    return Path(prepaid_engine.__file__).parent / "data" / "models" / f"{code}.json"


@tagged("post_install", "-at_install")
class TestAnomalyEndToEnd(BillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = cls.env["res.users"].create(
            {
                "name": "Building Manager",
                "login": "anomaly.e2e.manager",
                "company_id": cls.company.id,
                "company_ids": [Command.set(cls.company.ids)],
                "groups_id": [Command.set([cls.env.ref("prepaid_base.group_prepaid_manager").id])],
            }
        )
        cls.building.anomaly_manager_id = cls.manager
        cls._build_site_config()
        cls._build_records()

    # -- the site --------------------------------------------------------------------------------------------
    @classmethod
    def _build_site_config(cls):
        buses = []
        for b in range(1, BUSES + 1):
            meters = [
                MeterConfig(
                    generated_address(Protocol.DLT645_2007, 1, b, m),
                    "dlt645_2007_basic",
                    Protocol.DLT645_2007,
                    Utility.ELECTRICITY,
                    billing=False,
                )
                for m in range(1, PER_BUS + 1)
            ]
            if b == BUSES:
                meters += [
                    MeterConfig(
                        generated_address(Protocol.DLT645_2007, 1, b, PER_BUS + m),
                        "dlt645_2007_prepaid",
                        Protocol.DLT645_2007,
                        Utility.ELECTRICITY,
                        billing=True,
                        # two tenants run out of money mid-month and their meters trip themselves: a cut
                        # supply is not a stuck register
                        balance=Decimal("60.00") if m <= 2 else Decimal("2000.00"),
                    )
                    for m in range(1, METER_SIDE + 1)
                ]
            buses.append(BusConfig(str(b), 0, meters=tuple(meters)))
        cls.sim_config = SiteConfig(
            name="anomaly-e2e",
            seed=SEED,
            gateways=(GatewayConfig(key="e2e", transport=Transport.TRANSPARENT, buses=tuple(buses)),),
            instant=True,
            latency=0.0,
            preamble=0,
            # the meter-side meters were sent the building's flat tariff as their four prices
            prices=(Decimal("1.0000"),) * 4,
        )
        first_bus = buses[0].meters
        cls.sub_configs = first_bus[:SUB_METERS]
        cls.truth_config = replace(
            cls.sim_config,
            gateways=(
                GatewayConfig(
                    key="truth",
                    transport=Transport.TRANSPARENT,
                    buses=(BusConfig("1", 0, meters=cls.sub_configs),),
                ),
            ),
        )

    @classmethod
    def _build_records(cls):
        Model = cls.env["prepaid.meter.model"]
        model_basic, model_prepaid = Model.create(
            [
                {
                    "name": f"E2E {code}",
                    "code": f"e2e_{code}",
                    "protocol": "dlt645_2007",
                    "utility": "electricity",
                    "definition": _model_definition(code),
                }
                for code in ("dlt645_2007_basic", "dlt645_2007_prepaid")
            ]
        )
        cls.env["prepaid.gateway"].search([]).active = False
        cls.gateway = cls.env["prepaid.gateway"].create(
            {
                "name": "E2E transparent gateway",
                "code": "e2e",
                "host": "127.0.0.1",
                "transport": "transparent",
                "property_id": cls.building.id,
                "timeout": 0.5,
                "retries": 0,
                "connect_timeout": 1.0,
                "bus_ids": [Command.create({"name": str(b), "port": 16000 + b}) for b in range(1, BUSES + 1)],
            }
        )
        bus_of = {bus.name: bus for bus in cls.gateway.bus_ids}
        configs = [(bus.key, m) for bus in cls.sim_config.gateways[0].buses for m in bus.meters]
        n = len(configs)
        units = cls.env["prepaid.property"].create(
            [
                {"name": f"E-{i:03d}", "code": f"E-{i:03d}", "kind": "unit", "parent_id": cls.floor.id}
                for i in range(n)
            ]
        )
        partners = cls.env["res.partner"].create([{"name": f"Tenant {i:03d}"} for i in range(n)])
        accounts = cls.env["prepaid.account"].create(
            [
                {"partner_id": p.id, "unit_ids": [Command.set(u.ids)]}
                for p, u in zip(partners, units, strict=True)
            ]
        )
        accounts.action_open()
        tenancies = cls.env["prepaid.tenancy"].create(
            [
                {
                    "partner_id": a.partner_id.id,
                    "unit_ids": [Command.set(a.unit_ids.ids)],
                    "account_id": a.id,
                    "date_start": date(2026, 1, 1),
                }
                for a in accounts
            ]
        )
        tenancies.action_activate()
        meter_side = {m.address for _bus, m in configs if m.billing}
        meters = cls.env["prepaid.meter"].create(
            [
                {
                    "name": f"E2E-{m.address}",
                    "utility": "electricity",
                    "model_id": (model_prepaid if m.address in meter_side else model_basic).id,
                    "unit_id": u.id,
                    "gateway_id": cls.gateway.id,
                    "bus_id": bus_of[bus_key].id,
                    "address": m.address,
                    "billing_mode": "meter" if m.address in meter_side else "platform",
                }
                for (bus_key, m), u in zip(configs, units, strict=True)
            ]
        )
        cls.meters = meters
        cls.meter_of = {m.address: m for m in meters}
        cls.platform_meters = meters.filtered(lambda m: m.billing_mode == "platform")
        cls.meter_side_meters = meters - cls.platform_meters
        # platform accounts were paid in ahead (no alert, no cut-off during the month); meter-side accounts
        # hold nothing: their money is on the meters
        cls.env["prepaid.account"]._post_ledger(
            [
                {
                    "account_id": m.account_id.id,
                    "kind": "adjustment",
                    "amount": 5000.0,
                    "idempotency_key": f"e2e-{m.id}",
                }
                for m in cls.platform_meters
            ]
        )
        # the master meter is the building's incoming meter, behind its own gateway (read apart: see the
        # module docstring), so that its anomalies go to the building's manager too
        master_gateway = cls.env["prepaid.gateway"].create(
            {
                "name": "E2E incoming meter gateway",
                "code": "e2e-master",
                "host": "127.0.0.1",
                "transport": "modbus_tcp",
                "property_id": cls.building.id,
            }
        )
        cls.master = cls.env["prepaid.meter"].create(
            {
                "name": "E2E master",
                "utility": "electricity",
                "model_id": model_basic.id,
                "gateway_id": master_gateway.id,
            }
        )
        cls.subs = cls.env["prepaid.meter"].concat(*(cls.meter_of[c.address] for c in cls.sub_configs))
        cls.env["prepaid.apportionment.rule"].create(
            {
                "name": "E2E line loss",
                "property_id": cls.building.id,
                "utility": "electricity",
                "master_meter_id": cls.master.id,
                "sub_meter_ids": [Command.set(cls.subs.ids)],
            }
        )
        cls.all_meters = meters | cls.master

    # -- driving it ------------------------------------------------------------------------------------------
    def setUp(self):
        super().setUp()
        self.site = Site(self.sim_config, clock=SimClock(FIRST_POLL - timedelta(days=1), frozen=True))
        self.truth = Site(self.truth_config, clock=SimClock(FIRST_POLL - timedelta(days=1), frozen=True))
        wires = {bus.key: bus.wire for bus in self.site.gateway("e2e").buses}
        clock = self.site.clock

        def poller(gateway_model, trace=False):
            return Poller(
                trace=trace,
                clock=clock.now,
                link_factory=lambda gateway, bus, kind, trace: WireLink(wires[bus.key]),
            )

        patcher = patch.object(type(self.env["prepaid.gateway"]), "_get_poller", poller)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.master_total = Decimal("10000.00")
        self.truth_last = None

    def op(self, op, meter, **fields):
        """A control op on the simulated meter of ``meter`` (a record), as a running simulator takes it."""
        request = json.dumps({"op": op, "address": meter.address, **fields})
        reply = asyncio.run(ControlServer(self.site).handle(request))
        self.assertTrue(reply["ok"], reply)
        return reply

    def sim(self, meter):
        return self.site.meter(meter.address)

    def poll(self, at):
        """Simulated time to ``at``; the gateway polled (ingestion and settlement) and the master read."""
        for site in (self.site, self.truth):
            site.clock.set_time(at)
        result = self.gateway._poll()
        truth = sum((meter.total for _key, meter in self.truth.meters()), Decimal(0))
        if self.truth_last is not None:
            self.master_total += ((truth - self.truth_last) * TECHNICAL_LOSS).quantize(Decimal("0.01"))
        self.truth_last = truth
        master_reading = Reading(meter_key=str(self.master.id), read_at=at, total=self.master_total)
        self.env["prepaid.meter.reading"]._ingest([master_reading], source="poll")
        return result

    def run_month(self, faults=None):
        """Poll every day and run the detection job after each poll from the third week; ``faults``: {poll
        index: callable} run right after that poll. Returns the number of detection runs."""
        faults = faults or {}
        runs = 0
        for k in range(POLLS):
            at = FIRST_POLL + timedelta(days=k)
            self.poll(at)
            if k in faults:
                faults[k]()
            if k >= FIRST_DETECTION:
                self.env["prepaid.anomaly"]._cron_detect_anomalies(
                    now=(at + DETECT_AFTER).replace(tzinfo=None)
                )
                runs += 1
        return runs

    def detected(self):
        return self.env["prepaid.anomaly"].search(
            [("meter_id", "in", self.all_meters.ids), ("kind", "in", DETECTED)]
        )

    # -- the tests -------------------------------------------------------------------------------------------
    def test_each_injected_fault_raises_exactly_its_anomaly(self):
        platform = self.platform_meters - self.subs
        stuck, dead, spiking, tampered = platform[10], platform[20], platform[30], platform[40]
        # the sub-meter that draws most: a bypass there is a loss well above the threshold
        bypassed = max(self.subs, key=lambda m: self.sim(m).load.mean)
        drifting = self.meter_side_meters[2]
        faults = {
            22: lambda: self.op("stuck", stuck),
            25: lambda: self.op("bypass", bypassed, share="0.1"),
            26: lambda: self.op("kill_meter", dead),
            29: lambda: self.op("appliance_on", spiking, appliance="electric_heater"),
            30: lambda: (
                self.op("appliance_off", spiking, appliance="electric_heater"),
                self.op("tamper", tampered, event="cover_open"),
            ),
            28: lambda: self.sim(drifting).set_balance(self.sim(drifting).balance - Decimal("40.00")),
            # the job just after local midnight judged the local day that had just ended
            31: lambda: self.assertTrue(self.detected().filtered(lambda a: a.meter_id == spiking)),
        }
        self.run_month(faults)
        found = {(a.kind, a.meter_id) for a in self.detected()}
        expected = {
            ("zero_consumption", stuck),
            ("line_loss", self.master),
            ("not_read", dead),
            ("consumption_spike", spiking),
            ("tamper", tampered),
            ("balance_mismatch", drifting),
        }
        self.assertEqual({(k, m.display_name) for k, m in found}, {(k, m.display_name) for k, m in expected})
        for anomaly in self.detected():
            self.assertEqual(anomaly.user_id, self.manager)
            self.assertEqual(anomaly.activity_ids.user_id, self.manager)
            self.assertEqual(len(anomaly.activity_ids), 1)
            self.assertEqual(anomaly.state, "open")
        evidence = {a.kind: a.evidence for a in self.detected()}
        # what each finding says is what was injected
        self.assertGreater(Decimal(evidence["line_loss"][-1]["loss_share"]), Decimal(10))
        self.assertEqual([item["event"] for item in evidence["tamper"]], ["cover_open"])
        self.assertEqual(evidence["consumption_spike"][0]["from"], "2026-03-19")
        mismatch = evidence["balance_mismatch"]
        self.assertEqual(len(mismatch), 1)
        self.assertAlmostEqual(float(mismatch[0]["difference"]), -40.0, delta=0.02)
        self.assertEqual(evidence["zero_consumption"][-1]["zero_days"], "3")
        self.assertFalse(self.other_anomalies(), self.other_anomalies().mapped("description"))

    def other_anomalies(self):
        """Anomalies of other kinds on the site (quarantined readings, unbilled consumption)."""
        return self.env["prepaid.anomaly"].search(
            [("meter_id", "in", self.all_meters.ids), ("kind", "not in", DETECTED)]
        )

    def test_clean_site_false_positive_rate_per_detector(self):
        runs = self.run_month()
        raised = self.detected()
        examined = {
            "zero_consumption": len(self.meters),  # every meter is on an occupied unit
            "consumption_spike": len(self.all_meters),
            "tamper": len(self.meters),  # the meters that report tamper data
            "not_read": len(self.all_meters),
            "line_loss": 1,  # one master meter with its sub-meters
            "balance_mismatch": len(self.meter_side_meters),
        }
        counts = {kind: sum(len(a.evidence or []) for a in raised if a.kind == kind) for kind in DETECTED}
        _logger.info(
            "anomaly false-positive rate on a clean site (%s meters, %s daily runs): %s",
            len(self.all_meters),
            runs,
            ", ".join(f"{kind} {counts[kind]}/{examined[kind] * runs}" for kind in DETECTED),
        )
        self.assertEqual(counts, dict.fromkeys(DETECTED, 0), raised.mapped("description"))
        self.assertFalse(self.other_anomalies(), self.other_anomalies().mapped("description"))
        # the clean month did hold what must not alarm: two meter-side meters ran out of money and tripped
        # themselves (days of readings with the supply off on occupied units), and the master meter counted
        # 3 % more than its sub-meters every day
        tripped = self.meter_side_meters[:2]
        self.assertTrue(all(self.sim(m).relay_open for m in tripped))
        self.assertEqual(set(tripped.mapped("supply")), {"off"})
        self.assertTrue(all(not self.sim(m).relay_open for m in self.meter_side_meters[2:]))
