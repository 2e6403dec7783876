"""CJ/T 188-2004 water meter session: 901F reads and valve control (DI A017).

Reading: one read (C=01) per identifier of the model's ``reads`` (normally ``901F``: cumulative flow in m3,
valve state, battery). CJ/T 188 has no "no such data" code: an abnormal reply to a read means the meter lacks
that identifier [UNCERTAIN]; the rest of the reading is kept (the poller reports what is missing) and
identifiers in ``MeterSpec.skip`` are not asked for. Valve commands: write C=04 DI A017 with 55 (open) or 99
(close); the write reply already carries the status word, and the read-back of 901F confirms the valve bits
(open -> supply ON, closed -> supply OFF). Model options: ``meter_type`` (hex, default "10" cold water) and
``di_order`` ("msb" / "lsb").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..codecs import cjt188
from ..errors import ConfigError, MeterError
from ..types import CommandKind, MeterCommand, MeterSpec, Supply
from .base import CommandContext, CommandPlan, FrameStep, ReadPlan, Values, merge_values, unskipped

READ = 0x01
WRITE = 0x04
VALVES: dict[CommandKind, tuple[bool, Supply]] = {
    CommandKind.VALVE_OPEN: (True, Supply.ON),
    CommandKind.VALVE_CLOSE: (False, Supply.OFF),
}


def _options(meter: MeterSpec) -> tuple[str, str]:
    return meter.model.option("meter_type", "10"), meter.model.option("di_order", "msb")


def lacks_data(exc: MeterError) -> bool:
    """Any abnormal reply to a read: CJ/T 188 answers an identifier it does not have that way."""
    return True


def _parser(address: str, di: str | None, function: int, di_order: str) -> Callable[[Any], Values]:
    parse_reply, values_of = cjt188.parse_reply, cjt188.reading_values

    def parse(frame: Any) -> Values:
        return values_of(parse_reply(frame, address, di, function=function, di_order=di_order))

    return parse


class Cjt188Adapter:
    link_kind = "framed"

    def _read_step(self, meter: MeterSpec, di: str) -> FrameStep:
        meter_type, di_order = _options(meter)
        return FrameStep(
            cjt188.read(meter.address, meter_type=meter_type, di=di, di_order=di_order),
            cjt188.reply_filter(meter.address, READ, di, di_order=di_order),
            _parser(meter.address, di, READ, di_order),
            di,
            cjt188.Deframer,
        )

    def read_plan(self, meter: MeterSpec) -> ReadPlan:
        reads = unskipped(meter.model.reads or (cjt188.DI_METER_DATA,), meter.skip)
        return ReadPlan(tuple(self._read_step(meter, di) for di in reads), merge_values, lacks_data)

    def command_plan(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        kind = CommandKind(command.kind)
        if kind not in VALVES:
            raise ConfigError(f"{kind} is not a command CJ/T 188 water meters take (valve open/close only)")
        open_valve, wanted = VALVES[kind]
        meter_type, di_order = _options(meter)
        action = FrameStep(
            cjt188.valve(meter.address, open_valve, meter_type=meter_type, di_order=di_order),
            cjt188.reply_filter(meter.address, WRITE, cjt188.DI_VALVE, di_order=di_order),
            _parser(meter.address, cjt188.DI_VALVE, WRITE, di_order),
            f"valve {'open' if open_valve else 'close'}",
            cjt188.Deframer,
        )
        confirm = ReadPlan((self._read_step(meter, cjt188.DI_METER_DATA),), merge_values)
        return CommandPlan(kind, (action,), confirm, lambda v: v.get("supply") is wanted, f"supply {wanted}")
