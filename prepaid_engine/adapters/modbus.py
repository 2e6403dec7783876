"""Modbus meters (Acrel DDSY1352/DTSY1352/ADF300, generic maps): register reads and FC16 command writes.

The register map is the model's data (``codecs.modbus``): a poll reads the fewest blocks that cover the map's
reading fields (``read_plan``) and decodes them (``decode``, energies x CT ratio). A command is the model's
block write for its kind (``command_write``); trip/close are confirmed by reading the relay-state field back
when the map has one, else the acknowledgement alone completes them (``confirmed=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..codecs import modbus as mb
from ..types import CommandKind, MeterCommand, MeterModel, MeterSpec, Supply
from .base import BlockRead, BlockWrite, CommandContext, CommandPlan, ReadPlan, Step, Values

# command kind -> (field read back, value it must show)
CONFIRMATIONS: dict[CommandKind, tuple[str, Any]] = {
    CommandKind.TRIP: ("supply", Supply.OFF),
    CommandKind.CLOSE: ("supply", Supply.ON),
}


@lru_cache(maxsize=4096)
def _blocks(model: MeterModel, circuit: int, names: tuple[str, ...] | None) -> tuple[Any, ...]:
    return mb.read_plan(model, names, circuit=circuit)


class ModbusAdapter:
    link_kind = "modbus"

    def read_plan(self, meter: MeterSpec) -> ReadPlan:
        return self._plan(meter, None)

    def _plan(self, meter: MeterSpec, names: tuple[str, ...] | None) -> ReadPlan:
        unit, circuit = mb.parse_address(meter.address)
        blocks = _blocks(meter.model, circuit, names)
        steps = tuple(BlockRead(unit, b, f"{b.table} {b.address:#06x}+{b.count}") for b in blocks)
        model, ct = meter.model, meter.ct_ratio

        def fold(steps: Sequence[Step], replies: Sequence[Any]) -> Values:
            got = {step.block: reply for step, reply in zip(steps, replies, strict=True)}
            return mb.decode(model, got, ct, names=names, circuit=circuit)

        return ReadPlan(steps, fold)

    def command_plan(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        unit, circuit = mb.parse_address(meter.address)
        write = mb.command_write(
            meter.model, command.kind, circuit=circuit
        )  # ConfigError if the map has none
        action = BlockWrite(unit, write.address, tuple(write.values), f"{command.kind} {write.address:#06x}")
        confirmation = CONFIRMATIONS.get(command.kind)
        present = {f.name for f in meter.model.registers}
        if confirmation is None or confirmation[0] not in present:
            return CommandPlan(command.kind, (action,), None, None, "acknowledgement")
        name, wanted = confirmation
        plan = self._plan(meter, (name,))
        return CommandPlan(
            command.kind, (action,), plan, lambda values: values.get(name) == wanted, f"{name} = {wanted}"
        )
