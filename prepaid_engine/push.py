"""Messages pushed by carrier IoT platforms (CTWing, OneNET): authenticate, parse, decode. Sans-I/O.

NB-IoT and 4G meters do not sit behind a gateway we poll: the carrier platform POSTs what the meter sent to
an HTTP endpoint of ours. This module does all the byte and signature work of that path, so the HTTP layer
(the Odoo controller) only moves records:

1. authenticate the request: :func:`check_token` (CTWing: a per-platform secret token, since no signature
   scheme is documented) or :func:`verify_onenet_signature` (OneNET: ``base64(md5(token + nonce + msg))``);
2. parse the body into a :class:`PushMessage` (:func:`parse_ctwing`, :func:`parse_onenet`) with a stable
   message id for deduplication, the device identifiers to find the meter by, the platform's timestamp and
   the raw meter bytes (``APPdata``, base64 on the wire);
3. refuse stale or future messages with :func:`check_skew` (the caller passes ``now``: no clock here);
4. turn the meter bytes into a :class:`~prepaid_engine.types.Reading` with :func:`decode_reading`, through the
   same codecs the poller uses (DL/T 645-2007 or CJ/T 188 reply frames: :data:`PAYLOAD_DECODERS`).

Everything raises the engine's own errors: :class:`~prepaid_engine.errors.SecurityError` for a bad token,
signature or timestamp, :class:`~prepaid_engine.errors.FrameError` for a body or payload that cannot be
parsed, :class:`~prepaid_engine.errors.ConfigError` for a meter model this path cannot decode.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

from .errors import AddressError, ConfigError, FrameError, SecurityError
from .types import READING_FIELDS, MeterModel, Protocol, Reading, Supply

__all__ = [
    "DEFAULT_SKEW",
    "PushKind",
    "PushMessage",
    "check_skew",
    "check_token",
    "decode_reading",
    "onenet_signature",
    "onenet_url_check",
    "parse_ctwing",
    "parse_onenet",
    "verify_onenet_signature",
]

DEFAULT_SKEW = 300  # seconds a pushed timestamp may differ from our clock
MAX_BODY = 64 * 1024  # a push is a few hundred bytes; refuse anything absurd before parsing it


class PushKind(enum.StrEnum):
    DATA = "data"  # a meter report: carries a reading
    COMMAND_RESPONSE = "command_response"  # the meter's answer to a command sent through the platform
    EVENT = "event"  # online/offline, device added or deleted, ...
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One authenticated platform message, before it is matched to a meter.

    ``device_ids`` are the identifiers the meter record may be known by (device id first, then IMEI).
    ``payload`` is the raw meter bytes (empty when the platform sent decoded values only); ``values`` are
    :data:`~prepaid_engine.types.READING_FIELDS` values the platform decoded itself (``serviceData``), as
    strings.
    """

    platform: str
    kind: PushKind
    message_id: str
    device_ids: tuple[str, ...]
    at: datetime
    payload: bytes = b""
    values: tuple[tuple[str, str], ...] = ()


# -- authentication ----------------------------------------------------------------------------------------
def check_token(expected: str, given: str | None) -> None:
    """Raise :class:`SecurityError` unless ``given`` equals the platform's secret ``expected``.

    Constant-time comparison; an empty expected token never matches (an unconfigured platform is closed).
    """
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise SecurityError("push token does not match")


