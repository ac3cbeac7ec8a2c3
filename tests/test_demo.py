import datetime
import sqlite3
from collections import Counter

import peewee as pw
import pytest

from webapp import demo
from webapp.db import database, is_postgres
from webapp.models import (
    Customer,
    CustomerOrderStats,
    CustomerTag,
    CustomField,
    CustomValue,
    Deal,
    EventOccurrence,
    Mailing,
    MessageEvent,
    Order,
    OrderItem,
    Pipeline,
    ProductGroup,
    Shop,
    Stage,
    Tag,
    User,
    birth_md,
)
from webapp.rollups import rebuild_order_stats
from webapp.text import fold

TODAY = datetime.date(2026, 3, 1)
N = 300
BULK = [CustomValue, CustomerTag, CustomerOrderStats, OrderItem, Order, Deal, MessageEvent, EventOccurrence, Customer]
TABLE_OF = {m._meta.table_name: m for m in BULK}


def _dump():
    """Every row of the bulk-loaded tables, in a stable order."""
    return {
        table: list(TABLE_OF[table].select().order_by(*TABLE_OF[table]._meta.sorted_fields).tuples())
        for table in demo.TABLES
    }


def _clear_bulk():
    """Empty the bulk tables but keep managers, shops, fields...: the next load reuses them."""
    for model in BULK:
        model.delete().execute()


def _index_names():
    if is_postgres():
        rows = database.execute_sql("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    else:
        rows = database.execute_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
    return sorted(name for (name,) in rows)


def _foreign_keys():
    if not is_postgres():
        return None
    return sorted(
        database.execute_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
        ).fetchall()
    )


def test_counts_and_the_named_things_marketers_look_for(db):
    indexes, foreign = _index_names(), _foreign_keys()
    counts = demo.generate(N, seed=3, today=TODAY)

    for table in demo.TABLES:
        assert counts[table] == TABLE_OF[table].select().count() > 0, table
    assert counts["customer"] == N
    assert 6 * N <= counts["orders"] <= 16 * N  # ~10 a customer
    # the load put back exactly the indexes and foreign keys it dropped
    assert _index_names() == indexes and _foreign_keys() == foreign

    fields = {(f.entity, f.code): f for f in CustomField.select()}
    assert fields[("customer", "favourite_destination")].name == "Favourite destination"
    assert fields[("customer", "favourite_destination")].options == [
        "Vietnam",
        "Thailand",
        "Turkey",
        "Egypt",
        "Georgia",
        "Italy",
        "Sochi",
    ]
    assert {(e, c, f.type) for (e, c), f in fields.items()} >= {
        ("customer", "pets", "integer"),
        ("customer", "vip", "boolean"),
        ("customer", "discount", "decimal"),
        ("customer", "loyalty_card", "string"),
        ("order", "delivery", "enum"),
        ("deal", "membership_type", "enum"),
        ("deal", "lost_reason", "enum"),
    }
    assert fields[("deal", "lost_reason")].options == [
        "price too high",
        "out of stock",
        "chose a competitor",
        "no answer",
    ]
    assert sorted(s.name for s in Shop.select()) == ["Nevsky store", "Online store"]
    paths = {g.path for g in ProductGroup.select()}
    assert {
        "Pet food/Cat food/Urinary care",
        "Pet food/Cat food/Dry food",
        "Pet food/Dog food",
        "Bakery/Croissants",
        "Bakery/Coffee",
        "Tea/Chinese tea",
        "Tea/Green tea",
    } <= paths
    for group in ProductGroup.select():
        assert group.path == (group.parent.path + "/" if group.parent else "") + group.name
    assert {p.name for p in Pipeline.select()} == {"Memberships", "Tours", "Wholesale"}
    for pipeline in Pipeline.select():
        assert {s.kind for s in pipeline.stages} == {"open", "won", "lost"}
    assert {"newsletter", "vip", "wholesale"} <= {t.name for t in Tag.select()}

    managers = list(User.select())
    assert 3 <= len(managers) <= 5
    assert all(u.role == "manager" and u.password_hash == "!" for u in managers)
    assert Mailing.select().where(Mailing.channel == "email").count() >= 8
    assert Mailing.select().where(Mailing.channel == "sms").count() >= 2


