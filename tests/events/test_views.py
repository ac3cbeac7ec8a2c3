"""Event pages through the app: the list (empty state, sources, counts), an
event's page (chart bars linking to days, the day's customers), creating a
definition with the builder's one-block editor and a real queue + worker,
validation shown at the filter (422, not 500), delete with confirmation, and
managers read-only."""

import datetime
import re

import pytest
from conftest import work_off
from redis import Redis
from rq import Queue
from segments.conftest import manager, marketer  # noqa: F401 - fixtures: logged-in clients by role
from segments.formdata import form_fields
from werkzeug.datastructures import MultiDict

from webapp.events import service as events
from webapp.models import EventDefinition, EventOccurrence, EventType, Segment, SegmentMember, SegmentRun, utcnow

pytestmark = pytest.mark.sqlite_only


def work(queue_server):
    work_off(queue_server)


def test_empty_list_explains_and_offers_to_create(marketer):
    html = marketer.get("/events/").get_data(as_text=True)
    assert "No events yet" in html and 'href="/events/definitions/new"' in html


def figures(row):
    """The row's numbers: total, last 30 days (beside its sparkline), customers."""
    cells = re.findall(r'<td class="num">([\d,]+)</td>|<span class="recent-count">([\d,]+)</span>', row)
    return [int((a or b).replace(",", "")) for a, b in cells]


def test_list_shows_sources_and_counts(marketer, base):
    api = EventType.create(code="app_opened", name="Opened the app")
    now = utcnow()
    for n, days in enumerate((1, 2, 40, 41, 42)):
        EventOccurrence.create(
            customer=base.customers[n % 2], event_type=api, occurred_at=now - datetime.timedelta(days=days)
        )
    definition = events.create_definition(
        "Bought bread", "bought_bread", {"filters": [{"field": "product", "op": "in", "values": [{"value": "BR-1"}]}]}
    )
    events.backfill(definition.id)
    bread = base.expected(lambda o: "BR-1" in o.skus)
    page = marketer.get("/events/").get_data(as_text=True)
    assert "counting…" in page and 'hx-get="/events/?page=1"' in page  # the figures come after the page
    html = marketer.get("/events/?page=1", htmx=True, headers={"HX-Target": "event-rows"}).get_data(as_text=True)
    api_row = re.search(r'<tr data-code="app_opened">(.*?)</tr>', html, re.S).group(1)
    assert "API" in api_row
    assert figures(api_row) == [5, 2, 2]
    # the last 30 days' count has its per-day sparkline: one a day on two days, the rest none
    assert '<svg class="sparkline"' in api_row and "most in a day: 1" in api_row
    bread_row = re.search(r'<tr data-code="bought_bread">(.*?)</tr>', html, re.S).group(1)
    assert "Orders" in bread_row
    recent_from = now - datetime.timedelta(days=29)
    numbers = figures(bread_row)
    assert numbers[0] == len(bread) and numbers[2] == len({c for _o, c, _t in bread})
    assert numbers[1] >= sum(1 for _o, _c, at in bread if at >= recent_from)


