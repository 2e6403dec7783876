"""Frames in plain words for the communication log (prepaid_engine.describe)."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from prepaid_engine.codecs import cjt188, dlt645
from prepaid_engine.describe import describe_frame
from prepaid_engine.types import CommandKind

METER = "123456789012"


def test_a_read_and_its_reply_say_the_identifier_its_name_and_the_value():
    assert describe_frame("dlt645_2007", dlt645.read(METER, "00010000")) == (
        "read 00010000 (forward active energy total)"
    )
    # protocols.md's worked reply: 12345.67 kWh
    reply = bytes.fromhex("681290785634126891083333343 39A7856348816".replace(" ", ""))
    assert describe_frame("dlt645_2007", reply) == "reply 00010000 = 12345.67"


def test_a_relay_control_says_what_and_until_when():
    wire = dlt645.relay(
        METER, dlt645.COMMAND_RELAY_CODES[CommandKind.TRIP], datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    )
    assert describe_frame("dlt645_2007", wire) == "relay control: trip, valid until 2025-12-31 23:59:59"


def test_an_error_reply_names_the_meter_s_error_bits():
    wire = dlt645.encode(dlt645.ErrorReply(METER, 0x11, dlt645.ERR_NO_DATA))
    assert describe_frame("dlt645_2007", wire) == "error reply: no_data"


def test_cjt188_and_modbus_frames_are_described():
    assert describe_frame("cjt188", cjt188.read("12345678901234")).startswith("read request")
    assert describe_frame("modbus", bytes.fromhex("010300000002C40B")) == (
        "unit 1: read 2 register(s) at 0x0000 (function 0x03)"
    )
    mbap = bytes.fromhex("000100000006010300000002")
    assert describe_frame("modbus", mbap, mbap=True) == "unit 1: read 2 register(s) at 0x0000 (function 0x03)"


@given(
    st.sampled_from(["dlt645_2007", "dlt645_1997", "cjt188", "modbus", None, "nonsense"]),
    st.binary(max_size=64),
)
def test_any_bytes_get_a_line_and_never_an_exception(protocol, data):
    assert isinstance(describe_frame(protocol, data), str)
    assert isinstance(describe_frame(protocol, data, mbap=True), str)
