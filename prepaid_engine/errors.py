"""The engine's error hierarchy.

Everything the engine raises on bad input or a failed exchange is an :class:`EngineError`. Codecs and
deframers raise only :class:`FrameError` and its subclasses; transports raise :class:`LinkError`;
a meter's own negative answer is a :class:`MeterError` carrying the meter's error bits.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(EngineError, ValueError):
    """A meter model, site file, tariff or command is not usable as given.

    ``kind`` names the rule that refused it, machine-readable (``"tariff.periods_too_many"``,
    ``"address.digits"``, ...; empty where no caller needs to tell the case apart), and ``params`` carries the
    numbers of the case (``count=9, max=8``), so a caller can say the same thing in its user's language
    instead of showing the English message::

        raise ConfigError(f"{count} periods in a day; meters hold at most {MAX}", kind="...", count=count,
                          max=MAX)
    """

    def __init__(self, message: str = "", *, kind: str = "", **params: object):
        super().__init__(message)
        self.kind = kind
        self.params = params

    def __reduce__(self):
        return _rebuild_config_error, (type(self), str(self), self.kind, self.params)


def _rebuild_config_error(cls: type, message: str, kind: str, params: dict) -> ConfigError:
    return cls(message, kind=kind, **params)


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
