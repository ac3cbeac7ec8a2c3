"""Small builders for hand-written engine tests (rows through the models' save())."""

import datetime
from decimal import Decimal

from webapp import engine
from webapp.models import (
    Customer,
    CustomerTag,
    Deal,
    EventOccurrence,
    EventType,
    Mailing,
    MessageEvent,
    Order,
    OrderItem,
    Pipeline,
    Product,
    ProductGroup,
    Segment,
    SegmentMember,
    Shop,
    Stage,
    Tag,
)
from webapp.rollups import refresh_order_stats

# Evaluation time of most tests: 2025-06-15 12:00 UTC.
AT = datetime.datetime(2025, 6, 15, 12, 0)
TODAY = AT.date()


def customer(ext, **fields):
    return Customer.create(external_id=ext, **fields)


def tag(c, *names):
    for name in names:
        t = Tag.get_or_none(Tag.name_ci == name.casefold()) or Tag.create(name=name)
        CustomerTag.create(customer=c, tag=t)


def group(path):
    parent = None
    parts = path.split("/")
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        parent = ProductGroup.get_or_none(ProductGroup.path_ci == sub.casefold()) or ProductGroup.create(
            parent=parent, name=parts[i], path=sub
        )
    return parent


def product(sku, group_path=None):
    return Product.create(sku=sku, name=sku, group=group(group_path) if group_path else None)


_seq = {"n": 0}


def _next(prefix):
    _seq["n"] += 1
    return f"{prefix}{_seq['n']}"


def order(c, ordered_at, total="0", items=(), status=None, shop=None):
    """An order with `items` [(product, quantity)], total in currency units; keeps the rollup current."""
    shop_row = (Shop.get_or_none(Shop.name_ci == shop.casefold()) or Shop.create(name=shop)) if shop else None
    o = Order.create(
        external_id=_next("O"),
        customer=c,
        ordered_at=ordered_at,
        status=status,
        shop=shop_row,
        total_cents=int(Decimal(str(total)) * 100),
    )
    for prod, quantity in items:
        OrderItem.create(order=o, product=prod, quantity=quantity, price_cents=100)
    refresh_order_stats([c.id])
    return o


def pipeline(name, stages=(("New", "open"), ("Won", "won"), ("Lost", "lost"))):
    p = Pipeline.create(name=name)
    return p, {n: Stage.create(pipeline=p, name=n, kind=k) for n, k in stages}


def deal(c, pipeline_row, stage_row, amount="0", created_at=AT, closed_at=None, manager=None):
    return Deal.create(
        external_id=_next("D"),
        customer=c,
        pipeline=pipeline_row,
        stage=stage_row,
        amount_cents=int(Decimal(str(amount)) * 100),
        created_at=created_at,
        closed_at=closed_at,
        manager=manager,
    )


def message(c, kind, occurred_at, channel="email", mailing=None):
    m = (
        (Mailing.get_or_none(Mailing.name_ci == mailing.casefold()) or Mailing.create(name=mailing))
        if mailing
        else None
    )
    return MessageEvent.create(customer=c, channel=channel, kind=kind, mailing=m, occurred_at=occurred_at)


def event(c, code, occurred_at):
    t = EventType.get_or_none(EventType.code_ci == code.casefold()) or EventType.create(code=code)
    return EventOccurrence.create(customer=c, event_type=t, occurred_at=occurred_at)


def segment(code, members=(), definition=None, type="dynamic"):
    s = Segment.create(code=code, name=code, type=type, definition=definition or {"version": 1, "blocks": []})
    for c in members:
        SegmentMember.create(segment=s, customer=c)
    return s


def matches(definition, at=AT, tz="UTC"):
    """External ids of the matching customers, sorted; checks count() and member_ids() agree."""
    ids = list(engine.member_ids(definition, at=at, tz=tz))
    assert engine.count(definition, at=at, tz=tz) == len(ids)
    rows = {c.id: c.external_id for c in engine.members_query(definition, at=at, tz=tz)}
    assert list(rows) == ids
    return sorted(rows.values())


def one(entity, *filters, match="all", having=None, having_match=None):
    """A definition of one block."""
    block = {"entity": entity, "match": match, "filters": list(filters)}
    if having is not None:
        block["having"] = having
    if having_match is not None:
        block["having_match"] = having_match
    return {"version": 1, "blocks": [block]}


def values(*items):
    """`in` values: plain strings include, strings starting with '-' exclude."""
    return [{"value": v[1:], "exclude": True} if v.startswith("-") else {"value": v} for v in items]
