"""GET /segments/{code}/versions (issue 18): the saved versions of a segment's
definition, newest first, in keyset pages. SQLite and PostgreSQL."""


def city_is(city):
    return {
        "version": 1,
        "blocks": [{"entity": "customer", "filters": [{"field": "city", "op": "in", "values": [{"value": city}]}]}],
    }


def test_versions_are_listed_newest_first_in_pages(api, token_for, client, queue_server):
    status, _seg = api.post("/segments", {"code": "v", "name": "V", "definition": city_is("Москва")})
    assert status == 201
    status, _seg = api.put("/segments/v", {"code": "v", "name": "V", "definition": city_is("Hà Nội")})
    assert status == 200
    status, data = api.get("/segments/v/versions?limit=1")
    assert status == 200 and len(data["items"]) == 1 and data["next_cursor"]
    latest = data["items"][0]
    assert latest["number"] == 2 and latest["restored_from"] is None and latest["size"] is None
    assert latest["definition"]["blocks"][0]["filters"][0]["values"] == [{"value": "Hà Nội", "exclude": False}]
    assert latest["created_by"].endswith("@example.com") and latest["created_at"].endswith("Z")
    assert latest["type"] == "dynamic" and latest["interval_minutes"] is None
    status, rest = api.get(f"/segments/v/versions?limit=1&cursor={data['next_cursor']}")
    assert [v["number"] for v in rest["items"]] == [1] and rest["next_cursor"] is None
    assert api.get("/segments/nope/versions")[0] == 404
    assert api.get("/segments/v/versions?cursor=garbage")[0] == 400
