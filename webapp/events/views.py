"""Event pages: the list of event types, an event's page (occurrences per day
as a bar chart, the customers behind a day), and create/edit/delete of event
definitions on orders with the backfill's self-replacing progress partial.

Views are thin: forms are read here, the work is webapp.events. Everyone
logged in reads; admins and marketers create, edit and delete definitions.
The condition editor is the segment builder's, in its one-Orders-block mode
(its structural buttons post to segments.builder_fragment with single=order).
"""

import datetime
import json

import peewee as pw
from flask import Blueprint, abort, current_app, g, make_response, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from wtforms import BooleanField, StringField
from wtforms.validators import Length

from .. import charts, formats, settings
from ..engine import DefinitionError, catalogue
from ..engine.orders import matching_orders, parse_condition
from ..i18n import _, ngettext
from ..i18n import lazy_gettext as _l
from ..i18n import lazy_pgettext as _lp
from ..models import EventDefinition, EventType, utcnow
from ..pagination import Page
from ..segments import builder as b
from ..web import EDITORS, CsrfForm, can_edit, get_or_404, int_arg, role_required, wants_fragment
from . import jobs
from .service import (
    RANGES,
    EventError,
    create_definition,
    day_customers,
    day_definition,
    delete_definition,
    describe,
    event_types,
    per_day,
    start_deleting,
    suggest_code,
    type_stats,
    update_definition,
)

bp = Blueprint("events", __name__, url_prefix="/events")

DAY_PER_PAGE = 50


def tz():
    return settings.tz()


class DefinitionForm(FlaskForm):
    """Name, code and active; the condition comes from the builder's inputs."""

    name = StringField(_l("Name"), validators=[Length(max=200)])
    code = StringField(_l("Code"), validators=[Length(max=63)])
    active = BooleanField(_lp("event", "Active"), default=True)


# --- list and event page ----------------------------------------------------------


@bp.route("/")
def index():
    per_page = current_app.config["PER_PAGE"]
    types, total = event_types(int_arg("page"), per_page)
    page = Page(int_arg("page"), per_page, total)
    if wants_fragment() and request.htmx.target == "event-rows":
        # the figures, asked for by the rows once the page shows
        days = {t.id: [n for _day, n in per_day(t.id, 30, tz())] for t in types}
        return render_template(
            "events/_rows.html",
            types=types,
            page=page,
            stats=type_stats([t.id for t in types], tz()),
            sparks={t_id: (charts.sparkline(counts), counts) for t_id, counts in days.items()},
        )
    return render_template("events/index.html", types=types, stats=None, page=page, can_edit=can_edit())


def _event_type(type_id):
    event_type = get_or_404(EventType, EventType.id == type_id)
    event_type.definition = EventDefinition.get_or_none(EventDefinition.event_type == event_type.id)
    return event_type


def _day_arg():
    """The chosen day (?day=YYYY-MM-DD), None when absent; 400 when malformed."""
    text = request.args.get("day")
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        abort(400, _("“%(day)s” is not a date (use YYYY-MM-DD).", day=text[:20]))


@bp.route("/<int:type_id>")
def page(type_id):
    event_type = _event_type(type_id)
    days = _days_arg()
    day = _day_arg()
    context = {"event_type": event_type, "days": days, "ranges": RANGES, "day": day, "can_edit": can_edit()}
    if day is not None:
        rows, total = day_customers(event_type.id, day, tz(), int_arg("page"), DAY_PER_PAGE)
        context.update(
            day_rows=rows,
            day_page=Page(int_arg("page"), DAY_PER_PAGE, total),
            day_json=json.dumps(day_definition(event_type.code, day), ensure_ascii=False),
            day_name=f"{event_type.code}-{day.isoformat()}",
        )
        if wants_fragment() and request.htmx.target == "day-customers":
            return render_template("events/_day.html", **context)
    if event_type.definition is not None:
        context.update(
            _progress_context(event_type.definition), condition_lines=describe(event_type.definition.condition)
        )
    return render_template("events/page.html", **context)


def _days_arg():
    days = request.args.get("days", type=int)
    return days if days in RANGES else RANGES[0]


@bp.route("/<int:type_id>/chart")
def chart(type_id):
    """The chart of occurrences per day and the event's figures (loaded into its page)."""
    event_type = _event_type(type_id)
    days = _days_arg()
    counts = per_day(event_type.id, days, tz())
    bars = [
        charts.Bar(
            formats.day(d),
            n,
            href=url_for("events.page", type_id=event_type.id, days=days, day=d.isoformat()) + "#day-customers",
            title=ngettext(
                "%(day)s: %(num)s occurrence",
                "%(day)s: %(num)s occurrences",
                n,
                day=formats.date(d),
                num=formats.thousands(n),
            ),
        )
        for d, n in counts
    ]
    return render_template(
        "events/_chart.html",
        event_type=event_type,
        days=days,
        chart=charts.bar_chart(bars, integer=True),
        total_in_range=sum(n for _d, n in counts),
        stats=type_stats([event_type.id], tz()).get(event_type.id),
    )


# --- definitions ------------------------------------------------------------------


def _progress_context(definition):
    share, done, total = jobs.live_progress(definition)
    return {
        "definition": definition,
        "share": share,
        "orders_done": done,
        "orders_total": total,
        "worker_lost": jobs.worker_lost(definition),
        "confirm": CsrfForm(),
    }


def _enqueue(definition):
    """Queue the backfill; a queue server that is down leaves it queued (the
    page then offers to run it again) rather than failing the save."""
    try:
        jobs.enqueue(definition)
        return None
    except (RedisError, RuntimeError, OSError):
        return _("The worker queue is not reachable: the past orders will be recorded once you run it again.")