def test_event_page_chart_links_days_to_their_customers(marketer, base):
    definition = events.create_definition(
        "Bought a croissant",
        "bought_croissant",
        {"filters": [{"field": "product_group", "op": "in", "values": [{"value": "Bakery/Croissants"}]}]},
    )
    events.backfill(definition.id)
    page = marketer.get(f"/events/{definition.event_type_id}?days=90")
    assert page.status_code == 200 and "Past orders recorded" in page.get_data(as_text=True)
    # the chart comes into the page after it shows
    assert f'hx-get="/events/{definition.event_type_id}/chart?days=90"' in page.get_data(as_text=True)
    html = marketer.get(f"/events/{definition.event_type_id}/chart?days=90", htmx=True).get_data(as_text=True)
    links = re.findall(r'<a href="([^"]*day=(\d{4}-\d{2}-\d{2})[^"]*)" class="bar-link">', html)
    assert len(links) == 90
    # The axis names days as the reader writes them, without the year.
    first = datetime.date.fromisoformat(links[0][1])
    ru = marketer.get(
        f"/events/{definition.event_type_id}/chart?days=90", htmx=True, headers={"Accept-Language": "ru"}
    ).get_data(as_text=True)
    assert f">{first:%d.%m}</text>" in ru and f">{first:%m-%d}</text>" in html
    per_day = {}
    for _o, _c, at in base.expected(lambda o: "Bakery/Croissants" in o.groups):
        per_day[at.date()] = per_day.get(at.date(), 0) + 1
    day = max(per_day, key=lambda d: (per_day[d], d))
    href = next(h for h, d in links if d == day.isoformat()).replace("&amp;", "&")
    # the day's customers, as the htmx pager asks for them, and as a page
    fragment = marketer.get(href.split("#")[0], htmx=True, headers={"HX-Target": "day-customers"})
    shown = dict(
        re.findall(
            r'<tr data-external-id="([^"]+)">.*?<td class="num times">(\d+)</td>', fragment.get_data(as_text=True), re.S
        )
    )
    expected = {}
    for o in base.orders.values():
        if "Bakery/Croissants" in o.groups and o.ordered_at.date() == day:
            ext = next(c.external_id for c in base.customers if c.id == o.customer_id)
            expected[ext] = expected.get(ext, 0) + 1
    assert {k: int(v) for k, v in shown.items()} == expected
    full = marketer.get(href.split("#")[0]).get_data(as_text=True)
    assert f"Customers on {day.isoformat()}" in full and "<html" in full
    assert marketer.get(f"/events/{definition.event_type_id}?day=2024-13-45").status_code == 400
    assert marketer.get("/events/999999").status_code == 404


def test_create_with_the_builder_then_the_worker_backfills(marketer, base, queue_server):
    Queue("default", connection=Redis.from_url(queue_server)).empty()
    form = marketer.get("/events/definitions/new")
    assert form.status_code == 200
    fields = MultiDict(form_fields(form.get_data(as_text=True), form_id="event-form"))
    # the builder's one-block mode: add a filter on the product group through its own endpoint
    fields["action"] = "add_filter:blocks-0:product_group"
    builder = marketer.post("/segments/builder", data=fields, htmx=True)
    html = builder.get_data(as_text=True)
    assert builder.status_code == 200 and 'name="single" value="order"' in html
    assert "Add block" not in html and "Conditions on these records" not in html
    fields = MultiDict(
        [(k, v) for k, v in fields.items(multi=True) if not k.startswith("blocks-") and k != "action"]
        + form_fields(html)
    )
    fields.add("blocks-0-filters-0-values", "+Bakery")
    fields["name"] = "Bought bakery"
    preview = marketer.post("/events/definitions/preview", data=fields, htmx=True)
    bakery = base.expected(lambda o: "Bakery" in o.groups)
    assert f'<output id="preview-number" class="big-number">{len(bakery)}</output>' in preview.get_data(as_text=True)

    saved = marketer.post("/events/definitions/new", data=fields)
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    definition = EventDefinition.get()
    assert definition.event_type.code == "bought_bakery" and definition.status == "queued"
    progress = marketer.get(f"/events/definitions/{definition.id}/progress", htmx=True).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in progress and "Waiting for the worker" in progress
    work(queue_server)
    progress = marketer.get(f"/events/definitions/{definition.id}/progress", htmx=True).get_data(as_text=True)
    assert "every 1s" not in progress and f"{len(bakery)} occurrences" in progress
    assert {
        (o, c, t)
        for o, c, t in EventOccurrence.select(
            EventOccurrence.order, EventOccurrence.customer, EventOccurrence.occurred_at
        ).tuples()
    } == bakery

    # the event is offered in the segment builder's Events block picker
    options = marketer.get("/segments/options/event?q=bakery", htmx=True).get_data(as_text=True)
    assert "bought_bakery" in options


def test_invalid_filters_are_shown_at_the_filter_not_a_500(marketer, base):
    form = marketer.get("/events/definitions/new")
    fields = MultiDict(form_fields(form.get_data(as_text=True), form_id="event-form"))
    for key, value in {
        "name": "Broken",
        "blocks-0-filters-0-field": "total",
        "blocks-0-filters-0-op": "between",
        "blocks-0-filters-0-from": "lots",
    }.items():
        fields[key] = value
    answer = marketer.post("/events/definitions/new", data=fields)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    slot = re.search(r'id="err-blocks-0-filters-0"[^>]*>(.*?)</div>', html, re.S).group(1)
    assert "“from” must be a number" in slot
    assert not EventDefinition.select().exists()
    fields["blocks-0-filters-0-from"], fields["code"] = "10", "Not A Code"
    answer = marketer.post("/events/definitions/new", data=fields)
    assert answer.status_code == 422 and "lower-case Latin" in answer.get_data(as_text=True)


