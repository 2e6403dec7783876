"""The appliance catalogue: the shipped data is valid and complete, and the loader names what is wrong."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from prepaid_engine.errors import ConfigError
from prepaid_engine.load import (
    Appliance,
    Category,
    builtin_appliances,
    catalogue_document,
    default_whitelist,
    get_appliance,
    load_appliances,
)


def test_the_shipped_catalogue_holds_at_least_thirty_appliances_of_both_categories():
    catalogue = builtin_appliances()
    assert len(catalogue) >= 30
    allowed = {code for code, a in catalogue.items() if a.category is Category.ALLOWED}
    forbidden = set(catalogue) - allowed
    assert {"laptop", "phone_charger", "monitor", "desk_fan", "desk_lamp", "printer", "router"} <= allowed
    assert {"refrigerator", "water_dispenser", "tv", "desktop_pc"} <= allowed
    assert {"kettle", "immersion_heater", "hair_dryer", "electric_blanket", "hand_warmer"} <= forbidden
    assert {"induction_hob", "rice_cooker", "electric_heater", "iron"} <= forbidden
    assert all(a.name and a.name_zh for a in catalogue.values())


def test_resistive_appliances_have_a_power_factor_of_about_one():
    kettle = get_appliance("kettle")
    assert kettle.resistive and kettle.pf_max == 1 and kettle.power_min == 1500
    assert not get_appliance("laptop").resistive


def test_the_catalogue_document_round_trips(tmp_path):
    catalogue = builtin_appliances()
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(catalogue_document(catalogue.values()), ensure_ascii=False), encoding="utf-8")
    assert load_appliances(path) == catalogue


def test_the_default_whitelist_is_the_allowed_appliances():
    assert {a.code for a in default_whitelist()} == {
        code for code, a in builtin_appliances().items() if a.category is Category.ALLOWED
    }


def _doc(**changes):
    entry = {
        "code": "lamp",
        "name": "Lamp",
        "power_w": [10, 20],
        "power_factor": ["0.5", "0.9"],
    }
    entry.update(changes)
    return {"version": 1, "appliances": [entry]}


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"code": "Bad Code"}, "appliance.code"),
        ({"power_w": [30, 20]}, "appliance.power"),
        ({"power_w": [10]}, "appliance.shape"),
        ({"power_w": ["10", 20]}, "appliance.power"),
        ({"power_factor": ["0.9", "1.2"]}, "appliance.power_factor"),
        ({"power_factor": ["0", "0.5"]}, "appliance.power_factor"),
        ({"power_factor": ["x", "1"]}, "appliance.number"),
        ({"resistive": True}, "appliance.resistive"),
        ({"surge_ratio": "0.5"}, "appliance.surge"),
        ({"category": "maybe"}, "appliance.category"),
        ({"colour": "red"}, "appliance.shape"),
    ],
)
def test_a_bad_entry_is_refused_with_the_rule_it_breaks(changes, kind):
    with pytest.raises(ConfigError) as caught:
        load_appliances(_doc(**changes))
    assert caught.value.kind == kind
    assert "lamp" in str(caught.value) or "Bad Code" in str(caught.value)


def test_a_code_defined_twice_and_another_version_are_refused():
    doc = _doc()
    doc["appliances"].append(dict(doc["appliances"][0]))
    with pytest.raises(ConfigError, match="defined twice"):
        load_appliances(doc)
    with pytest.raises(ConfigError, match="version"):
        load_appliances({"version": 2, "appliances": []})


def test_matching_widens_the_ranges_by_the_tolerances():
    lamp = Appliance("lamp", "Lamp", 10, 20, Decimal("0.5"), Decimal("0.9"))
    assert lamp.matches(Decimal(21), Decimal("0.9"), tolerance=Decimal("0.1"))
    assert not lamp.matches(Decimal(23), Decimal("0.9"), tolerance=Decimal("0.1"))
    assert lamp.matches(Decimal(15), Decimal("0.92"), pf_tolerance=Decimal("0.02"))
    assert not lamp.matches(Decimal(15), Decimal("0.95"), pf_tolerance=Decimal("0.02"))
    assert lamp.matches(Decimal(15), None)
