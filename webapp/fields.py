"""Custom fields admin: create, rename, delete (with confirmation)."""
from flask import Blueprint, render_template

bp = Blueprint("fields", __name__, url_prefix="/fields")


@bp.route("/")
def index():
    return render_template("fields/index.html")
