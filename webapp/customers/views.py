"""Customers: the list with active search, and the customer card.

Views are thin: the queries are `webapp.customers.service`.
"""

import datetime

from flask import Blueprint, abort, current_app, render_template, request

from ..fields import service as cf
from ..i18n import _
from ..models import CUSTOMER_TYPES, Segment
from ..pagination import Page
from ..web import get_or_404, int_arg, wants_fragment
from . import service

bp = Blueprint("customers", __name__, url_prefix="/customers")


def _customer(customer_id):
    customer = service.get_customer(customer_id)
    if customer is None:
        abort(404)
    return customer


@bp.route("/")
def index():
    q = (request.args.get("q") or "").replace("\x00", "").strip()[:200]  # PostgreSQL text has no NUL
    type_ = request.args.get("type") or ""
    if type_ not in CUSTOMER_TYPES:
        type_ = ""
    code = (request.args.get("segment") or "").strip()
    segment = get_or_404(Segment, Segment.code == code) if code else None
    page = service.list_customers(
        q, type_, int_arg("page"), current_app.config["PER_PAGE"], segment_id=segment.id if segment else None
    )
    context = {
        "page": page,
        "q": q,
        "type": type_,
        "segment": segment,
        "base_empty": page.total == 0 and not q and not type_ and service.base_is_empty(),
    }
    if wants_fragment():
        return render_template("customers/_results.html", **context)
    return render_template("customers/index.html", **context)


@bp.route("/<int:customer_id>")
def card(customer_id):
    customer = _customer(customer_id)
    return render_template(
        "customers/card.html",
        customer=customer,
        stats=service.order_stats(customer.id),
        tags=service.customer_tags(customer.id),
        sections=service.card_sections(customer),
        custom=cf.values_for("customer", customer.id),
        age=service.age_on(customer.birth_date, datetime.date.today()),
    )


@bp.route("/<int:customer_id>/<any(orders, deals, messages):section>")
def section(customer_id, section):
    """All orders, deals or messages of a customer: a page of its own, or (htmx) the next rows."""
    customer = _customer(customer_id)
    load, count = service.SECTIONS[section]
    total = count(customer)
    if wants_fragment():
        limit = service.CARD_LIMITS[section]
        offset = min(int_arg("offset", 0, minimum=0), total)
        return render_template(
            f"customers/_{section}.html",
            customer=customer,
            section=section,
            rows=load(customer, offset, limit),
            offset=offset,
            limit=limit,
            total=total,
            more_only=True,
        )
    page = Page(int_arg("page"), current_app.config["PER_PAGE"], total)
    page.rows = load(customer, page.offset, page.per_page)
    title = {"orders": _("Orders"), "deals": _("Deals"), "messages": _("Message history")}[section]
    return render_template(
        "customers/section.html",
        customer=customer,
        section=section,
        page=page,
        rows=page.rows,
        total=total,
        title=title,
    )


def init_app(app):
    app.register_blueprint(bp)
