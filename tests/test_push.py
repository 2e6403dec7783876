"""Platform pushes (CTWing, OneNET): tokens, OneNET signatures, body parsing, clock skew, payload decoding."""

import base64
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_engine import push
from prepaid_engine.catalog import builtin_models
from prepaid_engine.errors import AddressError, ChecksumError, ConfigError, FrameError, SecurityError
from prepaid_engine.push import PushKind, PushMessage
from prepaid_engine.types import Supply

AT = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # 1700000000000 ms
# protocols.md, DL/T 645-2007 worked frame: meter 123456789012 answers DI 00010000 with 12345.67 kWh.
DLT_REPLY = bytes.fromhex("68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 16")
MODELS = builtin_models()


def ctwing_body(**overrides):
    body = {
        "upPacketSN": 7,
        "upDataSN": -1,
        "topic": "v1/up/ad",
        "timestamp": 1700000000000,
        "tenantId": "10001",
        "serviceId": "",
        "protocol": "lwm2m",
        "productId": "15000",
        "messageType": "dataReport",
        "deviceId": "a1b2c3d4e5",
        "IMEI": "861234567890123",
        "payload": {"APPdata": base64.b64encode(DLT_REPLY).decode()},
    }
    body.update(overrides)
    return json.dumps(body).encode()


# -- tokens and signatures --------------------------------------------------------------------------------
def test_check_token_accepts_only_the_exact_secret():
    push.check_token("s3cret", "s3cret")
    for given_token in ("s3cret ", "S3cret", "", None):
        with pytest.raises(SecurityError):
            push.check_token("s3cret", given_token)


def test_an_unconfigured_platform_token_never_matches():
    with pytest.raises(SecurityError):
        push.check_token("", "")


def test_onenet_signature_known_answer():
    # base64(md5("abc" + "123" + "hello")), computed with openssl dgst -md5 -binary | base64
    assert push.onenet_signature("abc", "123", "hello") == "nJrbEn7Z17WuRgEPfruQJg=="


def test_onenet_url_check_echoes_msg_and_accepts_url_decoded_forms():
    signature = push.onenet_signature("abc", "123", "hello")
    assert push.onenet_url_check("abc", "hello", "123", signature) == "hello"
    assert (
        push.onenet_url_check("abc", "hello", "123", signature.replace("+", "%2B").replace("=", "%3D"))
        == "hello"
    )
    with pytest.raises(SecurityError):
        push.onenet_url_check("abd", "hello", "123", signature)
    with pytest.raises(SecurityError):
        push.onenet_url_check("abc", "hellO", "123", signature)


@given(token=st.text(min_size=1), nonce=st.text(), msg=st.text(), flip=st.integers(min_value=0))
def test_onenet_signature_verifies_and_any_change_of_msg_breaks_it(token, nonce, msg, flip):
    signature = push.onenet_signature(token, nonce, msg)
    push.verify_onenet_signature(token, nonce, msg, signature)
    tampered = (
        msg + "x"
        if not msg
        else msg[: flip % len(msg)] + chr(ord(msg[flip % len(msg)]) ^ 1) + msg[flip % len(msg) + 1 :]
    )
    with pytest.raises(SecurityError):
        push.verify_onenet_signature(token, nonce, tampered, signature)


# -- clock skew -------------------------------------------------------------------------------------------
def test_check_skew_bounds_both_directions():
    push.check_skew(AT, AT + timedelta(seconds=300), 300)
    push.check_skew(AT, AT - timedelta(seconds=300), 300)
    with pytest.raises(SecurityError):
        push.check_skew(AT, AT + timedelta(seconds=301), 300)
    with pytest.raises(SecurityError):
        push.check_skew(AT, AT - timedelta(seconds=301), 300)
    with pytest.raises(ConfigError):
        push.check_skew(AT.replace(tzinfo=None), AT, 300)


# -- CTWing -----------------------------------------------------------------------------------------------
def test_parse_ctwing_data_report():
    message = push.parse_ctwing(ctwing_body())
    assert message == PushMessage(
        platform="ctwing",
        kind=PushKind.DATA,
        message_id="a1b2c3d4e5:7:-1:1700000000000",
        device_ids=("a1b2c3d4e5", "861234567890123"),
        at=AT,
        payload=DLT_REPLY,
    )


