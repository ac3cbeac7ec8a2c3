"""Parsing of typed values from text: one set of rules for import, API and UI.

Each parser returns the value or raises ValueError with a message a person
can act on. Blank text is None for every type.
"""

import datetime
import decimal
import functools
import re
import zoneinfo

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


# --- contact details -----------------------------------------------------------------

# The usual shape of an address: a local part of RFC 5322 "atext" and dots, one
# @, and a domain of at least two labels (letters of any alphabet, digits,
# hyphens), ending in a top-level domain of letters. Quoted local parts and
# IP-literal domains are legal but not what customer data holds: refused.
_EMAIL = re.compile(
    r"^(?!\.)(?!.*\.\.)[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u00a0-\uffff]{1,64}(?<!\.)@"
    r"(?=.{1,253}$)(?:(?!-)[\w\-]{1,63}(?<!-)\.)+(?:[^\W\d_]{1,63}|xn--[A-Za-z0-9\-]{1,59})$"
)


def parse_email(text):
    """An email address, trimmed; ValueError when it cannot be one ("olga@",
    "broken@@x", "name example.com"). Only its form is checked, not whether
    the mailbox exists."""
    if blank(text):
        return None
    value = str(text).strip()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError(_("“%(text)s” is not an email address (expected name@example.com)", text=value))
    return value


_PHONE_CHARS = re.compile(r"^\+?[0-9 ().\-/]+$")
_PHONE_SEPARATORS = str.maketrans("", "", "+ ().-/")


@functools.cache
def _regions():
    """{folded country name or code: ISO 3166 region}: the names in English,
    Russian and Vietnamese (CLDR, through Babel) and the two-letter codes."""
    from babel import Locale

    from .text import fold

    regions = {}
    for language in ("en", "ru", "vi"):
        for code, name in Locale.parse(language).territories.items():
            if len(code) == 2 and code.isalpha():
                regions[fold(name)] = code
                regions[fold(code)] = code
    return regions


def region_of(country):
    """The ISO 3166 region a country cell names ("Россия", "Vietnam", "VN"), or None."""
    if blank(country):
        return None
    from .text import fold

    return _regions().get(fold(str(country).strip()))


def parse_phone(text, country=None):
    """A phone number in E.164 ("+79121234567") when its country is known: it
    starts with + or 00, or `country` (a country cell) names one. Without a
    known country it is kept as written. ValueError when it is not a phone
    number (letters, too few or too many digits, not a number of its country)."""
    if blank(text):
        return None
    import phonenumbers

    value = str(text).strip()
    # once _PHONE_CHARS has matched, every character is an ASCII digit or a separator
    digits = value.translate(_PHONE_SEPARATORS) if len(value) <= 40 and _PHONE_CHARS.match(value) else ""
    if not 5 <= len(digits) <= 15:
        raise ValueError(_("“%(text)s” is not a phone number (expected digits, e.g. +7 912 345-67-89)", text=value))
    region = region_of(country)
    international = value.startswith(("+", "00"))
    if not international and region is None:
        return value
    shape = None
    if international:
        if value[0] == "0":
            digits = digits[2:]
        shape = _e164_shape(digits)
        possible = _POSSIBLE_E164.get(shape)
        if possible is not None:
            if possible:
                return "+" + digits
            raise ValueError(
                _("“%(text)s” is not a phone number: wrong number of digits for its country code", text=value)
            )
    try:
        number = phonenumbers.parse("+" + value[2:] if value.startswith("00") else value, region)
    except phonenumbers.NumberParseException:
        number = None
    possible = number is not None and phonenumbers.is_possible_number(number)
    if shape is not None:
        _POSSIBLE_E164[shape] = possible
    if not possible:
        if international:
            raise ValueError(
                _("“%(text)s” is not a phone number: wrong number of digits for its country code", text=value)
            )
        raise ValueError(_("“%(text)s” is not a phone number in %(country)s", text=value, country=str(country).strip()))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Issue 19: phonenumbers.parse is the dearest call of a customer import (~15 µs
# a phone). For the digits after "+" or "00", written only with ASCII digits
# and our separators (so no letters, no extension), phonenumbers (read for
# 9.0.43) ignores the separators; takes as calling code the first 1 to 3
# digits that are one; leaves the rest, the national number, as it is when
# the code's national_prefix_for_parsing does not match at its start; and
# is_possible_number then looks only at that number's length against the
# code's metadata. So the answer depends only on (calling code, length):
# learnt from phonenumbers the first time, and then the result is "+" and
# the digits. Anything else (a leading 0, a prefix that could be stripped)
# still asks phonenumbers. tests/test_values_phone_differential.py keeps the
# old function and compares, so an upgrade that breaks the argument fails it.
_POSSIBLE_E164 = {}


def _e164_shape(digits):
    """(calling code, length of the national number) of the digits after "+",
    or None when the shortcut does not apply."""
    if len(digits) <= 2 or digits[0] == "0":
        return None
    import phonenumbers

    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    known, prefix = _national_prefix(code)
    if not known or (prefix is not None and prefix.match(digits[size:])):
        return None
    return code, len(digits) - size


@functools.cache
def _national_prefix(code):
    """(metadata known, compiled national_prefix_for_parsing or None) of a calling code."""
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    if meta is None:
        return False, None
    return True, re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None


@functools.cache
def _national_numbers():
    """(calling code, national prefix, national number pattern) of every region
    phonenumbers knows (read once: about half a second)."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        meta = PhoneMetadata.metadata_for_region(region)
        pattern = meta.general_desc.national_number_pattern if meta and meta.general_desc else None
        if pattern:
            found.append((meta.country_code, meta.national_prefix or "", re.compile(pattern)))
    return found


def phone_search_forms(text):
    """How a phone typed in a search box may be stored, for a text of phone
    characters with 5 to 15 digits (else None): (prefixes, numbers).

    Phones are stored in E.164 (`parse_phone`), or as written when their country
    was unknown. Prefixes: the digits, and "+" with them ("+7 912 345" starts
    +7912345..., "00 7 912" is +7912...). Numbers: the E.164 numbers the digits
    make as a whole national number of some country, with or without its trunk
    prefix ("8 (912) 345-67-89" and "912 345 67 89" are +79123456789 in Russia).
    """
    value = (text or "").strip()
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(value) > 40 or not _PHONE_CHARS.match(value) or not 5 <= len(digits) <= 15:
        return None
    international = digits[2:] if value.startswith("00") else digits if value.startswith("+") else None
    prefixes = sorted({digits, "+" + (international or digits)})
    numbers = set()
    if international is None:
        for code, trunk, pattern in _national_numbers():
            for national in {digits, digits[len(trunk) :] if trunk and digits.startswith(trunk) else digits}:
                if pattern.fullmatch(national):
                    numbers.add(f"+{code}{national}")
    return prefixes, sorted(numbers)


_ZONES = {}


def parse_time_zone(text):
    """An IANA time zone name ("Europe/Moscow", any letter case) as spelled in
    the zone database; None for an empty cell; ValueError naming the value otherwise."""
    if blank(text):
        return None
    if not _ZONES:
        _ZONES.update({name.casefold(): name for name in zoneinfo.available_timezones()})
    name = _ZONES.get(str(text).strip().casefold())
    if name is None:
        raise ValueError(
            _("“%(v)s” is not a time zone name; use one such as Europe/Moscow or Asia/Ho_Chi_Minh", v=str(text).strip())
        )
    return name
