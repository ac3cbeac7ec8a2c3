"""The audit log page (admins): filter by user, action, object and date; paginated."""

import datetime

from flask import Blueprint, current_app, render_template, request

from ..settings import tz
from ..web import int_arg, role_required, wants_fragment
from . import service

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _date(name):
    try:
        return datetime.date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


@bp.route("/")
@role_required("admin")
def index():
    filters = service.Filters(
        user_id=int_arg("user", default=None),
        action=request.args.get("action", ""),
        object_type=request.args.get("type", ""),
        obj=request.args.get("object", ""),
        date_from=_date("from"),
        date_to=_date("to"),
    )
    page = service.search(filters, int_arg("page"), current_app.config["PER_PAGE"], tz())
    template = "audit/_rows.html" if wants_fragment() else "audit/index.html"
    return render_template(
        template,
        page=page,
        filters=filters,
        actions=service.action_labels(),
        types=service.object_type_labels(),
        actors=service.actors(),
    )


def init_app(app):
    app.register_blueprint(bp)
