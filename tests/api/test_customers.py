"""Customer data endpoints on both databases: upserts by external_id with the
import's rules, order rollups, change marks for the real-time update, the
customer list and card, and the round trip through a real RQ worker."""

import datetime

from conftest import work_off
from redis import Redis
from rq import Queue

from webapp.cron import recheck_changed_job
from webapp.fields import service as cf
from webapp.models import (
    ChangedCustomer,
    Customer,
    CustomerOrderStats,
    EventOccurrence,
    EventType,
    MessageEvent,
    Order,
    OrderItem,
    Segment,
    SegmentMember,
    User,
)
from webapp.queue import connection


def marked():
    return {c.customer.external_id for c in ChangedCustomer.select()}


def test_put_customer_creates_then_updates_only_what_is_sent(api, make_user):
    make_user(email="boss@example.com", role="manager")
    cf.create_field("customer", "age", "Age", "integer")
    cf.create_field("customer", "plan", "Plan", "enum", options=["Basic", "Pro"])
    status, data = api.put(
        "/customers/c-1",
        {
            "type": "company",
            "company_name": "Acme",
            "email": "a@acme.test",
            "phone": 79991234567,
            "gender": "FEMALE",
            "birth_date": "08.03.1990",
            "email_consent": "да",
            "sms_consent": False,
            "manager": "BOSS@example.com",
            "tags": ["vip", "wholesale", "VIP"],
            "created_at": "2024-01-02T03:04:05+03:00",
            "custom": {"age": "42", "plan": "pro"},
        },
    )
    assert status == 201, data
    assert api.last.headers["Location"].endswith("/api/v1/customers/c-1")
    assert data["type"] == "company" and data["phone"] == "79991234567" and data["gender"] == "female"
    assert data["birth_date"] == "1990-03-08" and data["email_consent"] is True and data["sms_consent"] is False
    assert data["manager"] == "boss@example.com" and data["tags"] == ["vip", "wholesale"]
    assert data["created_at"] == "2024-01-02T00:04:05Z" and data["custom"] == {"age": 42, "plan": "Pro"}
    assert data["segments"] == []
    assert marked() == {"c-1"}
    ChangedCustomer.delete().execute()

    status, data = api.put("/customers/c-1", {"city": "Пермь", "tags": "vip", "custom": {"age": None}})
    assert status == 200
    assert data["city"] == "Пермь" and data["company_name"] == "Acme"  # fields not sent keep their value
    assert data["tags"] == ["vip"] and data["custom"] == {"age": None, "plan": "Pro"}
    assert Customer.get().city_ci == "пермь"  # folded twin kept current
    assert marked() == {"c-1"}
    ChangedCustomer.delete().execute()
    assert api.put("/customers/c-1", {"city": "Пермь"})[0] == 200
    assert marked() == set()  # unchanged: not marked again


def test_put_customer_validation(api):
    cf.create_field("customer", "age", "Age", "integer")
    cases = [
        ({"gender": "other"}, "gender"),
        ({"birth_date": "31.02.2000"}, "birth_date"),
        ({"email_consent": "maybe"}, "email_consent"),
        ({"manager": "ghost@example.com"}, "manager"),
        ({"custom": {"age": "old"}}, "custom.age"),
        ({"custom": {"height": 180}}, "custom.height"),
        ({"custom": [1]}, "custom"),
        ({"favourite": "tea"}, "favourite"),
        ({"city": "x" * 256}, "city"),
        ({"first_name": {"a": 1}}, "first_name"),
        ({"tags": ["a|b"]}, "tags"),
        ({"external_id": "other"}, "external_id"),
    ]
    for body, field in cases:
        status, data = api.put("/customers/v1", body)
        assert status == 422, (body, data)
        assert field in [d["field"] for d in data["error"]["details"]], (body, data)
    assert Customer.select().count() == 0
    status, data = api.put("/customers/%20padded", {})
    assert status == 422