def test_edit_and_delete_with_confirmation(marketer, base, queue_server):
    definition = events.create_definition(
        "Tea", "bought_tea", {"filters": [{"field": "product_group", "op": "in", "values": [{"value": "Tea"}]}]}
    )
    events.backfill(definition.id)
    page = marketer.get(f"/events/definitions/{definition.id}/edit")
    fields = MultiDict(form_fields(page.get_data(as_text=True), form_id="event-form"))
    assert fields.getlist("blocks-0-filters-0-values") == ["+Tea"]
    fields.setlist("blocks-0-filters-0-values", ["+Tea/Green tea"])
    # a dynamic segment reading the event is recomputed when the backfill is done
    segment = Segment.create(
        code="green_tea",
        name="Green tea buyers",
        type="dynamic",
        definition={
            "version": 1,
            "match": "all",
            "blocks": [
                {
                    "entity": "event",
                    "match": "all",
                    "filters": [{"field": "event", "op": "in", "values": [{"value": "bought_tea"}]}],
                }
            ],
        },
    )
    assert marketer.post(f"/events/definitions/{definition.id}/edit", data=fields).status_code == 302
    changed = EventDefinition.get_by_id(definition.id)
    assert changed.revision == 2 and changed.filters[0]["values"] == [{"value": "Tea/Green tea", "exclude": False}]
    work(queue_server)
    green = base.expected(lambda o: "Tea/Green tea" in o.groups)
    assert events.derived_count(definition.event_type_id) == len(green)
    run = SegmentRun.get(SegmentRun.segment == segment.id)
    assert (run.trigger, run.status) == ("dependency", "done")
    members = {
        c for (c,) in SegmentMember.select(SegmentMember.customer).where(SegmentMember.segment == segment.id).tuples()
    }
    assert members == {c for _o, c, _t in green}

    confirm = marketer.get(f"/events/definitions/{definition.id}/delete")
    assert f"Its {len(green)} occurrences" in confirm.get_data(as_text=True)
    assert EventDefinition.select().exists()  # nothing deleted by looking
    gone = marketer.post(f"/events/definitions/{definition.id}/delete", data={})
    assert gone.status_code == 302 and gone.headers["Location"].endswith(f"/events/{definition.event_type_id}")
    marked = EventDefinition.get_by_id(definition.id)
    assert (marked.status, marked.active) == ("deleting", False)
    assert marketer.get(f"/events/definitions/{definition.id}/edit").status_code == 404  # nothing to edit now
    progress = marketer.get(f"/events/definitions/{definition.id}/progress", htmx=True).get_data(as_text=True)
    assert "Deleting the occurrences" in progress and "every 1s" in progress
    runs_before = SegmentRun.select().count()
    work(queue_server)
    assert not EventDefinition.select().exists() and not EventOccurrence.select().exists()
    progress = marketer.get(f"/events/definitions/{definition.id}/progress", htmx=True).get_data(as_text=True)
    assert "are deleted" in progress and "every 1s" not in progress
    assert SegmentRun.select().count() == runs_before + 1  # the segment reading the event is recomputed
    assert not SegmentMember.select().where(SegmentMember.segment == segment.id).exists()


def test_managers_read_but_do_not_change(manager, base):
    definition = events.create_definition("Tea", "bought_tea", {"filters": []})
    assert manager.get("/events/").status_code == 200
    html = manager.get(f"/events/{definition.event_type_id}").get_data(as_text=True)
    assert "/edit" not in html and "New order event" not in html
    for url in (
        "/events/definitions/new",
        f"/events/definitions/{definition.id}/edit",
        f"/events/definitions/{definition.id}/delete",
    ):
        assert manager.get(url).status_code == 403
        assert manager.post(url, data={}).status_code == 403
    assert manager.post(f"/events/definitions/{definition.id}/progress", data={}).status_code == 403
    assert EventDefinition.select().count() == 1


