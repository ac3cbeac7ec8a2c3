"""Values the builder's pickers offer: distinct values from the database.

Each kind returns at most `limit` options for a typed prefix `q`, as
`Option(value, label, hint, depth)`: `value` is what the definition stores
(a city as written, a SKU, a group path, a user's email, a segment code),
`label` what people read. String columns are searched through their folded
`_ci` index, so "моск" finds "Москва" and a prefix seeks instead of scanning.
"""

from dataclasses import dataclass

import peewee as pw

from ..customers.service import prefix_condition
from ..engine import catalogue as load_catalogue
from ..formats import label
from ..i18n import _
from ..models import (
    Customer,
    CustomValue,
    EventType,
    Mailing,
    Order,
    Pipeline,
    Product,
    ProductGroup,
    Segment,
    Shop,
    Stage,
    Tag,
    User,
)
from ..text import fold
from .system import is_rfm_score

LIMIT = 20


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    hint: str = ""
    depth: int = 0


def _folded_distinct(model, column_ci, column, q, limit, where=None):
    """Distinct values of a string column with a folded twin, first spelling of each."""
    text = fold(q)
    query = model.select(column_ci).where(column_ci.is_null(False))
    if where is not None:
        query = query.where(where)
    if text:
        query = query.where(prefix_condition(column_ci, text))
    folded = [v for (v,) in query.distinct().order_by(column_ci).limit(limit).tuples()]
    options = []
    for value in folded:
        spelled = model.select(column).where(column_ci == value)
        if where is not None:
            spelled = spelled.where(where)
        spelling = spelled.limit(1).scalar()
        options.append(Option(spelling.strip() if spelling else value, spelling.strip() if spelling else value))
    return options


def _customer_column(name):
    def provider(q, limit, args):
        return _folded_distinct(Customer, getattr(Customer, name + "_ci"), getattr(Customer, name), q, limit)

    return provider


def _status(q, limit, args):
    return _folded_distinct(Order, Order.status_ci, Order.status, q, limit)


def _named(model, column="name"):
    def provider(q, limit, args):
        col = getattr(model, column)
        col_ci = getattr(model, column + "_ci")
        query = model.select(col)
        text = fold(q)
        if text:
            query = query.where(prefix_condition(col_ci, text))
        return [Option(v, v) for (v,) in query.order_by(col_ci).limit(limit).tuples()]

    return provider


def _contains(text, *values):
    return any(text in (fold(v) or "") for v in values)


def _products(q, limit, args):
    text = fold(q)
    query = (
        Product.select(Product.sku, Product.name, ProductGroup.path)
        .join(ProductGroup, pw.JOIN.LEFT_OUTER)
        .order_by(Product.sku_ci)
    )
    if text:
        by_sku = query.where(prefix_condition(Product.sku_ci, text)).limit(limit)
        rows = list(by_sku.tuples())
        if len(rows) < limit:
            # names have no folded twin: a product catalogue is small, compare in Python
            seen = {r[0] for r in rows}
            for row in query.tuples().iterator():
                if row[0] not in seen and _contains(text, row[1]):
                    rows.append(row)
                    if len(rows) >= limit:
                        break
    else:
        rows = list(query.limit(limit).tuples())
    return [Option(sku, f"{sku} — {name}" if name else sku, path or "") for sku, name, path in rows]


def _product_groups(q, limit, args):
    """The group tree, depth-first by path; with `q`, the groups whose name or path contains it."""
    text = fold(q)
    groups = list(ProductGroup.select(ProductGroup.path, ProductGroup.name).order_by(ProductGroup.path_ci).tuples())
    options = []
    for path, name in groups:
        if text and not _contains(text, name, path):
            continue
        depth = path.count("/")
        if text:
            options.append(Option(path, path))
        else:
            options.append(Option(path, name, path if depth else "", depth))
        if len(options) >= limit:
            break
    return options


def _pipelines(q, limit, args):
    return _named(Pipeline)(q, limit, args)


def _stages(q, limit, args):
    """Stage names (a stage filter matches the name in any pipeline), each with its pipelines.

    `pipeline` args (the block's chosen pipelines) narrow the list to their stages.
    """
    text = fold(q)
    query = (
        Stage.select(Stage.name, Stage.name_ci, Pipeline.name, Stage.kind)
        .join(Pipeline)
        .order_by(Pipeline.position, Pipeline.name_ci, Stage.position, Stage.id)
    )
    pipelines = [fold(p) for p in args.getlist("pipeline") if fold(p)]
    if pipelines:
        query = query.where(Pipeline.name_ci.in_(pipelines))
    if text:
        query = query.where(prefix_condition(Stage.name_ci, text))
    by_name = {}
    for name, name_ci, pipeline, _kind in query.tuples():
        entry = by_name.setdefault(name_ci, [name, []])
        if pipeline not in entry[1]:
            entry[1].append(pipeline)
    options = [Option(name, name, ", ".join(pipes)) for name, pipes in by_name.values()]
    return options[:limit]


