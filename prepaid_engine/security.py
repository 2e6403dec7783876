"""Recharge security: per-meter keys, the retail MAC, recharge payloads and the meter-side ledger.

The vendor (non-grid) scheme of protocols.md section 4, with pycryptodome:

* :func:`diversify` derives a meter's 16-byte key from the master key and the meter number
  (``K_L = 3DES-ECB(MK, factor8)``, ``K_R = 3DES-ECB(MK, ~factor8)``). The master key never leaves the server.
* :func:`mac` is ISO/IEC 9797-1 MAC algorithm 3 (the ANSI X9.19 retail MAC) with padding method 2.
* :func:`build_recharge` / :func:`verify_recharge` make and check the 22-byte recharge payload.
* :class:`RechargeLedger` is the meter's side (used by the simulator): purchase count and balance, refusing
  replays, count jumps and balances above the hoarding limit.
* :func:`interpret_recharge_reply` is the one rule the poller applies to a meter's answer: "duplicate
  recharge" for a purchase count we sent means the recharge is already applied, never a reason to credit
  again.

Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from decimal import Decimal

from Crypto.Cipher import DES, DES3

from .errors import ConfigError, DuplicateRecharge, FrameError, MeterError, RechargeRefused, SecurityError

BLOCK = 8
MAX_COUNT = 0xFFFFFFFF
MAX_CENTS = 0xFFFFFFFF
CUSTOMER_DIGITS = 12
# amount(4) + purchase count(4) + MAC1(4) + customer number(6) + MAC2(4)
RECHARGE_PAYLOAD_LEN = 22


# ------------------------------------------------------------------------------------------ diversification


def _digits(value: str, width: int, what: str) -> str:
    text = str(value).strip()
    if not text.isdigit() or not text.isascii() or len(text) > width:
        raise ConfigError(f"{what} must be 1..{width} decimal digits, not {value!r}")
    return text.zfill(width)


def diversification_factor(factor: bytes | str) -> bytes:
    """The 8-byte diversification input for a meter.

    A meter number (``str``, 1..16 decimal digits) is left-padded with ``0`` to 16 digits and packed as BCD,
    most significant digit first: ``"123456789012"`` -> ``00 00 12 34 56 78 90 12``. ``bytes`` are taken
    as the 8-byte factor itself (anything else is a :class:`ConfigError`).
    """
    if isinstance(factor, bytes | bytearray):
        if len(factor) != BLOCK:
            raise ConfigError(f"a diversification factor given as bytes has 8 bytes, not {len(factor)}")
        return bytes(factor)
    return bytes.fromhex(_digits(factor, 2 * BLOCK, "meter number"))


def _des3(master_key: bytes):
    if not isinstance(master_key, bytes | bytearray) or len(master_key) not in (16, 24):
        raise ConfigError("the master key is 16 or 24 bytes (2- or 3-key triple DES)")
    try:
        return DES3.new(bytes(master_key), DES3.MODE_ECB)
    except ValueError as exc:  # pycryptodome refuses keys whose thirds repeat (triple DES collapsing to DES)
        raise ConfigError(f"unusable master key: {exc}") from exc


def diversify(master_key: bytes, factor: bytes | str) -> bytes:
    """The meter's 16-byte key ``K_L || K_R``: 3DES-ECB under the master key of factor8 and of ~factor8."""
    factor8 = diversification_factor(factor)
    cipher = _des3(master_key)
    return cipher.encrypt(factor8) + cipher.encrypt(bytes(b ^ 0xFF for b in factor8))


# ---------------------------------------------------------------------------------------------------- MAC