def test_put_order_with_items_keeps_rollups_and_marks(api):
    api.put("/customers/c1", {"email": "c1@example.com"})
    api.put("/customers/c2", {"email": "c2@example.com"})
    ChangedCustomer.delete().execute()
    body = {
        "customer_external_id": "c1",
        "ordered_at": "2025-02-03 10:00",
        "status": "paid",
        "shop": "Web",
        "total": "150.50",
        "items": [
            {"sku": "TEA-1", "product_name": "Sencha", "product_group": "Tea/Green", "quantity": 2, "price": 50.25},
            {"sku": "CUP", "quantity": 1, "price": "50"},
        ],
    }
    status, order = api.put("/orders/o1", body)
    assert status == 201, order
    assert order["total"] == 150.5 and order["shop"] == "Web" and order["ordered_at"] == "2025-02-03T10:00:00Z"
    assert [(i["sku"], i["quantity"], i["price"], i["product_group"]) for i in order["items"]] == [
        ("TEA-1", 2, 50.25, "Tea/Green"),
        ("CUP", 1, 50, None),
    ]
    stats = CustomerOrderStats.get(CustomerOrderStats.customer == Customer.get(Customer.external_id == "c1").id)
    assert (stats.orders_count, stats.total_cents, stats.quantity) == (1, 15050, 3)
    assert marked() == {"c1"}

    # moving the order to another customer updates both rollups
    ChangedCustomer.delete().execute()
    status, order = api.put("/orders/o1", {"customer_external_id": "c2", "ordered_at": "2025-02-03 10:00"})
    assert status == 200 and order["total"] == 150.5 and len(order["items"]) == 2  # items kept
    assert CustomerOrderStats.select().count() == 1
    assert CustomerOrderStats.get().customer.external_id == "c2"
    assert marked() == {"c1", "c2"}
    status, order = api.put("/orders/o1", {"customer_external_id": "c2", "ordered_at": "2025-02-03 10:00", "items": []})
    assert status == 200 and order["items"] == [] and CustomerOrderStats.get().quantity == 0
    assert OrderItem.select().count() == 0

    for body, field in (
        ({"customer_external_id": "ghost", "ordered_at": "2025-01-01"}, "customer_external_id"),
        ({"customer_external_id": "c1"}, "ordered_at"),
        ({"customer_external_id": "c1", "ordered_at": "2025-01-01", "total": "1.005"}, "total"),
        ({"customer_external_id": "c1", "ordered_at": "2025-01-01", "items": [{"quantity": 1}]}, "items[0].sku"),
        ({"customer_external_id": "c1", "ordered_at": "2025-01-01", "items": "x"}, "items"),
    ):
        status, data = api.put("/orders/o2", body)
        assert status == 422 and field in [d["field"] for d in data["error"]["details"]], (body, data)
    assert Order.select().count() == 1


def test_put_deal_message_event(api, make_user):
    api.put("/customers/c1", {})
    ChangedCustomer.delete().execute()
    status, deal = api.put(
        "/deals/d1",
        {
            "customer_external_id": "c1",
            "pipeline": "Sales",
            "stage": "Won",
            "stage_kind": "won",
            "amount": "1000",
            "closed_at": "2025-01-05",
        },
    )
    assert status == 201, deal
    assert (deal["pipeline"], deal["stage"], deal["stage_kind"], deal["amount"], deal["closed_at"]) == (
        "Sales",
        "Won",
        "won",
        1000,
        "2025-01-05T00:00:00Z",
    )
    status, deal = api.put(
        "/deals/d1", {"customer_external_id": "c1", "pipeline": "Sales", "stage": "Won", "amount": 1200.5}
    )
    assert status == 200 and deal["amount"] == 1200.5
    assert api.put("/deals/d2", {"customer_external_id": "c1", "pipeline": "Sales"})[0] == 422  # stage required

    message = {
        "customer_external_id": "c1",
        "channel": "email",
        "kind": "opened",
        "mailing": "Spring sale",
        "occurred_at": "2025-03-01T10:00:00Z",
    }
    status, data = api.post("/messages", message)
    assert status == 201 and data == message
    assert api.post("/messages", message)[0] == 201
    assert MessageEvent.select().count() == 1  # the same event is stored once
    assert api.post("/messages", dict(message, channel="fax"))[0] == 422
    assert api.post("/messages", dict(message, customer_external_id="ghost"))[0] == 422

    event = {
        "customer_external_id": "c1",
        "event": "Webinar",
        "occurred_at": "2025-03-02T10:00:00Z",
        "properties": {"topic": "tea", "minutes": 45},
    }
    status, data = api.post("/events", event)
    assert status == 201 and data == event
    assert api.post("/events", dict(event, event="webinar"))[0] == 201
    assert EventType.select().count() == 1 and EventOccurrence.select().count() == 2
    for body in (
        dict(event, properties=[1]),
        dict(event, occurred_at="later"),
        {"event": "x"},
        dict(event, customer_external_id="ghost"),
        dict(event, extra=1),
    ):
        assert api.post("/events", body)[0] == 422, body
    assert marked() == {"c1"}


