"""Virtual meters: the truth of each meter, advanced lazily, and its answers from the meter's side.

:class:`SimMeter` keeps a meter's truth: energy (or water) registers per tariff band, relay or valve,
keep-power, alarm, meter-side balance, prices and purchase count. Nothing runs between requests: the state
advances to the simulated "now" when a request arrives or a test reads the truth (:meth:`SimMeter.advance`),
by integrating the meter's load profile slot by slot in exact integer arithmetic. So thousands of meters cost
nothing while idle, and the registers at a given simulated time do not depend on how often they were read.

Units inside (all integers, exact):

* accumulators: load x milliseconds, i.e. W-ms (electricity, primary side) or L/h-ms (water); one register
  step (0.01 kWh on the meter's secondary side, or 0.01 m3) is ``STEP_UNITS x ct_ratio`` units;
* money: micro-yuan (1e-6). The meter deducts per register step: a step in band *b* costs ``ct_ratio x
  price_b`` with price in 1e-4 yuan/kWh, which is exactly what rating the register deltas at the same prices
  gives. The balance shown is rounded down to 0.01.

Choices where real meters differ (all documented in the report and the tests):

* The total register is the sum of the four band registers as shown (each truncated to 0.01 kWh).
* A billing meter trips itself when its balance falls to ``-overdraft_limit`` (0 by default) while the relay
  is closed and keep-power is off. A remote close after that is obeyed (the meter then runs into overdraft
  until recharged); clearing keep-power while at or below the limit trips at once; a recharge that lifts a
  self-tripped meter above the closing threshold (04001005) allows closing again (and with the site's
  ``button="immediate"`` the tenant presses the button at once).
* Keep power (3A) refuses trips (1A, 1D, 1E) with the ERR bit ``other`` (0x01), not ``unauthorised``: the
  password was right, the meter just will not trip. It does not close an open relay by itself.
* A relay command whose validity time (N3..N8) is already past on the meter's clock is refused with ERR
  ``other``; a wrong password level or password with ``unauthorised``. 1D/1E trip and restore by themselves
  after the site's ``auto_restore`` simulated seconds (N2 is always 00 in the codec).
* The meters' clocks run in ``SiteConfig.meter_timezone`` (UTC by default, the codecs' default ``tz``): that
  is the zone of the date/time identifiers, the relay validity time and broadcast time on the wire. Load
  profiles, TOU bands and the water settlement day use ``SiteConfig.timezone`` (Asia/Shanghai).
* Only meters that keep money bill (``billing``): by default DL/T 645-2007 models that read remaining money
  (00900200). Modbus maps with a balance register show the starting balance, unchanged.
* CJ/T 188: a valve in the ``abnormal`` state does not move on command (the status says so).
* A meter configured with ``lacks`` (``MeterConfig.lacks``) answers "no such data" for those identifiers as
  a real meter without them does: DL/T 645 ERR bit 1 (e.g. no block ``0001FF00`` while its single energy
  identifiers answer), a CJ/T 188 abnormal reply, Modbus exception 02 for any read that touches the named
  register fields. ``clock_offset`` starts the meter's own clock that many seconds off simulated time.
* Load control (electricity, :mod:`.loadctl`): tenants' appliances on a seeded schedule or forced through
  the control channel add their power to the profile's; the power limit, the malicious-load rule and
  over-current trip the meter with a reason, recorded as events with automatic restore after a delay and a
  daily count. DL/T 645-2007 meters read and write the settings, the trip reason and the event records at
  the identifiers of :data:`prepaid_engine.load.params.DLT645_IDENTIFIERS` (all uncertain); Modbus meters
  serve their model's parameter registers (FC3 reads, FC6/FC16 writes of whole parameters; read-only ones
  and partial writes are exception 02, values they cannot take 03), event records excepted. A plain trip
  (1A) cancels a pending automatic restore.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from math import isqrt

from ..errors import ConfigError
from ..load.params import TripReason
from ..security import RechargeLedger, RechargeOrder, RechargeOutcome
from ..types import MeterModel, Supply, Utility
from .clock import SimClock, from_ms
from .config import MeterConfig, SiteConfig
from .loadctl import LoadControl
from .profile import BANDS, FLAT, PROFILES, SLOT_MS, Calendar, MeterLoad, stable_seed, unit

STEP_UNITS = 36_000_000  # 0.01 kWh in W-ms; also 0.01 m3 (10 L) in L/h-ms
MICRO = 1_000_000  # micro-yuan per yuan
NEVER = 1 << 62

# A meter's truth as a state file keeps it (:mod:`.state`): (name in the file, attribute, kind of value).
# Everything else a meter holds comes from its configuration and model (addresses, profile, preamble,
# latency, passwords) or is a cache. A new piece of truth in ``SimMeter.__init__`` belongs here too.
STATE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("acc", "acc", "ints4"),  # band accumulators (units: see the module doc)
    ("t_ms", "t_ms", "int"),  # simulated time the truth stands at
    ("relay_open", "_relay_open", "bool"),
    ("relay_commanded_open", "relay_commanded_open", "bool"),
    ("keep_power", "keep_power", "bool"),
    ("alarm", "alarm", "bool"),
    ("closing_allowed", "closing_allowed", "bool"),
    ("self_tripped", "self_tripped", "bool"),
    ("restore_at", "restore_at", "time"),
    ("valve", "valve", "valve"),
    ("battery_low", "battery_low", "bool"),
    ("balance_micro", "balance_micro", "int"),
    ("prices_e4", "prices_e4", "ints4"),
    ("overdraft_micro", "overdraft_micro", "int"),
    ("alarm1_micro", "alarm1_micro", "int"),
    ("alarm2_micro", "alarm2_micro", "int"),
    ("close_threshold_micro", "close_threshold_micro", "int"),
    ("purchase_count", "ledger.purchase_count", "int"),
    ("ledger_balance", "ledger.balance", "decimal"),
    ("hoarding_limit", "ledger.hoarding_limit", "decimal?"),
    ("clock_offset_ms", "clock_offset_ms", "int"),
    ("settlement_units", "settlement_units", "int"),
    ("next_settlement", "next_settlement", "time"),
    ("dead", "dead", "bool"),
)
# Injected faults and tamper counters (prepaid_engine.anomaly): optional in a state file (one written before
# they existed restores them as a clean meter's).
FAULT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("registered_permille", "registered_permille", "int"),  # share of the true load the register counts
    ("stuck", "stuck", "bool"),  # register frozen: nothing is counted
    ("reverse_units", "reverse_units", "int"),  # reverse active energy, 0.01 kWh
    ("cover_open_count", "cover_open_count", "int"),
    ("magnetic_count", "magnetic_count", "int"),
)
FAULT_DEFAULTS = {"registered_permille": 1000, "stuck": False, "reverse_units": 0}

_LOAD_STATE = "load"  # the optional load-control entry of a meter's state (LoadControl.to_state)
_HUNDREDTH = Decimal("0.01")
_MILLI = Decimal("0.001")
_TENTH_MILLI = Decimal("0.0001")
_PRICE_QUANTUM = Decimal("0.0001")


def money_micro(value: Decimal) -> int:
    """A Decimal amount of money in integer micro-yuan (exact; more than 6 decimals is an error)."""
    micro = Decimal(value) * MICRO
    if micro != micro.to_integral_value():
        raise ConfigError(f"amount {value} has more than 6 decimals")
    return int(micro)


def micro_money(micro: int) -> Decimal:
    """Micro-yuan to the 0.01 the meter shows, rounded down (the meter never shows money it does not have)."""
    return (Decimal(micro) / MICRO).quantize(_HUNDREDTH, rounding=ROUND_FLOOR)


def price_e4(value: Decimal) -> int:
    quantized = Decimal(value).quantize(_PRICE_QUANTUM)
    if quantized != Decimal(value) or quantized < 0:
        raise ConfigError(f"a price is non-negative with at most 4 decimals, not {value}")
    return int(quantized * 10_000)


@functools.lru_cache(maxsize=64)
def _prices_e4(prices: tuple[Decimal, ...]) -> tuple[int, ...]:
    return tuple(price_e4(p) for p in prices)


def hundredths(value: Decimal) -> int:
    """A register value with at most 2 decimals as an integer count of 0.01 steps."""
    scaled = Decimal(value) * 100
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise ConfigError(f"a register value is non-negative with at most 2 decimals, not {value}")
    return int(scaled)


class Valve:
    OPEN = "open"
    CLOSED = "closed"
    ABNORMAL = "abnormal"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One answered request, as kept in a meter's log.

    ``reply`` is the bytes the meter produced (before any fault spoiled them); ``fault`` names the fault
    injected on the way back (``None``: delivered as is); ``said`` holds the reading values the reply carried
    (:data:`~prepaid_engine.types.READING_FIELDS` names), so a test can compare them with what the poller
    stored; ``error`` names the error bits of an error reply.
    """

    at: datetime
    request: bytes
    reply: bytes | None
    said: Mapping[str, object]
    fault: str | None = None
    error: tuple[str, ...] = ()


