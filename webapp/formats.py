"""How numbers, money, dates and stored codes read on the pages: the one place
the app formats values for people (the Jinja filters of `webapp.web` call these).

Flask-free, through Babel's CLDR data in the current language
(`webapp.i18n.current_locale()`): `20 000` / `20.000` / `20,000`, money in the
account currency (CURRENCY, an ISO code; VND has no minor unit) as
`3 500,00 ₽` / `3.500.000 ₫`, dates `04.12.2026` / `04/12/2026` / `2026-12-04`.
The time zone comes in as an argument.
"""

import datetime
import decimal

from babel import dates as babel_dates
from babel import numbers as babel_numbers

from . import settings
from .i18n import LANGUAGES, _, current_language, current_locale
from .i18n import lazy_gettext as _l
from .i18n import lazy_pgettext as _lp
from .localtime import zone

# How a date and a time of day read in each language (CLDR's short date is
# two-digit-year in ru/vi/en, and month-first in en: these are the forms users read and type).
DATE_PATTERNS = {"ru": "dd.MM.yyyy", "vi": "dd/MM/yyyy", "en": "yyyy-MM-dd"}
# A day of the year without it (a day chart's axis), in the same order as the date.
DAY_PATTERNS = {"ru": "dd.MM", "vi": "dd/MM", "en": "MM-dd"}
TIME_PATTERN = "HH:mm"
# The styles `local_time` takes: a date, a time of day, both, both with seconds.
STYLES = ("date", "time", "datetime", "seconds")
DATETIME_FORMAT = "datetime"


def date_pattern(code=None):
    """The CLDR pattern a date reads in (the current language by default)."""
    return DATE_PATTERNS.get(code or current_language(), DATE_PATTERNS["en"])


def money(cents, currency=None):
    """Integer cents in the account currency ('3 500,00 ₽', '3.500.000 ₫', '$3,500.00'; None: '—')."""
    if cents is None:
        return "—"
    amount = decimal.Decimal(int(cents)) / 100
    return babel_numbers.format_currency(amount, currency or settings.currency(), locale=current_locale())


def thousands(number):
    """A whole number with the locale's group separators ('1 234', '1.234', '1,234'); None counts as 0."""
    return babel_numbers.format_decimal(number or 0, locale=current_locale())


def figure(number):
    """A figure of a table, grouped as `thousands`; '—' when there is none."""
    return "—" if number is None else babel_numbers.format_decimal(number, locale=current_locale())


def percent(share, digits=1):
    """A share (0.0-1.0) as '12.3%' / '12,3 %' (`digits` decimals); '—' when there is none."""
    if share is None:
        return "—"
    locale = current_locale()
    pattern = locale.percent_formats[None].pattern  # the locale's own: '#,##0 %' in ru
    last_digit = pattern.rfind("0") + 1
    decimals = "." + "0" * digits if digits else ""
    return babel_numbers.format_percent(share, pattern[:last_digit] + decimals + pattern[last_digit:], locale=locale)


def local_time(value, fmt=DATETIME_FORMAT, tz=None):
    """A naive UTC datetime shown in the time zone `tz` (a name or tzinfo; None or unknown: UTC).

    `fmt` is one of STYLES. A date, having no time of day, is shown as it is; None is '—'.
    """
    if value is None:
        return "—"
    if isinstance(value, datetime.datetime):
        value = value.replace(tzinfo=datetime.UTC).astimezone(zone(tz)).replace(tzinfo=None)
    day = date_pattern()
    patterns = dict(zip(STYLES, (day, TIME_PATTERN, f"{day} {TIME_PATTERN}", f"{day} {TIME_PATTERN}:ss"), strict=True))
    if not isinstance(value, datetime.datetime):
        fmt = "date"
    return babel_dates.format_datetime(value, patterns[fmt], locale=current_locale())


def date(value):
    """A date (or the date of a datetime, as stored) in the current language; None is '—'."""
    if value is None:
        return "—"
    if isinstance(value, datetime.datetime):
        value = value.date()
    return babel_dates.format_date(value, date_pattern(), locale=current_locale())


