"""Modbus register maps: read plans, decode/encode round trips, CT ratio, relay writes, RTU helpers."""

import itertools
import math
import struct
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, WriteMultipleRegistersRequest

from prepaid_engine.catalog import builtin_models, get_model
from prepaid_engine.codecs import modbus
from prepaid_engine.codecs.modbus import (
    MAX_READ_REGISTERS,
    ReadBlock,
    command_for_write,
    command_write,
    crc16,
    decode,
    encode,
    encode_tables,
    float32_decimal,
    parse_address,
    read_image,
    read_plan,
    rtu_frame,
    rtu_unframe,
    validate_register_map,
)
from prepaid_engine.errors import ChecksumError, ConfigError, FrameError
from prepaid_engine.types import (
    READING_FIELDS,
    CommandKind,
    MeterModel,
    Protocol,
    RegisterField,
    RegisterWrite,
    Supply,
    Utility,
)

MODBUS_MODELS = sorted(code for code, m in builtin_models().items() if m.protocol is Protocol.MODBUS)
RANGES = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFFFFFF),
    "int32": (-0x80000000, 0x7FFFFFFF),
}
ENERGY_CT = {"total", "sharp", "peak", "flat", "valley", "current", "power"}


# ---------------------------------------------------------------------------------------------- strategies


def value_for(model: MeterModel, f: RegisterField, ct_ratio: int):
    """A strategy for a value field ``f`` can hold exactly (so encode -> decode must give it back)."""
    if f.name == "supply":
        return st.sampled_from(sorted(set(modbus.supply_table(model).values())))
    if f.name == "battery_low":
        return st.booleans()
    if f.name in modbus.INTEGER_FIELDS:
        lo, hi = RANGES[f.datatype]
        return st.integers(max(lo, 0), hi)
    ct = ct_ratio if (model.utility is Utility.ELECTRICITY and f.name in ENERGY_CT) else 1
    if f.datatype == "float32":
        raw = st.floats(width=32, allow_nan=False, allow_infinity=False).map(float32_decimal)
    else:
        raw = st.integers(*RANGES[f.datatype]).map(Decimal)
    return raw.map(lambda r: r * f.scale * ct)


@st.composite
def model_values(draw, model: MeterModel):
    circuit = draw(st.integers(1, modbus.circuit_count(model)))
    ct_ratio = draw(st.sampled_from([1, 1, 5, 40, 150, 3000]))
    values = {f.name: draw(value_for(model, f, ct_ratio)) for f in model.registers}
    return circuit, ct_ratio, values


POOL = [
    *(n for n in READING_FIELDS if n not in ("supply", "purchase_count", "battery_low")),
    "x1",
    "x2",
    "x3",
]


@st.composite
def synthetic_models(draw):
    """Random valid maps: any datatype, word order, table, scale, with gaps between fields."""
    names = draw(st.permutations(POOL))
    size = draw(st.integers(1, 12))
    ends = {"holding": draw(st.integers(0, 300)), "input": draw(st.integers(0, 300))}
    fields = []
    for name in names[:size]:
        datatype = draw(st.sampled_from(sorted(modbus.DATATYPES)))
        table = draw(st.sampled_from(["holding", "input"]))
        address = ends[table] + draw(st.one_of(st.just(0), st.integers(0, 6), st.integers(0, 80)))
        count = modbus.DATATYPES[datatype].count
        ends[table] = address + count
        fields.append(
            RegisterField(
                name=name,
                address=address,
                count=count,
                datatype=datatype,
                scale=Decimal(draw(st.sampled_from(["1", "0.1", "0.01", "0.001", "10"]))),
                word_order=draw(st.sampled_from(["big", "little"])),
                table=table,
            )
        )
    utility = draw(st.sampled_from([Utility.ELECTRICITY, Utility.WATER]))
    model = MeterModel("synthetic", "synthetic", Protocol.MODBUS, utility, registers=tuple(fields))
    validate_register_map(model)
    return model


def min_blocks(spans, max_gap, max_count):
    """Independent minimum: dynamic programming over every way to cut the sorted fields into runs."""
    spans = sorted(spans)
    best = [0] + [math.inf] * len(spans)
    for j in range(1, len(spans) + 1):
        for i in range(j):
            run = spans[i:j]
            fits = run[-1][1] - run[0][0] <= max_count
            gaps_ok = all(b[0] - a[1] <= max_gap for a, b in itertools.pairwise(run))
            if fits and gaps_ok:
                best[j] = min(best[j], best[i] + 1)
    return best[-1]


