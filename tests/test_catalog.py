"""The meter-model catalogue: shipped JSON files, their shape, and loading extra models."""

import json
from dataclasses import replace
from importlib import resources

import pytest

from prepaid_engine.catalog import builtin_models, get_model, load_models, validate_model
from prepaid_engine.errors import ConfigError
from prepaid_engine.types import CommandKind, MeterModel, Protocol, RegisterWrite, Utility

MODEL_DIR = resources.files("prepaid_engine").joinpath("data", "models")
MODEL_FILES = sorted((e for e in MODEL_DIR.iterdir() if e.name.endswith(".json")), key=lambda e: e.name)

EXPECTED = {
    "dlt645_2007_prepaid": (Protocol.DLT645_2007, Utility.ELECTRICITY),
    "dlt645_2007_basic": (Protocol.DLT645_2007, Utility.ELECTRICITY),
    "dlt645_1997": (Protocol.DLT645_1997, Utility.ELECTRICITY),
    "cjt188_water": (Protocol.CJT188, Utility.WATER),
    "cjt188_water_lsb": (Protocol.CJT188, Utility.WATER),
    "acrel_ddsy1352": (Protocol.MODBUS, Utility.ELECTRICITY),
    "acrel_dtsy1352": (Protocol.MODBUS, Utility.ELECTRICITY),
    "acrel_adf300": (Protocol.MODBUS, Utility.ELECTRICITY),
    "modbus_generic": (Protocol.MODBUS, Utility.ELECTRICITY),
}
DI_LENGTH = {Protocol.DLT645_2007: 8, Protocol.DLT645_1997: 4, Protocol.CJT188: 4}


def test_catalogue_ships_exactly_the_expected_models():
    models = builtin_models()
    assert sorted(models) == sorted(EXPECTED)
    for code, (protocol, utility) in EXPECTED.items():
        assert (models[code].protocol, models[code].utility) == (protocol, utility), code


@pytest.mark.parametrize("entry", MODEL_FILES, ids=lambda e: e.name)
def test_every_model_file_round_trips_to_dict_exactly(entry):
    text = entry.read_text(encoding="utf-8")
    data = json.loads(text)
    model = MeterModel.from_dict(data)
    assert model.to_dict() == data
    assert MeterModel.from_dict(model.to_dict()) == model
    # Canonical form (MeterModel.to_json), so Odoo data records and diffs stay stable.
    assert text == model.to_json() + "\n"
    assert entry.name == f"{model.code}.json"


def test_model_codes_are_unique_across_files():
    codes = [json.loads(e.read_text(encoding="utf-8"))["code"] for e in MODEL_FILES]
    assert len(codes) == len(set(codes)) == len(EXPECTED)


@pytest.mark.parametrize("code", [c for c, (p, _) in EXPECTED.items() if p is not Protocol.MODBUS])
def test_data_identifiers_are_upper_hex_of_the_protocol_length(code):
    model = get_model(code)
    assert model.reads and not model.registers and not model.writes
    for di in model.reads:
        assert len(di) == DI_LENGTH[model.protocol]
        assert int(di, 16) >= 0 and di == di.upper()


def test_dlt645_prepaid_model_reads_the_prepaid_identifiers_with_password_options():
    model = get_model("dlt645_2007_prepaid")
    assert model.reads == ("0001FF00", "02010100", "02020100", "02030000", "04000503", "00900200", "03330201")
    assert (model.option("password_level"), model.option("password"), model.option("operator")) == (
        "02",
        "000000",
        "00000000",
    )
    assert get_model("dlt645_2007_basic").reads == ("0001FF00", "04000503")
    assert get_model("dlt645_1997").reads == ("901F", "B611", "B621", "B630")


def test_cjt188_models_differ_only_in_di_order():
    msb, lsb = get_model("cjt188_water"), get_model("cjt188_water_lsb")
    assert (msb.option("di_order"), lsb.option("di_order")) == ("msb", "lsb")
    assert msb.option("meter_type") == lsb.option("meter_type") == "10"
    assert msb.reads == lsb.reads == ("901F",)


@pytest.mark.parametrize("code", ["acrel_ddsy1352", "acrel_dtsy1352", "acrel_adf300"])
def test_acrel_maps_carry_the_published_registers_and_mark_the_rest_uncertain(code):
    model = get_model(code)
    by_name = {f.name: f for f in model.registers}
    for name, address in {
        "total": 0,
        "sharp": 2,
        "peak": 4,
        "flat": 6,
        "valley": 8,
        "ct_ratio": 0x38,
    }.items():
        assert by_name[name].address == address, name
    assert (by_name["total"].datatype, by_name["total"].word_order) == ("uint32", "big")
    assert model.write_for(CommandKind.TRIP) == RegisterWrite(0x0057, (1, 1))
    assert model.write_for(CommandKind.CLOSE) == RegisterWrite(0x0057, (1, 0))
    uncertain = set(model.option("uncertain").split(","))
    assert {"voltage", "current", "supply", "balance", "purchase_count", "model_code"} <= uncertain
    assert (
        model.option("model_code")
        == {"acrel_ddsy1352": "7", "acrel_dtsy1352": "5", "acrel_adf300": "10"}[code]
    )


def test_adf300_documents_circuit_addressing():
    model = get_model("acrel_adf300")
    assert model.option("circuits") == "36"
    assert int(model.option("circuit_stride")) >= 0x59  # one circuit's fields and relay write fit the stride
    assert "unit/circuit" in model.option("addressing")


def test_get_model_rejects_an_unknown_code():
    with pytest.raises(ConfigError, match="unknown meter model 'nope'"):
        get_model("nope")


def test_load_models_reads_files_and_directories(tmp_path):
    base = get_model("modbus_generic")
    one = replace(base, code="site_meter_a", name="A")
    two = replace(base, code="site_meter_b", name="B")
    (tmp_path / "a.json").write_text(one.to_json(), encoding="utf-8")
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "b.json").write_text(two.to_json(), encoding="utf-8")
    models = load_models([tmp_path / "a.json", sub])
    assert models == {"site_meter_a": one, "site_meter_b": two}
    assert get_model("site_meter_b", {**builtin_models(), **models}) == two


def test_load_models_refuses_a_code_defined_twice(tmp_path):
    model = get_model("cjt188_water")
    (tmp_path / "a.json").write_text(model.to_json(), encoding="utf-8")
    (tmp_path / "b.json").write_text(model.to_json(), encoding="utf-8")
    with pytest.raises(ConfigError, match="defined twice"):
        load_models([tmp_path])


@pytest.mark.parametrize(
    "change",
    [
        {"reads": ("0001FF",)},  # DL/T 645-2007 identifiers are 4 bytes
        {"reads": ("0001FG00",)},
        {"reads": ()},
        {"code": "Bad Code"},
        {"options": (("password", "12345"),)},
    ],
)
def test_validate_model_rejects_malformed_dlt645_models(change):
    with pytest.raises(ConfigError):
        validate_model(replace(get_model("dlt645_2007_prepaid"), **change))


def test_validate_model_rejects_a_bad_cjt188_di_order(tmp_path):
    bad = replace(get_model("cjt188_water"), options=(("di_order", "middle"), ("meter_type", "10")))
    (tmp_path / "bad.json").write_text(bad.to_json(), encoding="utf-8")
    with pytest.raises(ConfigError, match="di_order"):
        load_models([tmp_path / "bad.json"])


def test_load_models_reports_a_file_that_is_not_json(tmp_path):
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not JSON"):
        load_models([tmp_path / "x.json"])