def pad_method2(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append 0x80, then zeros up to a multiple of 8 (always pads)."""
    padded = bytes(data) + b"\x80"
    return padded + b"\x00" * (-len(padded) % BLOCK)


def retail_mac(key16: bytes, data: bytes) -> bytes:
    """The full 8-byte ISO/IEC 9797-1 algorithm 3 MAC (ANSI X9.19) of ``data``, padding method 2.

    CBC with single DES under ``K_L`` (zero IV) over every block; the last chaining value is then decrypted
    with ``K_R`` and encrypted again with ``K_L``.
    """
    if not isinstance(key16, bytes | bytearray) or len(key16) != 2 * BLOCK:
        raise ConfigError("a MAC key is 16 bytes (K_L || K_R)")
    k_left, k_right = bytes(key16[:BLOCK]), bytes(key16[BLOCK:])
    chained = DES.new(k_left, DES.MODE_CBC, iv=bytes(BLOCK)).encrypt(pad_method2(data))[-BLOCK:]
    return DES.new(k_left, DES.MODE_ECB).encrypt(DES.new(k_right, DES.MODE_ECB).decrypt(chained))


def mac(key16: bytes, data: bytes) -> bytes:
    """The 4-byte MAC the recharge payload carries: the first 4 bytes of :func:`retail_mac`."""
    return retail_mac(key16, data)[:4]


# ------------------------------------------------------------------------------------------------ recharge


@dataclass(frozen=True, slots=True)
class RechargeOrder:
    """One recharge for one meter. ``customer_number`` is normalised to 12 digits ("" -> all zeros)."""

    meter_number: str
    amount: Decimal
    purchase_count: int
    customer_number: str = ""

    def __post_init__(self) -> None:
        _digits(self.meter_number, 2 * BLOCK, "meter number")
        object.__setattr__(
            self, "customer_number", _digits(self.customer_number or "0", 12, "customer number")
        )
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise ConfigError(f"recharge amount must be a finite Decimal, not {self.amount!r}")
        if self.amount <= 0:
            raise ConfigError(f"recharge amount must be positive, not {self.amount}")
        cents = self.amount * 100
        if cents != cents.to_integral_value():
            raise ConfigError(f"recharge amount {self.amount} has more than 2 decimals")
        if cents > MAX_CENTS:
            raise ConfigError(f"recharge amount {self.amount} does not fit 4 bytes of cents")
        count = self.purchase_count
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise ConfigError(f"purchase count must be 1..{MAX_COUNT}, not {count!r}")

    @property
    def cents(self) -> int:
        return int(self.amount * 100)


def _money_and_count(cents: int, count: int) -> bytes:
    return cents.to_bytes(4, "big") + count.to_bytes(4, "big")


def build_recharge(master_key: bytes, order: RechargeOrder) -> bytes:
    """The 22-byte recharge payload for ``order``, MACed with the meter's diversified key.

    Layout (all big-endian, protocols.md section 4; binary cents are [UNCERTAIN] for vendor meters)::

        0..3    amount, binary cents            (A)
        4..7    purchase count                  (N)
        8..11   MAC1 = mac(K, A || N)
        12..17  customer number, 12 BCD digits  (C), most significant digit first
        18..21  MAC2 = mac(K, C || A || N)

    with K = diversify(master_key, order.meter_number).
    """
    key = diversify(master_key, order.meter_number)
    body = _money_and_count(order.cents, order.purchase_count)
    customer = bytes.fromhex(order.customer_number)
    return body + mac(key, body) + customer + mac(key, customer + body)


def verify_recharge(master_key: bytes, meter_number: str, payload: bytes) -> RechargeOrder:
    """The meter's check of a payload from :func:`build_recharge`: the order it carries.

    :class:`FrameError` if the payload is not 22 bytes or carries an impossible field (zero amount or count,
    a customer number that is not BCD); :class:`SecurityError` if either MAC is wrong (checked first, in
    constant time).
    """
    if not isinstance(payload, bytes | bytearray):
        raise FrameError(f"a recharge payload is bytes, not {type(payload).__name__}")
    if len(payload) != RECHARGE_PAYLOAD_LEN:
        raise FrameError(f"a recharge payload has {RECHARGE_PAYLOAD_LEN} bytes, not {len(payload)}")
    payload = bytes(payload)
    key = diversify(master_key, meter_number)
    body, mac1, customer, mac2 = payload[:8], payload[8:12], payload[12:18], payload[18:22]
    ok1 = hmac.compare_digest(mac(key, body), mac1)
    ok2 = hmac.compare_digest(mac(key, customer + body), mac2)
    if not (ok1 and ok2):
        raise SecurityError(f"recharge MAC check failed for meter {meter_number}")
    customer_number = customer.hex()
    if not customer_number.isdigit():
        raise FrameError(f"customer number {customer_number!r} is not BCD")
    cents, count = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big")
    try:
        return RechargeOrder(meter_number, Decimal(cents).scaleb(-2), count, customer_number)
    except ConfigError as exc:
        raise FrameError(f"recharge payload carries an impossible order: {exc}") from exc


# ---------------------------------------------------------------------------------------------- meter side


class RechargeOutcome(enum.StrEnum):
    """What a meter does with a recharge. Refusals are named as the DL/T 645 security error bits."""

    APPLIED = "applied"
    DUPLICATE = "duplicate_recharge"  # the count was already applied (a replay)
    COUNT_ERROR = "recharge_count_error"  # the count is not previous + 1
    OVER_HOARDING_LIMIT = "over_hoarding_limit"  # the balance would exceed the hoarding limit


# DL/T 698.45 result codes (DAR) for the refusals: 21 duplicate recharge, 25 count error, 26 over hoarding.
OUTCOME_CODES = {
    RechargeOutcome.DUPLICATE: 21,
    RechargeOutcome.COUNT_ERROR: 25,
    RechargeOutcome.OVER_HOARDING_LIMIT: 26,
}
_OUTCOME_BY_NAME = {str(outcome): outcome for outcome in OUTCOME_CODES}


def outcome_error(outcome: RechargeOutcome) -> MeterError | None:
    """The error a meter's refusal becomes (``None`` for APPLIED): DuplicateRecharge or RechargeRefused."""
    outcome = RechargeOutcome(outcome)
    if outcome is RechargeOutcome.APPLIED:
        return None
    cls = DuplicateRecharge if outcome is RechargeOutcome.DUPLICATE else RechargeRefused
    return cls(f"recharge refused: {outcome}", code=OUTCOME_CODES[outcome], names=(str(outcome),))


@dataclass(slots=True)
class RechargeLedger:
    """A meter's own recharge state: the last applied purchase count and the money it holds.

    ``hoarding_limit`` (``None`` = no limit) is the largest balance a recharge may leave.
    """

    purchase_count: int = 0
    balance: Decimal = Decimal(0)
    hoarding_limit: Decimal | None = None

    def check(self, order: RechargeOrder) -> RechargeOutcome:
        """What :meth:`apply` would do with ``order``, without doing it."""
        if order.purchase_count <= self.purchase_count:
            return RechargeOutcome.DUPLICATE
        if order.purchase_count != self.purchase_count + 1:
            return RechargeOutcome.COUNT_ERROR
        if self.hoarding_limit is not None and self.balance + order.amount > self.hoarding_limit:
            return RechargeOutcome.OVER_HOARDING_LIMIT
        return RechargeOutcome.APPLIED

    def apply(self, order: RechargeOrder) -> RechargeOutcome:
        """Credit ``order`` if its count is exactly previous + 1 and the balance stays within the limit.

        Any count already used (equal to or below the last one) is a replay: DUPLICATE, nothing changes.
        """
        outcome = self.check(order)
        if outcome is RechargeOutcome.APPLIED:
            self.purchase_count = order.purchase_count
            self.balance += order.amount
        return outcome

    def deduct(self, amount: Decimal) -> Decimal:
        """Take consumed money off the balance (which may go negative: overdraft); the new balance."""
        self.balance -= amount
        return self.balance


# ------------------------------------------------------------------------------------------------ the rule


def interpret_recharge_reply(
    sent_count: int,
    reply: RechargeOutcome | MeterError | None,
    *,
    meter_count: int | None = None,
) -> RechargeOutcome:
    """What a meter's answer to a recharge carrying ``sent_count`` means for the command queue.

    * No error (``None``) or APPLIED -> APPLIED.
    * "Duplicate recharge" (a :class:`DuplicateRecharge`, a :class:`MeterError` naming
      ``duplicate_recharge``, or DUPLICATE) -> **APPLIED**: counts are strictly sequential, so the meter
      refuses ``sent_count`` as a duplicate only because it already applied it (an earlier attempt whose
      answer was lost). The recharge is done; never send it again under a new count, never credit twice.
      The one exception: when the caller read the meter's purchase count back and it is below
      ``sent_count``, the meter cannot have applied our count and the answer is COUNT_ERROR.
    * Count error and over hoarding limit -> that outcome (refused; the caller must not retry blindly).
    * Any other :class:`MeterError` (wrong password, MAC failure, ...) is not about the purchase sequence
      and is raised again unchanged.
    """
    if isinstance(sent_count, bool) or not isinstance(sent_count, int) or not 1 <= sent_count <= MAX_COUNT:
        raise ConfigError(f"sent purchase count must be 1..{MAX_COUNT}, not {sent_count!r}")
    if reply is None:
        return RechargeOutcome.APPLIED
    if isinstance(reply, MeterError):
        if isinstance(reply, DuplicateRecharge):
            outcome = RechargeOutcome.DUPLICATE
        else:
            known = [_OUTCOME_BY_NAME[name] for name in reply.names if name in _OUTCOME_BY_NAME]
            if not known:
                raise reply
            # A reply naming several bits: duplicate wins (it means "done"), then the refusals.
            outcome = min(known, key=list(OUTCOME_CODES).index)
    else:
        try:
            outcome = RechargeOutcome(reply)
        except ValueError as exc:
            raise ConfigError(f"not a recharge outcome or meter error: {reply!r}") from exc
    if outcome is RechargeOutcome.DUPLICATE:
        if meter_count is not None and meter_count < sent_count:
            return RechargeOutcome.COUNT_ERROR
        return RechargeOutcome.APPLIED
    return outcome
