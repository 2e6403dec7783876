"""Platform pushes (CTWing, OneNET): tokens, OneNET signatures, body parsing, clock skew, payload decoding."""

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

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