def round_trip(model, circuit, ct_ratio, values):
    names = list(values)
    plan = read_plan(model, names, circuit=circuit)
    tables = encode_tables(model, values, ct_ratio, circuit=circuit)
    blocks = {}
    for table in ("holding", "input"):
        blocks.update(read_image([b for b in plan if b.table == table], tables.get(table, {})))
    return decode(model, blocks, ct_ratio, names=names, circuit=circuit)


# ----------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("code", MODBUS_MODELS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_builtin_map_decodes_what_it_encodes(code, data):
    model = get_model(code)
    circuit, ct_ratio, values = data.draw(model_values(model))
    assert round_trip(model, circuit, ct_ratio, values) == values


@settings(max_examples=300, deadline=None)
@given(model=synthetic_models(), data=st.data())
def test_any_valid_map_decodes_what_it_encodes(model, data):
    circuit, ct_ratio, values = data.draw(model_values(model))
    decoded = round_trip(model, circuit, ct_ratio, values)
    assert decoded == values
    assert all(isinstance(v, Decimal) for v in decoded.values())


@settings(max_examples=300, deadline=None)
@given(model=synthetic_models(), max_gap=st.integers(0, 40), max_count=st.integers(2, 125))
def test_read_plan_covers_every_field_with_the_fewest_blocks(model, max_gap, max_count):
    names = [f.name for f in model.registers]
    plan = read_plan(model, names, max_gap=max_gap, max_count=max_count)
    for block in plan:
        assert 1 <= block.count <= max_count
    for f in model.registers:
        covering = [
            b for b in plan if b.table == f.table and b.address <= f.address and f.address + f.count <= b.end
        ]
        assert len(covering) == 1, f.name
    # No block starts or ends on a register that no field uses (nothing wasted at the edges).
    for block in plan:
        used = [
            f for f in model.registers if f.table == block.table and block.address <= f.address < block.end
        ]
        assert min(f.address for f in used) == block.address
        assert max(f.address + f.count for f in used) == block.end
    expected = sum(
        min_blocks(
            [(f.address, f.address + f.count) for f in model.registers if f.table == t], max_gap, max_count
        )
        for t in ("holding", "input")
    )
    assert len(plan) == expected


def test_default_plan_reads_each_acrel_meter_in_one_block():
    assert read_plan(get_model("acrel_ddsy1352")) == (ReadBlock("holding", 0, 0x15),)
    assert read_plan(get_model("acrel_dtsy1352")) == (ReadBlock("holding", 0, 0x1A),)
    assert read_plan(get_model("acrel_adf300"), circuit=3) == (ReadBlock("holding", 2 * 96, 0x14),)
    generic = read_plan(get_model("modbus_generic"))
    assert generic == (ReadBlock("holding", 0x10, 1), ReadBlock("input", 0, 2))
    assert [b.function_code for b in generic] == [3, 4]


def test_plan_splits_when_the_gap_is_too_large_and_respects_125_registers():
    model = get_model("acrel_ddsy1352")
    assert read_plan(model, ["total", "ct_ratio"]) == (
        ReadBlock("holding", 0, 2),
        ReadBlock("holding", 0x38, 1),
    )
    assert read_plan(model, ["total", "ct_ratio"], max_gap=60) == (ReadBlock("holding", 0, 0x39),)
    assert read_plan(model, ["total", "ct_ratio"], max_gap=60, max_count=0x38) == (
        ReadBlock("holding", 0, 2),
        ReadBlock("holding", 0x38, 1),
    )
    with pytest.raises(ConfigError):
        read_plan(model, max_count=MAX_READ_REGISTERS + 1)


# ------------------------------------------------------------------------------------ decoding examples


