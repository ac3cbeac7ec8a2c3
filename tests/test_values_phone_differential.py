"""parse_phone against the version before its E.164 shortcut (issue 19): the
same stored value or the same error message for every input, so imports
reject and normalise exactly as before. Each input is parsed twice: the
first time may teach the shortcut a (calling code, length) shape, the
second answers from it."""

import re

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.values import blank, parse_phone, region_of

_OLD_PHONE_CHARS = re.compile(r"^\+?[0-9 ().\-/]+$")


def old_parse_phone(text, country=None):
    """webapp.values.parse_phone as it was before the shortcut (commit 0b38175), gettext aside."""
    if blank(text):
        return None
    value = str(text).strip()
    digits = sum(ch.isdigit() for ch in value)
    if len(value) > 40 or not _OLD_PHONE_CHARS.match(value) or not 5 <= digits <= 15:
        raise ValueError(f"“{value}” is not a phone number (expected digits, e.g. +7 912 345-67-89)")
    region = region_of(country)
    international = value.startswith(("+", "00"))
    if not international and region is None:
        return value
    try:
        number = phonenumbers.parse("+" + value[2:] if value.startswith("00") else value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        if international:
            raise ValueError(f"“{value}” is not a phone number: wrong number of digits for its country code")
        raise ValueError(f"“{value}” is not a phone number in {str(country).strip()}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def outcome(parse, text, country):
    try:
        return "value", parse(text, country)
    except Exception as exc:  # any exception: its type and message must be the same too
        return type(exc).__name__, str(exc)


def assert_same(cases):
    differ = []
    for _pass in range(2):
        for text, country in cases:
            new, old = outcome(parse_phone, text, country), outcome(old_parse_phone, text, country)
            if new != old:
                differ.append((text, country, new, old))
    assert not differ, differ[:20]


COUNTRIES = [None, "", "RU", "Россия", "Russia", "VN", "Vietnam", "Việt Nam", "Вьетнам"]
COUNTRIES += ["US", "IT", "AR", "Nowhere", "AQ"]

# Phones as cells hold them, between | (the few this block cannot show are added below):
# Russia; Vietnam; leading zeros kept (Italy), national prefixes with transform
# rules (Argentina, Mexico), a shared (+1) and non-geographic (+800, +882)
# calling codes, unknown ones; separators in odd places; what is not a phone.
PHONES = """
+7 912 345-67-89|+79123456789|+7 (912) 345-67-89|+7-912-345-67-89|+7.912.345.67.89|+7 495 123 45 67
+7 (8442) 12-34-56|+7 8 912 345 67 89|+7 8 495 123 45 67|+7 8912345678|+7 912 345 67 8|+7 912 345 67 890
+7 000 000 00 00|+7 7 912 345 67 89|+7 1 234|007 912 345 67 89|00 7 912 345 67 89|00 (7) 912 3456789
0079123456789|810 7 912 345 67 89|8 912 345 67 89|8 (912) 345-67-89|89123456789|912 345 67 89|9123456789
79123456789|7 912 345 67 89|8 495 123-45-67|(495) 123-45-67|123-45-67|8 800 555 35 35
+84 91 234 56 78|+84912345678|+84 0912 345 678|+84 0 91 234 5678|+84 24 3825 1234|+84 (24) 3825-1234
+84 1900 1234|+84 12|+84 91 234 56 789 0|0084 91 234 5678|0912 345 678|091 234 5678|0912345678
024 3825 1234|(024) 3825 1234|912 345 678|84912345678|84 91 234 5678|1800 1234|00 84 0912345678
+39 02 1234 5678|+39 0000 0000|+39 06 698 1|+39 312 345 6789|+54 9 11 1234 5678|+54 11 1234 5678
+54 0 11 15 1234 5678|+52 1 55 1234 5678|+52 55 1234 5678|+1 (212) 555-0100|+1 800 555 0100|+1 555 0100
+44 20 7946 0958|+44 0 20 7946 0958|+49 30 123456|0049 30 123456|+800 1234 5678|+882 1234 5678 90
+979 1234 5678|+999 1234 5678|+0 123 4567|+00 123 4567|+01 212 555 0100|+007 912 345 67 89
+0 7 912 345 67 89|000 7 912 345 67 89|0001 212 555 0100|+1 2|+12 345|+123 45|0012 345|00 1 234
+3 1234 5678|+2 1234 5678|+7 912 345 67 89-|+7 912 345 67 89.|+7 912 345 67 89)|+(7) 912 3456789
+ 7 912 345 67 89|+7//912//345//67//89|+7 912 345 67 89 / 90|+7 912 345 67 89 x12|+7 912 345 67 89 доб. 12
+7 912 ABC 67 89|+7 912 345 67 89 #|+7 912 345 67 89;ext=1|+7 912 345 67 89,,12|tel:+79123456789
+７ ９１２ ３４５ ６７ ８９|+7 912 ٣٤٥ 67 89|++7 912 345 67 89|+7 912 + 345 67 89|12|1234|12345|+1234|+12345
123456789012345|1234567890123456|+123456789012345|+1234567890123456|0000000|+0000000|00000000
(((12345)))|1-2-3-4-5|.....5....|+7-9-1-2-3-4-5-6-7-8-9-0-1-2-3-4-5-6-7
"""
WRITTEN = PHONES.strip().replace("\n", "|").split("|")
WRITTEN += ["+7 " + "1" * 14, "+" + "9" * 15, "  +7 912 345 67 89  ", "+7 912 345 67 89 " + " " * 30]
WRITTEN += ["+7 912 345 67 89\n", "+7\u00a0912\u00a0345 67 89", "", "   ", None, 79123456789]


def test_written_phones_parse_as_before():
    assert_same([(text, country) for text in WRITTEN for country in COUNTRIES])


def test_every_calling_code_length_and_first_digit_parses_as_before():
    """+CODE then a national number of every length the 15 digits allow,
    starting with every digit (so national prefixes such as 8 in Russia and
    0 in Vietnam are met), written with + or 00 and with separators."""
    cases = []
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for length in range(0, 16 - len(str(code))):
            for first in "0123456789":
                national = (first + "1234567890123")[:length]
                written = (
                    f"+{code} {national}" if (length + int(first)) % 2 else f"00{code}-{national[:3]}-{national[3:]}"
                )
                cases.append((written, None))
    assert_same(cases)


PHONE_LIKE = st.text(alphabet="0123456789 ().-/+x#;", max_size=24)


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        PHONE_LIKE,
        st.tuples(st.sampled_from(["+", "00", "+7", "+84", "8", "0", ""]), PHONE_LIKE).map("".join),
    ),
    st.sampled_from(COUNTRIES),
)
def test_generated_phones_parse_as_before(text, country):
    assert_same([(text, country)])
