"""How values read on the pages (webapp.formats)."""

import datetime
import decimal

from webapp import formats
from webapp.formats import money


def test_money_format():
    assert [money(0), money(5), money(123456), money(-250), money(None)] == ["0.00", "0.05", "1,234.56", "-2.50", "—"]


def test_numbers_and_shares():
    assert [formats.thousands(1234567), formats.thousands(None), formats.thousands(0)] == ["1,234,567", "0", "0"]
    assert [formats.figure(1234), formats.figure(None), formats.figure(0)] == ["1,234", "—", "0"]
    assert [formats.percent(0.1234), formats.percent(None)] == ["12.3%", "—"]


def test_local_time_in_a_zone():
    noon = datetime.datetime(2024, 7, 1, 12, 0)
    assert formats.local_time(noon) == "2024-07-01 12:00"
    assert formats.local_time(noon, tz="Europe/Moscow") == "2024-07-01 15:00"
    assert formats.local_time(noon, "%H:%M", tz="Asia/Ho_Chi_Minh") == "19:00"
    assert formats.local_time(noon, tz="Nowhere/Atlantis") == "2024-07-01 12:00"  # unknown: UTC
    assert formats.local_time(datetime.date(2024, 7, 1), "%Y-%m-%d", tz="Pacific/Kiritimati") == "2024-07-01"
    assert formats.local_time(None) == "—"


def test_custom_values_and_durations_and_labels():
    assert [
        formats.custom_value(v) for v in (None, "", True, False, decimal.Decimal("2.50"), datetime.date(2024, 3, 8), 7)
    ] == ["—", "—", "Yes", "No", "2.5", "2024-03-08", "7"]
    assert [formats.duration(s) for s in (None, 42.4, 185, 7800)] == ["—", "42 s", "3 min 5 s", "2 h 10 min"]
    assert (formats.label("company"), formats.label("no-such-code")) == ("Company", "no-such-code")
