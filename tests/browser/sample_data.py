"""Small builders for customer-base rows, shared by the page tests and the browser tests.

Writers go through the models (so `_ci` twins are filled) and refresh the
order rollup as every order writer must.
"""

import datetime
import random

from webapp.fields import service as cf
from webapp.models import (
    Customer,
    CustomerTag,
    Deal,
    Mailing,
    MessageEvent,
    Order,
    OrderItem,
    Pipeline,
    Product,
    ProductGroup,
    Shop,
    Stage,
    Tag,
)
from webapp.rollups import refresh_order_stats
from webapp.text import fold

T0 = datetime.datetime(2024, 3, 1, 9, 30)
_counter = {"n": 0}


def _next(prefix):
    _counter["n"] += 1
    return f"{prefix}-{_counter['n']}"


def customer(**fields):
    fields.setdefault("external_id", _next("c"))
    return Customer.create(**fields)


def group(path):
    parent = None
    for depth, name in enumerate(path.split("/")):
        sub = "/".join(path.split("/")[: depth + 1])
        parent = ProductGroup.get_or_none(ProductGroup.path_ci == fold(sub)) or ProductGroup.create(
            parent=parent, name=name, path=sub
        )
    return parent


def product(sku, name, group_path=None, price_cents=1000):
    return Product.get_or_none(Product.sku_ci == fold(sku)) or Product.create(
        sku=sku, name=name, group=group(group_path) if group_path else None, price_cents=price_cents
    )


def order(customer_, items, ordered_at=T0, status="paid", shop="Online", custom=None):
    """`items`: [(product, quantity, price_cents)]."""
    shop_row = (Shop.get_or_none(Shop.name_ci == fold(shop)) or Shop.create(name=shop)) if shop else None
    row = Order.create(
        external_id=_next("o"),
        customer=customer_,
        ordered_at=ordered_at,
        status=status,
        shop=shop_row,
        total_cents=sum(q * p for _, q, p in items),
    )
    for prod, quantity, price in items:
        OrderItem.create(order=row, product=prod, quantity=quantity, price_cents=price)
    for code, value in (custom or {}).items():
        cf.set_value(cf.get_field("order", code), row.id, value)
    refresh_order_stats([customer_.id])
    return row


def stage(pipeline_name, stage_name, kind="open"):
    pipeline = Pipeline.get_or_none(Pipeline.name_ci == fold(pipeline_name)) or Pipeline.create(name=pipeline_name)
    return Stage.get_or_none(Stage.pipeline == pipeline, Stage.name_ci == fold(stage_name)) or Stage.create(
        pipeline=pipeline, name=stage_name, kind=kind
    )


def deal(customer_, stage_row, amount_cents=0, manager=None, created_at=T0, closed_at=None, custom=None):
    row = Deal.create(
        external_id=_next("d"),
        customer=customer_,
        pipeline=stage_row.pipeline_id,
        stage=stage_row,
        amount_cents=amount_cents,
        manager=manager,
        created_at=created_at,
        closed_at=closed_at,
    )
    for code, value in (custom or {}).items():
        cf.set_value(cf.get_field("deal", code), row.id, value)
    return row


def message(customer_, kind="sent", channel="email", mailing=None, occurred_at=T0):
    mailing_row = None
    if mailing:
        mailing_row = Mailing.get_or_none(Mailing.name_ci == fold(mailing)) or Mailing.create(
            name=mailing, channel=channel
        )
    return MessageEvent.create(
        customer=customer_, channel=channel, kind=kind, mailing=mailing_row, occurred_at=occurred_at
    )


def tag(customer_, name):
    row = Tag.get_or_none(Tag.name_ci == fold(name)) or Tag.create(name=name)
    CustomerTag.create(customer=customer_, tag=row)
    return row


FIRST = ["Anna", "Boris", "Ирина", "Олег", "Nguyễn", "Trần", "Lena", "Mark", "Sofia", "Пётр", "Lê", "Emma"]
LAST = ["Ivanova", "Smith", "Петрова", "Соколов", "Văn An", "Thị Hoa", "Müller", "Rossi", "Kim", "García"]
CITIES = ["Москва", "Hà Nội", "Berlin", "Санкт-Петербург", "Đà Nẵng", "Paris", None]
COMPANIES = ["Acme Trading", "Северный Ветер", "Công ty Hoa Sen", "Blue Harbor", "Orbit Labs"]


