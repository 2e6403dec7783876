"""DL/T 645-2007 meter session: reads, relay control, keep power, prices, load parameters and recharge.

Reading: one read (C=11) per data identifier of the model's ``reads``; the replies' values are merged with
``dlt645.collect_reading`` (balance = remaining money, or minus the overdraft), then energies, current and
power are multiplied by the meter's CT ratio (the registers are the CT's secondary side) unless the model
option ``ct_scaling`` is ``"primary"`` (a meter that already reports primary values).

Meters that lack identifiers: an error reply with ERR bit 1 ("no such data") to a block read (``0001FF00``,
which many meters do not have) is followed by reads of the block's single identifiers (``00010000``,
``00010100``..``00010400``, from the DI table); a single identifier the meter lacks is left out and the rest
kept (the poller reports what is missing). Identifiers in ``MeterSpec.skip`` are not asked for: a skipped
block is read as its members from the start.

Commands and how each is confirmed:

- TRIP / CLOSE: relay control C=1C with N1 1A / 1C; confirmed by status word 3 (04000503) bit 4 (relay open).
- KEEP_POWER_ON / _OFF: relay control N1 3A / 3B; confirmed by status word 3 bit 12 only when the model
  option ``keep_power_bit`` is ``"12"`` (a State Grid extension); otherwise the acknowledgement alone
  completes it (``confirmed=False``).
- SET_PRICES: one write C=14 per price (04050101..04: sharp, peak, flat, valley); confirmed by reading the
  same identifiers back equal to the prices sent.
- SET_LOAD_PARAMETERS: one write C=14 per load-control parameter of the command (the model's identifiers,
  :mod:`prepaid_engine.load.params`); confirmed by reading the same identifiers back equal to the values
  sent. A model without those parameters (or only reading one of them) cannot take it (unsupported).
- RECHARGE: security command C=03, DI 070102FF, payload from ``security.build_recharge`` (the poller's master
  key, the meter number, amount, purchase count, customer number); confirmed by 03330201 (purchase count)
  at or past the count sent (counts are strictly sequential, so the meter applied it), with 00900200
  (balance) when the model reads it. A model that does not read
  03330201 has no read-back: the acknowledgement alone completes it (``confirmed=False``).

The relay command's validity (N3..N8) counts on the meter's own clock, which drifts from ours (and a
simulated meter's runs at the simulator's speed): before each relay control attempt the meter's time
(04000102) and then its date (04000101) are read, and the command is valid until that moment + the poller's
relay window (wall-clock time in the meter's own zone, whatever it is). Read in that order, a midnight
between the two reads can only make the validity a day longer, never past. A meter that refuses the clock
reads (or whose model lacks them, ``MeterSpec.skip``) gets our clock + the window, in the zone of the model
option ``clock_timezone`` (default UTC), and the result message says so. Password level, password and
operator code come from the model options (``password_level``, ``password``, ``operator``; defaults 02 /
000000 / 00000000).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..codecs import dlt645
from ..codecs.dlt645_di import StatusWord3, decode_value
from ..errors import ConfigError, FrameError, MeterError, SecurityError
from ..security import RechargeOrder, build_recharge
from ..types import CommandKind, MeterCommand, MeterModel, MeterSpec, Supply
from .base import CommandContext, CommandPlan, FrameStep, ReadPlan, Step, Values, unskipped

READ = 0x11
WRITE = 0x14
RELAY = 0x1C
SECURITY = 0x03

STATUS3_DI = "04000503"
DATE_DI = "04000101"  # YYMMDDWW
TIME_DI = "04000102"  # hhmmss
CLOCK_DIS = (TIME_DI, DATE_DI)  # time first: a midnight in between lengthens the validity, never voids it
PURCHASE_COUNT_DI = "03330201"
REMAINING_MONEY_DI = "00900200"
PRICE_DIS = ("04050101", "04050102", "04050103", "04050104")  # sharp, peak, flat, valley
# Reading fields measured through the CT (primary = register x CT ratio)
CT_FIELDS = ("total", "sharp", "peak", "flat", "valley", "current", "power")

# What the read-back must show for a relay command: (values key, wanted value)
RELAY_CONFIRMATIONS: dict[CommandKind, tuple[str, Any]] = {
    CommandKind.TRIP: ("supply", Supply.OFF),
    CommandKind.CLOSE: ("supply", Supply.ON),
    CommandKind.KEEP_POWER_ON: ("keep_power", True),
    CommandKind.KEEP_POWER_OFF: ("keep_power", False),
}
KEEP_POWER_KINDS = frozenset({CommandKind.KEEP_POWER_ON, CommandKind.KEEP_POWER_OFF})


def _pair_parser(codec: Any, address: str, di: str, function: int) -> Callable[[Any], Values]:
    """A read reply -> ``{"__raw__": ((di, value bytes),)}``, checked (address, function, DI, error reply).

    Hot path: the link only hands over frames the codec's ``reply_filter`` accepted (this meter, this
    function, this DI); a plain normal reply (control ``0x80 | function``: no error, no follow-up) then
    carries the value right after the DI in the codec's de-scrambled ``Frame.data``. Everything else
    (error replies, follow-ups, frames that did not come through the filter) goes through ``parse_reply``.
    """
    parse_reply = codec.parse_reply
    plain = 0x80 | function
    accepts = codec.reply_filter(address, function, di)
    di_len = len(di) // 2

    def parse(frame: Any) -> Values:
        if frame.control == plain and accepts(frame):
            return {"__raw__": ((di, frame.data[di_len:]),)}
        reply = parse_reply(frame, address, di, function=function)
        if reply.more:
            raise FrameError(f"{di}: the meter wants follow-up frames; a poll reads single-frame identifiers")
        return {"__raw__": ((reply.di, reply.value),)}

    return parse


def lacks_data(exc: MeterError) -> bool:
    """A refusal that means "no such data" (ERR bit 1, both editions): the meter lacks the identifier."""
    return "no_data" in exc.names


def _ack_parser(address: str, function: int) -> Callable[[Any], Values]:
    def parse(frame: Any) -> Values:
        dlt645.parse_reply(frame, address, function=function)  # raises the meter's refusal
        return {}

    return parse


def _pairs(replies: Sequence[Values]) -> tuple[tuple[str, bytes], ...]:
    if len(replies) == 1:
        return replies[0].get("__raw__", ())
    return tuple(pair for reply in replies for pair in reply.get("__raw__", ()))


class _Memo:
    """Decoded values by the (identifier, value bytes) pairs they came from: decoding is a pure function of
    them, and most of a fleet's registers (energy blocks of idle meters, status words, balances, counts) read
    the same bytes cycle after cycle. Bounded: emptied when full."""

    __slots__ = ("_collect", "_values", "limit", "misses")

    def __init__(self, collect: Callable[[Sequence[tuple[str, bytes]]], Values], limit: int = 65536):
        self._collect = collect
        self._values: dict[tuple[tuple[str, bytes], ...], Values] = {}
        self.limit = limit
        self.misses = 0  # decodes actually done (for the benchmark's report)

    def clear(self) -> None:
        self._values.clear()

    def __call__(self, pairs: tuple[tuple[str, bytes], ...]) -> Values:
        values = self._values.get(pairs)
        if values is None:
            self.misses += 1
            values = self._collect(pairs)
            if len(self._values) >= self.limit:
                self._values.clear()
            self._values[pairs] = values
        return dict(values)


def _ct_scaler(meter: MeterSpec) -> Callable[[Values], Values]:
    ct = meter.ct_ratio
    if ct == 1 or meter.model.option("ct_scaling", "secondary") == "primary":
        return lambda values: values

    def scale(values: Values) -> Values:
        for name in CT_FIELDS:
            value = values.get(name)
            if value is not None:
                values[name] = value * ct
        return values

    return scale


def _auth(model: MeterModel) -> dict[str, str]:
    return {
        "password_level": model.option("password_level", "02"),
        "password": model.option("password", "000000"),
        "operator": model.option("operator", "00000000"),
    }


def _clock_zone(model: MeterModel) -> ZoneInfo:
    """The zone of the meter's clock, for a validity counted on our clock (model option
    ``clock_timezone``)."""
    name = model.option("clock_timezone", "UTC") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"model {model.code}: unknown clock_timezone {name!r}") from exc


def _count_reached(meter_count: int | None, sent: int) -> bool:
    """Counts are strictly sequential: a meter whose count is at or past ``sent`` has applied ``sent``."""
    return meter_count is not None and meter_count >= sent


class Dlt645Adapter:
    """Meter sessions for DL/T 645-2007 meters (see the module docstring)."""

    link_kind = "framed"
    builders: dict[CommandKind, Any]
    codec: Any = dlt645
    read_function = READ

    @staticmethod
    def collect(pairs: Sequence[tuple[str, bytes]]) -> Values:
        return dlt645.collect_reading(pairs)

    def _read_step(self, address: str, di: str) -> FrameStep:
        codec, function = self.codec, self.read_function
        return FrameStep(
            codec.read(address, di),
            codec.reply_filter(address, function, di),
            _pair_parser(codec, address, di, function),
            di,
            codec.Deframer,
        )

    def __init__(self) -> None:
        self._memo = _Memo(self.collect)

    def _members(self, di: str) -> tuple[str, ...]:
        """The single identifiers of block ``di`` (``()`` for a single identifier or an unknown one)."""
        item = self.codec.DI_TABLE.get(di)
        return item.members if item is not None else ()

    def read_plan(self, meter: MeterSpec) -> ReadPlan:
        reads = meter.model.reads
        if not reads:
            raise ConfigError(f"model {meter.model.code} lists no data identifier to read")
        address, skip = meter.address, meter.skip
        if skip:  # a block the meter lacks is read as its single identifiers
            expanded = [part for di in reads for part in (self._members(di) if di in skip else (di,))]
            reads = unskipped(expanded, skip, reads)
        steps = tuple(self._read_step(address, di) for di in reads)
        scale = _ct_scaler(meter)
        collect = self._memo

        def fold(steps: Sequence[Step], replies: Sequence[Values]) -> Values:
            return scale(collect(_pairs(replies)))

        def parts(step: Step) -> tuple[Step, ...]:
            return tuple(self._read_step(address, di) for di in self._members(step.label) if di not in skip)

        return ReadPlan(steps, fold, lacks_data, parts)

    def _values_plan(self, meter: MeterSpec, dis: Sequence[str]) -> ReadPlan:
        """A read-back of ``dis``: reading values plus ``keep_power`` (status word 3) and ``prices``."""
        steps = tuple(self._read_step(meter.address, di) for di in dis)
        scale = _ct_scaler(meter)
        collect = self.collect

        def fold(steps: Sequence[Step], replies: Sequence[Values]) -> Values:
            pairs = _pairs(replies)
            values = scale(collect(pairs))
            prices = {}
            for di, raw in pairs:
                if di == STATUS3_DI:
                    values["keep_power"] = StatusWord3.from_word(decode_value(di, raw)).keep_power
                elif di in PRICE_DIS:
                    prices[di] = decode_value(di, raw)
            if prices:
                values["prices"] = tuple(prices.get(di) for di in PRICE_DIS[: len(prices)])
            return values

        return ReadPlan(steps, fold)

    def command_plan(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        kind = CommandKind(command.kind)
        builder = self.builders.get(kind)
        if builder is None:
            raise ConfigError(f"{kind} is not a command {self.codec.__name__.rsplit('.', 1)[-1]} meters take")
        return builder(self, meter, command, ctx)

    def _clock_plan(self, meter: MeterSpec) -> ReadPlan | None:
        """The read of the meter's clock (``{"meter_clock": naive wall-clock datetime}``), or None for a meter
        known to lack it."""
        if meter.skip & set(CLOCK_DIS):
            return None
        steps = tuple(self._read_step(meter.address, di) for di in CLOCK_DIS)

        def fold(steps: Sequence[Step], replies: Sequence[Values]) -> Values:
            raw = dict(_pairs(replies))
            return {
                "meter_clock": datetime.combine(*(decode_value(di, raw[di]) for di in (DATE_DI, TIME_DI)))
            }

        return ReadPlan(steps, fold)

    def _relay(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        kind = CommandKind(command.kind)
        code = dlt645.COMMAND_RELAY_CODES[kind]
        auth, window = _auth(meter.model), ctx.relay_window
        zone = _clock_zone(meter.model)
        action_filter, action_parser = (
            dlt645.reply_filter(meter.address, RELAY),
            _ack_parser(meter.address, RELAY),
        )

        def action(valid_until: datetime) -> FrameStep:
            # valid_until: wall-clock time on the meter, carried as UTC so that the codec writes it as it is
            request = dlt645.relay(meter.address, code, valid_until, **auth)
            return FrameStep(request, action_filter, action_parser, f"relay {code.name}", dlt645.Deframer)

        def actions_for(values: Values | None, now: datetime) -> tuple[tuple[Step, ...], str]:
            clock = (values or {}).get("meter_clock")
            if clock is not None:
                return (action(clock.replace(tzinfo=UTC) + window),), ""
            ours = now.astimezone(zone).replace(tzinfo=UTC) + window
            return (action(ours),), "the meter did not tell its time: validity counted on our clock"

        prepare = self._clock_plan(meter)
        actions = actions_for(None, ctx.now)[0]  # the poller builds each attempt's own with actions_for
        name, wanted = RELAY_CONFIRMATIONS[kind]
        if kind in KEEP_POWER_KINDS and meter.model.option("keep_power_bit") != "12":
            confirm, check, expectation = None, None, "acknowledgement (no keep-power bit on this model)"
        else:
            confirm = self._values_plan(meter, (STATUS3_DI,))
            check, expectation = (lambda v: v.get(name) == wanted), f"{name} = {wanted}"
        return CommandPlan(
            kind, actions, confirm, check, expectation, prepare=prepare, actions_for=actions_for
        )

    def _prices(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        prices = tuple(Decimal(p) for p in command.prices)
        if not 1 <= len(prices) <= len(PRICE_DIS):
            raise ConfigError(
                f"SET_PRICES carries 1..4 prices (sharp, peak, flat, valley), not {len(prices)}"
            )
        auth = _auth(meter.model)
        actions = tuple(
            FrameStep(
                dlt645.write(meter.address, di, price, **auth),
                dlt645.reply_filter(meter.address, WRITE),
                _ack_parser(meter.address, WRITE),
                f"write {di}",
                dlt645.Deframer,
            )
            for di, price in zip(PRICE_DIS, prices, strict=False)
        )
        confirm = self._values_plan(meter, PRICE_DIS[: len(prices)])
        return CommandPlan(
            CommandKind.SET_PRICES,
            actions,
            confirm,
            lambda v: v.get("prices") == prices,
            "prices " + " / ".join(str(p) for p in prices),
        )

    def _load_parameters(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        from ..load import params  # loaded with the first such command, not with every poll

        return params.command_plan(meter, dict(command.parameters))

    def _recharge(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        if ctx.master_key is None:
            raise SecurityError("no master key: recharges cannot be signed")
        if command.amount is None or command.purchase_count is None:
            raise ConfigError("a recharge needs an amount and a purchase count")
        order = RechargeOrder(
            meter.meter_number or meter.address,
            Decimal(command.amount),
            int(command.purchase_count),
            meter.customer_number,
        )
        payload = build_recharge(ctx.master_key, order)
        action = FrameStep(
            dlt645.recharge(meter.address, payload, operator=_auth(meter.model)["operator"]),
            dlt645.reply_filter(meter.address, SECURITY),
            _ack_parser(meter.address, SECURITY),
            f"recharge #{order.purchase_count}",
            dlt645.Deframer,
        )
        count = order.purchase_count
        if PURCHASE_COUNT_DI not in meter.model.reads:
            return CommandPlan(
                CommandKind.RECHARGE,
                (action,),
                None,
                None,
                "acknowledgement",
                purchase_count=count,
                amount=order.amount,
            )
        dis = [PURCHASE_COUNT_DI] + ([REMAINING_MONEY_DI] if REMAINING_MONEY_DI in meter.model.reads else [])
        return CommandPlan(
            CommandKind.RECHARGE,
            (action,),
            self._values_plan(meter, dis),
            lambda v: _count_reached(v.get("purchase_count"), count),
            f"purchase count {count} applied",
            purchase_count=count,
            amount=order.amount,
        )


Builder = Callable[[Dlt645Adapter, MeterSpec, MeterCommand, CommandContext], CommandPlan]
Dlt645Adapter.builders = {
    CommandKind.TRIP: Dlt645Adapter._relay,
    CommandKind.CLOSE: Dlt645Adapter._relay,
    CommandKind.KEEP_POWER_ON: Dlt645Adapter._relay,
    CommandKind.KEEP_POWER_OFF: Dlt645Adapter._relay,
    CommandKind.SET_PRICES: Dlt645Adapter._prices,
    CommandKind.SET_LOAD_PARAMETERS: Dlt645Adapter._load_parameters,
    CommandKind.RECHARGE: Dlt645Adapter._recharge,
}

__all__ = ["Dlt645Adapter"]
