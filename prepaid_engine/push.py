"""Messages pushed by carrier IoT platforms (CTWing, OneNET): authenticate, parse, decode. Sans-I/O.

NB-IoT and 4G meters do not sit behind a gateway we poll: the carrier platform POSTs what the meter sent to
an HTTP endpoint of ours. This module does all the byte and signature work of that path, so the HTTP layer
(the Odoo controller) only moves records:

1. authenticate the request: :func:`check_token` (CTWing: a per-platform secret token, since no signature
   scheme is documented) or :func:`verify_onenet_signature` (OneNET: ``base64(md5(token + nonce + msg))``);
2. parse the body (JSON, or form-encoded) into a :class:`PushMessage` (:func:`parse_ctwing`,
   :func:`parse_onenet`) with a stable message id for deduplication taken from authenticated content only,
   the device identifiers to find the meter by, the platform's timestamp and the raw meter bytes
   (``APPdata``, base64 on the wire). Every member is checked on the way: JSON types, timestamps within
   2000..2100, identifiers without control characters, reading values that can be readings at all
   (:func:`reading_value`: finite, non-negative indexes, within the stored columns), no NaN or Infinity;
3. refuse stale or future messages with :func:`check_skew` (the caller passes ``now``: no clock here);
4. turn the meter bytes into a :class:`~prepaid_engine.types.Reading` with :func:`decode_reading`, through the
   same codecs the poller uses (DL/T 645-2007 or CJ/T 188 reply frames: :data:`PAYLOAD_DECODERS`).

Everything raises the engine's own errors, with a message that says what is wrong (the HTTP layer sends it
back as the reason of its 4xx): :class:`~prepaid_engine.errors.SecurityError` for a bad token, signature or
timestamp, :class:`~prepaid_engine.errors.FrameError` for a body or payload that cannot be parsed (its
subclasses :class:`BodyTooLarge` and :class:`UnsupportedMediaType` for a body too large or of another
content type), :class:`~prepaid_engine.errors.ConfigError` for a meter model this path cannot decode. The
parsers of bodies raise nothing else, whatever the body.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from urllib.parse import parse_qsl, unquote

from .errors import AddressError, ConfigError, EngineError, FrameError, SecurityError
from .types import READING_FIELDS, MeterModel, Protocol, Reading, Supply

__all__ = [
    "DEFAULT_SKEW",
    "MAX_BODY",
    "BodyTooLarge",
    "PushKind",
    "PushMessage",
    "UnsupportedMediaType",
    "check_skew",
    "check_text",
    "check_token",
    "decode_reading",
    "media_type",
    "onenet_signature",
    "onenet_url_check",
    "parse_ctwing",
    "parse_onenet",
    "reading_value",
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
    try:
        matches = bool(expected and given) and hmac.compare_digest(expected.encode(), given.encode())
    except (AttributeError, UnicodeEncodeError):  # not text, or a lone surrogate: no token of ours
        matches = False
    if not matches:
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
    try:
        expected = onenet_signature(token, nonce, msg).encode()
        for candidate in {signature, unquote(signature), signature.replace(" ", "+")}:
            if hmac.compare_digest(expected, candidate.encode()):
                return
    except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8, so nothing a platform signed
        raise SecurityError("OneNET signature cannot be checked: the text is not valid Unicode") from exc
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


# -- what a push may contain ------------------------------------------------------------------------------
# Every value of a push is checked here, so that nothing a platform sends reaches the database or the money
# unless it can be what it claims to be: the HTTP layer answers each error below with a 4xx and its message.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # a platform timestamp outside [EARLIEST, LATEST) is refused
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_STAMP_DIGITS = 14  # milliseconds until LATEST have 13 digits
MAX_TEXT = 128  # device ids, message ids, nonces, signatures, data stream names, ...
MAX_SERIAL = 10**12  # packet serial numbers and numeric identifiers
# A reading value as stored: Odoo Float columns of digits (NUMERIC_PRECISION, places), so |value| <
# 10 ** (NUMERIC_PRECISION - places); more decimals than the column keeps are rounded to it. Values that may
# not be negative: indexes, voltage, frequency (current, power and power factor carry a direction, a meter's
# balance an overdraft). Whether a *step* between readings is plausible is ingestion's question, not this.
NUMERIC_PRECISION = 16
VALUE_PLACES = {
    "total": 3,
    "sharp": 3,
    "peak": 3,
    "flat": 3,
    "valley": 3,
    "voltage": 1,
    "current": 3,
    "power": 4,
    "power_factor": 3,
    "frequency": 2,
    "balance": 2,
}
SIGNED_VALUES = frozenset({"current", "power", "power_factor", "balance"})
MAX_PURCHASE_COUNT = 2**31 - 1  # a PostgreSQL integer
_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
# Text that may not appear in an identifier: C0 and C1 control characters (NUL among them) and lone surrogates
# (JSON's "\ud800" escapes, which are no UTF-8 and no PostgreSQL text).
_BAD_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NUMBER_TEXT = re.compile(r"[+-]?[0-9]{1,20}(\.[0-9]{1,20})?")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,20}")
# Content types a push body is read as (the media type, lower case, parameters such as charset ignored: JSON
# is UTF-8). Form-encoded bodies are either JSON sent under the form content type or form fields.
JSON_MEDIA_TYPES = frozenset({"", "application/json", "text/json", "text/plain"})
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class BodyTooLarge(FrameError):
    """A push body over :data:`MAX_BODY` bytes (HTTP 413)."""


class UnsupportedMediaType(FrameError):
    """A push body of a content type this path does not read (HTTP 415)."""


def check_text(value: object, what: str, max_length: int = MAX_TEXT) -> str:
    """``value`` as an identifier: a non-empty string (or a non-negative integer, as OneNET sends device ids)
    of at most ``max_length`` characters without control characters; :class:`FrameError` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_SERIAL:
        return str(value)
    if not isinstance(value, str):
        raise FrameError(f"{what}: expected text, got {_kind(value)}")
    if not value:
        raise FrameError(f"{what}: empty")
    if len(value) > max_length:
        raise FrameError(f"{what}: {len(value)} characters, more than {max_length}")
    if _BAD_CHARACTERS.search(value):
        raise FrameError(f"{what}: contains a control character or an invalid code point")
    return value