def test_ctwing_message_id_is_stable_for_retries_and_differs_between_reports():
    first = push.parse_ctwing(ctwing_body())
    assert push.parse_ctwing(ctwing_body()).message_id == first.message_id
    assert push.parse_ctwing(ctwing_body(upPacketSN=8)).message_id != first.message_id
    assert push.parse_ctwing(ctwing_body(messageId="m-1")).message_id == "m-1"


def test_ctwing_service_data_and_other_message_types():
    message = push.parse_ctwing(
        ctwing_body(payload={"serviceData": {"total": "12.34", "supply": "off", "unknown": 1}})
    )
    assert message.payload == b""
    assert message.values == (("supply", "off"), ("total", "12.34"))
    assert push.parse_ctwing(ctwing_body(messageType="deviceOnlineOfflineReport")).kind is PushKind.EVENT
    assert push.parse_ctwing(ctwing_body(messageType="whatever")).kind is PushKind.OTHER


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        ctwing_body(deviceId=None, IMEI=None),
        ctwing_body(timestamp=None),
        ctwing_body(payload={"APPdata": "***not base64***"}),
        ctwing_body(payload="APPdata"),
        b"{" + b'"a": "' + b"x" * push.MAX_BODY + b'"}',
    ],
)
def test_parse_ctwing_refuses_malformed_bodies(body):
    with pytest.raises(FrameError):
        push.parse_ctwing(body)


# -- OneNET -----------------------------------------------------------------------------------------------
def onenet_body(token, msg_text, *, nonce="n0nce", as_string=False, signature=None):
    signature = signature or push.onenet_signature(token, nonce, msg_text)
    msg = json.dumps(msg_text) if as_string else msg_text
    return ('{"msg": ' + msg + ', "msg_signature": "' + signature + '", "nonce": "' + nonce + '"}').encode()


MSG = '{"at":1700000000000,"type":1,"dev_id":"dev-9","value":"aGk="}'


def test_parse_onenet_object_msg_signed_as_sent():
    body = onenet_body("tok-1", MSG)
    # Known answer, computed with openssl over the msg member exactly as it appears in the body.
    assert b"ji2RHCz490uqFYvg41q20w==" in body
    message = push.parse_onenet(body, "tok-1")
    assert message == PushMessage(
        platform="onenet",
        kind=PushKind.DATA,
        message_id="dev-9::1700000000000",
        device_ids=("dev-9",),
        at=AT,
        payload=b"hi",
    )


def test_parse_onenet_keeps_the_original_spacing_of_an_object_msg():
    spaced = '{ "at" : 1700000000000 , "dev_id" : "dev-9", "note": "a } brace \\" quote", "value": "aGk=" }'
    assert push.parse_onenet(onenet_body("tok-1", spaced), "tok-1").payload == b"hi"


def test_parse_onenet_string_msg_and_id():
    text = json.dumps({"id": "m-77", "dev_id": "dev-9", "at": 1700000000000, "value": {"total": "5.5"}})
    message = push.parse_onenet(onenet_body("tok-1", text, as_string=True), "tok-1")
    assert message.message_id == "m-77"
    assert message.values == (("total", "5.5"),)


def test_parse_onenet_refuses_a_forged_or_unsigned_body():
    with pytest.raises(SecurityError):
        push.parse_onenet(onenet_body("tok-1", MSG), "tok-2")
    forged = onenet_body("tok-1", MSG).replace(b"dev-9", b"dev-8")
    with pytest.raises(SecurityError):
        push.parse_onenet(forged, "tok-1")
    with pytest.raises(SecurityError):
        push.parse_onenet(b'{"msg": {"dev_id": "x"}}', "tok-1")
    with pytest.raises(SecurityError):
        push.parse_onenet(onenet_body("", MSG), "")