def populate(customers=300, seed=1, manager=None):
    """A varied customer base: contacts and companies, orders with items, deals, messages."""
    rng = random.Random(seed)
    cf.create_field("deal", "membership_type", "Membership type", "enum", ["annual", "monthly"])
    cf.create_field("deal", "lost_reason", "Lost reason", "string")
    cf.create_field("order", "delivery", "Delivery", "enum", ["courier", "pickup"])
    products = [
        product("SKU-1", "Trail shoes", "Sport/Shoes", 8990),
        product("SKU-2", "Rain jacket", "Sport/Clothes", 12900),
        product("SKU-3", "Tea set", "Home/Kitchen", 2450),
        product("SKU-4", "Gift card", None, 5000),
    ]
    won, lost, open_ = stage("Sales", "Won", "won"), stage("Sales", "Lost", "lost"), stage("Sales", "Proposal")
    rows = []
    for i in range(customers):
        if i % 7 == 3:
            row = customer(
                type="company",
                company_name=f"{rng.choice(COMPANIES)} {i}",
                email=f"office{i}@company.example",
                phone=f"+7 495 {i:03d}-00-00",
                city=rng.choice(CITIES),
                country="RU",
                source="import",
                manager=manager,
                created_at=T0 + datetime.timedelta(hours=i),
            )
        else:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            row = customer(
                type="contact",
                first_name=first,
                last_name=last,
                email=f"user{i}@mail.example",
                phone=f"+84 90 {i:04d} 111",
                gender=rng.choice(["male", "female", None]),
                birth_date=datetime.date(1970 + i % 30, 1 + i % 12, 1 + i % 28),
                city=rng.choice(CITIES),
                country=rng.choice(["RU", "VN", "DE"]),
                source=rng.choice(["site", "shop", "import"]),
                manager=manager,
                email_consent=bool(i % 2),
                sms_consent=bool(i % 3),
                created_at=T0 + datetime.timedelta(hours=i),
            )
        rows.append(row)
        if i % 3 == 0:
            for n in range(1 + i % 4):
                picked = rng.sample(products, 1 + n % 2)
                order(
                    row,
                    [(p, 1 + (i + n) % 3, p.price_cents) for p in picked],
                    ordered_at=T0 + datetime.timedelta(days=n, hours=i),
                    shop=rng.choice(["Online", "Store #1"]),
                    custom={"delivery": rng.choice(["courier", "pickup"])},
                )
        if i % 5 == 0:
            deal(
                row,
                won,
                150000,
                manager=manager,
                custom={"membership_type": "annual"},
                closed_at=T0 + datetime.timedelta(days=3),
            )
            deal(row, lost, 20000, custom={"lost_reason": "Too expensive"}, closed_at=T0 + datetime.timedelta(days=5))
            deal(row, open_, 50000)
        if i % 2 == 0:
            for n, kind in enumerate(["sent", "delivered", "opened", "clicked"][: 1 + i % 4]):
                message(row, kind=kind, mailing="Spring sale", occurred_at=T0 + datetime.timedelta(days=10, minutes=n))
    return rows


def _field(entity, code, name, type_, options=None):
    return cf.get_field(entity, code) or cf.create_field(entity, code, name, type_, options)


def known_customer(manager=None, messages=25):
    """One well-described customer the tests look for: Ирина Лебедева, with orders, deals and messages."""
    membership = _field("deal", "membership_type", "Membership type", "enum", ["annual", "monthly"])
    lost_reason = _field("deal", "lost_reason", "Lost reason", "string")
    delivery = _field("order", "delivery", "Delivery", "enum", ["courier", "pickup"])
    row = customer(
        external_id="known-irina",
        type="contact",
        first_name="Ирина",
        last_name="Лебедева",
        email="irina.lebedeva@example.org",
        phone="+7 912 555-01-02",
        gender="female",
        birth_date=datetime.date(1990, 5, 17),
        city="Москва",
        country="Россия",
        source="site",
        manager=manager,
        email_consent=True,
        sms_consent=False,
        created_at=datetime.datetime(2023, 1, 10, 8, 0),
    )
    tag(row, "VIP")
    shoes = product("KNOWN-SHOES", "Беговые кроссовки", "Спорт/Обувь", 899000)
    tea = product("KNOWN-TEA", "Trà sen Tây Hồ", "Food/Tea", 12050)
    first = order(
        row,
        [(shoes, 1, 899000), (tea, 2, 12050)],
        ordered_at=datetime.datetime(2024, 2, 1, 12, 0),
        status="paid",
        shop="Store #1",
    )
    cf.set_value(delivery, first.id, "courier")
    order(row, [(tea, 3, 12050)], ordered_at=datetime.datetime(2024, 4, 2, 15, 30), status="shipped", shop="Online")
    won, lost = stage("Memberships", "Won", "won"), stage("Memberships", "Lost", "lost")
    annual = deal(
        row,
        won,
        2500000,
        manager=manager,
        created_at=datetime.datetime(2024, 1, 5),
        closed_at=datetime.datetime(2024, 1, 20),
    )
    cf.set_value(membership, annual.id, "annual")
    gone = deal(row, lost, 990000, created_at=datetime.datetime(2023, 6, 1), closed_at=datetime.datetime(2023, 6, 9))
    cf.set_value(lost_reason, gone.id, "Выбрала другой клуб")
    kinds = ["sent", "delivered", "opened", "clicked", "bounced"]
    for n in range(messages):
        message(
            row,
            kind=kinds[n % len(kinds)],
            channel="email" if n % 4 else "sms",
            mailing=f"Newsletter {n // 5 + 1}",
            occurred_at=datetime.datetime(2024, 5, 1) + datetime.timedelta(days=n),
        )
    return row
