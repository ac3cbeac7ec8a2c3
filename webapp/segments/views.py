"""Segment pages: the list, the builder (create/edit), the live preview, the
segment page with its history and runs, delete with confirmation.

Views are thin: the builder's form is read by `builder.definition_from_form`,
checked by the engine, saved by `webapp.segments`. Everyone logged in reads;
admins and marketers create, edit, delete and recompute.
"""

import datetime
import json

import peewee as pw
from flask import Blueprint, abort, current_app, flash, g, make_response, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import Length, NumberRange, Optional

from .. import charts, engine, settings
from ..customers.service import customer_query as customer_search
from ..engine import catalogue
from ..i18n import _, ngettext
from ..i18n import lazy_gettext as _l
from ..i18n import lazy_pgettext as _lp
from ..models import Customer, Segment, SegmentMember, SegmentRun, User
from ..pagination import Page
from ..web import EDITORS, CsrfForm, can_edit, get_or_404, int_arg, role_required, wants_fragment
from . import builder as b
from . import figures, listing, manual, overlap, past, previews, versions, why
from .options import PROVIDERS, empty_message, options
from .runs import RunSkipped, request_run
from .service import (
    SegmentError,
    check_code,
    create_segment,
    delete_segment,
    dependants,
    free_code,
    membership_definition,
    restore_version,
    update_segment,
)
from .system import rfm_score_of

bp = Blueprint("segments", __name__, url_prefix="/segments")

PREVIEW_MEMBERS = 20
RUNS_SHOWN = 20
VERSIONS_SHOWN = 10
PAST_MEMBERS = 20
WHY_MATCHES = 5


def _segment(code):
    return get_or_404(Segment, Segment.code == code)


# --- list ----------------------------------------------------------------------------


@bp.route("/")
def index():
    filters = listing.ListFilters.from_args(request.args)
    page = listing.list_segments(filters, int_arg("page"), current_app.config["PER_PAGE"])
    context = {
        "page": page,
        "filters": filters,
        "can_edit": can_edit(),
        "none_at_all": page.total == 0 and not filters.any and not Segment.select().exists(),
        "hidden_scores": listing.hidden_scores(filters),
    }
    if wants_fragment() and request.htmx.target == "results":
        return render_template("segments/_results.html", **context)
    return render_template("segments/index.html", **context)


@bp.route("/<code>/status")
def status(code):
    segment = _segment(code)
    run = listing.latest_runs([segment.id]).get(segment.id)
    return render_template("segments/_status.html", segment=segment, run=run)


# --- the settings form ------------------------------------------------------------------


class SegmentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=200)])
    code = StringField(_l("Code"), validators=[Length(max=63)])
    type = StringField(_l("Type"), default="dynamic")  # static | dynamic, checked by the service
    active = BooleanField(_lp("segment", "Active"), default=True)
    in_analytics = BooleanField(_l("Available in analytics"))
    interval_minutes = IntegerField(
        _l("Recompute every (minutes)"), validators=[Optional(), NumberRange(min=1, max=7 * 24 * 60)]
    )


def code_messages(code, segment=None):
    code = (code or "").strip()
    if segment is not None and code == segment.code:
        return []
    messages = check_code(code, exclude_id=segment.id if segment else None)
    if not messages and segment is not None and code != segment.code:
        users = dependants(segment)
        if users:
            messages = [
                _(
                    "Used by: %(names)s. The code cannot change while other segments refer to it.",
                    names=", ".join(s.name for s in users),
                )
            ]
    return messages


@bp.route("/code", methods=["POST"])
@role_required(*EDITORS)
def code_row():
    """The code input with its live check; suggests a code from the name until the code is typed in."""
    segment = (
        Segment.get_or_none(Segment.id == request.form.get("segment_id", type=int))
        if request.form.get("segment_id")
        else None
    )
    form = SegmentForm()
    touched = request.form.get("code_touched") == "1"
    if not touched and segment is None:
        form.code.data = free_code(form.name.data)
    code = (form.code.data or "").strip()
    messages = code_messages(code, segment) if code else ([_("Enter a code.")] if touched else [])
    return render_template(
        "segments/_code.html",
        form=form,
        segment=segment,
        touched=touched,
        code_errors=messages,
        code_ok=bool(code) and not messages,
    )


