"""Events from orders on both databases: definitions over a generated order
base checked against occurrences computed in plain Python; backfill re-runs
and a crash midway; condition change and delete; orders written later through
the API and CSV imports; the figures of the events pages; validation."""

import datetime

import pytest

from webapp import cron
from webapp.api import upserts
from webapp.engine import DefinitionError, count
from webapp.engine.orders import parse_condition
from webapp.events import service as events
from webapp.imports.service import Importer
from webapp.models import ChangedCustomer, EventDefinition, EventOccurrence, EventType, ImportRun, Order, utcnow
from webapp.queue import connection

from .conftest import fold

# (condition, the same condition in plain Python over OrderFacts)
CASES = {
    "group with subgroups": (
        {"filters": [{"field": "product_group", "op": "in", "values": [{"value": "bakery"}]}]},
        lambda o: "Bakery" in o.groups,
    ),
    "product included, another excluded": (
        {
            "filters": [
                {"field": "product", "op": "in", "values": [{"value": "cr-1"}, {"value": "BR-1", "exclude": True}]}
            ]
        },
        lambda o: "CR-1" in o.skus and "BR-1" not in o.skus,
    ),
    "total between, to the cent": (
        {"filters": [{"field": "total", "op": "between", "from": 50, "to": 120.5}]},
        lambda o: 5000 <= o.total_cents <= 12050,
    ),
    "status or custom channel (any)": (
        {
            "match": "any",
            "filters": [
                {"field": "status", "op": "in", "values": [{"value": "PAID"}]},
                {"field": "custom.channel", "op": "in", "values": [{"value": "web"}]},
            ],
        },
        lambda o: fold(o.status) == "paid" or fold(o.channel) == "web",
    ),
    "status excluded keeps empty status": (
        {"filters": [{"field": "status", "op": "in", "values": [{"value": "cancelled", "exclude": True}]}]},
        lambda o: fold(o.status) != "cancelled",
    ),
    "no items": ({"filters": [{"field": "product_group", "op": "is_empty"}]}, lambda o: not o.skus),
    "every order": ({"match": "all", "filters": []}, lambda o: True),
}


def stored(type_id):
    return {
        (o, c, at)
        for o, c, at in EventOccurrence.select(
            EventOccurrence.order, EventOccurrence.customer, EventOccurrence.occurred_at
        )
        .where(EventOccurrence.event_type == type_id)
        .tuples()
    }


def make(code, condition, **kw):
    return events.create_definition(code.replace("_", " ").title(), code, condition, **kw)


@pytest.mark.parametrize("case", sorted(CASES))
def test_backfill_records_exactly_the_matching_orders(base, case):
    condition, predicate = CASES[case]
    definition = make("ev_case", condition)
    done = events.backfill(definition.id, chunk=37)  # several id ranges
    expected = base.expected(predicate)
    assert expected, "the generated base should have matching orders"
    assert stored(definition.event_type_id) == expected
    assert done.status == "done" and done.recorded == len(expected)


def test_between_dates_uses_the_account_time_zone(base):
    day = (base.now - datetime.timedelta(days=10)).date()
    condition = {"filters": [{"field": "ordered_at", "op": "between", "from": day.isoformat(), "to": day.isoformat()}]}
    definition = make("ev_day", condition)
    events.backfill(definition.id, tz="Asia/Kathmandu")
    offset = datetime.timedelta(hours=5, minutes=45)
    expected = base.expected(lambda o: (o.ordered_at + offset).date() == day)
    assert stored(definition.event_type_id) == expected


def test_rerun_changes_nothing_and_a_crash_midway_resumes(base):
    condition, predicate = CASES["group with subgroups"]
    definition = make("ev_crash", condition)
    calls = []

    def crash(d):
        calls.append(d.next_order_id)
        if len(calls) == 3:  # after two chunks were committed
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        events.backfill(definition.id, chunk=40, on_progress=crash)
    halfway = EventDefinition.get_by_id(definition.id)
    assert halfway.status == "running" and halfway.next_order_id == halfway.first_order_id + 80
    partial = stored(definition.event_type_id)
    assert partial and partial < base.expected(predicate)
    assert all(o < halfway.next_order_id for o, _c, _t in partial)

    events.backfill(definition.id, chunk=40)
    expected = base.expected(predicate)
    assert stored(definition.event_type_id) == expected
    # a second full run (e.g. the job retried) adds nothing and keeps one row per order
    EventDefinition.update(next_order_id=EventDefinition.first_order_id).where(
        EventDefinition.id == definition.id
    ).execute()
    again = events.backfill(definition.id, chunk=1000)
    assert again.recorded == len(expected)
    assert EventOccurrence.select().where(EventOccurrence.event_type == definition.event_type_id).count() == len(
        expected
    )


