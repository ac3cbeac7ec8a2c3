"""How values read on the pages (webapp.formats), in each language Segmento speaks."""

import datetime
import decimal

import pytest

from webapp import formats
from webapp.formats import money
from webapp.i18n import language, pgettext
from webapp.values import parse_date, parse_datetime, parse_decimal

NBSP = "\u00a0"


def test_money_format():
    with language("en"):
        assert [money(0, "USD"), money(5, "USD"), money(123456, "USD"), money(-250, "USD"), money(None)] == [
            "$0.00",
            "$0.05",
            "$1,234.56",
            "-$2.50",
            "—",
        ]


@pytest.mark.parametrize(
    ("code", "rub", "vnd", "usd"),
    [
        ("ru", f"3{NBSP}500,00{NBSP}₽", f"3{NBSP}500{NBSP}000{NBSP}₫", f"3{NBSP}500,00{NBSP}$"),
        ("vi", f"3.500,00{NBSP}RUB", f"3.500.000{NBSP}₫", f"3.500,00{NBSP}US$"),
        ("en", "RUB3,500.00", "₫3,500,000", "$3,500.00"),
    ],
)
def test_money_in_each_language_and_currency(code, rub, vnd, usd):
    # Money is kept in cents; VND has no minor unit, so its amount shows none.
    with language(code):
        assert money(350000, "RUB") == rub
        assert money(350000000, "VND") == vnd
        assert money(350000, "usd".upper()) == usd


def test_money_follows_the_currency_setting(monkeypatch):
    from webapp import settings

    monkeypatch.setattr(settings, "CURRENCY", "VND")
    with language("vi"):
        assert money(350000000) == f"3.500.000{NBSP}₫"


@pytest.mark.parametrize(
    ("code", "big", "share", "small"),
    [("ru", f"20{NBSP}000", f"12,3{NBSP}%", "2,5"), ("vi", "20.000", "12,3%", "2,5"), ("en", "20,000", "12.3%", "2.5")],
)
def test_numbers_and_shares(code, big, share, small):
    with language(code):
        assert [formats.thousands(20000), formats.thousands(None), formats.figure(20000), formats.figure(None)] == [
            big,
            "0",
            big,
            "—",
        ]
        assert [formats.percent(0.1234), formats.percent(None)] == [share, "—"]
        assert formats.number(decimal.Decimal("2.50")) == small


@pytest.mark.parametrize(
    ("code", "day", "moment"),
    [("ru", "04.12.2026", "04.12.2026 15:00"), ("vi", "04/12/2026", "04/12/2026 19:00"), ("en", "2026-12-04", "")],
)
def test_dates_and_datetimes_in_the_account_time_zone(code, day, moment):
    noon = datetime.datetime(2026, 12, 4, 12, 0)
    zone = {"ru": "Europe/Moscow", "vi": "Asia/Ho_Chi_Minh", "en": "UTC"}[code]
    with language(code):
        assert formats.local_time(datetime.date(2026, 12, 4), "date", tz=zone) == day
        assert formats.date(datetime.date(2026, 12, 4)) == day
        if moment:
            assert formats.local_time(noon, tz=zone) == moment


def test_local_time_in_a_zone():
    noon = datetime.datetime(2024, 7, 1, 12, 0)
    with language("en"):
        assert formats.local_time(noon) == "2024-07-01 12:00"
        assert formats.local_time(noon, tz="Europe/Moscow") == "2024-07-01 15:00"
        assert formats.local_time(noon, "time", tz="Asia/Ho_Chi_Minh") == "19:00"
        assert formats.local_time(noon, "seconds", tz="Asia/Ho_Chi_Minh") == "2024-07-01 19:00:00"
        assert formats.local_time(noon, tz="Nowhere/Atlantis") == "2024-07-01 12:00"  # unknown: UTC
        assert formats.local_time(datetime.date(2024, 7, 1), "date", tz="Pacific/Kiritimati") == "2024-07-01"
        assert formats.local_time(datetime.date(2024, 7, 1), "datetime") == "2024-07-01"  # a date has no time
        assert formats.local_time(None) == "—"
    with language("ru"):
        # Late evening in UTC is the next day in Moscow.
        assert formats.local_time(datetime.datetime(2026, 12, 31, 22, 30), tz="Europe/Moscow") == "01.01.2027 01:30"


