"""Home page: what needs attention today — open tasks, work under way in the
background, and today's entries and exits per segment."""

from flask import Blueprint, g, render_template

from .activation import tasks
from .i18n import _, pgettext
from .models import EventDefinition, EventType, ExportRun, ImportRun, Mailing, RfmRun, Segment, SegmentRun
from .segments.listing import changes_today
from .web import EDITORS

bp = Blueprint("views", __name__)

HOME_TASKS = 5
UNDER_WAY = ("queued", "running")


def running_work(user, limit=10):
    """[(what, name, endpoint, url arguments, status)] of the background work queued or running."""
    work = []
    runs = (
        SegmentRun.select(SegmentRun, Segment)
        .join(Segment)
        .where(SegmentRun.status.in_(UNDER_WAY))
        .order_by(SegmentRun.id)
        .limit(limit)
    )
    work += [
        (_("Segment computation"), r.segment.name, "segments.page", {"code": r.segment.code}, r.status) for r in runs
    ]
    if user.role not in EDITORS:  # mailings and imports are the editors' pages
        return work + _exports_and_backfills(user, limit)
    sending = Mailing.select().where(Mailing.status.in_(("queued", "sending"))).order_by(Mailing.id).limit(limit)
    work += [(_("Mailing"), m.name, "mailings.show", {"mailing_id": m.id}, m.status) for m in sending]
    imports = ImportRun.select().where(ImportRun.status.in_(UNDER_WAY)).order_by(ImportRun.id).limit(limit)
    work += [(_("Import"), r.file_name, "imports.run", {"run_id": r.id}, r.status) for r in imports]
    work += _exports_and_backfills(user, limit)
    if RfmRun.select().where(RfmRun.status.in_(UNDER_WAY)).exists():
        work.append((_("RFM computation"), "RFM", "rfm.index", {}, "running"))
    return work[:limit]


def _exports_and_backfills(user, limit):
    work = []
    exports = ExportRun.select().where(ExportRun.status.in_(UNDER_WAY))
    if user.role != "admin":  # exports hold customer data: one's own only
        exports = exports.where(ExportRun.user == user.id)
    work += [
        (pgettext("title", "Export"), r.file_name, "exports.run", {"run_id": r.id}, r.status)
        for r in exports.limit(limit)
    ]
    backfills = (
        EventDefinition.select(EventDefinition, EventType)
        .join(EventType)
        .where(EventDefinition.status.in_(UNDER_WAY))
        .limit(limit)
    )
    work += [
        (
            _("Past orders of an event"),
            d.event_type.name or d.event_type.code,
            "events.page",
            {"type_id": d.event_type_id},
            d.status,
        )
        for d in backfills
    ]
    return work


@bp.route("/")
def home():
    scope = tasks.default_scope(g.user)
    home_tasks, tasks_total = tasks.task_list(g.user, scope, "open", 0, HOME_TASKS)
    return render_template(
        "home.html",
        home_tasks=home_tasks,
        tasks_total=tasks_total,
        task_scope=scope,
        work=running_work(g.user),
        changes=changes_today(),
    )
