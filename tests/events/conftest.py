"""A small generated order base for the event tests, with every order's
attributes kept in plain Python so the tests compute expected occurrences
without the code under test."""

import datetime
import random
from dataclasses import dataclass, field

import pytest

from webapp import rollups
from webapp.fields.service import create_field
from webapp.models import Customer, CustomValue, Order, OrderItem, Product, ProductGroup, utcnow

GROUPS = ["Bakery", "Bakery/Croissants", "Bakery/Bread", "Tea", "Tea/Green tea"]
PRODUCTS = {
    "CR-1": "Bakery/Croissants",
    "CR-2": "Bakery/Croissants",
    "BR-1": "Bakery/Bread",
    "GT-1": "Tea/Green tea",
    "TE-1": "Tea",
}
STATUSES = ["paid", "Paid", "cancelled", "new", None]
CHANNELS = ["web", "Web", "shop", None]


@dataclass
class OrderFacts:
    id: int
    customer_id: int
    ordered_at: datetime.datetime
    status: str
    total_cents: int
    channel: str
    skus: set = field(default_factory=set)

    @property
    def groups(self):
        """Group paths of its items, with every ancestor (a group includes its subgroups)."""
        paths = set()
        for sku in self.skus:
            parts = PRODUCTS[sku].split("/")
            paths.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
        return paths


@dataclass
class Base:
    customers: list
    orders: dict  # id -> OrderFacts
    now: datetime.datetime

    def expected(self, predicate):
        """{(order id, customer id, ordered_at)} of the orders the predicate holds for."""
        return {(o.id, o.customer_id, o.ordered_at) for o in self.orders.values() if predicate(o)}


def build_base(seed=7, customers=25, orders=160):
    rnd = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    group_ids = {}
    for path in GROUPS:
        parent = group_ids.get(path.rsplit("/", 1)[0]) if "/" in path else None
        group_ids[path] = ProductGroup.create(name=path.rsplit("/", 1)[-1], path=path, parent=parent).id
    product_ids = {sku: Product.create(sku=sku, name=sku, group=group_ids[path]).id for sku, path in PRODUCTS.items()}
    channel = create_field("order", "channel", "Channel", "string")
    people = [Customer.create(external_id=f"c{n:03d}", first_name=f"Name{n}") for n in range(customers)]
    facts = {}
    for n in range(orders):
        customer = rnd.choice(people)
        ordered_at = now - datetime.timedelta(minutes=rnd.randrange(0, 60 * 24 * 50))
        status = rnd.choice(STATUSES)
        order = Order.create(
            external_id=f"o{n:04d}",
            customer=customer,
            ordered_at=ordered_at,
            status=status,
            total_cents=rnd.randrange(0, 20000),
        )
        skus = set(rnd.sample(sorted(PRODUCTS), rnd.choice([0, 1, 1, 2, 3])))
        for sku in sorted(skus):
            OrderItem.create(order=order, product=product_ids[sku], quantity=rnd.randint(1, 3), price_cents=100)
        value = rnd.choice(CHANNELS)
        if value is not None:
            CustomValue.create(field=channel.id, record_id=order.id, value_str=value)
        facts[order.id] = OrderFacts(order.id, customer.id, ordered_at, status, order.total_cents, value, skus)
    rollups.rebuild_order_stats()
    return Base(customers=people, orders=facts, now=now)


@pytest.fixture
def base(db):
    return build_base()


def fold(value):
    return value.strip().casefold() if value else None
