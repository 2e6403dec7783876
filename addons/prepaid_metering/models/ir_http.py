import logging

import werkzeug.exceptions
from odoo import models
from odoo.http import request

_logger = logging.getLogger(__name__)

# Routing key of the push routes (controllers/main.py): keep the raw request body, of at most this many bytes.
RAW_BODY = "prepaid_raw_body"


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _pre_dispatch(cls, rule, args):
        """Read the raw body of a :data:`RAW_BODY` route before Odoo parses the request's form: a platform
        that posts its JSON as ``application/x-www-form-urlencoded`` would otherwise leave the endpoint
        nothing to read (the form parser consumes the body) and the signature nothing to check. Werkzeug
        parses the form from the cached bytes afterwards.

        A body over the route's limit is answered 413 with a JSON reason, whether it announces its length
        (werkzeug refuses it before reading) or comes chunked (werkzeug stops reading one byte past the
        limit, which is still too large)."""
        result = super()._pre_dispatch(rule, args)
        limit = rule.endpoint.routing.get(RAW_BODY)
        if limit:
            httprequest = request.httprequest
            httprequest.max_content_length = limit + 1
            try:
                size = len(httprequest.get_data(cache=True))
            except werkzeug.exceptions.RequestEntityTooLarge:
                size = None
            if size is None or size > limit:
                reason = request.env._("The body is larger than the limit of %(limit)s bytes.", limit=limit)
                _logger.warning("push to %s refused (413 too_large): %s", rule.rule, reason)
                werkzeug.exceptions.abort(
                    request.make_json_response({"error": "too_large", "reason": reason}, status=413)
                )
        return result