def _kind(value: object) -> str:
    """The JSON kind of ``value``, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _optional_text(value: object, what: str) -> str | None:
    return None if value is None or value == "" else check_text(value, what)


def _serial(value: object, what: str) -> int | None:
    """A packet serial number: an integer (or its decimal text) of magnitude below :data:`MAX_SERIAL`."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= MAX_SERIAL:
        raise FrameError(f"{what}: expected an integer below {MAX_SERIAL}, got {_kind(value)} {value!r:.40}")
    return value


# -- parsing -----------------------------------------------------------------------------------------------
def _refuse_constant(name: str) -> object:
    raise FrameError(f"{name} is not a number a meter can send")


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError) as exc:
        raise FrameError(f"number {text[:40]} is out of range") from exc


def _json(text: str, what: str) -> object:
    """Strict JSON: no NaN or Infinity, numbers with a fraction or an exponent as :class:`Decimal` (so 1e400
    is a number too large, not infinity), no nesting deeper than the interpreter can follow."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_decimal)
    except FrameError as exc:
        raise FrameError(f"{what}: {exc}") from exc
    except RecursionError as exc:
        raise FrameError(f"{what} is nested too deeply") from exc
    except ValueError as exc:
        raise FrameError(f"{what} is not JSON: {exc}") from exc


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, lower case, without parameters ("" when absent)."""
    if content_type is None:
        return ""
    if not isinstance(content_type, str) or len(content_type) > 256 or _BAD_CHARACTERS.search(content_type):
        raise UnsupportedMediaType("the content type is not readable")
    return content_type.partition(";")[0].strip().lower()


def _load_object(body: bytes | str, what: str, content_type: str | None = None) -> tuple[str | None, dict]:
    """The body as a JSON object and its text (the text is None for form fields, which are not JSON).

    JSON is read under :data:`JSON_MEDIA_TYPES` and ``application/<anything>+json``; under
    :data:`FORM_MEDIA_TYPE` a body that is a JSON object (some platform configurations send JSON with that
    content type) is read as JSON, anything else as form fields (``msg=..&nonce=..&msg_signature=..``), each
    field once. Other content types raise :class:`UnsupportedMediaType`, a body over :data:`MAX_BODY`
    :class:`BodyTooLarge`.
    """
    if len(body) > MAX_BODY:
        raise BodyTooLarge(f"{what} body of {len(body)} bytes is larger than the limit of {MAX_BODY}")
    media = media_type(content_type)
    if media not in JSON_MEDIA_TYPES and media != FORM_MEDIA_TYPE and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"{what} body of content type {media!r} is not read: send application/json or {FORM_MEDIA_TYPE}"
        )
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise FrameError(f"{what} body is not UTF-8: {exc}") from exc
    if media == FORM_MEDIA_TYPE and not text.lstrip().startswith("{"):
        return None, _form_fields(text, what)
    data = _json(text, f"{what} body")
    if not isinstance(data, dict):
        raise FrameError(f"{what} body is not a JSON object")
    return text, data