def test_typed_dates_are_read_in_each_languages_form():
    expected = datetime.date(2026, 12, 4)
    assert [parse_date(t) for t in ("04.12.2026", "04/12/2026", "4/12/2026", "2026-12-04")] == [expected] * 4
    assert parse_datetime("04/12/2026 09:30") == datetime.datetime(2026, 12, 4, 9, 30)
    assert parse_datetime("04.12.2026 09:30") == datetime.datetime(2026, 12, 4, 9, 30)
    with pytest.raises(ValueError, match="31/02/2026"):
        parse_date("31/02/2026")
    assert parse_decimal(f"20{NBSP}000,50") == decimal.Decimal("20000.50")
    assert parse_decimal("20.000") == decimal.Decimal("20.000")  # a decimal point, not a group: as typed in en


def test_custom_values_and_durations_and_labels():
    with language("en"):
        assert [
            formats.custom_value(v)
            for v in (None, "", True, False, decimal.Decimal("2.50"), datetime.date(2024, 3, 8), 7)
        ] == ["—", "—", "Yes", "No", "2.5", "2024-03-08", "7"]
        assert [formats.duration(s) for s in (None, 42.4, 185, 7800)] == ["—", "42 s", "3 min 5 s", "2 h 10 min"]
        assert (formats.label("company"), formats.label("no-such-code")) == ("Company", "no-such-code")
    with language("ru"):
        assert [formats.custom_value(v) for v in (True, decimal.Decimal("2.50"), datetime.date(2024, 3, 8))] == [
            "Да",
            "2,5",
            "08.03.2024",
        ]
        assert formats.label("company") == "Компания"
    with language("vi"):
        assert formats.custom_value(datetime.date(2024, 3, 8)) == "08/03/2024"


def test_labels_follow_the_language_of_each_call():
    """The labels are made once at import (label() runs for every row of a list)
    and translated when read: each call in its own language, with its context."""
    for code, words in (("en", ("Company", "Open", "Administrator", "Русский")), ("ru", ("Компания",))):
        with language(code):
            shown = (formats.label("company"), formats.label("open"), formats.label("admin"), formats.label("ru"))
            assert shown[: len(words)] == words
            assert all(type(w) is str for w in shown)
    with language("ru"):
        # "Open" of a deal stage, not the plain "Open"
        assert formats.label("open") == pgettext("deal stage", "Open") != "Open"


@pytest.mark.parametrize(
    "code, day, week, month",
    [
        ("en", "2026-11-30", "2026-11-30 – 2026-12-06", "November 2026"),
        ("ru", "30.11.2026", "30.11.2026 – 06.12.2026", "ноябрь 2026"),
        ("vi", "30/11/2026", "30/11/2026 – 06/12/2026", "Tháng 11 2026"),
    ],
)
def test_analytics_periods_are_named_in_each_language(code, day, week, month):
    start = datetime.date(2026, 11, 30)
    with language(code):
        assert formats.period(start, start + datetime.timedelta(days=1), "day") == day
        assert formats.period(start, start + datetime.timedelta(days=7), "week") == week
        assert formats.period(datetime.date(2026, 11, 1), datetime.date(2026, 12, 1), "month") == month


def test_a_charts_months_are_abbreviated_in_each_language():
    november = datetime.date(2026, 11, 1)
    assert [language_month(code, november) for code in ("en", "ru", "vi")] == [
        "Nov 2026",
        "нояб. 2026",
        "Tháng 11 2026",
    ]


def language_month(code, value):
    with language(code):
        return formats.month(value)
