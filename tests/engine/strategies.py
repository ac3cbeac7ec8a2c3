"""Hypothesis strategies: small random customer bases and random valid definitions.

`worlds()` draws a `reference.World` over a fixed vocabulary (custom fields,
shops, product groups, pipelines, mailings, segments) with values chosen to
sit on the edges the spec names: case and alphabet variants, blanks, LIKE
wildcards, money on the cent, datetimes a minute either side of local
midnight, Feb 29 birthdays. `definitions(world)` draws spec-valid definition
dicts (JSON-ready) over the same vocabulary, so filters hit and miss.
`load(world)` writes a world into the bound database with explicit ids.

The builder's tests reuse these (`from engine.strategies import ...`).
"""

import datetime
import zoneinfo
from decimal import Decimal

from hypothesis import strategies as st

from webapp.fields.service import value_row
from webapp.models import (
    PREDICTED_FIELDS,
    Customer,
    CustomerPrediction,
    CustomerTag,
    CustomField,
    CustomValue,
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
    User,
)
from webapp.rollups import rebuild_order_stats

from .reference import World

TODAYS = [
    datetime.date(2025, 6, 15),
    datetime.date(2024, 2, 29),
    datetime.date(2025, 12, 31),
    datetime.date(2026, 1, 1),
    datetime.date(2025, 3, 1),
    datetime.date(2023, 2, 28),
]
ZONES = ["UTC", "Europe/Moscow", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati", "America/St_Johns"]

TEXTS = [
    None,
    "",
    "  ",
    "Москва",
    "МОСКВА",
    " москва ",
    "London",
    "LONDON",
    "Straße",
    "STRASSE",
    "Hà Nội",
    "HÀ NỘI",
    "100%",
    "a_b",
    "a\\b",
    "İstanbul",
    "Ǆemal",
]
TEXT_QUERIES = [
    "Москва",
    "москва",
    "london",
    "Straße",
    "strasse",
    "HÀ NỘI",
    "100%",
    "a_b",
    "a\\b",
    "Paris",
    "ǆemal",
    "İstanbul",
    "ОСК",
    "nd",
    "%",
    "_",
    "\\",
    "ss",
    "ha",
]
USERS = {1: "Anna@Example.com", 2: "boris@example.com", 3: "ВЕРА@пример.рф"}
USER_QUERIES = ["anna@example.com", "BORIS@EXAMPLE.COM", "вера@ПРИМЕР.РФ", "nobody@example.com"]
TAGS = {1: "VIP", 2: "Опт", 3: "newsletter"}
TAG_QUERIES = ["vip", "ОПТ", "Newsletter", "absent"]

CUSTOM_FIELDS = {
    1: dict(entity="customer", code="favourite", type="enum", options=["Vietnam", "Italy", "Турция"]),
    2: dict(entity="customer", code="pets", type="integer", options=None),
    3: dict(entity="customer", code="vip", type="boolean", options=None),
    4: dict(entity="customer", code="discount", type="decimal", options=None),
    5: dict(entity="customer", code="loyalty", type="string", options=None),
    6: dict(entity="customer", code="anniversary", type="date", options=None),
    7: dict(entity="order", code="delivery", type="enum", options=["courier", "pickup"]),
    8: dict(entity="order", code="note", type="string", options=None),
    9: dict(entity="deal", code="membership_type", type="enum", options=["monthly", "quarterly", "annual"]),
    10: dict(entity="deal", code="seats", type="integer", options=None),
}
SHOPS = {1: "Online store", 2: "Nevsky store"}
SHOP_QUERIES = ["online STORE", "nevsky store", "Closed store"]
GROUPS = {
    1: "Pet food",
    2: "Pet food/Cat food",
    3: "Pet food/Cat food/Urinary care",
    4: "Tea",
    5: "Tea/Chinese tea",
    6: "Teapots",
    7: "100%/a_b",
}
GROUP_QUERIES = [
    "pet food",
    "PET FOOD/cat food",
    "Pet food/Cat food/Urinary care",
    "Tea",
    "tea/chinese TEA",
    "Teapots",
    "100%",
    "100%/a_b",
    "Te",
    "Pet food/Cat",
    "Tea/Chinese tea/Puer",
]
PRODUCTS = {
    1: ("CU-1", 3),
    2: ("CD-1", 2),
    3: ("TEA-1", 5),
    4: ("TEA-2", 4),
    5: ("POT-1", 6),
    6: ("X%1", 7),
    7: ("NOGROUP", None),
}
PRODUCT_QUERIES = ["cu-1", "TEA-1", "tea-2", "x%1", "X_1", "nogroup", "MISSING"]
PIPELINES = {1: "Memberships", 2: "Wholesale"}
PIPELINE_QUERIES = ["memberships", "WHOLESALE", "Partners"]
STAGES = {
    1: (1, "New", "open"),
    2: (1, "Paid", "won"),
    3: (1, "Lost", "lost"),
    4: (2, "New", "open"),
    5: (2, "Won", "won"),
}
STAGE_QUERIES = ["new", "PAID", "won", "lost", "Archived"]
MAILINGS = {1: "Black Friday", 2: "Новый год"}
MAILING_QUERIES = ["black friday", "НОВЫЙ ГОД", "Spring"]
EVENT_TYPES = {1: "login", 2: "cart_abandoned"}
EVENT_QUERIES = ["LOGIN", "cart_abandoned", "cart%abandoned", "purchase"]
SEGMENTS = {"vip": 1, "churn": 2, "Sleeping": 3}
STATUSES = [None, "paid", "PAID", "cancelled", "Отменён"]
STATUS_QUERIES = ["paid", "ОТМЕНЁН", "Cancelled", "refunded"]

NUMBERS = [-5, 0, 1, 2, 3, 5, 10, 99.99, 100, 100.01, 250.5, 1000]
COUNTS = [0, 1, 2, 3, 0.5, 2.5]
AGES = [0, 17, 18, 25, 35.5, 60, 100]
SCORE_BOUNDS = [0, 0.1, 0.3, 0.2999999, 0.5, 1, 2.5, 100, 5000, -1]
DAYS = [-400, -365, -180, -90, -30, -7, -1, 0, 1, 3, 7, 30, 364, 365, 366]
MONTH_DAYS = ["01-01", "01-03", "02-28", "02-29", "03-01", "06-15", "12-02", "12-31"]

UTC = datetime.UTC


def day_start(day, tz):
    """Naive UTC instant of local midnight of `day` in `tz`."""
    return datetime.datetime.combine(day, datetime.time(), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


# Strategies built once: constructing them inside every draw costs more than drawing.
_DAY_OFFSETS = st.sampled_from(DAYS) | st.integers(-400, 400)
_TIME_OFFSETS = st.sampled_from(
    [
        datetime.timedelta(0),
        datetime.timedelta(minutes=1),
        datetime.timedelta(minutes=-1),
        datetime.timedelta(hours=12),
        datetime.timedelta(microseconds=-1),
    ]
) | st.integers(0, 86399).map(lambda s: datetime.timedelta(seconds=s))
_SPECIAL_BIRTHS = st.sampled_from(
    [datetime.date(2000, 2, 29), datetime.date(1996, 2, 29), datetime.date(1990, 12, 31), datetime.date(1985, 1, 1)]
)
_BIRTHDAY_YEARS = st.sampled_from([0, 17, 18, 25, 35, 36, 60, 100])
_ANY_BIRTH = st.dates(datetime.date(1920, 1, 1), datetime.date(2024, 12, 31))


def instant(draw, today, tz):
    """A naive UTC datetime near `today`, often a minute either side of a local midnight."""
    day = today + datetime.timedelta(days=draw(_DAY_OFFSETS))
    return day_start(day, tz) + draw(_TIME_OFFSETS)


def birth_date(draw, today):
    kind = draw(_SMALL)
    if kind == 0:
        return draw(_SPECIAL_BIRTHS)
    if kind == 1:
        # around the birthday `years` ago: edges of age and ignore_year ranges
        years = draw(_BIRTHDAY_YEARS)
        day = today + datetime.timedelta(days=draw(_NEAR))
        try:
            return day.replace(year=day.year - years)
        except ValueError:
            return day.replace(year=day.year - years, day=28)
    return draw(_ANY_BIRTH)


_SMALL = st.integers(0, 3)
_NEAR = st.integers(-3, 3)


def _decimal_values():
    return st.integers(-100000, 100000).map(lambda n: Decimal(n) / 100)


_CUSTOM_DECIMALS = (
    st.sampled_from([Decimal("99.99"), Decimal("100"), Decimal("100.01"), Decimal("0")]) | _decimal_values()
)
_CUSTOM_INTEGERS = st.integers(-2, 12).map(Decimal)
_CUSTOM_TEXTS = st.sampled_from([t for t in TEXTS if t])
_ENUM_VALUES = {fid: st.sampled_from(f["options"]) for fid, f in CUSTOM_FIELDS.items() if f["type"] == "enum"}


def _custom_value(draw, fid, today):
    if draw(_SMALL) == 0:
        return None
    t = CUSTOM_FIELDS[fid]["type"]
    if t == "enum":
        return draw(_ENUM_VALUES[fid])
    if t == "integer":
        return draw(_CUSTOM_INTEGERS)
    if t == "decimal":
        return draw(_CUSTOM_DECIMALS)
    if t == "boolean":
        return draw(_BOOLS_)
    if t == "date":
        return birth_date(draw, today)
    return draw(_CUSTOM_TEXTS)


_BOOLS_ = st.booleans()
# Scores near the pool's bounds (0.3 and 0.30000000000000004, 5000 and just above), nulls, any double in range.
_SCORES = st.sampled_from(
    [None, 0.0, 0.1, 0.3, 0.30000000000000004, 0.2999999, 1.0, 2.5, 99.99, 100.0, 5000.0, 5000.000001, 1e-9]
) | st.floats(0, 6000, allow_nan=False, allow_infinity=False, allow_subnormal=False)


# Drawn inside the loops of worlds(), built once.
_TYPES = st.sampled_from(["contact", "company"])
_EMAILS = st.sampled_from([None, "a@x.ru", "Ирина@Почта.рф"])
_PHONES = st.sampled_from([None, "+7 900", ""])
_GENDERS = st.sampled_from([None, "male", "female"])
_MANAGERS = st.sampled_from([None, 1, 2, 3])
_BOOLS = st.booleans()
_TAG_SETS = st.sets(st.sampled_from(sorted(TAGS)), max_size=2)
_SEGMENT_SETS = st.sets(st.sampled_from(sorted(SEGMENTS.values())), max_size=2)
_ORDER_COUNTS = st.integers(0, 4)
_SHOP_IDS = st.sampled_from([None, 1, 2])
_TOTALS = st.sampled_from([0, 9999, 10000, 10001, 25050]) | st.integers(0, 200000)
_ITEM_PRODUCTS = st.lists(st.sampled_from(sorted(PRODUCTS)), max_size=3)
_QUANTITIES = st.integers(1, 3)
_FEW = st.integers(0, 2)
_STAGE_IDS = st.sampled_from(sorted(STAGES))
_AMOUNTS = st.sampled_from([0, 9999, 10000, 50000]) | st.integers(0, 1000000)
_MESSAGE_COUNTS = st.integers(0, 3)
_CHANNELS = st.sampled_from(["email", "sms"])
_KINDS = st.sampled_from(["sent", "delivered", "opened", "clicked", "bounced", "unsubscribed"])
_EVENT_TYPE_IDS = st.sampled_from([1, 2])
_TEXTS = st.sampled_from(TEXTS)
_STATUSES = st.sampled_from(STATUSES)
_TODAYS = st.sampled_from(TODAYS)
_ZONES = st.sampled_from(ZONES)


@st.composite
def worlds(draw, max_customers=6):
    """A small random customer base (a reference.World) plus `today` and `tz`."""
    today = draw(_TODAYS)
    tz = zoneinfo.ZoneInfo(draw(_ZONES))
    w = World()
    w.today, w.tz = today, tz
    w.users = dict(USERS)
    w.tags = dict(TAGS)
    w.custom_fields = {k: dict(v) for k, v in CUSTOM_FIELDS.items()}
    w.shops = dict(SHOPS)
    w.groups = {gid: {"path": path, "name": path.rsplit("/", 1)[-1]} for gid, path in GROUPS.items()}
    w.products = {pid: {"sku": sku, "group_id": gid} for pid, (sku, gid) in PRODUCTS.items()}
    w.pipelines = dict(PIPELINES)
    w.stages = {sid: {"pipeline_id": p, "name": n, "kind": k} for sid, (p, n, k) in STAGES.items()}
    w.mailings = dict(MAILINGS)
    w.event_types = dict(EVENT_TYPES)
    w.segments = dict(SEGMENTS)

    texts = _TEXTS
    n = draw(st.integers(0, max_customers))
    order_id = deal_id = 0
    for cid in range(1, n + 1):
        w.customers.append(
            {
                "id": cid,
                "external_id": f"C{cid:03d}",
                "type": draw(_TYPES),
                "first_name": draw(texts),
                "last_name": draw(texts),
                "company_name": draw(texts),
                "email": draw(_EMAILS),
                "phone": draw(_PHONES),
                "gender": draw(_GENDERS),
                "birth_date": birth_date(draw, today) if draw(_SMALL) else None,
                "city": draw(texts),
                "country": draw(texts),
                "source": draw(texts),
                "manager_id": draw(_MANAGERS),
                "email_consent": draw(_BOOLS),
                "sms_consent": draw(_BOOLS),
                "created_at": instant(draw, today, tz),
            }
        )
        for tid in draw(_TAG_SETS):
            w.customer_tags.add((cid, tid))
        for fid, field in CUSTOM_FIELDS.items():
            if field["entity"] == "customer":
                value = _custom_value(draw, fid, today)
                if value is not None:
                    w.custom_values[(fid, cid)] = value
        for sid in draw(_SEGMENT_SETS):
            w.segment_members.add((sid, cid))
        if draw(_SMALL):
            w.predictions[cid] = {name: draw(_SCORES) for name in PREDICTED_FIELDS}
        for _ in range(draw(_ORDER_COUNTS)):
            order_id += 1
            w.orders.append(
                {
                    "id": order_id,
                    "external_id": f"O{order_id}",
                    "customer_id": cid,
                    "ordered_at": instant(draw, today, tz),
                    "status": draw(_STATUSES),
                    "shop_id": draw(_SHOP_IDS),
                    "total_cents": draw(_TOTALS),
                }
            )
            for pid in draw(_ITEM_PRODUCTS):
                w.items.append(
                    {"order_id": order_id, "product_id": pid, "quantity": draw(_QUANTITIES), "price_cents": 100}
                )
            for fid, field in CUSTOM_FIELDS.items():
                if field["entity"] == "order":
                    value = _custom_value(draw, fid, today)
                    if value is not None:
                        w.custom_values[(fid, order_id)] = value
        for _ in range(draw(_FEW)):
            deal_id += 1
            stage_id = draw(_STAGE_IDS)
            w.deals.append(
                {
                    "id": deal_id,
                    "external_id": f"D{deal_id}",
                    "customer_id": cid,
                    "pipeline_id": STAGES[stage_id][0],
                    "stage_id": stage_id,
                    "amount_cents": draw(_AMOUNTS),
                    "manager_id": draw(_SHOP_IDS),
                    "created_at": instant(draw, today, tz),
                    "closed_at": instant(draw, today, tz) if draw(_BOOLS) else None,
                }
            )
            for fid, field in CUSTOM_FIELDS.items():
                if field["entity"] == "deal":
                    value = _custom_value(draw, fid, today)
                    if value is not None:
                        w.custom_values[(fid, deal_id)] = value
        for _ in range(draw(_MESSAGE_COUNTS)):
            w.messages.append(
                {
                    "customer_id": cid,
                    "channel": draw(_CHANNELS),
                    "kind": draw(_KINDS),
                    "mailing_id": draw(_SHOP_IDS),
                    "occurred_at": instant(draw, today, tz),
                }
            )
        for _ in range(draw(_FEW)):
            w.events.append(
                {"customer_id": cid, "event_type_id": draw(_EVENT_TYPE_IDS), "occurred_at": instant(draw, today, tz)}
            )
    return w


def load(world):
    """Write a world into the bound database (ids explicit) and rebuild the order rollup."""
    load_vocabulary(world)
    load_records(world)


def _many(model, rows):
    rows = list(rows)
    if rows:
        model.insert_many(rows).execute()


def load_vocabulary(world):
    """The rows every world shares: users, tags, custom fields, shops, products, pipelines, ..."""
    _many(User, [{"id": i, "email": e, "email_ci": e.casefold(), "password_hash": "x"} for i, e in world.users.items()])
    _many(Tag, [{"id": i, "name": n, "name_ci": n.casefold()} for i, n in world.tags.items()])
    _many(
        CustomField,
        [
            {
                "id": fid,
                "entity": f["entity"],
                "code": f["code"],
                "name": f["code"].title(),
                "type": f["type"],
                "options": f["options"],
                "position": fid,
            }
            for fid, f in world.custom_fields.items()
        ],
    )
    _many(Shop, [{"id": i, "name": n, "name_ci": n.casefold()} for i, n in world.shops.items()])
    paths = {g["path"]: gid for gid, g in world.groups.items()}
    _many(
        ProductGroup,
        [
            {
                "id": gid,
                "parent": paths.get(g["path"].rsplit("/", 1)[0]) if "/" in g["path"] else None,
                "name": g["name"],
                "path": g["path"],
                "path_ci": g["path"].casefold(),
            }
            for gid, g in sorted(world.groups.items())
        ],
    )
    _many(
        Product,
        [
            {"id": i, "sku": p["sku"], "sku_ci": p["sku"].casefold(), "group": p["group_id"]}
            for i, p in world.products.items()
        ],
    )
    _many(Pipeline, [{"id": i, "name": n, "name_ci": n.casefold()} for i, n in world.pipelines.items()])
    _many(
        Stage,
        [
            {
                "id": i,
                "pipeline": s["pipeline_id"],
                "name": s["name"],
                "name_ci": s["name"].casefold(),
                "kind": s["kind"],
            }
            for i, s in world.stages.items()
        ],
    )
    _many(Mailing, [{"id": i, "name": n, "name_ci": n.casefold()} for i, n in world.mailings.items()])
    _many(EventType, [{"id": i, "code": c, "code_ci": c.casefold()} for i, c in world.event_types.items()])
    _many(
        Segment,
        [
            {"id": sid, "code": code, "name": code, "definition": {"version": 1, "blocks": []}}
            for code, sid in world.segments.items()
        ],
    )


def load_records(world):
    """The rows that differ between worlds: customers and everything they own."""
    _many(
        Customer,
        [
            Customer.fill_folded({k: v for k, v in c.items() if k != "manager_id"} | {"manager": c["manager_id"]})
            for c in world.customers
        ],
    )
    _many(CustomerTag, [{"customer": c, "tag": t} for c, t in sorted(world.customer_tags)])
    fields = {fid: CustomField(id=fid, type=f["type"]) for fid, f in world.custom_fields.items()}
    _many(CustomValue, [value_row(fields[fid], rid, v) for (fid, rid), v in sorted(world.custom_values.items())])
    _many(
        Order,
        [
            Order.fill_folded(
                {
                    "id": o["id"],
                    "external_id": o["external_id"],
                    "customer": o["customer_id"],
                    "ordered_at": o["ordered_at"],
                    "status": o["status"],
                    "shop": o["shop_id"],
                    "total_cents": o["total_cents"],
                }
            )
            for o in world.orders
        ],
    )
    _many(
        OrderItem,
        [
            {
                "order": i["order_id"],
                "product": i["product_id"],
                "quantity": i["quantity"],
                "price_cents": i["price_cents"],
            }
            for i in world.items
        ],
    )
    _many(
        Deal,
        [
            {
                "id": d["id"],
                "external_id": d["external_id"],
                "customer": d["customer_id"],
                "pipeline": d["pipeline_id"],
                "stage": d["stage_id"],
                "amount_cents": d["amount_cents"],
                "manager": d["manager_id"],
                "created_at": d["created_at"],
                "closed_at": d["closed_at"],
            }
            for d in world.deals
        ],
    )
    _many(
        MessageEvent,
        [
            {
                "customer": m["customer_id"],
                "channel": m["channel"],
                "kind": m["kind"],
                "mailing": m["mailing_id"],
                "occurred_at": m["occurred_at"],
            }
            for m in world.messages
        ],
    )
    _many(
        EventOccurrence,
        [
            {"customer": e["customer_id"], "event_type": e["event_type_id"], "occurred_at": e["occurred_at"]}
            for e in world.events
        ],
    )
    _many(SegmentMember, [{"segment": s, "customer": c} for s, c in sorted(world.segment_members)])
    _many(CustomerPrediction, [{"customer": c, **scores} for c, scores in sorted(world.predictions.items())])
    rebuild_order_stats()


# --- definitions -------------------------------------------------------------


def _choices(draw, pool):
    values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    return [{"value": v, "exclude": draw(st.booleans())} for v in values]


def _number_bounds(draw, pool):
    lo = draw(st.none() | st.sampled_from(pool))
    hi = draw(st.none() | st.sampled_from(pool))
    if lo is None and hi is None:
        lo = draw(st.sampled_from(pool))
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    out = {}
    if lo is not None:
        out["from"] = lo
    if hi is not None:
        out["to"] = hi
    return out


def _date_bounds(draw, today):
    days = [draw(st.none() | st.sampled_from(DAYS)) for _ in range(2)]
    if days == [None, None]:
        days[0] = draw(st.sampled_from(DAYS))
    if None not in days:
        days.sort()
    out = {}
    for key, d in zip(("from", "to"), days):
        if d is not None:
            out[key] = (today + datetime.timedelta(days=d)).isoformat()
    return out


def _relative(draw, ignore_year=False):
    lo = draw(st.sampled_from(DAYS))
    hi = draw(st.sampled_from(DAYS))
    lo, hi = min(lo, hi), max(lo, hi)
    if ignore_year:
        return {"from_days": lo, "to_days": hi, "ignore_year": True}
    which = draw(st.sampled_from(["both", "from", "to"]))
    out = {}
    if which in ("both", "from"):
        out["from_days"] = lo
    if which in ("both", "to"):
        out["to_days"] = hi
    return out


def _filter_for(draw, name, kind, today, pool=None):
    """A valid filter dict on field `name` of value kind `kind`."""
    empty = st.sampled_from(["is_empty", "is_not_empty"])
    if kind in ("string", "reference", "enum"):
        ops = ["in", "in", "in", "is_empty", "is_not_empty"] + (["contains"] * 2 if kind == "string" else [])
        op = draw(st.sampled_from(ops))
        if op == "in":
            return {"field": name, "op": "in", "values": _choices(draw, pool)}
        if op == "contains":
            return {"field": name, "op": "contains", "value": draw(st.sampled_from(TEXT_QUERIES))}
        return {"field": name, "op": op}
    if kind in ("number", "money", "integer"):
        if draw(st.integers(0, 5)) == 0:
            return {"field": name, "op": draw(empty)}
        bounds = pool or NUMBERS
        if kind == "money":
            bounds = [b for b in bounds if round(b, 2) == b]
        return {"field": name, "op": "between", **_number_bounds(draw, bounds)}
    if kind in ("date", "datetime"):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            return {"field": name, "op": draw(empty)}
        if choice in (1, 2):
            return {"field": name, "op": "between", **_date_bounds(draw, today)}
        if kind == "date" and choice == 3:
            lo, hi = draw(st.sampled_from(MONTH_DAYS)), draw(st.sampled_from(MONTH_DAYS))
            out = {"field": name, "op": "between", "ignore_year": True}
            if draw(st.integers(0, 4)):
                out["from"] = lo
            if draw(st.integers(0, 4)) or "from" not in out:
                out["to"] = hi
            return out
        if kind == "date" and choice == 4:
            return {"field": name, "op": "relative", **_relative(draw, ignore_year=True)}
        return {"field": name, "op": "relative", **_relative(draw)}
    if kind == "boolean":
        if draw(st.integers(0, 3)) == 0:
            return {"field": name, "op": draw(empty)}
        return {"field": name, "op": "is", "value": draw(st.booleans())}
    raise ValueError(kind)


CUSTOMER_FIELDS = [
    ("type", "enum", ["contact", "COMPANY"]),
    ("first_name", "string", TEXT_QUERIES),
    ("last_name", "string", TEXT_QUERIES),
    ("company_name", "string", TEXT_QUERIES),
    ("email", "string", ["a@x.ru", "ирина@почта.рф", "A@X.RU"]),
    ("phone", "string", ["+7 900"]),
    ("gender", "enum", ["male", "Female"]),
    ("birth_date", "date", None),
    ("age", "number", AGES),
    ("city", "string", TEXT_QUERIES),
    ("country", "string", TEXT_QUERIES),
    ("source", "string", TEXT_QUERIES),
    ("manager", "reference", USER_QUERIES),
    ("email_consent", "boolean", None),
    ("sms_consent", "boolean", None),
    ("created_at", "datetime", None),
    ("tags", "reference", TAG_QUERIES),
    ("custom.favourite", "enum", ["vietnam", "ITALY", "турция"]),
    ("custom.pets", "number", NUMBERS),
    ("custom.vip", "boolean", None),
    ("custom.discount", "number", NUMBERS),
    ("custom.loyalty", "string", TEXT_QUERIES),
    ("custom.anniversary", "date", None),
    ("predicted.p_alive", "number", SCORE_BOUNDS),
    ("predicted.orders_30d", "number", SCORE_BOUNDS),
    ("predicted.orders_90d", "number", SCORE_BOUNDS),
    ("predicted.orders_365d", "number", SCORE_BOUNDS),
    ("predicted.aov", "number", SCORE_BOUNDS),
    ("predicted.clv", "number", SCORE_BOUNDS),
]
RECORD_FIELDS = {
    "order": [
        ("ordered_at", "datetime", None),
        ("status", "string", STATUS_QUERIES),
        ("shop", "reference", SHOP_QUERIES),
        ("total", "money", NUMBERS),
        ("product", "reference", PRODUCT_QUERIES),
        ("product_group", "reference", GROUP_QUERIES),
        ("custom.delivery", "enum", ["Courier", "pickup"]),
        ("custom.note", "string", TEXT_QUERIES),
    ],
    "deal": [
        ("stage", "reference", STAGE_QUERIES),
        ("stage_kind", "enum", ["won", "LOST", "open"]),
        ("amount", "money", NUMBERS),
        ("manager", "reference", USER_QUERIES),
        ("created_at", "datetime", None),
        ("closed_at", "datetime", None),
        ("custom.membership_type", "enum", ["annual", "Monthly"]),
        ("custom.seats", "number", NUMBERS),
    ],
    "message": [
        ("channel", "enum", ["email", "SMS"]),
        ("kind", "enum", ["opened", "clicked", "Sent"]),
        ("mailing", "reference", MAILING_QUERIES),
        ("occurred_at", "datetime", None),
    ],
    "event": [("event", "reference", EVENT_QUERIES), ("occurred_at", "datetime", None)],
}
AGGREGATES = {
    "order": ["count", "sum", "avg", "quantity", "first_at", "last_at"],
    "deal": ["count", "sum", "avg", "first_at", "last_at"],
    "message": ["count", "first_at", "last_at"],
    "event": ["count", "first_at", "last_at"],
}


def _condition(draw, agg, today):
    if agg in ("first_at", "last_at"):
        flt = _filter_for(draw, agg, "datetime", today)
    elif agg in ("sum", "avg"):
        flt = _filter_for(draw, agg, "money", today, NUMBERS + [0, 0])
    else:
        flt = _filter_for(draw, agg, "integer", today, COUNTS + [0, 1])
    flt["agg"] = flt.pop("field")
    return flt


@st.composite
def blocks(draw, today):
    entity = draw(st.sampled_from(["customer", "customer", "order", "order", "deal", "message", "event", "segment"]))
    match = draw(st.sampled_from(["all", "any"]))
    if entity == "customer":
        chosen = draw(st.lists(st.sampled_from(CUSTOMER_FIELDS), max_size=3))
        return {
            "entity": "customer",
            "match": match,
            "filters": [_filter_for(draw, n, k, today, p) for n, k, p in chosen],
        }
    if entity == "segment":
        codes = list(SEGMENTS) + ["vip", "churn"]
        return {
            "entity": "segment",
            "match": match,
            "filters": [
                {"field": "segment", "op": "in", "values": _choices(draw, codes)}
                for _ in range(draw(st.integers(1, 2)))
            ],
        }
    chosen = draw(st.lists(st.sampled_from(RECORD_FIELDS[entity]), max_size=2))
    filters = [_filter_for(draw, n, k, today, p) for n, k, p in chosen]
    if entity == "deal":
        if draw(st.integers(0, 6)) == 0:
            return {"entity": "deal", "filters": [{"field": "pipeline", "op": "is_empty"}]}
        pipeline = draw(
            st.sampled_from(
                [
                    {"field": "pipeline", "op": "in", "values": _choices(draw, PIPELINE_QUERIES)},
                    {"field": "pipeline", "op": "is_not_empty"},
                ]
            )
        )
        filters.insert(draw(st.integers(0, len(filters))), pipeline)
    block = {"entity": entity, "match": match, "filters": filters}
    if draw(st.booleans()):
        aggs = draw(st.lists(st.sampled_from(AGGREGATES[entity]), min_size=1, max_size=2))
        block["having"] = [_condition(draw, a, today) for a in aggs]
        block["having_match"] = draw(st.sampled_from(["all", "any"]))
    return block


@st.composite
def definitions(draw, today):
    """A spec-valid definition dict over the strategies' vocabulary."""
    return {
        "version": 1,
        "match": draw(st.sampled_from(["all", "any"])),
        "blocks": draw(st.lists(blocks(today), max_size=3)),
    }
