"""The site map: JSON round trip, the default site's contract with the Odoo demo data, poller specs."""

from __future__ import annotations

import json

import pytest

from prepaid_engine.catalog import builtin_models
from prepaid_engine.errors import ConfigError
from prepaid_engine.simulator.config import default_site
from prepaid_engine.sitemap import SiteMap, check_address, load_site_map
from prepaid_engine.types import GatewaySpec, Protocol, Transport, Utility

EXAMPLE = {
    "version": 1,
    "name": "default",
    "seed": 1,
    "gateways": [
        {
            "key": "sim-tg-1",
            "name": "Building A transparent gateway",
            "host": "127.0.0.1",
            "transport": "transparent",
            "timeout": 1.0,
            "buses": [
                {
                    "key": "1",
                    "port": 16101,
                    "baud": 9600,
                    "meters": [
                        {
                            "address": "000000001101",
                            "model": "dlt645_2007_prepaid",
                            "protocol": "dlt645_2007",
                            "utility": "electricity",
                            "meter_number": "000000001101",
                            "ct_ratio": 1,
                        }
                    ],
                }
            ],
        }
    ],
}


def _floors(width: int) -> list[str]:
    return [f"1{floor}{unit:02d}".zfill(width) for floor in (1, 2, 3) for unit in range(1, 9)]


def test_the_documented_example_loads_and_writes_back_identically():
    site = load_site_map(json.dumps(EXAMPLE))
    assert site.to_dict() == EXAMPLE
    meter = site.gateways[0].buses[0].meters[0]
    assert (meter.protocol, meter.utility, meter.ct_ratio) == (Protocol.DLT645_2007, Utility.ELECTRICITY, 1)


def test_round_trip_through_json_gives_an_equal_site_map():
    site = default_site().site_map()
    again = load_site_map(site.to_json())
    assert again == site
    assert load_site_map(site.to_dict()) == site
    assert json.loads(again.to_json()) == site.to_dict()


def test_default_site_contract_gateways_ports_and_bauds():
    site = default_site().site_map()
    assert [(g.key, g.transport, g.host) for g in site.gateways] == [
        ("sim-tg-1", Transport.TRANSPARENT, "127.0.0.1"),
        ("sim-mb-1", Transport.MODBUS_TCP, "127.0.0.1"),
    ]
    buses = [(g.key, b.key, b.port, b.baud, len(b.meters)) for g in site.gateways for b in g.buses]
    assert buses == [
        ("sim-tg-1", "1", 16101, 9600, 24),
        ("sim-tg-1", "2", 16102, 2400, 24),
        ("sim-mb-1", "1", 16201, 9600, 2),
    ]
    assert site.gateways[0].name == "Building A transparent gateway"
    assert (site.name, site.seed, site.meter_count) == ("default", 1, 50)


def test_default_site_contract_meters_addresses_models_and_numbers():
    site = default_site().site_map()
    electricity, water = site.gateways[0].buses
    (common,) = site.gateways[1].buses
    assert [m.address for m in electricity.meters] == _floors(12)
    assert electricity.meters[0].address == "000000001101"
    assert electricity.meters[-1].address == "000000001308"
    assert {(m.model, m.protocol, m.utility) for m in electricity.meters} == {
        ("dlt645_2007_prepaid", Protocol.DLT645_2007, Utility.ELECTRICITY)
    }
    assert [m.address for m in water.meters] == _floors(14)
    assert water.meters[0].address == "00000000001101"
    assert {(m.model, m.protocol, m.utility) for m in water.meters} == {
        ("cjt188_water", Protocol.CJT188, Utility.WATER)
    }
    assert [(m.address, m.model, m.protocol) for m in common.meters] == [
        ("1", "acrel_ddsy1352", Protocol.MODBUS),
        ("2", "acrel_ddsy1352", Protocol.MODBUS),
    ]
    for _, _, meter in site.meters():
        assert meter.meter_number == meter.address
        assert meter.ct_ratio == 1


def test_gateway_specs_default_keys_and_catalogue_models():
    site = default_site().site_map()
    specs = site.gateway_specs()
    assert all(isinstance(spec, GatewaySpec) for spec in specs)
    assert [spec.key for spec in specs] == ["sim-tg-1", "sim-mb-1"]
    first = specs[0].buses[0].meters[0]
    assert first.key == "sim-tg-1/1/000000001101"
    assert first.model == builtin_models()["dlt645_2007_prepaid"]
    assert first.meter_number == "000000001101"
    assert specs[1].buses[0].meters[1].key == "sim-mb-1/1/2"
    assert specs[1].transport == Transport.MODBUS_TCP
    assert [b.port for b in specs[0].buses] == [16101, 16102]
    assert [b.baud for b in specs[0].buses] == [9600, 2400]
    assert sum(len(b.meters) for s in specs for b in s.buses) == 50


