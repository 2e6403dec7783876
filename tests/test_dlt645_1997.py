"""DL/T 645-1997 codec: 2-byte identifiers on the 2007 framing, its control codes, its identifier table."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.codecs import dlt645, dlt645_1997
from prepaid_engine.codecs.dlt645_1997 import (
    DI_TABLE,
    AckReply,
    BroadcastTime,
    ChangeBaud,
    ChangePassword,
    ErrorReply,
    ReadFollowUp,
    ReadReply,
    ReadRequest,
    ReReadRequest,
    WriteAddress,
    WriteRequest,
)
from prepaid_engine.codecs.dlt645_di import Kind
from prepaid_engine.errors import AddressError, ConfigError, FrameError, MeterError, UnexpectedReply
from prepaid_engine.types import READING_FIELDS

METER = "123456789012"
ADDRESS_WIRE = bytes.fromhex("12 90 78 56 34 12")


def frame_bytes(control: int, data: bytes, address_wire: bytes = ADDRESS_WIRE) -> bytes:
    """A frame built by hand (independent of the codec)."""
    body = b"\x68" + address_wire + bytes((0x68, control, len(data))) + bytes((b + 0x33) & 0xFF for b in data)
    return body + bytes((sum(body) % 256, 0x16))


def test_read_total_forward_energy_is_the_classic_9010_frame():
    # DI 9010 goes 10 90, + 0x33 -> 43 C3
    assert dlt645_1997.read(METER, "9010") == bytes.fromhex(
        "FE FE FE FE 68 12 90 78 56 34 12 68 01 02 43 C3 8F 16"
    )
    assert dlt645_1997.decode(dlt645_1997.read(METER, "9010")) == ReadRequest(METER, "9010")


def test_reply_to_9010_decodes_to_kwh():
    wire = frame_bytes(0x81, bytes.fromhex("10 90 67 45 23 01"))
    reply = dlt645_1997.parse_reply(wire, METER, "9010", function=0x01)
    assert reply == ReadReply(METER, "9010", bytes.fromhex("67452301"))
    assert dlt645_1997.decode_value(reply.di, reply.value) == Decimal("12345.67")
    assert dlt645_1997.reading_values(reply.di, reply.value) == {"total": Decimal("12345.67")}


def test_901f_block_decodes_to_total_and_four_tariffs():
    raw = bytes.fromhex("00 10 00 00 00 01 00 00 00 02 00 00 00 03 00 00 00 04 00 00")
    wire = frame_bytes(0x81, bytes.fromhex("1F 90") + raw)
    reply = dlt645_1997.parse_reply(wire, METER, "901F")
    assert dlt645_1997.reading_values(reply.di, reply.value) == {
        "total": Decimal("10.00"),
        "sharp": Decimal("1.00"),
        "peak": Decimal("2.00"),
        "flat": Decimal("3.00"),
        "valley": Decimal("4.00"),
    }


@pytest.mark.parametrize(
    ("di", "raw", "value", "field"),
    [
        ("B611", "20 02", Decimal("220"), "voltage"),  # XXX V
        ("B621", "50 12", Decimal("12.50"), "current"),  # XX.XX A
        ("B630", "56 34 12", Decimal("12.3456"), "power"),  # XX.XXXX kW
        ("B650", "50 09", Decimal("0.950"), "power_factor"),  # X.XXX
        ("9013", "00 00 01 00", Decimal("100.00"), "flat"),
    ],
)
def test_instantaneous_identifiers_decode_to_reading_fields(di, raw, value, field):
    assert dlt645_1997.decode_value(di, bytes.fromhex(raw)) == value
    assert dlt645_1997.reading_values(di, bytes.fromhex(raw)) == {field: value}
    assert dlt645_1997.encode_value(di, value) == bytes.fromhex(raw)


@pytest.mark.parametrize(
    ("di", "raw", "value"),
    [
        ("C010", "01 02 06 25", date(2025, 6, 2)),  # WW DD MM YY, Monday = 1
        ("C011", "05 04 03", time(3, 4, 5)),
        ("C032", "12 90 78 56 34 12", METER),
        ("B612", "30 02", Decimal("230")),
    ],
)
def test_clock_and_meter_number_identifiers(di, raw, value):
    assert dlt645_1997.decode_value(di, bytes.fromhex(raw)) == value
    assert dlt645_1997.encode_value(di, value) == bytes.fromhex(raw)
    assert dlt645_1997.reading_values(di, bytes.fromhex(raw)) == {}


def test_the_table_holds_the_identifiers_of_the_protocol_notes():
    wanted = {"9010", "9011", "9012", "9013", "9014", "901F", "B611", "B612", "B613", "B621", "B622", "B623",
              "B630", "B631", "B632", "B633", "B650", "C010", "C011", "C032"}  # fmt: skip
    assert wanted <= set(DI_TABLE)
    assert all(item.field is None or item.field in READING_FIELDS for item in DI_TABLE.values())


def test_2007_identifiers_are_not_1997_identifiers():
    with pytest.raises(ConfigError):
        dlt645_1997.read(METER, "00010000")
    with pytest.raises(ConfigError):
        dlt645_1997.decode_value("00010000", bytes(4))


def test_error_reply_c1_carries_named_bits():
    wire = frame_bytes(0xC1, b"\x02")
    assert dlt645_1997.decode(wire) == ErrorReply(METER, 0x01, 0x02)
    with pytest.raises(MeterError) as raised:
        dlt645_1997.parse_reply(wire, METER, "9010", function=0x01)
    assert raised.value.code == 2 and raised.value.names == ("no_data",)
    assert dlt645_1997.error_names(0x05) == ("illegal_data", "unauthorised")


def test_write_puts_password_level_and_password_before_the_value():
    wire = dlt645_1997.write(METER, "C032", "000000000001", password_level=2, password="123456")
    assert dlt645.decode_frame(wire).data == bytes.fromhex("32 C0 02 56 34 12 01 00 00 00 00 00")
    assert dlt645_1997.decode(wire) == WriteRequest(METER, "C032", bytes.fromhex("010000000000"), 2, "123456")
    ack = frame_bytes(0x84, b"")
    assert dlt645_1997.parse_reply(ack, METER, function=0x04) == AckReply(METER, 0x04)


def test_reply_with_more_frames_is_a1_and_follow_up_is_c02():
    wire = dlt645_1997.encode(ReadReply(METER, "901F", bytes(8), more=True))
    assert dlt645.decode_frame(wire).control == 0xA1
    assert dlt645_1997.decode(wire).more
    assert dlt645.decode_frame(dlt645_1997.read_follow_up(METER, "901F")).control == 0x02


def test_reply_checks_fence_other_meters_functions_and_identifiers():
    wire = frame_bytes(0x81, bytes.fromhex("10 90 00 00 00 00"))
    with pytest.raises(AddressError):
        dlt645_1997.parse_reply(wire, "123456789013", "9010")
    with pytest.raises(UnexpectedReply):
        dlt645_1997.parse_reply(wire, METER, "9011")
    with pytest.raises(UnexpectedReply):
        dlt645_1997.parse_reply(wire, METER, "9010", function=0x04)
    with pytest.raises(UnexpectedReply):
        dlt645_1997.parse_reply(dlt645_1997.read(METER, "9010"), METER, "9010")
    expect = dlt645_1997.reply_filter(METER, 0x01, "9010")
    assert expect(dlt645.decode_frame(wire))
    assert not expect(dlt645.decode_frame(frame_bytes(0x81, bytes.fromhex("11 90 00 00 00 00"))))


def test_the_2007_deframer_carries_1997_frames_and_each_codec_refuses_the_others_control_codes():
    deframer = dlt645.Deframer()
    deframer.feed(dlt645_1997.read(METER, "9010") + dlt645.read(METER, "00010000"))
    old, new = list(deframer)
    assert dlt645_1997.decode(old) == ReadRequest(METER, "9010")
    assert dlt645.decode(new) == dlt645.ReadRequest(METER, "00010000")
    with pytest.raises(FrameError):
        dlt645.decode(old)
    with pytest.raises(FrameError):
        dlt645_1997.decode(new)


def test_truncated_read_request_is_a_frame_error():
    with pytest.raises(FrameError):
        dlt645_1997.decode(frame_bytes(0x01, b"\x10"))


# --- hypothesis round trips -----------------------------------------------------------------------
digit_pair = st.integers(0, 99).map(lambda n: f"{n:02d}")
addresses = st.lists(st.one_of(digit_pair, st.just("AA")), min_size=6, max_size=6).map("".join)
dis = st.one_of(
    st.sampled_from(sorted(DI_TABLE)), st.binary(min_size=2, max_size=2).map(lambda b: b.hex().upper())
)
passwords = st.binary(min_size=3, max_size=3).map(lambda b: b.hex().upper())
levels = st.integers(0, 99)
moments = st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)

messages = st.one_of(
    st.builds(ReadRequest, addresses, dis),
    st.builds(ReadFollowUp, addresses, dis),
    st.builds(ReReadRequest, addresses),
    st.builds(WriteRequest, addresses, dis, st.binary(max_size=60), levels, passwords),
    st.builds(BroadcastTime, moments, addresses),
    st.builds(WriteAddress, st.lists(digit_pair, min_size=6, max_size=6).map("".join), addresses),
    st.builds(ChangeBaud, addresses, st.sampled_from(sorted(dlt645.BAUD_CODES))),
    st.builds(ChangePassword, addresses, levels, passwords, levels, passwords),
    st.builds(ReadReply, addresses, dis, st.binary(max_size=100), st.booleans(), st.sampled_from([1, 2, 3])),
    st.builds(AckReply, addresses, st.sampled_from(sorted(dlt645_1997.ACK_FUNCTIONS)), st.binary(max_size=4)),
    st.builds(
        ErrorReply, addresses, st.sampled_from(sorted(dlt645_1997.ERROR_FUNCTIONS)), st.integers(0, 255)
    ),
)


@settings(max_examples=120)
@given(
    message=messages, preamble=st.integers(0, 4), zone=st.sampled_from([UTC, timezone(timedelta(hours=8))])
)
def test_every_1997_message_round_trips(message, preamble, zone):
    wire = dlt645_1997.encode(message, preamble=preamble, tz=zone)
    assert dlt645_1997.decode(wire, tz=zone) == message
    deframer = dlt645_1997.Deframer()
    deframer.feed(wire)
    assert dlt645_1997.decode(deframer.next_frame(), tz=zone) == message


def _values(item):
    if item.kind is Kind.NUMBER:
        return st.integers(0, 10 ** (2 * item.length) - 1).map(lambda n: Decimal(n).scaleb(-item.decimals))
    if item.kind is Kind.DATE:
        return st.dates(date(2000, 1, 1), date(2099, 12, 31))
    if item.kind is Kind.TIME:
        return st.times().map(lambda t: t.replace(microsecond=0))
    if item.kind is Kind.DIGITS:
        return st.lists(digit_pair, min_size=item.length, max_size=item.length).map("".join)
    assert item.kind is Kind.BLOCK
    return st.tuples(*(_values(DI_TABLE[m]) for m in item.members))


@pytest.mark.parametrize("di", sorted(DI_TABLE))
def test_every_1997_identifier_round_trips_the_ends_of_its_range(di):
    item = DI_TABLE[di]
    members = [DI_TABLE[m] for m in item.members] or [item]
    ends = []
    for member in members:
        if member.kind is Kind.NUMBER:
            ends.append((Decimal(0), Decimal(10 ** (2 * member.length) - 1).scaleb(-member.decimals)))
        elif member.kind is Kind.DATE:
            ends.append((date(2000, 1, 1), date(2099, 12, 31)))
        elif member.kind is Kind.TIME:
            ends.append((time(0, 0, 0), time(23, 59, 59)))
        else:
            ends.append(("0" * 12, "9" * 12))
    for k in (0, 1):
        value = tuple(end[k] for end in ends) if item.members else ends[0][k]
        assert dlt645_1997.decode_value(di, dlt645_1997.encode_value(di, value)) == value


@settings(max_examples=100)
@given(data=st.data())
def test_every_1997_identifier_format_round_trips(data):
    di = data.draw(st.sampled_from(sorted(DI_TABLE)), label="di")
    item = DI_TABLE[di]
    value = data.draw(_values(item), label="value")
    raw = dlt645_1997.encode_value(di, value)
    assert len(raw) == item.length
    assert dlt645_1997.decode_value(di, raw) == value
