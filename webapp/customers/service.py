"""Customers as the pages and the export read them: search, the list, and the
card's sections (orders, deals, messages, custom values). Flask-free.

Search folds the query the same way the `_ci` shadow columns are folded and
matches prefixes, so it is case-insensitive in every alphabet ("ири" finds
"Ирина") and can walk the indexes on those columns.
"""

import functools
import operator

import peewee as pw

from ..db import database, is_postgres
from ..fields import service as cf
from ..models import (
    CUSTOMER_TYPES,
    Customer,
    CustomerOrderStats,
    CustomerTag,
    CustomValue,
    Deal,
    Mailing,
    MessageEvent,
    Order,
    OrderItem,
    Pipeline,
    Product,
    ProductGroup,
    SegmentMember,
    Shop,
    Stage,
    Tag,
    User,
)
from ..pagination import Page
from ..text import fold, like_escape
from ..values import phone_search_forms

# Matches a search counts exactly; past it the list says "more than".
SEARCH_COUNT_CAP = 10_000

# Rows each card section shows before "Show more".
CARD_LIMITS = {"orders": 10, "deals": 10, "messages": 20}

SEARCH_COLUMNS = (
    Customer.first_name_ci,
    Customer.last_name_ci,
    Customer.company_name_ci,
    Customer.email_ci,
    Customer.phone_ci,
)


# --- search ------------------------------------------------------------------


def _next_char(char):
    code = ord(char) + 1
    if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored: skip them
        code = 0xE000
    return chr(code) if code <= 0x10FFFF else None


@functools.lru_cache(maxsize=8)
def _ranges_are_prefixes(db):
    """Whether `col >= p AND col < p'` selects exactly the strings starting with p.

    True where strings sort by code point: SQLite (BINARY) and PostgreSQL with
    a C collation. Other PostgreSQL collations sort by language rules, so there
    a prefix is a LIKE (exact, but it scans instead of seeking).
    """
    if not is_postgres():
        return True
    collation = database.execute_sql("SHOW lc_collate").fetchone()[0]
    return collation.split(".")[0].upper() in ("C", "POSIX")


def prefix_condition(column, text):
    """`column` (folded) starts with the folded `text`.

    As a range (p <= col < p', p' being p with its last letter one code point
    up) both databases seek in the column's index, and the range is exact where
    strings sort by code point; elsewhere it is a LIKE with the wildcards escaped.
    """
    upper = _next_char(text[-1])
    if upper is not None and _ranges_are_prefixes(database.obj):
        return (column >= text) & (column < text[:-1] + upper)
    # Plain LIKE on both databases (peewee's OP.LIKE is GLOB on SQLite).
    return pw.NodeList((column, pw.SQL("LIKE"), like_escape(text) + "%", pw.SQL("ESCAPE"), "\\"), parens=True)


def _any_column_starts_with(text):
    return functools.reduce(operator.or_, [prefix_condition(c, text) for c in SEARCH_COLUMNS])


def _phone_condition(query):
    """A phone typed any usual way finds the stored one by its digits (None: the
    text is no phone): "8 (912) 345-67-89", "912 345 67 89" and "+7 912 345"
    all find +79123456789. Prefix ranges and an IN list: index seeks."""
    forms = phone_search_forms(query)
    if forms is None:
        return None
    prefixes, numbers = forms
    condition = functools.reduce(operator.or_, [prefix_condition(Customer.phone_ci, p) for p in prefixes])
    return condition | Customer.phone_ci.in_(numbers) if numbers else condition


def search_condition(query):
    """The WHERE condition for a search box text (None: no condition).

    Each word must start one of first name, last name, company, email or phone
    ("ири пет" finds Ирина Петрова); a text of several words may also start a
    single field ("acme trad" finds the company "Acme Trading", "+7 912" a phone);
    a phone is also compared by its digits (`_phone_condition`).
    """
    text = fold(query)
    if not text:
        return None
    phone = _phone_condition(text)
    match = _words_condition(text)
    return match if phone is None else match | phone


