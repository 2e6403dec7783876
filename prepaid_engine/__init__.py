"""prepaid_engine: the field layer of the prepaid utilities suite.

Pure Python; never imports odoo. Codecs are sans-I/O (bytes in, typed frames out); transports and the
poller do the I/O; the simulator answers from the meter's side with the same codecs; rating prices
consumption with ``Decimal`` money.
"""

from .errors import (
    AddressError,
    ChecksumError,
    ConfigError,
    DuplicateRecharge,
    EngineError,
    FrameError,
    LinkError,
    LinkTimeout,
    MeterError,
    RechargeRefused,
    SecurityError,
    UnexpectedReply,
)
from .types import (
    READING_FIELDS,
    BusSpec,
    CommandKind,
    CommandResult,
    CommandStatus,
    ErrorKind,
    FrameTrace,
    GatewaySpec,
    GatewayState,
    MeterCommand,
    MeterModel,
    MeterSpec,
    PollError,
    PollResult,
    PollWarning,
    Protocol,
    Reading,
    RegisterField,
    RegisterWrite,
    Supply,
    Transport,
    Utility,
)

__version__ = "18.0.1.0.0"

__all__ = [
    "READING_FIELDS",
    "AddressError",
    "BusSpec",
    "ChecksumError",
    "CommandKind",
    "CommandResult",
    "CommandStatus",
    "ConfigError",
    "DuplicateRecharge",
    "EngineError",
    "ErrorKind",
    "FrameError",
    "FrameTrace",
    "GatewaySpec",
    "GatewayState",
    "LinkError",
    "LinkTimeout",
    "MeterCommand",
    "MeterError",
    "MeterModel",
    "MeterSpec",
    "PollError",
    "PollResult",
    "PollWarning",
    "Protocol",
    "Reading",
    "RechargeRefused",
    "RegisterField",
    "RegisterWrite",
    "SecurityError",
    "Supply",
    "Transport",
    "UnexpectedReply",
    "Utility",
]
