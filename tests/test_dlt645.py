"""DL/T 645-2007 codec: the worked frames of docs/protocols.md byte for byte, every message both ways, the
data identifier table, error replies and the reply checks the poller relies on."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_engine.codecs import bcd, dlt645, dlt645_di
from prepaid_engine.codecs.dlt645 import (
    AckReply,
    AddressReply,
    BroadcastTime,
    ChangeBaud,
    ChangePassword,
    ErrorReply,
    Frame,
    Freeze,
    ReadAddress,
    ReadFollowUp,
    ReadReply,
    ReadRequest,
    RelayCode,
    RelayControl,
    SecurityErrorReply,
    SecurityReply,
    SecurityRequest,
    WriteAddress,
    WriteRequest,
)
from prepaid_engine.codecs.dlt645_di import DI_TABLE, Kind, StatusWord3
from prepaid_engine.errors import (
    AddressError,
    ChecksumError,
    ConfigError,
    DuplicateRecharge,
    FrameError,
    MeterError,
    RechargeRefused,
    UnexpectedReply,
)
from prepaid_engine.types import READING_FIELDS, CommandKind, Supply

METER = "123456789012"
WORKED_READ = bytes.fromhex("FE FE FE FE 68 12 90 78 56 34 12 68 11 04 33 33 34 33 68 16")
WORKED_REPLY = bytes.fromhex("68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 16")
WORKED_TRIP = bytes.fromhex(
    "FE FE FE FE 68 12 90 78 56 34 12 68 1C 10 35 33 33 33 33 33 33 33 4D 33 8C 8C 56 64 45 58 3B 16"
)
END_OF_2025 = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)


def frame_bytes(address_wire: bytes, control: int, data: bytes) -> bytes:
    """A frame built by hand (independent of the codec): data scrambled, CS summed here."""
    body = b"\x68" + address_wire + bytes((0x68, control, len(data))) + bytes((b + 0x33) & 0xFF for b in data)
    return body + bytes((sum(body) % 256, 0x16))


# --- worked frames (protocols.md section 1) -------------------------------------------------------
def test_read_total_forward_energy_request_is_the_worked_frame():
    assert dlt645.read(METER, "00010000") == WORKED_READ
    assert dlt645.encode(ReadRequest(METER, "00010000")) == WORKED_READ


def test_worked_read_request_decodes_to_the_read_of_00010000():
    assert dlt645.decode(WORKED_READ) == ReadRequest(METER, "00010000")


def test_worked_reply_decodes_to_12345_67_kwh():
    reply = dlt645.parse_reply(WORKED_REPLY, METER, "00010000", function=0x11)
    assert reply == ReadReply(METER, "00010000", bytes.fromhex("67452301"))
    assert dlt645.decode_value(reply.di, reply.value) == Decimal("12345.67")
    assert dlt645.reading_values(reply.di, reply.value) == {"total": Decimal("12345.67")}


def test_worked_reply_is_what_a_meter_encodes_for_12345_67_kwh():
    value = dlt645.encode_value("00010000", Decimal("12345.67"))
    assert dlt645.encode(ReadReply(METER, "00010000", value), preamble=0) == WORKED_REPLY


def test_trip_until_end_of_2025_is_the_worked_frame():
    frame = dlt645.relay(
        METER, RelayCode.TRIP, END_OF_2025, password_level=2, password="000000", operator="0" * 8
    )
    assert frame == WORKED_TRIP
    assert (
        dlt645.relay(METER, RelayCode.TRIP, END_OF_2025) == WORKED_TRIP
    )  # the defaults are level 02 / 000000


def test_worked_trip_decodes_to_the_relay_command():
    assert dlt645.decode(WORKED_TRIP) == RelayControl(
        METER, RelayCode.TRIP, END_OF_2025, 2, "000000", "00000000"
    )


def test_frame_layer_scrambles_data_and_keeps_the_wire_bytes():
    frame = dlt645.decode_frame(WORKED_REPLY)
    assert frame == Frame(METER, 0x91, bytes.fromhex("00 00 01 00 67 45 23 01"))
    assert frame.raw == WORKED_REPLY
    assert frame.is_reply and frame.function == 0x11 and not frame.abnormal
    assert dlt645.encode_frame(frame, preamble=0) == WORKED_REPLY


@pytest.mark.parametrize("preamble", [0, 1, 2, 3, 4, 8])
def test_any_number_of_fe_before_a_frame_is_accepted(preamble):
    assert dlt645.decode(b"\xfe" * preamble + WORKED_REPLY) == dlt645.decode(WORKED_REPLY)
    assert dlt645.read(METER, "00010000", preamble=preamble) == b"\xfe" * preamble + WORKED_READ[4:]


# --- relay control --------------------------------------------------------------------------------
@pytest.mark.parametrize("code", list(RelayCode))
def test_every_relay_code_is_n1_and_decodes_back(code):
    wire = dlt645.relay(METER, code, END_OF_2025)
    frame = dlt645.decode_frame(wire)
    assert frame.control == 0x1C and len(frame.data) == 16
    assert frame.data[8] == int(code) and frame.data[9] == 0
    assert frame.data[10:] == bytes.fromhex("59 59 23 31 12 25")
    assert dlt645.decode(wire) == RelayControl(METER, code, END_OF_2025)


def test_relay_codes_are_the_documented_n1_values():
    assert {c.name: c.value for c in RelayCode} == {
        "TRIP": 0x1A,
        "CLOSE_ALLOWED": 0x1B,
        "CLOSE": 0x1C,
        "TRIP_AUTO_RESTORE": 0x1D,
        "TRIP_AUTO_RESTORE_2": 0x1E,
        "ALARM": 0x2A,
        "ALARM_CLEAR": 0x2B,
        "KEEP_POWER": 0x3A,
        "KEEP_POWER_CLEAR": 0x3B,
    }
    assert dlt645.COMMAND_RELAY_CODES[CommandKind.KEEP_POWER_ON] is RelayCode.KEEP_POWER


def test_relay_password_and_operator_go_least_significant_byte_first():
    wire = dlt645.relay(
        METER, RelayCode.CLOSE, END_OF_2025, password_level="04", password="123456", operator="A1B2C3D4"
    )
    assert dlt645.decode_frame(wire).data[:8] == bytes.fromhex("04 56 34 12 D4 C3 B2 A1")


def test_relay_validity_is_written_in_the_meter_clock_zone():
    beijing = timezone(timedelta(hours=8))
    wire = dlt645.relay(METER, RelayCode.TRIP, datetime(2025, 6, 30, 16, 0, 0, tzinfo=UTC), tz=beijing)
    assert dlt645.decode_frame(wire).data[10:] == bytes.fromhex(
        "00 00 00 01 07 25"
    )  # 2025-07-01 00:00:00 +08
    assert dlt645.decode(wire, tz=beijing).valid_until == datetime(2025, 6, 30, 16, 0, 0, tzinfo=UTC)


def test_relay_with_unknown_n1_is_refused_both_ways():
    with pytest.raises(ConfigError):
        dlt645.encode(RelayControl(METER, 0x1F, END_OF_2025))
    bad = bytearray(dlt645.decode_frame(WORKED_TRIP).data)
    bad[8] = 0x1F
    with pytest.raises(FrameError):
        dlt645.decode(frame_bytes(bytes.fromhex("129078563412"), 0x1C, bytes(bad)))


def test_naive_validity_time_is_refused():
    with pytest.raises(ConfigError):
        dlt645.relay(METER, RelayCode.TRIP, datetime(2025, 12, 31, 23, 59, 59))


# --- addresses ------------------------------------------------------------------------------------
def test_read_address_goes_to_the_wildcard_and_is_the_classic_frame():
    assert dlt645.read_address(preamble=0) == bytes.fromhex("68 AA AA AA AA AA AA 68 13 00 DF 16")
    assert dlt645.decode(dlt645.read_address()) == ReadAddress("AAAAAAAAAAAA")


def test_address_reply_carries_the_full_address_in_header_and_data():
    wire = frame_bytes(bytes.fromhex("129078563412"), 0x93, bytes.fromhex("129078563412"))
    assert dlt645.parse_reply(wire, dlt645.WILDCARD, function=0x13) == AddressReply(METER)
    assert dlt645.encode(AddressReply(METER), preamble=0) == wire


def test_address_reply_whose_data_disagrees_with_its_header_is_refused():
    wire = frame_bytes(bytes.fromhex("129078563412"), 0x93, bytes.fromhex("139078563412"))
    with pytest.raises(FrameError):
        dlt645.decode(wire)


def test_shortened_address_keeps_the_low_bytes_and_fills_aa():
    short = bcd.shortened_address(METER, 3)
    assert short == "AAAAAA789012"
    assert dlt645.read(short, "00010000", preamble=0)[1:7] == bytes.fromhex("12 90 78 AA AA AA")
    assert dlt645.decode(dlt645.read(short, "00010000")).address == short


def test_reply_to_a_shortened_address_carries_the_full_address_and_is_accepted():
    reply = dlt645.parse_reply(WORKED_REPLY, "AAAAAA789012", "00010000", function=0x11)
    assert reply.address == METER
    with pytest.raises(AddressError):
        dlt645.parse_reply(WORKED_REPLY, "AAAAAA789013", "00010000")


def test_broadcast_time_goes_to_99_and_carries_the_clock():
    wire = dlt645.broadcast_time(datetime(2024, 2, 29, 13, 45, 6, tzinfo=UTC), preamble=0)
    assert wire == frame_bytes(b"\x99" * 6, 0x08, bytes.fromhex("06 45 13 29 02 24"))
    assert dlt645.decode(wire) == BroadcastTime(datetime(2024, 2, 29, 13, 45, 6, tzinfo=UTC))


@pytest.mark.parametrize("address", ["12345678901", "1234567890123", "12345678901X", "1234AB789012", 123])
def test_malformed_addresses_are_refused_when_encoding(address):
    with pytest.raises(ConfigError):
        dlt645.read(address, "00010000")


def test_non_bcd_address_bytes_on_the_wire_are_a_frame_error():
    with pytest.raises(FrameError):
        dlt645.decode(frame_bytes(bytes.fromhex("1A9078563412"), 0x91, bytes.fromhex("00000100")))


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("err", "names"),
    [
        (0x01, ("other",)),
        (0x02, ("no_data",)),
        (0x04, ("unauthorised",)),
        (0x08, ("baud_fixed",)),
        (0x10, ("year_zones",)),
        (0x20, ("day_periods",)),
        (0x40, ("tariffs",)),
        (0x06, ("no_data", "unauthorised")),
        (0x80, ("bit7",)),
        (0x00, ()),
    ],
)
def test_error_reply_bits_decode_to_names(err, names):
    wire = frame_bytes(bytes.fromhex("129078563412"), 0xD1, bytes((err,)))
    reply = dlt645.decode(wire)
    assert reply == ErrorReply(METER, 0x11, err)
    assert reply.names == names
    with pytest.raises(MeterError) as raised:
        dlt645.parse_reply(wire, METER, "00010000", function=0x11)
    assert type(raised.value) is MeterError
    assert raised.value.code == err and raised.value.names == names


def test_relay_refused_for_a_wrong_password_is_dc_with_unauthorised():
    wire = frame_bytes(bytes.fromhex("129078563412"), 0xDC, b"\x04")
    with pytest.raises(MeterError) as raised:
        dlt645.parse_reply(wire, METER, function=0x1C)
    assert raised.value.names == ("unauthorised",)


@pytest.mark.parametrize(
    ("names", "error"),
    [
        (("duplicate_recharge",), DuplicateRecharge),
        (("recharge_count_error",), RechargeRefused),
        (("over_hoarding_limit",), RechargeRefused),
        (("esam_verify_failed",), RechargeRefused),
        (("authentication_failed",), RechargeRefused),
        (("customer_number_mismatch",), RechargeRefused),
        (("duplicate_recharge", "recharge_count_error"), DuplicateRecharge),
        (("address_error",), MeterError),
        (("meter_suspended",), MeterError),
        (("other",), MeterError),
    ],
)
def test_security_error_words_become_the_recharge_exceptions(names, error):
    serr = dlt645.serr_word(*names)
    wire = dlt645.encode(SecurityErrorReply(METER, serr))
    assert dlt645.decode_frame(wire).data == serr.to_bytes(2, "little")
    with pytest.raises(MeterError) as raised:
        dlt645.parse_reply(wire, METER, "070102FF", function=0x03)
    assert type(raised.value) is error
    assert raised.value.code == serr and set(raised.value.names) == set(names)


def test_serr_bits_are_the_documented_table():
    assert dlt645.SERR_BITS == (
        "other",
        "duplicate_recharge",
        "esam_verify_failed",
        "authentication_failed",
        "customer_number_mismatch",
        "recharge_count_error",
        "over_hoarding_limit",
        "address_error",
        "meter_suspended",
    )
    assert dlt645.serr_names(1 << 1 | 1 << 8 | 1 << 12) == ("duplicate_recharge", "meter_suspended", "bit12")


def test_recharge_request_is_c03_with_di_operator_and_payload():
    payload = bytes(range(22))
    wire = dlt645.recharge(METER, payload, operator="00000001")
    frame = dlt645.decode_frame(wire)
    assert frame.control == 0x03
    assert frame.data == bytes.fromhex("FF 02 01 07 01 00 00 00") + payload
    assert dlt645.decode(wire) == SecurityRequest(METER, "070102FF", "00000001", payload)


def test_security_reply_is_accepted_for_the_recharge_di():
    wire = dlt645.encode(SecurityReply(METER, "070102FF", b"\x01\x02"))
    assert dlt645.parse_reply(wire, METER, "070102FF", function=0x03) == SecurityReply(
        METER, "070102FF", b"\x01\x02"
    )


# --- parse_reply fences ---------------------------------------------------------------------------
def test_reply_from_another_meter_is_an_address_error():
    with pytest.raises(AddressError):
        dlt645.parse_reply(WORKED_REPLY, "123456789013", "00010000")


def test_reply_for_another_di_is_unexpected():
    with pytest.raises(UnexpectedReply):
        dlt645.parse_reply(WORKED_REPLY, METER, "00000000")


def test_reply_to_another_function_is_unexpected():
    ack = dlt645.encode(AckReply(METER, 0x1C))
    with pytest.raises(UnexpectedReply):
        dlt645.parse_reply(ack, METER, "00010000", function=0x11)
    assert dlt645.parse_reply(ack, METER, function=0x1C) == AckReply(METER, 0x1C)


def test_an_echoed_request_is_not_a_reply():
    with pytest.raises(UnexpectedReply):
        dlt645.parse_reply(WORKED_READ, METER, "00010000")


def test_reply_filter_picks_the_answer_out_of_bus_traffic():
    expect = dlt645.reply_filter(METER, 0x11, "00010000")
    frames = {
        "reply": dlt645.decode_frame(WORKED_REPLY),
        "echo": dlt645.decode_frame(WORKED_READ),
        "other_meter": dlt645.decode_frame(dlt645.encode(ReadReply("123456789013", "00010000", bytes(4)))),
        "other_di": dlt645.decode_frame(dlt645.encode(ReadReply(METER, "00000000", bytes(4)))),
        "error": dlt645.decode_frame(dlt645.encode(ErrorReply(METER, 0x11, 2))),
        "other_function": dlt645.decode_frame(dlt645.encode(AckReply(METER, 0x14))),
    }
    assert {name for name, frame in frames.items() if expect(frame)} == {"reply", "error"}
    # frames built in memory (no raw bytes) are judged the same way
    assert expect(Frame(METER, 0x91, bytes.fromhex("00000100") + bytes(4)))


# --- frames that are not frames -------------------------------------------------------------------
def test_bad_checksum_is_a_checksum_error():
    bad = bytearray(WORKED_REPLY)
    bad[-2] ^= 0x01
    with pytest.raises(ChecksumError):
        dlt645.decode(bytes(bad))


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        WORKED_REPLY[:-1],
        WORKED_REPLY + b"\x00",
        WORKED_REPLY[:-1] + b"\x17",
        b"\x69" + WORKED_REPLY[1:],
        WORKED_REPLY[:7] + b"\x69" + WORKED_REPLY[8:],
    ],
)
def test_truncated_or_malformed_frames_are_frame_errors(wire):
    with pytest.raises(FrameError):
        dlt645.decode(wire)


def test_unknown_control_code_is_a_frame_error():
    with pytest.raises(FrameError):
        dlt645.decode(frame_bytes(bytes.fromhex("129078563412"), 0x1F, b""))
    with pytest.raises(FrameError):
        dlt645.decode(frame_bytes(bytes.fromhex("129078563412"), 0x81, bytes.fromhex("1090")))  # a 1997 reply


def test_data_longer_than_200_bytes_is_refused():
    with pytest.raises(ConfigError):
        dlt645.encode_frame(Frame(METER, 0x91, bytes(201)))


def test_write_longer_than_50_bytes_is_refused():
    with pytest.raises(ConfigError):
        dlt645.encode(WriteRequest(METER, "04000401", bytes(39)))


# --- data identifiers -----------------------------------------------------------------------------
def test_block_read_0001ff00_decodes_to_five_values():
    values = (Decimal("1234.56"), Decimal("100.01"), Decimal("500.00"), Decimal("600.55"), Decimal("34.00"))
    raw = bytes.fromhex("56 34 12 00  01 00 01 00  00 00 05 00  55 00 06 00  00 34 00 00".replace("  ", " "))
    assert dlt645.decode_value("0001FF00", raw) == values
    assert dlt645.reading_values("0001FF00", raw) == dict(
        zip(("total", "sharp", "peak", "flat", "valley"), values, strict=True)
    )
    assert dlt645.encode_value("0001FF00", values) == raw


def test_block_with_more_tariffs_than_named_decodes_every_value():
    assert dlt645.decode_value("0000FF00", bytes.fromhex("01000000") * 7) == (Decimal("0.01"),) * 7


@pytest.mark.parametrize("size", [0, 3, 21])
def test_block_of_a_partial_value_is_a_frame_error(size):
    with pytest.raises(FrameError):
        dlt645.decode_value("0001FF00", bytes(size))


@pytest.mark.parametrize(
    ("di", "raw", "value", "field"),
    [
        ("02010100", "01 22", Decimal("220.1"), "voltage"),
        ("02020100", "50 12 80", Decimal("-1.25"), "current"),
        ("02020100", "50 12 00", Decimal("1.25"), "current"),
        ("02030000", "34 12 80", Decimal("-0.1234"), "power"),
        ("02060000", "99 09", Decimal("0.999"), "power_factor"),
        ("02800002", "02 50", Decimal("50.02"), "frequency"),
        ("00900200", "00 50 00 00", Decimal("50.00"), "balance"),
        ("03330201", "12 00", 12, "purchase_count"),
        ("00000000", "00 00 00 80", Decimal("0"), "total"),
        ("00000000", "01 00 00 80", Decimal("-0.01"), "total"),
    ],
)
def test_scalar_identifiers_decode_to_reading_fields(di, raw, value, field):
    data = bytes.fromhex(raw)
    assert dlt645.decode_value(di, data) == value
    assert dlt645.reading_values(di, data) == {field: value}
    assert field in READING_FIELDS


@pytest.mark.parametrize(
    ("di", "raw", "value"),
    [
        ("04000101", "03 31 12 25", date(2025, 12, 31)),  # weekday 3 = Wednesday
        ("04000102", "59 58 23", time(23, 58, 59)),
        ("04000401", "12 90 78 56 34 12", "123456789012"),
        ("0400040E", "01 00 00 00 00 00", "000000000001"),
        ("04050101", "00 50 00 00", Decimal("0.5000")),
        ("04001004", "00 00 01 00", Decimal("100.00")),
        ("040005FF", "01 00 02 00 10 00 00 00 00 00 00 00 00 00", (1, 2, 16, 0, 0, 0, 0)),
    ],
)
def test_other_identifiers_decode_to_their_types(di, raw, value):
    assert dlt645.decode_value(di, bytes.fromhex(raw)) == value
    assert dlt645.encode_value(di, value) == bytes.fromhex(raw)


def test_date_identifier_writes_the_weekday_sunday_zero():
    assert dlt645.encode_value("04000101", date(2025, 1, 5)) == bytes.fromhex("00 05 01 25")


def test_the_table_holds_every_identifier_of_the_protocol_notes():
    expected = {
        "00000000", "00000100", "00000200", "00000300", "00000400", "0000FF00",
        "00010000", "00010100", "00010200", "00010300", "00010400", "0001FF00", "00020000",
        "02010100", "02010200", "02010300", "0201FF00", "02020100", "02030000", "02060000", "02800002",
        "04000101", "04000102", "04000401", "04000402", "0400040E",
        "04000501", "04000502", "04000503", "04000504", "04000505", "04000506", "04000507", "040005FF",
        "00900100", "00900101", "00900200", "00900201",
        "04001001", "04001002", "04001003", "04001004", "04001005",
        "04050101", "04050102", "04050103", "04050104", "03330201",
    }  # fmt: skip
    assert expected <= set(DI_TABLE)
    assert all(item.field is None or item.field in READING_FIELDS for item in DI_TABLE.values())
    assert DI_TABLE["03330201"].uncertain and DI_TABLE["03330201"].length == 2


def test_unknown_identifier_is_a_config_error():
    with pytest.raises(ConfigError):
        dlt645.decode_value("12345678", b"")


def test_wrong_value_length_is_a_frame_error():
    with pytest.raises(FrameError):
        dlt645.decode_value("00010000", bytes(3))


@pytest.mark.parametrize("raw", ["6A 45 23 01", "67 45 23 F1"])
def test_non_bcd_nibbles_are_a_frame_error(raw):
    with pytest.raises(FrameError):
        dlt645.decode_value("00010000", bytes.fromhex(raw))


def test_value_with_more_decimals_than_the_format_is_refused_unless_rounding_is_asked():
    with pytest.raises(ConfigError):
        dlt645.encode_value("00010000", Decimal("1.005"))
    assert dlt645.encode_value("00010000", Decimal("1.009"), rounding=ROUND_DOWN) == bytes.fromhex(
        "00 01 00 00"
    )


@pytest.mark.parametrize(("di", "value"), [("00010000", Decimal("1000000")), ("00010000", Decimal("-1")),
                                           ("02020100", Decimal("800")), ("03330201", 10000)])  # fmt: skip
def test_values_outside_the_format_are_refused(di, value):
    with pytest.raises(ConfigError):
        dlt645.encode_value(di, value)


# --- status word 3 and meter-held money -----------------------------------------------------------
def test_status_word_3_relay_bit_gives_the_supply():
    assert dlt645.reading_values("04000503", b"\x10\x00") == {"supply": Supply.OFF}
    assert dlt645.reading_values("04000503", b"\xef\xff") == {"supply": Supply.ON}
    status_block = bytes(4) + b"\x10\x00" + bytes(8)
    assert dlt645.reading_values("040005FF", status_block) == {"supply": Supply.OFF}


def test_status_word_3_decodes_and_builds_every_named_bit():
    word = StatusWord3(relay_open=True, relay_command=True, pretrip_alarm=True, meter_type=2, keep_power=True)
    assert word.to_word() == 0x10 | 0x40 | 0x80 | 0x200 | 0x1000
    assert StatusWord3.decode(word.encode()) == word
    assert dlt645.encode_value("04000503", word) == (0x12D0).to_bytes(2, "little")
    parsed = StatusWord3.from_word(0xFFFF)
    assert parsed.other == 0xFFFF & ~0x13D0 and parsed.meter_type == 3 and parsed.supply is Supply.OFF
    assert parsed.to_word() == 0xFFFF


def test_overdraft_money_is_a_negative_balance_whatever_the_read_order():
    remaining_zero = ("00900200", bytes(4))
    overdraft = ("00900201", bytes.fromhex("50 12 00 00"))
    assert dlt645_di.collect_reading([remaining_zero, overdraft]) == {"balance": Decimal("-12.50")}
    assert dlt645_di.collect_reading([overdraft, remaining_zero]) == {"balance": Decimal("-12.50")}
    no_overdraft = ("00900201", bytes(4))
    remaining = ("00900200", bytes.fromhex("00 30 00 00"))
    assert dlt645_di.collect_reading([no_overdraft, remaining]) == {"balance": Decimal("30.00")}
    assert dlt645.reading_values("00900201", bytes(4)) == {}


# --- follow-up frames -----------------------------------------------------------------------------
def test_reply_with_more_frames_sets_d5_and_follow_up_carries_seq():
    first = dlt645.encode(ReadReply(METER, "0001FF00", bytes(8), more=True))
    assert dlt645.decode_frame(first).control == 0xB1
    assert dlt645.parse_reply(first, METER, "0001FF00").more
    ask = dlt645.read_follow_up(METER, "0001FF00", 1)
    assert dlt645.decode_frame(ask).data == bytes.fromhex("00 FF 01 00 01")
    last = dlt645.encode(ReadReply(METER, "0001FF00", bytes(12), seq=1))
    frame = dlt645.decode_frame(last)
    assert frame.control == 0x92 and frame.data[-1] == 1
    assert dlt645.parse_reply(last, METER, "0001FF00", function=0x12) == ReadReply(
        METER, "0001FF00", bytes(12), seq=1
    )


def test_load_record_read_carries_count_and_start_minute():
    start = datetime(2025, 3, 1, 0, 15, tzinfo=UTC)
    wire = dlt645.encode(ReadRequest(METER, "06000001", 4, start))
    assert dlt645.decode_frame(wire).data == bytes.fromhex("01 00 00 06 04 15 00 01 03 25")
    assert dlt645.decode(wire) == ReadRequest(METER, "06000001", 4, start)


def test_write_puts_di_password_operator_then_value():
    wire = dlt645.write(METER, "04050101", Decimal("0.5234"), password="123456", operator="00000007")
    assert dlt645.decode_frame(wire).data == bytes.fromhex("01 01 05 04 02 56 34 12 07 00 00 00 34 52 00 00")


# --- hypothesis round trips -----------------------------------------------------------------------
digit_pair = st.integers(0, 99).map(lambda n: f"{n:02d}")
addresses = st.one_of(
    st.lists(digit_pair, min_size=6, max_size=6).map("".join),
    st.lists(st.one_of(digit_pair, st.just("AA")), min_size=6, max_size=6).map("".join),
)
dis = st.one_of(
    st.sampled_from(sorted(DI_TABLE)), st.binary(min_size=4, max_size=4).map(lambda b: b.hex().upper())
)
hex_text = st.binary
passwords = st.binary(min_size=3, max_size=3).map(lambda b: b.hex().upper())
operators = st.binary(min_size=4, max_size=4).map(lambda b: b.hex().upper())
levels = st.integers(0, 99)
moments = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59, 59), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))])
functions_ack = st.sampled_from(sorted(dlt645.ACK_FUNCTIONS))
functions_err = st.sampled_from(sorted(dlt645.ERROR_FUNCTIONS))


def _in_years(moment: datetime, zone) -> bool:
    return 2000 <= moment.astimezone(zone).year <= 2099


requests = st.one_of(
    st.builds(ReadRequest, addresses, dis),
    st.builds(ReadRequest, addresses, dis, st.integers(0, 99)),
    st.builds(ReadRequest, addresses, dis, st.integers(0, 99), moments.map(lambda d: d.replace(second=0))),
    st.builds(ReadFollowUp, addresses, dis, st.integers(0, 255)),
    st.builds(ReadAddress, addresses),
    st.builds(WriteRequest, addresses, dis, st.binary(max_size=38), levels, passwords, operators),
    st.builds(WriteAddress, st.lists(digit_pair, min_size=6, max_size=6).map("".join), addresses),
    st.builds(BroadcastTime, moments, addresses),
    st.builds(
        Freeze, addresses, st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)
    ),
    st.builds(ChangeBaud, addresses, st.sampled_from(sorted(dlt645.BAUD_CODES))),
    st.builds(ChangePassword, addresses, levels, passwords, st.integers(0, 9), passwords),
    st.builds(
        RelayControl, addresses, st.sampled_from(list(RelayCode)), moments, levels, passwords, operators
    ),
    st.builds(SecurityRequest, addresses, dis, operators, st.binary(max_size=100)),
)
replies = st.one_of(
    st.builds(ReadReply, addresses, dis, st.binary(max_size=150), st.booleans()),
    st.builds(ReadReply, addresses, dis, st.binary(max_size=150), st.booleans(), st.integers(0, 255)),
    st.builds(AddressReply, addresses),
    st.builds(AckReply, addresses, functions_ack, st.binary(max_size=4)),
    st.builds(ErrorReply, addresses, functions_err, st.integers(0, 255)),
    st.builds(SecurityReply, addresses, dis, st.binary(max_size=100)),
    st.builds(SecurityErrorReply, addresses, st.integers(0, 0xFFFF)),
)


@settings(max_examples=200)
@given(message=st.one_of(requests, replies), preamble=st.integers(0, 4), zone=zones)
def test_every_message_round_trips(message, preamble, zone):
    for moment in ("when", "valid_until", "time"):
        value = getattr(message, moment, None)
        if isinstance(value, datetime) and not _in_years(value, zone):
            return
    wire = dlt645.encode(message, preamble=preamble, tz=zone)
    assert wire[:preamble] == b"\xfe" * preamble
    assert dlt645.decode(wire, tz=zone) == message
    deframer = dlt645.Deframer()
    deframer.feed(wire)
    frame = deframer.next_frame()
    assert frame.raw == wire[preamble:]
    assert dlt645.decode(frame, tz=zone) == message
    assert frame.is_reply == isinstance(message, dlt645.Reply)


def _value_strategy(item):
    if item.kind is Kind.NUMBER:
        limit = 10 ** (2 * item.length - (1 if item.signed else 0)) - 1
        low = -limit if item.signed else 0
        return st.integers(low, limit).map(lambda n: Decimal(n).scaleb(-item.decimals))
    if item.kind is Kind.COUNT:
        return st.integers(0, 10 ** (2 * item.length) - 1)
    if item.kind is Kind.DATE:
        return st.dates(date(2000, 1, 1), date(2099, 12, 31))
    if item.kind is Kind.TIME:
        return st.times().map(lambda t: t.replace(microsecond=0))
    if item.kind is Kind.DIGITS:
        return st.lists(digit_pair, min_size=item.length, max_size=item.length).map("".join)
    if item.kind is Kind.WORD:
        return st.integers(0, (1 << (8 * item.length)) - 1)
    members = [_value_strategy(DI_TABLE[m]) for m in item.members]
    return st.tuples(*members)


def _extremes(item):
    """The smallest and largest values of an identifier's format (and the most negative, if signed)."""
    if item.kind is Kind.NUMBER:
        top = Decimal(10 ** (2 * item.length - (1 if item.signed else 0)) - 1).scaleb(-item.decimals)
        return [Decimal(0), top] + ([-top] if item.signed else [])
    if item.kind is Kind.COUNT:
        return [0, 10 ** (2 * item.length) - 1]
    if item.kind is Kind.DATE:
        return [date(2000, 1, 1), date(2099, 12, 31)]
    if item.kind is Kind.TIME:
        return [time(0, 0, 0), time(23, 59, 59)]
    if item.kind is Kind.DIGITS:
        return ["0" * 2 * item.length, "9" * 2 * item.length]
    if item.kind is Kind.WORD:
        return [0, (1 << (8 * item.length)) - 1]
    return [tuple(values) for values in zip(*(_extremes(DI_TABLE[m])[:2] for m in item.members), strict=True)]


