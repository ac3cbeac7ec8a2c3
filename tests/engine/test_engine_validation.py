"""Validation: every rule rejects with a message naming block and filter; nothing is guessed."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp import engine
from webapp.engine import DefinitionError, parse_definition, to_json
from webapp.fields import service as cf

from .helpers import segment, values

PIPELINE = {"field": "pipeline", "op": "in", "values": [{"value": "Memberships"}]}


def rejected(data, **kw):
    with pytest.raises(DefinitionError) as info:
        parse_definition(data, **kw)
    return info.value


def test_messages_name_block_and_filter(db):
    error = rejected(
        {
            "blocks": [
                {
                    "entity": "customer",
                    "filters": [
                        {"field": "city", "op": "in", "values": values("x")},
                        {"field": "city", "op": "is_empty"},
                        {"field": "foo", "op": "is_empty"},
                    ],
                },
                {"entity": "deal", "filters": []},
            ]
        }
    )
    assert error.messages == [
        "Block 1 (Customer), filter 3: Unknown field “foo”",
        "Block 2 (Deals): Deal pipeline filter is not set",
    ]
    assert error.errors[0] == {
        "block": 1,
        "filter": 3,
        "agg": None,
        "message": "Block 1 (Customer), filter 3: Unknown field “foo”",
    }
    assert error.errors[1]["block"] == 2 and error.errors[1]["filter"] is None
    assert str(error) == "\n".join(error.messages)


@pytest.mark.parametrize(
    "flt, message",
    [
        ({"field": "custom.nope", "op": "is_empty"}, "Unknown field “custom.nope”"),
        ({"op": "is_empty"}, "choose a field"),
        ({"field": "city"}, "City: choose an operator"),
        ({"field": "city", "op": "like"}, "City: unknown operator “like”"),
        ({"field": "city", "op": "between", "from": 1}, "City: “between” does not apply"),
        ({"field": "total", "op": "in", "values": values("1")}, "Unknown field “total”"),
        ({"field": "age", "op": "contains", "value": "1"}, "Age: “contains” does not apply"),
        ({"field": "email_consent", "op": "in", "values": values("yes")}, "Email consent: “in” does not apply"),
        ({"field": "city", "op": "in", "values": []}, "City: choose at least one value"),
        ({"field": "city", "op": "in", "values": "Москва"}, "City: choose at least one value"),
        ({"field": "city", "op": "in", "values": ["Москва"]}, "City: each value must be"),
        ({"field": "city", "op": "in", "values": [{"value": "  "}]}, "City: each value must be non-empty text"),
        ({"field": "city", "op": "in", "values": [{"value": 5}]}, "City: each value must be non-empty text"),
        (
            {"field": "city", "op": "in", "values": [{"value": "x", "exclude": "yes"}]},
            "City: “exclude” must be true or false",
        ),
        ({"field": "gender", "op": "in", "values": values("other")}, "Gender: “other” is not an option"),
        ({"field": "city", "op": "contains", "value": ""}, "City: “value” must be non-empty text"),
        ({"field": "city", "op": "in", "values": values("x"), "vaules": []}, "City: unexpected “vaules” with “in”"),
        ({"field": "age", "op": "between"}, "Age: set “from” or “to”"),
        ({"field": "age", "op": "between", "from": "18"}, "Age: “from” must be a number"),
        ({"field": "age", "op": "between", "from": True}, "Age: “from” must be a number"),
        ({"field": "age", "op": "between", "from": 40, "to": 18}, "Age: “from” is after “to”"),
        ({"field": "birth_date", "op": "between", "from": "2025-02-30"}, "Birth date: “from” is not a date"),
        ({"field": "birth_date", "op": "between", "from": "15.06.2025"}, "Birth date: “from” is not a date"),
        ({"field": "birth_date", "op": "between", "to": "06-15"}, "Birth date: “to” is not a date"),
        (
            {"field": "birth_date", "op": "between", "from": "2025-06-15", "ignore_year": True},
            "Birth date: “from” is not a month and day",
        ),
        (
            {"field": "birth_date", "op": "between", "from": "02-30", "ignore_year": True},
            "Birth date: “from” is not a month and day",
        ),
        (
            {"field": "birth_date", "op": "between", "from": "13-01", "ignore_year": True},
            "Birth date: “from” is not a month and day",
        ),
        (
            {"field": "birth_date", "op": "between", "from": "01-01", "ignore_year": "yes"},
            "Birth date: “ignore_year” must be true or false",
        ),
        (
            {"field": "created_at", "op": "relative", "from_days": 0, "to_days": 3, "ignore_year": True},
            "Created: “ignore year” applies to dates only, not to dates with a time",
        ),
        (
            {"field": "created_at", "op": "between", "from": "01-01", "ignore_year": True},
            "Created: “ignore year” applies to dates only",
        ),
        ({"field": "birth_date", "op": "relative"}, "Birth date: set “from_days” or “to_days”"),
        ({"field": "birth_date", "op": "relative", "from_days": 1.5}, "Birth date: “from_days” must be a whole number"),
        (
            {"field": "birth_date", "op": "relative", "from_days": 3, "to_days": 0},
            "Birth date: “from_days” is after “to_days”",
        ),
        (
            {"field": "birth_date", "op": "relative", "from_days": 0, "ignore_year": True},
            "Birth date: with “ignore year” set both “from_days” and “to_days”",
        ),
        ({"field": "birth_date", "op": "relative", "from_days": -100000}, "must be between -73000 and 73000 days"),
        ({"field": "email_consent", "op": "is", "value": "true"}, "Email consent: “value” must be true or false"),
        ({"field": "email_consent", "op": "is"}, "Email consent: “value” must be true or false"),
    ],
)
def test_customer_filter_rules(db, flt, message):
    error = rejected({"blocks": [{"entity": "customer", "filters": [flt]}]})
    assert len(error.messages) == 1
    assert error.messages[0].startswith("Block 1 (Customer), filter 1: "), error.messages
    assert message in error.messages[0], error.messages


@pytest.mark.parametrize(
    "block, message",
    [
        (
            {"entity": "order", "filters": [{"field": "total", "op": "between", "from": 99.999}]},
            "Block 1 (Orders), filter 1: Order total: “from” has more than two decimals",
        ),
        (
            {"entity": "order", "having": [{"agg": "median", "op": "is_empty"}]},
            "Block 1 (Orders), condition 1: Unknown aggregate “median”",
        ),
        ({"entity": "order", "having": [{"op": "is_empty"}]}, "Block 1 (Orders), condition 1: choose an aggregate"),
        (
            {"entity": "order", "filters": [{"agg": "count", "op": "between", "from": 1}]},
            "Block 1 (Orders), filter 1: aggregates (“agg”) go in “having”, not in “filters”",
        ),
        (
            {"entity": "message", "having": [{"agg": "sum", "op": "between", "from": 1}]},
            "Block 1 (Messages), condition 1: “sum” does not apply to this block (it applies to: Orders, Deals)",
        ),
        (
            {"entity": "event", "having": [{"agg": "avg", "op": "between", "from": 1}]},
            "Block 1 (Events), condition 1: “avg” does not apply to this block",
        ),
        (
            {"entity": "deal", "filters": [PIPELINE], "having": [{"agg": "quantity", "op": "between", "from": 1}]},
            "Block 1 (Deals), condition 1: “quantity” does not apply to this block (it applies to: Orders)",
        ),
        (
            {"entity": "order", "having": [{"agg": "count", "op": "relative", "from_days": 1}]},
            "Block 1 (Orders), condition 1: Number of records: “relative” does not apply",
        ),
        (
            {"entity": "order", "having": [{"agg": "last_at", "op": "between", "from": 1}]},
            "Block 1 (Orders), condition 1: Last date: “from” is not a date",
        ),
        (
            {"entity": "customer", "having": [{"agg": "count", "op": "between", "from": 1}]},
            "Block 1 (Customer): conditions on records (“having”) apply to order, deal, message and event blocks only",
        ),
        ({"entity": "order", "having_match": "most"}, "Block 1 (Orders): “having_match” must be “all” or “any”"),
        ({"entity": "order", "match": "some"}, "Block 1 (Orders): “match” must be “all” or “any”"),
        ({"entity": "order", "filters": {}}, "Block 1 (Orders): “filters” must be a list"),
        ({"entity": "order", "having": {}}, "Block 1 (Orders): “having” must be a list"),
        ({"entity": "order", "filter": []}, "Block 1 (Orders): unexpected “filter”"),
        ({"entity": "orders"}, "Block 1: unknown block type “orders”"),
        ({"filters": []}, "Block 1: choose what the block is about (entity)"),
        (
            {"entity": "deal", "filters": [{"field": "stage", "op": "in", "values": values("Won")}]},
            "Block 1 (Deals): Deal pipeline filter is not set",
        ),
        (
            {
                "entity": "deal",
                "filters": [
                    {"field": "pipeline", "op": "is_empty"},
                    {"field": "stage", "op": "in", "values": values("Won")},
                ],
            },
            "Block 1 (Deals): with “pipeline is empty” (customers with no deals at all) the block takes no other filter",
        ),
        (
            {
                "entity": "deal",
                "filters": [{"field": "pipeline", "op": "is_empty"}],
                "having": [{"agg": "count", "op": "between", "from": 0, "to": 0}],
            },
            "Block 1 (Deals): with “pipeline is empty”",
        ),
        ({"entity": "segment", "filters": []}, "Block 1 (Segments): choose at least one segment"),
        (
            {"entity": "segment", "filters": [{"field": "segment", "op": "is_empty"}]},
            "Block 1 (Segments), filter 1: Segment: “is_empty” does not apply",
        ),
        (
            {"entity": "segment", "filters": [{"field": "segment", "op": "in", "values": values("ghost")}]},
            "Block 1 (Segments), filter 1: Unknown segment “ghost”",
        ),
        ("customer", "Block 1: a block must be an object"),
    ],
)
def test_block_rules(db, block, message):
    error = rejected({"blocks": [block]})
    assert any(m.startswith(message) for m in error.messages), error.messages


@pytest.mark.parametrize(
    "data, message",
    [
        ("{", "The definition is not valid JSON"),
        ("[]", "A definition must be a JSON object"),
        (b"\xff", "The definition is not UTF-8 text"),
        ({"version": 2}, "Unknown definition version 2 (this version reads 1)"),
        ({"version": "1"}, 'Unknown definition version "1"'),
        ({"match": "most"}, "“match” must be “all” or “any”"),
        ({"blocks": {}}, "“blocks” must be a list"),
        ({"blokcs": []}, "Unexpected “blokcs” in the definition"),
    ],
)
def test_definition_rules(db, data, message):
    error = rejected(data)
    assert error.messages[0].startswith(message), error.messages
    assert error.errors[0]["block"] is None


def test_every_problem_is_reported_at_once(db):
    error = rejected(
        {
            "match": "most",
            "blocks": [
                {"entity": "customer", "filters": [{"field": "nope", "op": "is_empty"}, {"field": "city", "op": "x"}]},
                {"entity": "deal"},
                {"entity": "message", "having": [{"agg": "sum", "op": "between", "from": 1}]},
            ],
        }
    )
    assert [(e["block"], e["filter"], e["agg"]) for e in error.errors] == [
        (None, None, None),
        (1, 1, None),
        (1, 2, None),
        (2, None, None),
        (3, None, 1),
    ]


def test_unknown_segments_and_cycles_through_stored_segments(db):
    segment(
        "a",
        definition={
            "blocks": [{"entity": "segment", "filters": [{"field": "segment", "op": "in", "values": [{"value": "b"}]}]}]
        },
    )
    segment(
        "b",
        definition={
            "blocks": [
                {
                    "entity": "segment",
                    "filters": [{"field": "segment", "op": "in", "values": [{"value": "c", "exclude": True}]}],
                }
            ]
        },
    )
    segment("c")
    segment(
        "frozen",
        type="static",
        definition={
            "blocks": [{"entity": "segment", "filters": [{"field": "segment", "op": "in", "values": [{"value": "c"}]}]}]
        },
    )

    def seg_def(*codes):
        return {
            "blocks": [{"entity": "segment", "filters": [{"field": "segment", "op": "in", "values": values(*codes)}]}]
        }

    # saving c so that it reads a: c -> a -> b -> c
    error = rejected(seg_def("a"), segment_code="c")
    assert error.messages == [
        "Block 1 (Segments), filter 1: segments cannot refer to each other in a cycle: c → a → b → c"
    ]
    error = rejected(seg_def("c"), segment_code="c")
    assert error.messages == ["Block 1 (Segments), filter 1: a segment cannot include itself (“c”)"]
    error = rejected(seg_def("a", "ghost"), segment_code="new")
    assert error.messages == ["Block 1 (Segments), filter 1: Unknown segment “ghost”"]
    # no cycle: a new segment reading a; c reading the static segment (its members are fixed)
    assert parse_definition(seg_def("a"), segment_code="new")
    assert parse_definition(seg_def("frozen"), segment_code="c")
    assert parse_definition(seg_def("a"))  # not saved as a segment: nothing to cycle through


def test_enum_values_match_options_case_insensitively_and_stay_as_written(db):
    cf.create_field("deal", "membership_type", "Membership type", "enum", ["monthly", "annual"])
    definition = parse_definition(
        {
            "blocks": [
                {
                    "entity": "deal",
                    "filters": [PIPELINE, {"field": "custom.membership_type", "op": "in", "values": values("ANNUAL")}],
                }
            ]
        }
    )
    assert definition.blocks[0].filters[1].values[0].value == "ANNUAL"
    error = rejected(
        {
            "blocks": [
                {
                    "entity": "deal",
                    "filters": [PIPELINE, {"field": "custom.membership_type", "op": "in", "values": values("weekly")}],
                }
            ]
        }
    )
    assert error.messages == [
        "Block 1 (Deals), filter 2: Membership type: “weekly” is not an option (options: monthly, annual)"
    ]


RICH = {
    "version": 1,
    "match": "any",
    "blocks": [
        {
            "entity": "customer",
            "match": "any",
            "filters": [
                {
                    "field": "city",
                    "op": "in",
                    "values": [{"value": "Москва", "exclude": True}, {"value": "London", "exclude": False}],
                },
                {"field": "first_name", "op": "contains", "value": "ири"},
                {"field": "birth_date", "op": "between", "from": "12-02", "to": "01-03", "ignore_year": True},
                {"field": "birth_date", "op": "relative", "from_days": 0, "to_days": 3, "ignore_year": True},
                {"field": "created_at", "op": "between", "from": "2025-01-01"},
                {"field": "age", "op": "between", "from": 18, "to": 35.5},
                {"field": "email_consent", "op": "is", "value": False},
                {"field": "tags", "op": "is_empty"},
                {"field": "phone", "op": "is_not_empty"},
                {"field": "custom.pets", "op": "between", "from": 0.25},
            ],
        },
        {
            "entity": "order",
            "match": "all",
            "filters": [
                {"field": "product_group", "op": "in", "values": [{"value": "Tea/Chinese tea", "exclude": False}]},
                {"field": "ordered_at", "op": "relative", "from_days": -90},
                {"field": "total", "op": "between", "from": 99.99, "to": 100},
            ],
            "having": [
                {"agg": "count", "op": "between", "from": 2},
                {"agg": "last_at", "op": "relative", "to_days": -90},
            ],
            "having_match": "any",
        },
        {
            "entity": "deal",
            "match": "all",
            "filters": [PIPELINE | {"values": [{"value": "Memberships", "exclude": False}]}],
            "having": [],
            "having_match": "all",
        },
        {
            "entity": "segment",
            "match": "all",
            "filters": [{"field": "segment", "op": "in", "values": [{"value": "vip", "exclude": False}]}],
        },
    ],
}


def test_to_json_is_canonical_and_round_trips(db):
    cf.create_field("customer", "pets", "Pets", "integer")
    segment("vip")
    definition = parse_definition(RICH)
    data = to_json(definition)
    assert data == RICH
    assert parse_definition(data) == definition
    assert parse_definition(json.dumps(data, ensure_ascii=False)) == definition
    # defaults are written out
    short = parse_definition({"blocks": [{"entity": "order"}]})
    assert to_json(short) == {
        "version": 1,
        "match": "all",
        "blocks": [{"entity": "order", "match": "all", "filters": [], "having": [], "having_match": "all"}],
    }


def test_catalogue_lists_standard_and_custom_fields_for_the_builder(db):
    cf.create_field("customer", "favourite_destination", "Favourite destination", "enum", ["Vietnam", "Italy"])
    cf.create_field("order", "delivery", "Delivery", "enum", ["courier"])
    cat = engine.catalogue()
    city = cat.field("customer", "city")
    assert (city.label, city.type, city.ops) == ("City", "string", ("in", "contains", "is_empty", "is_not_empty"))
    fav = cat.field("customer", "custom.favourite_destination")
    assert (fav.label, fav.type, fav.options, fav.custom_type) == (
        "Favourite destination",
        "enum",
        ("Vietnam", "Italy"),
        "enum",
    )
    assert cat.field("order", "custom.delivery").label == "Delivery"
    assert cat.field("order", "product_group").reference == "product_group"
    assert cat.field("order", "product_group").multi
    assert sorted(cat.entities["message"].aggregates) == ["count", "first_at", "last_at"]
    data = cat.as_json()
    assert [e["entity"] for e in data["entities"]] == ["customer", "order", "deal", "message", "event", "segment"]
    customer_fields = {f["name"]: f for f in data["entities"][0]["fields"]}
    assert customer_fields["custom.favourite_destination"]["options"] == ["Vietnam", "Italy"]
    assert customer_fields["manager"]["reference"] == "user"
    assert data["ops"]["relative"]
    json.dumps(data)  # plain data


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-10, 10)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(
        [
            "",
            " ",
            "in",
            "between",
            "customer",
            "order",
            "deal",
            "segment",
            "city",
            "total",
            "birth_date",
            "12-31",
            "2025-02-30",
            "values",
            "value",
            "all",
            "any",
            "count",
            "Москва",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "match",
                    "blocks",
                    "entity",
                    "filters",
                    "having",
                    "having_match",
                    "field",
                    "agg",
                    "op",
                    "values",
                    "value",
                    "exclude",
                    "from",
                    "to",
                    "from_days",
                    "to_days",
                    "ignore_year",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


def _mutations(data):
    """Every way of replacing one value somewhere in `data` (JSON) by a placeholder."""
    yield data
    if isinstance(data, dict):
        for key, value in data.items():
            for mutated in _mutations(value):
                yield {**data, key: mutated}
            yield {k: v for k, v in data.items() if k != key}
    elif isinstance(data, list):
        for i, value in enumerate(data):
            for mutated in _mutations(value):
                yield data[:i] + [mutated] + data[i + 1 :]


@pytest.mark.sqlite_only
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=JSON, replacement=JSON)
def test_any_json_is_either_a_definition_or_a_definition_error(db, data, replacement):
    """Never a crash (a 500 in the app): arbitrary JSON, and a rich definition
    with its first operator replaced by arbitrary JSON."""
    cat = engine.catalogue()
    spliced = json.loads(json.dumps(RICH).replace('"in"', json.dumps(replacement, default=str), 1))
    for candidate in (data, spliced):
        try:
            parse_definition(candidate, catalogue=cat)
        except DefinitionError as exc:
            assert exc.errors and all(e["message"] for e in exc.errors)


@pytest.mark.sqlite_only
def test_every_single_mutation_of_a_rich_definition_is_handled(db):
    cf.create_field("customer", "pets", "Pets", "integer")
    segment("vip")
    cat = engine.catalogue()
    for placeholder in (None, 7, "x", [], {}, True, 1.5):
        for mutated in _mutations(json.loads(json.dumps(RICH).replace('"Москва"', json.dumps(placeholder)))):
            try:
                definition = parse_definition(mutated, catalogue=cat)
            except DefinitionError as exc:
                assert exc.errors and all(e["message"] for e in exc.errors)
            else:
                assert parse_definition(to_json(definition), catalogue=cat) == definition
