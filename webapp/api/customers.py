"""Customer data endpoints: the customer list and card, and upserts of
customers, orders and deals by external_id, messages and events."""
from collections import defaultdict

import peewee as pw
from flask import jsonify, request, url_for

from .. import custom_fields as cf
from ..i18n import _
from ..models import (Customer, CustomerTag, CustomValue, Deal, Order, OrderItem, Pipeline, Product, ProductGroup,
                      Segment, SegmentMember, Shop, Stage, Tag, User)
from .core import (READ_ROLES, account_tz, bp, cursor_arg, iso, iso_date, json_body, limit_arg, money, number,
                   page, require_role, require_write, text_param)
from .errors import ApiError, not_found
from .upserts import UpsertError, add_event, add_message, upsert_customer, upsert_deal, upsert_order

CUSTOMER_FIELDS = (Customer.id, Customer.external_id, Customer.type, Customer.first_name, Customer.last_name,
                   Customer.company_name, Customer.email, Customer.phone, Customer.gender, Customer.birth_date,
                   Customer.city, Customer.country, Customer.source, Customer.email_consent,
                   Customer.sms_consent, Customer.created_at, Customer.updated_at)


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
        for value in CustomValue.select().where(CustomValue.field.in_(list(by_id)),
                                                CustomValue.record_id.in_(list(ids))):
            field = by_id[value.field_id]
            result[value.record_id][field.code] = custom_json(field, value)
    return result


def customers_json(rows, *, segments=False):
    """JSON forms of customer rows (dicts of CUSTOMER_FIELDS + manager_email), in three queries."""
    ids = [row["id"] for row in rows]
    tags = defaultdict(list)
    if ids:
        for cid, name in (CustomerTag.select(CustomerTag.customer, Tag.name).join(Tag)
                          .where(CustomerTag.customer.in_(ids)).order_by(Tag.name_ci).tuples()):
            tags[cid].append(name)
    custom = _custom_for("customer", ids)
    member_of = defaultdict(list)
    if segments and ids:
        for cid, code in (SegmentMember.select(SegmentMember.customer, Segment.code).join(Segment)
                          .where(SegmentMember.customer.in_(ids)).order_by(Segment.code).tuples()):
            member_of[cid].append(code)
    items = []
    for row in rows:
        item = {
            "external_id": row["external_id"], "type": row["type"], "first_name": row["first_name"],
            "last_name": row["last_name"], "company_name": row["company_name"], "email": row["email"],
            "phone": row["phone"], "gender": row["gender"], "birth_date": iso_date(row["birth_date"]),
            "city": row["city"], "country": row["country"], "source": row["source"],
            "manager": row["manager_email"], "email_consent": bool(row["email_consent"]),
            "sms_consent": bool(row["sms_consent"]), "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]), "tags": tags[row["id"]], "custom": custom[row["id"]],
        }
        if segments:
            item["segments"] = member_of[row["id"]]
        if "member_since" in row:
            item["member_since"] = iso(row["member_since"])
        items.append(item)
    return items


def customer_rows(query):
    """Select the columns customers_json needs onto a query joined to Customer."""
    manager = User.alias("manager")
    return (query.select_extend(*CUSTOMER_FIELDS, manager.email.alias("manager_email"))
            .join(manager, pw.JOIN.LEFT_OUTER, on=(Customer.manager == manager.id)))


def customer_by_external_id(external_id):
    manager = User.alias("manager")
    row = (Customer.select(*CUSTOMER_FIELDS, manager.email.alias("manager_email"))
           .join(manager, pw.JOIN.LEFT_OUTER, on=(Customer.manager == manager.id))
           .where(Customer.external_id == external_id).dicts().first()) if text_param(external_id) else None
    if row is None:
        raise not_found(_("No customer with the external id “%(id)s”.", id=external_id))
    return customers_json([row], segments=True)[0]


def order_json(order_id):
    order = (Order.select(Order, Customer.external_id.alias("customer_external_id"), Shop.name.alias("shop_name"))
             .join(Customer).switch(Order).join(Shop, pw.JOIN.LEFT_OUTER)
             .where(Order.id == order_id).objects().get())
    items = [{"sku": item.product.sku, "product_name": item.product.name or None,
              "product_group": item.product.group.path if item.product.group_id else None,
              "quantity": item.quantity, "price": money(item.price_cents)}
             for item in (OrderItem.select(OrderItem, Product, ProductGroup).join(Product)
                          .join(ProductGroup, pw.JOIN.LEFT_OUTER).where(OrderItem.order == order_id)
                          .order_by(OrderItem.id))]
    return {"external_id": order.external_id, "customer_external_id": order.customer_external_id,
            "ordered_at": iso(order.ordered_at), "status": order.status, "shop": order.shop_name,
            "total": money(order.total_cents), "items": items, "custom": _custom_for("order", [order_id])[order_id]}


