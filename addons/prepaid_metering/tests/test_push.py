import base64
import json
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from prepaid_engine import push
from prepaid_engine.errors import MeterError

from .common import MeteringCommon

PLATFORM_LOGGER = "odoo.addons.prepaid_metering.models.prepaid_platform"
CONTROLLER_LOGGER = "odoo.addons.prepaid_metering.controllers.main"
IR_HTTP_LOGGER = "odoo.addons.prepaid_metering.models.ir_http"
# DL/T 645-2007 worked frame (protocols.md): meter 123456789012 answers DI 00010000 with 12345.67 kWh.
DLT_REPLY = bytes.fromhex("68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 16")


def ctwing_body(at, device="dev-1", packet=1, payload=DLT_REPLY):
    return json.dumps(
        {
            "messageType": "dataReport",
            "deviceId": device,
            "IMEI": "861234567890123",
            "timestamp": int(at.timestamp() * 1000),
            "upPacketSN": packet,
            "payload": {"APPdata": base64.b64encode(payload).decode()},
        }
    ).encode()


def onenet_body(token, at, device="dev-2", nonce="abc"):
    msg = json.dumps(
        {
            "at": int(at.timestamp() * 1000),
            "type": 1,
            "dev_id": device,
            "value": base64.b64encode(DLT_REPLY).decode(),
        }
    )
    signature = push.onenet_signature(token, nonce, msg)
    return ('{"msg": ' + msg + ', "msg_signature": "' + signature + '", "nonce": "' + nonce + '"}').encode()


class PushCommon(MeteringCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Platform = cls.env["prepaid.platform"]
        cls.ctwing = Platform.create(
            {"name": "CTWing", "kind": "ctwing", "token": "ct-secret", "route_key": "ct-key"}
        )
        cls.onenet = Platform.create(
            {"name": "OneNET", "kind": "onenet", "token": "on-secret", "route_key": "on-key"}
        )
        Meter = cls.env["prepaid.meter"]
        meter_vals = {"utility": "electricity", "model_id": cls.model_dlt.id, "address": "123456789012"}
        cls.meter_ct = Meter.create(
            meter_vals
            | {
                "name": "NB 1",
                "platform_id": cls.ctwing.id,
                "device_ref": "dev-1",
                "unit_id": cls.unit_101.id,
            }
        )
        cls.meter_on = Meter.create(
            meter_vals | {"name": "NB 2", "platform_id": cls.onenet.id, "device_ref": "dev-2"}
        )

    def readings(self, meter):
        return self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)])

    def messages(self, platform):
        return self.env["prepaid.push.message"].search([("platform_id", "=", platform.id)])


