import logging

from odoo import http
from odoo.http import request
from werkzeug.exceptions import NotFound

_logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Prepaid-Token"


class PrepaidPushController(http.Controller):
    """Push endpoints for carrier IoT platforms. Thin: find the platform by its route key, hand the request
    to the platform record (which authenticates, deduplicates and stores), answer with what it says."""

    def _platform(self, kind, key):
        platform = request.env["prepaid.platform"]._get_by_route(kind, key)
        if not platform:
            raise NotFound()
        return platform

    @http.route(
        "/prepaid/push/ctwing/<string:key>",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def ctwing_push(self, key, **_kwargs):
        platform = self._platform("ctwing", key)
        token = request.httprequest.headers.get(TOKEN_HEADER) or request.httprequest.args.get("token")
        status, payload = platform._receive_ctwing(token, request.httprequest.get_data())
        return request.make_json_response(payload, status=status)

    @http.route(
        "/prepaid/push/onenet/<string:key>",
        type="http",
        auth="public",
        methods=["GET", "POST"],
        csrf=False,
        save_session=False,
    )
    def onenet_push(self, key, **_kwargs):
        platform = self._platform("onenet", key)
        if request.httprequest.method == "GET":
            args = request.httprequest.args
            echo = platform._verify_onenet_url(args.get("msg"), args.get("nonce"), args.get("signature"))
            if echo is None:
                return request.make_response("forbidden", status=403)
            return request.make_response(echo, headers=[("Content-Type", "text/plain; charset=utf-8")])
        status, payload = platform._receive_onenet(request.httprequest.get_data())
        return request.make_json_response(payload, status=status)