def _get(meter: SimMeter, attribute: str) -> object:
    target, _, name = attribute.rpartition(".")
    return getattr(getattr(meter, target) if target else meter, name)


def _set(meter: SimMeter, attribute: str, value: object) -> None:
    target, _, name = attribute.rpartition(".")
    setattr(getattr(meter, target) if target else meter, name, value)


@dataclass(slots=True)
class MeterEnv:
    """What every meter of a site shares."""

    clock: SimClock
    calendar: Calendar
    config: SiteConfig


class SimMeter:
    """One meter's truth and behaviour, protocol-independent. Protocol subclasses answer frames.

    Read the truth through the properties (each advances to the clock's now first); change it for tests with
    the ``set_*`` methods and :meth:`trip`, :meth:`close`, :meth:`press_button`.
    """

    protocol_name = "base"

    def __init__(self, config: MeterConfig, model: MeterModel, env: MeterEnv):
        site = env.config
        self.config = config
        self.model = model
        self.env = env
        self.address = config.address
        self.meter_number = config.number
        self.customer_number = config.customer_number or "0" * 12
        self.ct_ratio = config.ct_ratio
        self.utility = config.utility
        self.is_water = config.utility == Utility.WATER
        self.seed = stable_seed(site.seed, config.address, config.meter_number)
        profile = PROFILES[config.profile_name]
        self.load = MeterLoad(profile, self.seed, env.calendar)
        self.step = STEP_UNITS * (1 if self.is_water else config.ct_ratio)
        self.dead = config.dead
        self.latency = site.latency if config.latency is None else config.latency
        preamble = site.preamble if config.preamble is None else config.preamble
        self.preamble = preamble if preamble is not None else int(unit(self.seed ^ 0xFE) * 5)
        self.log: collections.deque[Exchange] = collections.deque(maxlen=site.log_size)
        self._instant_cache: tuple | None = None
        self._read_cache: dict[str, tuple[object, int, FramedAnswer]] = {}
        # -- registers --------------------------------------------------------------------------------------
        self.acc = [0, 0, 0, 0]
        self._init_registers(config.total)
        self.t_ms = env.clock.now_ms()
        # -- relay / valve ----------------------------------------------------------------------------------
        self._relay_open = False
        self.relay_commanded_open = False
        self.keep_power = False
        self.alarm = False
        self.closing_allowed = False  # 1B received, waiting for the button
        self.self_tripped = False
        self.restore_at = NEVER  # auto-restore time of a 1D/1E trip
        self.valve = Valve.OPEN if self.is_water else None  # electricity meters have no valve
        self.battery_low = False
        # -- meter-side money -------------------------------------------------------------------------------
        self.billing = config.billing if config.billing is not None else "00900200" in model.reads
        balance = site.initial_balance if config.balance is None else config.balance
        self.balance_micro = money_micro(balance)
        self.prices_e4 = list(_prices_e4(site.prices))
        self.overdraft_micro = 0
        self.alarm1_micro = money_micro(Decimal("20.00"))
        self.alarm2_micro = money_micro(Decimal("10.00"))
        self.close_threshold_micro = 0
        self.ledger = RechargeLedger(purchase_count=0, balance=balance, hoarding_limit=site.hoarding_limit)
        # -- clocks -----------------------------------------------------------------------------------------
        self.clock_offset_ms = round(config.clock_offset * 1000)  # meter clock minus simulated time (drift;
        # broadcast time and date/time writes set it)
        self.lacks = frozenset(config.lacks)  # identifiers answered "no such data"
        self.settlement_units = self._shown_units()
        self.next_settlement = env.calendar.month_start_ms(self.t_ms, 1) if self.is_water else NEVER
        # -- load control (electricity): appliances, power limit, malicious load, events (.loadctl) --------
        self.lc = None if self.is_water else LoadControl(self.seed, tuple(config.appliances))
        # -- injected faults (control ops bypass / stuck / tamper) -----------------------------------------
        self.registered_permille = 1000
        self.stuck = False
        self.reverse_units = 0
        self.cover_open_count = 0
        self.magnetic_count = 0

    def _init_registers(self, total: Decimal | None) -> None:
        seed = self.seed
        if total is None:
            low, high = (1_000, 50_000) if self.is_water else (50_000, 2_000_000)
            steps = low + int(unit(seed ^ 0x7074) * (high - low))
        else:
            steps = hundredths(Decimal(total) / (1 if self.is_water else self.ct_ratio))
        if self.is_water:
            self.acc = [0, 0, steps * self.step, 0]
            return
        shares = (0.08 + 0.04 * unit(seed ^ 1), 0.25 + 0.1 * unit(seed ^ 2), 0.30 + 0.1 * unit(seed ^ 3))
        sharp, peak, flat = (int(steps * s) for s in shares)
        valley = steps - sharp - peak - flat
        self.acc = [sharp * self.step, peak * self.step, flat * self.step, valley * self.step]

    # ----------------------------------------------------------------------------------------------- state

    def to_state(self) -> dict[str, object]:
        """The meter's truth as it stands (not advanced: :func:`.state.dump_state` advances first), as the
        JSON values of :data:`STATE_FIELDS`, plus the ``model`` it is."""
        from .state import encode

        values: dict[str, object] = {"model": self.model.code}
        for name, attribute, kind in STATE_FIELDS:
            values[name] = encode(kind, _get(self, attribute))
        for name, attribute, kind in FAULT_FIELDS:
            values[name] = encode(kind, _get(self, attribute))
        if self.lc is not None:
            values["load"] = self.lc.to_state()  # optional: a file without it restores load control as new
        return values

    def parse_state(self, entry: Mapping[str, object], where: str = "") -> dict[str, object]:
        """The values of a :meth:`to_state` entry, checked (:class:`.state.StateError` names the field);
        nothing changes until :meth:`apply_state`."""
        from .state import StateError, decode

        where = where or f"meter {self.address}"
        values = {}
        for name, attribute, kind in STATE_FIELDS:
            if name not in entry:
                raise StateError(f"{where}: no {name!r}")
            values[attribute] = decode(kind, entry[name], f"{where}: {name}")
        for name, attribute, kind in FAULT_FIELDS:
            if name in entry:
                values[attribute] = decode(kind, entry[name], f"{where}: {name}")
            else:
                values[attribute] = FAULT_DEFAULTS.get(attribute, 0)
        if (values["valve"] is None) != (self.valve is None):
            raise StateError(f"{where}: valve: a water meter has a valve, an electricity meter none")
        if "load" in entry and self.lc is not None:
            values[_LOAD_STATE] = LoadControl.parse_state(entry["load"], f"{where}: load")
        return values

    def apply_state(self, values: Mapping[str, object]) -> None:
        """Take the truth :meth:`parse_state` checked."""
        for attribute, value in values.items():
            if attribute == _LOAD_STATE:
                self.lc.apply_state(value)  # type: ignore[union-attr, arg-type]
            else:
                _set(self, attribute, value)
        self._instant_cache = None
        self._read_cache.clear()

    def from_state(self, entry: Mapping[str, object]) -> None:
        """Restore the truth of a :meth:`to_state` entry (checked first: a bad entry changes nothing)."""
        self.apply_state(self.parse_state(entry))

    def start_at(self, now_ms: int) -> None:
        """A fresh meter of a restored site: its truth as configured, standing at ``now_ms`` (the restored
        clock's time) instead of the moment it was built."""
        self.t_ms = now_ms
        self.next_settlement = self.env.calendar.month_start_ms(now_ms, 1) if self.is_water else NEVER

    # ------------------------------------------------------------------------------------------------ time

    def now_ms(self) -> int:
        return self.env.clock.now_ms()

    def meter_time_ms(self) -> int:
        """The meter's own clock (simulated time + the offset broadcast time set)."""
        return self.env.clock.now_ms() + self.clock_offset_ms

    @property
    def flowing(self) -> bool:
        if self.is_water:
            return self.valve == Valve.OPEN
        return not self._relay_open

    def advance(self, now_ms: int | None = None) -> None:
        """Bring the registers, balance and timers up to ``now_ms`` (default: the clock's now)."""
        if now_ms is None:
            now_ms = self.env.clock.now_ms()
        t = self.t_ms
        lc = self.lc if self.lc is not None and self.lc.active else None
        while t < now_ms:
            event = self.restore_at if self.restore_at < self.next_settlement else self.next_settlement
            if lc is not None and not self._relay_open:
                edge = lc.next_edge(t)
                if edge < event:
                    event = edge
            end = now_ms if now_ms < event else event
            if end > t:
                t = self._accumulate(t, end) if self.flowing else end
            self.t_ms = t
            if t >= event:
                self._fire(t)
        self.t_ms = max(self.t_ms, now_ms)

    def _fire(self, t: int) -> None:
        lc = self.lc
        if lc is not None and lc.active and not self._relay_open:
            self._check_load(t, self._switched_on(t))
        if t >= self.restore_at:
            self.restore_at = NEVER
            self._set_relay(False)
        if t >= self.next_settlement:
            self.settlement_units = self._shown_units()
            self.next_settlement = self.env.calendar.month_start_ms(t, 1)

    def _accumulate(self, t: int, end: int) -> int:
        """Integrate the load from ``t`` to ``end``; returns where it stopped (earlier after a self-trip)."""
        acc = self.acc
        load_slot = self.load.slot
        water = self.is_water
        extra = self.lc.power_at(t) if self.lc is not None and self.lc.active else 0  # constant up to `end`
        while t < end:
            slot = t // SLOT_MS
            seg_end = (slot + 1) * SLOT_MS
            if seg_end > end:
                seg_end = end
            rate, band = load_slot(slot)
            rate += extra
            if water:
                band = FLAT
            if rate and not self.stuck:
                du = rate * (seg_end - t)
                if self.registered_permille != 1000:  # bypass: part of the load passes the meter
                    du = du * self.registered_permille // 1000
                if self.billing and du:
                    tripped_at = self._bill(t, band, rate, du)
                    if tripped_at is not None:
                        return tripped_at
                acc[band] += du
            t = seg_end
        return t

    def _bill(self, t: int, band: int, rate: int, du: int) -> int | None:
        """Deduct the register steps ``du`` completes in ``band``; trip at the limit (returns its time)."""
        cost_per_step = self.prices_e4[band] * self.ct_ratio
        if not cost_per_step:
            return None
        step = self.step
        before = self.acc[band]
        steps = (before + du) // step - before // step
        if not steps:
            return None
        limit = -self.overdraft_micro
        balance = self.balance_micro
        cost = steps * cost_per_step
        if balance > limit and balance - cost <= limit and not self.keep_power:
            # The step that takes the balance to the limit: stop there and trip.
            needed = -(-(balance - limit) // cost_per_step)
            target = (before // step + needed) * step - before
            dt = -(-target // rate)
            units = rate * dt
            self.balance_micro -= ((before + units) // step - before // step) * cost_per_step
            self.acc[band] = before + units
            self._set_relay(True)
            self.self_tripped = True
            self._record_trip(t + dt, TripReason.BALANCE)
            return t + dt
        self.balance_micro = balance - cost
        return None

    # ------------------------------------------------------------------------------------------ registers

    def _band_steps(self, band: int) -> int:
        return self.acc[band] // self.step

    def _shown_units(self) -> int:
        """The total register in 0.01 steps (secondary side for CT meters)."""
        step = self.step
        return sum(a // step for a in self.acc)

    def registers(self) -> dict[str, Decimal]:
        """Total and band registers as the meter shows them, primary side (x CT ratio), after advancing."""
        self.advance()
        ct = 1 if self.is_water else self.ct_ratio
        steps = [a // self.step for a in self.acc]
        values = {"total": Decimal(sum(steps) * ct).scaleb(-2)}
        if not self.is_water:
            values.update({name: Decimal(s * ct).scaleb(-2) for name, s in zip(BANDS, steps, strict=True)})
        return values

    def secondary_registers(self) -> tuple[Decimal, tuple[Decimal, ...]]:
        """(total, (sharp, peak, flat, valley)) on the meter's own (secondary) side, as its registers hold."""
        self.advance()
        steps = [a // self.step for a in self.acc]
        return Decimal(sum(steps)).scaleb(-2), tuple(Decimal(s).scaleb(-2) for s in steps)

    def instantaneous(self) -> dict[str, Decimal]:
        """Voltage (V), current (A), power (kW), power factor and frequency now, primary side."""
        self.advance()
        now = self.env.clock.now_ms()
        slot = now // SLOT_MS
        rate = self.load.slot(slot)[0] if self.flowing else 0
        volts_deci = self.load.voltage_deci(slot)
        pf_milli = self.load.pf_milli if rate else 1000
        on = self.lc.on_at(now) if self.lc is not None and self.flowing else ()
        if on:  # the total's PF from the active and reactive powers of the base load and the appliances
            base_q = rate * isqrt((1_000_000 - pf_milli * pf_milli) * 1_000_000) // pf_milli
            rate += sum(a.power_w for a in on)
            q = base_q + sum(a.reactive_milli for a in on)
            pf_milli = rate * 1_000_000 // isqrt(rate * rate * 1_000_000 + q * q) if rate else 1000
        current_milli = rate * 10_000_000 // (volts_deci * pf_milli)
        return {
            "voltage": Decimal(volts_deci).scaleb(-1),
            "current": Decimal(current_milli).scaleb(-3),
            "power": Decimal(rate).scaleb(-3),
            "power_factor": Decimal(pf_milli).scaleb(-3),
            "frequency": Decimal(self.load.frequency_centi(slot)).scaleb(-2),
        }

    def secondary_instantaneous(self) -> dict[str, Decimal]:
        """:meth:`instantaneous` as the meter's registers hold it: current and power divided by the CT ratio
        (truncated to the register resolution). Constant within a load slot, so it is cached per slot."""
        self.advance()
        now = self.env.clock.now_ms()
        on = self.lc.on_at(now) if self.lc is not None and self.lc.active else ()
        key = (now // SLOT_MS, self.flowing, on)
        cached = self._instant_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        values = self.instantaneous()
        ct = self.ct_ratio
        if ct != 1:
            values["current"] = (values["current"] / ct).quantize(_MILLI, rounding=ROUND_FLOOR)
            values["power"] = (values["power"] / ct).quantize(_TENTH_MILLI, rounding=ROUND_FLOOR)
        self._instant_cache = (key, values)
        return values

    # --------------------------------------------------------------------------------------------- truth

    @property
    def total(self) -> Decimal:
        return self.registers()["total"]

    @property
    def bands(self) -> dict[str, Decimal]:
        values = self.registers()
        return {name: values[name] for name in BANDS if name in values}

    @property
    def relay_open(self) -> bool:
        """The relay is open (supply cut) now, after any self-trip or auto-restore up to now."""
        self.advance()
        return self._relay_open

    @property
    def supply(self) -> Supply:
        self.advance()
        if self.is_water:
            return {Valve.OPEN: Supply.ON, Valve.CLOSED: Supply.OFF}.get(self.valve, Supply.FAULT)
        return Supply.OFF if self._relay_open else Supply.ON

    @property
    def balance(self) -> Decimal:
        self.advance()
        return micro_money(self.balance_micro)

    @property
    def purchase_count(self) -> int:
        return self.ledger.purchase_count

    @property
    def prices(self) -> tuple[Decimal, ...]:
        return tuple(Decimal(p).scaleb(-4) for p in self.prices_e4)

    @property
    def settlement_total(self) -> Decimal:
        """Water: the total at the last settlement day (local midnight of the 1st)."""
        self.advance()
        return Decimal(self.settlement_units).scaleb(-2)

    def reading(self) -> dict[str, object]:
        """Everything a full read would report now, by READING_FIELDS name (absent fields left out)."""
        values: dict[str, object] = dict(self.registers())
        values["supply"] = self.supply
        if self.is_water:
            values["battery_low"] = self.battery_low
        else:
            values.update(self.instantaneous())
        if self.billing:
            values["balance"] = self.balance
            values["purchase_count"] = self.purchase_count
        return values

    # ------------------------------------------------------------------------------------------- settable

    def set_total(self, total: Decimal, bands: Mapping[str, Decimal] | None = None) -> None:
        """Set the registers (primary side). ``bands`` (electricity) must add up to ``total``."""
        self.advance()
        ct = 1 if self.is_water else self.ct_ratio
        total_steps = hundredths(Decimal(total) / ct)
        if self.is_water:
            self.acc = [0, 0, total_steps * self.step, 0]
            return
        if bands is None:
            current = [a // self.step for a in self.acc]
            whole = sum(current) or 1
            steps = [total_steps * c // whole for c in current]
            steps[FLAT] += total_steps - sum(steps)
        else:
            unknown = set(bands) - set(BANDS)
            if unknown:
                raise ConfigError(f"unknown bands {sorted(unknown)}")
            steps = [hundredths(Decimal(bands.get(name, 0)) / ct) for name in BANDS]
            if sum(steps) != total_steps:
                raise ConfigError(f"bands add up to {sum(steps) * ct / 100}, not {total}")
        self.acc = [s * self.step for s in steps]

    def set_balance(self, balance: Decimal) -> None:
        self.advance()
        self.balance_micro = money_micro(balance)

    def set_purchase_count(self, count: int) -> None:
        self.ledger.purchase_count = int(count)

    def set_prices(self, prices) -> None:
        """Four prices (sharp, peak, flat, valley), yuan per kWh with at most 4 decimals."""
        values = [price_e4(Decimal(p)) for p in prices]
        if len(values) != 4:
            raise ConfigError("four prices: sharp, peak, flat, valley")
        self.advance()
        self.prices_e4 = values

    def set_battery_low(self, low: bool) -> None:
        self.battery_low = bool(low)

    def set_valve(self, state: str) -> None:
        if not self.is_water:
            raise ConfigError(f"meter {self.address} is an electricity meter: it has no valve")
        if state not in (Valve.OPEN, Valve.CLOSED, Valve.ABNORMAL):
            raise ConfigError(f"valve state is open, closed or abnormal, not {state!r}")
        self.advance()
        self.valve = state

    def set_keep_power(self, on: bool) -> None:
        self.advance()
        self.keep_power = bool(on)

    def trip(self) -> None:
        """Open the relay (as a trip command would, but never refused)."""
        self.advance()
        self.relay_commanded_open = True
        if not self._relay_open:
            self._record_trip(self.t_ms, TripReason.REMOTE)
        self._set_relay(True)
        self.restore_at = NEVER

    def close(self) -> None:
        """Close the relay (as a direct close command would)."""
        self.advance()
        self.relay_commanded_open = False
        self._set_relay(False)

    def press_button(self) -> bool:
        """The tenant presses the meter's button: closes the relay if closing was allowed (1B)."""
        self.advance()
        if self.closing_allowed and self._relay_open:
            self._set_relay(False)
            return True
        return False

    def _set_relay(self, open_: bool) -> None:
        was_open = self._relay_open
        self._relay_open = open_
        if not open_:
            self.closing_allowed = False
            self.self_tripped = False
            self.restore_at = NEVER
            lc = self.lc
            if was_open and lc is not None and lc.active:  # the loads come back: each one switches on
                self._check_load(self.t_ms, lc.on_at(self.t_ms))

    # ------------------------------------------------------------------------------------- load control

    def _switched_on(self, t: int) -> tuple:
        """The scheduled appliances that switch on at ``t`` (an edge)."""
        before = {a.code for a in self.lc.on_at(t - 1)}  # type: ignore[union-attr]
        return tuple(a for a in self.lc.on_at(t) if a.code not in before)  # type: ignore[union-attr]

    def total_power_w(self, t: int) -> int:
        """The load the meter would pass at ``t`` with its relay closed (base + appliances), W."""
        rate = self.load.slot(t // SLOT_MS)[0]
        return rate + (self.lc.power_at(t) if self.lc is not None else 0)

    def _check_load(self, t: int, switched_on) -> None:
        """The meter's load rules at ``t`` with the relay closed (:mod:`.loadctl`): malicious load of an
        appliance switching on, then over-power and over-current of the total."""
        lc = self.lc
        total = self.total_power_w(t)
        for appliance in switched_on:
            if lc.malicious(appliance):
                if lc.malicious_mode == 2:
                    self._load_trip(t, TripReason.MALICIOUS_LOAD, total)
                    return
                lc.record(self._meter_ms(t), TripReason.MALICIOUS_LOAD, total)
        if lc.limit_w and total > lc.limit_w:
            if lc.limit_mode == 1:
                self._load_trip(t, TripReason.OVER_POWER, total)
                return
            if switched_on:
                lc.record(self._meter_ms(t), TripReason.OVER_POWER, total)
        capacity = self.model.capacity
        if capacity is not None and capacity.max_current is not None and capacity.voltage is not None:
            # current = apparent power / voltage: compare S (VA) with Imax x V (x CT ratio)
            slot = t // SLOT_MS
            base = self.load.slot(slot)[0]
            pf = self.load.pf_milli
            q = base * isqrt((1_000_000 - pf * pf) * 1_000_000) // pf + sum(
                a.reactive_milli for a in lc.on_at(t)
            )
            apparent_milli = isqrt(total * total * 1_000_000 + q * q)
            volts = Decimal(self.load.voltage_deci(slot)).scaleb(-1)
            amps = Decimal(apparent_milli).scaleb(-3) / volts
            if amps > capacity.max_current * self.ct_ratio:
                self._load_trip(t, TripReason.OVER_CURRENT, total)

    def _load_trip(self, t: int, reason: TripReason, total_w: int) -> None:
        """Open the relay for the load; schedule the automatic restore if the day's count allows."""
        lc = self.lc
        self._relay_open = True
        self._record_trip(t, reason, total_w)
        day = self.env.calendar.local(t).toordinal()
        if lc.restore_day != day:
            lc.restore_day, lc.restores_today = day, 0
        if lc.restore_max and lc.restores_today < lc.restore_max:
            lc.restores_today += 1
            self.restore_at = t + lc.restore_delay_s * 1000
        self._instant_cache = None

    def _meter_ms(self, t: int) -> int:
        return t + self.clock_offset_ms

    def _record_trip(self, t: int, reason: TripReason, total_w: int | None = None) -> None:
        lc = self.lc
        if lc is None:
            return
        lc.trip_reason = int(reason)
        lc.record(self._meter_ms(t), reason, self.total_power_w(t) if total_w is None else total_w)

    def appliance_on(self, code: str) -> None:
        """The tenant switches appliance ``code`` on now (until :meth:`appliance_off`); the meter judges
        it."""
        if self.lc is None:
            raise ConfigError(f"meter {self.address} is a water meter: it has no appliances")
        from .loadctl import sim_appliance

        appliance = sim_appliance(code, self.seed)
        self.advance()
        if code in self.lc.forced:
            return
        was_on = code in {a.code for a in self.lc.on_at(self.t_ms)}  # by its schedule: no new step
        self.lc.forced.append(code)
        self._instant_cache = None
        if not self._relay_open and not was_on:
            self._check_load(self.t_ms, (appliance,))

    def appliance_off(self, code: str) -> bool:
        """The tenant switches ``code`` off now; False if it was not switched on through the control."""
        if self.lc is None or code not in self.lc.forced:
            return False
        self.advance()
        self.lc.forced.remove(code)
        self._instant_cache = None
        return True

    # ------------------------------------------------------------------------------------ relay commands
    # Each returns None on success or the name of the ERR bit refusing it.

    def command_trip(self, restore_after_ms: int | None = None) -> str | None:
        self.advance()
        if self.keep_power:
            return "other"
        self.relay_commanded_open = True
        if not self._relay_open:
            self._record_trip(self.t_ms, TripReason.REMOTE)
        self._set_relay(True)
        # a plain trip cancels a pending automatic restore (a load trip's): the platform's cut-off holds
        self.restore_at = NEVER if restore_after_ms is None else self.t_ms + restore_after_ms
        return None

    def command_close(self) -> str | None:
        self.advance()
        self.relay_commanded_open = False
        self._set_relay(False)
        return None

    def command_allow_closing(self) -> str | None:
        self.advance()
        self.relay_commanded_open = False
        if self._relay_open:
            self.closing_allowed = True
            if self.env.config.button == "immediate":
                self._set_relay(False)
        return None

    def command_alarm(self, on: bool) -> str | None:
        self.advance()
        self.alarm = on
        return None

    def command_keep_power(self, on: bool) -> str | None:
        self.advance()
        self.keep_power = on
        if not on and self.billing and not self._relay_open and self.balance_micro <= -self.overdraft_micro:
            self._set_relay(True)
            self.self_tripped = True
            self._record_trip(self.t_ms, TripReason.BALANCE)
        return None

    # ---------------------------------------------------------------------------------------- recharge

    def recharge(self, order: RechargeOrder) -> RechargeOutcome:
        """Apply a verified recharge through the meter's ledger (count previous + 1, hoarding limit)."""
        self.advance()
        self.ledger.balance = Decimal(self.balance_micro) / MICRO
        outcome = self.ledger.apply(order)
        if outcome is RechargeOutcome.APPLIED:
            self.balance_micro += money_micro(order.amount)
            if self.self_tripped and self._relay_open and self.balance_micro > self.close_threshold_micro:
                self.closing_allowed = True
                if self.env.config.button == "immediate":
                    self._set_relay(False)
        return outcome

    # ----------------------------------------------------------------------------------------------- log

    def record(self, exchange: Exchange) -> None:
        if self.log.maxlen:
            self.log.append(exchange)

    @property
    def last_exchange(self) -> Exchange | None:
        return self.log[-1] if self.log else None

    def now(self) -> datetime:
        return from_ms(self.env.clock.now_ms())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} {self.model.code}>"


# ==================================================================================================== Modbus

# Modbus exception codes the meter answers with.
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 1, 2, 3


class ModbusMeter(SimMeter):
    """A Modbus-RTU meter answering PDUs from its model's register map (``codecs.modbus``).

    FC3/FC4 reads are answered from the register image of the truth (unmapped registers inside the model's
    register space read as 0, reads outside it are exception 02); FC6/FC16 writes that match one of the
    model's command writes (``command_for_write``) execute the command; any other write is exception 02
    (no such writable register) or 03 (a command register written with values that are no command).
    """

    protocol_name = "modbus"

    def __init__(self, config: MeterConfig, model: MeterModel, env: MeterEnv):
        from ..codecs import modbus

        super().__init__(config, model, env)
        self._modbus = modbus
        self.unit_id = int(config.address)
        modbus.validate_register_map(model)
        if modbus.circuit_count(model) != 1:
            raise ConfigError(f"model {model.code}: multi-circuit Modbus meters are not simulated")
        # Register space per table: up to the end of the last mapped field or write, rounded up to 0x100.
        ends: dict[str, int] = {}
        for f in model.registers:
            ends[f.table] = max(ends.get(f.table, 0), f.address + f.count)
        for _, write in model.writes:
            ends["holding"] = max(ends.get("holding", 0), write.address + len(write.values))
        # load-control parameter registers (prepaid_engine.load.params; the shipped Acrel maps' are ours)
        from ..load.params import model_parameters

        self.param_registers = {
            spec.name: spec
            for spec in model_parameters(model)
            if spec.register is not None and self.lc is not None
        }
        self.param_words = {
            (spec.register.table, spec.register.address + i): spec
            for spec in self.param_registers.values()
            for i in range(spec.register.count)
        }
        for spec in self.param_registers.values():
            r = spec.register
            ends[r.table] = max(ends.get(r.table, 0), r.address + r.count)
        self.space = {table: -(-end // 0x100) * 0x100 for table, end in ends.items()}
        self.command_addresses = frozenset(
            a for _, w in model.writes for a in range(w.address, w.address + len(w.values))
        )
        self.missing_registers = {
            (f.table, address)
            for f in map(functools.partial(modbus.register_field, model), sorted(self.lacks))
            for address in range(f.address, f.address + f.count)
        }
        fields = {f.name for f in model.registers}
        self.extra_values = {
            name: value
            for name, value in (
                ("model_code", int(model.option("model_code", "0") or 0)),
                ("ct_ratio", self.ct_ratio),
            )
            if name in fields
        }

    def values(self) -> dict[str, object]:
        values = self.reading()
        values["balance"] = max(self.balance, Decimal(0))  # unsigned register
        values["purchase_count"] = self.purchase_count
        values.update(self.extra_values)
        return values

    def image(self) -> dict[str, dict[int, int]]:
        """{table: {address: word}} of the truth now (registers truncate to their resolution), with the
        load-control parameter registers."""
        tables = self._modbus.encode_tables(self.model, self.values(), self.ct_ratio, exact=False)
        if self.param_registers:
            from ..load.params import encode_parameter

            for name, spec in self.param_registers.items():
                r = spec.register
                try:
                    words = encode_parameter(self.model, name, load_parameter(self, name))
                except ConfigError:  # more than the register holds: it shows its largest value
                    words = (0xFFFF,) * r.count
                table = tables.setdefault(r.table, {})
                for i, word in enumerate(words):
                    table[r.address + i] = word
        return tables

    def handle_pdu(self, pdu: bytes) -> tuple[bytes, Mapping[str, object], tuple[str, ...]]:
        """(reply PDU, values said, error names) for one request PDU."""
        if not pdu:
            return self._exception(0, ILLEGAL_FUNCTION)
        fc = pdu[0]
        if fc in (3, 4):
            if len(pdu) != 5:
                return self._exception(fc, ILLEGAL_VALUE)
            address = int.from_bytes(pdu[1:3], "big")
            count = int.from_bytes(pdu[3:5], "big")
            table = "holding" if fc == 3 else "input"
            if not 1 <= count <= 125:
                return self._exception(fc, ILLEGAL_VALUE)
            if address + count > self.space.get(table, 0) or (
                self.missing_registers
                and any((table, a) in self.missing_registers for a in range(address, address + count))
            ):
                return self._exception(fc, ILLEGAL_ADDRESS)
            image = self.image().get(table, {})
            words = [image.get(a, 0) for a in range(address, address + count)]
            said = self._said(table, address, words)
            data = b"".join(w.to_bytes(2, "big") for w in words)
            return bytes((fc, 2 * count)) + data, said, ()
        if fc == 6:
            if len(pdu) != 5:
                return self._exception(fc, ILLEGAL_VALUE)
            address = int.from_bytes(pdu[1:3], "big")
            error = self._write(address, (int.from_bytes(pdu[3:5], "big"),))
            return self._exception(fc, error) if error else (bytes(pdu), {}, ())
        if fc == 16:
            if len(pdu) < 6:
                return self._exception(fc, ILLEGAL_VALUE)
            address = int.from_bytes(pdu[1:3], "big")
            count = int.from_bytes(pdu[3:5], "big")
            if not 1 <= count <= 123 or pdu[5] != 2 * count or len(pdu) != 6 + 2 * count:
                return self._exception(fc, ILLEGAL_VALUE)
            values = tuple(int.from_bytes(pdu[6 + 2 * i : 8 + 2 * i], "big") for i in range(count))
            error = self._write(address, values)
            return self._exception(fc, error) if error else (bytes(pdu[:5]), {}, ())
        return self._exception(fc, ILLEGAL_FUNCTION)

    def _said(self, table: str, address: int, words: list[int]) -> dict[str, object]:
        modbus = self._modbus
        block = modbus.ReadBlock(table, address, len(words))
        names = modbus.fields_in(self.model, block, [f.name for f in self.model.registers])
        return modbus.decode(self.model, {block: words}, self.ct_ratio, names=names)

    def _write(self, address: int, values: tuple[int, ...]) -> int:
        if self.param_words and ("holding", address) in self.param_words:
            return self._write_parameters(address, values)
        found = self._modbus.command_for_write(self.model, address, values)
        if found is None:
            return ILLEGAL_VALUE if address in self.command_addresses else ILLEGAL_ADDRESS
        try:
            error = MODBUS_COMMANDS[found[0]](self)
        except ConfigError:  # a command this meter cannot carry out (a valve on an electricity meter)
            return ILLEGAL_VALUE
        return ILLEGAL_VALUE if error else 0

    def _write_parameters(self, address: int, values: tuple[int, ...]) -> int:
        """A write of whole load-control parameter registers (each from its first word; read-only ones and
        partial ones are exception 02, values they cannot take 03); nothing changes unless all fit."""
        from ..errors import FrameError
        from ..load.params import decode_parameter

        decoded = []
        offset = 0
        while offset < len(values):
            spec = self.param_words.get(("holding", address + offset))
            if spec is None or spec.access != "rw" or spec.register.address != address + offset:
                return ILLEGAL_ADDRESS
            count = spec.register.count
            if offset + count > len(values):
                return ILLEGAL_ADDRESS
            try:
                decoded.append(
                    (spec.name, decode_parameter(self.model, spec.name, values[offset : offset + count]))
                )
            except (FrameError, ConfigError, ValueError):
                return ILLEGAL_VALUE
            offset += count
        try:
            checked = [(name, _load_value_check(name, value)) for name, value in decoded]
        except (ConfigError, ValueError):
            return ILLEGAL_VALUE
        for name, value in checked:
            set_load_parameter(self, name, value)
        return 0

    @staticmethod
    def _exception(fc: int, code: int) -> tuple[bytes, Mapping[str, object], tuple[str, ...]]:
        return bytes(((fc | 0x80) & 0xFF, code)), {}, (MODBUS_EXCEPTION_NAMES[code],)


MODBUS_EXCEPTION_NAMES = {
    ILLEGAL_FUNCTION: "illegal_function",
    ILLEGAL_ADDRESS: "illegal_data_address",
    ILLEGAL_VALUE: "illegal_data_value",
}

# Command kind -> what the meter does (returns an error name or None). Keep-power refuses a trip; a Modbus
# meter then answers exception 03, the only refusal Modbus has.
MODBUS_COMMANDS = {
    "trip": SimMeter.command_trip,
    "close": SimMeter.command_close,
    "keep_power_on": lambda m: m.command_keep_power(True),
    "keep_power_off": lambda m: m.command_keep_power(False),
    "valve_open": lambda m: m.set_valve(Valve.OPEN),
    "valve_close": lambda m: m.set_valve(Valve.CLOSED),
}


# ================================================================================================ DL/T 645


@dataclass(frozen=True, slots=True)
class FramedAnswer:
    """A framed meter's answer: the typed reply (encoded by the wire), what it said, its error bits."""

    reply: object
    said: Mapping[str, object]
    error: tuple[str, ...] = ()
    wire: bytes = b""  # the encoded reply (with the meter's preamble), when the meter cached it


_ZERO = Decimal(0)


class _Snapshot:
    """The values one read needs, computed on first use: ``energy`` (secondary registers: total and the
    four bands) or the instantaneous values (secondary side)."""

    __slots__ = ("_instant", "meter")

    def __init__(self, meter: SimMeter):
        self.meter = meter
        self._instant = None

    def __getitem__(self, key: str):
        meter = self.meter
        if key == "energy":
            total, bands = meter.secondary_registers()
            return (total, *bands)
        if self._instant is None:
            self._instant = meter.secondary_instantaneous()
        return self._instant[key]


_RECHARGE_OUTCOME_SERR = {
    RechargeOutcome.DUPLICATE: "duplicate_recharge",
    RechargeOutcome.COUNT_ERROR: "recharge_count_error",
    RechargeOutcome.OVER_HOARDING_LIMIT: "over_hoarding_limit",
}


def _energy(index: int):
    """The reader of energy register ``index`` (0 total, 1-4 the bands) from a read's snapshot."""
    return lambda m, s: s["energy"][index]


def _dlt_reader_table() -> tuple[dict[str, object], dict[str, object]]:
    """DI -> function(meter, snapshot) -> value, as data. ``snapshot`` holds what one request needs."""
    table: dict[str, object] = {}
    for family in ("0000", "0001"):
        for index in range(5):
            table[f"{family}{index:02X}00"] = _energy(index)
        table[f"{family}FF00"] = lambda m, s: s["energy"]
    table["00020000"] = lambda m, s: Decimal(m.reverse_units).scaleb(-2)
    table["03300D00"] = lambda m, s: m.cover_open_count
    table["03350000"] = lambda m, s: m.magnetic_count
    table.update(
        {
            "02010100": lambda m, s: s["voltage"],
            "02010200": lambda m, s: _ZERO,
            "02010300": lambda m, s: _ZERO,
            "0201FF00": lambda m, s: (s["voltage"], _ZERO, _ZERO),
            "02020100": lambda m, s: s["current"],
            "02020200": lambda m, s: _ZERO,
            "02020300": lambda m, s: _ZERO,
            "0202FF00": lambda m, s: (s["current"], _ZERO, _ZERO),
            "02030000": lambda m, s: s["power"],
            "02030100": lambda m, s: s["power"],
            "02030200": lambda m, s: _ZERO,
            "02030300": lambda m, s: _ZERO,
            "0203FF00": lambda m, s: (s["power"], s["power"], _ZERO, _ZERO),
            "02060000": lambda m, s: s["power_factor"],
            "02060100": lambda m, s: s["power_factor"],
            "02060200": lambda m, s: _ZERO,
            "02060300": lambda m, s: _ZERO,
            "0206FF00": lambda m, s: (s["power_factor"], s["power_factor"], _ZERO, _ZERO),
            "02800002": lambda m, s: s["frequency"],
            "04000101": lambda m, s: m.meter_local().date(),
            "04000102": lambda m, s: m.meter_local().time().replace(microsecond=0),
            "04000401": lambda m, s: m.address,
            "04000402": lambda m, s: m.meter_number[-12:].zfill(12),
            "0400040E": lambda m, s: m.customer_number,
            "04000501": lambda m, s: 0,
            "04000502": lambda m, s: 0,
            "04000503": lambda m, s: m.status_word3(),
            "04000504": lambda m, s: 0,
            "04000505": lambda m, s: 0,
            "04000506": lambda m, s: 0,
            "04000507": lambda m, s: 0,
            "040005FF": lambda m, s: (0, 0, m.status_word3(), 0, 0, 0, 0),
        }
    )
    prepaid = {
        "00900100": lambda m, s: _ZERO,
        "00900101": lambda m, s: _ZERO,
        "00900200": lambda m, s: max(m.balance, _ZERO),
        "00900201": lambda m, s: max(-m.balance, _ZERO),
        "04001001": lambda m, s: micro_money(m.alarm1_micro),
        "04001002": lambda m, s: micro_money(m.alarm2_micro),
        "04001003": lambda m, s: micro_money(m.overdraft_micro),
        "04001004": lambda m, s: m.ledger.hoarding_limit or Decimal("999999.99"),
        "04001005": lambda m, s: micro_money(m.close_threshold_micro),
        "03330201": lambda m, s: m.purchase_count % 10_000,
        **{f"040501{n:02X}": (lambda i: lambda m, s: m.prices[i])(n - 1) for n in range(1, 5)},
    }
    table.update(_load_readers())
    return table, prepaid


# -- load control over DL/T 645 (identifiers: prepaid_engine.load.params.DLT645_IDENTIFIERS, all uncertain) --


def _kw_of(watts: int) -> Decimal:
    return Decimal(watts).scaleb(-3)


def _event_digits(meter: SimMeter, index: int) -> str:
    from ..load.params import EventRecord

    events = meter.lc.events
    if index >= len(events):
        return "0" * 20
    meter_ms, reason, power_w = events[index]
    at = from_ms(meter_ms).astimezone(meter.clock_tz).replace(tzinfo=None, microsecond=0)
    return EventRecord(at, TripReason(reason), _kw_of(min(power_w, 99_999))).to_digits()


def _load_readers() -> dict[str, object]:
    from ..load.params import DLT645_IDENTIFIERS as ids
    from ..load.params import EVENTS, RANGES

    def setting(name: str):
        return lambda m, s: getattr(m.lc, name)

    table = {
        ids["power_limit"]: lambda m, s: _kw_of(m.lc.limit_w),
        ids["power_limit_mode"]: setting("limit_mode"),
        ids["malicious_mode"]: setting("malicious_mode"),
        ids["pf_threshold"]: lambda m, s: Decimal(m.lc.pf_milli).scaleb(-3),
        ids["restore_delay"]: setting("restore_delay_s"),
        ids["restore_count"]: setting("restore_max"),
        ids["trip_reason"]: setting("trip_reason"),
        ids["restores_today"]: lambda m, s: m.lc.restores_on(m.env.calendar.local(m.now_ms()).toordinal()),
        ids["event_count"]: lambda m, s: m.lc.event_count % 1_000_000,
    }
    for n in range(RANGES):
        table[ids[f"range_{n + 1}_low"]] = (lambda i: lambda m, s: _kw_of(m.lc.ranges[i]))(2 * n)
        table[ids[f"range_{n + 1}_high"]] = (lambda i: lambda m, s: _kw_of(m.lc.ranges[i]))(2 * n + 1)
    for n in range(EVENTS):
        table[ids[f"event_{n + 1}"]] = (lambda i: lambda m, s: _event_digits(m, i))(n)
    return table


def load_parameter(meter: SimMeter, name: str):
    """The value of load-control parameter ``name`` (:data:`prepaid_engine.load.params.PARAMETERS`) now."""
    from ..load.classify import LimitMode, MaliciousMode

    lc = meter.lc
    if name.startswith("range_"):
        n, end = name[6:].split("_")
        return _kw_of(lc.ranges[2 * (int(n) - 1) + (end == "high")])
    if name.startswith("event_") and name != "event_count":
        return None  # event records are read over DL/T 645 only
    values = {
        "power_limit": lambda: _kw_of(lc.limit_w),
        "power_limit_mode": lambda: (LimitMode.ALARM, LimitMode.TRIP)[lc.limit_mode],
        "malicious_mode": lambda: (MaliciousMode.OFF, MaliciousMode.ALARM, MaliciousMode.TRIP)[
            lc.malicious_mode
        ],
        "pf_threshold": lambda: Decimal(lc.pf_milli).scaleb(-3),
        "restore_delay": lambda: lc.restore_delay_s,
        "restore_count": lambda: lc.restore_max,
        "trip_reason": lambda: TripReason(lc.trip_reason),
        "restores_today": lambda: lc.restores_on(meter.env.calendar.local(meter.now_ms()).toordinal()),
        "event_count": lambda: lc.event_count % (1 << 32),
    }
    return values[name]()


def _load_value_check(name: str, value):
    """``value`` as the simulated meter stores it (W, codes, milli), or ConfigError."""
    from ..load.classify import LimitMode, MaliciousMode

    if name == "power_limit" or name.startswith("range_"):
        return _watts(value)
    if name == "power_limit_mode":
        return (LimitMode.ALARM, LimitMode.TRIP).index(value)
    if name == "malicious_mode":
        return (MaliciousMode.OFF, MaliciousMode.ALARM, MaliciousMode.TRIP).index(value)
    if name == "pf_threshold":
        milli = Decimal(value) * 1000
        if not 0 < milli <= 1000 or milli != milli.to_integral_value():
            raise ConfigError(f"a PF threshold is within 0 < t <= 1 in 0.001, not {value}")
        return int(milli)
    if name in ("restore_delay", "restore_count"):
        return int(value)
    raise ConfigError(f"parameter {name} is read-only")


_LOAD_ATTRIBUTES = {
    "power_limit": "limit_w",
    "power_limit_mode": "limit_mode",
    "malicious_mode": "malicious_mode",
    "pf_threshold": "pf_milli",
    "restore_delay": "restore_delay_s",
    "restore_count": "restore_max",
}


def set_load_parameter(meter: SimMeter, name: str, stored) -> None:
    """Set load-control parameter ``name`` to ``stored`` (:func:`_load_value_check`'s form)."""
    meter.advance()
    if name.startswith("range_"):
        n, end = name[6:].split("_")
        meter.lc.ranges[2 * (int(n) - 1) + (end == "high")] = stored
    else:
        setattr(meter.lc, _LOAD_ATTRIBUTES[name], stored)
    meter._instant_cache = None


def _watts(value: Decimal) -> int:
    watts = Decimal(value) * 1000
    if watts != watts.to_integral_value() or watts < 0:
        raise ConfigError(f"{value} kW is not a whole number of watts")
    return int(watts)


def _load_setter(apply):
    def setter(meter: SimMeter, value) -> None:
        meter.advance()
        apply(meter.lc, value)
        meter._instant_cache = None

    return setter


def _choice(name: str, high: int):
    def apply(lc, value: int) -> None:
        if not 0 <= value <= high:
            raise ConfigError(f"{name} is 0..{high}, not {value}")
        setattr(lc, name, value)

    return apply


def _set_pf(lc, value: Decimal) -> None:
    milli = Decimal(value) * 1000
    if not 0 < milli <= 1000:
        raise ConfigError(f"a PF threshold is within 0 < t <= 1, not {value}")
    lc.pf_milli = int(milli)


def _set_range(index: int):
    def apply(lc, value: Decimal) -> None:
        lc.ranges[index] = _watts(value)

    return apply


def _load_writers() -> dict[str, object]:
    from ..load.params import DLT645_IDENTIFIERS as ids
    from ..load.params import RANGES

    table = {
        ids["power_limit"]: _load_setter(lambda lc, v: setattr(lc, "limit_w", _watts(v))),
        ids["power_limit_mode"]: _load_setter(_choice("limit_mode", 1)),
        ids["malicious_mode"]: _load_setter(_choice("malicious_mode", 2)),
        ids["pf_threshold"]: _load_setter(_set_pf),
        ids["restore_delay"]: _load_setter(lambda lc, v: setattr(lc, "restore_delay_s", v)),
        ids["restore_count"]: _load_setter(lambda lc, v: setattr(lc, "restore_max", v)),
    }
    for n in range(2 * RANGES):
        table[ids[f"range_{n // 2 + 1}_{'high' if n % 2 else 'low'}"]] = _load_setter(_set_range(n))
    return table


def _set_money(attribute: str):
    def setter(meter: SimMeter, value: Decimal) -> None:
        meter.advance()
        setattr(meter, attribute, money_micro(value))

    return setter


def _set_price(index: int):
    def setter(meter: SimMeter, value: Decimal) -> None:
        prices = list(meter.prices)
        prices[index] = value
        meter.set_prices(prices)

    return setter


def _set_hoarding(meter: SimMeter, value: Decimal) -> None:
    meter.ledger.hoarding_limit = value


def _set_date(meter: SimMeter, value) -> None:
    local = meter.meter_local()
    meter.set_meter_time(local.replace(year=value.year, month=value.month, day=value.day))


def _set_time(meter: SimMeter, value) -> None:
    local = meter.meter_local()
    meter.set_meter_time(local.replace(hour=value.hour, minute=value.minute, second=value.second))


# DI -> setter(meter, decoded value): what a password-checked write (C=14) may change.
DLT645_WRITERS = {
    "04001001": _set_money("alarm1_micro"),
    "04001002": _set_money("alarm2_micro"),
    "04001003": _set_money("overdraft_micro"),
    "04001004": _set_hoarding,
    "04001005": _set_money("close_threshold_micro"),
    "04000101": _set_date,
    "04000102": _set_time,
    **{f"040501{n:02X}": _set_price(n - 1) for n in range(1, 5)},
}
DLT645_PREPAID_WRITES = frozenset(di for di in DLT645_WRITERS if di.startswith(("040010", "040501")))
DLT645_WRITERS.update(_load_writers())


@functools.cache
def _dlt645_tables() -> dict[str, dict]:
    """The DL/T 645-2007 meter's tables (built once, shared by every meter): readers, writers, relay codes
    and request handlers."""
    from ..codecs import dlt645

    readers, prepaid = _dlt_reader_table()
    r = dlt645.RelayCode
    return {
        "readers": readers,
        "readers_prepaid": {**readers, **prepaid},
        "writers": {di: f for di, f in DLT645_WRITERS.items() if di not in DLT645_PREPAID_WRITES},
        "writers_prepaid": DLT645_WRITERS,
        "relay_actions": {
            r.TRIP: lambda m: m.command_trip(),
            r.CLOSE_ALLOWED: lambda m: m.command_allow_closing(),
            r.CLOSE: lambda m: m.command_close(),
            r.TRIP_AUTO_RESTORE: lambda m: m.command_trip(int(m.env.config.auto_restore * 1000)),
            r.TRIP_AUTO_RESTORE_2: lambda m: m.command_trip(int(m.env.config.auto_restore * 1000)),
            r.ALARM: lambda m: m.command_alarm(True),
            r.ALARM_CLEAR: lambda m: m.command_alarm(False),
            r.KEEP_POWER: lambda m: m.command_keep_power(True),
            r.KEEP_POWER_CLEAR: lambda m: m.command_keep_power(False),
        },
        "handlers": {
            dlt645.ReadRequest: Dlt645Meter._on_read,
            dlt645.WriteRequest: Dlt645Meter._on_write,
            dlt645.RelayControl: Dlt645Meter._on_relay,
            dlt645.SecurityRequest: Dlt645Meter._on_security,
            dlt645.ReadAddress: Dlt645Meter._on_read_address,
            dlt645.BroadcastTime: Dlt645Meter._on_broadcast_time,
            dlt645.Freeze: lambda m, msg: FramedAnswer(dlt645.AckReply(m.address, 0x16), {}),
        },
    }


class _FramedMeter(SimMeter):
    """What DL/T 645 and CJ/T 188 meters share: the codec module, the clock zone, passwords."""

    codec = None  # the codec module (set by subclasses)

    def __init__(self, config: MeterConfig, model: MeterModel, env: MeterEnv):
        from zoneinfo import ZoneInfo

        super().__init__(config, model, env)
        self.lacks = frozenset(di.upper() for di in config.lacks)  # data identifiers, as decoded
        self.clock_tz = ZoneInfo(env.config.meter_timezone)
        # Password level -> password (6 hex digits). The model's level and password, and level 04 (the
        # second-class password many meters accept for parameters), both "000000" unless the model says.
        level = int(model.option("password_level", "02") or "2")
        self.passwords = {4: "000000", level: model.option("password", "000000").upper()}

    def meter_local(self) -> datetime:
        return from_ms(self.meter_time_ms()).astimezone(self.clock_tz)

    def set_meter_time(self, when: datetime) -> None:
        """Set the meter's clock (broadcast time, date/time writes); simulated time is not affected."""
        self.clock_offset_ms = int(when.timestamp() * 1000) - self.env.clock.now_ms()

    def password_ok(self, level: int, password: str) -> bool:
        return self.passwords.get(level) == str(password).upper()

    def encode_reply(self, reply: object, address: str | None = None) -> bytes:
        if address is not None:
            reply = _replace(reply, address=address)
        return self.codec.encode(reply, preamble=self.preamble, tz=self.clock_tz)


def _replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


class Dlt645Meter(_FramedMeter):
    """A DL/T 645-2007 meter: reads (single DIs and blocks), password-checked writes and relay control,
    broadcast time, read address, and the recharge security command (C=03, DI 070102FF)."""

    protocol_name = "dlt645_2007"

    def __init__(self, config: MeterConfig, model: MeterModel, env: MeterEnv):
        from ..codecs import dlt645, dlt645_di

        self.codec = dlt645
        super().__init__(config, model, env)
        self._di = dlt645_di
        tables = _dlt645_tables()
        self.readers = tables["readers_prepaid"] if self.billing else tables["readers"]
        self.writers = tables["writers_prepaid"] if self.billing else tables["writers"]
        self.relay_actions = tables["relay_actions"]
        self.handlers = tables["handlers"]

    # -- truth in protocol shape ----------------------------------------------------------------------------
    def status_word3(self) -> int:
        """Running status word 3 now (relay bits, alarm, meter type, keep power) as the 16-bit word."""
        self.advance()
        return self._di.StatusWord3(
            relay_open=self._relay_open,
            relay_command=self.relay_commanded_open,
            pretrip_alarm=self.alarm,
            meter_type=2 if self.billing else 0,
            keep_power=self.keep_power,
        ).to_word()

    # -- requests -------------------------------------------------------------------------------------------
    def handle(self, frame) -> FramedAnswer | None:
        """The answer to one request frame addressed to this meter (``None``: no reply)."""
        from ..errors import FrameError

        if frame.is_reply:
            return None
        try:
            message = self.codec.decode(frame, tz=self.clock_tz)
        except FrameError:
            return None  # a frame the meter cannot parse: it stays silent
        handler = self.handlers.get(type(message))
        if handler is None:
            function = frame.function
            if function in self.codec.ERROR_FUNCTIONS:
                return self._error(function, "unauthorised")
            return None
        return handler(self, message)

    def _error(self, function: int, *names: str) -> FramedAnswer:
        err = sum(1 << self.codec.ERR_BITS.index(name) for name in names)
        return FramedAnswer(self.codec.ErrorReply(self.address, function, err), {}, names)

    def _on_read(self, message) -> FramedAnswer:
        reader = self.readers.get(message.di)
        if reader is None or message.count is not None or message.di in self.lacks:
            return self._error(0x11, "no_data")
        self.advance()
        return self._read_answer(message.di, reader(self, _Snapshot(self)), self._di.DI_TABLE)

    def _read_answer(self, di: str, value, table) -> FramedAnswer:
        """The read reply for ``value`` of ``di``; encoded once and reused while the value stays the same
        (registers move in 0.01 steps, so most reads of a meter repeat the previous bytes)."""
        cached = self._read_cache.get(di)
        if cached is not None and cached[0] == value and cached[1] == self.preamble:
            return cached[2]
        item = table[di]
        raw = self._di.encode_item(item, value, table=table)
        reply = self.codec.ReadReply(self.address, di, raw)
        answer = FramedAnswer(reply, self._di.values_of(item, value, table), (), self.encode_reply(reply))
        self._read_cache[di] = (value, self.preamble, answer)
        return answer

    def _on_write(self, message) -> FramedAnswer:
        if not self.password_ok(message.password_level, message.password):
            return self._error(0x14, "unauthorised")
        writer = self.writers.get(message.di)
        if writer is None:
            return self._error(0x14, "unauthorised" if message.di in self._di.DI_TABLE else "no_data")
        from ..errors import ConfigError, FrameError

        try:
            value = self._di.decode_value(message.di, message.value)
            writer(self, value)
        except (FrameError, ConfigError, ValueError):
            return self._error(0x14, "other")
        return FramedAnswer(self.codec.AckReply(self.address, 0x14), {})

    def _on_relay(self, message) -> FramedAnswer:
        if not self.password_ok(message.password_level, message.password):
            return self._error(0x1C, "unauthorised")
        if message.valid_until < self.meter_local():
            return self._error(0x1C, "other")  # the command's validity has expired
        refused = self.relay_actions[message.code](self)
        if refused:
            return self._error(0x1C, refused)
        return FramedAnswer(self.codec.AckReply(self.address, 0x1C), {"supply": self.supply})

    def _on_read_address(self, message) -> FramedAnswer:
        return FramedAnswer(self.codec.AddressReply(self.address), {})

    def _on_broadcast_time(self, message) -> None:
        self.set_meter_time(message.when)
        return None

    def _on_security(self, message) -> FramedAnswer:
        from ..errors import ConfigError, FrameError, SecurityError
        from ..security import verify_recharge

        codec = self.codec
        if message.di != codec.RECHARGE_DI or not self.billing:
            return self._security_error("other")
        try:
            order = verify_recharge(self.env.config.master_key, self.meter_number, message.payload)
        except SecurityError:
            return self._security_error("authentication_failed")
        except (FrameError, ConfigError):
            return self._security_error("other")
        if int(self.customer_number or "0") and order.customer_number != self.customer_number:
            return self._security_error("customer_number_mismatch")
        outcome = self.recharge(order)
        if outcome is not RechargeOutcome.APPLIED:
            return self._security_error(_RECHARGE_OUTCOME_SERR[outcome])
        said = {"balance": self.balance, "purchase_count": self.purchase_count}
        return FramedAnswer(codec.SecurityReply(self.address, message.di), said)

    def _security_error(self, name: str) -> FramedAnswer:
        codec = self.codec
        return FramedAnswer(codec.SecurityErrorReply(self.address, codec.serr_word(name)), {}, (name,))


@functools.cache
def _dlt1997_readers() -> dict[str, object]:
    table = {f"901{n}": _energy(n) for n in range(5)}
    volts = lambda m, s: s["voltage"].quantize(Decimal(1), rounding="ROUND_DOWN")  # noqa: E731
    amps = lambda m, s: s["current"].quantize(Decimal("0.01"), rounding="ROUND_DOWN")  # noqa: E731
    table.update(
        {
            "901F": lambda m, s: s["energy"],
            "B611": volts,
            "B612": lambda m, s: _ZERO,
            "B613": lambda m, s: _ZERO,
            "B61F": lambda m, s: (volts(m, s), _ZERO, _ZERO),
            "B621": amps,
            "B622": lambda m, s: _ZERO,
            "B623": lambda m, s: _ZERO,
            "B62F": lambda m, s: (amps(m, s), _ZERO, _ZERO),
            "B630": lambda m, s: s["power"],
            "B631": lambda m, s: s["power"],
            "B632": lambda m, s: _ZERO,
            "B633": lambda m, s: _ZERO,
            "B63F": lambda m, s: (s["power"], s["power"], _ZERO, _ZERO),
            "B650": lambda m, s: s["power_factor"],
            "C010": lambda m, s: m.meter_local().date(),
            "C011": lambda m, s: m.meter_local().time().replace(microsecond=0),
            "C032": lambda m, s: m.meter_number[-12:].zfill(12),
        }
    )
    return table


@functools.cache
def _dlt1997_handlers() -> dict:
    from ..codecs import dlt645_1997

    return {
        dlt645_1997.ReadRequest: Dlt1997Meter._on_read,
        dlt645_1997.BroadcastTime: Dlt645Meter._on_broadcast_time,
    }


class Dlt1997Meter(Dlt645Meter):
    """A DL/T 645-1997 meter: reads of the 1997 identifiers (energies, V/I/P/PF, date, time, meter number)
    and broadcast time. Writes are refused (unauthorised); the 1997 edition has no relay control."""

    protocol_name = "dlt645_1997"

    def __init__(self, config: MeterConfig, model: MeterModel, env: MeterEnv):
        from ..codecs import dlt645_1997

        super().__init__(config, model, env)
        self.codec = dlt645_1997
        self.readers = _dlt1997_readers()
        self.handlers = _dlt1997_handlers()
        self._table = dlt645_1997.DI_TABLE

    def _on_read(self, message) -> FramedAnswer:
        reader = self.readers.get(message.di)
        if reader is None or message.di in self.lacks:
            return self._error(0x01, "no_data")
        self.advance()
        return self._read_answer(message.di, reader(self, _Snapshot(self)), self._table)


# ================================================================================================ CJ/T 188


@functools.cache
def _cjt188_tables() -> tuple[dict, dict]:
    from ..codecs import cjt188

    valve_states = {
        Valve.OPEN: cjt188.ValveState.OPEN,
        Valve.CLOSED: cjt188.ValveState.CLOSED,
        Valve.ABNORMAL: cjt188.ValveState.ABNORMAL,
    }
    handlers = {
        cjt188.ReadRequest: CjtMeter._on_read,
        cjt188.ReadAddress: CjtMeter._on_read_address,
        cjt188.ValveControl: CjtMeter._on_valve,
        cjt188.WriteRequest: lambda m, msg: m._error(0x04, msg.ser),
    }
    return valve_states, handlers


class CjtMeter(_FramedMeter):
    """A CJ/T 188 water meter: 901F reads (cumulative and settlement-day flow, meter time, valve and battery
    status), read address and valve control (A017). Requests for another meter type (not ``AA``) are not
    for it: it stays silent. Other identifiers are answered with an abnormal reply carrying the status."""

    protocol_name = "cjt188"

    def __init__(self, config: MeterConfig, model: MeterModel, env: MeterEnv):
        from ..codecs import cjt188

        self.codec = cjt188
        super().__init__(config, model, env)
        self.meter_type = int(model.option("meter_type", "10") or "10", 16)
        self.di_order = model.option("di_order", "msb") or "msb"
        self.valve_states, self.handlers = _cjt188_tables()

    def status(self) -> int:
        self.advance()
        return self.codec.status_word(self.valve_states[self.valve], self.battery_low)

    def encode_reply(self, reply: object, address: str | None = None) -> bytes:
        if address is not None:
            reply = _replace(reply, address=address)
        return self.codec.encode(reply, di_order=self.di_order, preamble=self.preamble, tz=self.clock_tz)

    def handle(self, frame) -> FramedAnswer | None:
        from ..errors import FrameError

        if frame.is_reply or frame.meter_type not in (self.meter_type, 0xAA):
            return None
        try:
            message = self.codec.decode(frame, di_order=self.di_order, tz=self.clock_tz)
        except FrameError:
            return None
        handler = self.handlers.get(type(message))
        return None if handler is None else handler(self, message)

    def _error(self, function: int, ser: int) -> FramedAnswer:
        reply = self.codec.ErrorReply(self.meter_type, self.address, function, self.status(), ser)
        return FramedAnswer(reply, {}, ("abnormal",))

    def _on_read(self, message) -> FramedAnswer:
        if message.di != self.codec.DI_METER_DATA or message.di in self.lacks:
            return self._error(0x01, message.ser)
        self.advance()
        reply = self.codec.FlowReply(
            self.meter_type,
            self.address,
            self.total,
            self.settlement_total,
            self.meter_local(),
            self.status(),
            message.ser,
        )
        return FramedAnswer(reply, self.codec.reading_values(reply))

    def _on_read_address(self, message) -> FramedAnswer:
        return FramedAnswer(self.codec.AddressReply(self.meter_type, self.address, message.ser), {})

    def _on_valve(self, message) -> FramedAnswer:
        if self.valve != Valve.ABNORMAL:  # a stuck valve does not move; the status says so
            self.set_valve(Valve.OPEN if message.action == self.codec.ValveAction.OPEN else Valve.CLOSED)
        reply = self.codec.WriteReply(
            self.meter_type, self.address, self.codec.DI_VALVE, self.status(), message.ser
        )
        return FramedAnswer(reply, self.codec.reading_values(reply))
