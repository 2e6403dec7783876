"""The engine's error hierarchy.

Everything the engine raises on bad input or a failed exchange is an :class:`EngineError`. Codecs and
deframers raise only :class:`FrameError` and its subclasses; transports raise :class:`LinkError`;
a meter's own negative answer is a :class:`MeterError` carrying the meter's error bits.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(EngineError, ValueError):
    """A meter model, site file, tariff or command is not usable as given."""


class FrameError(EngineError):
    """Bytes that are not a valid frame of the protocol (length, markers, fields)."""


class ChecksumError(FrameError):
    """A frame whose checksum (DL/T 645, CJ/T 188 sum, Modbus CRC) does not match."""


class AddressError(FrameError):
    """A well-formed reply from another meter than the one asked."""


class UnexpectedReply(FrameError):
    """A well-formed reply that does not answer the request (other function or data identifier)."""


class MeterError(EngineError):
    """The meter answered with an abnormal reply.

    ``code`` is the raw error byte or word as the meter sent it; ``names`` are the decoded error bits
    (for DL/T 645: ``other``, ``no_data``, ``unauthorised``, ...).
    """

    def __init__(self, message: str, *, code: int = 0, names: tuple[str, ...] = ()):
        super().__init__(message)
        self.code = code
        self.names = tuple(names)


class DuplicateRecharge(MeterError):
    """The meter already applied a recharge with this purchase count.

    For a purchase count *we* sent, this means the recharge is done: callers treat it as success and
    never credit again.
    """


class RechargeRefused(MeterError):
    """The meter refused a recharge (count out of sequence, over hoarding limit, MAC failure)."""


class LinkError(EngineError):
    """The link to a gateway or bus failed (connection refused, reset, closed)."""


class LinkTimeout(LinkError):
    """No complete reply within the request's timeout."""


class SecurityError(EngineError):
    """A MAC or key check failed."""
