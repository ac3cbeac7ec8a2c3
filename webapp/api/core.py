"""What every API view shares: the blueprint, token auth, roles, JSON bodies,
cursors and the JSON forms of values.

Cursors are keyset positions (the last id a page returned), opaque to
clients (base64 of a small JSON object): rows inserted or deleted while a
client pages never make it skip or repeat a row that stays.
"""

import base64
import binascii
import datetime
import decimal
import json
import zoneinfo

from flask import Blueprint, current_app, g, jsonify, request

from .. import settings
from ..accounts.service import authenticate
from ..audit import service as audit
from ..i18n import _
from ..models import ROLES
from ..web import EDITORS
from .errors import ApiError, bad_request

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Endpoints a request may reach without a token.
OPEN_ENDPOINTS = {"api.openapi_json"}

READ_ROLES = ROLES
WRITE_ROLES = EDITORS

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


# --- auth ------------------------------------------------------------------------


def bearer_secret():
    header = request.headers.get("Authorization", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


@bp.before_request
def _authenticate():
    # The API's messages are part of its machine contract: English, whatever
    # the client's Accept-Language or the token owner's language (webapp.web.request_language).
    g.language = "en"
    g.api_token = None
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    secret = bearer_secret()
    token = authenticate(secret) if secret else None
    if token is None:
        message = (
            _("Send an API token: “Authorization: Bearer <token>”.")
            if not secret
            else _("The API token is unknown or revoked.")
        )
        raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="segmento"'})
    g.api_token = token
    g.user = token.user
    audit.acting(token.user, request.remote_addr)
    return None


def require_role(*roles):
    if g.user is None or g.user.role not in roles:
        raise ApiError(
            403,
            "forbidden",
            _(
                "Your role (%(role)s) does not allow this; it needs: %(roles)s.",
                role=g.user.role if g.user else "-",
                roles=", ".join(roles),
            ),
        )


def require_write():
    require_role(*WRITE_ROLES)


# --- request bodies -----------------------------------------------------------------


def _reject_constant(name):
    raise ValueError(name)


def json_body(decimals=False):
    """The request body as a JSON object (dict); 400/413/415 otherwise.

    `decimals`: numbers with a fraction come as Decimal (exact money).
    """
    limit = current_app.config.get("API_MAX_BODY_BYTES", 1024 * 1024)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413,
            "too_large",
            _("The request body is %(n)s bytes; the API accepts at most %(max)s.", n=request.content_length, max=limit),
        )
    mimetype = request.mimetype or ""
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            _("Send the body as JSON (Content-Type: application/json), not %(t)s.", t=mimetype),
        )
    request.max_content_length = limit  # also bounds a body sent without Content-Length
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise ApiError(413, "too_large", _("The request body is larger than %(max)s bytes.", max=limit))
    if not raw.strip():
        raise bad_request(_("The request needs a JSON object as its body."))
    try:
        text = raw.decode("utf-8-sig")
        data = json.loads(text, parse_constant=_reject_constant, parse_float=decimal.Decimal if decimals else float)
    except UnicodeDecodeError:
        raise bad_request(_("The body is not UTF-8 text.")) from None
    except (ValueError, RecursionError) as exc:
        raise bad_request(_("The body is not valid JSON: %(error)s", error=str(exc)[:200])) from None
    if not isinstance(data, dict):
        raise bad_request(_("The body must be a JSON object ({…})."))
    path = _nul_path(data)
    if path is not None:
        # Well-formed JSON, but no text we store or compare may hold NUL.
        raise ApiError(
            422,
            "invalid",
            _("%(field)s: the text contains a NUL character", field=path or "body"),
            [{"field": path or "body", "message": _("the text contains a NUL character")}],
        )
    return data


def _nul_path(value, path=""):
    """Where in a JSON value a string (or key) holds a NUL character, or None."""
    stack = [(value, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return path or "body"
                stack.append((item, where))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
    return None


def text_param(value):
    """A path or query value we look up by: None when no stored value could equal it."""
    if value is None or "\x00" in value or len(value) > 255:
        return None
    return value


# --- query parameters ------------------------------------------------------------------


def limit_arg(default=DEFAULT_LIMIT, maximum=MAX_LIMIT):
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= maximum:
        raise bad_request(_("“limit” must be a whole number from 1 to %(max)s.", max=maximum), {"parameter": "limit"})
    return value


def encode_cursor(position):
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_arg(name="cursor"):
    """The keyset position in the `cursor` parameter (an int id), or None for the first page."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        value = data["after"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise bad_request(
            _("The cursor is not one this API gave out; start again without it."), {"parameter": name}
        ) from None
    return value


def page(rows, limit, key):
    """(the first `limit` rows, next_cursor) of rows fetched with limit + 1."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor({"after": key(rows[-1])})
    return rows, None


def account_tz():
    try:
        return zoneinfo.ZoneInfo(settings.tz())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def datetime_arg(name):
    from ..values import parse_datetime

    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_datetime(raw, account_tz())
    except (ValueError, OverflowError) as exc:
        raise bad_request(_("“%(name)s”: %(error)s", name=name, error=str(exc)), {"parameter": name}) from None


# --- JSON forms of values ------------------------------------------------------------------


def iso(value):
    """A naive UTC datetime (or SQLite's text form of one) as ISO 8601 with Z."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) >= 19 and value[10] in " T" and (len(value) == 19 or value[19] == "."):
            return value[:10] + "T" + value[11:19] + "Z"  # SQLite's text of a naive UTC datetime
        value = datetime.datetime.fromisoformat(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    return value.isoformat()


def iso_date(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value[:10]
    return value.isoformat()


def json_reply(body, status=200, location=None):
    """`body` as JSON (jsonify) with `status`, and the Location of what it made or started."""
    response = jsonify(body)
    response.status_code = status
    if location:
        response.headers["Location"] = location
    return response


def json_response(data, status=200):
    """A JSON answer, compact and in UTF-8 (names in any alphabet stay short)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return current_app.response_class(body, status=status, mimetype="application/json")


def money(cents):
    """Integer cents as a JSON number in currency units (exact for any real amount)."""
    if cents is None:
        return None
    return int(cents) // 100 if int(cents) % 100 == 0 else float(decimal.Decimal(int(cents)) / 100)


def number(value):
    if value is None:
        return None
    value = decimal.Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)
