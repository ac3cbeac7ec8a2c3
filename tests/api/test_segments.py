"""Segment endpoints on both databases: CRUD and its 409/422, recompute and
runs, members and history pages that stay right while data changes, preview."""

import datetime

from conftest import work_off
from redis import Redis
from rq import Queue

from webapp.db import database
from webapp.models import Customer, Segment, SegmentChange, SegmentMember, SegmentRun, utcnow
from webapp.segments.runs import apply_members

EVERYONE = {"version": 1, "match": "all", "blocks": []}


def city_is(city):
    return {
        "version": 1,
        "blocks": [{"entity": "customer", "filters": [{"field": "city", "op": "in", "values": [{"value": city}]}]}],
    }


def work(queue_server):
    work_off(queue_server)


def test_create_get_list_update_delete(api, queue_server):
    Queue("default", connection=Redis.from_url(queue_server)).empty()
    status, seg = api.post(
        "/segments",
        {
            "code": "moscow",
            "name": "Moscow",
            "type": "dynamic",
            "active": True,
            "in_analytics": True,
            "definition": city_is("Москва"),
        },
    )
    assert status == 201, seg
    assert api.last.headers["Location"].endswith("/api/v1/segments/moscow")
    assert {k: seg[k] for k in ("code", "name", "type", "active", "in_analytics", "size", "computed_at")} == {
        "code": "moscow",
        "name": "Moscow",
        "type": "dynamic",
        "active": True,
        "in_analytics": True,
        "size": None,
        "computed_at": None,
    }
    assert seg["created_by"] == "admin-0@example.com" and seg["created_at"].endswith("Z")
    assert seg["definition"]["blocks"][0]["filters"][0]["values"] == [{"value": "Москва", "exclude": False}]
    assert SegmentRun.get().trigger == "created"  # queued at once

    assert api.get("/segments/moscow") == (200, seg)
    status, listing = api.get("/segments")
    assert [s["code"] for s in listing["items"]] == ["moscow"]

    status, changed = api.put("/segments/moscow", {"name": "Moscow city"})
    assert status == 200 and changed["name"] == "Moscow city" and changed["in_analytics"] is True
    assert SegmentRun.select().count() == 1  # same definition: not queued again (the queued run is reused)
    work(queue_server)
    status, changed = api.put("/segments/moscow", {"definition": city_is("Казань")})
    assert status == 200 and SegmentRun.select().where(SegmentRun.trigger == "edited").count() == 1

    assert api.delete("/segments/moscow") == (204, None)
    assert api.get("/segments/moscow")[0] == 404
    assert api.delete("/segments/moscow")[0] == 404


def test_conflicts_and_invalid_definitions(api):
    assert api.post("/segments", {"code": "base", "name": "Base", "definition": EVERYONE})[0] == 201
    status, data = api.post("/segments", {"code": "base", "name": "Again", "definition": EVERYONE})
    assert status == 409 and data["error"]["code"] == "conflict"
    assert data["error"]["details"][0]["field"] == "code"

    bad = {
        "version": 1,
        "blocks": [
            {"entity": "customer", "filters": [{"field": "city", "op": "in", "values": [{"value": "A"}]}]},
            {"entity": "deal", "filters": [{"field": "stage", "op": "in", "values": [{"value": "Won"}]}]},
        ],
    }
    status, data = api.post("/segments", {"code": "deals", "name": "Deals", "definition": bad})
    assert status == 422 and data["error"]["code"] == "invalid"
    problem = data["error"]["details"][0]
    assert (problem["field"], problem["block"]) == ("definition", 2)
    assert "Deal pipeline filter is not set" in problem["message"]
    status, data = api.post(
        "/segments",
        {
            "code": "f",
            "name": "F",
            "definition": {
                "version": 1,
                "blocks": [{"entity": "customer", "filters": [{"field": "nope", "op": "in", "values": []}]}],
            },
        },
    )
    assert status == 422 and (data["error"]["details"][0]["block"], data["error"]["details"][0]["filter"]) == (1, 1)

    for body, field in (
        ({"name": "x", "definition": EVERYONE}, "code"),
        ({"code": "x", "name": 5, "definition": EVERYONE}, "name"),
        ({"code": "x", "name": "x", "definition": EVERYONE, "active": "yes"}, "active"),
        ({"code": "x", "name": "x", "definition": EVERYONE, "type": "smart"}, "type"),
        ({"code": "x", "name": "x", "definition": [1]}, "definition"),
        ({"code": "Bad Code", "name": "x", "definition": EVERYONE}, "code"),
        ({"code": "x", "name": "x", "definition": EVERYONE, "colour": "red"}, "colour"),
    ):
        status, data = api.post("/segments", body)
        assert status == 422 and field in [d["field"] for d in data["error"]["details"]], (body, data)
    assert [s.code for s in Segment.select()] == ["base"]

    # a segment used by another cannot be deleted
    uses = {
        "version": 1,
        "blocks": [{"entity": "segment", "filters": [{"field": "segment", "op": "in", "values": [{"value": "base"}]}]}],
    }
    assert api.post("/segments", {"code": "user", "name": "User", "definition": uses})[0] == 201
    status, data = api.delete("/segments/base")
    assert status == 409 and "User" in data["error"]["message"]
    # renaming a segment to a taken code
    assert api.post("/segments", {"code": "third", "name": "Third", "definition": EVERYONE})[0] == 201
    assert api.put("/segments/third", {"code": "base"})[0] == 409


