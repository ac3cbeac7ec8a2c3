"""Home page: the customer base at a glance."""

from flask import Blueprint, render_template

from .models import Customer, CustomField, Deal, Order, Segment

bp = Blueprint("views", __name__)


@bp.route("/")
def home():
    counts = {
        "customers": Customer.select().count(),
        "orders": Order.select().count(),
        "deals": Deal.select().count(),
        "segments": Segment.select().count(),
        "custom_fields": CustomField.select().count(),
    }
    return render_template("home.html", counts=counts)
