"""gettext for every user-facing string.

No catalogue ships yet; `_()` returns the English text. A translation is a
`.mo` file away without touching code.
"""

import gettext as _gettext

_translations = _gettext.NullTranslations()


def _(message, **params):
    text = _translations.gettext(message)
    return text % params if params else text


def ngettext(singular, plural, n, **params):
    params.setdefault("num", n)
    return _translations.ngettext(singular, plural, n) % params


def init_app(app):
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(_translations.gettext, _translations.ngettext, newstyle=True)