def test_recompute_and_run(api, queue_server):
    Queue("default", connection=Redis.from_url(queue_server)).empty()
    api.put("/customers/c1", {"city": "Москва"})
    api.put("/customers/c2", {"city": "москва "})
    api.put("/customers/c3", {"city": "Казань"})
    api.post("/segments", {"code": "moscow", "name": "Moscow", "definition": city_is("МОСКВА")})
    work(queue_server)
    status, data = api.post("/segments/moscow/recompute")
    assert status == 202 and api.last.headers["Location"].endswith(f"/runs/{data['run_id']}")
    status, run = api.get(f"/runs/{data['run_id']}")
    assert (status, run["status"], run["segment"], run["trigger"]) == (200, "queued", "moscow", "user")
    work(queue_server)
    status, run = api.get(f"/runs/{data['run_id']}")
    assert (run["status"], run["size"], run["entered"], run["exited"], run["error"]) == ("done", 2, 0, 0, None)
    assert run["started_at"] <= run["finished_at"]
    first = api.get(f"/runs/{data['run_id'] - 1}")[1]
    assert (first["trigger"], first["entered"]) == ("created", 2)
    assert api.get("/segments/moscow")[1]["size"] == 2

    assert api.put("/segments/moscow", {"active": False})[0] == 200
    status, data = api.post("/segments/moscow/recompute")
    assert status == 409 and "inactive" in data["error"]["message"]
    assert api.post("/segments/nope/recompute")[0] == 404
    assert api.get("/runs/999999")[0] == 404


def _members_all(api, path, limit):
    seen, cursor, pages = [], None, 0
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, data = api.get(path + query)
        assert status == 200, data
        seen.extend(item["external_id"] for item in data["items"])
        pages += 1
        cursor = data["next_cursor"]
        if cursor is None:
            return seen, pages


def test_members_pages_stay_right_while_members_change(api, db):
    segment = Segment.create(code="all", name="All", definition=EVERYONE)
    for i in range(25):
        Customer.create(external_id=f"c{i:02d}", email=f"c{i}@example.com")
    with database.atomic():
        apply_members(segment.id, Customer.select(Customer.id), at=utcnow())
    seen, cursor = [], None
    status, data = api.get("/segments/all/members?limit=10")
    assert [i["external_id"] for i in data["items"]] == [f"c{i:02d}" for i in range(10)]
    item = data["items"][0]
    assert item["email"] == "c0@example.com" and item["member_since"].endswith("Z")
    seen += [i["external_id"] for i in data["items"]]
    cursor = data["next_cursor"]
    # while paging: a member already seen leaves, one not yet seen leaves, a new one enters
    SegmentMember.delete().where(
        SegmentMember.customer.in_(Customer.select(Customer.id).where(Customer.external_id.in_(["c03", "c15"])))
    ).execute()
    new = Customer.create(external_id="z-new")
    SegmentMember.create(segment=segment, customer=new)
    while cursor:
        status, data = api.get(f"/segments/all/members?limit=10&cursor={cursor}")
        seen += [i["external_id"] for i in data["items"]]
        cursor = data["next_cursor"]
    expected = [f"c{i:02d}" for i in range(25) if i != 15] + ["z-new"]
    assert seen == expected  # nothing repeated, nothing that stayed was skipped
    assert _members_all(api, "/segments/all/members", 1000) == (
        [f"c{i:02d}" for i in range(25) if i not in (3, 15)] + ["z-new"],
        1,
    )
    assert api.get("/segments/nope/members")[0] == 404