def _users(q, limit, args):
    text = fold(q)
    query = User.select(User.email, User.name).order_by(User.email_ci)
    rows = []
    for email, name in query.tuples().iterator():
        if not text or _contains(text, email, name):
            rows.append(Option(email, f"{name} <{email}>" if name else email))
            if len(rows) >= limit:
                break
    return rows


def _mailings(q, limit, args):
    text = fold(q)
    query = Mailing.select(Mailing.name, Mailing.channel).order_by(Mailing.created_at.desc(), Mailing.id.desc())
    rows = []
    for name, channel in query.tuples().iterator():
        if not text or _contains(text, name):
            rows.append(Option(name, name, channel.upper() if channel else ""))
            if len(rows) >= limit:
                break
    return rows


def _events(q, limit, args):
    text = fold(q)
    rows = []
    for code, name in EventType.select(EventType.code, EventType.name).order_by(EventType.code_ci).tuples():
        if not text or _contains(text, code, name):
            rows.append(Option(code, name or code, code if name else ""))
            if len(rows) >= limit:
                break
    return rows


def _segments(q, limit, args):
    """Segments by name; the fifteen RFM score segments after all others (the builder's
    "RFM scores" filter is their usual way in), so they never push the rest out."""
    text = fold(q)
    exclude = args.get("exclude") or None
    rows = []
    query = Segment.select(Segment.code, Segment.name).order_by(is_rfm_score(), Segment.name)
    for code, name in query.tuples().iterator():
        if code == exclude:
            continue
        if not text or _contains(text, code, name):
            rows.append(Option(code, name, code))
            if len(rows) >= limit:
                break
    return rows


def _enum(q, limit, args):
    info = load_catalogue().field(args.get("entity", ""), args.get("field", ""))
    if info is None or info.options is None:
        return []
    text = fold(q)
    return [
        Option(option, label(option)) for option in info.options if not text or _contains(text, option, label(option))
    ][:limit]


def _custom(q, limit, args):
    try:
        field_id = int(args.get("field_id", ""))
    except ValueError:
        return []
    return _folded_distinct(
        CustomValue, CustomValue.value_ci, CustomValue.value_str, q, limit, where=(CustomValue.field == field_id)
    )


PROVIDERS = {
    "first_name": _customer_column("first_name"),
    "last_name": _customer_column("last_name"),
    "company_name": _customer_column("company_name"),
    "email": _customer_column("email"),
    "phone": _customer_column("phone"),
    "city": _customer_column("city"),
    "country": _customer_column("country"),
    "source": _customer_column("source"),
    "status": _status,
    "shop": _named(Shop),
    "tag": _named(Tag),
    "product": _products,
    "product_group": _product_groups,
    "pipeline": _pipelines,
    "stage": _stages,
    "user": _users,
    "mailing": _mailings,
    "event": _events,
    "segment": _segments,
    "enum": _enum,
    "custom": _custom,
}


def options(kind, q="", args=None, limit=LIMIT):
    """Options of a picker kind (KeyError for an unknown kind)."""
    from werkzeug.datastructures import MultiDict

    provider = PROVIDERS[kind]
    return provider((q or "").strip()[:200], limit, args if args is not None else MultiDict())


def labels_for(kind, values):
    """{value: label} for chosen values whose label differs from the value (segments, products, users, events)."""
    values = [v for v in values if v]
    if not values:
        return {}
    folded = {fold(v): v for v in values}
    result = {}
    if kind == "segment":
        for code, name in Segment.select(Segment.code, Segment.name).where(Segment.code.in_(values)).tuples():
            result[code] = name
    elif kind == "product":
        for sku_ci, _sku, name in (
            Product.select(Product.sku_ci, Product.sku, Product.name).where(Product.sku_ci.in_(list(folded))).tuples()
        ):
            if name:
                result[folded[sku_ci]] = f"{folded[sku_ci]} — {name}"
    elif kind == "user":
        for email_ci, name in User.select(User.email_ci, User.name).where(User.email_ci.in_(list(folded))).tuples():
            if name:
                result[folded[email_ci]] = f"{name} <{folded[email_ci]}>"
    elif kind == "event":
        for code_ci, name in (
            EventType.select(EventType.code_ci, EventType.name).where(EventType.code_ci.in_(list(folded))).tuples()
        ):
            if name:
                result[folded[code_ci]] = name
    elif kind == "enum":
        result = {v: label(v) for v in values if label(v) != v}
    return result


def empty_message(free_text):
    if free_text:
        return _("Nothing found. Press Enter to use what you typed.")
    return _("Nothing matches.")