# --- builder and preview ------------------------------------------------------------------


def _check(definition, cat, code):
    try:
        parsed = engine.parse_definition(definition, segment_code=code or None, catalogue=cat)
    except engine.DefinitionError as exc:
        return None, exc.errors
    return parsed, []


def _pasted(text, cat, code):
    """(definition, problems, where) of a pasted definition: where = the character offset
    of a JSON syntax error (None otherwise), so the page puts the caret there."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        message = _(
            "The text is not valid JSON: line %(line)s, column %(column)s: %(error)s",
            line=exc.lineno,
            column=exc.colno,
            error=exc.msg,
        )
        return None, [message], exc.pos
    parsed, errors = _check(data, cat, code)
    return parsed, [e["message"] for e in errors], None


@bp.route("/builder", methods=["POST"])
@role_required(*EDITORS)
def builder_fragment():
    """Structural changes (add/remove a block, filter or condition, change a field or
    operator, load pasted JSON): the whole builder, re-rendered with new positions."""
    cat = catalogue()
    action = request.form.get("action", "")
    code = request.form.get("segment_code") or None
    focus = None
    if action == "load_json":
        parsed, problems, where = _pasted(request.form.get("definition_json", ""), cat, code)
        if problems:
            response = make_response(render_template("segments/_json_problems.html", problems=problems, where=where))
            response.headers["HX-Retarget"] = "#json-problems"
            response.headers["HX-Reswap"] = "innerHTML"
            return response
        definition = engine.to_json(parsed)
    elif action == "rfm_scores":
        definition = b.definition_from_form(request.form, cat)
        focus = b.add_rfm_scores(definition, b.rfm_scores_chosen(request.form))
    else:
        definition = b.definition_from_form(request.form, cat)
        if action.startswith("shortcut:"):
            action = f"{action}:{request.form.get('shortcut_days', '').strip()}"
        focus = b.apply_action(definition, action, cat)
    # single="order": the one-block editor of an event definition's condition
    single = "order" if request.form.get("single") == "order" else None
    if single:
        errors = b.condition_errors(b.condition_from_definition(definition), cat)
    else:
        _parsed, errors = _check(definition, cat, code)
    problem = _("Tick at least one score.") if action == "rfm_scores" and focus is None else None
    context = b.builder_context(definition, cat, errors=errors, focus=focus, single=single, rfm_problem=problem)
    response = make_response(render_template("segments/_builder.html", **context))
    response.headers["HX-Trigger-After-Settle"] = "builder-changed"
    return response


@bp.route("/preview", methods=["POST"])
@role_required(*EDITORS)
def preview():
    """The live count (and, with members=1, the first matching customers), with the
    engine's messages placed at their blocks and filters (out-of-band)."""
    cat = catalogue()
    definition = b.definition_from_form(request.form, cat)
    parsed, errors = _check(definition, cat, request.form.get("segment_code"))
    count = members = None
    tz = settings.tz()
    # "as of" a chosen local date and time: the engine evaluates at any `at`
    at = past.parse_moment(request.form.get("as_of"), tz)
    if parsed is not None:
        try:
            with previews.live(g.user.id):
                count = engine.count(parsed, at=at, tz=tz)
                if request.form.get("members") == "1":
                    members = list(engine.members_query(parsed, at=at, tz=tz).limit(PREVIEW_MEMBERS))
        except previews.Superseded:
            # a newer preview of this user replaced it (the browser dropped this request)
            return "", 204
    response = make_response(
        render_template(
            "segments/_preview.html",
            count=count,
            members=members,
            errors=b.error_map(errors),
            error_total=len(errors),
            slots=b.slot_keys(definition),
            rev="",
            json_text=b.pretty_json(engine.to_json(parsed) if parsed is not None else definition),
            valid=parsed is not None,
            show_members=request.form.get("members") == "1",
            as_of=at,
        )
    )
    # builder.js drops an answer computed for a layout that has been re-rendered since
    response.headers["X-Builder-Rev"] = request.form.get("rev", "")
    return response


