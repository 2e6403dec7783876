"""Plausibility of readings (prepaid_engine.plausibility): examples of each rule and the two properties the
rule promises: no step within the meter's capacity is refused, none beyond the bound is let through."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.catalog import builtin_models, get_model, validate_model
from prepaid_engine.errors import ConfigError
from prepaid_engine.plausibility import (
    DEFAULT_CAPACITY,
    JITTER,
    MARGIN,
    MAX_COUNT,
    MAX_VALUE,
    STEP_FLOOR,
    Finding,
    Limits,
    judge,
    sanitize,
    storable,
)
from prepaid_engine.rating import Register, Replacement
from prepaid_engine.types import Capacity, MeterModel, Reading, Utility

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
D = Decimal
SINGLE_PHASE = Capacity(max_current=D(60), voltage=D(220), phases=1)  # 13.2 kW
WATER = Capacity(max_flow=D(5))


def limits(capacity=SINGLE_PHASE, utility=Utility.ELECTRICITY, **kwargs):
    return Limits(utility, capacity, **kwargs)


def reading(total, minutes=15, **registers):
    return Reading(
        "1", T0 + timedelta(minutes=minutes), total=None if total is None else D(total), **registers
    )


PREVIOUS = Register(T0, D("1000.00"))


# ---------------------------------------------------------------------------------------------- capacity


def test_capacity_rate_is_current_times_voltage_times_phases_times_ct_ratio():
    assert SINGLE_PHASE.rate(Utility.ELECTRICITY) == D("13.2")
    assert SINGLE_PHASE.rate(Utility.ELECTRICITY, ct_ratio=40) == D("528")
    three = Capacity(max_current=D(80), voltage=D(220), phases=3)
    assert three.rate(Utility.ELECTRICITY) == D("52.8")
    assert WATER.rate(Utility.WATER, ct_ratio=40) == D(5), "a CT ratio does not apply to water"


def test_every_builtin_model_says_its_capacity_for_its_utility():
    for model in builtin_models().values():
        assert model.capacity is not None, model.code
        assert model.capacity.check(model.utility) is model.capacity
    assert get_model("acrel_ddsy1352").capacity == SINGLE_PHASE
    assert get_model("acrel_dtsy1352").capacity.phases == 3
    assert get_model("cjt188_water").capacity == Capacity(max_flow=D(5))


def test_capacity_round_trips_through_the_model_json():
    model = get_model("acrel_dtsy1352")
    assert MeterModel.from_json(model.to_json()) == model
    bare = MeterModel.from_dict({k: v for k, v in model.to_dict().items() if k != "capacity"})
    assert bare.capacity is None
    assert "capacity" not in bare.to_dict()


@pytest.mark.parametrize(
    ("capacity", "kind"),
    [
        ({"max_current": "-1", "voltage": "220", "phases": 1}, "capacity.not_positive"),
        ({"max_current": "NaN", "voltage": "220", "phases": 1}, "capacity.not_positive"),
        ({"max_current": "60", "voltage": "220", "phases": 4}, "capacity.phases"),
        ({"max_current": "60", "voltage": "220"}, "capacity.fields"),
        ({"max_flow": "5"}, "capacity.fields"),
        ({"max_current": "60", "voltage": "220", "phases": 1, "colour": "red"}, "capacity.shape"),
    ],
)
def test_a_model_with_an_unusable_capacity_is_refused_with_a_kind(capacity, kind):
    data = {**get_model("acrel_ddsy1352").to_dict(), "capacity": capacity}
    with pytest.raises(ConfigError) as info:
        validate_model(MeterModel.from_dict(data))
    assert info.value.kind == kind


def test_config_errors_keep_their_kind_and_params_through_pickle():
    error = ConfigError("nine periods", kind="tariff.periods_too_many", count=9, max=8)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.kind, copy.params) == (
        "nine periods",
        "tariff.periods_too_many",
        {"count": 9, "max": 8},
    )


# ---------------------------------------------------------------------------------------------- examples


def test_a_normal_step_is_plausible():
    assert judge(reading("1003.00"), limits(), PREVIOUS).plausible
    assert judge(reading("1000.00"), limits(), PREVIOUS).plausible, "no consumption is plausible"


def test_a_first_reading_is_judged_on_its_value_alone():
    assert judge(reading("123456.78"), limits()).plausible
    verdict = judge(reading("1e15"), limits())
    assert verdict.finding is Finding.OUT_OF_RANGE
    assert verdict.field == "total"
    assert verdict.value == D("1e15")
    assert verdict.allowed == limits().max_index


def test_the_rule_5_bound_over_fifteen_minutes():
    # 13.2 kW x (900 s + 60 s) x 1.25 = 4.4 kWh, + 0.1 floor = 4.5 kWh.
    assert limits().allowed_step(timedelta(minutes=15)) == D("4.500")
    assert judge(reading("1004.50"), limits(), PREVIOUS).plausible
    verdict = judge(reading("1004.51"), limits(), PREVIOUS)
    assert verdict.finding is Finding.TOO_FAST
    assert (verdict.step, verdict.allowed, verdict.elapsed) == (D("4.51"), D("4.500"), D(900))
    assert (verdict.value, verdict.reference) == (D("1004.51"), D("1000.00"))
    assert verdict.to_dict() == {
        "finding": "too_fast",
        "field": "total",
        "value": "1004.51",
        "reference": "1000.00",
        "step": "4.51",
        "allowed": "4.500",
        "elapsed": "900",
        "message": verdict.message,
    }


def test_the_ct_ratio_and_the_factor_widen_the_bound():
    assert judge(reading("1100"), limits(ct_ratio=40), PREVIOUS).plausible
    assert judge(reading("1100"), limits(factor=D(60)), PREVIOUS).plausible
    assert not judge(reading("1100"), limits(), PREVIOUS).plausible


def test_the_pushed_1e15_is_not_plausible():
    verdict = judge(reading("1000000000000000"), limits(), PREVIOUS)
    assert verdict.finding is Finding.OUT_OF_RANGE


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_registers_are_not_plausible(value):
    assert judge(reading(value), limits(), PREVIOUS).finding is Finding.NOT_FINITE
    assert judge(reading("1001", peak=D(value)), limits(), PREVIOUS).finding is Finding.NOT_FINITE


def test_negative_and_oversized_registers_are_not_plausible():
    assert judge(reading("-0.01"), limits(), PREVIOUS).finding is Finding.NEGATIVE
    assert judge(reading("1e400"), limits()).finding is Finding.OUT_OF_RANGE
    assert judge(reading("1001", valley=D(-1)), limits(), PREVIOUS).finding is Finding.NEGATIVE


def test_a_falling_index_is_not_plausible_but_a_plausible_roll_over_is():
    assert judge(reading("999"), limits(), PREVIOUS).finding is Finding.INDEX_FELL
    near_top = Register(T0, D("99999.00"))
    wrap = limits(rollover_at=D("99999.99"))
    assert judge(reading("2.00"), wrap, near_top).plausible  # 3.00 kWh through zero
    assert judge(reading("50000"), wrap, near_top).finding is Finding.INDEX_FELL  # not a tenth of the range
    assert judge(reading("10"), wrap, near_top).finding is Finding.TOO_FAST  # 11 kWh in 15 minutes
    assert judge(reading("100000.00"), wrap).finding is Finding.OUT_OF_RANGE  # above the register limit


def test_a_declared_replacement_is_plausible():
    swap = Replacement(Register(T0, D("1002")), Register(T0, D(0)), T0 + timedelta(minutes=5))
    assert judge(reading("1.5"), limits(), PREVIOUS, replacement=swap).plausible
    assert judge(reading("1.5"), limits(), PREVIOUS).finding is Finding.INDEX_FELL
    assert judge(reading("9"), limits(), PREVIOUS, replacement=swap).finding is Finding.TOO_FAST


def test_band_registers_must_follow_the_total():
    previous = Register(T0, D(1000), D(100), D(300), D(400), D(200))
    good = reading("1003", sharp=D(100), peak=D(301), flat=D(401.5), valley=D("200.5"))
    assert judge(good, limits(), previous).plausible
    rounded = reading("1003", sharp=D("100.01"), peak=D("301.01"), flat=D("401.51"), valley=D("200.51"))
    assert judge(rounded, limits(), previous).plausible, "each register rounds on its own"
    too_much = reading("1003", sharp=D(100), peak=D(320), flat=D(400), valley=D(200))
    assert judge(too_much, limits(), previous).finding is Finding.BANDS_INCONSISTENT
    fallen = reading("1003", sharp=D(100), peak=D(290), flat=D(400), valley=D(200))
    verdict = judge(fallen, limits(), previous)
    assert (verdict.finding, verdict.field) == (Finding.BANDS_INCONSISTENT, "peak")
    one_side = reading("1003", peak=D(5000))
    assert judge(one_side, limits(), Register(T0, D(1000))).plausible, "nothing to compare the band with"


def test_a_late_reading_is_judged_against_the_accepted_reading_after_it_too():
    following = Register(T0 + timedelta(minutes=30), D("1006"))
    assert judge(reading("1003"), limits(), PREVIOUS, following).plausible
    assert judge(reading("1000.5"), limits(), PREVIOUS, following).finding is Finding.TOO_FAST
    lower = Register(T0 + timedelta(minutes=30), D("1003"))
    assert judge(reading("1004"), limits(), PREVIOUS, lower).finding is Finding.INDEX_FELL


def test_a_reading_without_total_is_judged_on_its_values_only():
    assert judge(reading(None, voltage=D(230)), limits(), PREVIOUS).plausible
    assert judge(reading(None, sharp=D("NaN")), limits(), PREVIOUS).finding is Finding.NOT_FINITE


def test_a_reference_given_as_a_registers_tuple_is_judged_as_the_register():
    previous = Register(T0, D(1000), D(100), D(300), D(400), D(200))
    as_tuple = (T0, D(1000), D(100), D(300), D(400), D(200))
    for current in (
        reading("1003", sharp=D(100), peak=D(301), flat=D(401.5), valley=D("200.5")),
        reading("1003", sharp=D(100), peak=D(320), flat=D(400), valley=D(200)),
        reading("1004.51"),
        reading("999"),
    ):
        assert judge(current, limits(), as_tuple) == judge(current, limits(), previous)


def test_readings_must_come_after_the_reference():
    with pytest.raises(ConfigError) as info:
        judge(reading("1000", minutes=0), limits(), PREVIOUS)
    assert info.value.kind == "plausibility.order"


def test_a_model_without_capacity_is_judged_by_its_utility_default():
    assert limits(None).rate == DEFAULT_CAPACITY[Utility.ELECTRICITY].rate(Utility.ELECTRICITY)
    assert limits(None, Utility.WATER).rate == D(10)
    assert not judge(reading("1e15"), limits(None), PREVIOUS).plausible


def test_water_is_judged_by_its_maximum_flow():
    water = limits(WATER, Utility.WATER)
    previous = Register(T0, D("10.000"))
    assert judge(Reading("1", T0 + timedelta(hours=1), total=D("15.000")), water, previous).plausible
    verdict = judge(Reading("1", T0 + timedelta(hours=1), total=D("18.000")), water, previous)
    assert verdict.finding is Finding.TOO_FAST


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"ct_ratio": 0}, "plausibility.ct_ratio"),
        ({"factor": D(0)}, "plausibility.factor"),
        ({"factor": D("NaN")}, "plausibility.factor"),
        ({"rollover_at": D(-1)}, "plausibility.rollover_at"),
    ],
)
def test_unusable_limits_are_refused(kwargs, kind):
    with pytest.raises(ConfigError) as info:
        limits(**kwargs)
    assert info.value.kind == kind


# ---------------------------------------------------------------------------------------------- sanitize


def test_sanitize_blanks_what_must_not_be_stored_and_keeps_the_rest():
    clean = Reading("1", T0, total=D("1000.5"), power=D("1.2"), purchase_count=7)
    assert sanitize(clean) == (clean, ())
    dirty = Reading(
        "1",
        T0,
        total=D("1e400"),
        power_factor=D("NaN"),
        voltage=D("Infinity"),
        current=D("2.5"),
        purchase_count=MAX_COUNT + 1,
    )
    stored, dropped = sanitize(dirty)
    assert dropped == ("total", "voltage", "power_factor", "purchase_count")
    assert (stored.total, stored.voltage, stored.power_factor, stored.purchase_count) == (None,) * 4
    assert stored.current == D("2.5")
    assert sanitize(Reading("1", T0, purchase_count=-1))[1] == ("purchase_count",)


def test_storable():
    assert storable(None) and storable("on") and storable(D("999999999999.999")) and storable(D(0))
    assert not storable(MAX_VALUE) and not storable(D("NaN")) and not storable(D("-1e12"))
    assert not storable(float("nan")) and not storable(float("inf")) and storable(1.5)


# ---------------------------------------------------------------------------------------------- properties

capacities = st.one_of(
    st.builds(
        Capacity,
        max_current=st.decimals(min_value=D("0.1"), max_value=D(400), places=1),
        voltage=st.sampled_from([D(110), D(220), D(230), D(240), D("57.7")]),
        phases=st.sampled_from([1, 3]),
    ),
)
elapsed_us = st.integers(min_value=1, max_value=31 * 24 * 3600 * 10**6)  # up to a month between readings
starts = st.decimals(min_value=D(0), max_value=D(100000), places=2)


def exact_rate(limits_: Limits) -> Fraction:
    capacity = limits_.capacity
    if limits_.utility is Utility.WATER:
        return Fraction(capacity.max_flow) * Fraction(limits_.factor)
    watts = Fraction(capacity.max_current) * Fraction(capacity.voltage) * capacity.phases * limits_.ct_ratio
    return watts / 1000 * Fraction(limits_.factor)


@settings(max_examples=400, deadline=None)
@given(
    capacity=capacities,
    ct_ratio=st.integers(min_value=1, max_value=2000),
    start=starts,
    elapsed=elapsed_us,
    share=st.fractions(min_value=0, max_value=1),
    factor=st.sampled_from([D(1), D(1), D(60), D("0.5")]),
)
def test_no_step_within_the_meters_capacity_is_refused(capacity, ct_ratio, start, elapsed, share, factor):
    limits_ = limits(capacity, ct_ratio=ct_ratio, factor=factor)
    capacity_step = exact_rate(limits_) * Fraction(elapsed, 3_600_000_000)
    step = Decimal(int(capacity_step * share * 1000)).scaleb(-3)  # rounded down to the register's 0.001
    previous = Register(T0, start)
    current = Reading("1", T0 + timedelta(microseconds=elapsed), total=start + step)
    if current.total > limits_.max_index:
        return  # beyond 50 years of full load: out of range by rule 3, not this property
    assert judge(current, limits_, previous).plausible


@settings(max_examples=400, deadline=None)
@given(
    capacity=capacities,
    ct_ratio=st.integers(min_value=1, max_value=2000),
    start=starts,
    elapsed=elapsed_us,
    excess=st.decimals(min_value=D("0.001"), max_value=D(10**6), places=3),
    bands=st.booleans(),
)
def test_no_step_beyond_the_bound_is_plausible(capacity, ct_ratio, start, elapsed, excess, bands):
    limits_ = limits(capacity, ct_ratio=ct_ratio)
    bound = exact_rate(limits_) * Fraction(elapsed + JITTER // timedelta(microseconds=1), 3_600_000_000)
    bound = bound * Fraction(MARGIN) + Fraction(STEP_FLOOR)
    step = Decimal(int(bound * 1000) + 1).scaleb(-3) + excess
    previous = Register(T0, start, *((D(0),) * 4 if bands else ()))
    total = start + step
    registers = {"flat": step} if bands else {}
    current = Reading("1", T0 + timedelta(microseconds=elapsed), total=total, **registers)
    verdict = judge(current, limits_, previous)
    assert verdict.finding in (Finding.TOO_FAST, Finding.OUT_OF_RANGE)
    if verdict.finding is Finding.TOO_FAST:
        assert Fraction(verdict.step) > bound and verdict.step > verdict.allowed


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(st.just(D("NaN")), st.just(D("Infinity")), st.decimals(max_value=D("-0.001"), places=3))
)
def test_no_non_finite_or_negative_total_is_plausible(value):
    current = Reading("1", T0 + timedelta(minutes=15), total=value)
    assert judge(current, limits(), PREVIOUS).finding in (Finding.NOT_FINITE, Finding.NEGATIVE)
    assert judge(current, limits()).finding in (Finding.NOT_FINITE, Finding.NEGATIVE)