def test_gateway_specs_with_own_keys_and_models():
    site = load_site_map(EXAMPLE)
    models = builtin_models()
    specs = site.gateway_specs(
        models=[models["dlt645_2007_prepaid"]], key=lambda gw, bus, meter: f"meter-{meter.address}"
    )
    assert specs[0].buses[0].meters[0].key == "meter-000000001101"
    with pytest.raises(ConfigError, match="unknown model"):
        site.gateway_specs(models={})
    with pytest.raises(ConfigError, match="speaks"):
        site.gateway_specs(models={"dlt645_2007_prepaid": models["cjt188_water"]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["gateways"][0].update(transport="pigeon"), "transport"),
        (lambda d: d["gateways"][0]["buses"][0]["meters"][0].update(address="1101"), "12 decimal digits"),
        (lambda d: d["gateways"][0]["buses"][0]["meters"][0].update(protocol="cjt188"), "14 decimal digits"),
        (lambda d: d["gateways"][0].update(transport="modbus_tcp"), "cannot carry"),
        (lambda d: d["gateways"][0]["buses"][0].update(port=70000), "out of range"),
        (lambda d: d["gateways"][0]["buses"][0].pop("port"), "missing 'port'"),
        (lambda d: d["gateways"].append(json.loads(json.dumps(d["gateways"][0]))), "used twice"),
        (
            lambda d: d["gateways"][0]["buses"][0]["meters"].append(
                dict(d["gateways"][0]["buses"][0]["meters"][0])
            ),
            "used twice",
        ),
    ],
)
def test_invalid_site_maps_are_refused_with_a_reason(change, message):
    data = json.loads(json.dumps(EXAMPLE))
    change(data)
    with pytest.raises(ConfigError, match=message):
        load_site_map(data)


def test_not_json_is_a_config_error():
    with pytest.raises(ConfigError, match="not JSON"):
        load_site_map("{nope")
    with pytest.raises(ConfigError, match="object"):
        load_site_map("[1, 2]")


def test_same_port_on_two_hosts_is_allowed():
    data = json.loads(json.dumps(EXAMPLE))
    other = json.loads(json.dumps(data["gateways"][0]))
    other.update(key="tg-2", host="127.0.0.2")
    data["gateways"].append(other)
    site = load_site_map(data)
    assert isinstance(site, SiteMap)
    assert [g.host for g in site.gateways] == ["127.0.0.1", "127.0.0.2"]


def test_optional_meter_name_and_customer_number_survive_the_round_trip():
    data = json.loads(json.dumps(EXAMPLE))
    data["gateways"][0]["buses"][0]["meters"][0].update(name="Unit 1-01", customer_number="000000000042")
    site = load_site_map(data)
    assert site.to_dict() == data
    assert site.gateway_specs()[0].buses[0].meters[0].customer_number == "000000000042"


@pytest.mark.parametrize(
    ("protocol", "address"),
    [
        (Protocol.DLT645_2007, "000000001101"),
        (Protocol.DLT645_1997, "123456789012"),
        (Protocol.CJT188, "00000000001101"),
        (Protocol.MODBUS, "1"),
        (Protocol.MODBUS, "247"),
        (Protocol.MODBUS, "5/3"),
        (Protocol.MODBUS, "12/999"),
    ],
)
def test_addresses_of_the_protocols_shape_are_accepted(protocol, address):
    assert check_address(protocol, address) == address
    assert check_address(str(protocol), address) == address


@pytest.mark.parametrize(
    ("protocol", "address", "kind", "params"),
    [
        ("dlt645_2007", "1101", "address.digits", {"digits": 12}),
        ("dlt645_2007", "00000000110a", "address.digits", {"digits": 12}),
        ("dlt645_2007", "00000000110\u0661", "address.digits", {"digits": 12}),  # an Arabic-Indic digit
        ("dlt645_1997", "0000000011011", "address.digits", {"digits": 12}),
        ("cjt188", "000000001101", "address.digits", {"digits": 14}),
        ("cjt188", "000000001101\n", "address.digits", {"digits": 14}),
        ("modbus", "0", "address.modbus", {"unit_max": 247, "circuit_max": 999}),
        ("modbus", "248", "address.modbus", {"unit_max": 247, "circuit_max": 999}),
        ("modbus", "007", "address.modbus", {"unit_max": 247, "circuit_max": 999}),
        ("modbus", "5/0", "address.modbus", {"unit_max": 247, "circuit_max": 999}),
        ("modbus", "5/1000", "address.modbus", {"unit_max": 247, "circuit_max": 999}),
        ("modbus", "5/", "address.modbus", {"unit_max": 247, "circuit_max": 999}),
        ("modbus", "5/2/1", "address.modbus", {"unit_max": 247, "circuit_max": 999}),
        ("modbus", "", "address.modbus", {"unit_max": 247, "circuit_max": 999}),
        ("iec62056", "1", "address.protocol", {}),
    ],
)
def test_addresses_off_the_protocols_shape_say_which_rule(protocol, address, kind, params):
    with pytest.raises(ConfigError) as info:
        check_address(protocol, address)
    assert info.value.kind == kind
    assert info.value.params == {"protocol": protocol, "address": address, **params}