def test_customers_cover_the_edge_cases(db):
    demo.generate(N, seed=3, today=TODAY)
    customers = list(Customer.select())
    companies = [c for c in customers if c.type == "company"]
    assert 0.06 <= len(companies) / N <= 0.14
    assert all(c.company_name and not c.first_name for c in companies)
    assert any(c.email is None for c in customers)
    assert any(c.city is None for c in customers)
    assert any(c.manager_id is None for c in customers) and any(c.manager_id for c in customers)
    with_orders = {cid for (cid,) in Order.select(Order.customer).distinct().tuples()}
    assert 0 < N - len(with_orders) < N / 3
    births = [c.birth_date for c in customers if c.birth_date]
    assert any((b.month, b.day) == (2, 29) for b in births)
    assert any((b.month, b.day) in ((12, 31), (1, 1), (1, 2), (12, 30)) for b in births)
    cities = {c.city for c in customers}
    assert (
        cities & {"Москва", "Санкт-Петербург"}
        and cities & {"Hà Nội", "Hồ Chí Minh"}
        and cities & {"London", "Manchester"}
    )
    assert {c.gender for c in customers} == {"male", "female", None}
    assert len({c.source for c in customers}) >= 5
    first = min(c.created_at for c in customers)
    assert (datetime.datetime.combine(TODAY, datetime.time()) - first).days > 2 * 365

    # the folded twins hold what Model.save() would put there
    for c in customers:
        for name in Customer.FOLDED:
            assert getattr(c, name + "_ci") == fold(getattr(c, name)), (c.id, name)
        assert c.birth_md == birth_md(c.birth_date)
        assert c.updated_at >= c.created_at
    for order in Order.select():
        assert order.status_ci == fold(order.status)
        assert order.ordered_at.date() > order.customer.created_at.date()
        assert order.ordered_at.date() < TODAY
    for value in CustomValue.select().where(CustomValue.value_str.is_null(False)):
        assert value.value_ci == fold(value.value_str)


def test_orders_deals_and_messages_hang_together(db):
    demo.generate(N, seed=3, today=TODAY)
    items = Counter()
    for order_id, total in (
        OrderItem.select(OrderItem.order, pw.fn.SUM(OrderItem.price_cents * OrderItem.quantity))
        .group_by(OrderItem.order)
        .tuples()
    ):
        items[order_id] = total
    orders = dict(Order.select(Order.id, Order.total_cents).tuples())
    assert orders == dict(items)  # every order has items, and its total is their sum
    assert {s for (s,) in Order.select(Order.status).distinct().tuples()} >= {"complete", "cancelled"}

    fields = {f.code: f.id for f in CustomField.select()}
    values = {(v.field_id, v.record_id): v for v in CustomValue.select()}
    deals = list(Deal.select(Deal, Stage, Pipeline).join(Stage).switch(Deal).join(Pipeline))
    kinds = Counter((d.pipeline.name, d.stage.kind) for d in deals)
    assert kinds[("Memberships", "won")] and kinds[("Memberships", "lost")]
    for deal in deals:
        assert deal.stage.pipeline_id == deal.pipeline_id
        assert (deal.closed_at is None) == (deal.stage.kind == "open")
        reason = values.get((fields["lost_reason"], deal.id))
        assert (reason is not None) == (deal.stage.kind == "lost")
        if deal.pipeline.name == "Memberships" and deal.stage.kind == "won":
            assert values[(fields["membership_type"], deal.id)].value_str in demo.MEMBERSHIP_TYPES
    reasons = {v.value_str for v in values.values() if v.field_id == fields["lost_reason"]}
    assert "price too high" in reasons
    assert any(v.field_id == fields["favourite_destination"] for v in values.values())

    events = Counter(MessageEvent.select(MessageEvent.kind).where(MessageEvent.channel == "email").tuples().iterator())
    sent, opened, clicked = events[("sent",)], events[("opened",)], events[("clicked",)]
    assert sent > opened > clicked > 0  # a funnel
    assert MessageEvent.select().where(MessageEvent.channel == "sms").exists()
    # nobody who unsubscribed from email still has the consent
    gone = MessageEvent.select(MessageEvent.customer).where(
        MessageEvent.kind == "unsubscribed", MessageEvent.channel == "email"
    )
    assert not Customer.select().where(Customer.id.in_(gone), Customer.email_consent == True).exists()  # noqa: E712
    # only subscribers get mailings
    receivers = MessageEvent.select(MessageEvent.customer).where(MessageEvent.channel == "email")
    assert not Customer.select().where(Customer.id.in_(receivers), Customer.email.is_null()).exists()
    assert EventOccurrence.select().exists()


