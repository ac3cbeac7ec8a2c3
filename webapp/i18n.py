"""gettext for every user-facing string, in the language of whoever reads it.

A thin layer of our own over Babel (`babel.support.Translations`, CLDR plural
rules), not Flask-Babel: the engine, services, jobs and the CLI translate too
and import no Flask, so the language in force is a context variable that the
web toolkit (`webapp.web`) fills per request (the user's choice, then
`Accept-Language`, then `DEFAULT_LANGUAGE`) and jobs set with `language(code)`.

Catalogues: `webapp/translations/<lang>/LC_MESSAGES/messages.po`, compiled to
`.mo` by `make translations` (which `make run`, `serve` and `test` do first).
A `.mo` missing or older than its `.po` (a fresh clone, a catalogue just
edited) is compiled in memory from the `.po`, so the app never shows stale text.
"""

import contextlib
import contextvars
import functools
import io
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations

from . import settings

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
# The languages Segmento speaks, each in its own words (the account page's choice).
LANGUAGES = {"en": "English", "ru": "Русский", "vi": "Tiếng Việt"}

_language = contextvars.ContextVar("segmento_language", default=None)
# Set by the web toolkit: the language of the request in progress (None outside one).
_request_language = None


def set_request_resolver(resolver):
    """Name the function that gives the current request's language (None when there is no request)."""
    global _request_language
    _request_language = resolver


def supported(code):
    """`code` when Segmento speaks it (its language part: 'ru-RU' is 'ru'), else None."""
    if not code:
        return None
    code = str(code).replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else None


def default_language():
    """The account's language: DEFAULT_LANGUAGE (a supported code), else English."""
    return supported(settings.default_language()) or "en"


def current_language():
    """The language strings are translated into now: `language()`'s, the request's, else the default."""
    code = _language.get()
    if code is None and _request_language is not None:
        code = _request_language()
    return code or default_language()


def current_locale():
    """The Babel `Locale` of `current_language()` (formats, plural rules, first day of the week)."""
    return _locale(current_language())


@functools.cache
def _locale(code):
    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


@contextlib.contextmanager
def language(code):
    """Translate into `code` (unsupported or empty: the default) inside the block: jobs, emails, customer pages."""
    token = _language.set(supported(code) or default_language())
    try:
        yield
    finally:
        _language.reset(token)


def _compiled(code):
    """The catalogue of `code`: its .mo when up to date, else compiled from its .po now."""
    folder = TRANSLATIONS / code / "LC_MESSAGES"
    po, mo = folder / "messages.po", folder / "messages.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain="messages")
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=code)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as pybabel compile does
    buffer.seek(0)
    return Translations(buffer, domain="messages")


_catalogues = {}


def translations(code=None):
    """The (cached) `Translations` of `code` (default: the current language)."""
    code = code or current_language()
    if code not in _catalogues:
        _catalogues[code] = NullTranslations() if code == "en" else _compiled(code)
    return _catalogues[code]


def reload():
    """Forget the loaded catalogues (after compiling or editing them)."""
    _catalogues.clear()


def gettext(message):
    return translations().ugettext(message)


def plural(singular, plural_, n):
    return translations().ungettext(singular, plural_, n)


def context_gettext(context, message):
    return translations().upgettext(context, message)


def context_plural(context, singular, plural_, n):
    return translations().unpgettext(context, singular, plural_, n)


def _(message, /, **params):
    text = gettext(message)
    return text % params if params else text


def ngettext(singular, plural_, n, /, **params):
    params.setdefault("num", n)
    return plural(singular, plural_, n) % params


def pgettext(context, message, /, **params):
    """`_()` with a context, for a word that reads differently in two places ("Open" a page, an "Open" deal)."""
    text = context_gettext(context, message)
    return text % params if params else text


def npgettext(context, singular, plural_, n, /, **params):
    params.setdefault("num", n)
    return context_plural(context, singular, plural_, n) % params


def N_(message):
    """Marks `message` for the catalogues and returns it as it is: for messages
    kept as data and translated where they are shown (`_(message)` there)."""
    return message


def lazy_gettext(message, **params):
    """`_()` translated when it is read, not when it is written: strings made at import time (form labels, columns)."""
    return LazyProxy(_, message, enable_cache=False, **params)


def lazy_pgettext(context, message, **params):
    """`pgettext()` translated when it is read."""
    return LazyProxy(pgettext, context, message, enable_cache=False, **params)


def init_app(app):
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(
        gettext, plural, newstyle=True, pgettext=context_gettext, npgettext=context_plural
    )
    app.add_template_global(current_language, "current_language")