def onenet_signature(token: str, nonce: str, msg: str) -> str:
    """OneNET's signature: ``base64(md5(token + nonce + msg))`` over the UTF-8 bytes."""
    digest = hashlib.md5((token + nonce + msg).encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_onenet_signature(token: str, nonce: str, msg: str, signature: str) -> None:
    """Raise :class:`SecurityError` unless ``signature`` is OneNET's signature of ``nonce`` and ``msg``.

    The platform URL-encodes the signature in the verification query string; both the raw and the decoded
    form are accepted, and a ``+`` turned into a space by form decoding is put back.
    """
    if not token:
        raise SecurityError("the platform has no token: OneNET pushes cannot be verified")
    expected = onenet_signature(token, nonce, msg).encode()
    for candidate in {signature, unquote(signature), signature.replace(" ", "+")}:
        if hmac.compare_digest(expected, candidate.encode()):
            return
    raise SecurityError("OneNET signature does not match")


def onenet_url_check(token: str, msg: str, nonce: str, signature: str) -> str:
    """OneNET's URL verification (``GET ?msg=..&nonce=..&signature=..``): the text to answer with."""
    verify_onenet_signature(token, nonce, msg, signature)
    return msg


def check_skew(at: datetime, now: datetime, skew: int = DEFAULT_SKEW) -> None:
    """Raise :class:`SecurityError` when ``at`` is more than ``skew`` seconds away from ``now``.

    A replayed capture of an old push fails here even when its message id was purged from our records.
    """
    if now.tzinfo is None or at.tzinfo is None:
        raise ConfigError("check_skew needs timezone-aware datetimes")
    if abs(now - at) > timedelta(seconds=skew):
        raise SecurityError(f"push timestamp {at.isoformat()} is outside the allowed skew of {skew} s")


# -- parsing -----------------------------------------------------------------------------------------------
def _load_object(body: bytes | str, what: str) -> tuple[str, dict]:
    if len(body) > MAX_BODY:
        raise FrameError(f"{what} body of {len(body)} bytes is too large")
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"{what} body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FrameError(f"{what} body is not a JSON object")
    return text, data


def _raw_members(text: str) -> dict[str, str]:
    """The JSON source text of every top-level member of the object in ``text``.

    OneNET signs the ``msg`` member as it was sent; re-serialising a parsed object would change spacing and
    key order, so the signature is checked over the original slice.
    """
    decoder = json.JSONDecoder()
    members: dict[str, str] = {}

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    i = skip(0)
    if text[i : i + 1] != "{":
        raise FrameError("not a JSON object")
    i = skip(i + 1)
    while i < len(text) and text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = skip(i)
        if text[i : i + 1] != ":":
            raise FrameError("malformed JSON object")
        i = skip(i + 1)
        _value, end = decoder.raw_decode(text, i)
        members[str(key)] = text[i:end]
        i = skip(end)
        if text[i : i + 1] == ",":
            i = skip(i + 1)
    return members


def _epoch(value: object, what: str) -> datetime:
    """A platform timestamp (milliseconds since the epoch, or ISO 8601) as an aware UTC datetime."""
    if isinstance(value, bool) or value is None:
        raise FrameError(f"{what}: no timestamp")
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdecimal()):
        millis = int(value)
        return datetime.fromtimestamp(millis / 1000, tz=UTC).replace(microsecond=(millis % 1000) * 1000)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise FrameError(f"{what}: bad timestamp {value!r}") from exc
        if parsed.tzinfo is None:
            raise FrameError(f"{what}: timestamp {value!r} has no time zone")
        return parsed.astimezone(UTC)
    raise FrameError(f"{what}: bad timestamp {value!r}")


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise FrameError(f"{what}: payload is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FrameError(f"{what}: payload is not base64: {exc}") from exc


def _values(data: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(data, Mapping):
        return ()
    return tuple(sorted((k, str(v)) for k, v in data.items() if k in READING_FIELDS and v is not None))


def _ids(*values: object) -> tuple[str, ...]:
    seen: list[str] = []
    for value in values:
        if value not in (None, "") and str(value) not in seen:
            seen.append(str(value))
    return tuple(seen)


# CTWing ``messageType`` -> kind. Anything else is OTHER (acknowledged, not stored as a reading).
CTWING_KINDS = {
    "dataReport": PushKind.DATA,
    "dataReportTupUnion": PushKind.DATA,
    "commandResponse": PushKind.COMMAND_RESPONSE,
    "eventReport": PushKind.EVENT,
    "deviceOnlineOfflineReport": PushKind.EVENT,
    "deviceAdded": PushKind.EVENT,
    "deviceDeleted": PushKind.EVENT,
}


def parse_ctwing(body: bytes | str) -> PushMessage:
    """Parse a CTWing (China Telecom AEP) push.

    ``{"messageType": "dataReport", "deviceId": .., "IMEI": .., "timestamp": <ms>, "upPacketSN": ..,
    "payload": {"APPdata": "<base64>"} | {"serviceData": {..}}}``. The message id is the platform's
    ``messageId``/``taskId`` when present, else ``deviceId:upPacketSN:upDataSN:timestamp``, which is the same
    for the platform's retries of one report and differs between reports.
    """
    _text, data = _load_object(body, "CTWing")
    kind = CTWING_KINDS.get(str(data.get("messageType", "")), PushKind.OTHER)
    device_ids = _ids(data.get("deviceId"), data.get("IMEI"), data.get("imei"))
    if not device_ids:
        raise FrameError("CTWing push without deviceId or IMEI")
    at = _epoch(data.get("timestamp"), "CTWing")
    message_id = data.get("messageId") or data.get("taskId")
    if not message_id:
        parts = (device_ids[0], data.get("upPacketSN", ""), data.get("upDataSN", ""), data.get("timestamp"))
        message_id = ":".join(str(p) for p in parts)
    payload = data.get("payload") or {}
    if not isinstance(payload, Mapping):
        raise FrameError("CTWing payload is not an object")
    raw = _b64(payload["APPdata"], "CTWing") if payload.get("APPdata") else b""
    values = _values(payload.get("serviceData"))
    return PushMessage("ctwing", kind, str(message_id), device_ids, at, raw, values)


# OneNET message ``type`` -> kind (1 data point, 2 device online/offline, 7 LwM2M report).
ONENET_KINDS = {1: PushKind.DATA, 2: PushKind.EVENT, 7: PushKind.DATA}


def parse_onenet(body: bytes | str, token: str) -> PushMessage:
    """Verify and parse a OneNET push.

    The body is ``{"msg": <object or JSON string>, "msg_signature" | "signature": .., "nonce": ..}``
    (optionally ``"id"``).
    The signature covers ``token + nonce + msg`` where ``msg`` is the member's text as sent (the string's
    value when ``msg`` is a string). ``msg`` (or each item when it is a list: the first item is used) carries
    ``dev_id``/``imei``, ``at`` (ms), ``type``, ``ds_id`` and ``value`` (base64 meter bytes, or an object
    of reading values). The signature is checked before anything in ``msg`` is trusted.
    """
    text, data = _load_object(body, "OneNET")
    signature = data.get("msg_signature") or data.get("signature")
    nonce = data.get("nonce")
    if not isinstance(signature, str) or not isinstance(nonce, str) or "msg" not in data:
        raise SecurityError("OneNET push without msg, nonce or signature")
    if isinstance(data["msg"], str):
        signed, msg = data["msg"], None
    else:
        signed, msg = _raw_members(text)["msg"], data["msg"]
    verify_onenet_signature(token, nonce, signed, signature)
    if msg is None:
        try:
            msg = json.loads(signed)
        except ValueError as exc:
            raise FrameError(f"OneNET msg is not JSON: {exc}") from exc
    if isinstance(msg, list):
        if not msg:
            raise FrameError("OneNET msg is an empty list")
        msg = msg[0]
    if not isinstance(msg, Mapping):
        raise FrameError("OneNET msg is not an object")
    device_ids = _ids(msg.get("dev_id"), msg.get("deviceName"), msg.get("imei"), msg.get("IMEI"))
    if not device_ids:
        raise FrameError("OneNET msg without dev_id or imei")
    at = _epoch(msg.get("at", msg.get("time", data.get("time"))), "OneNET")
    kind = ONENET_KINDS.get(msg.get("type"), PushKind.OTHER) if "type" in msg else PushKind.DATA
    message_id = data.get("id") or msg.get("id") or msg.get("msgId")
    if not message_id:
        message_id = ":".join(str(p) for p in (device_ids[0], msg.get("ds_id", ""), msg.get("at", "")))
    value = msg.get("value", msg.get("APPdata"))
    raw, values = b"", ()
    if isinstance(value, str) and value:
        raw = _b64(value, "OneNET")
    elif isinstance(value, Mapping):
        values = _values(value)
    return PushMessage("onenet", kind, str(message_id), device_ids, at, raw, values)


# -- decoding ----------------------------------------------------------------------------------------------
_INT_FIELDS = {"purchase_count"}
_BOOL_FIELDS = {"battery_low"}


def _reading_from_values(meter_key: str, read_at: datetime, values: Mapping[str, object]) -> Reading:
    kwargs: dict[str, object] = {}
    for name, value in values.items():
        if name not in READING_FIELDS or value is None:
            continue
        try:
            if name == "supply":
                kwargs[name] = Supply(str(value))
            elif name in _INT_FIELDS:
                kwargs[name] = int(str(value))
            elif name in _BOOL_FIELDS:
                kwargs[name] = (
                    value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
                )
            else:
                kwargs[name] = Decimal(str(value))
        except (ValueError, InvalidOperation) as exc:
            raise FrameError(f"pushed value {name}={value!r} is not valid: {exc}") from exc
    return Reading(meter_key=meter_key, read_at=read_at, **kwargs)


def _ct_scaled(values: dict[str, object], model: MeterModel, ct_ratio: int) -> dict[str, object]:
    """Primary-side values, as the poller's DL/T 645 adapter reports them: registers x CT ratio, unless the
    model says its meter already reports primary values (option ``ct_scaling`` = ``primary``)."""
    from .adapters.dlt645 import CT_FIELDS

    if ct_ratio == 1 or model.option("ct_scaling", "secondary") == "primary":
        return values
    return {k: v * ct_ratio if k in CT_FIELDS and isinstance(v, Decimal) else v for k, v in values.items()}


def _check_address(found: str, address: str) -> None:
    if address and found != address:
        raise AddressError(f"pushed frame is from meter {found}, not {address}")


def _decode_dlt645(payload: bytes, model: MeterModel, address: str, ct_ratio: int) -> dict[str, object]:
    """DL/T 645-2007 read replies (one or several frames, as the meter sent them) -> reading values."""
    from .codecs import dlt645, dlt645_di

    deframer = dlt645.Deframer()
    deframer.feed(payload)
    pairs = []
    for frame in deframer:
        message = dlt645.decode(frame)
        _check_address(message.address, address)
        if isinstance(message, dlt645.ReadReply):
            pairs.append((message.di, message.value))
    if not pairs:
        raise FrameError("the pushed payload holds no DL/T 645 read reply")
    return _ct_scaled(dlt645_di.collect_reading(pairs), model, ct_ratio)


def _decode_cjt188(payload: bytes, model: MeterModel, address: str, ct_ratio: int) -> dict[str, object]:
    """CJ/T 188 replies (a 901F flow reply, or a valve write reply) -> reading values, in the model's DI
    byte order."""
    from .codecs import cjt188

    deframer = cjt188.Deframer()
    deframer.feed(payload)
    values: dict[str, object] = {}
    for frame in deframer:
        message = cjt188.decode(frame, di_order=model.option("di_order", "msb"))
        _check_address(message.address, address)
        if isinstance(message, cjt188.Reply):
            values.update(cjt188.reading_values(message))
    if not values:
        raise FrameError("the pushed payload holds no CJ/T 188 reply with a reading")
    return values


# Protocol -> decoder of a pushed payload: (payload, model, address, ct_ratio) -> READING_FIELDS values.
PAYLOAD_DECODERS: dict[Protocol, Callable[[bytes, MeterModel, str, int], Mapping[str, object]]] = {
    Protocol.DLT645_2007: _decode_dlt645,
    Protocol.CJT188: _decode_cjt188,
}


def decode_reading(
    message: PushMessage,
    model: MeterModel,
    meter_key: str,
    address: str = "",
    ct_ratio: int = 1,
) -> Reading:
    """The :class:`Reading` a pushed message carries for one meter.

    ``payload`` bytes are decoded by the meter model's protocol (:data:`PAYLOAD_DECODERS`: DL/T 645-2007
    read replies, CJ/T 188 replies; other protocols raise :class:`ConfigError`); platform-decoded
    ``values`` are taken as they are. ``address``, when given, must be the address in the frames
    (:class:`AddressError` otherwise). ``ct_ratio`` scales DL/T 645 energies, current and power to the
    primary side, as the poller reports them. ``read_at`` is the platform's timestamp.
    """
    if message.payload:
        decoder = PAYLOAD_DECODERS.get(model.protocol)
        if decoder is None:
            raise ConfigError(f"pushed payloads of {model.protocol} meters cannot be decoded")
        values = decoder(message.payload, model, address, ct_ratio)
    else:
        values = dict(message.values)
    return _reading_from_values(meter_key, message.at, values)
