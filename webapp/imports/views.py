"""Imports pages: the list of runs, upload + preview + column mapping, the run
page with its self-replacing progress partial, the report with the rejected
rows, and static segments from a list of emails or external ids.

Only admins and marketers import. The progress partial is what POST (start),
GET (status) and DELETE (cancel) on a run all return for htmx; it re-polls
itself every second while the run is queued or running.
"""

import os
import uuid
from pathlib import Path

import peewee as pw
from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from ..i18n import _
from ..i18n import lazy_gettext as _l
from ..models import ImportRun, Segment, User, utcnow
from ..ops import downloads
from ..ops import storage as files
from ..pagination import Page
from ..web import EDITORS, get_or_404, int_arg, role_required, wants_fragment
from . import jobs
from .checks import check_file, forecast_triggers
from .kinds import FILE_KINDS, KINDS
from .reader import DELIMITERS, delimiter_label, encoding_label, sniff
from .service import NEW_FIELD_TYPES, FileError, inspect, mapping_problems, rate_and_eta, target_choices

bp = Blueprint("imports", __name__, url_prefix="/imports")

ENCODINGS = ("utf-8", "utf-8-sig", "cp1251", "utf-16", "utf-16-le", "utf-16-be")


def imports_dir():
    path = Path(current_app.config.get("IMPORTS_DIR") or Path(current_app.instance_path) / "imports")
    path.mkdir(parents=True, exist_ok=True)
    return path


class UploadForm(FlaskForm):
    kind = SelectField(_l("What the file holds"))
    file = FileField(_l("CSV file"), validators=[FileRequired(message=_l("Choose a CSV file."))])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = [(k, KINDS[k].label) for k in FILE_KINDS]


class ListForm(FlaskForm):
    name = StringField(_l("Segment name"), validators=[DataRequired(message=_l("Enter a name.")), Length(max=200)])
    file = FileField(
        _l("File with one email or external id per line"), validators=[FileRequired(message=_l("Choose a file."))]
    )


class ListIntoForm(FlaskForm):
    mode = RadioField(
        _l("The customers of the list"),
        choices=[
            SelectChoice("add", _l("Add them to the members")),
            SelectChoice("replace", _l("Replace the members with them")),
        ],
        default="add",
    )
    file = FileField(
        _l("File with one email or external id per line"), validators=[FileRequired(message=_l("Choose a file."))]
    )


def _save_upload(storage):
    path = imports_dir() / f"upload-{uuid.uuid4().hex}.csv"
    storage.save(str(path))
    # The worker that imports it, or the web process showing the next step, may be on another machine.
    files.publish(path, "imports", _storage())
    return path


def _storage():
    return files.get_storage(current_app.config.get("STORAGE_URL"))


def _get_run(run_id):
    return get_or_404(ImportRun, ImportRun.id == run_id)


# --- list ------------------------------------------------------------------------


@bp.route("/")
@role_required(*EDITORS)
def index():
    per_page = current_app.config.get("PER_PAGE", 50)
    query = ImportRun.select().where(ImportRun.status != "draft")
    page = Page(int_arg("page"), per_page, query.count())
    page.rows = list(
        ImportRun.select(ImportRun, User)
        .join(User, pw.JOIN.LEFT_OUTER)
        .where(ImportRun.status != "draft")
        .order_by(ImportRun.created_at.desc(), ImportRun.id.desc())
        .offset(page.offset)
        .limit(per_page)
    )
    return render_template("imports/index.html", page=page, kinds=KINDS)


# --- upload and preview ---------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@role_required(*EDITORS)
def new():
    form = UploadForm()
    if request.method == "GET" and request.args.get("kind") in FILE_KINDS:
        form.kind.data = request.args["kind"]
    if form.validate_on_submit():
        storage = form.file.data
        path = _save_upload(storage)
        run = ImportRun.create(
            kind=form.kind.data,
            file_name=(os.path.basename(storage.filename or "") or "upload.csv")[:255],
            file_path=str(path),
            user=g.user.id,
            origin="web",
            status="draft",
        )
        return redirect(url_for("imports.preview", run_id=run.id))
    return render_template("imports/new.html", form=form), (422 if form.errors else 200)


def _read_preview(run, encoding=None, delimiter=None):
    """The file's reading (encoding, delimiter: sniffed unless valid ones are given), its
    preview (`service.inspect`) and the error that prevented it."""
    if encoding not in ENCODINGS:
        encoding = None
    if delimiter not in DELIMITERS:
        delimiter = None
    error = preview = None
    try:
        files.local_copy(run.file_path, "imports", _storage())
        if encoding is None or delimiter is None:
            sniffed = sniff(run.file_path)
            encoding, delimiter = encoding or sniffed[0], delimiter or sniffed[1]
        preview = inspect(run.file_path, run.kind, encoding, delimiter)
    except FileError as exc:
        error = exc.message
    except OSError:
        error = _("The uploaded file is no longer there; upload it again.")
    return {"preview": preview, "error": error, "encoding": encoding, "delimiter": delimiter}