# -- payload decoding -------------------------------------------------------------------------------------
def test_decode_dlt645_reply_frame_worked_example():
    message = push.parse_ctwing(ctwing_body())
    reading = push.decode_reading(message, MODELS["dlt645_2007_prepaid"], "42", address="123456789012")
    assert reading.meter_key == "42"
    assert reading.read_at == AT
    assert reading.total == Decimal("12345.67")
    assert reading.supply is None


def test_decode_dlt645_with_preamble_and_ct_ratio():
    message = PushMessage("ctwing", PushKind.DATA, "m", ("d",), AT, b"\xfe\xfe" + DLT_REPLY)
    reading = push.decode_reading(message, MODELS["dlt645_2007_basic"], "1", ct_ratio=20)
    assert reading.total == Decimal("246913.40")


def test_decode_dlt645_primary_side_meter_is_not_scaled_again():
    model = MODELS["dlt645_2007_basic"]
    primary = replace(model, options=(*model.options, ("ct_scaling", "primary")))
    message = PushMessage("ctwing", PushKind.DATA, "m", ("d",), AT, DLT_REPLY)
    assert push.decode_reading(message, primary, "1", ct_ratio=20).total == Decimal("12345.67")


def test_decode_dlt645_refuses_another_meter_and_a_bad_checksum():
    message = PushMessage("ctwing", PushKind.DATA, "m", ("d",), AT, DLT_REPLY)
    with pytest.raises(AddressError):
        push.decode_reading(message, MODELS["dlt645_2007_prepaid"], "1", address="000000001101")
    broken = DLT_REPLY[:-2] + bytes([(DLT_REPLY[-2] + 1) & 0xFF]) + DLT_REPLY[-1:]
    with pytest.raises(ChecksumError):
        push.decode_reading(
            PushMessage("ctwing", PushKind.DATA, "m", ("d",), AT, broken), MODELS["dlt645_2007_prepaid"], "1"
        )
    with pytest.raises(FrameError):
        push.decode_reading(
            PushMessage("ctwing", PushKind.DATA, "m", ("d",), AT, b"\x00\x01"),
            MODELS["dlt645_2007_prepaid"],
            "1",
        )


def cjt_frame(di: bytes, status: bytes) -> bytes:
    """A CJ/T 188 901F reply built by hand from the standard: meter 00000000001101, 123.45 m3 (BCD, least
    significant byte first, unit 2C), settlement flow 100.00 m3, time 2026-03-02 08:00:00, status."""
    body = (
        bytes.fromhex("68 10 01 11 00 00 00 00 00 81 16")
        + di
        + bytes.fromhex("00 45 23 01 00 2C 00 00 01 00 2C 00 00 08 02 03 26 20")
        + status
    )
    return b"\xfe\xfe" + body + bytes([sum(body) & 0xFF, 0x16])


def test_decode_cjt188_flow_reply_in_the_model_di_order():
    closed_low_battery = bytes.fromhex("05 00")
    msb = PushMessage("onenet", PushKind.DATA, "m", ("d",), AT, cjt_frame(b"\x90\x1f", closed_low_battery))
    reading = push.decode_reading(msb, MODELS["cjt188_water"], "7", address="00000000001101")
    assert (reading.total, reading.supply, reading.battery_low) == (Decimal("123.45"), Supply.OFF, True)
    assert reading.read_at == AT
    lsb = PushMessage("onenet", PushKind.DATA, "m", ("d",), AT, cjt_frame(b"\x1f\x90", bytes(2)))
    reading = push.decode_reading(lsb, MODELS["cjt188_water_lsb"], "7")
    assert (reading.total, reading.supply, reading.battery_low) == (Decimal("123.45"), Supply.ON, False)
    with pytest.raises(FrameError):  # read in the other order, the reply carries no flow
        push.decode_reading(lsb, MODELS["cjt188_water"], "7")
    with pytest.raises(AddressError):
        push.decode_reading(msb, MODELS["cjt188_water"], "7", address="00000000001102")


