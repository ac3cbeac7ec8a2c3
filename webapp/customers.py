"""Customers: the list with active search, and the customer card."""
from flask import Blueprint, render_template

bp = Blueprint("customers", __name__, url_prefix="/customers")


@bp.route("/")
def index():
    return render_template("customers/index.html")


@bp.route("/<int:customer_id>")
def card(customer_id):
    return render_template("customers/card.html")