@bp.route("/preview/cancel", methods=["POST"])
@role_required(*EDITORS)
def cancel_preview():
    """The builder page is left while its preview runs: stop it in the database."""
    previews.cancel(g.user.id)
    return "", 204


@bp.route("/words", methods=["POST"])
@role_required(*EDITORS)
def words():
    """The range of a relative date filter in words, as the days are typed."""
    return b.relative_words_in_form(request.form, request.form.get("prefix", ""))


@bp.route("/options/<kind>")
@role_required(*EDITORS)
def value_options(kind):
    if kind not in PROVIDERS:
        abort(404)
    q = request.args.get("q", "")
    found = options(kind, q, request.args)
    free = request.args.get("free") == "1"
    return render_template(
        "segments/_options.html", options=found, q=q, kind=kind, free=free, empty=empty_message(free)
    )


# --- create, edit, delete ----------------------------------------------------------------


def _settings_data(form, definition, segment=None):
    return {
        "name": form.name.data,
        "code": (form.code.data or "").strip(),
        "type": form.type.data,
        "active": form.active.data,
        "in_analytics": form.in_analytics.data,
        "interval_minutes": form.interval_minutes.data,
        "definition": definition,
    }


def _form_errors(form, exc):
    field_errors = {}
    for key, messages in exc.errors.items():
        field = getattr(form, key, None) if key in ("name", "code", "type", "active", "in_analytics") else None
        if field is not None:
            field.errors = list(field.errors) + list(messages)
        else:
            field_errors.setdefault(key, []).extend(messages)
    return field_errors


def _queued_message(segment):
    if segment.source != "definition":
        return _("Segment “%(name)s” saved.", name=segment.name)
    if not segment.active:
        return _(
            "Segment “%(name)s” saved. It is inactive, so it is not computed until you activate it.", name=segment.name
        )
    return _("Segment “%(name)s” saved and queued for computation.", name=segment.name)


def _edit_page(form, definition, segment=None, errors=None, other_errors=None, status=200, **extra):
    cat = catalogue()
    if errors is None and segment is not None and segment.source == "definition":
        _parsed, errors = _check(definition, cat, segment.code)
    if not b.renderable(definition):
        # never silently rewritten: shown as JSON with the engine's messages
        other_errors = dict(other_errors or {})
        other_errors.setdefault("definition", []).extend(e["message"] for e in errors or [])
        definition = b.empty_definition()
    context = b.builder_context(definition, cat, errors=errors, segment_code=segment.code if segment else None)
    return render_template(
        "segments/edit.html",
        form=form,
        segment=segment,
        other_errors=other_errors or {},
        default_interval=settings.SEGMENT_INTERVAL_MINUTES,
        rfm_score=rfm_score_of(segment.code) if segment else None,
        **context,
        **extra,
    ), status


