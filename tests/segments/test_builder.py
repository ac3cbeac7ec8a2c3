"""The builder's form <-> definition mapping, structural actions, relative dates
in words, and the round trip: every definition the spec allows is drawn by the
builder and comes back unchanged, through real HTTP on SQLite and PostgreSQL."""

import datetime
import html
import json
import re

import pytest
from engine.strategies import definitions, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from webapp.engine import catalogue, parse_definition, to_json
from webapp.models import Segment
from webapp.segments import builder as b

from .formdata import form_fields


def form(*pairs):
    return MultiDict(list(pairs))


def test_form_reads_every_kind_of_input(db):
    cat = catalogue()
    data = b.definition_from_form(
        form(
            ("match", "any"),
            ("blocks-0-entity", "customer"),
            ("blocks-0-match", "all"),
            ("blocks-0-filters-0-field", "city"),
            ("blocks-0-filters-0-op", "in"),
            ("blocks-0-filters-0-values", "+Москва"),
            ("blocks-0-filters-0-values", "-Hà Nội"),
            ("blocks-0-filters-0-values", "+"),  # an empty chip is nothing
            ("blocks-0-filters-1-field", "birth_date"),
            ("blocks-0-filters-1-op", "relative"),
            ("blocks-0-filters-1-from_n", "3"),
            ("blocks-0-filters-1-from_dir", "ahead"),
            ("blocks-0-filters-1-to_n", "3"),
            ("blocks-0-filters-1-to_dir", "ahead"),
            ("blocks-0-filters-1-ignore_year", "1"),
            ("blocks-0-filters-2-field", "email_consent"),
            ("blocks-0-filters-2-op", "is"),
            ("blocks-0-filters-2-value", "false"),
            ("blocks-0-filters-3-field", "email"),
            ("blocks-0-filters-3-op", "contains"),
            ("blocks-0-filters-3-value", "@mail.ru"),
            ("blocks-1-entity", "order"),
            ("blocks-1-match", "any"),
            ("blocks-1-having_match", "any"),
            ("blocks-1-filters-0-field", "total"),
            ("blocks-1-filters-0-op", "between"),
            ("blocks-1-filters-0-from", "1 000,50"),
            ("blocks-1-filters-0-to", ""),
            ("blocks-1-having-0-agg", "last_at"),
            ("blocks-1-having-0-op", "relative"),
            ("blocks-1-having-0-from_n", ""),
            ("blocks-1-having-0-to_n", "90"),
            ("blocks-1-having-0-to_dir", "ago"),
            ("blocks-1-having-1-agg", "count"),
            ("blocks-1-having-1-op", "between"),
            ("blocks-1-having-1-from", "2"),
            ("blocks-1-having-1-to", "two"),
            ("q", "ignored search text"),
        ),
        cat,
    )
    assert data == {
        "version": 1,
        "match": "any",
        "blocks": [
            {
                "entity": "customer",
                "match": "all",
                "filters": [
                    {
                        "field": "city",
                        "op": "in",
                        "values": [{"value": "Москва", "exclude": False}, {"value": "Hà Nội", "exclude": True}],
                    },
                    {"field": "birth_date", "op": "relative", "from_days": 3, "to_days": 3, "ignore_year": True},
                    {"field": "email_consent", "op": "is", "value": False},
                    {"field": "email", "op": "contains", "value": "@mail.ru"},
                ],
            },
            {
                "entity": "order",
                "match": "any",
                "filters": [{"field": "total", "op": "between", "from": 1000.5}],
                "having": [
                    {"agg": "last_at", "op": "relative", "to_days": -90},
                    {"agg": "count", "op": "between", "from": 2, "to": "two"},
                ],
                "having_match": "any",
            },
        ],
    }
    # what does not parse is passed on as typed, and the engine says where it is wrong
    with pytest.raises(Exception) as exc:
        parse_definition(data, catalogue=cat)
    assert [(e["block"], e["agg"]) for e in exc.value.errors] == [(2, 2)]
    assert "“to” must be a number" in exc.value.errors[0]["message"]


def test_structural_actions(db):
    cat = catalogue()
    data = b.empty_definition()
    assert b.apply_action(data, "add_block:deal", cat) == "blocks-0-filters-0"
    assert data["blocks"][0] == {
        "entity": "deal",
        "match": "all",
        "having": [],
        "having_match": "all",
        "filters": [{"field": "pipeline", "op": "in", "values": []}],
    }
    b.apply_action(data, "add_block:customer", cat)
    assert b.apply_action(data, "add_filter:blocks-1:email_consent", cat) == "blocks-1-filters-0"
    assert data["blocks"][1]["filters"] == [{"field": "email_consent", "op": "is", "value": True}]
    b.apply_action(data, "add_filter:blocks-1:birth_date", cat)
    flt = data["blocks"][1]["filters"][1]
    assert flt == {"field": "birth_date", "op": "between"}
    flt.update({"from": "2024-03-08", "to": "2024-03-10", "ignore_year": True})
    b.apply_action(data, "ignore_year:blocks-1-filters-1", cat)
    assert (flt["from"], flt["to"]) == ("03-08", "03-10")  # the month and day of the dates
    flt["op"] = "relative"
    b.apply_action(data, "set_op:blocks-1-filters-1", cat)
    assert data["blocks"][1]["filters"][1] == {"field": "birth_date", "op": "relative", "ignore_year": True}
    assert b.apply_action(data, "add_condition:blocks-0:sum", cat) == "blocks-0-having-0"
    assert b.apply_action(data, "add_condition:blocks-1:sum", cat) is None  # customers have no records
    assert b.apply_action(data, "add_filter:blocks-1:no_such_field", cat) is None
    assert b.apply_action(data, "remove:blocks-0", cat) == "add-block"
    assert [blk["entity"] for blk in data["blocks"]] == ["customer"]
    assert b.apply_action(data, "remove:blocks-0-filters-0", cat) == "blocks-0"
    assert [f["field"] for f in data["blocks"][0]["filters"]] == ["birth_date"]
    assert b.apply_action(data, "remove:blocks-7", cat) is None  # a stale position changes nothing