def _preview_context(run, encoding=None, delimiter=None):
    return {
        "run": run,
        **_read_preview(run, encoding, delimiter),
        "kind": KINDS[run.kind],
        "choices": target_choices(run.kind),
        "field_types": NEW_FIELD_TYPES,
        "encodings": [(e, encoding_label(e)) for e in ENCODINGS],
        "delimiters": [(d, delimiter_label(d)) for d in DELIMITERS],
        "encoding_label": encoding_label,
        "delimiter_label": delimiter_label,
    }


@bp.route("/<int:run_id>/preview")
@role_required(*EDITORS)
def preview(run_id):
    run = _get_run(run_id)
    if run.status != "draft":
        return redirect(url_for("imports.run", run_id=run.id))
    context = _preview_context(run, request.args.get("encoding"), request.args.get("delimiter"))
    preview = context["preview"]
    if preview and not preview["problems"]:
        # Before the import starts: values it would reject, and the triggers it would fire.
        try:
            checked = check_file(
                run.file_path,
                run.kind,
                context["encoding"],
                context["delimiter"],
                preview["mapping"],
                jobs.account_tz(),
            )
        except FileError as exc:
            context["error"] = exc.message
        else:
            context["checked"] = checked
            context.update(_forecast_context(run, context))
    return render_template("imports/preview.html", **context)


def _forecast_context(run, context):
    """The trigger forecast's part of the preview: the triggers, and their counts once
    the forecast job has them (it writes and rolls back, so it never runs in a request)."""
    triggers = forecast_triggers(run.kind)
    if not triggers:
        return {"forecast_triggers": []}
    mapping = context["preview"]["mapping"]
    state, counts = jobs.forecast(run, context["encoding"], context["delimiter"], mapping, triggers)
    return {
        "forecast_triggers": triggers,
        "forecast_state": state,
        "forecast": [{"trigger": t, "count": counts.get(t.id, 0)} for t in triggers] if counts is not None else None,
        "forecast_url": url_for(
            "imports.forecast", run_id=run.id, encoding=context["encoding"], delimiter=context["delimiter"]
        ),
    }


@bp.route("/<int:run_id>/forecast")
@role_required(*EDITORS)
def forecast(run_id):
    """The forecast's counts: the fragment the preview polls until the job has them."""
    run = _get_run(run_id)
    if run.status != "draft":
        return ""  # nothing to count: the polling fragment goes
    # the file's reading alone (polled every second): not the rest of the preview page's context
    context = _read_preview(run, request.args.get("encoding"), request.args.get("delimiter"))
    if context["preview"] is None:
        return ""
    return render_template("imports/_forecast.html", **_forecast_context(run, context))


def _mapping_from_form(preview, form):
    header = preview["header"]
    allowed = {t for t, _label in target_choices_for(preview)}
    columns = []
    for index in range(len(header)):
        value = form.get(f"col-{index}", "")
        columns.append(value if value in allowed else None)
    new_fields = {}
    for code, spec in preview["mapping"]["new_fields"].items():
        if "custom." + code in columns:
            chosen = form.get(f"type-{code}", spec["type"])
            new_fields[code] = {"name": spec["name"], "type": chosen if chosen in NEW_FIELD_TYPES else spec["type"]}
    return {"columns": columns, "new_fields": new_fields}


def target_choices_for(preview):
    """The column targets offered for this file: spec columns, existing fields, its new fields."""
    return preview["choices"] + [("custom." + code, "custom." + code) for code in preview["mapping"]["new_fields"]]