def _save(form, segment=None):
    cat = catalogue()
    definition = (
        b.definition_from_form(request.form, cat)
        if (segment is None or segment.source == "definition")
        else segment.definition
    )
    code = (form.code.data or "").strip()
    extra = code_messages(code, segment) if code else []
    valid = form.validate()  # (resets the fields' errors)
    if extra:
        form.code.errors = list(form.code.errors) + extra
    if not valid or extra:
        # the service is not asked: say what it would say about the other fields too
        if not (form.name.data or "").strip():
            form.name.errors = list(form.name.errors) + [_("Enter a name.")]
        _parsed, errors = _check(definition, cat, code)
        return _edit_page(form, definition, segment, errors=errors, status=422)
    pasted = (request.form.get("definition_json") or "").strip()
    if pasted:
        # a pasted definition that does not load: saving waits until it is fixed (or cleared)
        _parsed, problems, where = _pasted(pasted, cat, code)
        if problems:
            return _edit_page(form, definition, segment, json_problems=problems, json_where=where, status=422)
    # no blocks means every customer: said with the count, saved only once confirmed (a segment
    # already stored without blocks was confirmed when it was saved so)
    becomes_all = segment is None or (segment.source == "definition" and (segment.definition or {}).get("blocks"))
    if becomes_all and not definition.get("blocks") and request.form.get("confirm_all") != "1":
        return _edit_page(form, definition, segment, confirm_all=Customer.select().count())
    data = _settings_data(form, definition, segment)
    try:
        if segment is None:
            segment = create_segment(data, user=g.user)
        else:
            segment = update_segment(segment, data, user=g.user)
        flash(_queued_message(segment))
    except SegmentError as exc:
        other = _form_errors(form, exc)
        other.pop("definition", None)  # shown at the blocks and filters
        return _edit_page(
            form,
            definition,
            segment if segment and segment.id else None,
            errors=exc.details or [],
            other_errors=other,
            status=409 if exc.status == 409 else 422,
        )
    except (RedisError, RuntimeError):
        # saved, and its run is recorded as queued: the scheduler re-queues it
        segment = Segment.get(Segment.code == data["code"])
        flash(
            _(
                "Segment “%(name)s” saved. The computation queue cannot be reached right now; the segment "
                "is computed as soon as the worker is back.",
                name=segment.name,
            )
        )
    return redirect(url_for("segments.page", code=segment.code))


@bp.route("/new", methods=["GET", "POST"])
@role_required(*EDITORS)
def new():
    form = SegmentForm()
    if request.method == "POST":
        return _save(form)
    # ?definition=JSON (&name=): the builder opened on a definition made elsewhere, e.g. an event
    # day's "Make a segment"; one that does not parse is shown with the engine's messages
    definition, errors = b.empty_definition(), None
    text = request.args.get("definition")
    if text:
        try:
            definition = json.loads(text)
        except ValueError:
            definition = {"blocks": "?"}
        _parsed, errors = _check(definition, catalogue(), None)
        form.name.data = (request.args.get("name") or "")[:200]
        form.code.data = free_code(form.name.data)
    return _edit_page(form, definition, errors=errors)


@bp.route("/<code>/edit", methods=["GET", "POST"])
@role_required(*EDITORS)
def edit(code):
    segment = _segment(code)
    if request.method == "POST":
        form = SegmentForm()
        if segment.system:
            form.code.data = segment.code
        return _save(form, segment)
    form = SegmentForm(obj=segment)
    return _edit_page(form, segment.definition, segment)


@bp.route("/<code>/delete", methods=["GET", "POST"])
@role_required(*EDITORS)
def delete(code):
    segment = _segment(code)
    form = CsrfForm()
    users = dependants(segment)
    error = None
    if form.validate_on_submit():
        try:
            delete_segment(segment)
        except SegmentError as exc:
            error = str(exc)
        else:
            flash(_("Segment “%(name)s” deleted.", name=segment.name))
            return redirect(url_for("segments.index"))
    members = SegmentMember.select().where(SegmentMember.segment == segment.id).count()
    return render_template(
        "segments/delete.html", segment=segment, form=form, users=users, error=error, members=members
    ), (409 if error else 200)


# --- the segment page ----------------------------------------------------------------------


