"""What every blueprint's views share: fragments, query arguments, roles, the
CSRF-only form, links to other pages of a list, and the app-wide Jinja filters
(registered here, once, by `init_app`).

Pages of a result are `webapp.pagination.Page` (Flask-free, so services build
them); the values' formats are `webapp.formats`.
"""

import functools

from flask import abort, current_app, g, has_request_context, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

from . import formats, i18n

# The app's extensions: views exempt routes from CSRF with `csrf`, here rather
# than in the package root so that no view imports the root (which imports every view).
csrf = CSRFProtect()
htmx = Htmx()

# Who may change things (segments, events, RFM settings, imports, fields,
# mailings and triggers); everyone logged in reads.
EDITORS = ("admin", "marketer")


def wants_fragment():
    """Whether to answer with the fragment an htmx request swaps in, rather
    than the whole page (a boosted link or a history restore wants the page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request and not request.htmx.boosted


def int_arg(name, default=1, minimum=1, maximum=10**9):
    """A whole-number query argument, kept within [minimum, maximum]; garbage gives the default, never an error."""
    try:
        return min(max(minimum, int(request.args.get(name, default))), maximum)
    except (TypeError, ValueError):
        return default


def safe_path(target):
    """`target` when it is a path on this site, else None: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None


def get_or_404(model, *conditions):
    """The one row of `model` matching `conditions`; a 404 page when there is none."""
    row = model.get_or_none(*conditions)
    if row is None:
        abort(404)
    return row


# --- roles -------------------------------------------------------------------------


def has_role(*roles):
    """Whether the logged-in user has one of `roles`."""
    user = g.get("user")
    return user is not None and user.role in roles


def can_edit():
    """Whether the logged-in user may change things (an editor)."""
    return has_role(*EDITORS)


def role_required(*roles):
    """Allow the view only to users with one of `roles` (403 otherwise)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


class CsrfForm(FlaskForm):
    """CSRF only: the fields are read from the request by name and checked by the service."""


# --- templates ---------------------------------------------------------------------


def page_url(number):
    """This URL with its query string, on another page."""
    args = request.args.to_dict()
    args.pop("offset", None)
    args["page"] = number
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def local_time(value, fmt=formats.DATETIME_FORMAT):
    """A naive UTC datetime shown in the account time zone (TZ setting); `fmt` one of `formats.STYLES`."""
    return formats.local_time(value, fmt, tz=current_app.config.get("TZ"))


FILTERS = {
    "money": formats.money,
    "thousands": formats.thousands,
    "figure": formats.figure,
    "percent": formats.percent,
    "date": formats.date,
    "period": formats.period,
    "number": formats.number,
    "fixed": formats.fixed,
    "clock": formats.clock,
    "local_time": local_time,
    "custom_value": formats.custom_value,
    "duration": formats.duration,
    "label": formats.label,
}


# --- rate limits ---------------------------------------------------------------------


def rate_limiter(app):
    """The app's Flask-Limiter, made on first use: counts kept on the queue
    server's Redis (so every web process shares them), in memory while it is
    down or when there is none. The API limits requests per token with it, the
    sign-in page wrong passwords per account and per address."""
    limiter = app.extensions.get("segmento_limiter")
    if limiter is None:
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address

        limiter = Limiter(
            key_func=get_remote_address,
            storage_uri=app.config.get("REDIS_URL") or "memory://",
            headers_enabled=True,
            in_memory_fallback_enabled=True,
            swallow_errors=True,
            default_limits=[],
            key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "segmento",
        )
        limiter.init_app(app)
        app.extensions["segmento_limiter"] = limiter
    return limiter


def request_language():
    """The language of this request: the user's choice, else the browser's Accept-Language, else the
    account's default (None outside a request).

    Remembered for the request once the login wall has looked the user up: a page asks for it
    for every string and value it shows (about 200 times)."""
    if not has_request_context():
        return None
    code = g.get("language")
    if code is not None:
        return code
    user = g.get("user")
    code = i18n.supported(user.language) if user is not None else None
    if code is None:
        code = request.accept_languages.best_match(list(i18n.LANGUAGES))
    code = code or i18n.default_language()
    if "user" in g:
        g.language = code
    return code


def init_app(app):
    i18n.set_request_resolver(request_language)
    for name, function in FILTERS.items():
        app.add_template_filter(function, name)
    app.add_template_global(page_url, "page_url")

    @app.after_request
    def _vary_on_htmx(response):
        # One URL answers a page or, to htmx, a fragment: caches (and the
        # browser's Back) must keep the two apart.
        response.vary.add("HX-Request")
        return response
