"""Why is this customer in, or not (issue 18): on the customer card's segments,
in the builder's preview list and for a customer found by search, for an exit
in the history; the builder's preview "as of" a date and the segment as it was
on a past date. SQLite and PostgreSQL."""

import datetime
import re

from webapp.models import Customer, Segment, SegmentChange, utcnow
from webapp.segments import runs, service

from .test_pages import run_queued, text

MOSCOW_CATS = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "customer",
            "match": "all",
            "filters": [{"field": "city", "op": "in", "values": [{"value": "Москва"}]}],
        },
        {
            "entity": "order",
            "match": "all",
            "filters": [{"field": "product_group", "op": "in", "values": [{"value": "Pet food"}]}],
            "having": [{"agg": "count", "op": "between", "from": 1}],
        },
    ],
}

FORM = {
    "match": "all",
    "rev": "r1",
    "blocks-0-entity": "customer",
    "blocks-0-match": "all",
    "blocks-0-filters-0-field": "city",
    "blocks-0-filters-0-op": "in",
    "blocks-0-filters-0-values": "+москва",
}

BIRTHDAYS = {
    "match": "all",
    "rev": "r1",
    "blocks-0-entity": "customer",
    "blocks-0-match": "all",
    "blocks-0-filters-0-field": "birth_date",
    "blocks-0-filters-0-op": "relative",
    "blocks-0-filters-0-from_n": "0",
    "blocks-0-filters-0-from_dir": "ahead",
    "blocks-0-filters-0-to_n": "3",
    "blocks-0-filters-0-to_dir": "ahead",
    "blocks-0-filters-0-ignore_year": "1",
}


def blocks(page):
    """{block number: "pass"|"fail"} of an explanation."""
    return {int(n): v for v, n in re.findall(r'class="why-block (pass|fail)" data-block="(\d+)"', page)}


def test_card_explains_each_segment_the_customer_is_in(marketer, base, queue_server):
    service.create_segment({"code": "cats", "name": "Moscow cats", "definition": MOSCOW_CATS})
    run_queued()
    c1 = base["c1"]
    history = text(marketer.get(f"/segments/customers/{c1.id}/history", htmx=True))
    assert "Why in “Moscow cats”?" in history and f"/segments/cats/why/{c1.id}" in history
    page = text(marketer.get(f"/segments/cats/why/{c1.id}", htmx=True))
    assert 'data-holds="true"' in page and blocks(page) == {1: "pass", 2: "pass"}
    assert "the value is “Москва”" in page
    assert "1 record passes" in page and "total $2,390.00" in page
    # c2 lives in "МОСКВА " and bought tea: block 2 decides
    page = text(marketer.get(f"/segments/cats/why/{base['c2'].id}", htmx=True))
    assert 'data-holds="false"' in page and blocks(page) == {1: "pass", 2: "fail"}
    assert "0 records pass" in page
    assert marketer.get("/segments/cats/why/999999", htmx=True).status_code == 404


def test_builder_explains_a_previewed_member_and_why_not_for_a_found_one(marketer, base):
    page = text(marketer.post("/segments/why", htmx=True, data=dict(FORM, why_customer=base["c6"].id)))
    assert 'data-holds="true"' in page and "C6 matches the definition." in page
    # why not: found by search
    page = text(marketer.post("/segments/why", htmx=True, data=dict(FORM, why_q="c3@example")))
    assert 'data-holds="false"' in page and "the value is “Hà Nội”" in page
    page = text(marketer.post("/segments/why", htmx=True, data=dict(FORM, why_q="c")))
    assert "Several customers match" in page and page.count("why-pick") == 5
    assert "No customer found" in text(marketer.post("/segments/why", htmx=True, data=dict(FORM, why_q="zzz")))
    # the preview's member list offers the question
    page = text(marketer.post("/segments/preview", htmx=True, data=dict(FORM, members="1")))
    assert page.count("Why is this one in?") == 3
    # a definition with problems says so, never a 500
    bad = dict(FORM, **{"blocks-0-filters-0-field": "nope"})
    response = marketer.post("/segments/why", htmx=True, data=dict(bad, why_customer=base["c6"].id))
    assert response.status_code == 200 and 'role="alert"' in text(response)


def test_an_exit_says_which_block_stopped_holding(marketer, base, queue_server):
    service.create_segment({"code": "cats", "name": "Moscow cats", "definition": MOSCOW_CATS})
    run_queued()
    c1 = Customer.get_by_id(base["c1"].id)
    c1.city = "Berlin"
    c1.save()
    runs.request_run(Segment.get(code="cats"), trigger="user")
    run_queued()
    exit_row = SegmentChange.get(change="exited")
    history = text(marketer.get(f"/segments/customers/{c1.id}/history", htmx=True))
    assert f"/segments/exits/{exit_row.id}/why" in history and "Which block stopped holding?" in history
    page = text(marketer.get(f"/segments/exits/{exit_row.id}/why", htmx=True))
    assert "block 1 no longer held" in page and blocks(page) == {1: "fail", 2: "pass"}
    entry = SegmentChange.get(change="entered")
    assert "cannot be explained" in text(marketer.get(f"/segments/exits/{entry.id}/why", htmx=True))


def test_preview_as_of_a_chosen_date(marketer, base):
    def count(as_of):
        page = text(marketer.post("/segments/preview", htmx=True, data=dict(BIRTHDAYS, as_of=as_of)))
        return int(re.search(r'data-count="(\d+)"', page).group(1)), page

    year = utcnow().year + 1
    n, page = count(f"{year}-03-06T10:00")
    assert n == 1 and f"As of {year}-03-06 10:00" in page  # c1, born on 8 March
    assert count(f"{year}-12-30T10:00")[0] == 1  # c4, born on 1 January: wraps the new year
    assert count(f"{year}-06-01T10:00")[0] == 0


def test_segment_size_and_members_on_a_past_date(marketer, base, db):
    segment = Segment.create(code="past", name="Past", definition=MOSCOW_CATS)
    t0 = datetime.datetime(2026, 1, 10, 9, 0)
    c1, c2, c3 = base["c1"], base["c2"], base["c3"]
    for customer, change, days in [(c1, "entered", 0), (c2, "entered", 0), (c3, "entered", 1), (c1, "exited", 2)]:
        SegmentChange.create(segment=segment, customer=customer, change=change, at=t0 + datetime.timedelta(days=days))

    def on(moment):
        return text(marketer.get(f"/segments/past/past?on={moment}", htmx=True))

    assert "2 members" in on("2026-01-10T12:00")
    page = on("2026-01-11")
    assert "3 members" in page and "C1" in page and "C3" in page
    page = on("2026-01-12T10:00")
    assert "2 members" in page and ">C1<" not in page
    assert "No members" not in on("2026-01-09") and "The log has no members" in on("2026-01-09")
    assert 'role="alert"' in on("yesterday")
    assert "On a past date" in text(marketer.get("/segments/past"))
