"""mark_changed (the real-time update's queue) and CSV-injection-safe cells."""

import datetime

import pytest

from webapp import csvsafe
from webapp.models import ChangedCustomer, Customer
from webapp.segments import changes


def test_mark_changed_is_one_row_per_customer_and_idempotent(db):
    a, b = Customer.create(external_id="a"), Customer.create(external_id="b")
    t1 = datetime.datetime(2025, 1, 1)
    t2 = datetime.datetime(2025, 1, 2)
    assert changes.mark_changed([a.id, a.id, b.id, None], at=t1) == 2
    changes.mark_changed([a.id], at=t2)
    assert sorted(ChangedCustomer.select(ChangedCustomer.customer, ChangedCustomer.changed_at).tuples()) == [
        (a.id, t2),
        (b.id, t1),
    ]
    assert changes.mark_changed([]) == 0


def test_clear_keeps_marks_made_after_reading(db):
    a, b = Customer.create(external_id="a"), Customer.create(external_id="b")
    changes.mark_changed([a.id, b.id], at=datetime.datetime(2025, 1, 1))
    marks = changes.pending()
    changes.mark_changed([b.id], at=datetime.datetime(2025, 1, 3))  # b changes again meanwhile
    changes.clear(marks)
    assert [c.customer_id for c in ChangedCustomer.select()] == [b.id]


def test_deleting_a_customer_removes_its_mark(db):
    a = Customer.create(external_id="a")
    changes.mark_changed([a.id])
    a.delete_instance()
    assert ChangedCustomer.select().count() == 0


@pytest.mark.parametrize(
    "cell, written",
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("@cmd", "'@cmd"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd", "'-2+3+cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-5", "-5"),
        ("+7 (912) 000-00-01", "+7 (912) 000-00-01"),
        ("-12,50", "-12,50"),
        ("plain", "plain"),
        ("", ""),
        (None, ""),
    ],
)
def test_neutralise_and_restore(cell, written):
    assert csvsafe.neutralise(cell) == written
    assert csvsafe.restore(written) == (cell or "")
