"""Load-control parameter encodings: the shipped data is valid, every value round-trips, models carry them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.catalog import builtin_models, get_model, validate_model
from prepaid_engine.codecs import dlt645_di
from prepaid_engine.errors import ConfigError, FrameError
from prepaid_engine.load import (
    PARAMETERS,
    EventRecord,
    LimitMode,
    LoadProfile,
    MaliciousMode,
    PowerRange,
    RestorePolicy,
    TripReason,
    builtin_parameters,
    decode_parameter,
    encode_parameter,
    model_parameters,
    profile_from_parameters,
    profile_parameters,
    with_parameters,
)
from prepaid_engine.types import MeterModel, ParameterSpec

DLT = get_model("dlt645_2007_prepaid")
MODBUS = get_model("acrel_ddsy1352")
D = Decimal


def test_the_shipped_encodings_cover_the_electricity_models_and_are_all_marked_uncertain():
    shipped = builtin_parameters()
    assert set(shipped) == {"dlt645_2007_prepaid", "dlt645_2007_basic", "acrel_ddsy1352", "acrel_dtsy1352"}
    names = {p.name for p in shipped["dlt645_2007_prepaid"]}
    assert names == set(PARAMETERS)
    assert {p.name for p in shipped["acrel_ddsy1352"]} == {
        n for n in PARAMETERS if not n.startswith("event_")
    } | {"event_count"}
    assert all(p.uncertain and p.note for specs in shipped.values() for p in specs)
    assert next(p for p in shipped["dlt645_2007_prepaid"] if p.name == "power_limit").di == "04000E01"
    assert all(dlt645_di.DI_TABLE[p.di].uncertain for p in shipped["dlt645_2007_prepaid"])


def test_the_model_files_do_not_change_and_a_model_may_carry_its_own_parameters():
    assert DLT.parameters == ()  # the built-in JSON (and the Odoo data records) are as they were
    own = with_parameters(DLT)
    assert own.parameters == model_parameters(DLT)
    again = MeterModel.from_json(own.to_json())
    assert again == own and validate_model(again) == own
    assert "parameters" not in DLT.to_dict()
    moved = dataclasses.replace(
        DLT, parameters=(ParameterSpec("power_limit", di="04A10101", unit="kW", uncertain=True),)
    )
    assert model_parameters(moved) == moved.parameters  # its own win
    assert encode_parameter(moved, "power_limit", D("1.5")) == dlt645_di.encode_value("04A10101", D("1.5"))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (ParameterSpec("colour", di="04000E01"), "unknown"),
        (ParameterSpec("power_limit", di="0001FF00"), "single"),
        (ParameterSpec("power_limit", di="12345678"), "single"),
        (ParameterSpec("trip_reason", di="04A10010", access="rw"), "access"),
    ],
)
def test_a_bad_parameter_entry_is_refused(spec, match):
    with pytest.raises(ConfigError, match=match):
        validate_model(dataclasses.replace(DLT, parameters=(spec,)))


def test_a_parameter_defined_twice_is_refused():
    spec = ParameterSpec("power_limit", di="04000E01")
    with pytest.raises(ConfigError, match="twice"):
        validate_model(dataclasses.replace(DLT, parameters=(spec, spec)))


def test_worked_encodings():
    assert encode_parameter(DLT, "power_limit", D("2.2")).hex() == "002002"  # 02.2000 kW: 02 20 00, LSB first
    assert encode_parameter(DLT, "malicious_mode", MaliciousMode.TRIP) == b"\x02"
    assert encode_parameter(DLT, "pf_threshold", D("0.9")).hex() == "0009"
    assert encode_parameter(DLT, "restore_delay", 300).hex() == "0003"
    assert encode_parameter(MODBUS, "power_limit", D("2.2")) == (2200,)
    assert decode_parameter(MODBUS, "power_limit_mode", (1,)) is LimitMode.TRIP
    record = EventRecord(datetime(2025, 3, 3, 8, 0, 5), TripReason.MALICIOUS_LOAD, D("1.7000"))
    assert record.to_digits() == "01700001250303080005"
    raw = encode_parameter(DLT, "event_1", record)
    assert raw.hex() == "05000803032501007001"  # ss mm hh DD MM YY, reason, power LSB first
    assert decode_parameter(DLT, "event_1", raw) == record
    assert decode_parameter(DLT, "event_2", bytes(10)) is None


def test_unknown_codes_and_unfit_values_are_errors():
    with pytest.raises(FrameError):
        decode_parameter(DLT, "malicious_mode", b"\x07")
    with pytest.raises(ConfigError):
        encode_parameter(DLT, "power_limit", D("1234"))  # XX.XXXX kW
    with pytest.raises(ConfigError):
        encode_parameter(MODBUS, "power_limit", D("1.23456"))
    with pytest.raises(ConfigError, match="no parameter"):
        encode_parameter(get_model("cjt188_water"), "power_limit", D(1))


kw = st.integers(0, 65535).map(lambda n: D(n).scaleb(-3))
VALUES = {
    "power_limit": kw,
    "power_limit_mode": st.sampled_from(list(LimitMode)),
    "malicious_mode": st.sampled_from(list(MaliciousMode)),
    "pf_threshold": st.integers(0, 999).map(lambda n: D(n).scaleb(-3)),
    "restore_delay": st.integers(0, 9999),
    "restore_count": st.integers(0, 99),
    "trip_reason": st.sampled_from(list(TripReason)),
    "restores_today": st.integers(0, 99),
    "event_count": st.integers(0, 65535),
    **{f"range_{n}_{end}": kw for n in range(1, 7) for end in ("low", "high")},
    **{
        f"event_{n}": st.one_of(
            st.none(),
            st.builds(
                EventRecord,
                st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
                    lambda d: d.replace(microsecond=0)
                ),
                st.sampled_from(list(TripReason)),
                st.integers(0, 999_999).map(lambda n: D(n).scaleb(-4)),
            ),
        )
        for n in range(1, 11)
    },
}


def test_every_parameter_has_a_value_strategy():
    assert set(VALUES) == set(PARAMETERS)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_parameter_round_trips_on_every_model_that_has_it(data):
    code = data.draw(st.sampled_from(sorted(builtin_parameters())), label="model")
    model = builtin_models()[code]
    name = data.draw(st.sampled_from([p.name for p in model_parameters(model)]), label="name")
    value = data.draw(VALUES[name], label="value")
    raw = encode_parameter(model, name, value)
    decoded = decode_parameter(model, name, raw)
    assert decoded == value


def test_a_profile_and_policy_round_trip_through_the_parameter_values():
    profile = LoadProfile(
        power_limit_kw=D("2.2"),
        limit_mode=LimitMode.ALARM,
        malicious_mode=MaliciousMode.TRIP,
        ranges=(PowerRange(300, 2500), PowerRange(40, 150)),
        pf_threshold=D("0.92"),
    )
    policy = RestorePolicy(timedelta(minutes=3), 2)
    values = profile_parameters(profile, policy)
    assert values["range_3_low"] == 0 and values["restore_delay"] == 180
    for model in (DLT, MODBUS):
        wire = {
            name: decode_parameter(model, name, encode_parameter(model, name, v))
            for name, v in values.items()
        }
        assert profile_from_parameters(wire) == (profile, policy)
