"""engine.explain on hand-made cases (issue 18): the verdicts and the values
they were decided on, at any `at`. The differential test checks the verdicts
against the engine's members on random definitions. SQLite and PostgreSQL."""

import datetime

from webapp.engine import explain, parse_definition

from .helpers import AT, customer, deal, order, pipeline, segment, tag, values

DAY = datetime.timedelta(days=1)

DEFINITION = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "customer",
            "match": "all",
            "filters": [
                {"field": "city", "op": "in", "values": values("Москва")},
                {"field": "tags", "op": "in", "values": values("vip")},
                {"field": "age", "op": "between", "from": 30},
            ],
        },
        {
            "entity": "order",
            "filters": [{"field": "ordered_at", "op": "relative", "from_days": -90}],
            "having": [{"agg": "count", "op": "between", "from": 3}, {"agg": "sum", "op": "between", "from": 3000}],
        },
        {"entity": "deal", "filters": [{"field": "pipeline", "op": "in", "values": values("Memberships")}]},
    ],
}


def test_each_block_and_filter_with_the_values_it_read(db):
    ivan = customer("ivan", city="Москва", birth_date=datetime.date(1990, 6, 16))
    tag(ivan, "VIP")
    for days, total in [(5, "800"), (20, "1200"), (40, "700"), (80, "500"), (200, "9000")]:
        order(ivan, AT - days * DAY, total=total)
    memberships, stages = pipeline("Memberships")
    other, other_stages = pipeline("Wholesale")
    deal(ivan, other, other_stages["New"])
    why = explain(DEFINITION, ivan.id, at=AT, tz="UTC")
    assert why["holds"] is False and [b["holds"] for b in why["blocks"]] == [True, True, False]
    city, tags, age = why["blocks"][0]["filters"]
    assert (city["holds"], city["value"]) == (True, "Москва")
    assert (tags["holds"], tags["value"]) == (True, ["VIP"])
    assert (age["holds"], age["value"]) == (True, 34)  # 35 tomorrow
    orders = why["blocks"][1]
    assert orders["records"] == 5 and orders["filters"] == [{"holds": True, "records": 4}]
    assert orders["aggregates"]["count"] == 4 and orders["aggregates"]["sum"] == 320000
    assert orders["having"] == [True, True]
    deals = why["blocks"][2]
    assert deals["records"] == 1 and deals["filters"] == [{"holds": False, "records": 0}]
    # a deal in the pipeline: every block holds
    deal(ivan, memberships, stages["Won"])
    assert explain(DEFINITION, ivan.id, at=AT, tz="UTC")["holds"] is True
    # at another time: 100 days later the orders left the 90-day window
    later = explain(DEFINITION, ivan.id, at=AT + 100 * DAY, tz="UTC")
    assert later["holds"] is False and later["blocks"][1]["aggregates"]["count"] == 0
    assert later["blocks"][1]["having"] == [False, False] and later["blocks"][0]["filters"][2]["value"] == 35
    assert explain(DEFINITION, 10**9, at=AT, tz="UTC") is None


def test_empty_records_segments_and_no_deals(db):
    ana = customer("ana", city=None)
    vip = segment("vip", members=[ana])
    segment("churn")
    definition = parse_definition(
        {
            "version": 1,
            "match": "any",
            "blocks": [
                {"entity": "order", "having": [{"agg": "count", "op": "between", "from": 0, "to": 0}]},
                {"entity": "deal", "filters": [{"field": "pipeline", "op": "is_empty"}]},
                {"entity": "segment", "filters": [{"field": "segment", "op": "in", "values": values("churn")}]},
                {"entity": "customer", "filters": [{"field": "city", "op": "in", "values": values("-Москва")}]},
            ],
        }
    )
    why = explain(definition, ana.id, at=AT, tz="UTC")
    no_orders, no_deals, churn, not_moscow = why["blocks"]
    assert no_orders["holds"] and no_orders["aggregates"]["count"] == 0 and no_orders["having"] == [True]
    assert no_deals["holds"] and no_deals["filters"] == [{"holds": True, "records": 0}]
    assert not churn["holds"] and churn["filters"][0]["value"] == [vip.code]
    assert not_moscow["holds"] and not_moscow["filters"][0] == {"holds": True, "value": None}
    assert why["holds"] is True


def test_custom_field_values(db):
    from webapp.models import CustomField, CustomValue

    level = CustomField.create(entity="customer", code="level", name="Level", type="integer")
    note = CustomField.create(entity="customer", code="note", name="Note", type="string")
    kim = customer("kim")
    CustomValue.create(field=level, record_id=kim.id, value_num=7)
    definition = {
        "version": 1,
        "blocks": [
            {
                "entity": "customer",
                "filters": [
                    {"field": "custom.level", "op": "between", "from": 5},
                    {"field": "custom.note", "op": "is_not_empty"},
                ],
            }
        ],
    }
    level_line, note_line = explain(definition, kim.id, at=AT, tz="UTC")["blocks"][0]["filters"]
    assert level_line["holds"] and level_line["value"] == 7
    assert not note_line["holds"] and note_line["value"] is None