def ddsy_image(**overrides):
    # fmt: off
    image = {
        0x00: 0x0001, 0x01: 0xE240,  # total 123456 -> 1234.56 kWh
        0x02: 0x0000, 0x03: 0x3039,  # sharp 12345 -> 123.45
        0x04: 0x0000, 0x05: 0x0064,  # peak 1.00
        0x06: 0x0000, 0x07: 0x00C8,  # flat 2.00
        0x08: 0x0000, 0x09: 0x012C,  # valley 3.00
        0x0A: 0x0000, 0x0B: 0x2710,  # balance 100.00
        0x0C: 0x0007,  # purchase count 7
        0x0D: 0x0000,  # relay closed
        0x10: 0x08FD,  # 230.1 V
        0x11: 0x01F4,  # 5.00 A
        0x12: 0xFC18,  # -1.000 kW
        0x13: 0x03E8,  # PF 1.000
        0x14: 0x1388,  # 50.00 Hz
    }
    # fmt: on
    image.update(overrides)
    return image


def test_ddsy1352_registers_decode_to_reading_values():
    model = get_model("acrel_ddsy1352")
    blocks = read_image(read_plan(model), ddsy_image())
    assert decode(model, blocks) == {
        "total": Decimal("1234.56"),
        "sharp": Decimal("123.45"),
        "peak": Decimal("1.00"),
        "flat": Decimal("2.00"),
        "valley": Decimal("3.00"),
        "voltage": Decimal("230.1"),
        "current": Decimal("5.00"),
        "power": Decimal("-1.000"),
        "power_factor": Decimal("1.000"),
        "frequency": Decimal("50.00"),
        "supply": Supply.ON,
        "balance": Decimal("100.00"),
        "purchase_count": 7,
    }


def test_ct_ratio_multiplies_energies_current_and_power_only():
    model = get_model("acrel_ddsy1352")
    values = decode(model, read_image(read_plan(model), ddsy_image()), ct_ratio=40)
    assert values["total"] == Decimal("49382.40")
    assert values["sharp"] == Decimal("4938.00")
    assert values["valley"] == Decimal("120.00")
    assert values["current"] == Decimal("200.00")
    assert values["power"] == Decimal("-40.000")
    assert values["voltage"] == Decimal("230.1")
    assert values["balance"] == Decimal("100.00")
    assert values["frequency"] == Decimal("50.00")
    assert values["power_factor"] == Decimal("1.000")


def test_ct_ratio_is_not_applied_to_water_models():
    water = MeterModel(
        code="modbus_water",
        name="water",
        protocol=Protocol.MODBUS,
        utility=Utility.WATER,
        registers=(RegisterField("total", 0, scale=Decimal("0.001")),),
    )
    assert decode(water, {ReadBlock("holding", 0, 2): (0, 1500)}, ct_ratio=50) == {"total": Decimal("1.5")}


def test_relay_state_register_maps_to_supply_and_unknown_values_to_fault():
    model = get_model("acrel_ddsy1352")
    plan = read_plan(model, ["supply"])
    assert plan == (ReadBlock("holding", 0x0D, 1),)
    assert decode(model, {plan[0]: (0,)}, names=["supply"]) == {"supply": Supply.ON}
    assert decode(model, {plan[0]: (1,)}, names=["supply"]) == {"supply": Supply.OFF}
    assert decode(model, {plan[0]: (9,)}, names=["supply"]) == {"supply": Supply.FAULT}
    assert encode(model, {"supply": Supply.OFF}) == {0x0D: 1}


def test_model_specific_fields_decode_when_asked():
    model = get_model("acrel_adf300")
    image = {0x30: 10, 96 * 4 + 0x38: 200}
    plan = read_plan(model, ["model_code", "ct_ratio"], circuit=5)
    assert decode(model, read_image(plan, image), names=["model_code", "ct_ratio"], circuit=5) == {
        "model_code": 10,
        "ct_ratio": 200,
    }


@pytest.mark.parametrize(
    ("datatype", "word_order", "words", "value"),
    [
        ("uint32", "big", (0x0001, 0x0000), Decimal(65536)),
        ("uint32", "little", (0x0000, 0x0001), Decimal(65536)),
        ("int32", "big", (0xFFFF, 0xFFFE), Decimal(-2)),
        ("int16", "big", (0x8000,), Decimal(-32768)),
        ("float32", "big", (0x4366, 0x199A), Decimal("230.1")),
        ("float32", "little", (0x199A, 0x4366), Decimal("230.1")),
    ],
)
def test_datatypes_and_word_order(datatype, word_order, words, value):
    field = RegisterField("x1", 4, len(words), datatype, Decimal(1), word_order)
    model = MeterModel("m", "m", Protocol.MODBUS, Utility.ELECTRICITY, registers=(field,))
    block = ReadBlock("holding", 4, len(words))
    assert decode(model, {block: words}, names=["x1"]) == {"x1": value}
    assert encode(model, {"x1": value}) == dict(zip(range(4, 4 + len(words)), words, strict=True))


