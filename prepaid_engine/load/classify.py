"""Load classification: step changes in a meter's power, judged against a load-control profile.

Pure functions over plain data, no I/O and no clock::

    events = classify(samples, profile)          # LoadEvent per step: what it was and what to do

**Samples** (:class:`Sample`) are what a meter or a poll reports: a time, the total active power in W and the
total power factor (or the reactive power, when the meter gives it).

**Step detection** (:func:`detect_steps`). The power is cut into *plateaus*: runs of samples that agree
within the noise tolerance (``noise_w + noise_ratio x level``). A sample that leaves the current plateau by
at least ``max(min_step_w, tolerance)`` starts an *excursion*; the excursion becomes a step once ``settle``
consecutive samples agree with each other (a new plateau). An excursion that comes back to the plateau
before settling (a spike, a brown-out, a switching transient) is no step, and the first samples of an
excursion that do not agree with the later ones (a motor's start surge) are dropped. Levels are medians, so
a single wild sample moves nothing. A step's time is the first sample of its excursion; its surge ratio is
the excursion's largest deviation over the step.

**The step's own power factor.** The total power factor after a kettle goes on is not the kettle's: 200 W of
base load at PF 0.6 plus a 1,500 W kettle reads PF 0.96. What identifies the appliance is the *change*:
each sample's reactive power is ``Q = P x tan(acos(PF)) = P x sqrt(1/PF^2 - 1)`` (or the meter's own
reactive power), and the step's PF is ``dP / sqrt(dP^2 + dQ^2)`` from the change of active and reactive
power between the two plateaus' medians. Reactive power from a PF has no sign: it is taken as inductive
(lagging, what motors and switch-mode supplies without correction draw); a meter that reports signed reactive
power (``Sample.reactive_var``) gives the exact answer for capacitive loads too. A step with no power
factor on either side has an unknown PF (``None``) and is never judged malicious. The step PF is rounded to
0.001 (a meter's resolution), so results do not depend on the last digits of a square root.

**Classification** (:func:`classify_step`), in this order, the first rule that holds naming the event:

1. ``malicious``: the malicious-load rule is on (alarm or trip), the step switched something *on*, its power
   lies in one of the profile's controlled ranges, its PF is at or above the profile's threshold, and it
   matches no signature of the profile's whitelist;
2. ``overload``: a power limit is set and the total after the step is above it;
3. ``whitelisted``: an on-step that matches a whitelist signature (``appliance`` names it);
4. ``normal``: an off-step, or an on-step that matches an appliance of the catalogue that is not whitelisted
   (outside the controlled ranges or below the PF threshold);
5. ``unknown``: an on-step that matches nothing.

``action`` is the strongest action any of the rules that hold calls for (trip > alarm > none): a malicious
step that also overloads the meter trips if either rule trips. Signatures match with ``tolerance`` (power,
fraction each side) and ``pf_tolerance`` (absolute); among several matches the one whose ranges' centres
are nearest wins (:func:`best_match`). The first plateau of a stream is the baseline: it is no step,
but when it is already above the power limit an ``overload`` event with a step of 0 says so.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from ..errors import ConfigError
from .appliances import Appliance

MAX_RANGES = 6
MIN_RANGE_W = 30
_ZERO = Decimal(0)
_ONE = Decimal(1)
_MILLI = Decimal("0.001")


class Action(enum.StrEnum):
    NONE = "none"
    ALARM = "alarm"
    TRIP = "trip"


_ACTION_RANK = {Action.NONE: 0, Action.ALARM: 1, Action.TRIP: 2}


class LimitMode(enum.StrEnum):
    """What the meter does when the total power exceeds the limit."""

    ALARM = "alarm"
    TRIP = "trip"


class MaliciousMode(enum.StrEnum):
    OFF = "off"
    ALARM = "alarm"
    TRIP = "trip"


class Classification(enum.StrEnum):
    WHITELISTED = "whitelisted"
    MALICIOUS = "malicious"
    OVERLOAD = "overload"
    NORMAL = "normal"
    UNKNOWN = "unknown"


def _number(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ConfigError(f"{what} is a Decimal (or int), not {value!r}", kind="load.number")
    result = Decimal(value)
    if not result.is_finite():
        raise ConfigError(f"{what} must be finite, not {value!r}", kind="load.number")
    return result


@dataclass(frozen=True, slots=True)
class PowerRange:
    """A controlled power range, whole watts, inclusive."""

    low_w: int
    high_w: int

    def __post_init__(self) -> None:
        for value in (self.low_w, self.high_w):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"a power range is whole watts, not {value!r}", kind="load.range")
        if not MIN_RANGE_W <= self.low_w <= self.high_w:
            raise ConfigError(
                f"a controlled range starts at >= {MIN_RANGE_W} W and ends at or after its start, not "
                f"{self.low_w}..{self.high_w} W",
                kind="load.range",
                low=self.low_w,
                high=self.high_w,
            )

    def __contains__(self, power_w: object) -> bool:
        return self.low_w <= power_w <= self.high_w  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class LoadProfile:
    """What a meter's load control enforces.

    ``power_limit_kw``: the total active power limit (``None``: no limit) and ``limit_mode`` what exceeding it
    does. ``malicious_mode``: the malicious-load rule (off, alarm, trip) over ``ranges`` (at most six
    :class:`PowerRange`, each from >= 30 W up to ``rating_w``, the meter's rating, when given) with
    ``pf_threshold``. ``whitelist``: the signatures allowed (steps that match one are never malicious).
    A profile whose malicious rule is on needs at least one range.
    """

    power_limit_kw: Decimal | None = None
    limit_mode: LimitMode = LimitMode.TRIP
    malicious_mode: MaliciousMode = MaliciousMode.OFF
    ranges: tuple[PowerRange, ...] = ()
    pf_threshold: Decimal = Decimal("0.90")
    whitelist: tuple[Appliance, ...] = ()
    rating_w: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit_mode", LimitMode(self.limit_mode))
        object.__setattr__(self, "malicious_mode", MaliciousMode(self.malicious_mode))
        object.__setattr__(self, "ranges", tuple(self.ranges))
        object.__setattr__(self, "whitelist", tuple(self.whitelist))
        if self.power_limit_kw is not None:
            limit = _number(self.power_limit_kw, "power_limit_kw")
            if limit <= 0:
                raise ConfigError(f"the power limit is positive, not {limit} kW", kind="load.limit")
            object.__setattr__(self, "power_limit_kw", limit)
        threshold = _number(self.pf_threshold, "pf_threshold")
        if not 0 < threshold <= 1:
            raise ConfigError(f"the PF threshold is within 0 < t <= 1, not {threshold}", kind="load.pf")
        object.__setattr__(self, "pf_threshold", threshold)
        if len(self.ranges) > MAX_RANGES:
            raise ConfigError(
                f"{len(self.ranges)} controlled ranges; meters hold at most {MAX_RANGES}",
                kind="load.ranges_too_many",
                count=len(self.ranges),
                max=MAX_RANGES,
            )
        if self.rating_w is not None:
            for r in self.ranges:
                if r.high_w > self.rating_w:
                    raise ConfigError(
                        f"the controlled range {r.low_w}..{r.high_w} W goes past the meter's rating "
                        f"{self.rating_w} W",
                        kind="load.range_rating",
                        high=r.high_w,
                        rating=self.rating_w,
                    )
        if self.malicious_mode is not MaliciousMode.OFF and not self.ranges:
            raise ConfigError(
                "the malicious-load rule needs at least one controlled range", kind="load.ranges"
            )

    @property
    def power_limit_w(self) -> Decimal | None:
        return None if self.power_limit_kw is None else self.power_limit_kw * 1000

    def in_controlled_range(self, power_w: Decimal) -> bool:
        return any(power_w in r for r in self.ranges)


@dataclass(frozen=True, slots=True)
class Detection:
    """How steps are found and signatures matched (see the module doc)."""

    min_step_w: Decimal = Decimal(30)
    settle: int = 2
    noise_w: Decimal = Decimal(10)
    noise_ratio: Decimal = Decimal("0.03")
    tolerance: Decimal = Decimal("0.10")
    pf_tolerance: Decimal = Decimal("0.02")

    def __post_init__(self) -> None:
        if isinstance(self.settle, bool) or not isinstance(self.settle, int) or self.settle < 1:
            raise ConfigError(
                f"settle is a count of samples >= 1, not {self.settle!r}", kind="load.detection"
            )
        for name in ("min_step_w", "noise_w", "noise_ratio", "tolerance", "pf_tolerance"):
            value = _number(getattr(self, name), name)
            if value < 0:
                raise ConfigError(f"{name} is >= 0, not {value}", kind="load.detection")
            object.__setattr__(self, name, value)

    def noise(self, level: Decimal) -> Decimal:
        return self.noise_w + self.noise_ratio * abs(level)


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement: ``at`` (aware), total active power (W), total power factor and/or reactive power
    (var, signed: + inductive). A power factor is taken by its magnitude (0 < |PF| <= 1 when power flows)."""

    at: datetime
    power_w: Decimal
    power_factor: Decimal | None = None
    reactive_var: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise ConfigError(f"a sample's time is an aware datetime, not {self.at!r}", kind="load.sample")
        object.__setattr__(self, "power_w", _number(self.power_w, "power_w"))
        if self.power_factor is not None:
            pf = abs(_number(self.power_factor, "power_factor"))
            if pf > 1 or (pf == 0 and self.power_w != 0 and self.reactive_var is None):
                raise ConfigError(f"a power factor is within 0 < |PF| <= 1, not {pf}", kind="load.sample")
            object.__setattr__(self, "power_factor", pf)
        if self.reactive_var is not None:
            object.__setattr__(self, "reactive_var", _number(self.reactive_var, "reactive_var"))

    def reactive(self) -> Decimal | None:
        """Reactive power (var): the meter's own, or from the power factor (inductive), None if unknown."""
        if self.reactive_var is not None:
            return self.reactive_var
        pf = self.power_factor
        if pf is None:
            return None
        if self.power_w == 0 or pf == 1:
            return _ZERO
        with localcontext() as ctx:
            ctx.prec = 28
            return abs(self.power_w) * (_ONE / (pf * pf) - _ONE).sqrt()


@dataclass(frozen=True, slots=True)
class Step:
    """A settled change of the total power: levels before and after (W, var: medians of the plateaus)."""

    at: datetime
    before_w: Decimal
    after_w: Decimal
    before_var: Decimal | None
    after_var: Decimal | None
    peak_w: Decimal  # the excursion's sample farthest from the level before

    @property
    def step_w(self) -> Decimal:
        return self.after_w - self.before_w

    @property
    def power_factor(self) -> Decimal | None:
        """The PF of the change itself (see the module doc), to 0.001; None when unknown."""
        if self.before_var is None or self.after_var is None:
            return None
        dp = self.step_w
        dq = self.after_var - self.before_var
        if dp == 0:
            return _ZERO
        with localcontext() as ctx:
            ctx.prec = 28
            pf = abs(dp) / (dp * dp + dq * dq).sqrt()
        return min(pf, _ONE).quantize(_MILLI, rounding=ROUND_HALF_EVEN)

    @property
    def surge_ratio(self) -> Decimal | None:
        """The excursion's largest deviation over the step (1 = no surge), to 0.01; None for a step of 0."""
        step = self.step_w
        if step == 0:
            return None
        return max((self.peak_w - self.before_w) / step, _ONE).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class LoadEvent:
    """One classified step. ``step_w`` > 0: something switched on; ``level_w`` the total after it."""

    at: datetime
    step_w: Decimal
    level_w: Decimal
    power_factor: Decimal | None
    classification: Classification
    appliance: str | None
    action: Action
    over_limit: bool = False
    surge_ratio: Decimal | None = None


def _median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _median_or_none(values: Sequence[Decimal | None]) -> Decimal | None:
    return None if any(v is None for v in values) else _median(values)  # type: ignore[arg-type]


def _agree(window: Sequence[Sample], detection: Detection) -> bool:
    powers = [s.power_w for s in window]
    return max(powers) - min(powers) <= 2 * detection.noise(_median(powers))


_PLATEAU_KEEP = 9  # samples of the current plateau its level is the median of


def detect_steps(samples: Iterable[Sample], detection: Detection = Detection()) -> tuple[Step, ...]:
    """The settled steps of ``samples`` (in time order; see the module doc)."""
    settle = detection.settle
    plateau: list[Sample] = []
    pending: list[Sample] = []
    baseline: list[Sample] = []
    steps: list[Step] = []
    onset: datetime | None = None
    peak: Decimal = _ZERO
    previous: datetime | None = None
    for sample in samples:
        if previous is not None and sample.at < previous:
            raise ConfigError("samples are in time order", kind="load.sample_order")
        previous = sample.at
        if not plateau:  # the baseline: the first `settle` samples that agree
            baseline.append(sample)
            baseline = baseline[-settle:]
            if len(baseline) == settle and _agree(baseline, detection):
                plateau = list(baseline)
            continue
        level = _median([s.power_w for s in plateau])
        deviation = sample.power_w - level
        if abs(deviation) < max(detection.min_step_w, detection.noise(level)):
            plateau = [*plateau, sample][-_PLATEAU_KEEP:]
            pending, onset = [], None
            continue
        if onset is None:
            onset, peak = sample.at, sample.power_w
        elif abs(sample.power_w - level) > abs(peak - level):
            peak = sample.power_w
        pending = [*pending, sample][-settle:]
        if len(pending) < settle or not _agree(pending, detection):
            continue
        after = _median([s.power_w for s in pending])
        if abs(after - level) < max(detection.min_step_w, detection.noise(level)):
            continue
        steps.append(
            Step(
                at=onset,
                before_w=level,
                after_w=after,
                before_var=_median_or_none([s.reactive() for s in plateau]),
                after_var=_median_or_none([s.reactive() for s in pending]),
                peak_w=peak,
            )
        )
        plateau, pending, onset = list(pending), [], None
    return tuple(steps)


def baseline_level(samples: Iterable[Sample], detection: Detection = Detection()) -> Sample | None:
    """The first plateau of ``samples`` as one sample (median power and reactive power at its first time),
    or None when no ``settle`` samples agree."""
    window: list[Sample] = []
    for sample in samples:
        window = [*window, sample][-detection.settle :]
        if len(window) == detection.settle and _agree(window, detection):
            reactive = _median_or_none([s.reactive() for s in window])
            return Sample(window[0].at, _median([s.power_w for s in window]), reactive_var=reactive)
    return None


def best_match(
    signatures: Iterable[Appliance],
    power_w: Decimal,
    power_factor: Decimal | None,
    detection: Detection = Detection(),
) -> Appliance | None:
    """The signature that ``power_w`` / ``power_factor`` fits best, or None: the one whose ranges' centres
    are nearest, each distance in half-widths of its range (then the code)."""
    found = [
        a
        for a in signatures
        if a.matches(
            power_w, power_factor, tolerance=detection.tolerance, pf_tolerance=detection.pf_tolerance
        )
    ]
    return min(found, key=lambda a: (_distance(a, power_w, power_factor), a.code)) if found else None


def _distance(a: Appliance, power_w: Decimal, power_factor: Decimal | None) -> Decimal:
    half = max(Decimal(a.power_span) / 2, _ONE)
    distance = abs(power_w - Decimal(a.power_min + a.power_max) / 2) / half
    if power_factor is not None:
        pf_half = max((a.pf_max - a.pf_min) / 2, Decimal("0.01"))
        distance += abs(power_factor - (a.pf_min + a.pf_max) / 2) / pf_half
    return distance


def _stronger(a: Action, b: Action) -> Action:
    return a if _ACTION_RANK[a] >= _ACTION_RANK[b] else b


def classify_step(
    step: Step,
    profile: LoadProfile,
    detection: Detection = Detection(),
    catalogue: Mapping[str, Appliance] | Iterable[Appliance] = (),
) -> LoadEvent:
    """The :class:`LoadEvent` of one step under ``profile`` (rules in the module doc). ``catalogue``: the
    appliances to name steps by when the whitelist does not (default: none)."""
    known = tuple(catalogue.values()) if isinstance(catalogue, Mapping) else tuple(catalogue)
    size = abs(step.step_w)
    pf = step.power_factor
    on = step.step_w > 0
    allowed = best_match(profile.whitelist, size, pf, detection) if on else None
    named = allowed or best_match(known, size, pf, detection)
    limit = profile.power_limit_w
    over = limit is not None and step.after_w > limit
    malicious = (
        on
        and profile.malicious_mode is not MaliciousMode.OFF
        and profile.in_controlled_range(size)
        and pf is not None
        and pf >= profile.pf_threshold
        and allowed is None
    )
    action = Action.NONE
    if malicious:
        action = Action(str(profile.malicious_mode))
        classification = Classification.MALICIOUS
    elif over:
        classification = Classification.OVERLOAD
    elif allowed is not None:
        classification = Classification.WHITELISTED
    elif named is not None or not on:
        classification = Classification.NORMAL
    else:
        classification = Classification.UNKNOWN
    if over:
        action = _stronger(action, Action(str(profile.limit_mode)))
    return LoadEvent(
        at=step.at,
        step_w=step.step_w,
        level_w=step.after_w,
        power_factor=pf,
        classification=classification,
        appliance=None if named is None else named.code,
        action=action,
        over_limit=over,
        surge_ratio=step.surge_ratio,
    )


def classify(
    samples: Iterable[Sample],
    profile: LoadProfile,
    detection: Detection = Detection(),
    catalogue: Mapping[str, Appliance] | Iterable[Appliance] = (),
) -> tuple[LoadEvent, ...]:
    """Detect the steps of ``samples`` and classify each (see the module doc); an ``overload`` event first
    when the baseline is already above the power limit."""
    samples = tuple(samples)
    events: list[LoadEvent] = []
    limit = profile.power_limit_w
    if limit is not None:
        base = baseline_level(samples, detection)
        if base is not None and base.power_w > limit:
            events.append(
                LoadEvent(
                    at=base.at,
                    step_w=_ZERO,
                    level_w=base.power_w,
                    power_factor=None,
                    classification=Classification.OVERLOAD,
                    appliance=None,
                    action=Action(str(profile.limit_mode)),
                    over_limit=True,
                )
            )
    events.extend(classify_step(s, profile, detection, catalogue) for s in detect_steps(samples, detection))
    return tuple(events)
