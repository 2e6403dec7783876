"""Plausibility: could the meter really have shown this reading? Judged before any money moves.

:func:`judge` compares a reading with the meter's last accepted one (and, for a reading that arrives after a
later one was accepted, with that later one too) and with what the meter can physically pass
(:class:`Limits`: its model's :class:`~prepaid_engine.types.Capacity`, its CT ratio, its register limit). It
returns a :class:`Verdict`: ``plausible``, or the first rule the reading breaks as a machine-readable
:class:`Finding` with the numbers (value, accepted value, step, allowed step, elapsed seconds), so that a
caller can store the reading aside, charge nothing for it and explain why in its user's language. It is a
pure function: no clock, no I/O.

The rule
--------
Each register the reading carries (the total and the sharp/peak/flat/valley band registers) must be

1. **finite** -- not NaN or infinite (``not_finite``);
2. **not negative** (``negative``);
3. **in range** -- at most what the meter could have counted in :data:`LIFETIME_HOURS` (50 years) at full
   capacity (with the margin below), never above :data:`MAX_VALUE`, and never above the register limit
   ``rollover_at`` when one is set (``out_of_range``).

Against an accepted reading of the same meter (the total register; a reading without a total bills nothing
and is judged on rules 1-3 only):

4. **not fallen** -- a lower index than an earlier accepted one is plausible only as a roll-over through the
   register limit or across a declared meter replacement, read exactly as the rating engine reads them
   (:func:`prepaid_engine.rating.consumption`: a wrap of at most a tenth of the register's range); anything
   else is ``index_fell``;
5. **not faster than the meter can count** -- the step ``s`` (kWh or m3) over the elapsed time ``t``
   between the two readings must satisfy::

       s <= rate x (t + JITTER) x MARGIN + STEP_FLOOR

   where ``rate`` is the meter's capacity in units an hour (electricity: max current x nominal voltage x
   phases x CT ratio / 1000; water: the maximum flow) times the caller's ``factor`` (1 for real meters; a
   simulator running N times faster than real time needs N). :data:`MARGIN` (1.25) allows for a supply
   above the nominal voltage (+10 %), the meter's class error and short overloads above its maximum
   current; :data:`JITTER` (60 s) for time stamps that are the collector's or the platform's clock when the
   reply arrived (truncated to the second) rather than the meter's own; :data:`STEP_FLOOR` (0.1 unit) for
   the registers' last digit. Anything faster is ``too_fast``;
6. **band registers consistent with the total** -- for the bands both readings carry (unless the total
   wrapped or a replacement lies between them), no band register falls and the band steps add up to at most
   the total step, each within :data:`BAND_TOLERANCE` + :data:`BAND_SHARE` x the total step (meters round
   each register on its own): ``bands_inconsistent``.

Every step within the meter's capacity (``s <= rate x t``) is plausible; every step beyond the bound of rule
5 is not (the property tests in ``tests/test_plausibility.py`` check both).

Auxiliary values (voltage, current, power, power factor, frequency, meter balance, purchase count) are not
judged: a meter's NaN power factor at zero load says nothing about its index. :func:`sanitize` blanks the
values no database column should hold (non-finite, beyond :data:`MAX_VALUE`, a count beyond a 32-bit
integer), so that they are never stored; :func:`storable` is the test it applies.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import ROUND_CEILING, Context, Decimal

from .errors import ConfigError
from .rating.interval import ConsumptionError, Register, Replacement, consumption
from .types import Capacity, Reading, Utility

__all__ = [
    "BAND_SHARE",
    "BAND_TOLERANCE",
    "DEFAULT_CAPACITY",
    "JITTER",
    "LIFETIME_HOURS",
    "MARGIN",
    "MAX_COUNT",
    "MAX_VALUE",
    "PLAUSIBLE",
    "REGISTERS",
    "STEP_FLOOR",
    "Finding",
    "Limits",
    "Verdict",
    "judge",
    "sanitize",
    "storable",
]

MARGIN = Decimal("1.25")
JITTER = timedelta(seconds=60)
STEP_FLOOR = Decimal("0.1")
LIFETIME_HOURS = 50 * 8766  # 50 years of 365.25 days
MAX_VALUE = Decimal(10) ** 12  # every value of a reading is smaller than this in magnitude
MAX_COUNT = 2**31 - 1  # purchase counts are 32-bit signed integers where they are stored
BAND_TOLERANCE = Decimal("0.1")
BAND_SHARE = Decimal("0.01")
REGISTERS = ("total", "sharp", "peak", "flat", "valley")
BANDS = REGISTERS[1:]
# What a meter whose model does not say can pass at most: generous, so that only absurd steps are caught.
DEFAULT_CAPACITY = {
    Utility.ELECTRICITY: Capacity(max_current=Decimal(100), voltage=Decimal(240), phases=3),
    Utility.WATER: Capacity(max_flow=Decimal(10)),
}
# Readings' auxiliary values (the engine Reading's numeric fields that are not registers).
AUXILIARY = ("voltage", "current", "power", "power_factor", "frequency", "balance", "reverse_total")
COUNTS = ("purchase_count", "cover_open_count", "magnetic_count")  # integers within 0 .. MAX_COUNT

_US_PER_HOUR = 3_600_000_000
_ONE_US = timedelta(microseconds=1)
_JITTER_US = JITTER // _ONE_US
_QUANTUM = Decimal("0.001")  # allowed steps are rounded up to the registers' finest resolution
_UP = Context(prec=40, rounding=ROUND_CEILING)  # bounds are rounded up: never stricter than the rule


class Finding(enum.StrEnum):
    """What :func:`judge` found (the first rule a reading breaks, in the order of the module notes)."""

    PLAUSIBLE = "plausible"
    NOT_FINITE = "not_finite"
    NEGATIVE = "negative"
    OUT_OF_RANGE = "out_of_range"
    INDEX_FELL = "index_fell"
    TOO_FAST = "too_fast"
    BANDS_INCONSISTENT = "bands_inconsistent"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :func:`judge`. ``field`` is the register concerned (``total``, a band, or ``bands``
    for their sum); ``value`` the reading's value and ``reference`` the accepted reading's; ``step`` and
    ``allowed`` the step found and the most the rule allows (or the range limit); ``elapsed`` the seconds
    between the two readings; ``message`` says it in English."""

    finding: Finding
    field: str = ""
    value: Decimal | None = None
    reference: Decimal | None = None
    step: Decimal | None = None
    allowed: Decimal | None = None
    elapsed: Decimal | None = None
    message: str = ""

    @property
    def plausible(self) -> bool:
        return self.finding is Finding.PLAUSIBLE

    def to_dict(self) -> dict:
        """The verdict as JSON-safe data (numbers as decimal strings, ``NaN``/``Infinity`` included)."""
        data: dict = {"finding": str(self.finding)}
        for name in ("field", "message"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        for name in ("value", "reference", "step", "allowed", "elapsed"):
            value = getattr(self, name)
            if value is not None:
                data[name] = str(value)
        return data


PLAUSIBLE = Verdict(Finding.PLAUSIBLE)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one meter can show: its utility, capacity (``None``: the utility's :data:`DEFAULT_CAPACITY`), CT
    ratio, register limit (``rollover_at``, the largest value its index shows, or ``None``) and the caller's
    time ``factor`` (see the module notes). ``rate`` (units an hour at most, factor included) and
    ``max_index`` are derived."""

    utility: Utility
    capacity: Capacity | None = None
    ct_ratio: int = 1
    rollover_at: Decimal | None = None
    factor: Decimal = Decimal(1)
    rate: Decimal = field(init=False, default=Decimal(0))
    max_index: Decimal = field(init=False, default=Decimal(0))
    min_allowed: Decimal = field(init=False, default=Decimal(0))
    _per_hour: Decimal = field(init=False, repr=False, compare=False, default=Decimal(0))
    _per_us_float: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            utility = Utility(self.utility)
        except ValueError as exc:
            raise ConfigError(f"unknown utility {self.utility!r}", kind="plausibility.utility") from exc
        set_(self, "utility", utility)
        if isinstance(self.ct_ratio, bool) or not isinstance(self.ct_ratio, int) or self.ct_ratio < 1:
            raise ConfigError(
                f"a CT ratio is a positive integer, not {self.ct_ratio!r}",
                kind="plausibility.ct_ratio",
                value=self.ct_ratio,
            )
        for name in ("factor", "rollover_at"):
            value = getattr(self, name)
            if value is None and name == "rollover_at":
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ConfigError(
                    f"{name} must be a positive finite Decimal, not {value!r}",
                    kind=f"plausibility.{name}",
                    value=value,
                )
        capacity = self.capacity or DEFAULT_CAPACITY[utility]
        rate = _UP.multiply(capacity.rate(utility, self.ct_ratio), self.factor)
        set_(self, "rate", rate)
        set_(self, "_per_hour", _UP.multiply(rate, MARGIN))
        set_(self, "_per_us_float", float(self._per_hour) / _US_PER_HOUR)
        lifetime = _UP.multiply(self._per_hour, LIFETIME_HOURS).to_integral_value(ROUND_CEILING)
        max_index = min(MAX_VALUE, lifetime)
        if self.rollover_at is not None:
            max_index = min(max_index, self.rollover_at)
        set_(self, "max_index", max_index)
        set_(self, "min_allowed", self._allowed_us(0))

    def allowed_step(self, elapsed: timedelta) -> Decimal:
        """The largest step rule 5 allows over ``elapsed``: ``rate x (elapsed + JITTER) x MARGIN +
        STEP_FLOOR``, rounded up."""
        return self._allowed_us(elapsed // _ONE_US)

    def _within(self, step: Decimal, elapsed_us: int) -> bool:
        """``step <= self._allowed_us(elapsed_us)``, answered in floating point when it is far from the
        bound (a relative slack of 1e-9 is many orders above the rounding error of three float operations)
        and exactly otherwise."""
        bound = self._per_us_float * (elapsed_us + _JITTER_US) + _FLOOR_FLOAT
        quick = float(step)
        if quick <= bound * (1 - 1e-9):
            return True
        if quick > bound * (1 + 1e-9) + 0.001:
            return False
        return step <= self._allowed_us(elapsed_us)

    def _allowed_us(self, elapsed_us: int) -> Decimal:
        energy = _UP.multiply(self._per_hour, Decimal(max(elapsed_us, 0) + _JITTER_US))  # exact: 40 digits
        step = _UP.divide(energy, _US_PER_HOUR)
        return step.quantize(_QUANTUM, rounding=ROUND_CEILING) + STEP_FLOOR


def storable(value: object) -> bool:
    """Whether a reading's value may be stored: ``None``, a finite number below :data:`MAX_VALUE` in
    magnitude, or anything that is not a number (text, booleans)."""
    kind = type(value)
    if kind is Decimal:
        return value.is_finite() and (value.adjusted() < _MAX_DIGITS or not value)  # type: ignore[union-attr]
    if kind is float or kind is int:
        return -_MAX_FLOAT < value < _MAX_FLOAT  # type: ignore[operator]  # NaN compares false
    return True


_MAX_DIGITS = MAX_VALUE.adjusted()  # |v| < 10**12  <=>  v == 0 or v.adjusted() < 12
_MAX_FLOAT = float(MAX_VALUE)
_FLOOR_FLOAT = float(STEP_FLOOR)


def _count_ok(count: object) -> bool:
    return count is None or (type(count) is int and 0 <= count <= MAX_COUNT)


def sanitize(reading: Reading) -> tuple[Reading, tuple[str, ...]]:
    """``reading`` without the values that must not be stored (see :func:`storable`; a purchase count must
    also be within 0 .. :data:`MAX_COUNT`), and the names of the values blanked. The same object when
    nothing is blanked."""
    r = reading
    for value in (
        r.total,
        r.sharp,
        r.peak,
        r.flat,
        r.valley,
        r.voltage,
        r.current,
        r.power,
        r.power_factor,
        r.frequency,
        r.balance,
        r.reverse_total,
    ):
        if value is not None and not (
            type(value) is Decimal and value.is_finite() and (value.adjusted() < _MAX_DIGITS or not value)
        ):
            break
    else:
        if all(_count_ok(getattr(r, name)) for name in COUNTS):
            return reading, ()
    dropped = [name for name in (*REGISTERS, *AUXILIARY) if not storable(getattr(reading, name))]
    dropped += [name for name in COUNTS if not _count_ok(getattr(reading, name))]
    if not dropped:
        return reading, ()
    return replace(reading, **dict.fromkeys(dropped)), tuple(dropped)


def _check_value(name: str, value: object, limits: Limits) -> Verdict | None:
    if type(value) is not Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            return Verdict(Finding.NOT_FINITE, name, message=f"{name} register reads {value!r}, not a number")
        value = Decimal(value)
    if not value.is_finite():
        return Verdict(Finding.NOT_FINITE, name, value, message=f"{name} register reads {value}")
    if value < 0:
        return Verdict(Finding.NEGATIVE, name, value, message=f"{name} register reads {value}, below zero")
    if value > limits.max_index:
        return Verdict(
            Finding.OUT_OF_RANGE,
            name,
            value,
            allowed=limits.max_index,
            message=f"{name} register reads {value}, above the {limits.max_index} this meter can show",
        )
    return None


def _judge_step(earlier: tuple, later: tuple, limits: Limits, replacement: Replacement | None) -> Verdict:
    """Rules 4-6 between two registers tuples ``(at, total, sharp, peak, flat, valley)``, earlier first."""
    at_0, total_0 = earlier[0], earlier[1]
    at_1, total_1 = later[0], later[1]
    elapsed_us = (at_1 - at_0) // _ONE_US
    if elapsed_us <= 0:
        raise ConfigError(
            f"plausibility compares a reading with an earlier one: {at_0.isoformat()}, {at_1.isoformat()}",
            kind="plausibility.order",
        )
    wrapped = total_1 < total_0
    if wrapped or replacement is not None:
        try:
            step = consumption(
                Register(at_0, total_0),
                Register(at_1, total_1),
                rollover_at=limits.rollover_at,
                replacement=replacement,
            ).total
        except ConsumptionError as exc:
            return Verdict(
                Finding.INDEX_FELL,
                "total",
                total_1,
                total_0,
                elapsed=_seconds(elapsed_us),
                message=str(exc),
            )
    else:
        step = total_1 - total_0
    if not limits._within(step, elapsed_us):
        allowed = limits._allowed_us(elapsed_us)
        return Verdict(
            Finding.TOO_FAST,
            "total",
            total_1,
            total_0,
            step,
            allowed,
            _seconds(elapsed_us),
            f"the index rose by {step} in {_seconds(elapsed_us)} s; this meter passes at most {allowed}",
        )
    if wrapped or replacement is not None:
        return PLAUSIBLE
    return _judge_bands(earlier, later, step)


def _judge_bands(earlier: tuple, later: tuple, step: Decimal) -> Verdict:
    tolerance = None
    found = Decimal(0)
    for index, band in enumerate(BANDS, start=2):
        before, after = earlier[index], later[index]
        if before is None or after is None:
            continue
        if tolerance is None:
            tolerance = _UP.add(BAND_TOLERANCE, _UP.multiply(BAND_SHARE, step))
        delta = after - before
        if delta < -tolerance:
            return Verdict(
                Finding.BANDS_INCONSISTENT,
                band,
                after,
                before,
                delta,
                message=f"the {band} register fell from {before} to {after} while the total rose by {step}",
            )
        found += delta
    if tolerance is not None and found > step + tolerance:
        return Verdict(
            Finding.BANDS_INCONSISTENT,
            "bands",
            step=found,
            allowed=step + tolerance,
            message=f"the band registers rose by {found} in all, the total only by {step}",
        )
    return PLAUSIBLE


def _seconds(us: int) -> Decimal:
    whole, fraction = divmod(us, 1_000_000)
    return Decimal(whole) if not fraction else Decimal(us).scaleb(-6)


def _registers(value: Reading | Register | tuple) -> tuple:
    if type(value) is tuple:
        return value
    if isinstance(value, Reading):
        return (value.read_at, value.total, value.sharp, value.peak, value.flat, value.valley)
    return (value.at, value.total, value.sharp, value.peak, value.flat, value.valley)


def judge(
    reading: Reading,
    limits: Limits,
    previous: Register | tuple | None = None,
    following: Register | tuple | None = None,
    *,
    replacement: Replacement | None = None,
) -> Verdict:
    """Judge ``reading`` (see the module notes): its registers alone, then its total against ``previous``
    (the meter's accepted reading before it) and ``following`` (an accepted reading after it, for a reading
    that arrives late), with ``replacement`` the meter replacement between ``previous`` and ``reading``, if
    any. Returns :data:`PLAUSIBLE` or the first rule broken.

    ``previous`` and ``following`` are rating :class:`~prepaid_engine.rating.Register` values or, from a
    caller that reads many of them, the same registers as a plain tuple ``(at, total, sharp, peak, flat,
    valley)`` (an aware datetime and finite, non-negative Decimals or None, as a Register holds them)."""
    if previous is not None and type(previous) is not tuple:
        previous = _registers(previous)
    total = reading.total
    if (
        type(total) is Decimal
        and reading.sharp is None
        and reading.peak is None
        and reading.flat is None
        and reading.valley is None
        and following is None
        and replacement is None
        and total.is_finite()
        and 0 <= total <= limits.max_index
    ):
        # The common case, a total register alone after an accepted one: rules 1-3 hold, then 4 and 5.
        if previous is None:
            return PLAUSIBLE
        step = total - previous[1]
        if step >= 0:
            elapsed_us = (reading.read_at - previous[0]) // _ONE_US
            if elapsed_us > 0 and (step <= limits.min_allowed or limits._within(step, elapsed_us)):
                return PLAUSIBLE
    for name in REGISTERS:
        value = getattr(reading, name)
        if value is not None:
            verdict = _check_value(name, value, limits)
            if verdict is not None:
                return verdict
    if total is None:
        return PLAUSIBLE
    current = _registers(reading)
    if type(current[1]) is not Decimal:
        current = (current[0], *(None if v is None else Decimal(v) for v in current[1:]))
    if previous is not None:
        verdict = _judge_step(_registers(previous), current, limits, replacement)
        if not verdict.plausible:
            return verdict
    if following is not None:
        verdict = _judge_step(current, _registers(following), limits, None)
        if not verdict.plausible:
            return verdict
    return PLAUSIBLE
