"""API errors: every one is JSON `{"error": {"code", "message", "details"}}`.

400 malformed, 401 no or bad token, 403 role too low, 404, 405, 409 conflict,
413 too large, 422 well-formed but invalid, 429 rate limit, 503 queue down.
Nothing a client sends may end in a 500: views raise ApiError for what they
refuse, and anything else is caught here and answered in the same shape.
"""

import logging

from flask import jsonify
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException

from ..errors import BUSY_RETRY_SECONDS, busy_message
from ..i18n import _

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status, code, message, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(status, code, message, details=None, headers=None):
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def bad_request(message, details=None):
    return ApiError(400, "bad_request", message, details)


def invalid(message, details=None):
    return ApiError(422, "invalid", message, details)


def not_found(message):
    return ApiError(404, "not_found", message)


def conflict(message, details=None):
    return ApiError(409, "conflict", message, details)


# The code and a generic message for HTTP errors raised outside our views
# (routing, body size, rate limit).
HTTP_CODES = {
    400: ("bad_request", lambda: _("The request is malformed.")),
    401: ("unauthorized", lambda: _("A valid API token is required.")),
    403: ("forbidden", lambda: _("Your role does not allow this action.")),
    404: ("not_found", lambda: _("There is nothing at this address.")),
    405: ("method_not_allowed", lambda: _("This method is not allowed here.")),
    413: ("too_large", lambda: _("The request body is larger than the API accepts.")),
    415: ("unsupported_media_type", lambda: _("Send the body as JSON (Content-Type: application/json).")),
    429: ("rate_limited", lambda: _("Too many requests with this token; slow down and retry later.")),
}


def http_error_response(exc):
    code, message = HTTP_CODES.get(exc.code, ("error", lambda: exc.description or exc.name))
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    if exc.code == 429:
        details = {"limit": str(getattr(exc, "description", ""))}
        # Flask-Limiter builds a response carrying Retry-After and X-RateLimit-*
        original = exc.get_response()
        for key in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            if key in original.headers:
                headers[key] = original.headers[key]
        return error_response(429, code, message(), details, headers)
    return error_response(exc.code or 500, code, message(), None, headers)


def register(bp):
    @bp.errorhandler(ApiError)
    def _api_error(exc):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @bp.errorhandler(HTTPException)
    def _http_error(exc):
        return http_error_response(exc)

    @bp.errorhandler(Exception)
    def _unexpected(exc):
        try:
            from redis.exceptions import RedisError
        except ImportError:  # pragma: no cover
            RedisError = ()
        if RedisError and isinstance(exc, RedisError):
            log.exception("queue server unavailable")
            return error_response(
                503,
                "unavailable",
                _("The queue server is not reachable; the change is saved, computing will catch up when it is back."),
            )
        if isinstance(exc, MaxConnectionsExceeded):
            log.warning("no free database connection: %s", exc)
            return error_response(503, "busy", busy_message(), None, {"Retry-After": str(BUSY_RETRY_SECONDS)})
        log.exception("API error")
        return error_response(
            500, "internal_error", _("Something went wrong on the server. The error has been logged.")
        )