def _runs_context(segment, message=None, level="info"):
    runs = list(
        SegmentRun.select(SegmentRun, User)
        .join(User, pw.JOIN.LEFT_OUTER, on=(SegmentRun.requested_by == User.id))
        .where(SegmentRun.segment == segment.id)
        .order_by(SegmentRun.id.desc())
        .limit(RUNS_SHOWN)
    )
    total = SegmentRun.select().where(SegmentRun.segment == segment.id).count()
    active = any(r.status in ("queued", "running") for r in runs)
    return {
        "segment": Segment.get_by_id(segment.id),
        "runs": runs,
        # the members beside the figures: both refreshed together, never one stale beside the other
        "members": listing.members_sample(segment.id),
        "runs_total": total,
        "active": active,
        "message": message,
        "level": level,
        "can_edit": can_edit(),
    }


@bp.route("/<code>")
def page(code):
    segment = _segment(code)
    creator = User.get_or_none(User.id == segment.created_by_id) if segment.created_by_id else None
    chart = charts.size_chart(listing.chart_points(segment.id), tz=listing.zone())
    cat = catalogue()
    summary = b.summary(segment.definition, cat)
    return render_template(
        "segments/page.html",
        creator=creator,
        chart=chart,
        summary=summary,
        dependants=dependants(segment),
        versions_page=_versions_page(segment, 1),
        figures=figures.figures_of_segment(segment),
        rfm_score=rfm_score_of(segment.code),
        **_runs_context(segment),
    )


@bp.route("/<code>/runs")
def runs(code):
    segment = _segment(code)
    return render_template("segments/_runs.html", oob_kpis=True, **_runs_context(segment))


@bp.route("/<code>/recompute", methods=["POST"])
@role_required(*EDITORS)
def recompute(code):
    segment = _segment(code)
    message, level = None, "info"
    try:
        request_run(segment, trigger="user", user=g.user)
        message = _("Recomputation queued. You get a notification when it is done.")
    except RunSkipped as exc:
        message, level = str(exc), "error"
    except (RedisError, RuntimeError):
        message, level = (
            _("The computation queue cannot be reached right now; the run is started as soon as the worker is back."),
            "error",
        )
    if wants_fragment():
        return render_template("segments/_runs.html", oob_kpis=True, **_runs_context(segment, message, level))
    flash(message)
    return redirect(url_for("segments.page", code=segment.code))


@bp.route("/<code>/changes")
def changes(code):
    segment = _segment(code)
    days = listing.changes_by_day(segment.id, int_arg("days_page"))
    return render_template("segments/_changes.html", segment=segment, days=days)


@bp.route("/<code>/changes/<day>")
def changes_on(code, day):
    segment = _segment(code)
    try:
        when = datetime.date.fromisoformat(day)
    except ValueError:
        abort(404)
    rows, total = listing.changes_on(segment.id, when)
    return render_template("segments/_day.html", segment=segment, rows=rows, total=total, day=when)


def _history_body(customer_id, offset=0, message=None, level="info"):
    history = listing.customer_history(customer_id, offset=offset)
    template = "segments/_history_rows.html" if offset else "segments/_customer_history_body.html"
    static = []
    if not offset and can_edit():
        inside = {s.id for s in history["member_of"]}
        static = [
            s
            for s in Segment.select(Segment.id, Segment.code, Segment.name)
            .where(Segment.type == "static", Segment.system == False)  # noqa: E712
            .order_by(pw.fn.LOWER(Segment.name))
            if s.id not in inside
        ]
    return render_template(
        template,
        customer_id=customer_id,
        static_choices=static,
        can_edit=can_edit(),
        message=message,
        level=level,
        **history,
    )


@bp.route("/customers/<int:customer_id>/history")
def customer_history(customer_id):
    return _history_body(customer_id, int_arg("offset", 0, minimum=0))


# --- static segments shaped by hand ---------------------------------------------------------


def _manual_answer(segment, customer_id, message, level="info"):
    """The customer card's segments (htmx from the card), else back to the segment page."""
    if wants_fragment() and request.htmx.target == "customer-segments":
        return _history_body(customer_id, message=message, level=level)
    flash(message)
    return redirect(url_for("segments.page", code=segment.code))