@pytest.mark.parametrize("di", sorted(DI_TABLE))
def test_every_identifier_round_trips_the_ends_of_its_range(di):
    item = DI_TABLE[di]
    for value in _extremes(item):
        raw = dlt645.encode_value(di, value)
        assert len(raw) == item.length
        assert dlt645.decode_value(di, raw) == value


def test_the_value_strategies_cover_every_identifier_kind():
    assert {item.kind for item in DI_TABLE.values()} == set(Kind)


@settings(max_examples=150)
@given(data=st.data())
def test_every_identifier_format_round_trips(data):
    di = data.draw(st.sampled_from(sorted(DI_TABLE)), label="di")
    item = DI_TABLE[di]
    value = data.draw(_value_strategy(item), label="value")
    raw = dlt645.encode_value(di, value)
    assert len(raw) == item.length
    assert dlt645.decode_value(di, raw) == value
    assert set(dlt645.reading_values(di, raw)) <= set(READING_FIELDS)


@settings(max_examples=150)
@given(di=st.sampled_from(sorted(DI_TABLE)), raw=st.binary(max_size=24))
def test_decoding_any_bytes_as_any_identifier_raises_only_frame_errors(di, raw):
    try:
        value = dlt645.decode_value(di, raw)
    except FrameError:
        return
    assert isinstance(value, Decimal | int | date | time | str | tuple)


@settings(max_examples=120)
@given(control=st.integers(0, 255), data=st.binary(max_size=40), address=addresses)
def test_decoding_any_valid_frame_raises_only_frame_errors(control, data, address):
    try:
        message = dlt645.decode(dlt645.encode_frame(Frame(address, control, data)))
    except FrameError:
        return
    assert dlt645.decode(dlt645.encode(message)) == message


@settings(max_examples=150)
@given(value=st.integers(-(10**7) + 1, 10**7 - 1), decimals=st.integers(0, 4))
def test_signed_bcd_round_trips_with_the_sign_in_bit7_of_the_top_byte(value, decimals):
    number = Decimal(value).scaleb(-decimals)
    raw = bcd.decimal_to_bcd(number, 4, decimals, signed=True)
    assert bool(raw[-1] & 0x80) == (value < 0)
    assert bcd.bcd_to_decimal(raw, decimals, signed=True) == number