def deal_json(deal_id):
    manager = User.alias("manager")
    deal = (Deal.select(Deal, Customer.external_id.alias("customer_external_id"), Pipeline.name.alias("pipeline_name"),
                        Stage.name.alias("stage_name"), Stage.kind.alias("stage_kind"),
                        manager.email.alias("manager_email"))
            .join(Customer).switch(Deal).join(Pipeline).switch(Deal).join(Stage).switch(Deal)
            .join(manager, pw.JOIN.LEFT_OUTER, on=(Deal.manager == manager.id))
            .where(Deal.id == deal_id).objects().get())
    return {"external_id": deal.external_id, "customer_external_id": deal.customer_external_id,
            "pipeline": deal.pipeline_name, "stage": deal.stage_name, "stage_kind": deal.stage_kind,
            "amount": money(deal.amount_cents), "manager": deal.manager_email, "created_at": iso(deal.created_at),
            "closed_at": iso(deal.closed_at), "custom": _custom_for("deal", [deal_id])[deal_id]}


def _upsert_error(exc):
    message = exc.details[0]["message"] if len(exc.details) == 1 else _("The data has %(n)s problems.",
                                                                          n=len(exc.details))
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
        query = (customer_rows(SegmentMember.select(SegmentMember.since.alias("member_since"))
                               .join(Customer, on=(SegmentMember.customer == Customer.id)))
                 .where(SegmentMember.segment == segment.id))
        key = SegmentMember.customer
    else:
        query = customer_rows(Customer.select())
        key = Customer.id
    if after is not None:
        query = query.where(key > after)
    rows = list(query.order_by(key).limit(limit + 1).dicts())
    rows, next_cursor = page(rows, limit, lambda row: row["id"])
    return jsonify({"items": customers_json(rows), "next_cursor": next_cursor})


@bp.get("/customers/<path:external_id>")
def get_customer(external_id):
    require_role(*READ_ROLES)
    return jsonify(customer_by_external_id(external_id))


def _created(body, created, location):
    response = jsonify(body)
    response.status_code = 201 if created else 200
    if created:
        response.headers["Location"] = location
    return response


@bp.put("/customers/<path:external_id>")
def put_customer(external_id):
    require_write()
    data = json_body(decimals=True)
    try:
        _cid, created = upsert_customer(external_id, data, account_tz())
    except UpsertError as exc:
        raise _upsert_error(exc) from None
    return _created(customer_by_external_id(external_id), created,
                    url_for("api.get_customer", external_id=external_id))


@bp.put("/orders/<path:external_id>")
def put_order(external_id):
    require_write()
    data = json_body(decimals=True)
    try:
        order_id, created = upsert_order(external_id, data, account_tz())
    except UpsertError as exc:
        raise _upsert_error(exc) from None
    return _created(order_json(order_id), created, url_for("api.put_order", external_id=external_id))


@bp.put("/deals/<path:external_id>")
def put_deal(external_id):
    require_write()
    data = json_body(decimals=True)
    try:
        deal_id, created = upsert_deal(external_id, data, account_tz())
    except UpsertError as exc:
        raise _upsert_error(exc) from None
    return _created(deal_json(deal_id), created, url_for("api.put_deal", external_id=external_id))


@bp.post("/messages")
def post_message():
    require_write()
    data = json_body(decimals=True)
    try:
        values = add_message(data, account_tz())
    except UpsertError as exc:
        raise _upsert_error(exc) from None
    response = jsonify({"customer_external_id": values["customer_external_id"], "channel": values["channel"],
                        "kind": values["kind"], "mailing": values.get("mailing"),
                        "occurred_at": iso(values["occurred_at"])})
    response.status_code = 201
    return response


@bp.post("/events")
def post_event():
    require_write()
    data = json_body()
    try:
        occurrence = add_event(data, account_tz())
    except UpsertError as exc:
        raise _upsert_error(exc) from None
    response = jsonify({"customer_external_id": occurrence.customer_external_id, "event": occurrence.event_code,
                        "occurred_at": iso(occurrence.occurred_at), "properties": occurrence.properties})
    response.status_code = 201
    return response