def test_decode_refuses_short_or_out_of_range_blocks_and_uncovered_fields():
    model = get_model("acrel_ddsy1352")
    with pytest.raises(FrameError):
        decode(model, {ReadBlock("holding", 0, 21): (0,) * 20})
    with pytest.raises(FrameError):
        decode(model, {ReadBlock("holding", 0, 21): (0x10000,) + (0,) * 20})
    with pytest.raises(ConfigError, match="not inside the blocks"):
        decode(model, {ReadBlock("holding", 0, 10): (0,) * 10})
    with pytest.raises(FrameError, match="non-finite"):
        field = RegisterField("x1", 0, 2, "float32")
        nan_model = MeterModel("m", "m", Protocol.MODBUS, Utility.ELECTRICITY, registers=(field,))
        decode(nan_model, {ReadBlock("holding", 0, 2): (0x7FC0, 0)}, names=["x1"])


def test_encode_is_exact_unless_told_to_truncate():
    model = get_model("acrel_ddsy1352")
    with pytest.raises(ConfigError, match="multiple of its resolution"):
        encode(model, {"total": Decimal("1.005")})
    assert encode(model, {"total": Decimal("1.009")}, exact=False) == {0: 0, 1: 100}
    assert encode(model, {"total": Decimal("1000"), "voltage": None, "battery_low": True}, ct_ratio=8) == {
        0: 0,
        1: 12500,
    }
    with pytest.raises(ConfigError, match="no register field"):
        encode(model, {"not_a_field": 1})
    with pytest.raises(ConfigError, match="does not fit"):
        encode(model, {"voltage": Decimal("6553.6")})
    with pytest.raises(ConfigError, match="CT ratio"):
        encode(model, {"total": Decimal(1)}, ct_ratio=0)


# ------------------------------------------------------------------------------------------------ writes


@pytest.mark.parametrize("code", ["acrel_ddsy1352", "acrel_dtsy1352", "acrel_adf300"])
def test_acrel_trip_and_close_are_the_published_fc16_writes(code):
    model = get_model(code)
    trip, close = command_write(model, CommandKind.TRIP), command_write(model, CommandKind.CLOSE)
    assert trip == RegisterWrite(0x0057, (0x0001, 0x0001))
    assert close == RegisterWrite(0x0057, (0x0001, 0x0000))
    # protocols.md: FC16 at 0x0057, two registers, "0001 0001" forced trip / "0001 0000" forced close.
    assert modbus.write_pdu(trip) == bytes.fromhex("10 0057 0002 04 0001 0001")
    assert modbus.write_pdu(close) == bytes.fromhex("10 0057 0002 04 0001 0000")


def test_trip_frame_matches_pymodbus_rtu_framing():
    trip = command_write(get_model("acrel_ddsy1352"), CommandKind.TRIP)
    request = WriteMultipleRegistersRequest(address=trip.address, registers=list(trip.values), dev_id=3)
    expected = FramerRTU(DecodePDU(False)).buildFrame(request)
    assert rtu_frame(3, modbus.write_pdu(trip)) == expected


def test_adf300_writes_and_reads_are_offset_per_circuit():
    model = get_model("acrel_adf300")
    assert command_write(model, CommandKind.TRIP, circuit=36) == RegisterWrite(0x57 + 35 * 96, (1, 1))
    assert command_for_write(model, 0x57 + 35 * 96, (1, 1)) == (CommandKind.TRIP, 36)
    assert command_for_write(model, 0x57 + 2 * 96, [1, 0]) == (CommandKind.CLOSE, 3)
    assert command_for_write(model, 0x57 + 36 * 96, (1, 1)) is None  # circuit 37 does not exist
    assert command_for_write(model, 0x58, (1, 1)) is None
    assert command_for_write(model, 0x57, (0, 0)) is None
    with pytest.raises(ConfigError):
        command_write(model, CommandKind.TRIP, circuit=37)