def _words_condition(text):
    words = text.split()
    phrase = _any_column_starts_with(" ".join(words))
    if len(words) == 1:
        return phrase
    each_word = [_any_column_starts_with(w) for w in words]
    if is_postgres():
        # One tree of ORs and ANDs: PostgreSQL combines the index bitmaps.
        return phrase | functools.reduce(operator.and_, each_word)
    # SQLite uses indexes for an OR of ranges but scans the whole table for an
    # OR whose branch is an AND of ORs: give each branch its own id subquery
    # and intersect the words as id sets, read from the indexes alone.
    every_word = functools.reduce(operator.and_, [Customer.select(Customer.id).where(w) for w in each_word])
    return Customer.id.in_(Customer.select(Customer.id).where(phrase)) | Customer.id.in_(every_word)


def customer_query(q=None, type_=None, segment_id=None):
    """Customers matching a search text, a type and membership of a segment (each optional)."""
    query = Customer.select()
    conditions = []
    if segment_id is not None:
        conditions.append(
            Customer.id.in_(SegmentMember.select(SegmentMember.customer).where(SegmentMember.segment == segment_id))
        )
    if type_ in CUSTOMER_TYPES:
        conditions.append(Customer.type == type_)
    match = search_condition(q)
    if match is not None:
        conditions.append(match)
    if conditions:
        query = query.where(*conditions)
    return query


def _walk_newest_first(matches, rows_needed):
    """Whether walking the created_at index beats sorting the matches (SQLite plans by rules).

    The walk reads about rows_needed × customers / matches rows, the sort all
    the matches: a common prefix ("a") walks, a rare one ("user12345") sorts.
    Without the choice a rare match walks the whole table (seconds at 1M).
    """
    if is_postgres():
        return True  # PostgreSQL weighs both plans with its statistics
    customers = Customer.select(pw.fn.MAX(Customer.id)).scalar() or 0
    return matches * matches > rows_needed * customers


def _newest_first(walk=True, reverse=False):
    created = Customer.created_at
    if not walk:
        # Unary + hides the index from SQLite: it collects the matches through
        # the _ci indexes and sorts just those.
        created = pw.NodeList((pw.SQL("+"), Customer.created_at))
    if reverse:
        return [pw.Asc(created), Customer.id.asc()]
    return [pw.Desc(created), Customer.id.desc()]


def list_customers(q, type_, page_number, per_page, segment_id=None):
    """A Page of customers matching the search (and segment), newest first, with manager and order totals."""
    base = customer_query(q, type_, segment_id)
    searching = bool(fold(q))
    if searching:
        # A broad prefix ("a") matches a good part of the base; counting all of
        # it on every keystroke costs more than the page (PostgreSQL reads
        # every matching row). Beyond the cap the answer is "refine the search".
        total = base.limit(SEARCH_COUNT_CAP + 1).count()
        page = Page(page_number, per_page, min(total, SEARCH_COUNT_CAP), capped=total > SEARCH_COUNT_CAP)
    else:
        page = Page(page_number, per_page, base.count())
    # Past the middle, read from the other end: the last page costs what the first does.
    reverse = not page.capped and page.offset > page.total // 2
    offset = page.total - page.last if reverse else page.offset
    manager = User.alias("manager")
    rows = list(
        base.select_extend(
            manager.name.alias("manager_name"),
            manager.email.alias("manager_email"),
            CustomerOrderStats.orders_count.alias("orders_count"),
            CustomerOrderStats.total_cents.alias("orders_total_cents"),
        )
        .join(manager, pw.JOIN.LEFT_OUTER, on=(Customer.manager == manager.id))
        .switch(Customer)
        .join(CustomerOrderStats, pw.JOIN.LEFT_OUTER, on=(CustomerOrderStats.customer == Customer.id))
        .order_by(
            *_newest_first(
                not (searching or segment_id is not None) or _walk_newest_first(page.total, offset + page.per_page),
                reverse,
            )
        )
        .limit(page.last - page.offset)
        .offset(offset)
        .objects()
    )
    page.rows = rows[::-1] if reverse else rows
    return page


# --- the card --------------------------------------------------------------------