def test_customer_list_card_and_pages(api, db):
    for i in range(7):
        api.put(f"/customers/k{i}", {"email": f"k{i}@example.com"})
    segment = Segment.create(code="odd", name="Odd", definition={"version": 1, "blocks": []})
    for i in (1, 3, 5):
        SegmentMember.create(segment=segment, customer=Customer.get(Customer.external_id == f"k{i}"))
    status, data = api.get("/customers?limit=3")
    assert [c["external_id"] for c in data["items"]] == ["k0", "k1", "k2"] and "member_since" not in data["items"][0]
    api.put("/customers/k0", {"city": "X"})  # changed rows keep their place
    Customer.delete().where(Customer.external_id == "k3").execute()  # a deleted row is simply gone
    api.put("/customers/k9", {})  # a new row comes at the end
    status, page2 = api.get(f"/customers?limit=3&cursor={data['next_cursor']}")
    status, page3 = api.get(f"/customers?limit=3&cursor={page2['next_cursor']}")
    assert [c["external_id"] for c in page2["items"] + page3["items"]] == ["k4", "k5", "k6", "k9"]
    assert page3["next_cursor"] is None
    status, data = api.get("/customers?segment=odd")
    assert [c["external_id"] for c in data["items"]] == ["k1", "k5"] and data["items"][0]["member_since"]
    assert api.get("/customers?segment=nope")[0] == 404
    status, card = api.get("/customers/k1")
    assert card["segments"] == ["odd"] and card["email"] == "k1@example.com"
    assert api.get("/customers/nobody")[0] == 404


def test_round_trip_realtime_update(api, queue_server):
    """Customers and orders through the API, a dynamic segment, the worker's
    real-time re-check: members and history change within one tick."""
    Queue("default", connection=Redis.from_url(queue_server)).empty()
    api.put("/customers/r1", {"email": "r1@example.com"})
    api.put("/customers/r2", {"email": "r2@example.com"})
    definition = {
        "version": 1,
        "blocks": [{"entity": "order", "filters": [], "having": [{"agg": "sum", "op": "between", "from": 100}]}],
    }
    assert api.post("/segments", {"code": "big", "name": "Big spenders", "definition": definition})[0] == 201
    work_off(queue_server)
    assert api.get("/segments/big")[1]["size"] == 0

    api.put("/orders/r1-1", {"customer_external_id": "r1", "ordered_at": "2025-01-01", "total": "60"})
    api.put("/orders/r1-2", {"customer_external_id": "r1", "ordered_at": "2025-01-02", "total": "40.00"})
    api.put("/orders/r2-1", {"customer_external_id": "r2", "ordered_at": "2025-01-02", "total": "99.99"})
    connection().delete("segmento:lock:realtime-recheck")  # a killed worker's lease from an earlier test
    recheck_changed_job()  # what the worker runs every REALTIME_INTERVAL_SECONDS
    status, members = api.get("/segments/big/members")
    assert [m["external_id"] for m in members["items"]] == ["r1"]
    status, history = api.get("/segments/big/history")
    assert [(h["external_id"], h["change"], h["run_id"]) for h in history["items"]] == [("r1", "entered", None)]
    assert api.get("/customers/r1")[1]["segments"] == ["big"]

    api.put("/orders/r1-2", {"customer_external_id": "r1", "ordered_at": "2025-01-02", "total": "39.99"})
    api.put("/orders/r2-2", {"customer_external_id": "r2", "ordered_at": "2025-01-03", "total": "0.01"})
    connection().delete("segmento:lock:realtime-recheck")  # a killed worker's lease from an earlier test
    recheck_changed_job()
    status, history = api.get("/segments/big/history")
    assert [(h["external_id"], h["change"]) for h in history["items"]] == [
        ("r1", "entered"),
        ("r2", "entered"),
        ("r1", "exited"),
    ]  # in logged order: entries, then exits
    assert [m["external_id"] for m in api.get("/segments/big/members")[1]["items"]] == ["r2"]
    assert api.get("/segments/big")[1]["size"] == 1
    assert User.select().count() == 1
    assert datetime.datetime.fromisoformat(history["items"][0]["at"].replace("Z", "+00:00")).year >= 2025


