"""Issue 20.2 on SQLite and PostgreSQL: email addresses and phone numbers that
cannot be ones are rejected by the import (line, column, reason) and by the
API (422 naming the field); phones are stored in E.164 where their country is
known."""

import pytest

from webapp.accounts.service import UserError, create_user
from webapp.models import Customer
from webapp.values import parse_email, parse_phone, region_of

from .conftest import read_rejected

CSV = """external_id,first_name,email,phone,country
c1,Olga,olga-bad-email@,,
c2,Ivan,ivan@example.ru,8 912 000-00-01,Россия
c3,An,an@example.vn,090 123 4567,Việt Nam
c4,Bob,broken@@x,+1 202 555 0143,
c5,Kim,kim@example.com,call me,
c6,Lee,lee@example.com,+7 900 000,
c7,Max,max@example.com,912 00,Russia
c8,Eve,eve@example.com,(495) 123-45-67,
"""


def test_import_rejects_bad_addresses_and_normalises_phones(run_import, write_file):
    run = run_import("customers", write_file(CSV))
    assert run.status == "done", run.error
    assert (run.rows_imported, run.rows_rejected) == (3, 5)
    found = {r["line"]: (r["column"], r["reason"]) for r in run.report["rejections"]}
    assert found[2] == ("email", "“olga-bad-email@” is not an email address (expected name@example.com)")
    assert found[5] == ("email", "“broken@@x” is not an email address (expected name@example.com)")
    assert found[6][0] == "phone" and "“call me” is not a phone number" in found[6][1]
    assert found[7][0] == "phone" and "“+7 900 000” is not a phone number" in found[7][1]
    assert found[8] == ("phone", "“912 00” is not a phone number in Russia")
    _header, rows = read_rejected(run)
    assert rows[0][-1] == "line 2, column email: “olga-bad-email@” is not an email address (expected name@example.com)"
    phones = {c.external_id: c.phone for c in Customer.select()}
    # country known (from the cell, or the +code): E.164; unknown: as written
    assert phones == {"c2": "+79120000001", "c3": "+84901234567", "c8": "(495) 123-45-67"}


def test_the_user_form_refuses_a_bad_address(db):
    for bad in ("olga-bad-email@", "broken@@x", "a @example.com"):
        with pytest.raises(UserError):
            create_user(bad, "correct horse battery")
    assert create_user("olga@example.com", "correct horse battery").email == "olga@example.com"


@pytest.mark.parametrize(
    "text, ok",
    [
        ("ann@example.com", True),
        ("x.y+tag@mail.example.ru", True),
        ("ирина@пример.рф", True),
        ("a@xn--e1afmkfd.xn--p1ai", True),
        ("olga-bad-email@", False),
        ("broken@@x", False),
        ("a..b@example.com", False),
        ("a@localhost", False),
        ("name example.com", False),
    ],
)
def test_email_forms(text, ok):
    if ok:
        assert parse_email(text) == text
    else:
        with pytest.raises(ValueError):
            parse_email(text)


def test_phone_regions():
    assert region_of("Россия") == region_of("russia") == region_of("RU") == "RU"
    assert region_of("Việt Nam") == region_of("Vietnam") == "VN" and region_of("Narnia") is None
    assert parse_phone("0049 30 123456") == "+4930123456"
    assert parse_phone("79991234567") == "79991234567"  # no country known: kept
    with pytest.raises(ValueError):
        parse_phone("12")