@pytest.mark.parametrize(
    "lo, hi, ignore_year, words",
    [
        (-3, 0, False, "from 3 days ago to today"),
        (3, 3, False, "in 3 days"),
        (3, 3, True, "in 3 days, in any year"),
        (None, -90, False, "90 days ago or earlier"),
        (-30, None, False, "30 days ago or later"),
        (-1, 1, False, "from yesterday to tomorrow"),
        (-14, 0, False, "from 14 days ago to today"),
        (5, 2, False, "the start is after the end"),
        ("abc", None, False, ""),
    ],
)
def test_relative_dates_in_words(lo, hi, ignore_year, words):
    assert b.relative_words(lo, hi, ignore_year) == words


def test_engine_messages_are_shortened_at_their_slot():
    errors = [
        {"block": 2, "filter": None, "agg": None, "message": "Block 2 (Deals): Deal pipeline filter is not set"},
        {
            "block": 1,
            "filter": 3,
            "agg": None,
            "message": "Block 1 (Customer), filter 3: City: choose at least one value",
        },
        {"block": None, "filter": None, "agg": None, "message": "“match” must be “all” or “any”"},
    ]
    assert b.error_map(errors) == {
        "blocks-1": ["Deal pipeline filter is not set"],
        "blocks-0-filters-2": ["City: choose at least one value"],
        "definition": ["“match” must be “all” or “any”"],
    }


# --- the round trip --------------------------------------------------------------


def _pre(text, element_id):
    match = re.search(rf'<pre id="{element_id}"[^>]*>(.*?)</pre>', text, re.S)
    assert match, f"no #{element_id}"
    return json.loads(html.unescape(match.group(1)))


def load_vocabulary():
    """The custom fields, shops, groups, pipelines, mailings, events and segments the
    engine's strategies draw definitions over (no customers)."""
    from engine import strategies as S
    from engine.reference import World

    from webapp.db import database, is_postgres
    from webapp.models import MODELS

    world = World()
    world.users = dict(S.USERS)
    world.tags = dict(S.TAGS)
    world.custom_fields = {k: dict(v) for k, v in S.CUSTOM_FIELDS.items()}
    world.shops = dict(S.SHOPS)
    world.groups = {gid: {"path": path, "name": path.rsplit("/", 1)[-1]} for gid, path in S.GROUPS.items()}
    world.products = {pid: {"sku": sku, "group_id": gid} for pid, (sku, gid) in S.PRODUCTS.items()}
    world.pipelines = dict(S.PIPELINES)
    world.stages = {sid: {"pipeline_id": p, "name": n, "kind": k} for sid, (p, n, k) in S.STAGES.items()}
    world.mailings = dict(S.MAILINGS)
    world.event_types = dict(S.EVENT_TYPES)
    world.segments = dict(S.SEGMENTS)
    load(world)
    if is_postgres():  # rows were written with explicit ids: move the sequences past them
        for model in MODELS:
            pk = model._meta.primary_key
            if isinstance(pk, type(Segment.id)) and pk.field_type == "AUTO":
                table = model._meta.table_name
                database.execute_sql(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f'COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)'
                )


@pytest.fixture
def rt_marketer(db, app, make_user):
    load_vocabulary()
    from .conftest import Browserish, _login

    client = app.test_client()
    _login(client, make_user, "mia@example.com", "marketer")
    return Browserish(client)


ROUND_TRIP = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
TODAY = datetime.date(2025, 6, 15)


@ROUND_TRIP
@given(data=st.data())
def test_every_definition_round_trips_through_the_builder(rt_marketer, data):
    """Drawn by the builder (edit page), submitted as a browser would, saved back unchanged."""
    marketer = rt_marketer
    raw = data.draw(definitions(TODAY), label="definition")
    canonical = to_json(parse_definition(raw))
    code = f"rt_{Segment.select().count()}"
    Segment.create(code=code, name="Round trip", definition=canonical, active=False)

    page = marketer.get(f"/segments/{code}/edit")
    assert page.status_code == 200
    fields = form_fields(page.get_data(as_text=True), form_id="segment-form")
    # the form alone says exactly the canonical definition
    assert b.definition_from_form(MultiDict(fields), catalogue()) == canonical
    # the live preview sees the same definition
    preview = marketer.post("/segments/preview", data=MultiDict(fields), htmx=True)
    assert preview.status_code == 200 and 'data-valid="true"' in preview.get_data(as_text=True)
    assert _pre(preview.get_data(as_text=True), "json-current") == canonical
    # and saving the untouched form stores it unchanged
    saved = marketer.post(f"/segments/{code}/edit", data=MultiDict(fields))
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    assert Segment.get(Segment.code == code).definition == canonical


@ROUND_TRIP
@given(data=st.data())
def test_pasted_json_is_drawn_by_the_builder_unchanged(rt_marketer, data):
    """Paste JSON -> builder -> the form it draws says the same definition."""
    marketer = rt_marketer
    canonical = to_json(parse_definition(data.draw(definitions(TODAY), label="definition")))
    response = marketer.post(
        "/segments/builder",
        htmx=True,
        data={"action": "load_json", "definition_json": json.dumps(canonical, ensure_ascii=False)},
    )
    assert response.status_code == 200 and response.headers["HX-Trigger-After-Settle"] == "builder-changed"
    assert b.definition_from_form(MultiDict(form_fields(response.get_data(as_text=True))), catalogue()) == canonical
