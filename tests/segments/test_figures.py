"""Segment figures (issue 18, point 4): reachable by email and SMS by the
mailings' rule (and no bounce), shares of base and revenue over 12 months,
average order value, predicted value; cached per computation and read for all
segments of a page in a fixed number of statements. SQLite and PostgreSQL."""

import datetime

import pytest

from webapp.activation.recipients import recipient_case
from webapp.db import database
from webapp.models import (
    Customer,
    CustomerPrediction,
    MessageEvent,
    Order,
    Segment,
    SegmentFigures,
    SegmentMember,
    utcnow,
)
from webapp.segments import figures

NOW = utcnow()


def customer(ext, email=None, email_consent=False, phone=None, sms_consent=False):
    return Customer.create(
        external_id=ext, email=email, email_consent=email_consent, phone=phone, sms_consent=sms_consent
    ).id


def order(cid, cents, days_ago):
    Order.create(
        external_id=f"o{cid}-{cents}-{days_ago}",
        customer=cid,
        ordered_at=NOW - datetime.timedelta(days=days_ago),
        total_cents=cents,
    )


def segment(code, ids):
    seg = Segment.create(code=code, name=code.upper(), definition={"version": 1, "blocks": []}, computed_at=NOW)
    SegmentMember.insert_many([(seg.id, c) for c in ids], fields=["segment", "customer"]).execute()
    seg.size = len(ids)
    seg.save()
    return seg


@pytest.fixture
def people(db):
    ids = {
        "ok": customer("ok", "a@x.io", True, "+7900", True),
        "no_consent": customer("nc", "b@x.io", False, "+7901", False),
        "bad_address": customer("ba", "not-an-email", True, "", True),
        "bounced": customer("bo", "d@x.io", True, None, False),
        "none": customer("no"),
    }
    MessageEvent.create(customer=ids["bounced"], channel="email", kind="bounced", occurred_at=NOW)
    MessageEvent.create(customer=ids["ok"], channel="sms", kind="bounced", occurred_at=NOW)  # SMS: not email
    order(ids["ok"], 10000, 10)
    order(ids["ok"], 5000, 400)  # older than 12 months
    order(ids["bounced"], 3000, 100)
    order(ids["none"], 7000, 5)
    CustomerPrediction.create(customer=ids["ok"], clv=120.5)
    CustomerPrediction.create(customer=ids["bounced"], clv=30.0)
    return ids


def test_figures_of_a_segment(people):
    seg = segment("vip", [people["ok"], people["no_consent"], people["bad_address"], people["bounced"]])
    f = figures.figures_of([seg])[seg.id]
    assert (f.members, f.email, f.sms) == (4, 1, 1)
    assert (f.revenue_cents, f.orders, f.aov_cents) == (13000, 2, 6500)
    assert f.base.members == 5 and f.base.revenue_cents == 20000
    assert f.base_share == pytest.approx(0.8)
    assert f.revenue_share == pytest.approx(0.65)
    assert (f.predicted, f.clv) == (2, pytest.approx(150.5))


def test_email_reach_agrees_with_the_mailing_rule(people):
    status, reason = recipient_case("email")
    rows = dict(database.execute_sql(f"SELECT c.id, {reason} FROM customer c WHERE {status} = 'skipped'").fetchall())
    assert rows[people["bounced"]] == "bounced"  # a mailing skips the bounce, and says why
    pending = {
        cid for (cid,) in database.execute_sql(f"SELECT c.id FROM customer c WHERE {status} = 'pending'").fetchall()
    }
    assert pending == {people["ok"]}
    seg = segment("all", list(people.values()))
    assert figures.figures_of([seg])[seg.id].email == len(pending)


def test_empty_and_never_computed_segments(people):
    empty = segment("empty", [])
    never = Segment.create(code="never", name="Never", definition={"version": 1, "blocks": []})
    found = figures.figures_of([empty, never])
    assert never.id not in found
    f = found[empty.id]
    assert (f.members, f.email, f.aov_cents, f.clv, f.base_share) == (0, 0, None, None, 0.0)


def test_cached_per_computation(people):
    seg = segment("vip", [people["ok"]])
    assert figures.figures_of([seg], now=NOW)[seg.id].members == 1
    SegmentMember.create(segment=seg, customer=people["none"])
    assert figures.figures_of([seg], now=NOW)[seg.id].members == 1  # the cache of this computation
    seg.computed_at = NOW + datetime.timedelta(minutes=1)
    assert figures.figures_of([seg], now=NOW)[seg.id].members == 2  # a new computation reads again
    later = NOW + figures.MAX_AGE + datetime.timedelta(minutes=2)
    SegmentMember.create(segment=seg, customer=people["bounced"])
    assert figures.figures_of([seg], now=later)[seg.id].members == 3  # too old: read again
    assert SegmentFigures.select().count() == 2  # the segment and the base


def test_a_page_of_segments_is_read_in_a_fixed_number_of_statements(people, queries):
    segs = [segment(f"s{n}", [people["ok"], people["none"]][: n % 3]) for n in range(12)]
    queries.clear()
    calls = queries
    found = figures.figures_of(segs)
    assert [found[s.id].members for s in segs] == [n % 3 for n in range(12)]
    reads = [sql for sql in calls if "segment_member sm" in sql]
    assert len(reads) == 2  # members and reach; orders of 12 months: for all twelve at once
    assert len(calls) <= 10  # with the cache's reads and writes and the base's two


def test_list_and_page_show_figures(marketer, people):
    segment("vip", [people["ok"], people["bounced"]])
    listing = marketer.get("/segments/").get_data(as_text=True)
    assert "40.0%" in listing  # 2 of 5 customers
    assert "65.0%" in listing  # 13,000 of 20,000 cents of revenue
    assert "65.00" in listing  # average order value
    assert "150.50" in listing  # predicted value
    page = marketer.get("/segments/vip").get_data(as_text=True)
    assert "Reachable by email" in page and "40.0%" in page and "150.50" in page
