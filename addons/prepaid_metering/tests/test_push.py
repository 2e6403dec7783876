import base64
import json
from datetime import UTC, datetime, timedelta

from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from prepaid_engine import push

from .common import MeteringCommon

PLATFORM_LOGGER = "odoo.addons.prepaid_metering.models.prepaid_platform"
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
    @mute_logger(PLATFORM_LOGGER)
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
