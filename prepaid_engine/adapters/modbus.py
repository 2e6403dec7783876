"""Modbus meters (Acrel DDSY1352/DTSY1352/ADF300, generic maps): register reads and FC16 command writes.

The register map is the model's data (``codecs.modbus``): a poll reads the fewest blocks that cover the map's
reading fields (``read_plan``) and decodes them (``decode``, energies x CT ratio). A command is the model's
block write for its kind (``command_write``); trip/close are confirmed by reading the relay-state field back
when the map has one, else the acknowledgement alone completes them (``confirmed=False``). SET_LOAD_PARAMETERS
writes the model's load-control parameter registers (FC16, neighbours in one write;
:mod:`prepaid_engine.load.params`) and is confirmed by reading them back equal to the values sent; a model
without them cannot take it (unsupported).

Meters that lack registers: a block read answered with exception 02 ("illegal data address") is followed by
one read per field of the block; a field the meter refuses is left out and the rest kept (the poller reports
the missing field names). Fields in ``MeterSpec.skip`` are not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..codecs import modbus as mb
from ..errors import MeterError
from ..types import CommandKind, MeterCommand, MeterModel, MeterSpec, Supply
from .base import BlockRead, BlockWrite, CommandContext, CommandPlan, ReadPlan, Step, Values, unskipped

# command kind -> (field read back, value it must show)
CONFIRMATIONS: dict[CommandKind, tuple[str, Any]] = {
    CommandKind.TRIP: ("supply", Supply.OFF),
    CommandKind.CLOSE: ("supply", Supply.ON),
}


@lru_cache(maxsize=4096)
def _blocks(
    model: MeterModel, circuit: int, names: tuple[str, ...] | None
) -> tuple[tuple[Any, tuple[str, ...]], ...]:
    """The block reads covering ``names`` (default: the polled fields), each with the fields inside it."""
    return tuple(
        (block, mb.fields_in(model, block, names, circuit=circuit))
        for block in mb.read_plan(model, names, circuit=circuit)
    )


def lacks_data(exc: MeterError) -> bool:
    """Exception 02: the meter has no such register."""
    return "illegal_data_address" in exc.names


def _block_reads(unit: int, blocks: Sequence[tuple[Any, tuple[str, ...]]]) -> tuple[BlockRead, ...]:
    return tuple(BlockRead(unit, b, f"{b.table} {b.address:#06x}+{b.count}", names) for b, names in blocks)


class ModbusAdapter:
    link_kind = "modbus"

    def read_plan(self, meter: MeterSpec) -> ReadPlan:
        names = unskipped(mb.polled_fields(meter.model), meter.skip) if meter.skip else None
        return self._plan(meter, names, lacks_data)

    def _plan(self, meter: MeterSpec, names: tuple[str, ...] | None, lacks=None) -> ReadPlan:
        unit, circuit = mb.parse_address(meter.address)
        model, ct = meter.model, meter.ct_ratio
        steps = _block_reads(unit, _blocks(model, circuit, names))

        def fold(done: Sequence[Step], replies: Sequence[Any]) -> Values:
            got = {step.block: reply for step, reply in zip(done, replies, strict=True)}
            read = tuple(name for step in done for name in step.names)  # what the blocks answered hold
            return mb.decode(model, got, ct, names=read, circuit=circuit)

        def parts(step: Step) -> tuple[Step, ...]:
            if len(step.names) < 2:
                return ()
            return _block_reads(unit, [b for name in step.names for b in _blocks(model, circuit, (name,))])

        return ReadPlan(steps, fold, lacks, parts if lacks is not None else None)

    def command_plan(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan:
        if command.kind == CommandKind.SET_LOAD_PARAMETERS:
            from ..load import params  # loaded with the first such command, not with every poll

            return params.command_plan(meter, dict(command.parameters))
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