@tagged("post_install", "-at_install")
class TestPushModel(PushCommon):
    def test_signed_push_is_stored_once(self):
        now = datetime.now(UTC)
        body = ctwing_body(now)
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", body), (200, {"stored": 1}))
        reading = self.readings(self.meter_ct)
        self.assertEqual(len(reading), 1)
        self.assertRecordValues(
            reading, [{"total": 12345.67, "source": "push", "company_id": self.company.id}]
        )
        self.assertEqual(reading.read_at, now.replace(tzinfo=None, microsecond=0))
        self.assertTrue(self.meter_ct.online)
        self.assertEqual(self.meter_ct.last_total, 12345.67)
        message = self.messages(self.ctwing)
        self.assertRecordValues(
            message, [{"state": "done", "meter_id": self.meter_ct.id, "reading_id": reading.id}]
        )
        # The platform retries the same message: acknowledged, nothing new stored.
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", body), (200, {"duplicate": True}))
        self.assertEqual(len(self.readings(self.meter_ct)), 1)
        self.assertEqual(len(self.messages(self.ctwing)), 1)

    @mute_logger(PLATFORM_LOGGER)
    def test_forged_push_is_refused_and_nothing_stored(self):
        body = ctwing_body(datetime.now(UTC))
        for token in ("wrong", "", None):
            self.assertEqual(self.ctwing._receive_ctwing(token, body)[0], 403)
        self.assertFalse(self.readings(self.meter_ct))
        self.assertFalse(self.messages(self.ctwing))

    @mute_logger(PLATFORM_LOGGER)
    def test_replayed_capture_outside_the_skew_is_refused(self):
        self.ctwing.allowed_skew = 300
        old = ctwing_body(datetime.now(UTC) - timedelta(seconds=301))
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", old)[0], 403)
        future = ctwing_body(datetime.now(UTC) + timedelta(seconds=301))
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", future)[0], 403)
        self.assertFalse(self.readings(self.meter_ct))
        self.assertFalse(self.messages(self.ctwing))

    def test_unknown_device_is_logged_and_acknowledged(self):
        body = ctwing_body(datetime.now(UTC), device="stranger")
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", body), (200, {"unknown_device": True}))
        self.assertRecordValues(self.messages(self.ctwing), [{"state": "unknown_device", "meter_id": False}])
        self.assertFalse(self.readings(self.meter_ct))

    def test_device_of_another_platform_is_unknown(self):
        body = ctwing_body(datetime.now(UTC), device="dev-2")
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", body), (200, {"unknown_device": True}))
        self.assertFalse(self.readings(self.meter_on))

    def test_undecodable_payload_is_logged(self):
        self.meter_ct.address = "000000001101"  # the frame comes from 123456789012
        body = ctwing_body(datetime.now(UTC))
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", body), (200, {"error": "undecodable"}))
        self.assertEqual(self.messages(self.ctwing).state, "error")
        log = self.env["prepaid.comm.log"].search([("meter_id", "=", self.meter_ct.id)])
        self.assertEqual(log.direction, "error")
        self.assertTrue(log.data_hex.startswith("68 12 90"))
        self.assertFalse(self.readings(self.meter_ct))

    @mute_logger(PLATFORM_LOGGER)
    def test_malformed_body_is_a_bad_request(self):
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", b"{nope")[0], 400)

    @mute_logger(PLATFORM_LOGGER)
    def test_onenet_signed_push_once_forged_and_replayed_refused(self):
        now = datetime.now(UTC)
        body = onenet_body("on-secret", now)
        self.assertEqual(self.onenet._receive_onenet(body), (200, {"stored": 1}))
        self.assertEqual(self.onenet._receive_onenet(body), (200, {"duplicate": True}))
        self.assertEqual(len(self.readings(self.meter_on)), 1)
        forged = onenet_body("guessed", now + timedelta(seconds=1))
        self.assertEqual(self.onenet._receive_onenet(forged)[0], 403)
        stale = onenet_body("on-secret", now - timedelta(hours=1))
        self.assertEqual(self.onenet._receive_onenet(stale)[0], 403)
        self.assertEqual(len(self.readings(self.meter_on)), 1)

    @mute_logger(PLATFORM_LOGGER)
    def test_onenet_url_verification(self):
        signature = push.onenet_signature("on-secret", "n1", "hello")
        self.assertEqual(self.onenet._verify_onenet_url("hello", "n1", signature), "hello")
        self.assertIsNone(self.onenet._verify_onenet_url("hello", "n1", "forged"))

    def test_route_lookup(self):
        Platform = self.env["prepaid.platform"]
        self.assertEqual(Platform._get_by_route("ctwing", "ct-key"), self.ctwing)
        self.assertFalse(Platform._get_by_route("onenet", "ct-key"))
        self.assertFalse(Platform._get_by_route("ctwing", ""))
        self.ctwing.active = False
        self.assertFalse(Platform._get_by_route("ctwing", "ct-key"))


@tagged("post_install", "-at_install")
class TestPushRoutes(HttpCase, PushCommon):
    @mute_logger(PLATFORM_LOGGER, CONTROLLER_LOGGER)
    def test_ctwing_route_accepts_once_and_rejects_forged(self):
        url = "/prepaid/push/ctwing/ct-key"
        body = ctwing_body(datetime.now(UTC))
        headers = {"Content-Type": "application/json"}
        forged = self.url_open(url, data=body, headers=headers | {"X-Prepaid-Token": "nope"})
        self.assertEqual(forged.status_code, 403)
        self.assertFalse(self.readings(self.meter_ct))
        response = self.url_open(url, data=body, headers=headers | {"X-Prepaid-Token": "ct-secret"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"stored": 1})
        again = self.url_open(f"{url}?token=ct-secret", data=body, headers=headers)
        self.assertEqual((again.status_code, again.json()), (200, {"duplicate": True}))
        self.assertEqual(len(self.readings(self.meter_ct)), 1)
        self.assertEqual(
            self.url_open("/prepaid/push/ctwing/unknown-key", data=body, headers=headers).status_code, 404
        )

    @mute_logger(PLATFORM_LOGGER)
    def test_onenet_route_verification_and_push(self):
        signature = push.onenet_signature("on-secret", "n1", "hello")
        response = self.url_open(
            "/prepaid/push/onenet/on-key?" + f"msg=hello&nonce=n1&signature={signature.replace('+', '%2B')}"
        )
        self.assertEqual((response.status_code, response.text), (200, "hello"))
        self.assertEqual(
            self.url_open("/prepaid/push/onenet/on-key?msg=hello&nonce=n1&signature=x").status_code, 403
        )
        response = self.url_open(
            "/prepaid/push/onenet/on-key", data=onenet_body("on-secret", datetime.now(UTC))
        )
        self.assertEqual((response.status_code, response.json()), (200, {"stored": 1}))


def service_body(at, device="dev-1", packet=1, **values):
    """A CTWing report whose platform decoded the values itself (``serviceData``)."""
    return json.dumps(
        {
            "messageType": "dataReport",
            "deviceId": device,
            "timestamp": int(at.timestamp() * 1000),
            "upPacketSN": packet,
            "payload": {"serviceData": values},
        }
    ).encode()


def raw_ctwing(at, **members):
    """A CTWing body of meter dev-1 whose members are JSON source text (NaN, 1e400 stay as written)."""
    fields = {
        "messageType": '"dataReport"',
        "deviceId": '"dev-1"',
        "timestamp": str(int(at.timestamp() * 1000)),
        "upPacketSN": "1",
        "payload": '{"serviceData": {"total": "1.5"}}',
    } | members
    return ("{" + ", ".join(f'"{key}": {value}' for key, value in fields.items()) + "}").encode()


def signed_onenet(token, msg_text, nonce="abc"):
    signature = push.onenet_signature(token, nonce, msg_text)
    return (
        '{"msg": ' + msg_text + ', "msg_signature": "' + signature + '", "nonce": "' + nonce + '"}'
    ).encode()


@tagged("post_install", "-at_install")
class TestPushRefusals(PushCommon):
    """Issue 8: what passes the token or signature check still gets a reason, never a 500 nor a stored
    absurd value; dedup keys come from signed content; a second reading in the same second is not dropped."""

    def test_value_limits_are_the_reading_columns(self):
        Reading = self.env["prepaid.meter.reading"]
        for name, places in push.VALUE_PLACES.items():
            self.assertEqual(
                Reading._fields[name].get_digits(self.env), (push.NUMERIC_PRECISION, places), name
            )

    def test_absurd_values_are_refused_with_a_reason_and_logged(self):
        now = datetime.now(UTC)
        for value, reason in (
            ("1e15", "too large for a reading"),
            ("NaN", "NaN is not a number"),
            ("Infinity", "Infinity is not a number"),
            ("1e400", "too large for a reading"),
            ("-3", "is negative"),
        ):
            body = raw_ctwing(now, payload='{"serviceData": {"total": ' + value + "}}")
            with self.assertLogs(PLATFORM_LOGGER, "WARNING") as logs:
                status, answer = self.ctwing._receive_ctwing("ct-secret", body)
            self.assertEqual((status, answer["error"]), (400, "malformed"), value)
            self.assertIn(reason, answer["reason"])
            self.assertIn("platform CTWing", logs.output[0])
            self.assertIn(reason, logs.output[0])
        self.assertFalse(self.readings(self.meter_ct))
        self.assertFalse(self.messages(self.ctwing))
        self.assertFalse(self.meter_ct.last_total)

    def test_second_reading_in_the_same_second_is_refused_not_dropped(self):
        second = datetime.now(UTC).replace(microsecond=0)
        first = service_body(second.replace(microsecond=100_000), packet=1, total="12.34", supply="on")
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", first), (200, {"stored": 1}))
        other = service_body(second.replace(microsecond=600_000), packet=2, total="13.0")
        with self.assertLogs(PLATFORM_LOGGER, "WARNING") as logs:
            status, answer = self.ctwing._receive_ctwing("ct-secret", other)
        self.assertEqual((status, answer["error"]), (409, "conflict"))
        self.assertIn("already has a reading at", answer["reason"])
        self.assertIn("409", logs.output[0])
        refused = self.messages(self.ctwing).filtered(lambda m: m.message_id.startswith("dev-1:2:"))
        self.assertRecordValues(refused, [{"state": "refused", "reading_id": False}])
        self.assertIn("already has a reading", refused.message)
        # The platform retries the refused message: the same refusal, not an acknowledgement.
        with mute_logger(PLATFORM_LOGGER):
            self.assertEqual(self.ctwing._receive_ctwing("ct-secret", other), (409, answer))
        # The first reading is what the meter holds.
        reading = self.readings(self.meter_ct)
        self.assertRecordValues(reading, [{"total": 12.34}])
        self.assertEqual(self.meter_ct.last_total, 12.34)
        # The same values under another message id (a re-send): a duplicate, linked to the reading held.
        # 12.34 is no binary float: the comparison is by value, not float against Decimal.
        again = service_body(second.replace(microsecond=900_000), packet=3, total="12.340", supply="on")
        self.assertEqual(self.ctwing._receive_ctwing("ct-secret", again), (200, {"duplicate": True}))
        resent = self.messages(self.ctwing).filtered(lambda m: m.message_id.startswith("dev-1:3:"))
        self.assertRecordValues(resent, [{"state": "done", "reading_id": reading.id}])
        self.assertEqual(len(self.readings(self.meter_ct)), 1)

    def test_onenet_resent_with_a_new_top_level_id_is_a_duplicate(self):
        now = datetime.now(UTC)
        msg = json.dumps(
            {"at": int(now.timestamp() * 1000), "type": 1, "dev_id": "dev-2", "value": {"total": "4"}}
        )
        signature = push.onenet_signature("on-secret", "abc", msg)

        def body(top_id):
            return json.dumps(
                {"msg": json.loads(msg), "msg_signature": signature, "nonce": "abc", "id": top_id}
            )

        # json.dumps of the parsed msg gives back the same text: the signature still holds.
        self.assertEqual(self.onenet._receive_onenet(body("top-1")), (200, {"stored": 1}))
        self.assertEqual(self.onenet._receive_onenet(body("top-2")), (200, {"duplicate": True}))
        self.assertEqual(len(self.messages(self.onenet)), 1)
        self.assertEqual(len(self.readings(self.meter_on)), 1)

    @mute_logger(PLATFORM_LOGGER)
    def test_an_engine_error_nobody_expected_is_refused_and_undone(self):
        body = service_body(datetime.now(UTC), total="2")
        with patch.object(push, "decode_reading", side_effect=MeterError("unexpected")):
            status, answer = self.ctwing._receive_ctwing("ct-secret", body)
        self.assertEqual((status, answer), (400, {"error": "malformed", "reason": "unexpected"}))
        self.assertFalse(self.messages(self.ctwing))  # the message record it had written is undone
        self.assertFalse(self.readings(self.meter_ct))


@tagged("post_install", "-at_install")
class TestPushSecurity(PushCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        now = datetime.now(UTC)
        cls.ctwing._receive_ctwing("ct-secret", ctwing_body(now))  # meter_ct, unit M-101
        cls.onenet._receive_onenet(onenet_body("on-secret", now))  # meter_on, no unit nor building
        cls.ctwing._receive_ctwing("ct-secret", ctwing_body(now, device="stranger"))  # unknown device
        cls.all_messages = cls.env["prepaid.push.message"].search(
            [("platform_id", "in", (cls.ctwing | cls.onenet).ids)]
        )
        company = {"company_id": cls.company.id, "company_ids": cls.company.ids}
        cls.operator = new_test_user(
            cls.env, "push_op_floor_1", groups="prepaid_base.group_prepaid_user", **company
        )
        cls.operator.prepaid_property_ids = cls.floor_1
        cls.operator_all = new_test_user(
            cls.env, "push_op_all", groups="prepaid_base.group_prepaid_user", **company
        )
        cls.manager = new_test_user(
            cls.env, "push_mgr", groups="prepaid_base.group_prepaid_manager", **company
        )

    def visible_messages(self, user):
        return self.env["prepaid.push.message"].with_user(user).search([("id", "in", self.all_messages.ids)])

    def test_messages_follow_the_meters_the_user_sees(self):
        self.assertEqual(len(self.all_messages), 3)
        of_meter_ct = self.all_messages.filtered(lambda m: m.meter_id == self.meter_ct)
        self.assertEqual(self.visible_messages(self.operator), of_meter_ct)
        with self.assertRaises(AccessError):
            (self.all_messages - of_meter_ct).with_user(self.operator).read(["message_id"])
        # Operators for all properties see the messages of every meter, not those of unknown devices.
        self.assertEqual(self.visible_messages(self.operator_all), self.all_messages.filtered("meter_id"))
        self.assertEqual(self.visible_messages(self.manager), self.all_messages)

    def test_platform_secrets_and_route_for_managers_only(self):
        as_operator = self.ctwing.with_user(self.operator)
        self.assertEqual(as_operator.read(["name", "kind"])[0]["kind"], "ctwing")
        for field in ("route_key", "push_url", "token"):
            with self.assertRaises(AccessError, msg=field):
                as_operator.read([field])
        with self.assertRaises(AccessError):  # no probing of route keys by search either
            as_operator.search([("route_key", "=", "ct-key")])
        as_manager = self.ctwing.with_user(self.manager)
        self.assertEqual(as_manager.route_key, "ct-key")
        self.assertTrue(as_manager.push_url.endswith("/prepaid/push/ctwing/ct-key"))
        # The platform screens do not show them to operators.
        views = (
            self.env["prepaid.platform"]
            .with_user(self.operator)
            .get_views([(False, "list"), (False, "form")])
        )
        for view in views["views"].values():
            self.assertNotIn("route_key", view["arch"])
            self.assertNotIn("push_url", view["arch"])


@tagged("post_install", "-at_install")
class TestPushRoutesHostile(HttpCase, PushCommon):
    """Hostile requests through HTTP: each gets a 4xx with a JSON reason, none a 500, nothing is stored."""

    CT_URL = "/prepaid/push/ctwing/ct-key"
    ON_URL = "/prepaid/push/onenet/on-key"
    JSON = {"Content-Type": "application/json", "X-Prepaid-Token": "ct-secret"}

    def onenet_msg(self, when, **members):
        """The source text of a OneNET msg of meter dev-2 (members as JSON source text)."""
        fields = {"at": str(int(when.timestamp() * 1000)), "type": "1", "dev_id": '"dev-2"'} | members
        return "{" + ", ".join(f'"{key}": {value}' for key, value in fields.items()) + "}"

    def hostile_requests(self):
        """(what, url, body, headers, status, error code, part of the reason) of each hostile request."""
        now = datetime.now(UTC)
        xml = {**self.JSON, "Content-Type": "application/xml"}
        multipart = {**self.JSON, "Content-Type": "multipart/form-data; boundary=x"}
        forged = {**self.JSON, "X-Prepaid-Token": "guess"}

        def ctwing(what, body, status, code, reason, headers=None, url=self.CT_URL):
            return (what, url, body, headers or self.JSON, status, code, reason)

        def bad(what, reason, **members):
            return ctwing(what, raw_ctwing(now, **members), 400, "malformed", reason)

        def bad_value(what, value, reason):
            return bad(what, reason, payload='{"serviceData": {' + value + "}}")

        def onenet(what, status, code, reason, token="on-secret", headers=None, **members):
            body = signed_onenet(token, self.onenet_msg(now, **members))
            return (what, self.ON_URL, body, headers or {}, status, code, reason)

        return [
            bad("timestamp 1e20", "integer", timestamp="1e20"),
            bad("timestamp NaN", "NaN", timestamp="NaN"),
            bad("timestamp Infinity", "Infinity", timestamp="Infinity"),
            bad("timestamp 30 digits", "2000..2099", timestamp="1" * 30),
            bad("deviceId object", "got an object", deviceId='{"a": 1}'),
            bad("messageId NUL", "control character", messageId='"m\\u0000"'),
            bad("deviceId surrogate", "invalid code point", deviceId='"\\udc00"'),
            bad_value("total 1e15", '"total": 1e15', "too large for a reading"),
            bad_value("total NaN", '"total": NaN', "NaN is not a number"),
            bad_value("total Infinity", '"total": Infinity', "Infinity is not a number"),
            bad_value("total 1e400", '"total": 1e400', "too large for a reading"),
            bad_value("total negative", '"total": -5', "negative"),
            bad_value("total boolean", '"total": true', "boolean"),
            bad_value("purchase_count 2^31", '"purchase_count": 2147483648', "outside"),
            ctwing("nested", b"[" * 20_000, 400, "malformed", "nested too deeply"),
            ctwing("not UTF-8", b'{"deviceId": "\xff"}', 400, "malformed", "not UTF-8"),
            ctwing("xml", b"<push/>", 415, "unsupported_media_type", "content type", xml),
            ctwing("multipart", b"--x--", 415, "unsupported_media_type", "content type", multipart),
            ctwing("too large", b" " * (push.MAX_BODY + 1), 413, "too_large", "larger than the limit"),
            ctwing("too large, chunked", iter([b" " * (push.MAX_BODY + 1)]), 413, "too_large", "larger than"),
            ctwing("forged token", raw_ctwing(now), 403, "forbidden", "token", forged),
            onenet("onenet type list", 400, "malformed", "type: expected an integer", type="[1]"),
            onenet("onenet type object", 400, "malformed", "type: expected an integer", type='{"a": 1}'),
            onenet("onenet at 1e20", 400, "malformed", "integer", at="1e20"),
            onenet("onenet id NUL", 400, "malformed", "control character", id='"x\\u0000"'),
            onenet(
                "onenet purchase_count", 400, "malformed", "outside", value='{"purchase_count": 4294967296}'
            ),
            onenet("onenet total NaN", 400, "malformed", "NaN", value='{"total": NaN}'),
            onenet("onenet forged", 403, "forbidden", "signature", token="guess"),
            onenet(
                "onenet xml",
                415,
                "unsupported_media_type",
                "content type",
                headers={"Content-Type": "text/xml"},
            ),
            ctwing(
                "unknown route",
                raw_ctwing(now),
                404,
                "not_found",
                "No active",
                url="/prepaid/push/ctwing/nope",
            ),
            ctwing(
                "route with NUL",
                raw_ctwing(now),
                404,
                "not_found",
                "No active",
                url="/prepaid/push/ctwing/c%00t",
            ),
        ]

    @mute_logger(PLATFORM_LOGGER, CONTROLLER_LOGGER, IR_HTTP_LOGGER)
    def test_hostile_requests_get_a_reason_never_a_500_nor_a_stored_value(self):
        for what, url, body, headers, status, code, reason in self.hostile_requests():
            with self.subTest(what):
                response = self.url_open(url, data=body, headers=headers)
                self.assertLess(response.status_code, 500)
                self.assertEqual(response.status_code, status)
                answer = response.json()
                self.assertEqual(answer["error"], code)
                self.assertIn(reason, answer["reason"])
        Reading = self.env["prepaid.meter.reading"]
        self.assertFalse(Reading.search([("meter_id", "in", (self.meter_ct | self.meter_on).ids)]))
        self.assertFalse(self.messages(self.ctwing) | self.messages(self.onenet))
        self.assertFalse(self.meter_ct.last_total or self.meter_on.last_total)

    def test_refusals_are_logged_with_the_platform_and_the_reason(self):
        body = raw_ctwing(datetime.now(UTC), payload='{"serviceData": {"total": 1e15}}')
        with self.assertLogs(PLATFORM_LOGGER, "WARNING") as logs:
            self.assertEqual(self.url_open(self.CT_URL, data=body, headers=self.JSON).status_code, 400)
        self.assertIn("platform CTWing", logs.output[0])
        self.assertIn("too large for a reading", logs.output[0])
        xml = {**self.JSON, "Content-Type": "application/xml"}
        with self.assertLogs(PLATFORM_LOGGER, "WARNING") as logs:
            self.assertEqual(self.url_open(self.CT_URL, data=b"<x/>", headers=xml).status_code, 415)
        self.assertIn("content type", logs.output[0])

    def test_json_sent_form_urlencoded_and_form_fields_are_accepted(self):
        now = datetime.now(UTC)
        form = {"X-Prepaid-Token": "ct-secret", "Content-Type": "application/x-www-form-urlencoded"}
        response = self.url_open(self.CT_URL, data=ctwing_body(now), headers=form)
        self.assertEqual((response.status_code, response.json()), (200, {"stored": 1}))
        self.assertRecordValues(self.readings(self.meter_ct), [{"total": 12345.67}])
        msg = self.onenet_msg(now, value=json.dumps(base64.b64encode(DLT_REPLY).decode()))
        signature = push.onenet_signature("on-secret", "n-1", msg)
        # requests encodes a dict as form fields: msg is JSON text, "+" and "=" of the signature escaped.
        response = self.url_open(self.ON_URL, data={"msg": msg, "nonce": "n-1", "msg_signature": signature})
        self.assertEqual((response.status_code, response.json()), (200, {"stored": 1}))
        self.assertRecordValues(self.readings(self.meter_on), [{"total": 12345.67}])

    @mute_logger(PLATFORM_LOGGER)
    def test_second_push_in_the_same_second_is_refused_with_409(self):
        second = datetime.now(UTC).replace(microsecond=0)
        first = service_body(second.replace(microsecond=200_000), packet=1, total="20")
        other = service_body(second.replace(microsecond=700_000), packet=2, total="21")
        self.assertEqual(self.url_open(self.CT_URL, data=first, headers=self.JSON).json(), {"stored": 1})
        response = self.url_open(self.CT_URL, data=other, headers=self.JSON)
        self.assertEqual((response.status_code, response.json()["error"]), (409, "conflict"))
        self.assertRecordValues(self.readings(self.meter_ct), [{"total": 20.0}])
        self.assertEqual(self.messages(self.ctwing).mapped("state"), ["refused", "done"])

    @mute_logger(PLATFORM_LOGGER)
    def test_onenet_url_check_refusal_is_json(self):
        response = self.url_open(f"{self.ON_URL}?msg=hello&nonce=n1&signature=x")
        self.assertEqual((response.status_code, response.json()["error"]), (403, "forbidden"))