def test_decode_platform_values_and_refuse_bad_ones():
    message = PushMessage(
        "ctwing",
        PushKind.DATA,
        "m",
        ("d",),
        AT,
        values=(("purchase_count", "3"), ("supply", "off"), ("total", "7.25")),
    )
    reading = push.decode_reading(message, MODELS["cjt188_water"], "9")
    assert (reading.total, reading.supply, reading.purchase_count) == (Decimal("7.25"), Supply.OFF, 3)
    bad = PushMessage("ctwing", PushKind.DATA, "m", ("d",), AT, values=(("total", "lots"),))
    with pytest.raises(FrameError):
        push.decode_reading(bad, MODELS["cjt188_water"], "9")


def test_payload_of_a_protocol_without_a_push_decoder_is_refused():
    message = PushMessage("ctwing", PushKind.DATA, "m", ("d",), AT, b"\x01\x03")
    with pytest.raises(ConfigError):
        push.decode_reading(message, MODELS["acrel_ddsy1352"], "1")


# -- hostile bodies (issue 8): every one is refused with a reason, none crashes the caller ------------------
def raw_ctwing(**members):
    """A CTWing body whose members are given as JSON source text (NaN, 1e400 and the like stay as written)."""
    base = {"messageType": '"dataReport"', "deviceId": '"a1b2c3d4e5"', "timestamp": "1700000000000"}
    base.update(members)
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}").encode()


def service_data(**values):
    return raw_ctwing(
        payload='{"serviceData": {' + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}}"
    )


