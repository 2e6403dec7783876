"""CJ/T 188-2004 codec: frames byte for byte in both DI orders, 901F values and units, valve control,
abnormal replies, reading values, and hypothesis round trips of every message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.codecs import cjt188
from prepaid_engine.codecs.cjt188 import (
    AddressReply,
    DIOrder,
    ErrorReply,
    FlowReply,
    Frame,
    ReadAddress,
    ReadReply,
    ReadRequest,
    ValveAction,
    ValveControl,
    ValveState,
    WriteReply,
    WriteRequest,
)
from prepaid_engine.errors import (
    AddressError,
    ChecksumError,
    ConfigError,
    FrameError,
    MeterError,
    UnexpectedReply,
)
from prepaid_engine.types import Supply

METER = "12345678901234"
ADDRESS_WIRE = bytes.fromhex("34 12 90 78 56 34 12")
COLD = 0x10


def frame_bytes(
    control: int, data: bytes, meter_type: int = COLD, address_wire: bytes = ADDRESS_WIRE
) -> bytes:
    """A frame built by hand (independent of the codec): no scrambling, CS summed here."""
    body = bytes((0x68, meter_type)) + address_wire + bytes((control, len(data))) + data
    return body + bytes((sum(body) % 256, 0x16))


# 901F reply: flow 556677.00 m3, settlement 556600.00 m3, 2015-05-11 22:01:31, valve open, battery fine
FLOW_DATA = bytes.fromhex(
    "90 1F 00  00 77 66 55 2C  00 55 66 55 2C  31 01 22 11 05 15 20  00 00".replace("  ", " ")
)


# --- frames in both DI orders ---------------------------------------------------------------------
def test_read_901f_request_msb_order():
    wire = cjt188.read(METER, meter_type=COLD, di_order="msb")
    assert wire == bytes.fromhex("FE FE 68 10 34 12 90 78 56 34 12 01 03 90 1F 00 15 16")
    assert cjt188.decode(wire) == ReadRequest(COLD, METER, "901F", 0)


def test_read_901f_request_lsb_order():
    wire = cjt188.read(METER, meter_type="10", di_order="lsb", ser=5, preamble=3)
    assert wire == bytes.fromhex("FE FE FE 68 10 34 12 90 78 56 34 12 01 03 1F 90 05 1A 16")
    assert cjt188.decode(wire, di_order=DIOrder.LSB) == ReadRequest(COLD, METER, "901F", 5)
    # read with the other order, the same bytes name another identifier
    assert cjt188.decode(wire, di_order="msb").di == "1F90"


@pytest.mark.parametrize("preamble", [0, 2, 3, 4, 7])
def test_any_number_of_fe_is_stripped_on_receive(preamble):
    wire = b"\xfe" * preamble + frame_bytes(0x81, FLOW_DATA)
    assert cjt188.decode(wire) == cjt188.decode(frame_bytes(0x81, FLOW_DATA))


def test_frame_layer_keeps_type_address_control_and_raw_bytes():
    wire = frame_bytes(0x81, FLOW_DATA)
    frame = cjt188.decode_frame(wire)
    assert frame == Frame(COLD, METER, 0x81, FLOW_DATA)
    assert frame.raw == wire and frame.is_reply and frame.function == 0x01
    assert cjt188.encode_frame(frame, preamble=0) == wire


# --- 901F values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["msb", "lsb"])
def test_901f_reply_decodes_flows_time_and_status(order):
    data = FLOW_DATA if order == "msb" else bytes.fromhex("1F 90") + FLOW_DATA[2:]
    reply = cjt188.parse_reply(frame_bytes(0x81, data), METER, "901F", function=0x01, di_order=order)
    assert reply == FlowReply(
        COLD,
        METER,
        Decimal("556677.00"),
        Decimal("556655.00"),
        datetime(2015, 5, 11, 22, 1, 31, tzinfo=UTC),
        status=0,
        ser=0,
    )
    assert reply.valve is ValveState.OPEN and not reply.battery_low
    assert cjt188.reading_values(reply) == {
        "total": Decimal("556677.00"),
        "supply": Supply.ON,
        "battery_low": False,
    }
    assert cjt188.encode(reply, di_order=order, preamble=0) == frame_bytes(0x81, data)


def test_flow_in_litres_is_converted_to_m3_and_back():
    data = bytearray(FLOW_DATA)
    data[3:8] = bytes.fromhex("50 34 12 00 29")  # 1234.50 L
    reply = cjt188.decode(frame_bytes(0x81, bytes(data)))
    assert reply.total == Decimal("1.2345") and reply.total_unit == cjt188.UNIT_LITRE
    assert reply.settlement == Decimal("556655.00") and reply.settlement_unit == cjt188.UNIT_M3
    assert cjt188.reading_values(reply)["total"] == Decimal("1.2345")
    assert cjt188.encode(reply, preamble=0) == frame_bytes(0x81, bytes(data))


def test_unknown_volume_unit_is_a_frame_error():
    data = bytearray(FLOW_DATA)
    data[7] = 0x05  # kWh: a heat meter unit, not a volume
    with pytest.raises(FrameError):
        cjt188.decode(frame_bytes(0x81, bytes(data)))


def test_flow_that_litres_cannot_hold_is_refused():
    reply = FlowReply(
        COLD, METER, Decimal("0.000001"), Decimal(0), datetime(2025, 1, 1, tzinfo=UTC), total_unit=0x29
    )
    with pytest.raises(ConfigError):
        cjt188.encode(reply)


@pytest.mark.parametrize(
    ("status", "valve", "supply", "battery"),
    [
        (0x0000, ValveState.OPEN, Supply.ON, False),
        (0x0001, ValveState.CLOSED, Supply.OFF, False),
        (0x0003, ValveState.ABNORMAL, Supply.FAULT, False),
        (0x0004, ValveState.OPEN, Supply.ON, True),
        (0x0005, ValveState.CLOSED, Supply.OFF, True),
        (0xFF01, ValveState.CLOSED, Supply.OFF, False),
    ],
)
def test_status_bits_give_valve_supply_and_battery(status, valve, supply, battery):
    data = FLOW_DATA[:20] + status.to_bytes(2, "little")
    reply = cjt188.decode(frame_bytes(0x81, data))
    assert reply.status == status and reply.valve is valve and reply.battery_low is battery
    assert cjt188.reading_values(reply) == {
        "total": Decimal("556677.00"),
        "supply": supply,
        "battery_low": battery,
    }


def test_status_word_builder_matches_the_bits():
    assert cjt188.status_word(ValveState.CLOSED, True) == 0x05
    assert cjt188.status_word(ValveState.ABNORMAL, False, other=0x8007) == 0x8003
    assert cjt188.status_names(0x0107) == ("valve_abnormal", "battery_low", "bit8")


def test_meter_time_is_read_in_the_meter_zone():
    beijing = timezone(timedelta(hours=8))
    reply = cjt188.decode(frame_bytes(0x81, FLOW_DATA), tz=beijing)
    assert reply.time == datetime(2015, 5, 11, 14, 1, 31, tzinfo=UTC)


# --- valve control --------------------------------------------------------------------------------
@pytest.mark.parametrize(("open_valve", "action"), [(True, 0x55), (False, 0x99)])
@pytest.mark.parametrize(("order", "di_wire"), [("msb", "A0 17"), ("lsb", "17 A0")])
def test_valve_command_is_a_write_of_a017(open_valve, action, order, di_wire):
    wire = cjt188.valve(METER, open_valve, meter_type=COLD, ser=7, di_order=order, preamble=0)
    assert wire == frame_bytes(0x04, bytes.fromhex(di_wire) + bytes((7, action)))
    expected = ValveControl(COLD, METER, ValveAction.OPEN if open_valve else ValveAction.CLOSE, 7)
    assert cjt188.decode(wire, di_order=order) == expected


def test_valve_reply_84_shows_the_new_valve_state():
    wire = frame_bytes(0x84, bytes.fromhex("A0 17 07 01 00"))
    reply = cjt188.parse_reply(wire, METER, "A017", function=0x04)
    assert reply == WriteReply(COLD, METER, "A017", status=0x0001, ser=7)
    assert reply.valve is ValveState.CLOSED
    assert cjt188.reading_values(reply) == {"supply": Supply.OFF, "battery_low": False}


def test_unknown_valve_action_is_a_frame_error():
    with pytest.raises(FrameError):
        cjt188.decode(frame_bytes(0x04, bytes.fromhex("A0 17 00 77")))


def test_other_writes_stay_generic():
    wire = cjt188.encode(WriteRequest(COLD, METER, "A015", bytes.fromhex("00 00 12 01 01 25 20"), 3))
    assert cjt188.decode(wire) == WriteRequest(COLD, METER, "A015", bytes.fromhex("00 00 12 01 01 25 20"), 3)
    with pytest.raises(ConfigError):
        cjt188.encode(WriteRequest(COLD, METER, "A017", b"\x55"))


# --- abnormal replies -----------------------------------------------------------------------------
def test_abnormal_reply_to_a_valve_command_is_a_meter_error_with_status_bits():
    wire = frame_bytes(0xC4, bytes.fromhex("07 03 00"))
    assert cjt188.decode(wire) == ErrorReply(COLD, METER, 0x04, status=0x0003, ser=7)
    with pytest.raises(MeterError) as raised:
        cjt188.parse_reply(wire, METER, "A017", function=0x04)
    assert raised.value.code == 0x0003
    assert raised.value.names == ("valve_abnormal",)


def test_abnormal_reply_to_a_read_is_c1():
    wire = cjt188.encode(ErrorReply(COLD, METER, 0x01, status=0x0004, ser=1), preamble=0)
    assert wire == frame_bytes(0xC1, bytes.fromhex("01 04 00"))
    with pytest.raises(MeterError) as raised:
        cjt188.parse_reply(wire, METER, "901F")
    assert raised.value.names == ("valve_open", "battery_low")


# --- read address ---------------------------------------------------------------------------------
def test_read_address_goes_to_the_wildcard_with_di_810a():
    wire = cjt188.read_address(preamble=0)
    assert wire == frame_bytes(0x03, bytes.fromhex("81 0A 00"), meter_type=0xAA, address_wire=b"\xaa" * 7)
    assert cjt188.decode(wire) == ReadAddress()


@pytest.mark.parametrize("echo", [b"", bytes.fromhex("34 12 90 78 56 34 12")])
def test_address_reply_names_the_meter(echo):
    wire = frame_bytes(0x83, bytes.fromhex("81 0A 00") + echo)
    assert cjt188.parse_reply(wire, cjt188.WILDCARD, function=0x03) == AddressReply(COLD, METER, 0)


def test_address_reply_with_a_different_echoed_address_is_refused():
    wire = frame_bytes(0x83, bytes.fromhex("81 0A 00 35 12 90 78 56 34 12"))
    with pytest.raises(FrameError):
        cjt188.decode(wire)


# --- fences and malformed frames ------------------------------------------------------------------
def test_reply_checks_fence_other_meters_functions_identifiers_and_echoes():
    wire = frame_bytes(0x81, FLOW_DATA)
    with pytest.raises(AddressError):
        cjt188.parse_reply(wire, "12345678901235", "901F")
    with pytest.raises(UnexpectedReply):
        cjt188.parse_reply(wire, METER, "901F", function=0x04)
    with pytest.raises(UnexpectedReply):
        cjt188.parse_reply(wire, METER, "901F", di_order="lsb")  # 90 1F read lsb-first is 1F90
    with pytest.raises(UnexpectedReply):
        cjt188.parse_reply(cjt188.read(METER), METER, "901F")
    expect = cjt188.reply_filter(METER, 0x01, "901F")
    assert expect(cjt188.decode_frame(wire))
    assert expect(cjt188.decode_frame(frame_bytes(0xC1, b"\x00\x00\x00")))
    assert not expect(cjt188.decode_frame(cjt188.read(METER)))
    assert not cjt188.reply_filter(METER, 0x01, "901F", di_order="lsb")(cjt188.decode_frame(wire))


def test_bad_checksum_is_a_checksum_error():
    wire = bytearray(frame_bytes(0x81, FLOW_DATA))
    wire[-2] ^= 0xFF
    with pytest.raises(ChecksumError):
        cjt188.decode(bytes(wire))


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        frame_bytes(0x81, FLOW_DATA)[:-1],
        frame_bytes(0x81, FLOW_DATA) + b"\x16",
        frame_bytes(0x81, FLOW_DATA[:-1]),  # 901F reply one byte short
        frame_bytes(0x01, bytes.fromhex("90 1F")),  # no SER
        frame_bytes(0x81, FLOW_DATA, address_wire=bytes.fromhex("34 12 90 78 56 34 1F")),
        frame_bytes(0x02, bytes.fromhex("90 1F 00")),  # no such control code
    ],
)
def test_malformed_frames_are_frame_errors(wire):
    with pytest.raises(FrameError):
        cjt188.decode(wire)


def test_bad_di_order_is_a_config_error():
    with pytest.raises(ConfigError):
        cjt188.read(METER, di_order="middle")


# --- hypothesis round trips -----------------------------------------------------------------------
digit_pair = st.integers(0, 99).map(lambda n: f"{n:02d}")
addresses = st.lists(st.one_of(digit_pair, st.just("AA")), min_size=7, max_size=7).map("".join)
types = st.sampled_from(sorted(cjt188.METER_TYPES))
sers = st.integers(0, 255)
statuses = st.integers(0, 0xFFFF)
orders = st.sampled_from(list(DIOrder))
other_dis = (
    st.binary(min_size=2, max_size=2)
    .map(lambda b: b.hex().upper())
    .filter(lambda di: di not in ("901F", "A017"))
)
moments = st.datetimes(datetime(1990, 1, 1), datetime(2099, 12, 31), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)
units = st.sampled_from([cjt188.UNIT_M3, cjt188.UNIT_LITRE])


@st.composite
def flows(draw):
    unit = draw(units)
    hundredths = draw(st.integers(0, 99_999_999))
    return Decimal(hundredths).scaleb(-2 + cjt188.UNIT_EXPONENTS[unit]), unit


@st.composite
def flow_replies(draw):
    (total, total_unit), (settlement, settlement_unit) = draw(flows()), draw(flows())
    head = (draw(types), draw(addresses), total, settlement, draw(moments), draw(statuses), draw(sers))
    return FlowReply(*head, total_unit, settlement_unit)


messages = st.one_of(
    st.builds(ReadRequest, types, addresses, st.one_of(st.just("901F"), other_dis), sers),
    st.builds(ReadAddress, types, addresses, sers),
    st.builds(ValveControl, types, addresses, st.sampled_from(list(ValveAction)), sers),
    st.builds(WriteRequest, types, addresses, other_dis, st.binary(max_size=40), sers),
    flow_replies(),
    st.builds(ReadReply, types, addresses, other_dis, st.binary(max_size=60), sers),
    st.builds(AddressReply, types, addresses, sers),
    st.builds(WriteReply, types, addresses, st.one_of(st.just("A017"), other_dis), statuses, sers),
    st.builds(ErrorReply, types, addresses, st.sampled_from(sorted(cjt188.FUNCTIONS)), statuses, sers),
)


@settings(max_examples=180)
@given(message=messages, order=orders, preamble=st.integers(0, 4))
def test_every_message_round_trips_in_both_di_orders(message, order, preamble):
    wire = cjt188.encode(message, di_order=order, preamble=preamble)
    assert wire[:preamble] == b"\xfe" * preamble
    assert cjt188.decode(wire, di_order=order) == message
    deframer = cjt188.Deframer()
    deframer.feed(wire)
    frame = deframer.next_frame()
    assert frame.raw == wire[preamble:]
    assert cjt188.decode(frame, di_order=order) == message


@settings(max_examples=120)
@given(meter_type=st.integers(0, 255), control=st.integers(0, 255), data=st.binary(max_size=40), order=orders)
def test_decoding_any_valid_frame_raises_only_frame_errors(meter_type, control, data, order):
    try:
        message = cjt188.decode(cjt188.encode_frame(Frame(meter_type, METER, control, data)), di_order=order)
    except FrameError:
        return
    assert cjt188.decode(cjt188.encode(message, di_order=order), di_order=order) == message