def test_condition_change_replaces_and_delete_removes(base):
    first, first_pred = CASES["group with subgroups"]
    second, second_pred = CASES["total between, to the cent"]
    definition = make("ev_change", first)
    events.backfill(definition.id)
    # an API occurrence of the same type is not the definition's to replace
    api_at = base.now - datetime.timedelta(hours=1)
    EventOccurrence.create(customer=base.customers[0], event_type=definition.event_type_id, occurred_at=api_at)
    assert events.update_definition(definition, "Changed", second) is True
    stale = EventDefinition.get_by_id(definition.id)
    assert stale.revision == 2 and stale.status == "queued"
    assert events.backfill(definition.id, revision=1) is None  # a job of the old revision does nothing
    events.backfill(definition.id, revision=2)
    assert stored(definition.event_type_id) == base.expected(second_pred) | {(None, base.customers[0].id, api_at)}
    # saving the same condition again does not re-run
    assert events.update_definition(EventDefinition.get_by_id(definition.id), "Changed", second) is False

    shares = []
    removed = events.delete_definition(EventDefinition.get_by_id(definition.id), on_progress=shares.append)
    assert shares and shares[-1] == 1.0
    assert removed == len(base.expected(second_pred))
    assert stored(definition.event_type_id) == {(None, base.customers[0].id, api_at)}
    assert EventType.get_or_none(EventType.id == definition.event_type_id) is not None  # the API's stays

    other = make("ev_gone", first)
    events.backfill(other.id)
    events.delete_definition(other)
    assert EventType.get_or_none(EventType.id == other.event_type_id) is None
    assert not EventOccurrence.select().where(EventOccurrence.event_type == other.event_type_id).exists()


def recheck():
    """What the worker does every few seconds (it holds a lock on the queue
    server: tests calling it take the `queue_server` fixture)."""
    connection().delete("segmento:lock:realtime-recheck")  # a killed worker's lease from an earlier test
    return cron.recheck_changed_job()


def test_orders_written_through_the_api_are_recorded_within_a_recheck(base, queue_server):
    croissant = make("ev_croissant", CASES["group with subgroups"][0])
    paid = make("ev_paid", {"filters": [{"field": "status", "op": "in", "values": [{"value": "paid"}]}]})
    events.backfill(croissant.id)
    events.backfill(paid.id)
    ChangedCustomer.delete().execute()
    customer = base.customers[3]
    at = datetime.datetime(2024, 5, 6, 10, 30)
    upserts.upsert_order(
        "api-1",
        {
            "customer_external_id": customer.external_id,
            "ordered_at": "2024-05-06T10:30:00",
            "status": "paid",
            "total": "12.50",
            "items": [{"sku": "CR-2", "quantity": 1, "price": "2.50"}],
        },
    )
    order = Order.get(Order.external_id == "api-1")
    recheck()
    assert (order.id, customer.id, at) in stored(croissant.event_type_id)
    assert (order.id, customer.id, at) in stored(paid.event_type_id)

    # status changed and the croissant replaced by tea: both occurrences go
    upserts.upsert_order(
        "api-1",
        {
            "customer_external_id": customer.external_id,
            "ordered_at": "2024-05-06T10:30:00",
            "status": "cancelled",
            "total": "12.50",
            "items": [{"sku": "GT-1"}],
        },
    )
    recheck()
    assert order.id not in {o for o, _c, _t in stored(croissant.event_type_id)}
    assert order.id not in {o for o, _c, _t in stored(paid.event_type_id)}

    # moved to another customer and re-dated: the occurrence follows
    other = base.customers[4]
    upserts.upsert_order(
        "api-1",
        {
            "customer_external_id": other.external_id,
            "ordered_at": "2024-05-07T09:00:00",
            "status": "paid",
            "items": [{"sku": "CR-1"}],
        },
    )
    recheck()
    moved = datetime.datetime(2024, 5, 7, 9, 0)
    assert [(c, t) for o, c, t in stored(croissant.event_type_id) if o == order.id] == [(other.id, moved)]
    # everything else still equals the independent figures
    facts = base.expected(lambda o: "Bakery" in o.groups)
    assert stored(croissant.event_type_id) == facts | {(order.id, other.id, moved)}


def test_inactive_definition_records_no_new_orders(base, queue_server):
    definition = make("ev_paused", CASES["every order"][0], active=False)
    assert events.backfill(definition.id) is None
    upserts.upsert_order(
        "api-2", {"customer_external_id": base.customers[0].external_id, "ordered_at": "2024-01-01T00:00:00"}
    )
    recheck()
    assert stored(definition.event_type_id) == set()