def test_command_without_a_write_is_a_config_error():
    with pytest.raises(ConfigError, match="keep_power_on"):
        command_write(get_model("acrel_ddsy1352"), CommandKind.KEEP_POWER_ON)
    generic = get_model("modbus_generic")
    assert command_for_write(generic, 0x10, [1]) == (CommandKind.TRIP, 1)
    assert command_write(generic, CommandKind.CLOSE) == RegisterWrite(0x10, (0,))


@pytest.mark.parametrize(
    ("address", "expected"),
    [("1", (1, 1)), ("247", (247, 1)), (" 5/3 ", (5, 3))],
)
def test_parse_address(address, expected):
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["0", "248", "x", "5/0", "5/x", ""])
def test_parse_address_rejects(address):
    with pytest.raises(ConfigError):
        parse_address(address)


# -------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "registers",
    [
        (RegisterField("total", 0), RegisterField("sharp", 1)),  # overlap
        (RegisterField("total", 0, count=1),),  # uint32 needs 2 registers
        (RegisterField("total", 0, datatype="uint64"),),
        (RegisterField("total", 0, table="coil"),),
        (RegisterField("total", 0, word_order="middle"),),
        (RegisterField("total", 0, scale=Decimal(0)),),
        (RegisterField("supply", 0, count=2, datatype="float32"),),
        (RegisterField("purchase_count", 0, scale=Decimal("0.1")),),
        (RegisterField("total", 0), RegisterField("total", 4)),
        (RegisterField("Total", 0),),
        (),
    ],
)
def test_validate_register_map_rejects_broken_maps(registers):
    with pytest.raises(ConfigError):
        validate_register_map(replace(get_model("modbus_generic"), registers=registers, writes=()))


def test_validate_register_map_rejects_circuits_that_collide():
    adf = get_model("acrel_adf300")
    options = dict(adf.options) | {"circuit_stride": "32"}
    with pytest.raises(ConfigError, match="overlap"):
        validate_register_map(replace(adf, options=tuple(sorted(options.items()))))


def test_validate_register_map_rejects_bad_supply_values():
    generic = get_model("modbus_generic")
    options = dict(generic.options) | {"supply_values": "0:on,1:on"}
    with pytest.raises(ConfigError):
        validate_register_map(replace(generic, options=tuple(sorted(options.items()))))


def test_every_builtin_model_passes_validation():
    for model in builtin_models().values():
        validate_register_map(model)


# ------------------------------------------------------------------------------------------------- RTU


def test_crc16_of_the_classic_read_request():
    # 01 03 00 00 00 0A C5 CD: read 10 holding registers from unit 1, the usual Modbus-RTU worked example.
    assert crc16(bytes.fromhex("01 03 00 00 00 0A")) == 0xCDC5
    assert rtu_frame(1, modbus.read_pdu(ReadBlock("holding", 0, 10))) == bytes.fromhex(
        "01 03 00 00 00 0A C5 CD"
    )


@given(st.binary(max_size=64))
def test_crc16_agrees_with_pymodbus(data):
    assert crc16(data).to_bytes(2, "little") == FramerRTU.compute_CRC(data).to_bytes(2, "big")


def test_read_request_frame_matches_pymodbus():
    request = ReadHoldingRegistersRequest(address=0x20, count=26, dev_id=9)
    expected = FramerRTU(DecodePDU(False)).buildFrame(request)
    assert rtu_frame(9, modbus.read_pdu(ReadBlock("holding", 0x20, 26))) == expected


@given(unit=st.integers(0, 247), pdu=st.binary(min_size=1, max_size=40))
def test_rtu_unframe_inverts_rtu_frame_and_catches_any_single_bit_error(unit, pdu):
    frame = rtu_frame(unit, pdu)
    assert rtu_unframe(frame) == (unit, pdu)
    for bit in range(len(frame) * 8):
        broken = bytearray(frame)
        broken[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ChecksumError):
            rtu_unframe(bytes(broken))


def test_float32_decimal_is_the_shortest_exact_reading():
    assert float32_decimal(struct.unpack(">f", bytes.fromhex("4366199A"))[0]) == Decimal("230.1")
    assert str(float32_decimal(0.1)) == "0.1"
    assert float32_decimal(16777217.0) == Decimal("16777216")  # beyond float32 precision