@bp.route("/<code>/members/add", methods=["POST"])
@role_required(*EDITORS)
def add_member(code):
    """Add one customer, named by email or external id, to a static segment (its member list)."""
    segment = _segment(code)
    found = manual.find_customer(request.form.get("customer"))
    if found is None:
        flash(_("No single customer has the email or external id “%(text)s”.", text=request.form.get("customer", "")))
        return redirect(url_for("segments.page", code=segment.code))
    return _add(segment, found.id)


@bp.route("/customers/<int:customer_id>/add", methods=["POST"])
@role_required(*EDITORS)
def add_to_static(customer_id):
    """Add this customer to the static segment picked on their card."""
    return _add(_segment(request.form.get("code", "")), customer_id)


def _add(segment, customer_id):
    try:
        added = manual.add_customer(segment, customer_id, user=g.user)
    except SegmentError as exc:
        return _manual_answer(segment, customer_id, str(exc), "error")
    message = _("Added to “%(name)s”.", name=segment.name) if added else _("Already in “%(name)s”.", name=segment.name)
    return _manual_answer(segment, customer_id, message)


@bp.route("/<code>/members/<int:customer_id>/remove", methods=["POST"])
@role_required(*EDITORS)
def remove_member(code, customer_id):
    segment = _segment(code)
    try:
        removed = manual.remove_customer(segment, customer_id, user=g.user)
    except SegmentError as exc:
        return _manual_answer(segment, customer_id, str(exc), "error")
    message = (
        _("Removed from “%(name)s”.", name=segment.name) if removed else _("Not in “%(name)s”.", name=segment.name)
    )
    return _manual_answer(segment, customer_id, message)


@bp.route("/<code>/snapshot", methods=["POST"])
@role_required(*EDITORS)
def snapshot(code):
    """A new static segment with this segment's current members."""
    segment = _segment(code)
    try:
        copy = manual.snapshot(segment, request.form.get("name"), user=g.user)
    except SegmentError as exc:
        flash(str(exc))
        return redirect(url_for("segments.page", code=segment.code))
    flash(
        ngettext(
            "Snapshot saved as the static segment “%(name)s” with %(num)s customer.",
            "Snapshot saved as the static segment “%(name)s” with %(num)s customers.",
            copy.size,
            name=copy.name,
        )
    )
    return redirect(url_for("segments.page", code=copy.code))


# --- overlap -------------------------------------------------------------------------------


@bp.route("/overlap")
def overlap_page():
    """Pick 2 to 8 segments: their pairwise intersections and, for 2 or 3, a Venn picture."""
    codes = request.args.getlist("s")
    result, error = None, None
    if codes:
        try:
            result = overlap.overlap(codes)
        except overlap.OverlapError as exc:
            error = str(exc)
    context = {
        "result": result,
        "error": error,
        "picked": codes,
        "choices": Segment.select(Segment.code, Segment.name, Segment.size).order_by(pw.fn.LOWER(Segment.name)),
        "venn": charts.venn([s.name for s in result.segments], result.regions) if result else None,
        "difference_url": _difference_url,
        "can_edit": can_edit(),
    }
    if wants_fragment() and request.htmx.target == "overlap-result":
        return render_template("segments/_overlap.html", **context), (422 if error else 200)
    return render_template("segments/overlap.html", **context), (422 if error else 200)


def _difference_url(a, b_):
    return url_for(
        "segments.new",
        definition=json.dumps(membership_definition(a.code, b_.code), ensure_ascii=False),
        name=_("%(a)s, not in %(b)s", a=a.name, b=b_.name),
    )


# --- versions, explanations, the past ---------------------------------------------------


def _versions_page(segment, number):
    rows = versions.history(segment.id)
    page = Page(number, VERSIONS_SHOWN, len(rows))
    page.rows = rows[page.offset : page.offset + VERSIONS_SHOWN]
    return page


