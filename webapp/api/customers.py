"""Customer data endpoints: the customer list and card, and upserts of
customers, orders and deals by external_id, messages and events."""

from collections import defaultdict

import peewee as pw
from flask import jsonify, request, url_for

from ..db import database
from ..fields import service as cf
from ..i18n import _, ngettext
from ..models import (
    Customer,
    CustomerTag,
    CustomValue,
    Deal,
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
from ..predictions.service import customer_scores
from .core import (
    READ_ROLES,
    account_tz,
    bp,
    cursor_arg,
    iso,
    iso_date,
    json_body,
    json_reply,
    json_response,
    limit_arg,
    money,
    number,
    page,
    require_role,
    require_write,
    text_param,
)
from .errors import ApiError, not_found
from .upserts import UpsertError, add_event, add_message, upsert_customer, upsert_deal, upsert_order

CUSTOMER_FIELDS = (
    Customer.id,
    Customer.external_id,
    Customer.type,
    Customer.first_name,
    Customer.last_name,
    Customer.company_name,
    Customer.email,
    Customer.phone,
    Customer.gender,
    Customer.birth_date,
    Customer.city,
    Customer.country,
    Customer.source,
    Customer.email_consent,
    Customer.sms_consent,
    Customer.created_at,
    Customer.updated_at,
    Customer.language,
    Customer.time_zone,
)


# --- JSON forms ---------------------------------------------------------------------


def custom_json(field, stored):
    """A stored custom value (CustomValue row) in its JSON form."""
    value = cf.typed_value(field, stored)
    if value is None:
        return None
    if field.type in ("integer", "decimal"):
        return number(value)
    if field.type == "date":
        return iso_date(value)
    return value


def _custom_for(entity, ids):
    """{record id: {code: value}} for every custom field of `entity` (None where unset)."""
    fields = cf.fields_for(entity)
    result = {rid: {f.code: None for f in fields} for rid in ids}
    if fields and ids:
        by_id = {f.id: f for f in fields}
        for value in CustomValue.select().where(
            CustomValue.field.in_(list(by_id)), CustomValue.record_id.in_(list(ids))
        ):
            field = by_id[value.field_id]
            result[value.record_id][field.code] = custom_json(field, value)
    return result


def _by_ids(column, ids):
    """A condition selecting `ids` on `column`: an id range when the ids are dense
    (a page of a keyset walk), else an IN list."""
    low, high = min(ids), max(ids)
    if high - low < 2 * len(ids):
        return column.between(low, high)
    return column.in_(ids)


def _custom_values(ids):
    """{customer id: {code: value}} for every customer custom field, from one query of raw rows."""
    fields = cf.fields_for("customer")
    if not fields:
        return None
    by_id = {f.id: f for f in fields}
    wanted = set(ids)
    result = {}
    query = CustomValue.select(
        CustomValue.record_id,
        CustomValue.field,
        CustomValue.value_str,
        CustomValue.value_num,
        CustomValue.value_date,
        CustomValue.value_bool,
    ).where(CustomValue.field.in_(list(by_id)), _by_ids(CustomValue.record_id, ids))
    for rid, fid, text, num, date, flag in database.execute_sql(*query.sql()):
        if rid not in wanted:
            continue
        kind = by_id[fid].type
        if kind in ("string", "enum"):
            value = text
        elif kind in ("integer", "decimal"):
            value = None if num is None else number(num)
        elif kind == "date":
            value = iso_date(date)
        else:
            value = None if flag is None else bool(flag)
        result.setdefault(rid, {})[by_id[fid].code] = value
    empty = {f.code: None for f in fields}
    return {rid: dict(empty, **result.get(rid, {})) for rid in ids}


def customers_json(rows, *, segments=False):
    """JSON forms of raw customer rows (customer_rows' columns), in three more queries at most.

    Built from raw driver values, without model objects: a page of a
    thousand customers is most of an integration's time.
    """
    ids = [row[0] for row in rows]
    if not ids:
        return []
    wanted = set(ids)
    tags = defaultdict(list)
    query = (
        CustomerTag.select(CustomerTag.customer, Tag.name)
        .join(Tag)
        .where(_by_ids(CustomerTag.customer, ids))
        .order_by(Tag.name_ci)
    )
    for cid, name in database.execute_sql(*query.sql()):
        if cid in wanted:
            tags[cid].append(name)
    custom = _custom_values(ids)
    member_of = defaultdict(list)
    if segments:
        for cid, code in (
            SegmentMember.select(SegmentMember.customer, Segment.code)
            .join(Segment)
            .where(SegmentMember.customer.in_(ids))
            .order_by(Segment.code)
            .tuples()
        ):
            member_of[cid].append(code)
    items = []
    for row in rows:
        (
            cid,
            external_id,
            type_,
            first_name,
            last_name,
            company_name,
            email,
            phone,
            gender,
            birth_date,
            city,
            country,
            source,
            email_consent,
            sms_consent,
            created_at,
            updated_at,
            language,
            time_zone,
            manager,
        ) = row[:20]
        item = {
            "external_id": external_id,
            "type": type_,
            "first_name": first_name,
            "last_name": last_name,
            "company_name": company_name,
            "email": email,
            "phone": phone,
            "gender": gender,
            "birth_date": iso_date(birth_date),
            "city": city,
            "country": country,
            "source": source,
            "manager": manager,
            "email_consent": bool(email_consent),
            "sms_consent": bool(sms_consent),
            "created_at": iso(created_at),
            "updated_at": iso(updated_at),
            "language": language,
            "time_zone": time_zone,
            "tags": tags.get(cid, []),
            "custom": custom[cid] if custom is not None else {},
        }
        if segments:
            item["segments"] = member_of[cid]
        if len(row) > 20:
            item["member_since"] = iso(row[20])
        items.append(item)
    return items


def customer_rows(query, *, member=False):
    """`query` (over Customer, or SegmentMember joined to Customer) selecting the
    raw columns customers_json reads (plus the entry time for members)."""
    manager = User.alias("manager")
    columns = [*CUSTOMER_FIELDS, manager.email]
    if member:
        columns.append(SegmentMember.since)
    return query.select(*columns).join(manager, pw.JOIN.LEFT_OUTER, on=(Customer.manager == manager.id))


def fetch(query):
    """The raw rows of a query (driver values, no conversion)."""
    return list(database.execute_sql(*query.sql()))


def customer_by_external_id(external_id):
    rows = (
        fetch(customer_rows(Customer.select()).where(Customer.external_id == external_id))
        if text_param(external_id)
        else []
    )
    if not rows:
        raise not_found(_("No customer with the external id “%(id)s”.", id=external_id))
    return customers_json(rows, segments=True)[0]


def order_json(order_id):
    order = (
        Order.select(Order, Customer.external_id.alias("customer_external_id"), Shop.name.alias("shop_name"))
        .join(Customer)
        .switch(Order)
        .join(Shop, pw.JOIN.LEFT_OUTER)
        .where(Order.id == order_id)
        .objects()
        .get()
    )
    items = [
        {
            "sku": item.product.sku,
            "product_name": item.product.name or None,
            "product_group": item.product.group.path if item.product.group_id else None,
            "quantity": item.quantity,
            "price": money(item.price_cents),
        }
        for item in (
            OrderItem.select(OrderItem, Product, ProductGroup)
            .join(Product)
            .join(ProductGroup, pw.JOIN.LEFT_OUTER)
            .where(OrderItem.order == order_id)
            .order_by(OrderItem.id)
        )
    ]
    return {
        "external_id": order.external_id,
        "customer_external_id": order.customer_external_id,
        "ordered_at": iso(order.ordered_at),
        "status": order.status,
        "shop": order.shop_name,
        "total": money(order.total_cents),
        "items": items,
        "custom": _custom_for("order", [order_id])[order_id],
    }


def deal_json(deal_id):
    manager = User.alias("manager")
    deal = (
        Deal.select(
            Deal,
            Customer.external_id.alias("customer_external_id"),
            Pipeline.name.alias("pipeline_name"),
            Stage.name.alias("stage_name"),
            Stage.kind.alias("stage_kind"),
            manager.email.alias("manager_email"),
        )
        .join(Customer)
        .switch(Deal)
        .join(Pipeline)
        .switch(Deal)
        .join(Stage)
        .switch(Deal)
        .join(manager, pw.JOIN.LEFT_OUTER, on=(Deal.manager == manager.id))
        .where(Deal.id == deal_id)
        .objects()
        .get()
    )
    return {
        "external_id": deal.external_id,
        "customer_external_id": deal.customer_external_id,
        "pipeline": deal.pipeline_name,
        "stage": deal.stage_name,
        "stage_kind": deal.stage_kind,
        "amount": money(deal.amount_cents),
        "manager": deal.manager_email,
        "created_at": iso(deal.created_at),
        "closed_at": iso(deal.closed_at),
        "custom": _custom_for("deal", [deal_id])[deal_id],
    }


def _upsert_error(exc):
    message = (
        exc.details[0]["message"]
        if len(exc.details) == 1
        else ngettext("The data has %(num)s problem.", "The data has %(num)s problems.", len(exc.details))
    )
    if len(exc.details) == 1:
        message = f"{exc.details[0]['field']}: {message}"
    return ApiError(exc.status, "invalid", message, exc.details)


# --- views ---------------------------------------------------------------------------------


@bp.get("/customers")
def list_customers():
    require_role(*READ_ROLES)
    limit = limit_arg()
    after = cursor_arg()
    code = request.args.get("segment")
    if code:
        segment = Segment.get_or_none(Segment.code == code) if text_param(code) else None
        if segment is None:
            raise not_found(_("No segment with the code “%(code)s”.", code=code))
        query = customer_rows(
            SegmentMember.select().join(Customer, on=(SegmentMember.customer == Customer.id)), member=True
        ).where(SegmentMember.segment == segment.id)
        key = SegmentMember.customer
    else:
        query = customer_rows(Customer.select())
        key = Customer.id
    if after is not None:
        query = query.where(key > after)
    rows = fetch(query.order_by(key).limit(limit + 1))
    rows, next_cursor = page(rows, limit, lambda row: row[0])
    return json_response({"items": customers_json(rows), "next_cursor": next_cursor})


@bp.get("/customers/<path:external_id>")
def get_customer(external_id):
    require_role(*READ_ROLES)
    body = customer_by_external_id(external_id)
    customer_id = Customer.select(Customer.id).where(Customer.external_id == external_id).scalar()
    body["predicted"] = customer_scores(customer_id)
    return jsonify(body)


def _write(write, *args, decimals=True):
    """Check the token may write, read the JSON body and hand it to `write(*args, body, tz)`;
    the data's problems (UpsertError) answer 422."""
    require_write()
    data = json_body(decimals=decimals)
    try:
        return write(*args, data, account_tz())
    except UpsertError as exc:
        raise _upsert_error(exc) from None


def _put_reply(body, created, location):
    """200 with the record, or 201 with its Location when the PUT created it."""
    return json_reply(body, 201 if created else 200, location if created else None)


@bp.put("/customers/<path:external_id>")
def put_customer(external_id):
    _cid, created = _write(upsert_customer, external_id)
    return _put_reply(
        customer_by_external_id(external_id), created, url_for("api.get_customer", external_id=external_id)
    )


@bp.put("/orders/<path:external_id>")
def put_order(external_id):
    order_id, created = _write(upsert_order, external_id)
    return _put_reply(order_json(order_id), created, url_for("api.put_order", external_id=external_id))


@bp.put("/deals/<path:external_id>")
def put_deal(external_id):
    deal_id, created = _write(upsert_deal, external_id)
    return _put_reply(deal_json(deal_id), created, url_for("api.put_deal", external_id=external_id))


@bp.post("/messages")
def post_message():
    values = _write(add_message)
    return json_reply(
        {
            "customer_external_id": values["customer_external_id"],
            "channel": values["channel"],
            "kind": values["kind"],
            "mailing": values.get("mailing"),
            "occurred_at": iso(values["occurred_at"]),
        },
        201,
    )


@bp.post("/events")
def post_event():
    occurrence = _write(add_event, decimals=False)
    return json_reply(
        {
            "customer_external_id": occurrence.customer_external_id,
            "event": occurrence.event_code,
            "occurred_at": iso(occurrence.occurred_at),
            "properties": occurrence.properties,
        },
        201,
    )
