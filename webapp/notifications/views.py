"""In-app notifications (the bell, its list, toasts) and the email outbox page.

Notification rows are written by the computation (a run someone started has
finished or failed). The top bar shows the unread count; a poll every few
seconds brings new ones as toasts, once each per session. The outbox lists
the emails the app sent or, without SMTP, would have sent (admins only).
"""
import peewee as pw
from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for

from ..accounts.auth import role_required
from ..customers.views import Page
from ..models import Notification, OutboxEmail, utcnow
from ..web import wants_fragment

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
outbox_bp = Blueprint("outbox", __name__, url_prefix="/outbox")

PANEL_SIZE = 8
TOASTS_AT_ONCE = 5
SEEN_KEY = "notifications_seen"


def _latest_id(user_id):
    return (Notification.select(pw.fn.MAX(Notification.id)).where(Notification.user == user_id).scalar() or 0)


def unread_count(user_id):
    return Notification.select().where(Notification.user == user_id, Notification.read_at.is_null()).count()


def _mine():
    return Notification.select().where(Notification.user == g.user.id)


def _safe_link(link):
    return link if link and link.startswith("/") and not link.startswith("//") else None


@bp.route("/")
def index():
    """All my notifications (a page), or for the bell (htmx) the latest few."""
    if wants_fragment() and request.args.get("panel"):
        rows = list(_mine().order_by(Notification.id.desc()).limit(PANEL_SIZE))
        return render_template("notifications/_panel.html", rows=rows, unread=unread_count(g.user.id))
    query = _mine()
    page = Page(request.args.get("page", 1, type=int) or 1, current_app.config["PER_PAGE"], query.count())
    page.rows = list(query.order_by(Notification.id.desc()).limit(page.per_page).offset(page.offset))
    return render_template("notifications/index.html", page=page, unread=unread_count(g.user.id))


@bp.route("/poll")
def poll():
    """New notifications since this session last looked, as toasts, and the unread count."""
    latest = _latest_id(g.user.id)
    seen = session.get(SEEN_KEY, latest)
    toasts = []
    if latest > seen:
        toasts = list(_mine().where(Notification.id > seen, Notification.read_at.is_null())
                      .order_by(Notification.id.desc()).limit(TOASTS_AT_ONCE))[::-1]
        session[SEEN_KEY] = latest
    return render_template("notifications/_poll.html", toasts=toasts, unread=unread_count(g.user.id))


@bp.route("/<int:notification_id>/open")
def open_(notification_id):
    """Mark one as read and go where it points."""
    row = _mine().where(Notification.id == notification_id).first()
    if row is None:
        abort(404)
    if row.read_at is None:
        row.read_at = utcnow()
        row.save()
    return redirect(_safe_link(row.link) or url_for("notifications.index"))


@bp.route("/<int:notification_id>/read", methods=["POST"])
def read_one(notification_id):
    (Notification.update(read_at=utcnow())
     .where(Notification.id == notification_id, Notification.user == g.user.id, Notification.read_at.is_null())
     .execute())
    return _after_read()


@bp.route("/read", methods=["POST"])
def read_all():
    (Notification.update(read_at=utcnow())
     .where(Notification.user == g.user.id, Notification.read_at.is_null()).execute())
    return _after_read()


def _after_read():
    if wants_fragment():
        if request.form.get("from") == "page":
            return index()
        rows = list(_mine().order_by(Notification.id.desc()).limit(PANEL_SIZE))
        return render_template("notifications/_panel.html", rows=rows, unread=unread_count(g.user.id))
    return redirect(url_for("notifications.index"))


@outbox_bp.route("/")
@role_required("admin")
def outbox():
    query = OutboxEmail.select()
    page = Page(request.args.get("page", 1, type=int) or 1, current_app.config["PER_PAGE"], query.count())
    page.rows = list(query.order_by(OutboxEmail.id.desc()).limit(page.per_page).offset(page.offset))
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
            session[SEEN_KEY] = _latest_id(user.id)

    @app.template_global("unread_notifications")
    def _unread():
        user = g.get("user")
        return unread_count(user.id) if user else 0
