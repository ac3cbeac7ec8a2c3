"""Parsing of typed values from text: one set of rules for import, API and UI.

Each parser returns the value or raises ValueError with a message a person
can act on. Blank text is None for every type.
"""

import datetime
import decimal
import re

from .i18n import LANGUAGES, _, supported

TRUE_WORDS = {"true", "1", "yes", "y", "да", "д", "có", "x"}
FALSE_WORDS = {"false", "0", "no", "n", "нет", "н", "không"}

# Day first, as dates are typed in ru (04.12.2026) and vi (04/12/2026).
_DMY = re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})$")


def blank(text):
    return text is None or (isinstance(text, str) and not text.strip())


def parse_date(text):
    """A date as YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY."""
    if blank(text):
        return None
    if isinstance(text, datetime.datetime):
        return text.date()
    if isinstance(text, datetime.date):
        return text
    text = str(text).strip()
    try:
        match = _DMY.match(text)
        if match:
            day, month, year = map(int, match.groups())
            return datetime.date(year, month, day)
        return datetime.date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(_("“%(text)s” is not a date (use YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY)", text=text)) from None


def parse_datetime(text, tz=None):
    """A datetime (ISO 8601, or a date alone meaning midnight) as naive UTC.

    A value without an offset is taken in the account time zone `tz`
    (a zoneinfo.ZoneInfo; None means UTC).
    """
    if blank(text):
        return None
    if isinstance(text, datetime.datetime):
        value = text
    else:
        text = str(text).strip()
        match = _DMY.match(text.split(" ")[0])
        try:
            if match:
                day, month, year = map(int, match.groups())
                rest = text[len(match.group(0)) :].strip()
                value = datetime.datetime(year, month, day)
                if rest:
                    t = datetime.time.fromisoformat(rest)
                    value = value.replace(hour=t.hour, minute=t.minute, second=t.second)
            else:
                value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                _("“%(text)s” is not a date and time (use ISO 8601, e.g. 2025-03-08 14:30)", text=text)
            ) from None
    if value.tzinfo is None:
        if tz is None:
            return value
        value = value.replace(tzinfo=tz)
    return value.astimezone(datetime.UTC).replace(tzinfo=None)


def parse_decimal(text):
    """A decimal number with '.' or ',' as the decimal mark; spaces group digits."""
    if blank(text):
        return None
    if isinstance(text, (int, decimal.Decimal)):
        return decimal.Decimal(text)
    if isinstance(text, float):
        return decimal.Decimal(repr(text))
    cleaned = str(text).strip().replace("\u00a0", "").replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = decimal.Decimal(cleaned)
    except decimal.InvalidOperation:
        raise ValueError(_("“%(text)s” is not a number", text=text)) from None
    if not value.is_finite():
        raise ValueError(_("“%(text)s” is not a number", text=text))
    return value


def parse_integer(text):
    value = parse_decimal(text)
    if value is None:
        return None
    if value != value.to_integral_value():
        raise ValueError(_("“%(text)s” is not a whole number", text=text))
    return int(value)


def parse_money_cents(text):
    """Money as integer cents; more than two decimals is an error, not rounded."""
    value = parse_decimal(text)
    if value is None:
        return None
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError(_("“%(text)s” has more than two decimals", text=text))
    return int(cents)


def parse_language(text):
    """A customer's language: a code Segmento speaks ('ru', 'RU', 'ru-RU' and 'ru_RU' are 'ru')."""
    if blank(text):
        return None
    code = supported(str(text).strip())
    if code is None:
        raise ValueError(
            _("“%(text)s” is not a language Segmento speaks (use %(codes)s)", text=text, codes=", ".join(LANGUAGES))
        )
    return code


def parse_bool(text):
    """true/false, 1/0, yes/no, да/нет (any case)."""
    if blank(text):
        return None
    if isinstance(text, bool):
        return text
    word = str(text).strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(_("“%(text)s” is not yes or no (use true/false, 1/0, yes/no, да/нет)", text=text))