def day(value):
    """A day without its year, as a day chart's axis labels it: 06.12 / 06/12 / 12-06."""
    return babel_dates.format_date(
        value, DAY_PATTERNS.get(current_language(), DAY_PATTERNS["en"]), locale=current_locale()
    )


def month(value):
    """A month on a chart's axis, as its reader abbreviates it: "Nov 2026", "нояб. 2026", "Tháng 11 2026"."""
    return babel_dates.format_date(value, "LLL yyyy", locale=current_locale())


def period(start, end, grain):
    """A period of the analytics, [start, end) in local days, as its reader names it: a day's
    date, a week's first and last days, a month and its year ("декабрь 2026")."""
    if grain == "month":
        return babel_dates.format_date(start, "LLLL yyyy", locale=current_locale())
    if grain == "week":
        return f"{date(start)} – {date(end - datetime.timedelta(days=1))}"
    return date(start)


def number(value):
    """A decimal number as users read it ('2,5' in ru and vi), without trailing zeros."""
    value = decimal.Decimal(value).normalize() if not isinstance(value, int) else value
    return babel_numbers.format_decimal(value, "#,##0.######", locale=current_locale())


def fixed(value, digits=1):
    """A number with `digits` decimals ('2,5' in ru and vi); None is '—'."""
    if value is None:
        return "—"
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return babel_numbers.format_decimal(value, pattern, locale=current_locale())


def clock(value):
    """The time of day of a (local) datetime, 'HH:mm'; None is '—'."""
    return "—" if value is None else babel_dates.format_time(value, TIME_PATTERN, locale=current_locale())


def custom_value(value):
    """A custom field value for display: '—' when empty."""
    if value is None or value == "":
        return "—"
    if value is True:
        return _("Yes")
    if value is False:
        return _("No")
    if isinstance(value, decimal.Decimal):
        return number(value)
    if isinstance(value, datetime.date):
        return date(value)
    return str(value)


def duration(seconds):
    """A length of time in words: '42 s', '3 min 5 s', '2 h 10 min' (None: '—')."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return _("%(s)s s", s=seconds)
    if seconds < 3600:
        return _("%(m)s min %(s)s s", m=seconds // 60, s=seconds % 60)
    return _("%(h)s h %(m)s min", h=seconds // 3600, m=(seconds % 3600) // 60)


# The words of each stored code, translated when read: label() runs for every
# row of a list (the customer list's 50 types), and building the whole table
# in the current language for each call cost 50 µs of the 90 µs a row took.
_LABELS = {
    "contact": _l("Contact"),
    "company": _l("Company"),
    "male": _l("Male"),
    "female": _l("Female"),
    "open": _lp("deal stage", "Open"),
    "won": _lp("deal stage", "Won"),
    "lost": _lp("deal stage", "Lost"),
    "email": _l("Email"),
    "sms": _l("SMS"),
    "sent": _l("Sent"),
    "delivered": _l("Delivered"),
    "opened": _l("Opened"),
    "clicked": _l("Clicked"),
    "bounced": _l("Bounced"),
    "unsubscribed": _l("Unsubscribed"),
    "string": _lp("field type", "Text"),
    "integer": _l("Whole number"),
    "decimal": _l("Decimal number"),
    "date": _l("Date"),
    "boolean": _l("Yes / no"),
    "enum": _l("One of a list"),
    "customer": _l("Customers"),
    "order": _l("Orders"),
    "deal": _l("Deals"),
    "admin": _lp("role", "Administrator"),
    "marketer": _lp("role", "Marketer"),
    "manager": _lp("role", "Manager"),
}


def label(value):
    """The words users see for a stored code (type, gender, stage kind, channel, message kind)."""
    words = _LABELS.get(value)
    if words is not None:
        return str(words)
    return LANGUAGES.get(value, value)  # a language is named in its own words
