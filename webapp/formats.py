"""How numbers, money, dates and stored codes read on the pages: the one place
the app formats values for people (the Jinja filters of `webapp.web` call these).

Flask-free: the time zone comes in as an argument. Formatting for the user's
locale (Babel) replaces these bodies, not their callers.
"""

import datetime
import decimal

from .i18n import _
from .localtime import zone

DATETIME_FORMAT = "%Y-%m-%d %H:%M"


def money(cents):
    """Integer cents as '1,234.50' (None: '—')."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}.{rest:02d}"


def thousands(number):
    """A whole number with thousands separators ('1,234'); None counts as 0."""
    return f"{number or 0:,}"


def figure(number):
    """A figure of a table: '1,234'; '—' when there is none."""
    return "—" if number is None else f"{number:,}"


def percent(share):
    """A share (0.0-1.0) as '12.3%'; '—' when there is none."""
    return "—" if share is None else f"{share * 100:.1f}%"


def local_time(value, fmt=DATETIME_FORMAT, tz=None):
    """A naive UTC datetime shown in the time zone `tz` (a name or tzinfo; None or unknown: UTC).

    A date, having no time of day, is shown as it is; None is '—'.
    """
    if value is None:
        return "—"
    if isinstance(value, datetime.datetime):
        value = value.replace(tzinfo=datetime.UTC).astimezone(zone(tz))
    return value.strftime(fmt)


def custom_value(value):
    """A custom field value for display: '—' when empty."""
    if value is None or value == "":
        return "—"
    if value is True:
        return _("Yes")
    if value is False:
        return _("No")
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime.date):
        return value.isoformat()
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


def label(value):
    """The words users see for a stored code (type, gender, stage kind, channel, message kind)."""
    labels = {
        "contact": _("Contact"),
        "company": _("Company"),
        "male": _("Male"),
        "female": _("Female"),
        "open": _("Open"),
        "won": _("Won"),
        "lost": _("Lost"),
        "email": _("Email"),
        "sms": _("SMS"),
        "sent": _("Sent"),
        "delivered": _("Delivered"),
        "opened": _("Opened"),
        "clicked": _("Clicked"),
        "bounced": _("Bounced"),
        "unsubscribed": _("Unsubscribed"),
        "string": _("Text"),
        "integer": _("Whole number"),
        "decimal": _("Decimal number"),
        "date": _("Date"),
        "boolean": _("Yes / no"),
        "enum": _("One of a list"),
        "customer": _("Customers"),
        "order": _("Orders"),
        "deal": _("Deals"),
    }
    return labels.get(value, value)
