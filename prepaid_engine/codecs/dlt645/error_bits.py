"""DL/T 645-2007 meter errors: the ERR byte of an abnormal reply and the SERR word of a security error
reply, bit by bit, and the engine exceptions they stand for (a duplicate recharge is success for the caller).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ConfigError, DuplicateRecharge, MeterError, RechargeRefused

if TYPE_CHECKING:
    from .messages import ErrorReply, SecurityErrorReply

# ERR byte of an abnormal reply: bit n -> name
ERR_BITS: tuple[str, ...] = (
    "other",
    "no_data",
    "unauthorised",  # wrong password / not authorised
    "baud_fixed",
    "year_zones",
    "day_periods",
    "tariffs",
)
ERR_NO_DATA = 1 << 1
ERR_UNAUTHORISED = 1 << 2

# SERR word of a security error reply (C3), State Grid extension, from memory [UNCERTAIN]
SERR_BITS: tuple[str, ...] = (
    "other",
    "duplicate_recharge",
    "esam_verify_failed",
    "authentication_failed",  # MAC
    "customer_number_mismatch",
    "recharge_count_error",
    "over_hoarding_limit",
    "address_error",
    "meter_suspended",
)
# which SERR bit becomes which exception, first match wins: a duplicate is success for the caller
SERR_ERRORS: tuple[tuple[str, type[MeterError]], ...] = (
    ("duplicate_recharge", DuplicateRecharge),
    ("recharge_count_error", RechargeRefused),
    ("over_hoarding_limit", RechargeRefused),
    ("esam_verify_failed", RechargeRefused),
    ("authentication_failed", RechargeRefused),
    ("customer_number_mismatch", RechargeRefused),
)


def bit_names(word: int, table: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        table[bit] if bit < len(table) else f"bit{bit}" for bit in range(word.bit_length()) if word >> bit & 1
    )


def error_names(err: int) -> tuple[str, ...]:
    """Names of the bits set in an ERR byte, e.g. ``0x04`` -> ``("unauthorised",)``."""
    return bit_names(err, ERR_BITS)


def serr_names(serr: int) -> tuple[str, ...]:
    return bit_names(serr, SERR_BITS)


def serr_word(*names: str) -> int:
    """The SERR word with the named bits set (the simulator's side)."""
    try:
        return sum(1 << SERR_BITS.index(name) for name in set(names))
    except ValueError as exc:
        raise ConfigError(f"unknown SERR bit in {names!r}") from exc


def meter_error(reply: ErrorReply) -> MeterError:
    """The :class:`MeterError` an ERR reply stands for (``code`` = ERR byte, ``names`` = its bits)."""
    names = error_names(reply.err)
    reason = ", ".join(names) or "no reason given"
    return MeterError(
        f"meter {reply.address} refused function {reply.function:02X}: {reason}",
        code=reply.err,
        names=names,
    )


def security_error(reply: SecurityErrorReply) -> MeterError:
    """The exception a SERR reply stands for: :class:`DuplicateRecharge`, :class:`RechargeRefused` or
    :class:`MeterError`."""
    names = serr_names(reply.serr)
    cls = next((error for name, error in SERR_ERRORS if name in names), MeterError)
    return cls(
        f"meter {reply.address} refused the security command: {', '.join(names) or 'no reason given'}",
        code=reply.serr,
        names=names,
    )
