"""Segment pages over real HTTP: list (filters, sorting, paging), create and
edit with messages where they belong, delete with confirmation, the segment
page with history and runs, recompute, roles; the customers list filtered by
segment and the customer card's history. SQLite and PostgreSQL."""

import datetime
import re

from webapp.models import Customer, Segment, SegmentChange, SegmentMember, SegmentRun, SegmentSize, User, utcnow
from webapp.segments import runs, system

MEN = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "customer",
            "match": "all",
            "filters": [{"field": "gender", "op": "in", "values": [{"value": "male", "exclude": False}]}],
        }
    ],
}


def segment(code, name=None, **kw):
    kw.setdefault("definition", MEN)
    return Segment.create(code=code, name=name or code.replace("_", " ").title(), **kw)


def text(response):
    return response.get_data(as_text=True)


def run_queued():
    for run in list(SegmentRun.select().where(SegmentRun.status == "queued")):
        assert runs.execute_run(run.id)


# --- the list ------------------------------------------------------------------------


def test_empty_list_invites_to_create(marketer):
    page = text(marketer.get("/segments/"))
    assert "No segments yet" in page and 'href="/segments/new"' in page


def test_list_shows_columns_lock_sparkline_and_count_link(marketer, base):
    user = User.get(User.email == "mia@example.com")
    men = segment("men", "Men for 8 March", size=4, computed_at=utcnow(), created_by=user, in_analytics=True)
    frozen = segment("frozen", "Frozen list", type="static", active=False, size=2)
    for n, size in enumerate([3, 5, 4]):
        SegmentSize.create(segment=men, at=utcnow() - datetime.timedelta(days=3 - n), size=size)
        SegmentSize.create(segment=frozen, at=utcnow() - datetime.timedelta(days=3 - n), size=size)
    SegmentRun.create(segment=frozen, status="failed", error="boom")
    page = text(marketer.get("/segments/"))
    row = re.search(r'<tr class="">.*?Men for 8 March.*?</tr>', page, re.S).group(0)
    assert 'href="/customers/?segment=men"' in row and ">4<" in row
    assert '<polyline points="' in row and 'class="sparkline "' in row
    assert "mia@example.com" in row and "Up to date" in row
    frozen_row = re.search(r'<tr class="inactive">.*?Frozen list.*?</tr>', page, re.S).group(0)
    assert 'class="icon lock"' in frozen_row and "sparkline inactive" in frozen_row  # grey
    assert 'title="boom"' in frozen_row and "Failed" in frozen_row


def test_list_filters_sort_search_and_pages(marketer, app):
    app.config["PER_PAGE"] = 10
    now = utcnow()
    for n in range(25):
        Segment.create(
            code=f"s{n:02d}",
            name=f"Сегмент {n:02d}" if n % 2 else f"Segment {n:02d}",
            type="static" if n % 5 == 0 else "dynamic",
            active=n % 3 != 0,
            size=n * 10,
            definition=MEN,
            created_at=now - datetime.timedelta(days=n),
        )

    def codes(url):
        return re.findall(r"<code>(s\d\d)</code>", text(marketer.get(url)))

    assert codes("/segments/") == [f"s{n:02d}" for n in range(10)]  # newest first
    assert codes("/segments/?page=3") == [f"s{n:02d}" for n in range(20, 25)]
    assert codes("/segments/?sort=size&dir=desc")[:3] == ["s24", "s23", "s22"]
    assert codes("/segments/?sort=name&dir=asc")[:2] == ["s00", "s02"]  # "Segment …" before "Сегмент …"
    assert codes("/segments/?type=static") == ["s00", "s05", "s10", "s15", "s20"]
    assert codes("/segments/?active=no&sort=code&dir=asc") == [f"s{n:02d}" for n in range(0, 25, 3)][:10]
    assert codes("/segments/?size_min=100&size_max=130&sort=size&dir=asc") == ["s10", "s11", "s12", "s13"]
    assert codes("/segments/?q=СЕГМЕНТ 1&sort=code&dir=asc") == ["s11", "s13", "s15", "s17", "s19"]
    week_ago = (now - datetime.timedelta(days=7)).date().isoformat()
    two_days_ago = (now - datetime.timedelta(days=2)).date().isoformat()
    assert codes(f"/segments/?created_from={week_ago}&created_to={two_days_ago}&sort=code&dir=asc") == [
        f"s{n:02d}" for n in range(2, 8)
    ]
    assert "No segments match" in text(marketer.get("/segments/?q=nothing-like-this"))
    # odd input is no error
    assert marketer.get("/segments/?size_min=abc&created_from=yesterday&sort=evil&dir=x&page=-3").status_code == 200
    # htmx asks for the results only
    fragment = marketer.get("/segments/?type=static", htmx=True, headers={"HX-Target": "results"})
    assert "<html" not in text(fragment) and "s05" in text(fragment)


