"""Signature learning: a new catalogue entry from samples taken while an appliance runs.

Staff switch the appliance on at a meter and capture samples (a poll every few seconds, or the meter's
load record). :func:`learn_signature` turns them into an :class:`~.appliances.Appliance`:

* ``baseline``: samples of the same meter just before, with the appliance off. Their median active and
  reactive power is subtracted from every sample, so what is learnt is the appliance's own power and power
  factor (as :mod:`.classify` computes a step's PF), not the room's. Without a baseline the samples are
  taken as the appliance alone (a test socket).
* The start surge is not the steady power: the steady level is the median of the samples, and the samples
  more than the surge margin above it at the start are the surge (``surge_ratio`` = their peak over the
  steady level, at least 1).
* The power range is the 10th to the 90th percentile of the steady samples, widened by ``margin``
  (a fraction, default 10 %) and at least ``min_width_w`` each side, in whole watts (floor / ceiling); the PF
  range likewise by ``pf_margin`` (absolute), clipped to 1. A PF range reaching 1.00 from >= 0.97 is
  ``resistive``.

``category`` defaults to ``allowed``: learning is how a property whitelists a device it knows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from ..errors import ConfigError
from .appliances import Appliance, Category
from .classify import Sample, _median

_ONE = Decimal(1)
_PF_QUANTUM = Decimal("0.01")


def _percentile(ordered: Sequence[Decimal], fraction: float) -> Decimal:
    index = min(len(ordered) - 1, max(0, math.floor(fraction * (len(ordered) - 1) + 0.5)))
    return ordered[index]


def _own(sample: Sample, base_w: Decimal, base_var: Decimal) -> tuple[Decimal, Decimal | None]:
    """(active W, PF) of the appliance alone in ``sample``."""
    power = sample.power_w - base_w
    reactive = sample.reactive()
    if reactive is None or power <= 0:
        return power, None
    dq = reactive - base_var
    with localcontext() as ctx:
        ctx.prec = 28
        pf = power / (power * power + dq * dq).sqrt()
    return power, min(pf, _ONE)


def learn_signature(
    samples: Sequence[Sample],
    *,
    code: str,
    name: str,
    name_zh: str = "",
    baseline: Sequence[Sample] = (),
    category: Category | str = Category.ALLOWED,
    margin: Decimal = Decimal("0.10"),
    pf_margin: Decimal = Decimal("0.03"),
    min_width_w: int = 5,
    surge_margin: Decimal = Decimal("0.20"),
) -> Appliance:
    """A signature from ``samples`` captured with the appliance on (see the module doc); :class:`ConfigError`
    when fewer than three samples draw power or no sample has a power factor."""
    base_w = _median([s.power_w for s in baseline]) if baseline else Decimal(0)
    base_q = [s.reactive() for s in baseline]
    base_var = Decimal(0) if not baseline or None in base_q else _median(base_q)  # type: ignore[arg-type]
    own = [_own(s, base_w, base_var) for s in samples]
    drawing = [(p, pf) for p, pf in own if p > 0]
    if len(drawing) < 3:
        raise ConfigError(
            f"{len(drawing)} samples draw power above the baseline; learning needs at least 3",
            kind="learn.samples",
            count=len(drawing),
        )
    steady = _median([p for p, _ in drawing])
    surge_end = 0
    while surge_end < len(drawing) - 1 and drawing[surge_end][0] > steady * (1 + surge_margin):
        surge_end += 1
    peak = max((p for p, _ in drawing[: surge_end or 1]), default=steady)
    running = drawing[surge_end:]
    powers = sorted(p for p, _ in running)
    factors = sorted(pf for _, pf in running if pf is not None)
    if not factors:
        raise ConfigError("no sample carries a power factor or reactive power", kind="learn.power_factor")
    low, high = _percentile(powers, 0.1), _percentile(powers, 0.9)
    low = min(low * (1 - margin), low - min_width_w)
    high = max(high * (1 + margin), high + min_width_w)
    pf_low = max(_percentile(factors, 0.1) - pf_margin, Decimal("0.01")).quantize(_PF_QUANTUM, ROUND_FLOOR)
    pf_high = min(_percentile(factors, 0.9) + pf_margin, _ONE).quantize(_PF_QUANTUM, ROUND_CEILING)
    resistive = pf_high >= 1 and pf_low >= Decimal("0.97")
    return Appliance(
        code=code,
        name=name,
        name_zh=name_zh,
        power_min=max(int(low.to_integral_value(ROUND_FLOOR)), 0),
        power_max=int(high.to_integral_value(ROUND_CEILING)),
        pf_min=pf_low,
        pf_max=min(pf_high, _ONE),
        resistive=resistive,
        surge_ratio=max(peak / steady, _ONE).quantize(Decimal("0.1"), ROUND_FLOOR) if steady > 0 else _ONE,
        category=Category(category),
    )
