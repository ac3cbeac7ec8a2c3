import datetime
import decimal
import zoneinfo

import pytest

from webapp import values


def test_dates_iso_and_russian():
    assert values.parse_date("2024-02-29") == datetime.date(2024, 2, 29)
    assert values.parse_date("08.03.2025") == datetime.date(2025, 3, 8)
    assert values.parse_date("  ") is None
    with pytest.raises(ValueError, match="not a date"):
        values.parse_date("31.02.2025")


def test_datetimes_are_stored_as_utc():
    msk = zoneinfo.ZoneInfo("Europe/Moscow")
    assert values.parse_datetime("2025-03-08 12:00", msk) == datetime.datetime(2025, 3, 8, 9, 0)
    assert values.parse_datetime("2025-03-08T12:00:00+00:00", msk) == datetime.datetime(2025, 3, 8, 12)
    assert values.parse_datetime("08.03.2025 10:30") == datetime.datetime(2025, 3, 8, 10, 30)
    with pytest.raises(ValueError, match="not a date and time"):
        values.parse_datetime("yesterday")


def test_decimals_money_and_booleans():
    assert values.parse_decimal("1 234,50") == decimal.Decimal("1234.50")
    assert values.parse_money_cents("100.00") == 10000
    assert values.parse_money_cents("0,1") == 10
    with pytest.raises(ValueError, match="more than two decimals"):
        values.parse_money_cents("1.005")
    with pytest.raises(ValueError, match="not a number"):
        values.parse_decimal("NaN")
    assert [values.parse_bool(w) for w in ["Да", "нет", "YES", "0", "true"]] == [True, False, True, False, True]
    with pytest.raises(ValueError, match="not yes or no"):
        values.parse_bool("maybe")
    with pytest.raises(ValueError, match="not a whole number"):
        values.parse_integer("2.5")