def _editor(form, definition, condition, errors=None, status=200, other_errors=()):
    cat = catalogue()
    context = b.builder_context(b.condition_definition(condition), cat, errors=errors, single="order")
    return render_template(
        "events/edit.html",
        form=form,
        definition=definition,
        field_errors=getattr(form, "service_errors", {}),
        other_errors=list(other_errors),
        **context,
    ), status


def _condition_from_request():
    return b.condition_from_definition(b.definition_from_form(request.form, catalogue()))


@bp.route("/definitions/new", methods=["GET", "POST"])
@role_required(*EDITORS)
def new():
    form = DefinitionForm()
    if request.method == "GET":
        return _editor(form, None, {"match": "all", "filters": []})
    condition = _condition_from_request()
    if not form.validate_on_submit():
        return _editor(
            form, None, condition, status=400, other_errors=[_("The form expired. Check your changes and save again.")]
        )
    code = (form.code.data or "").strip() or suggest_code(form.name.data)
    try:
        definition = create_definition(form.name.data, code, condition, active=form.active.data, user=g.user.id)
    except EventError as exc:
        form.service_errors = exc.errors
        form.code.data = code
        return _editor(form, None, condition, errors=exc.condition_errors, status=422)
    problem = _enqueue(definition) if definition.active else None
    return redirect(url_for("events.page", type_id=definition.event_type_id, queue_problem=1 if problem else None))


def _definition(definition_id):
    """The definition to edit or delete: 404 when there is none, or when it is
    being deleted already."""
    definition = EventDefinition.get_or_none(EventDefinition.id == definition_id)
    if definition is None or definition.status == "deleting":
        abort(404)
    return definition


@bp.route("/definitions/<int:definition_id>/edit", methods=["GET", "POST"])
@role_required(*EDITORS)
def edit(definition_id):
    definition = _definition(definition_id)
    form = DefinitionForm(obj=definition) if request.method == "GET" else DefinitionForm()
    if request.method == "GET":
        form.code.data = definition.event_type.code
        return _editor(form, definition, definition.condition)
    condition = _condition_from_request()
    if not form.validate_on_submit():
        return _editor(
            form,
            definition,
            condition,
            status=400,
            other_errors=[_("The form expired. Check your changes and save again.")],
        )
    try:
        rerun = update_definition(definition, form.name.data, condition, active=form.active.data)
    except EventError as exc:
        form.service_errors = exc.errors
        form.code.data = definition.event_type.code
        return _editor(form, definition, condition, errors=exc.condition_errors, status=422)
    if rerun:
        _enqueue(EventDefinition.get_by_id(definition.id))
    return redirect(url_for("events.page", type_id=definition.event_type_id))


@bp.route("/definitions/<int:definition_id>/delete", methods=["GET", "POST"])
@role_required(*EDITORS)
def delete(definition_id):
    definition = _definition(definition_id)
    form = CsrfForm()
    if request.method == "POST" and form.validate_on_submit():
        # the occurrences go in the worker, range by range, with a progress bar
        start_deleting(definition)
        try:
            jobs.enqueue_delete(definition)
        except (RedisError, RuntimeError, OSError):
            delete_definition(definition)  # no queue server: here and now
            return redirect(url_for("events.index"))
        return redirect(url_for("events.page", type_id=definition.event_type_id))
    from .service import derived_count

    return render_template(
        "events/delete.html", definition=definition, form=form, occurrences=derived_count(definition.event_type_id)
    )


@bp.route("/definitions/<int:definition_id>/progress", methods=["GET", "POST"])
def progress(definition_id):
    """GET: the backfill's progress partial (it re-polls itself while running).
    POST (editors): run a failed or lost backfill again."""
    definition = EventDefinition.get_or_none(EventDefinition.id == definition_id)
    if definition is None:  # deleted meanwhile (the delete job is done)
        return render_template("events/_progress.html", definition=None)
    if request.method == "POST":
        if not can_edit():
            abort(403)
        if CsrfForm().validate_on_submit():
            lost = jobs.worker_lost(definition)
            if definition.status == "deleting" and lost:
                jobs.enqueue_delete(definition)
            elif definition.active and (lost or definition.status == "failed"):
                # the same revision: the backfill resumes where it stopped
                EventDefinition.update(status="queued", error=None, updated_at=utcnow()).where(
                    EventDefinition.id == definition.id
                ).execute()
                _enqueue(EventDefinition.get_by_id(definition.id))
        definition = EventDefinition.get_by_id(definition.id)
    return render_template("events/_progress.html", can_edit=can_edit(), **_progress_context(definition))


@bp.route("/definitions/preview", methods=["POST"])
@role_required(*EDITORS)
def preview():
    """How many orders (and customers) the condition being edited matches now,
    with the messages placed at their filters out of band (as the segment preview)."""
    definition = b.definition_from_form(request.form, catalogue())
    context = {"slots": b.slot_keys(definition), "rev": "", "orders": None, "customers": None}
    try:
        block = parse_condition(b.condition_from_definition(definition))
        context["errors"] = {}
    except DefinitionError as exc:
        block, context["errors"] = None, b.error_map(exc.errors)
    if block is not None:
        query, o = matching_orders(block, tz=tz())
        context["orders"], context["customers"] = (
            query.select(pw.fn.COUNT(pw.SQL("*")), pw.fn.COUNT(o.customer.distinct())).tuples().get()
        )
    response = make_response(render_template("events/_preview.html", **context))
    # builder.js drops an answer computed for a layout that has been re-rendered since
    response.headers["X-Builder-Rev"] = request.form.get("rev", "")
    return response


def init_app(app):
    app.register_blueprint(bp)