def test_history_with_since_until_and_cursor(api, db):
    segment = Segment.create(code="h", name="H", definition=EVERYONE)
    customers = [Customer.create(external_id=f"h{i}") for i in range(6)]
    base = datetime.datetime(2025, 3, 1, 12, 0)
    run = SegmentRun.create(segment=segment, status="done")
    for i, customer in enumerate(customers):
        SegmentChange.create(
            segment=segment,
            customer=customer,
            change="entered",
            at=base + datetime.timedelta(days=i),
            run=run if i % 2 else None,
        )
    SegmentChange.create(segment=segment, customer=customers[0], change="exited", at=base + datetime.timedelta(days=9))
    status, data = api.get("/segments/h/history?limit=4")
    assert [(i["external_id"], i["change"]) for i in data["items"]] == [
        ("h0", "entered"),
        ("h1", "entered"),
        ("h2", "entered"),
        ("h3", "entered"),
    ]
    assert data["items"][0] == {"external_id": "h0", "change": "entered", "at": "2025-03-01T12:00:00Z", "run_id": None}
    assert data["items"][1]["run_id"] == run.id
    status, rest = api.get(f"/segments/h/history?limit=4&cursor={data['next_cursor']}")
    assert [i["external_id"] for i in rest["items"]] == ["h4", "h5", "h0"] and rest["next_cursor"] is None
    status, data = api.get("/segments/h/history?since=2025-03-02T12:00:00Z&until=2025-03-04")
    assert [i["external_id"] for i in data["items"]] == ["h1", "h2"]
    status, data = api.get("/segments/h/history?since=2025-03-09")
    assert [i["change"] for i in data["items"]] == ["exited"]
    status, data = api.get("/segments/h/history?since=yesterday")
    assert status == 400 and data["error"]["details"] == {"parameter": "since"}


def test_preview(api, db):
    for i in range(30):
        api.put(f"/customers/p{i:02d}", {"city": "Тверь" if i % 2 else "Псков", "birth_date": "1990-06-15"})
    status, data = api.post("/segments/preview", {"definition": city_is("тверь")})
    assert status == 200 and data["count"] == 15
    assert [c["external_id"] for c in data["sample"]] == [f"p{i:02d}" for i in range(1, 30, 2)]
    status, data = api.post("/segments/preview", {"definition": EVERYONE})
    assert data["count"] == 30 and len(data["sample"]) == 20
    birthday = {
        "version": 1,
        "blocks": [
            {
                "entity": "customer",
                "filters": [
                    {"field": "birth_date", "op": "relative", "from_days": 0, "to_days": 0, "ignore_year": True}
                ],
            }
        ],
    }
    assert api.post("/segments/preview", {"definition": birthday, "at": "2024-06-15T10:00:00"})[1]["count"] == 30
    assert api.post("/segments/preview", {"definition": birthday, "at": "2024-06-16T10:00:00Z"})[1]["count"] == 0
    status, data = api.post("/segments/preview", {"definition": birthday, "at": "soon"})
    assert status == 422 and data["error"]["details"][0]["field"] == "at"
    status, data = api.post(
        "/segments/preview",
        {
            "definition": {
                "version": 1,
                "blocks": [{"entity": "order", "having": [{"agg": "sum", "op": "between", "from": "many"}]}],
            }
        },
    )
    assert status == 422 and data["error"]["details"][0]["block"] == 1
    assert api.post("/segments/preview", {})[0] == 422