HOSTILE_CTWING = [
    (raw_ctwing(timestamp="1e20"), "an integer"),
    (raw_ctwing(timestamp="NaN"), "NaN is not a number"),
    (raw_ctwing(timestamp="Infinity"), "Infinity is not a number"),
    (raw_ctwing(timestamp="-Infinity"), "-Infinity is not a number"),
    (raw_ctwing(timestamp="1" * 30), "outside 2000..2099"),
    (raw_ctwing(timestamp='"' + "1" * 30 + '"'), "30 digits"),
    (raw_ctwing(timestamp="1700000000000.5"), "an integer"),
    (raw_ctwing(timestamp="1700000000"), "outside 2000..2099"),  # seconds, not milliseconds
    (raw_ctwing(timestamp="-1"), "outside 2000..2099"),
    (raw_ctwing(timestamp="true"), "got a boolean"),
    (raw_ctwing(timestamp="[1700000000000]"), "got a list"),
    (raw_ctwing(timestamp='"2023-11-14T22:13:20"'), "no time zone"),
    (raw_ctwing(timestamp='"0001-01-01T00:00:00+01:00"'), "bad timestamp"),
    (raw_ctwing(timestamp='"2200-01-01T00:00:00+00:00"'), "outside 2000..2099"),
    (raw_ctwing(messageType='["dataReport"]'), "messageType: expected text, got a list"),
    (raw_ctwing(deviceId='{"id": 1}'), "deviceId: expected text, got an object"),
    (raw_ctwing(deviceId="true"), "deviceId: expected text, got a boolean"),
    (raw_ctwing(deviceId='"a\\u0000b"'), "control character"),
    (raw_ctwing(deviceId='"a\\nb"'), "control character"),
    (raw_ctwing(deviceId='"\\ud800"'), "invalid code point"),
    (raw_ctwing(deviceId='"' + "x" * 200 + '"'), "more than 128"),
    (raw_ctwing(messageId='"m\\u0000"'), "messageId: contains a control character"),
    (raw_ctwing(messageId="[1]"), "messageId: expected text, got a list"),
    (raw_ctwing(upPacketSN="1.5"), "upPacketSN: expected an integer"),
    (raw_ctwing(upPacketSN="1" + "0" * 30), "upPacketSN: expected an integer"),
    (raw_ctwing(payload="[1]"), "payload: expected an object, got a list"),
    (raw_ctwing(payload='{"APPdata": 5}'), "not a base64 string"),
    (raw_ctwing(payload='{"serviceData": [1]}'), "serviceData: expected an object, got a list"),
    (service_data(total="1e15"), "total: 1E+15 is too large for a reading"),
    (service_data(total="1e400"), "1E+400 is too large"),
    (service_data(total="1e-99999999999999999999"), "out of range"),
    (service_data(total="NaN"), "NaN is not a number"),
    (service_data(total="Infinity"), "Infinity is not a number"),
    (service_data(total='"NaN"'), "not a plain decimal number"),
    (service_data(total='"Infinity"'), "not a plain decimal number"),
    (service_data(total='"1e15"'), "not a plain decimal number"),
    (service_data(total="-1"), "total: -1 is negative"),
    (service_data(peak="-0.5"), "peak: -0.5 is negative"),
    (service_data(total="true"), "expected a number, got a boolean"),
    (service_data(total='{"v": 1}'), "expected a number, got an object"),
    (service_data(power="1000000000000"), "is too large"),  # power (16, 4): 1e12 kW does not fit
    (service_data(purchase_count=str(2**31)), "outside 0..2147483647"),
    (service_data(purchase_count="-1"), "outside 0..2147483647"),
    (service_data(purchase_count="3.0"), "expected an integer"),
    (service_data(purchase_count="true"), "expected an integer, got a boolean"),
    (service_data(supply='["on"]'), "supply: expected one of on, off, fault"),
    (service_data(supply='"maybe"'), "supply: expected one of"),
    (service_data(battery_low='"perhaps"'), "battery_low: expected a boolean"),
    (b"[" * 50_000, "nested too deeply"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"deviceId": "x", "timestamp": 1' + b"0" * 5000 + b"}", "not JSON"),
]


@pytest.mark.parametrize(("body", "reason"), HOSTILE_CTWING, ids=[reason for _body, reason in HOSTILE_CTWING])
def test_parse_ctwing_refuses_hostile_bodies_with_a_reason(body, reason):
    with pytest.raises(FrameError, match=re.escape(reason)):
        push.parse_ctwing(body)


def test_service_data_within_the_columns_is_read_and_rounded_to_them():
    body = service_data(
        total='"12.3456"',
        power="1.234567",
        current="-2.5",
        balance="-10",
        purchase_count='"7"',
        battery_low="1",
    )
    values = dict(push.parse_ctwing(body).values)
    assert values == {
        "total": "12.346",
        "power": "1.2346",
        "current": "-2.5",
        "balance": "-10",
        "purchase_count": "7",
        "battery_low": "true",
    }
    assert dict(push.parse_ctwing(service_data(total="9999999999999.999")).values) == {
        "total": "9999999999999.999"
    }


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("total", Decimal("0"), Decimal("0")),
        ("total", 12, Decimal("12")),
        ("total", 12.5, Decimal("12.5")),
        ("total", "12.3456", Decimal("12.346")),
        ("voltage", "230.06", Decimal("230.1")),
        ("power_factor", "-0.95", Decimal("-0.95")),
        ("balance", "-99999999999999.99", Decimal("-99999999999999.99")),
        ("purchase_count", 2**31 - 1, 2**31 - 1),
        ("supply", "off", Supply.OFF),
        ("battery_low", "YES", True),
        ("battery_low", 0, False),
    ],
)
def test_reading_value_accepts_what_a_reading_can_be(name, value, expected):
    assert push.reading_value(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("total", float("nan")),
        ("total", float("inf")),
        ("total", Decimal("NaN")),
        ("total", Decimal("-Infinity")),
        ("total", Decimal("1E13")),
        ("total", Decimal("-0.001")),
        ("voltage", Decimal("-1")),
        ("frequency", Decimal("-50")),
        ("balance", Decimal("1E14")),
        ("power", Decimal("1E12")),
        ("total", True),
        ("total", [1]),
        ("total", " 1"),
        ("total", "1_000"),
        ("purchase_count", 2**31),
        ("purchase_count", 1.0),
        ("supply", 1),
        ("battery_low", 2),
    ],
)
def test_reading_value_refuses_what_cannot_be_a_reading(name, value):
    with pytest.raises(FrameError):
        push.reading_value(name, value)


def test_decoded_payload_beyond_the_columns_is_refused():
    message = PushMessage("ctwing", PushKind.DATA, "m", ("d",), AT, DLT_REPLY)
    with pytest.raises(FrameError, match="too large"):  # 12345.67 kWh x CT 10^9 cannot be an index
        push.decode_reading(message, MODELS["dlt645_2007_basic"], "1", ct_ratio=10**9)