def test_orders_and_items_imported_from_csv_are_recorded(base, tmp_path, queue_server):
    definition = make("ev_import", CASES["group with subgroups"][0])
    events.backfill(definition.id)
    ChangedCustomer.delete().execute()
    c1, c2 = base.customers[5], base.customers[6]
    orders_csv = tmp_path / "orders.csv"
    orders_csv.write_text(
        "external_id,customer_external_id,ordered_at,status,shop,total\n"
        f"imp-1,{c1.external_id},2024-03-01 12:00,paid,,10\n"
        f"imp-2,{c2.external_id},2024-03-02 13:00,paid,,20\n",
        encoding="utf-8",
    )
    items_csv = tmp_path / "items.csv"
    items_csv.write_text(
        "order_external_id,sku,product_name,product_group,quantity,price\n"
        "imp-1,CR-9,New croissant,Bakery/Croissants,2,1.5\n"
        "imp-2,TE-9,New tea,Tea,1,3\n",
        encoding="utf-8",
    )
    for kind, path in (("orders", orders_csv), ("order-items", items_csv)):
        record = ImportRun.create(kind=kind, file_name=path.name, file_path=str(path), status="queued")
        Importer(record, tmp_path).execute()
        assert ImportRun.get_by_id(record.id).rows_rejected == 0
        if kind == "orders":
            recheck()  # the orders alone (no items yet) match nothing
            assert not {o for o, _c, _t in stored(definition.event_type_id)} & {
                o.id for o in Order.select().where(Order.external_id.in_(["imp-1", "imp-2"]))
            }
    recheck()
    imp1 = Order.get(Order.external_id == "imp-1")
    imp2 = Order.get(Order.external_id == "imp-2")
    rows = stored(definition.event_type_id)
    assert (imp1.id, c1.id, datetime.datetime(2024, 3, 1, 12, 0)) in rows
    assert imp2.id not in {o for o, _c, _t in rows}


def test_api_event_of_any_name_creates_its_type_and_marks_the_customer(base):
    ChangedCustomer.delete().execute()
    customer = base.customers[1]
    occurrence = upserts.add_event(
        {
            "customer_external_id": customer.external_id,
            "event": "Открыл приложение",
            "occurred_at": "2024-05-06T10:00:00Z",
            "properties": {"screen": "home"},
        }
    )
    event_type = EventType.get(EventType.code_ci == "открыл приложение")
    assert occurrence.event_type_id == event_type.id and occurrence.order_id is None
    assert ChangedCustomer.get_or_none(ChangedCustomer.customer == customer.id) is not None


def test_events_block_filters_on_which_when_and_how_many_times(base):
    """“Bought a croissant at least 3 times in the last 30 days”, through the engine,
    against the same count made from the order facts."""
    definition = make(
        "bought_croissant",
        {"filters": [{"field": "product_group", "op": "in", "values": [{"value": "Bakery/Croissants"}]}]},
    )
    events.backfill(definition.id)
    segment = {
        "version": 1,
        "match": "all",
        "blocks": [
            {
                "entity": "event",
                "match": "all",
                "filters": [
                    {"field": "event", "op": "in", "values": [{"value": "Bought_Croissant"}]},
                    {"field": "occurred_at", "op": "relative", "from_days": -30, "to_days": 0},
                ],
                "having": [{"agg": "count", "op": "between", "from": 3}],
                "having_match": "all",
            }
        ],
    }
    today = base.now.date()
    times = {}
    for o in base.orders.values():
        if "Bakery/Croissants" in o.groups and today - datetime.timedelta(days=30) <= o.ordered_at.date() <= today:
            times[o.customer_id] = times.get(o.customer_id, 0) + 1
    expected = sorted(c for c, n in times.items() if n >= 3)
    assert expected, "the generated base should have such customers"
    assert count(segment, at=base.now) == len(expected)
    from webapp.engine import member_ids

    assert list(member_ids(segment, at=base.now)) == expected


# --- the pages' figures ---------------------------------------------------------------


