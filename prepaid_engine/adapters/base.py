"""Meter sessions: what the poller sends to read or command one meter, and what the replies mean.

Sans-I/O, like the codecs they drive: an adapter turns a :class:`~prepaid_engine.types.MeterSpec` into
*steps* (plain data the poller hands to a link) and turns the replies back into reading values. The poller
owns every wire concern (links, timeouts, retries, backoff, clocks).

Steps:

- :class:`FrameStep`: one DL/T 645 / CJ/T 188 request. ``expect(frame)`` is the link's filter (a reply
  frame from this meter to this function); ``parse(frame)`` checks the reply (raising the codec's
  ``AddressError``/``UnexpectedReply``/``MeterError``) and returns reading values (a dict of field name ->
  value; names are :data:`~prepaid_engine.types.READING_FIELDS` plus adapter-specific extras such as
  ``prices`` or ``keep_power``).
- :class:`BlockRead` / :class:`BlockWrite`: one Modbus read (FC3/FC4) or write (FC16) of one unit.

A :class:`ReadPlan` is the steps of one poll of one meter plus ``fold(replies) -> values``, and for a poll
how to carry on when the meter lacks one of them (``lacks``, ``parts``); a :class:`CommandPlan` is the
command's action step, how to judge its acknowledgement, and the read-back that confirms it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from ..errors import MeterError
from ..types import READING_FIELDS, CommandKind, MeterCommand, MeterSpec, Reading

Values = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FrameStep:
    """One framed request: the bytes, the reply filter and the reply's meaning."""

    request: bytes
    expect: Callable[[Any], bool]
    parse: Callable[[Any], Values]
    label: str  # e.g. the data identifier, for messages and traces
    deframer: Callable[[], Any] | None = None  # the codec's Deframer class


@dataclass(frozen=True, slots=True)
class BlockRead:
    """One Modbus register read: ``block`` is a ``codecs.modbus.ReadBlock`` (table, address, count)."""

    unit: int
    block: Any
    label: str = ""
    names: tuple[str, ...] = ()  # the register fields the block covers (what a meter lacking it lacks)

    @property
    def table(self) -> str:
        return self.block.table

    @property
    def address(self) -> int:
        return self.block.address

    @property
    def count(self) -> int:
        return self.block.count


@dataclass(frozen=True, slots=True)
class BlockWrite:
    """One Modbus FC16 block write."""

    unit: int
    address: int
    values: tuple[int, ...]
    label: str = ""


Step = FrameStep | BlockRead | BlockWrite


def step_identifiers(step: Step) -> tuple[str, ...]:
    """What a read step asks the meter for: a framed step's data identifier (its label), a block read's
    register field names."""
    if type(step) is BlockRead and step.names:
        return step.names
    return (step.label,)


def merge_values(steps: Sequence[Step], replies: Sequence[Any]) -> Values:
    """``fold`` of a framed plan: every step's parsed values, later steps winning."""
    values: Values = {}
    for reply in replies:
        values.update(reply)
    return values


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """How to read one meter once.

    The poller runs ``steps`` in order, collecting for each the step's result (for a :class:`FrameStep`
    the ``parse``\\ d values, for a :class:`BlockRead` the register list) and hands the steps that
    answered and their results to ``fold``.

    Partial reads (polls; command read-backs leave ``lacks`` None and fail on any refusal): ``lacks(exc)``
    says whether a meter's refusal means "I have no such data" (DL/T 645 ERR bit 1, ...). Such a step is
    replaced by ``parts(step)`` (a block's single identifiers; built only when needed) and skipped when it
    has none, and the identifiers refused are reported; the read fails only when the meter answered none
    of its steps.
    """

    steps: tuple[Step, ...]
    fold: Callable[[Sequence[Step], Sequence[Any]], Values] = merge_values
    lacks: Callable[[MeterError], bool] | None = None
    parts: Callable[[Step], tuple[Step, ...]] | None = None


def unskipped(
    wanted: Sequence[str], skip: frozenset[str], every: Sequence[str] | None = None
) -> tuple[str, ...]:
    """``wanted`` without the identifiers the meter is known to lack (``MeterSpec.skip``), in order and once
    each. When that leaves nothing, ``every`` (default ``wanted``) as it is: a meter that lacks everything
    was probably replaced or given the wrong model, so it is asked again rather than read for nothing."""
    kept = tuple(dict.fromkeys(name for name in wanted if name not in skip))
    return kept or tuple(dict.fromkeys(wanted if every is None else every))


@dataclass(frozen=True, slots=True)
class CommandPlan:
    """How to perform and confirm one command.

    ``actions`` are sent in order, once per attempt (SET_PRICES writes one price per request); for a
    :class:`FrameStep` its ``parse`` is the acknowledgement check (it raises the meter's refusal as
    :class:`~prepaid_engine.errors.MeterError`, a duplicate recharge as
    :class:`~prepaid_engine.errors.DuplicateRecharge`). ``confirm`` is the read-back; ``check(values)`` says
    whether the values read back show the command took effect. ``confirm`` None: the acknowledgement alone
    completes the command, reported with ``confirmed=False``.

    ``prepare`` (optional) is read before each attempt, and ``actions_for(values, now)`` then builds that
    attempt's actions (in place of ``actions``) and a note for the result message: DL/T 645 relay control
    reads the meter's clock so that the command's validity counts on the meter's clock, whatever it says.
    ``values`` is None when the meter refused the read (it cannot tell), ``now`` the poller's clock then.
    """

    kind: CommandKind
    actions: tuple[Step, ...]
    confirm: ReadPlan | None
    check: Callable[[Values], bool] | None
    expectation: str  # what the read-back must show, for messages
    purchase_count: int | None = None  # RECHARGE: the count the action carries
    amount: Decimal | None = None
    prepare: ReadPlan | None = None
    actions_for: Callable[[Values | None, datetime], tuple[tuple[Step, ...], str]] | None = None


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What building a command needs beyond the meter and the command."""

    now: datetime
    master_key: bytes | None = None
    relay_window: timedelta = timedelta(minutes=10)
    extras: Mapping[str, Any] = field(default_factory=dict)


class MeterAdapter(Protocol):
    """One protocol's meter session. Stateless: everything per meter is derived from the MeterSpec."""

    #: "framed" (TransparentLink/SerialLink) or "modbus" (ModbusLink/SerialModbusLink)
    link_kind: str

    def read_plan(self, meter: MeterSpec) -> ReadPlan: ...

    def command_plan(self, meter: MeterSpec, command: MeterCommand, ctx: CommandContext) -> CommandPlan: ...


_FIELDS = frozenset(READING_FIELDS)


def make_reading(meter_key: str, read_at: datetime, values: Mapping[str, Any]) -> Reading:
    """A :class:`Reading` from folded values (names outside :data:`READING_FIELDS` are left out)."""
    if values.keys() <= _FIELDS:  # the usual case: nothing to filter (None is every field's default)
        return Reading(meter_key, read_at, **values)
    return Reading(meter_key, read_at, **{k: v for k, v in values.items() if k in _FIELDS})