def test_events_block_round_trip_through_the_segment_builder(marketer, base):
    """“Bought a croissant at least 3 times in the last 30 days”, built with the
    builder's buttons, previewed and saved; the count against the order facts."""
    definition = events.create_definition(
        "Bought a croissant",
        "bought_croissant",
        {"filters": [{"field": "product_group", "op": "in", "values": [{"value": "Bakery/Croissants"}]}]},
    )
    events.backfill(definition.id)
    page = marketer.get("/segments/new")
    fields = MultiDict(form_fields(page.get_data(as_text=True), form_id="segment-form"))

    def act(action):
        nonlocal fields
        fields["action"] = action
        answer = marketer.post("/segments/builder", data=fields, htmx=True)
        assert answer.status_code == 200
        kept = [
            (k, v) for k, v in fields.items(multi=True) if not k.startswith("blocks-") and k not in ("action", "match")
        ]
        fields = MultiDict(kept + form_fields(answer.get_data(as_text=True)))

    act("add_block:event")
    act("add_filter:blocks-0:event")
    act("add_filter:blocks-0:occurred_at")
    act("set_op:blocks-0-filters-1")
    act("add_condition:blocks-0:count")
    fields.add("blocks-0-filters-0-values", "+bought_croissant")
    fields["blocks-0-filters-1-op"] = "relative"
    act("set_op:blocks-0-filters-1")
    fields["blocks-0-filters-1-from_n"], fields["blocks-0-filters-1-from_dir"] = "30", "ago"
    fields["blocks-0-filters-1-to_n"], fields["blocks-0-filters-1-to_dir"] = "0", "ago"
    fields["blocks-0-having-0-from"] = "3"
    fields["name"], fields["code"] = "Croissant lovers", "croissant_lovers"

    today = utcnow().date()
    times = {}
    for o in base.orders.values():
        if "Bakery/Croissants" in o.groups and today - datetime.timedelta(days=30) <= o.ordered_at.date() <= today:
            times[o.customer_id] = times.get(o.customer_id, 0) + 1
    expected = sum(1 for n in times.values() if n >= 3)
    assert expected
    preview = marketer.post("/segments/preview", data=fields, htmx=True).get_data(as_text=True)
    assert f'data-count="{expected}"' in preview, preview[:1500]

    saved = marketer.post("/segments/new", data=fields)
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    from webapp.models import Segment

    stored = Segment.get(Segment.code == "croissant_lovers").definition
    assert stored["blocks"] == [
        {
            "entity": "event",
            "match": "all",
            "filters": [
                {"field": "event", "op": "in", "values": [{"value": "bought_croissant", "exclude": False}]},
                {"field": "occurred_at", "op": "relative", "from_days": -30, "to_days": 0},
            ],
            "having": [{"agg": "count", "op": "between", "from": 3}],
            "having_match": "all",
        }
    ]


def test_a_lost_backfill_is_offered_again_and_resumes(marketer, base, queue_server):
    """The worker died: the job is gone while the definition says running."""
    from rq.job import Job

    from webapp.events import jobs

    Queue("default", connection=Redis.from_url(queue_server)).empty()
    definition = events.create_definition(
        "Bread", "bought_bread", {"filters": [{"field": "product", "op": "in", "values": [{"value": "BR-1"}]}]}
    )
    # two ranges done, then the crash
    calls = []

    def crash(d):
        calls.append(d)
        if len(calls) == 3:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        events.backfill(definition.id, chunk=30, on_progress=crash)
    EventDefinition.update(updated_at=utcnow() - datetime.timedelta(minutes=5)).where(
        EventDefinition.id == definition.id
    ).execute()
    stuck = EventDefinition.get_by_id(definition.id)
    assert stuck.status == "running" and jobs.worker_lost(stuck)
    progress = marketer.get(f"/events/definitions/{definition.id}/progress", htmx=True).get_data(as_text=True)
    assert "not doing this any more" in progress and "Run again" in progress and "every 1s" not in progress
    again = marketer.post(f"/events/definitions/{definition.id}/progress", data={}, htmx=True)
    assert "every 1s" in again.get_data(as_text=True)
    assert Job.fetch(jobs.job_id(definition.id, stuck.revision), connection=Redis.from_url(queue_server))
    work(queue_server)
    done = EventDefinition.get_by_id(definition.id)
    assert done.status == "done" and done.revision == stuck.revision
    assert done.started_at == stuck.started_at  # resumed where it stopped, not cleared and started over
    assert done.recorded == len(base.expected(lambda o: "BR-1" in o.skus))