def test_out_of_range_and_oversized_values_are_422_not_500(api):
    api.put("/customers/c1", {})
    for path, body in (
        ("/customers/c1", {"created_at": "9999-12-31T23:59:59-05:00"}),
        ("/customers/c1", {"created_at": "0001-01-01T00:00:00+05:00"}),
        ("/orders/o1", {"customer_external_id": "c1", "ordered_at": "2025-01-01", "total": "1e30"}),
        (
            "/orders/o1",
            {"customer_external_id": "c1", "ordered_at": "2025-01-01", "items": [{"sku": "s", "quantity": 2**40}]},
        ),
    ):
        status, data = api.put(path, body)
        assert status == 422, (path, body, data)
    status, data = api.post(
        "/events", {"customer_external_id": "c1", "event": "e", "occurred_at": "9999-12-31T23:59:59-05:00"}
    )
    assert status == 422
    status, data = api.post(
        "/segments", {"code": "long", "name": "n" * 256, "definition": {"version": 1, "blocks": []}}
    )
    assert status == 422 and data["error"]["details"][0]["field"] == "name"


def test_get_customer_has_its_predicted_scores(api):
    from webapp.models import Customer, CustomerPrediction

    api.put("/customers/p1", {"first_name": "Pia"})
    status, data = api.get("/customers/p1")
    assert status == 200
    assert data["predicted"] == {
        "p_alive": None,
        "orders_30d": None,
        "orders_90d": None,
        "orders_365d": None,
        "aov": None,
        "clv": None,
    }
    CustomerPrediction.create(
        customer=Customer.get(Customer.external_id == "p1"),
        p_alive=0.82,
        orders_30d=0.4,
        orders_90d=1.1,
        orders_365d=3.9,
        aov=1250.5,
        clv=4100.25,
    )
    assert api.get("/customers/p1")[1]["predicted"] == {
        "p_alive": 0.82,
        "orders_30d": 0.4,
        "orders_90d": 1.1,
        "orders_365d": 3.9,
        "aov": 1250.5,
        "clv": 4100.25,
    }


def test_a_customers_language_is_written_and_read(api):
    status, data = api.put("/customers/lang-1", {"first_name": "Ива", "language": "ru-RU"})
    assert status == 201 and data["language"] == "ru"
    status, data = api.get("/customers/lang-1")
    assert data["language"] == "ru"
    status, data = api.put("/customers/lang-1", {"language": "de"})
    assert status == 422 and data["error"]["details"][0]["field"] == "language"


def test_a_customers_time_zone_is_written_and_read(api):
    status, data = api.put("/customers/tz-1", {"first_name": "Lan", "time_zone": "asia/ho_chi_minh"})
    assert status == 201 and data["time_zone"] == "Asia/Ho_Chi_Minh"
    status, data = api.get("/customers/tz-1")
    assert data["time_zone"] == "Asia/Ho_Chi_Minh"
    status, data = api.get("/customers")
    assert [c["time_zone"] for c in data["items"] if c["external_id"] == "tz-1"] == ["Asia/Ho_Chi_Minh"]
    status, data = api.put("/customers/tz-1", {"time_zone": "Mars/Olympus"})
    assert status == 422 and data["error"]["details"][0]["field"] == "time_zone"