def test_rollup_equals_a_rebuild_from_the_orders(db):
    demo.generate(N, seed=5, today=TODAY)

    def stats():
        return list(CustomerOrderStats.select().order_by(CustomerOrderStats.customer).tuples())

    loaded = stats()
    assert len(loaded) == Order.select(Order.customer).distinct().count()
    rebuild_order_stats()
    assert stats() == loaded


def test_same_seed_same_data_in_one_or_two_processes(db, monkeypatch):
    demo.generate(N, seed=7, today=TODAY)
    first = _dump()
    _clear_bulk()
    monkeypatch.setattr(demo, "PARALLEL_FROM", 0)  # rows from the child process this time
    demo.generate(N, seed=7, today=TODAY)
    assert _dump() == first
    _clear_bulk()
    monkeypatch.setattr(demo, "PARALLEL_FROM", 10**9)
    demo.generate(N, seed=8, today=TODAY)
    other = _dump()
    assert other["customer"] != first["customer"] and len(other["customer"]) == N


def test_new_rows_after_the_load_get_fresh_ids(db):
    demo.generate(50, seed=1, today=TODAY)
    customer = Customer.create(external_id="after-load")
    order = Order.create(
        external_id="after-load", customer=customer, ordered_at=datetime.datetime(2026, 3, 1), total_cents=100
    )
    assert customer.id > 50 and order.id > Order.select(pw.fn.MAX(Order.id)).where(Order.id != order.id).scalar()


def test_a_failed_load_leaves_nothing_behind(db, monkeypatch):
    indexes, foreign = _index_names(), _foreign_keys()
    real_chunk = demo._Builder.chunk

    def chunk(self, first, count):
        if first > 1:
            raise RuntimeError("disk full")
        return real_chunk(self, first, count)

    monkeypatch.setattr(demo, "CHUNK", 100)
    monkeypatch.setattr(demo._Builder, "chunk", chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        demo.generate(N, seed=1, today=TODAY)
    assert Customer.select().count() == 0 and Order.select().count() == 0
    assert Shop.select().count() == 0 and CustomField.select().count() == 0
    assert _index_names() == indexes and _foreign_keys() == foreign


def test_a_failure_in_the_child_process_is_reported(db, monkeypatch):
    real = demo._reference_data

    def without_vip_tag(today):
        ref = real(today)
        del ref["tags"]["vip"]  # the child process trips over it
        return ref

    monkeypatch.setattr(demo, "PARALLEL_FROM", 0)
    monkeypatch.setattr(demo, "_reference_data", without_vip_tag)
    with pytest.raises(demo.DemoError, match="KeyError: 'vip'"):
        demo.generate(10, seed=1, today=TODAY)
    assert Customer.select().count() == 0


def test_loads_inside_a_callers_transaction(db):
    # `make run` and the browser tests call generate() inside `with database:`
    with database.atomic():
        counts = demo.generate(40, seed=2, today=TODAY)
    assert Customer.select().count() == 40 == counts["customer"]
    if not is_postgres():
        assert database.execute_sql("PRAGMA foreign_key_check").fetchall() == []


def test_generated_text_is_safe_for_copy(db):
    with database.atomic() as transaction:
        ref = demo._reference_data(TODAY)
        transaction.rollback()
    batch = demo._Builder(ref, 1, TODAY).chunk(1, 500)
    for table, rows in batch.items():
        for row in rows:
            for value in row:
                if isinstance(value, str):
                    assert not set(value) & {"\t", "\n", "\r", "\\"}, (table, value)


def test_cli_loads_then_refuses_a_database_with_customers(runner, db):
    result = runner.invoke(args=["demo-data", "--customers", "60", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "customer" in result.output and " 60" in result.output
    assert Customer.select().count() == 60
    if not is_postgres():  # the load's pragmas are put back
        assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
        assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"

    again = runner.invoke(args=["demo-data", "--customers", "10"])
    assert again.exit_code != 0
    assert "already has 60 customers" in again.output and "empty" in again.output
    assert Customer.select().count() == 60


@pytest.mark.sqlite_only
def test_sqlite_load_next_to_another_open_connection(db):
    # The web app may have the file open: the load then stays in WAL mode.
    other = sqlite3.connect(db.database)
    try:
        assert other.execute("SELECT COUNT(*) FROM customer").fetchone() == (0,)
        demo.generate(30, seed=1, today=TODAY)
        assert other.execute("SELECT COUNT(*) FROM customer").fetchone() == (30,)
    finally:
        other.close()
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