def custom_values_for_many(entity, record_ids):
    """{record_id: [(field, value or None)]} for every field of `entity`, in one query."""
    fields = cf.fields_for(entity)
    result = {rid: [] for rid in record_ids}
    if not fields or not record_ids:
        return {rid: [(f, None) for f in fields] for rid in record_ids}
    stored = {
        (v.field_id, v.record_id): v
        for v in CustomValue.select().where(
            CustomValue.field.in_([f.id for f in fields]), CustomValue.record_id.in_(list(record_ids))
        )
    }
    for rid in record_ids:
        result[rid] = [(f, cf.typed_value(f, stored[(f.id, rid)]) if (f.id, rid) in stored else None) for f in fields]
    return result


def age_on(birth_date, today):
    """Whole years from `birth_date` to `today` (None without a birth date)."""
    if birth_date is None:
        return None
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def customer_orders(customer, offset, limit):
    """Orders of a customer, newest first, with their items (`.item_list`) and custom values (`.custom`)."""
    orders = list(
        Order.select(Order, Shop)
        .join(Shop, pw.JOIN.LEFT_OUTER)
        .where(Order.customer == customer)
        .order_by(Order.ordered_at.desc(), Order.id.desc())
        .limit(limit)
        .offset(offset)
    )
    ids = [o.id for o in orders]
    items = {}
    if ids:
        for item in (
            OrderItem.select(OrderItem, Product, ProductGroup)
            .join(Product)
            .join(ProductGroup, pw.JOIN.LEFT_OUTER)
            .where(OrderItem.order.in_(ids))
            .order_by(OrderItem.id)
        ):
            items.setdefault(item.order_id, []).append(item)
    values = custom_values_for_many("order", ids)
    for order in orders:
        order.item_list = items.get(order.id, [])
        order.custom = values[order.id]
    return orders


def customer_deals(customer, offset, limit):
    """Deals of a customer, newest first, with pipeline, stage, manager and custom values (`.custom`)."""
    manager = User.alias("manager")
    deals = list(
        Deal.select(Deal, Pipeline, Stage, manager)
        .join(Pipeline)
        .switch(Deal)
        .join(Stage)
        .switch(Deal)
        .join(manager, pw.JOIN.LEFT_OUTER, on=(Deal.manager == manager.id))
        .where(Deal.customer == customer)
        .order_by(Deal.created_at.desc(), Deal.id.desc())
        .limit(limit)
        .offset(offset)
    )
    values = custom_values_for_many("deal", [d.id for d in deals])
    for deal in deals:
        deal.custom = values[deal.id]
    return deals


def customer_messages(customer, offset, limit):
    """Message events of a customer, newest first, with their mailing."""
    return list(
        MessageEvent.select(MessageEvent, Mailing)
        .join(Mailing, pw.JOIN.LEFT_OUTER)
        .where(MessageEvent.customer == customer)
        .order_by(MessageEvent.occurred_at.desc(), MessageEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )


SECTIONS = {
    "orders": (customer_orders, lambda c: Order.select().where(Order.customer == c).count()),
    "deals": (customer_deals, lambda c: Deal.select().where(Deal.customer == c).count()),
    "messages": (customer_messages, lambda c: MessageEvent.select().where(MessageEvent.customer == c).count()),
}


def get_customer(customer_id):
    """The customer with its manager (None: no such customer)."""
    manager = User.alias("manager")
    return (
        Customer.select(Customer, manager)
        .join(manager, pw.JOIN.LEFT_OUTER, on=(Customer.manager == manager.id))
        .where(Customer.id == customer_id)
        .first()
    )


def card_sections(customer):
    """{orders|deals|messages: the first rows, the total, offset and limit} for the card."""
    sections = {}
    for name, (load, count) in SECTIONS.items():
        limit = CARD_LIMITS[name]
        rows = load(customer, 0, limit)
        # Fewer rows than asked for are all of them: most customers' sections need no count.
        total = len(rows) if len(rows) < limit else count(customer)
        sections[name] = {"rows": rows, "total": total, "offset": 0, "limit": limit}
    return sections


def customer_tags(customer_id):
    """The customer's tags, by name."""
    return list(Tag.select().join(CustomerTag).where(CustomerTag.customer == customer_id).order_by(Tag.name_ci))


def order_stats(customer_id):
    """The customer's order rollup (None: no orders yet)."""
    return CustomerOrderStats.get_or_none(CustomerOrderStats.customer == customer_id)


def base_is_empty():
    """Whether there is no customer at all (the list then says how to add some)."""
    return not Customer.select().exists()
