"""Per-protocol meter sessions (sans-I/O): what the poller sends to read or command a meter.

``adapter_for(protocol)`` returns the adapter of a :class:`~prepaid_engine.types.Protocol`; an adapter's
``read_plan(meter)`` and ``command_plan(meter, command, ctx)`` return plain step data (see
:mod:`prepaid_engine.adapters.base`) that the poller runs over a link.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ..types import Protocol
from .base import (
    BlockRead,
    BlockWrite,
    CommandContext,
    CommandPlan,
    FrameStep,
    MeterAdapter,
    ReadPlan,
    make_reading,
)

# protocol -> (module, class): imported on first use, so a protocol's codec loads only when a site uses it
ADAPTERS: dict[Protocol, tuple[str, str]] = {
    Protocol.DLT645_2007: (".dlt645", "Dlt645Adapter"),
    Protocol.DLT645_1997: (".dlt645_1997", "Dlt645v1997Adapter"),
    Protocol.CJT188: (".cjt188", "Cjt188Adapter"),
    Protocol.MODBUS: (".modbus", "ModbusAdapter"),
}
_instances: dict[Protocol, MeterAdapter] = {}


def adapter_for(protocol: Protocol | str) -> MeterAdapter:
    """The (stateless, shared) adapter for ``protocol``; :class:`ConfigError` for an unknown one."""
    try:
        return _instances[protocol]  # type: ignore[index]
    except KeyError:
        pass
    try:
        key = Protocol(protocol)
        module_name, class_name = ADAPTERS[key]
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"no meter adapter for protocol {protocol!r}") from exc
    module = importlib.import_module(module_name, __package__)
    adapter = _instances[key] = getattr(module, class_name)()
    return adapter


__all__ = [
    "ADAPTERS",
    "BlockRead",
    "BlockWrite",
    "CommandContext",
    "CommandPlan",
    "FrameStep",
    "MeterAdapter",
    "ReadPlan",
    "adapter_for",
    "make_reading",
]
