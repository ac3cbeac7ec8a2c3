"""In-app notifications (the bell, its list, toasts) and the email outbox page.

The top bar shows the unread count; a poll every few seconds brings new ones
as toasts, once each per session. The outbox lists the emails the app sent
or, without SMTP, would have sent (admins only).
"""

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for

from ..pagination import page_of
from ..web import int_arg, role_required, safe_path, wants_fragment
from . import service

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
outbox_bp = Blueprint("outbox", __name__, url_prefix="/outbox")

PANEL_SIZE = 8
TOASTS_AT_ONCE = 5
SEEN_KEY = "notifications_seen"


def _panel():
    return render_template(
        "notifications/_panel.html", rows=service.newest(g.user.id, PANEL_SIZE), unread=service.unread_count(g.user.id)
    )


@bp.route("/")
def index():
    """All my notifications (a page), or for the bell (htmx) the latest few."""
    if wants_fragment() and request.args.get("panel"):
        return _panel()
    page = page_of(service.mine(g.user.id), int_arg("page"), current_app.config["PER_PAGE"])
    return render_template("notifications/index.html", page=page, unread=service.unread_count(g.user.id))


@bp.route("/poll")
def poll():
    """New notifications since this session last looked, as toasts, and the unread count."""
    latest = service.latest_id(g.user.id)
    seen = session.get(SEEN_KEY, latest)
    toasts = []
    if latest > seen:
        toasts = service.unread_since(g.user.id, seen, TOASTS_AT_ONCE)
        session[SEEN_KEY] = latest
    return render_template("notifications/_poll.html", toasts=toasts, unread=service.unread_count(g.user.id))


@bp.route("/<int:notification_id>/open")
def open_(notification_id):
    """Mark one as read and go where it points."""
    row = service.open_notification(g.user.id, notification_id)
    if row is None:
        abort(404)
    return redirect(safe_path(row.link) or url_for("notifications.index"))


@bp.route("/<int:notification_id>/read", methods=["POST"])
def read_one(notification_id):
    service.mark_read(g.user.id, notification_id)
    return _after_read()


@bp.route("/read", methods=["POST"])
def read_all():
    service.mark_read(g.user.id)
    return _after_read()


def _after_read():
    if wants_fragment():
        if request.form.get("from") == "page":
            return index()
        return _panel()
    return redirect(url_for("notifications.index"))


@outbox_bp.route("/")
@role_required("admin")
def outbox():
    page = page_of(service.outbox(), int_arg("page"), current_app.config["PER_PAGE"])
    return render_template("outbox/index.html", page=page, smtp=bool(current_app.config.get("SMTP_URL")))


def init_app(app):
    app.register_blueprint(bp)
    app.register_blueprint(outbox_bp)

    @app.before_request
    def _start_quiet():
        # A new session starts quiet: notifications from before it wait in the bell;
        # everything after its first request comes as a toast.
        user = g.get("user")
        if user is not None and SEEN_KEY not in session:
            session[SEEN_KEY] = service.latest_id(user.id)

    @app.template_global("unread_notifications")
    def _unread():
        user = g.get("user")
        return service.unread_count(user.id) if user else 0