# --- create and edit ---------------------------------------------------------------------

BUILDER_MEN = {
    "match": "all",
    "blocks-0-entity": "customer",
    "blocks-0-match": "all",
    "blocks-0-filters-0-field": "gender",
    "blocks-0-filters-0-op": "in",
    "blocks-0-filters-0-values": "+male",
}


def test_create_saves_canonical_definition_and_queues_a_run(marketer, base):
    page = marketer.get("/segments/new")
    assert page.status_code == 200 and 'id="segment-form"' in text(page)
    response = marketer.post(
        "/segments/new",
        data={
            "name": "Men for 8 March",
            "code": "men_8_march",
            "type": "dynamic",
            "active": "y",
            "in_analytics": "y",
            "interval_minutes": "",
            **BUILDER_MEN,
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/segments/men_8_march")
    saved = Segment.get(Segment.code == "men_8_march")
    assert saved.definition == MEN and saved.in_analytics and saved.active and saved.type == "dynamic"
    assert saved.created_by.email == "mia@example.com"
    assert SegmentRun.get(SegmentRun.segment == saved).trigger == "created"
    page = text(marketer.get("/segments/men_8_march"))
    assert "queued for computation" in page and "Queued" in page
    assert 'hx-trigger="every 2s"' in page  # the runs table follows the queued run
    run_queued()
    page = text(marketer.get("/segments/men_8_march"))
    assert 'hx-trigger="every 2s"' not in page
    assert re.search(r'<dd><a href="/customers/\?segment=men_8_march">4</a></dd>', page)
    assert "+4" in page  # entered, in the runs and in the entries by day


def test_bad_input_is_shown_at_its_field_block_and_filter(marketer, base):
    segment("taken")
    response = marketer.post(
        "/segments/new",
        data={
            "name": "  ",
            "code": "taken",
            "type": "dynamic",
            "match": "all",
            "blocks-0-entity": "deal",
            "blocks-0-match": "all",
            "blocks-0-having_match": "all",
            "blocks-0-filters-0-field": "stage_kind",
            "blocks-0-filters-0-op": "in",
            "blocks-0-filters-0-values": "+won",
            "blocks-1-entity": "customer",
            "blocks-1-match": "all",
            "blocks-1-filters-0-field": "age",
            "blocks-1-filters-0-op": "between",
            "blocks-1-filters-0-from": "eighteen",
        },
    )
    assert response.status_code == 422
    page = text(response)
    assert re.search(r'id="name-error">Enter a name\.<', page)
    assert re.search(r'id="code-error">The code “taken” is taken by another segment\.<', page)
    block_slot = re.search(r'<div id="err-blocks-0" [^>]*>(.*?)</div>', page, re.S).group(1)
    assert "Deal pipeline filter is not set" in block_slot
    filter_slot = re.search(r'<div id="err-blocks-1-filters-0" [^>]*>(.*?)</div>', page, re.S).group(1)
    assert "Age: “from” must be a number" in filter_slot
    # what was entered is kept
    assert 'value="+won"' in page and 'value="eighteen"' in page
    assert Segment.select().count() == 1


def test_code_is_suggested_checked_live_and_reserved_words_refused(marketer):
    segment("men")
    row = text(marketer.post("/segments/code", htmx=True, data={"name": "Мужчины к 8 марта", "code_touched": "0"}))
    assert 'value="muzhchiny_k_8_marta"' in row and "Available" in row
    row = text(marketer.post("/segments/code", htmx=True, data={"name": "Men", "code_touched": "0"}))
    assert 'value="men_2"' in row and "Available" in row  # the suggestion is a free code
    row = text(marketer.post("/segments/code", htmx=True, data={"name": "x", "code": "men", "code_touched": "1"}))
    assert "is taken by another segment" in row and 'aria-invalid="true"' in row
    row = text(marketer.post("/segments/code", htmx=True, data={"code": "Bad Code", "code_touched": "1"}))
    assert "Use lowercase letters" in row
    row = text(marketer.post("/segments/code", htmx=True, data={"code": "new", "code_touched": "1"}))
    assert "reserved" in row
    response = marketer.post("/segments/new", data={"name": "New", "code": "new", "type": "dynamic", "match": "all"})
    assert response.status_code == 422 and not Segment.select().where(Segment.code == "new").exists()


def test_edit_keeps_the_definition_and_system_segments_keep_code_and_cannot_be_deleted(marketer, base):
    men = segment("men", "Men")
    page = text(marketer.get("/segments/men/edit"))
    assert 'value="+male"' in page and 'name="segment_code" value="men"' in page
    response = marketer.post(
        "/segments/men/edit",
        data={"name": "Men (renamed)", "code": "men", "type": "dynamic", "active": "y", **BUILDER_MEN},
    )
    assert response.status_code == 302
    men = Segment.get_by_id(men.id)
    assert men.name == "Men (renamed)" and men.definition == MEN
    assert SegmentRun.select().count() == 0  # nothing to recompute: the definition did not change

    system.ensure_system_segments()
    lost = Segment.get(Segment.code == "system_lost")
    page = text(marketer.get("/segments/system_lost"))
    assert ">System<" in page and "/segments/system_lost/delete" not in page
    edit = text(marketer.get("/segments/system_lost/edit"))
    assert re.search(r'<input type="text" id="code" name="code" value="system_lost"[^>]*disabled', edit)
    # the disabled code is not sent; the segment keeps it
    fields = {
        "name": "Lost ones",
        "type": "dynamic",
        "active": "y",
        "match": "all",
        "blocks-0-entity": "order",
        "blocks-0-match": "all",
        "blocks-0-having_match": "all",
        "blocks-0-having-0-agg": "last_at",
        "blocks-0-having-0-op": "relative",
        "blocks-0-having-0-to_n": "366",
        "blocks-0-having-0-to_dir": "ago",
    }
    assert marketer.post("/segments/system_lost/edit", data=fields).status_code == 302
    lost = Segment.get_by_id(lost.id)
    assert lost.code == "system_lost" and lost.name == "Lost ones"
    confirm = marketer.get("/segments/system_lost/delete")
    assert "System segments cannot be deleted" in text(confirm)
    assert marketer.post("/segments/system_lost/delete").status_code == 409
    assert Segment.select().where(Segment.code == "system_lost").exists()


def test_delete_asks_first_and_refuses_used_segments(marketer, base):
    men = segment("men", "Men", size=4)
    SegmentMember.create(segment=men, customer=base["c1"])
    uses = segment(
        "uses_men",
        "Uses men",
        definition={
            "version": 1,
            "match": "all",
            "blocks": [
                {
                    "entity": "segment",
                    "match": "all",
                    "filters": [{"field": "segment", "op": "in", "values": [{"value": "men", "exclude": False}]}],
                }
            ],
        },
    )
    confirm = text(marketer.get("/segments/men/delete"))
    assert "Other segments use it: Uses men" in confirm and "Delete segment</button>" not in confirm
    assert marketer.post("/segments/men/delete").status_code == 409
    # its code cannot change under the segments that read it
    response = marketer.post(
        "/segments/men/edit", data={"name": "Men", "code": "males", "type": "dynamic", "active": "y", **BUILDER_MEN}
    )
    assert response.status_code == 422 and "The code cannot change" in text(response)
    confirm = text(marketer.get("/segments/uses_men/delete"))
    assert "Delete segment</button>" in confirm and "Its 0 members" in confirm
    response = marketer.post("/segments/uses_men/delete")
    assert response.status_code == 302 and not Segment.select().where(Segment.id == uses.id).exists()
    assert "1 member" in text(marketer.get("/segments/men/delete"))
    marketer.post("/segments/men/delete")
    assert Segment.select().count() == 0 and Customer.select().count() == 8


def test_managers_read_but_do_not_change(manager, base):
    segment("men", "Men")
    page = text(manager.get("/segments/"))
    assert "Men" in page and "Create segment" not in page
    page = text(manager.get("/segments/men"))
    assert "Recompute now" not in page and "/segments/men/edit" not in page
    assert manager.get("/segments/new").status_code == 403
    assert manager.get("/segments/men/edit").status_code == 403
    assert manager.get("/segments/men/delete").status_code == 403
    assert manager.post("/segments/men/recompute", htmx=True).status_code == 403
    assert manager.post("/segments/preview", htmx=True, data={"match": "all"}).status_code == 403
    assert manager.post("/segments/builder", htmx=True, data={"action": "add_block:customer"}).status_code == 403
    assert manager.get("/segments/options/user", htmx=True).status_code == 403  # the builder's pickers too


# --- the segment page, recompute, history -------------------------------------------------


def test_recompute_now_and_the_reason_when_skipped(marketer, base):
    user = User.get(User.email == "mia@example.com")
    men = segment("men", "Men", active=True)
    runs = text(marketer.post("/segments/men/recompute", htmx=True))
    assert "Recomputation queued" in runs and 'hx-trigger="every 2s"' in runs and 'id="seg-kpis"' in runs
    run = SegmentRun.get(SegmentRun.segment == men)
    assert run.trigger == "user" and run.requested_by_id == user.id
    run_queued()
    runs = text(marketer.get("/segments/men/runs", htmx=True))
    assert "every 2s" not in runs and "Done" in runs and "+4" in runs and ">4<" in runs

    segment("paused", "Paused", active=False)
    runs = text(marketer.post("/segments/paused/recompute", htmx=True))
    assert "The segment is inactive: it is not recomputed until you activate it." in runs
    assert 'role="alert"' in runs
    frozen = segment("frozen", "Frozen", type="static")
    response = marketer.post("/segments/frozen/recompute")  # without htmx: back to the page with the reason
    assert response.status_code == 302
    assert "A static segment is frozen" in text(marketer.get("/segments/frozen"))
    assert SegmentRun.select().where(SegmentRun.segment == frozen).count() == 0


def test_segment_page_shows_definition_members_chart_and_entries_by_day(marketer, base):
    men = segment("men", "Men")
    run = runs.request_run(men, trigger="user")
    runs.execute_run(run.id)
    base["c1"].gender = "female"
    base["c1"].save()
    run = runs.request_run(men, trigger="user")
    runs.execute_run(run.id)
    page = text(marketer.get("/segments/men"))
    assert "Gender" in page and '✓</span> <span class="visually-hidden"></span>Male' in page
    assert page.count('<svg class="size-chart') == 1 and page.count("<circle") == 2
    assert re.search(r'hx-get="/segments/men/changes\?days_page=1"\s+hx-trigger="revealed"', page)  # when scrolled to
    changes = text(marketer.get("/segments/men/changes", htmx=True))
    today = datetime.date.today().isoformat()
    row = re.search(rf"<td class=\"nowrap\">{today}</td>(.*?)</tr>", changes, re.S).group(1)
    assert "+4" in row and "−1" in row
    day = text(marketer.get(f"/segments/men/changes/{today}", htmx=True))
    assert day.count(">entered<") == 4 and day.count(">exited<") == 1 and "/customers/" in day
    assert marketer.get("/segments/men/changes/not-a-day").status_code == 404
    members = re.findall(r'href="/customers/(\d+)"', page.split('id="members-h"')[1].split("</section>")[0])
    assert sorted(int(m) for m in members) == sorted(c.id for c in Customer.select().join(SegmentMember))


def test_entries_by_day_are_local_days_whatever_the_offset_was(app, marketer, base):
    """Europe/Berlin is UTC+2 in summer and UTC+1 in winter: a change at
    22:30 UTC on 1 July is on 2 July there, and one at 23:30 UTC on 28 March
    (before the clocks change at 01:00 UTC on the 29th) is on the 29th; the
    days are counted with each instant's own offset, not today's."""
    app.config["TZ"] = "Europe/Berlin"
    men = segment("men", "Men")
    at = {
        "summer": datetime.datetime(2026, 7, 1, 22, 30),
        "spring": datetime.datetime(2026, 3, 28, 23, 30),
        "winter": datetime.datetime(2026, 1, 10, 22, 59),
        "same": datetime.datetime(2026, 1, 10, 23, 0),
    }
    SegmentChange.create(segment=men, customer=base["c1"], change="entered", at=at["summer"])
    SegmentChange.create(
        segment=men, customer=base["c1"], change="exited", at=at["summer"] + datetime.timedelta(hours=1)
    )
    SegmentChange.create(segment=men, customer=base["c2"], change="entered", at=at["spring"])
    SegmentChange.create(segment=men, customer=base["c3"], change="entered", at=at["winter"])
    SegmentChange.create(segment=men, customer=base["c3"], change="exited", at=at["same"])
    changes = text(marketer.get("/segments/men/changes", htmx=True))
    days = re.findall(r'<td class="nowrap">(\d{4}-\d\d-\d\d)</td>(.*?)</tr>', changes, re.S)
    assert [d for d, _row in days] == ["2026-07-02", "2026-03-29", "2026-01-11", "2026-01-10"]
    summer = dict(days)["2026-07-02"]
    assert "+1" in summer and "−1" in summer
    day = text(marketer.get("/segments/men/changes/2026-07-02", htmx=True))
    assert day.count(">entered<") == 1 and day.count(">exited<") == 1


def test_customers_list_filtered_by_segment(marketer, base):
    men = segment("men", "Men")
    for ext in ("c1", "c3"):
        SegmentMember.create(segment=men, customer=base[ext])
    page = text(marketer.get("/customers/?segment=men"))
    assert "1–2 of 2" in page and 'name="segment" value="men"' in page
    # The names are matched as links: a bare "C2" can turn up inside the page's random CSRF token.
    assert ">C1</a>" in page and ">C3</a>" in page and ">C2</a>" not in page
    assert "1–1 of 1" in text(marketer.get("/customers/?segment=men&q=c3"))
    assert marketer.get("/customers/?segment=no_such").status_code == 404


def test_customer_card_lists_segment_entries_and_exits(marketer, base):
    men = segment("men", "Men")
    runs.execute_run(runs.request_run(men, trigger="user").id)
    base["c1"].gender = None
    base["c1"].save()
    runs.execute_run(runs.request_run(men, trigger="user").id)
    card = text(marketer.get(f"/customers/{base['c1'].id}"))
    assert f'hx-get="/segments/customers/{base["c1"].id}/history" hx-trigger="revealed"' in card
    history = text(marketer.get(f"/segments/customers/{base['c1'].id}/history", htmx=True))
    assert "Not in any segment" in history
    assert history.index(">exited<") < history.index(">entered<")  # newest first
    history = text(marketer.get(f"/segments/customers/{base['c3'].id}/history", htmx=True))
    assert 'href="/segments/men">Men</a>' in history and ">entered<" in history