def test_per_day_stats_and_day_customers_in_the_account_time_zone(base):
    event_type = EventType.create(code="opened_app", name="Opened the app")
    now = datetime.datetime(2024, 6, 30, 12, 0)
    tz = "Asia/Kathmandu"  # +5:45: a quarter-hour offset
    offset = datetime.timedelta(hours=5, minutes=45)
    times = []
    for n in range(90):
        customer = base.customers[n % 7]
        at = now - datetime.timedelta(minutes=37 * n * n % (60 * 24 * 40))
        EventOccurrence.create(customer=customer, event_type=event_type, occurred_at=at)
        times.append((customer.id, at))
    local_today = (now + offset).date()
    by_day = {}
    for _c, at in times:
        by_day[(at + offset).date()] = by_day.get((at + offset).date(), 0) + 1
    aware_now = now.replace(tzinfo=datetime.UTC)
    days = events.per_day(event_type.id, 30, tz, now=aware_now)
    assert [d for d, _n in days] == [local_today - datetime.timedelta(days=29 - k) for k in range(30)]
    assert days == [(d, by_day.get(d, 0)) for d, _n in days]

    stats = events.type_stats([event_type.id], tz, now=aware_now)[event_type.id]
    recent_from = local_today - datetime.timedelta(days=29)
    assert stats["total"] == 90
    assert stats["recent"] == sum(1 for _c, at in times if (at + offset).date() >= recent_from)
    assert stats["customers"] == len({c for c, _at in times})
    assert stats["last_at"] == max(at for _c, at in times)

    busiest = max(by_day, key=lambda d: (by_day[d], d))
    per_customer = {}
    for c, at in times:
        if (at + offset).date() == busiest:
            per_customer[c] = per_customer.get(c, 0) + 1
    rows, total = events.day_customers(event_type.id, busiest, tz, 1, 50)
    assert total == len(per_customer)
    assert [(customer.id, n) for customer, n, _f, _l in rows] == sorted(
        per_customer.items(), key=lambda item: (-item[1], item[0])
    )
    page2, _total = events.day_customers(event_type.id, busiest, tz, 2, 1)
    assert len(page2) == min(1, max(0, total - 1))


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition, message",
    [
        (
            {"filters": [{"field": "nope", "op": "in", "values": [{"value": "x"}]}]},
            "Block 1 (Orders), filter 1: Unknown field “nope”",
        ),
        (
            {
                "filters": [
                    {"field": "status", "op": "in", "values": [{"value": "x"}]},
                    {"field": "total", "op": "between", "from": "ten"},
                ]
            },
            "Block 1 (Orders), filter 2: Order total: “from” must be a number",
        ),
        (
            {"filters": [{"field": "ordered_at", "op": "relative", "from_days": -30}]},
            "Block 1 (Orders), filter 1: Order date: dates relative to today do not apply to an event",
        ),
        (
            {"filters": [], "having": [{"agg": "count", "op": "between", "from": 2}]},
            "Block 1 (Orders): conditions on records (“having”) do not apply to an event",
        ),
        ({"match": "some", "filters": []}, "Block 1 (Orders): “match” must be “all” or “any”"),
    ],
)
def test_conditions_are_refused_with_located_messages(db, condition, message):
    with pytest.raises(DefinitionError) as caught:
        parse_condition(condition)
    assert any(m.startswith(message) for m in caught.value.messages), caught.value.messages
    with pytest.raises(events.EventError) as refused:
        events.create_definition("Name", "code_x", condition)
    assert any(e["message"].startswith(message) for e in refused.value.condition_errors)
    assert not EventDefinition.select().exists()


def test_codes_are_checked(base):
    api_type = EventType.create(code="website_visit", name="Visit")
    EventOccurrence.create(customer=base.customers[0], event_type=api_type, occurred_at=utcnow())
    make("bought_bread", CASES["every order"][0])
    for code, text in (
        ("Bad Code", "lower-case Latin"),
        ("website_visit", "already sent through the API"),
        ("bought_bread", "already recorded by the definition"),
        ("", "Enter a code"),
    ):
        with pytest.raises(events.EventError) as refused:
            events.create_definition("Name", code, CASES["every order"][0])
        assert text in " ".join(refused.value.errors["code"])


def test_segments_with_an_events_block_are_the_ones_recomputed_after_a_backfill(db):
    from webapp.models import Segment

    with_events = Segment.create(
        code="ev_seg", name="E", definition={"version": 1, "blocks": [{"entity": "event", "filters": []}]}
    )
    Segment.create(code="plain", name="P", definition={"version": 1, "blocks": [{"entity": "customer"}]})
    Segment.create(code="off", name="O", active=False, definition={"version": 1, "blocks": [{"entity": "event"}]})
    assert [s.code for s in events.segments_to_recompute()] == [with_events.code]


def test_demo_definitions_are_seeded_once(base):
    created = events.seed_demo_definitions()
    assert [d.event_type.code for d in created] == ["bought_croissant", "big_order"]
    assert events.seed_demo_definitions() == []
    for d in created:
        events.backfill(d.id)
    assert stored(created[0].event_type_id) == base.expected(lambda o: "Bakery/Croissants" in o.groups)
    assert stored(created[1].event_type_id) == base.expected(lambda o: o.total_cents >= 500000)
