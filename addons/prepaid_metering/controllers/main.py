import functools
import logging

from odoo import http
from odoo.http import request

from prepaid_engine import push
from prepaid_engine.errors import EngineError

from ..models.ir_http import RAW_BODY
from ..models.prepaid_platform import refusal

_logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Prepaid-Token"
# Every push route: public (the platform authenticates by token or signature), no CSRF, no session, a body of
# at most push.MAX_BODY bytes (413 beyond), read raw before Odoo's form parser consumes it (RAW_BODY).
PUSH_ROUTE = {
    "type": "http",
    "auth": "public",
    "csrf": False,
    "save_session": False,
    RAW_BODY: push.MAX_BODY,
}


def _answer(status, payload):
    return request.make_json_response(payload, status=status)


def _refusing_engine_errors(endpoint):
    """The platform model answers every engine error it expects; one it did not expect is still an answer
    with a reason (4xx), logged, never a 500 that the platform would retry forever."""

    @functools.wraps(endpoint)
    def wrapper(self, *args, **kwargs):
        try:
            return endpoint(self, *args, **kwargs)
        except EngineError as exc:
            status, code = refusal(exc)
            _logger.warning("push %s refused (%s %s): %s", endpoint.__name__, status, code, exc)
            return _answer(status, {"error": code, "reason": str(exc)})

    return wrapper


class PrepaidPushController(http.Controller):
    """Push endpoints for carrier IoT platforms. Thin: find the platform by its route key, hand the raw body
    and its content type to the platform record (which authenticates, parses through the engine,
    deduplicates and stores), answer with the status and JSON it returns."""

    def _platform(self, kind, key):
        return request.env["prepaid.platform"]._get_by_route(kind, key)

    def _not_found(self, kind):
        reason = request.env._("No active %(kind)s platform behind this URL.", kind=kind)
        _logger.warning("push to %s refused (404 not_found): %s", kind, reason)
        return _answer(404, {"error": "not_found", "reason": reason})

    def _body(self):
        httprequest = request.httprequest
        return httprequest.get_data(), httprequest.headers.get("Content-Type")

    @http.route("/prepaid/push/ctwing/<string:key>", methods=["POST"], **PUSH_ROUTE)
    @_refusing_engine_errors
    def ctwing_push(self, key, **_kwargs):
        platform = self._platform("ctwing", key)
        if not platform:
            return self._not_found("ctwing")
        token = request.httprequest.headers.get(TOKEN_HEADER) or request.httprequest.args.get("token")
        body, content_type = self._body()
        return _answer(*platform._receive_ctwing(token, body, content_type=content_type))

    @http.route("/prepaid/push/onenet/<string:key>", methods=["GET", "POST"], **PUSH_ROUTE)
    @_refusing_engine_errors
    def onenet_push(self, key, **_kwargs):
        platform = self._platform("onenet", key)
        if not platform:
            return self._not_found("onenet")
        if request.httprequest.method == "GET":
            args = request.httprequest.args
            echo = platform._verify_onenet_url(args.get("msg"), args.get("nonce"), args.get("signature"))
            if echo is None:
                reason = request.env._("The OneNET signature does not match.")
                return _answer(403, {"error": "forbidden", "reason": reason})
            return request.make_response(echo, headers=[("Content-Type", "text/plain; charset=utf-8")])
        body, content_type = self._body()
        return _answer(*platform._receive_onenet(body, content_type=content_type))