@bp.route("/<int:run_id>/run", methods=["POST"])
@role_required(*EDITORS)
def start(run_id):
    """Start a previewed import with its mapping, or run again a failed or
    cancelled one, or one whose worker was lost (idempotent: upserts)."""
    run = _get_run(run_id)
    if run.status == "draft":
        context = _preview_context(run, request.form.get("encoding"), request.form.get("delimiter"))
        if context["error"]:
            return render_template("imports/preview.html", **context), 422
        context["preview"]["choices"] = context["choices"]
        mapping = _mapping_from_form(context["preview"], request.form)
        problems = mapping_problems(run.kind, context["preview"]["header"], mapping)
        if problems:
            context["preview"]["mapping"]["columns"] = mapping["columns"]
            context["preview"]["problems"] = problems
            return render_template("imports/preview.html", **context), 422
        run.mapping, run.encoding, run.delimiter = mapping, context["encoding"], context["delimiter"]
        if request.form.get("without_triggers"):
            run.options = {**(run.options or {}), "without_triggers": True}
        run.created_at = utcnow()
        run.save()
        jobs.enqueue(run)
    elif run.status in ("queued", "running"):
        if jobs.worker_lost(run):
            jobs.enqueue(run, force=True)
    elif run.status in ("failed", "cancelled"):
        jobs.enqueue(run)
    # else done (or a second click): nothing to start, show where it is
    run = ImportRun.get_by_id(run.id)
    if wants_fragment():
        return _progress_response(run)
    return redirect(url_for("imports.run", run_id=run.id))


# --- run page and its progress partial ------------------------------------------


def _progress_context(run):
    rate, left = rate_and_eta(run)
    user = User.get_or_none(User.id == run.user_id) if run.user_id else None
    return {
        "run": run,
        "rate": rate,
        "left": left,
        "kinds": KINDS,
        "run_user": user,
        "worker_lost": jobs.worker_lost(run),
        "encoding_label": encoding_label,
        "delimiter_label": delimiter_label,
    }


def _progress_response(run):
    return render_template("imports/_progress.html", **_progress_context(run))


@bp.route("/<int:run_id>", methods=["GET", "DELETE"])
@role_required(*EDITORS)
def run(run_id):
    run = _get_run(run_id)
    if run.status == "draft":
        return redirect(url_for("imports.preview", run_id=run.id))
    if request.method == "DELETE":
        if run.status in ("queued", "running"):
            run = jobs.request_cancel(run)
        return _progress_response(run)
    if wants_fragment():
        return _progress_response(run)
    return render_template("imports/run.html", **_progress_context(run))


@bp.route("/<int:run_id>/cancel", methods=["POST"])
@role_required(*EDITORS)
def cancel(run_id):
    """Cancel without JavaScript (the page's button uses DELETE through htmx)."""
    run = _get_run(run_id)
    if run.status in ("queued", "running"):
        jobs.request_cancel(run)
    return redirect(url_for("imports.run", run_id=run.id))


@bp.route("/<int:run_id>/rejected.csv")
@role_required(*EDITORS)
def rejected(run_id):
    run = _get_run(run_id)
    if not run.rejected_path:
        abort(404)
    stem = os.path.splitext(run.file_name)[0] or "import"
    response = downloads.download_response(run.rejected_path, "imports", f"{stem}-rejected.csv", "text/csv", _storage())
    if response is None:
        abort(404)
    response.cache_control.max_age = 0
    return response


# --- static segment from a list ----------------------------------------------------


def _list_run(storage, name, segment=None, mode=None):
    """Save an uploaded list and queue its import; (run, None) or (None, a message about the file)."""
    path = _save_upload(storage)
    try:
        encoding, delimiter = sniff(path)
    except FileError as exc:
        os.unlink(path)
        return None, exc.message
    options = {"segment_name": name} if segment is None else {"mode": mode}
    run = ImportRun.create(
        kind="segment",
        file_name=(os.path.basename(storage.filename or "") or "list.csv")[:255],
        file_path=str(path),
        user=g.user.id,
        origin="web",
        status="queued",
        encoding=encoding,
        delimiter=delimiter,
        options=options,
        segment=segment.id if segment else None,
    )
    jobs.enqueue(run)
    return run, None


@bp.route("/segment", methods=["GET", "POST"])
@role_required(*EDITORS)
def segment():
    form = ListForm()
    error = None
    if form.validate_on_submit():
        run, error = _list_run(form.file.data, form.name.data.strip())
        if run:
            return redirect(url_for("imports.run", run_id=run.id))
    status = 422 if (form.errors or error) else 200
    return render_template("imports/segment.html", form=form, error=error), status


@bp.route("/segment/<code>", methods=["GET", "POST"])
@role_required(*EDITORS)
def segment_into(code):
    """Upload a list into an existing static segment: add to its members or replace them."""
    target = get_or_404(Segment, Segment.code == code)
    if target.type != "static":
        abort(404)
    form = ListIntoForm()
    error = None
    if form.validate_on_submit():
        run, error = _list_run(form.file.data, None, target, form.mode.data)
        if run:
            return redirect(url_for("imports.run", run_id=run.id))
    status = 422 if (form.errors or error) else 200
    return render_template("imports/segment_into.html", form=form, error=error, segment=target), status


def init_app(app):
    app.register_blueprint(bp)
