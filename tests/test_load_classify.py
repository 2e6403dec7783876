"""Load classification: steps found in noisy samples, judged as whitelisted, malicious, overload, normal."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.errors import ConfigError
from prepaid_engine.load import (
    Action,
    Appliance,
    Classification,
    Detection,
    LimitMode,
    LoadProfile,
    MaliciousMode,
    PowerRange,
    Sample,
    builtin_appliances,
    classify,
    default_whitelist,
    detect_steps,
)

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
D = Decimal


def trip_profile(**changes) -> LoadProfile:
    values = {
        "power_limit_kw": D("3.0"),
        "limit_mode": LimitMode.TRIP,
        "malicious_mode": MaliciousMode.TRIP,
        "ranges": (PowerRange(300, 6000),),
        "pf_threshold": D("0.90"),
        "whitelist": default_whitelist(),
        "rating_w": 13200,
    }
    values.update(changes)
    return LoadProfile(**values)


def series(*levels: tuple[int, object, int], start: datetime = T0, every: int = 5) -> list[Sample]:
    """Samples every ``every`` seconds: (count, power W, PF) runs."""
    out = []
    t = start
    for count, power, pf in levels:
        for _ in range(count):
            out.append(Sample(t, D(power), None if pf is None else D(str(pf))))
            t += timedelta(seconds=every)
    return out


def with_appliance(base_w, base_pf, add_w, add_pf):
    """(total W, total PF) of a base load plus an appliance (inductive reactive powers add)."""
    base_q = D(base_w) * ((1 / (D(base_pf) ** 2) - 1).sqrt())
    add_q = D(add_w) * ((1 / (D(add_pf) ** 2) - 1).sqrt())
    p = D(base_w) + D(add_w)
    q = base_q + add_q
    return p, p / (p * p + q * q).sqrt()


def test_a_1500_w_kettle_at_pf_1_in_a_trip_profile_is_malicious_and_trips():
    total, pf = with_appliance(200, "0.60", 1500, "1.0")
    samples = series((6, 200, "0.60")) + [
        Sample(T0 + timedelta(seconds=30 + 5 * i), total, pf) for i in range(4)
    ]
    [event] = classify(samples, trip_profile(), catalogue=builtin_appliances())
    assert event.classification is Classification.MALICIOUS
    assert event.action is Action.TRIP
    assert event.step_w == 1500
    assert event.power_factor == D("1.000")  # the step's own PF, not the total's (0.96)
    # resistive 1,500 W loads look alike: the name is one of them (the narrowest signature that fits)
    named = builtin_appliances()[event.appliance]
    assert named.resistive and named.category == "forbidden"
    assert event.at == T0 + timedelta(seconds=30)


def test_the_alarm_mode_alarms_instead_of_tripping():
    samples = series((4, 0, "1"), (4, 1500, "1"))
    [event] = classify(samples, trip_profile(malicious_mode=MaliciousMode.ALARM))
    assert (event.classification, event.action) == (Classification.MALICIOUS, Action.ALARM)


def test_a_60_w_laptop_at_pf_0_6_never_trips():
    total, pf = with_appliance(200, "0.95", 60, "0.6")
    samples = series((5, 200, "0.95")) + [
        Sample(T0 + timedelta(seconds=25 + 5 * i), total, pf) for i in range(4)
    ]
    profile = trip_profile(ranges=(PowerRange(30, 6000),), whitelist=())
    [event] = classify(samples, profile, catalogue=builtin_appliances())
    assert event.classification is not Classification.MALICIOUS
    assert event.action is Action.NONE
    assert event.power_factor < D("0.9")


def test_a_whitelisted_laptop_is_named():
    samples = series((4, 0, "1"), (4, 60, "0.6"))
    [event] = classify(samples, trip_profile(ranges=(PowerRange(30, 6000),)))
    assert (event.classification, event.appliance, event.action) == (
        Classification.WHITELISTED,
        "laptop",
        Action.NONE,
    )


def test_over_power_trips_in_trip_mode_and_alarms_in_alarm_mode():
    samples = series((4, 2500, "0.8"), (4, 3400, "0.8"))  # +900 W at PF 0.8 (below the threshold)
    [event] = classify(samples, trip_profile())
    assert (event.classification, event.action, event.over_limit) == (
        Classification.OVERLOAD,
        Action.TRIP,
        True,
    )
    [event] = classify(samples, trip_profile(limit_mode=LimitMode.ALARM))
    assert (event.classification, event.action) == (Classification.OVERLOAD, Action.ALARM)


def test_a_baseline_already_over_the_limit_is_one_overload_event():
    [event] = classify(series((5, 3600, "0.9")), trip_profile())
    assert (event.classification, event.step_w, event.action) == (Classification.OVERLOAD, 0, Action.TRIP)


def test_a_malicious_step_that_also_overloads_is_malicious_and_trips_even_if_the_limit_only_alarms():
    samples = series((4, 2000, "0.9"), (4, 3500, "0.9"))
    profile = trip_profile(limit_mode=LimitMode.ALARM)
    samples = series((4, 2000, "1"), (4, 3500, "1"))
    [event] = classify(samples, profile)
    assert (event.classification, event.action, event.over_limit) == (
        Classification.MALICIOUS,
        Action.TRIP,
        True,
    )


def test_switching_off_is_a_normal_negative_step():
    samples = series((4, 0, "1"), (4, 1500, "1"), (4, 0, "1"))
    on, off = classify(
        samples, trip_profile(malicious_mode=MaliciousMode.OFF), catalogue=builtin_appliances()
    )
    assert on.classification is Classification.NORMAL and builtin_appliances()[on.appliance].resistive
    assert off.step_w == -1500 and off.classification is Classification.NORMAL and off.action is Action.NONE


def test_noise_spikes_and_a_start_surge_make_no_extra_steps():
    rng = random.Random(7)
    samples = []
    t = T0
    for i in range(120):
        base = 300 + rng.randint(-12, 12)
        if i == 40:
            base += 900  # a one-sample spike
        if i == 41:
            base -= 250  # a one-sample dip
        if i >= 60:
            base += 1500 + rng.randint(-20, 20) + (1500 if i == 60 else 0)  # kettle on, with one surge sample
        samples.append(Sample(t, D(base), D("1.0")))
        t += timedelta(seconds=2)
    steps = detect_steps(samples, Detection(settle=3))
    assert len(steps) == 1
    [step] = steps
    assert abs(step.step_w - 1500) <= 40
    assert step.at == T0 + timedelta(seconds=120)
    assert step.surge_ratio > D("1.5")


def test_steps_below_the_minimum_are_ignored():
    samples = series((4, 100, "1"), (4, 120, "1"), (4, 100, "1"))
    assert detect_steps(samples, Detection(min_step_w=D(30))) == ()
    assert len(detect_steps(samples, Detection(min_step_w=D(15), noise_w=D(2), noise_ratio=D(0)))) == 2


def test_without_a_power_factor_a_step_is_never_malicious():
    samples = series((4, 0, None), (4, 1500, None))
    [event] = classify(samples, trip_profile())
    assert event.power_factor is None and event.classification is not Classification.MALICIOUS


def test_meter_reactive_power_gives_the_exact_step_pf():
    samples = [Sample(T0 + timedelta(seconds=i), D(100), reactive_var=D(100)) for i in range(3)]
    samples += [Sample(T0 + timedelta(seconds=3 + i), D(400), reactive_var=D(500)) for i in range(3)]
    [step] = detect_steps(samples)
    assert step.power_factor == D("0.600")  # 300 W, 400 var


@pytest.mark.parametrize(
    "changes",
    [
        {"ranges": (PowerRange(30, 100),) * 7},
        {"ranges": (PowerRange(300, 20000),)},
        {"malicious_mode": MaliciousMode.TRIP, "ranges": ()},
        {"pf_threshold": D("1.2")},
        {"power_limit_kw": D(0)},
    ],
)
def test_profiles_outside_what_meters_hold_are_refused(changes):
    with pytest.raises(ConfigError):
        trip_profile(**changes)


def test_a_range_starts_at_30_w_at_least():
    with pytest.raises(ConfigError) as caught:
        PowerRange(20, 100)
    assert caught.value.kind == "load.range"


# ---------------------------------------------------------------------------------------------- properties

signatures = st.builds(
    lambda low, span, pf_low, pf_span: Appliance(
        "sig", "Signature", low, low + span, D(pf_low).scaleb(-2), min(D(pf_low + pf_span).scaleb(-2), D(1))
    ),
    st.integers(30, 3000),
    st.integers(0, 1000),
    st.integers(30, 100),
    st.integers(0, 20),
)


@settings(max_examples=150, deadline=None)
@given(sig=signatures, power_frac=st.floats(0, 1), pf_frac=st.floats(0, 1), threshold=st.integers(50, 100))
def test_a_whitelisted_signature_alone_never_classifies_as_malicious(sig, power_frac, pf_frac, threshold):
    power = D(sig.power_min + round((sig.power_max - sig.power_min) * power_frac))
    pf = (sig.pf_min + (sig.pf_max - sig.pf_min) * D(str(round(pf_frac, 3)))).quantize(D("0.001"))
    pf = min(max(pf, sig.pf_min), sig.pf_max)
    samples = series((4, 0, "1"), (4, power, pf))
    profile = trip_profile(
        power_limit_kw=None,
        ranges=(PowerRange(30, 13200),),
        pf_threshold=D(threshold).scaleb(-2),
        whitelist=(sig,),
    )
    for event in classify(samples, profile):
        assert event.classification is not Classification.MALICIOUS
        assert event.action is Action.NONE


@settings(max_examples=150, deadline=None)
@given(
    low=st.integers(30, 3000),
    span=st.integers(0, 3000),
    frac=st.floats(0, 1),
    base=st.integers(0, 2000),
    base_q=st.integers(0, 2000),
    pf=st.integers(90, 100),
    threshold=st.integers(50, 90),
    whitelist=st.lists(signatures, max_size=3),
)
def test_a_resistive_step_in_a_controlled_range_that_no_whitelist_entry_matches_is_malicious(
    low, span, frac, base, base_q, pf, threshold, whitelist
):
    step = D(low + round(span * frac))
    step_pf = D(pf).scaleb(-2)
    step_q = step * ((1 / (step_pf * step_pf) - 1).sqrt())
    detection = Detection()
    profile = trip_profile(
        power_limit_kw=None,
        ranges=(PowerRange(low, low + span),),
        pf_threshold=D(threshold).scaleb(-2),
        whitelist=tuple(whitelist),
    )
    samples = [Sample(T0 + timedelta(seconds=i), D(base), reactive_var=D(base_q)) for i in range(4)]
    samples += [
        Sample(T0 + timedelta(seconds=4 + i), D(base) + step, reactive_var=D(base_q) + step_q)
        for i in range(4)
    ]
    if step < max(detection.min_step_w, detection.noise(D(base))):
        return  # below what step detection sees on this base load
    [event] = classify(samples, profile, detection)
    matched = any(
        a.matches(
            step, event.power_factor, tolerance=detection.tolerance, pf_tolerance=detection.pf_tolerance
        )
        for a in whitelist
    )
    assert event.step_w == step
    assert (event.classification is Classification.MALICIOUS) == (not matched)
    if not matched:
        assert event.action is Action.TRIP