def signed_onenet(msg_text, token="tok-1", *, nonce="n0nce", extra=""):
    signature = push.onenet_signature(token, nonce, msg_text)
    body = (
        '{"msg": '
        + msg_text
        + ', "msg_signature": "'
        + signature
        + '", "nonce": "'
        + nonce
        + '"'
        + extra
        + "}"
    )
    return body.encode()


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        ('{"at": 1700000000000, "type": [1], "dev_id": "d"}', "type: expected an integer, got a list"),
        (
            '{"at": 1700000000000, "type": {"a": 1}, "dev_id": "d"}',
            "type: expected an integer, got an object",
        ),
        ('{"at": 1700000000000, "type": true, "dev_id": "d"}', "type: expected an integer, got a boolean"),
        ('{"at": 1e20, "type": 1, "dev_id": "d"}', "an integer"),
        ('{"at": NaN, "type": 1, "dev_id": "d"}', "NaN is not a number"),
        ('{"at": Infinity, "type": 1, "dev_id": "d"}', "Infinity is not a number"),
        ('{"at": 100000000000000000000000000000, "dev_id": "d"}', "outside 2000..2099"),
        ('{"type": 1, "dev_id": "d"}', "no timestamp"),
        ('{"at": 1700000000000, "dev_id": "d", "id": "a\\u0000"}', "msg id: contains a control character"),
        ('{"at": 1700000000000, "dev_id": ["d"]}', "dev_id: expected text, got a list"),
        ('{"at": 1700000000000, "dev_id": "d", "ds_id": 1.5}', "ds_id: expected text, got a number"),
        ('{"at": 1700000000000, "dev_id": "d", "value": [1]}', "value: expected base64 text or an object"),
        ('{"at": 1700000000000, "dev_id": "d", "value": true}', "value: expected base64 text or an object"),
        ('{"at": 1700000000000, "dev_id": "d", "value": {"total": 1e15}}', "too large for a reading"),
        ('{"at": 1700000000000, "dev_id": "d", "value": {"total": 1e400}}', "too large for a reading"),
        (
            '{"at": 1700000000000, "dev_id": "d", "value": {"purchase_count": 2147483648}}',
            "outside 0..2147483647",
        ),
        ("[]", "empty list"),
    ],
)
def test_parse_onenet_refuses_hostile_signed_messages_with_a_reason(msg, reason):
    with pytest.raises(FrameError, match=re.escape(reason)):
        push.parse_onenet(signed_onenet(msg), "tok-1")


@pytest.mark.parametrize(
    "body",
    [
        b'{"msg": "\\ud800", "msg_signature": "x", "nonce": "n"}',
        b'{"msg": "x", "msg_signature": "x", "nonce": "\\ud800"}',
        b'{"msg": "x", "msg_signature": "x\\u0000", "nonce": "n"}',
    ],
)
def test_parse_onenet_refuses_text_no_platform_can_have_signed(body):
    with pytest.raises(FrameError):
        push.parse_onenet(body, "tok-1")


def test_onenet_message_id_and_time_come_from_the_signed_msg_only():
    msg = '{"at": 1700000000000, "type": 1, "dev_id": "dev-9", "value": {"total": "5.5"}}'
    first = push.parse_onenet(signed_onenet(msg, extra=', "id": "top-1", "time": 1700000000000'), "tok-1")
    resent = push.parse_onenet(signed_onenet(msg, extra=', "id": "top-2", "time": 1800000000000'), "tok-1")
    assert first.message_id == resent.message_id == "dev-9::1700000000000"
    assert first.at == resent.at == AT
    # An id inside msg is signed: it is the key.
    with_id = '{"id": "m-1", "at": 1700000000000, "dev_id": "dev-9"}'
    assert push.parse_onenet(signed_onenet(with_id, extra=', "id": "top-3"'), "tok-1").message_id == "m-1"
    # A message that carries its time only outside msg has no signed time: refused, not trusted.
    unsigned_time = '{"dev_id": "dev-9", "value": "aGk="}'
    with pytest.raises(FrameError, match="no timestamp"):
        push.parse_onenet(signed_onenet(unsigned_time, extra=', "time": 1700000000000'), "tok-1")