def _form_fields(text: str, what: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, errors="strict", max_num_fields=64
        )
    except ValueError as exc:
        raise FrameError(f"{what} form body is not valid: {exc}") from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise FrameError(f"{what} form field {key[:40]!r} is given twice")
        fields[key] = value
    return fields


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
    """A platform timestamp as an aware UTC datetime in [:data:`EARLIEST`, :data:`LATEST`).

    Milliseconds since the epoch as an integer (or its decimal text, at most :data:`MAX_STAMP_DIGITS`
    digits), or ISO 8601 text with a time zone. Fractions, exponents, booleans and anything else are refused.
    """
    if value is None or value == "":
        raise FrameError(f"{what}: no timestamp")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        if len(value) > MAX_STAMP_DIGITS:
            raise FrameError(f"{what}: timestamp of {len(value)} digits is not milliseconds since 1970")
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not _millis(EARLIEST) <= value < _millis(LATEST):
            raise FrameError(
                f"{what}: timestamp {str(value)[:40]} ms is outside {EARLIEST.year}..{LATEST.year - 1}"
                " (milliseconds since 1970 expected)"
            )
        return datetime.fromtimestamp(value // 1000, tz=UTC).replace(microsecond=(value % 1000) * 1000)
    if isinstance(value, str) and len(value) <= 40 and not _BAD_CHARACTERS.search(value):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            parsed = parsed.astimezone(UTC) if parsed.tzinfo else None
        except (ValueError, OverflowError) as exc:
            raise FrameError(f"{what}: bad timestamp {value!r}") from exc
        if parsed is None:
            raise FrameError(f"{what}: timestamp {value!r} has no time zone")
        if not EARLIEST <= parsed < LATEST:
            raise FrameError(f"{what}: timestamp {value!r} is outside {EARLIEST.year}..{LATEST.year - 1}")
        return parsed
    raise FrameError(f"{what}: expected milliseconds since 1970 (an integer), got {_kind(value)}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _millis(at: datetime) -> int:
    """Milliseconds since 1970 of an aware datetime, exactly (no float)."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise FrameError(f"{what}: payload is not a base64 string but {_kind(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FrameError(f"{what}: payload is not base64: {exc}") from exc


def _object(value: object, what: str, *, form: bool = False) -> Mapping:
    """An optional JSON object member (absent or null: empty). In a form body it arrives as JSON text."""
    if value is None:
        return {}
    if form and isinstance(value, str):
        value = _json(value, what) if value else {}
    if not isinstance(value, Mapping):
        raise FrameError(f"{what}: expected an object, got {_kind(value)}")
    return value


def _values(data: Mapping, what: str) -> tuple[tuple[str, str], ...]:
    """The :data:`~prepaid_engine.types.READING_FIELDS` values of a platform-decoded object, each checked by
    :func:`reading_value`, as canonical text (other members are not ours and are left alone)."""
    values = []
    for name in READING_FIELDS:
        value = data.get(name)
        if value is not None:
            values.append((name, _text_of(reading_value(name, value, f"{what}.{name}"))))
    return tuple(sorted(values))


def _text_of(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _ids(values: Mapping, names: tuple[str, ...], what: str) -> tuple[str, ...]:
    seen: list[str] = []
    for name in names:
        value = _optional_text(values.get(name), f"{what} {name}")
        if value is not None and value not in seen:
            seen.append(value)
    return tuple(seen)


def _parse_errors(what: str):
    """Decorator: a parser of untrusted bodies raises only the engine's errors. Anything else a hostile body
    could still set off (a type the checks above missed) is a :class:`FrameError` naming it, never a crash
    of the caller."""

    def decorate(parse):
        @functools.wraps(parse)
        def wrapper(*args, **kwargs):
            try:
                return parse(*args, **kwargs)
            except EngineError:
                raise
            except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
                raise FrameError(f"{what} push cannot be read: {type(exc).__name__}: {exc}") from exc

        return wrapper

    return decorate


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


@_parse_errors("CTWing")
def parse_ctwing(body: bytes | str, content_type: str | None = None) -> PushMessage:
    """Parse a CTWing (China Telecom AEP) push.

    ``{"messageType": "dataReport", "deviceId": .., "IMEI": .., "timestamp": <ms>, "upPacketSN": ..,
    "payload": {"APPdata": "<base64>"} | {"serviceData": {..}}}``. The message id is the platform's
    ``messageId``/``taskId`` when present, else ``deviceId:upPacketSN:upDataSN:timestamp``, which is the same
    for the platform's retries of one report and differs between reports (the body is authenticated by the
    platform's token as a whole, so any of its members may make the key). Every member is checked (types,
    ranges, text); ``serviceData`` values by :func:`reading_value`.
    """
    text, data = _load_object(body, "CTWing", content_type)
    message_type = data.get("messageType")
    message_type = "" if message_type is None else check_text(message_type, "CTWing messageType")
    kind = CTWING_KINDS.get(message_type, PushKind.OTHER)
    device_ids = _ids(data, ("deviceId", "IMEI", "imei"), "CTWing")
    if not device_ids:
        raise FrameError("CTWing push without deviceId or IMEI")
    at = _epoch(data.get("timestamp"), "CTWing timestamp")
    message_id = _optional_text(data.get("messageId"), "CTWing messageId") or _optional_text(
        data.get("taskId"), "CTWing taskId"
    )
    packet = _serial(data.get("upPacketSN"), "CTWing upPacketSN")
    packet_data = _serial(data.get("upDataSN"), "CTWing upDataSN")
    if not message_id:
        parts = (device_ids[0], packet, packet_data, _millis(at))
        message_id = ":".join("" if p is None else str(p) for p in parts)
    payload = _object(data.get("payload"), "CTWing payload", form=text is None)
    appdata = payload.get("APPdata")
    raw = _b64(appdata, "CTWing APPdata") if appdata not in (None, "") else b""
    values = _values(_object(payload.get("serviceData"), "CTWing serviceData"), "CTWing serviceData")
    return PushMessage("ctwing", kind, message_id, device_ids, at, raw, values)


# OneNET message ``type`` -> kind (1 data point, 2 device online/offline, 7 LwM2M report).
ONENET_KINDS = {1: PushKind.DATA, 2: PushKind.EVENT, 7: PushKind.DATA}


@_parse_errors("OneNET")
def parse_onenet(body: bytes | str, token: str, content_type: str | None = None) -> PushMessage:
    """Verify and parse a OneNET push.

    The body is ``{"msg": <object or JSON string>, "msg_signature" | "signature": .., "nonce": ..}``
    (optionally ``"id"`` and ``"time"``, which the signature does not cover and which are therefore not
    used), as JSON or as form fields (``msg`` then is JSON text).
    The signature covers ``token + nonce + msg`` where ``msg`` is the member's text as sent (the string's
    value when ``msg`` is a string). ``msg`` (or each item when it is a list: the first item is used) carries
    ``dev_id``/``imei``, ``at`` (ms), ``type``, ``ds_id`` and ``value`` (base64 meter bytes, or an object
    of reading values). The signature is checked before anything in ``msg`` is trusted, and everything the
    message is known by (its id for deduplication, its time for the replay check) comes from ``msg``.
    """
    text, data = _load_object(body, "OneNET", content_type)
    signature = data.get("msg_signature") or data.get("signature")
    nonce = data.get("nonce")
    if not isinstance(signature, str) or not isinstance(nonce, str) or "msg" not in data:
        raise SecurityError("OneNET push without msg, nonce or signature")
    check_text(signature, "OneNET signature")
    if nonce:
        check_text(nonce, "OneNET nonce")
    if isinstance(data["msg"], str):  # always so in a form body
        signed, msg = data["msg"], None
    else:
        signed, msg = _raw_members(text)["msg"], data["msg"]
    try:  # a lone surrogate (a "\ud800" escape) is no UTF-8, so no platform can have signed it
        signed.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FrameError("OneNET msg is not valid Unicode") from exc
    verify_onenet_signature(token, nonce, signed, signature)
    if msg is None:
        msg = _json(signed, "OneNET msg")
    if isinstance(msg, list):
        if not msg:
            raise FrameError("OneNET msg is an empty list")
        msg = msg[0]
    if not isinstance(msg, Mapping):
        raise FrameError(f"OneNET msg is not an object but {_kind(msg)}")
    device_ids = _ids(msg, ("dev_id", "deviceName", "imei", "IMEI"), "OneNET")
    if not device_ids:
        raise FrameError("OneNET msg without dev_id or imei")
    stamp = msg.get("at", msg.get("time"))
    at = _epoch(stamp, "OneNET msg at")
    kind = PushKind.DATA
    if msg.get("type") is not None:
        kind_code = msg["type"]
        if not isinstance(kind_code, int) or isinstance(kind_code, bool):
            raise FrameError(f"OneNET msg type: expected an integer, got {_kind(kind_code)}")
        kind = ONENET_KINDS.get(kind_code, PushKind.OTHER)
    ds_id = _optional_text(msg.get("ds_id"), "OneNET ds_id")
    message_id = _optional_text(msg.get("id"), "OneNET msg id") or _optional_text(
        msg.get("msgId"), "OneNET msg msgId"
    )
    if not message_id:
        message_id = ":".join((device_ids[0], ds_id or "", str(_millis(at))))
    value = msg.get("value", msg.get("APPdata"))
    raw, values = b"", ()
    if isinstance(value, str):
        raw = _b64(value, "OneNET value") if value else b""
    elif isinstance(value, Mapping):
        values = _values(value, "OneNET value")
    elif isinstance(value, bool) or not isinstance(value, int | Decimal | None):
        raise FrameError(f"OneNET value: expected base64 text or an object, got {_kind(value)}")
    return PushMessage("onenet", kind, message_id, device_ids, at, raw, values)


# -- decoding ----------------------------------------------------------------------------------------------
def reading_value(name: str, value: object, what: str = "") -> Decimal | int | bool | Supply:
    """``value`` as the :class:`Reading` field ``name`` holds it, or :class:`FrameError` saying why it cannot
    be a reading at all.

    Numbers (integers, decimals, or their plain decimal text; no booleans, no exponent in text, no NaN or
    infinity) must fit the stored column (:data:`VALUE_PLACES`: ``|value| < 10 ** (16 - places)``, more
    decimals are rounded to the column's) and be non-negative unless :data:`SIGNED_VALUES` has them;
    ``purchase_count`` is an integer in ``0..2**31-1``; ``supply`` one of :class:`Supply`; ``battery_low`` a
    boolean, 0/1 or true/false/yes/no.
    """
    what = what or name
    if name == "supply":
        if isinstance(value, str):
            try:
                return Supply(value)
            except ValueError:
                pass
        raise FrameError(f"{what}: expected one of {', '.join(s.value for s in Supply)}, got {value!r:.40}")
    if name == "battery_low":
        if isinstance(value, bool):
            return value
        key = value.lower() if isinstance(value, str) else str(value) if value in (0, 1) else None
        if key in _BOOLEANS:
            return _BOOLEANS[key]
        raise FrameError(f"{what}: expected a boolean, got {_kind(value)} {value!r:.40}")
    if name == "purchase_count":
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise FrameError(f"{what}: expected an integer, got {_kind(value)} {value!r:.40}")
        if not 0 <= value <= MAX_PURCHASE_COUNT:
            raise FrameError(f"{what}: {str(value)[:40]} is outside 0..{MAX_PURCHASE_COUNT}")
        return value
    places = VALUE_PLACES.get(name)
    if places is None:
        raise ConfigError(f"{name} is not a reading value")
    number = _number(value, what)
    limit = 10 ** (NUMERIC_PRECISION - places)
    if not abs(number) < limit:
        exponent = NUMERIC_PRECISION - places
        raise FrameError(f"{what}: {_short(number)} is too large for a reading (|value| < 10^{exponent})")
    if number < 0 and name not in SIGNED_VALUES:
        raise FrameError(f"{what}: {_short(number)} is negative")
    if number.as_tuple().exponent < -places:
        number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return number


def _number(value: object, what: str) -> Decimal:
    if isinstance(value, bool):
        raise FrameError(f"{what}: expected a number, got a boolean")
    if isinstance(value, str):
        if not _NUMBER_TEXT.fullmatch(value):
            raise FrameError(f"{what}: {value[:40]!r} is not a plain decimal number")
        value = Decimal(value)
    elif isinstance(value, int | float):
        value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not isinstance(value, Decimal):
        raise FrameError(f"{what}: expected a number, got {_kind(value)}")
    if not value.is_finite():
        raise FrameError(f"{what}: {value} is not a finite number")
    return value


def _short(number: Decimal) -> str:
    text = str(number)
    return text if len(text) <= 40 else f"{text[:20]}..{text[-10:]}"


def _reading_from_values(meter_key: str, read_at: datetime, values: Mapping[str, object]) -> Reading:
    kwargs = {
        name: reading_value(name, value, f"pushed {name}")
        for name, value in values.items()
        if name in READING_FIELDS and value is not None
    }
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