@bp.route("/<code>/versions")
def versions_list(code):
    segment = _segment(code)
    return render_template(
        "segments/_versions.html", segment=segment, page=_versions_page(segment, int_arg("page")), can_edit=can_edit()
    )


@bp.route("/<code>/versions/<int:number>/restore", methods=["POST"])
@role_required(*EDITORS)
def restore(code, number):
    segment = _segment(code)
    try:
        restore_version(segment, number, user=g.user)
        flash(_("Version %(number)s restored as the current definition.", number=number))
    except SegmentError as exc:
        if exc.status == 404:
            abort(404)
        flash(_("Version %(number)s cannot be restored: %(reason)s", number=number, reason=str(exc)), "error")
    except (RedisError, RuntimeError):
        flash(
            _(
                "Restored. The computation queue cannot be reached right now; the segment is computed as soon as the worker is back."
            )
        )
    return redirect(url_for("segments.page", code=segment.code))


def _why_response(definition, customer, at=None, **extra):
    try:
        result = why.explain_customer(definition, customer.id, at=at)
    except engine.DefinitionError as exc:
        return render_template("segments/_why_problem.html", problems=exc.messages)
    if result is None:
        return render_template("segments/_why_problem.html", problems=[_("This definition cannot be explained.")])
    return render_template("segments/_why.html", why=result, customer=customer, **extra)


@bp.route("/<code>/why/<int:customer_id>")
def why_member(code, customer_id):
    """Why a customer is (or is not) in a segment now, by its stored definition."""
    segment = _segment(code)
    customer = get_or_404(Customer, Customer.id == customer_id)
    return _why_response(segment.definition, customer, segment=segment)


@bp.route("/exits/<int:change_id>/why")
def why_exit(change_id):
    """Which block stopped holding when a customer exited a segment."""
    change, result = why.explain_exit(change_id)
    if change is None:
        abort(404)
    if result is None:
        return render_template("segments/_why_problem.html", problems=[_("This exit cannot be explained.")])
    return render_template("segments/_why.html", why=result, customer=change.customer, exit=change)


@bp.route("/why", methods=["POST"])
@role_required(*EDITORS)
def why_builder():
    """In the builder: why a previewed customer is in ("why is this one in?"),
    or, for a customer found by search, why not."""
    cat = catalogue()
    definition = b.definition_from_form(request.form, cat)
    at = past.parse_moment(request.form.get("as_of"), settings.tz())
    try:
        customer_id = int(request.form.get("why_customer", ""))
    except ValueError:
        customer_id = None
    if customer_id is None:
        q = (request.form.get("why_q") or "").strip()
        matches = list(customer_search(q).limit(WHY_MATCHES + 1)) if q else []
        if len(matches) != 1:
            return render_template(
                "segments/_why_matches.html", q=q, matches=matches[:WHY_MATCHES], more=len(matches) > WHY_MATCHES
            )
        customer = matches[0]
    else:
        customer = get_or_404(Customer, Customer.id == customer_id)
    return _why_response(definition, customer, at=at)


@bp.route("/<code>/past")
def past_members(code):
    """The segment's size and members at a chosen past date and time, from its entry/exit log."""
    segment = _segment(code)
    text = request.args.get("on", "")
    at = past.parse_moment(text, settings.tz())
    context = {"segment": segment, "on": text, "at": at}
    if text and at is None:
        context["error"] = _("Enter a date as YYYY-MM-DD (and a time as HH:MM), e.g. 2026-03-01.")
    elif at is not None:
        page = Page(int_arg("page"), PAST_MEMBERS, past.size_on(segment.id, at))
        page.rows = past.members_on(segment.id, at, limit=PAST_MEMBERS, offset=page.offset)
        context["page"] = page
    return render_template("segments/_past.html", **context)


def init_app(app):
    app.register_blueprint(bp)