FORM = "application/x-www-form-urlencoded"


def test_json_sent_as_form_and_form_fields_are_read():
    assert push.parse_ctwing(ctwing_body(), f"{FORM}; charset=UTF-8") == push.parse_ctwing(ctwing_body())
    assert push.parse_onenet(onenet_body("tok-1", MSG), "tok-1", FORM).payload == b"hi"
    signature = push.onenet_signature("tok-1", "n1", MSG)
    fields = urlencode({"msg": MSG, "nonce": "n1", "msg_signature": signature})  # "+" and "=" are escaped
    message = push.parse_onenet(fields, "tok-1", FORM)
    assert (message.device_ids, message.payload, message.at) == (("dev-9",), b"hi", AT)
    ctwing_fields = urlencode(
        {
            "messageType": "dataReport",
            "deviceId": "d-1",
            "timestamp": "1700000000000",
            "payload": json.dumps({"serviceData": {"total": "7.5"}}),
        }
    )
    assert push.parse_ctwing(ctwing_fields, FORM).values == (("total", "7.5"),)
    with pytest.raises(FrameError, match="given twice"):
        push.parse_onenet(fields + "&nonce=n2", "tok-1", FORM)
    with pytest.raises(SecurityError):
        push.parse_onenet(fields.replace("dev-9", "dev-8"), "tok-1", FORM)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/vnd.ctwing+json",
        None,
    ],
)
def test_json_content_types_are_read(content_type):
    assert push.parse_ctwing(ctwing_body(), content_type).payload == DLT_REPLY


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=x", "application/xml", "text/html", "application/octet-stream"],
)
def test_other_content_types_are_refused(content_type):
    with pytest.raises(push.UnsupportedMediaType, match="content type"):
        push.parse_ctwing(ctwing_body(), content_type)
    with pytest.raises(push.UnsupportedMediaType):
        push.parse_onenet(onenet_body("tok-1", MSG), "tok-1", content_type)


def test_a_body_over_the_limit_is_too_large():
    with pytest.raises(push.BodyTooLarge, match="larger than the limit"):
        push.parse_ctwing(b" " * (push.MAX_BODY + 1))


SAFETY_NET = "push cannot be read"  # the message of push._parse_errors: an error no check caught
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
CTWING_MEMBERS = ("messageType", "deviceId", "IMEI", "timestamp", "messageId", "upPacketSN", "upDataSN")


@given(
    members=st.dictionaries(st.sampled_from(CTWING_MEMBERS), JSON_VALUES),
    payload=JSON_VALUES | st.dictionaries(st.sampled_from(("APPdata", "serviceData")), JSON_VALUES),
    service=st.dictionaries(
        st.sampled_from(("total", "power", "supply", "purchase_count", "battery_low")), JSON_VALUES
    ),
)
def test_parse_ctwing_raises_only_engine_errors_whatever_the_members(members, payload, service):
    if isinstance(payload, dict) and "serviceData" in payload:
        payload["serviceData"] = service
    body = json.dumps({**members, "payload": payload}).encode()
    try:
        message = push.parse_ctwing(body)
    except FrameError as exc:
        assert SAFETY_NET not in str(exc)  # refused by a check that says what is wrong
        return
    assert all(isinstance(i, str) and i for i in message.device_ids)
    assert push.EARLIEST <= message.at < push.LATEST
    for name, value in message.values:
        push.reading_value(name, value)  # what was accepted is a reading value


@given(
    msg=st.dictionaries(
        st.sampled_from(("at", "time", "type", "dev_id", "imei", "id", "ds_id", "value")), JSON_VALUES
    )
)
def test_parse_onenet_raises_only_engine_errors_whatever_the_signed_msg(msg):
    try:
        push.parse_onenet(signed_onenet(json.dumps(msg)), "tok-1")
    except FrameError as exc:
        assert SAFETY_NET not in str(exc)
