"""Export pages: the form (columns, format, BOM) for a segment's members or
the customer list as filtered, the export page with its self-replacing
progress partial, the download, and the list of the user's exports.

A small export is written at once and downloaded from the form's answer; a
large one (over EXPORT_SYNC_ROWS customers) runs as a job, and its page shows
a progress bar and then the download link.
"""

import json
import re
from pathlib import Path

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from .. import engine, settings
from ..engine import catalogue
from ..i18n import _
from ..models import CUSTOMER_TYPES, ExportRun, Segment
from ..ops import downloads
from ..ops import storage as files
from ..web import CsrfForm, get_or_404, wants_fragment
from . import jobs
from . import service as export

bp = Blueprint("exports", __name__, url_prefix="/exports")

MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def exports_dir():
    path = Path(current_app.config.get("EXPORTS_DIR") or Path(current_app.instance_path) / "exports")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _source(args):
    """The export's source from the query string or form: a segment's members
    and/or the customer list's filters (as the list's own parameters)."""
    source, segment = {}, None
    code = (args.get("segment") or "").strip()
    if code:
        segment = get_or_404(Segment, Segment.code == code[:255])
        source["segment"] = segment.code
    text = (args.get("definition") or "").strip()
    if text:
        # the customers of a definition made elsewhere (an event day's list): checked by the engine
        try:
            source["definition"] = engine.to_json(engine.parse_definition(json.loads(text), catalogue=catalogue()))
        except (ValueError, engine.DefinitionError):
            abort(400, _("The customers to export are not described correctly; open the export from its page again."))
        source["name"] = re.sub(r"[^A-Za-z0-9_.-]+", "-", args.get("name") or "")[:80].strip("-.") or "customers"
    q = (args.get("q") or "").strip()[:200]
    type_ = args.get("type") or ""
    if q:
        source["q"] = q
    if type_ in CUSTOMER_TYPES:
        source["type"] = type_
    return source, segment


def _get_run(run_id):
    run = ExportRun.get_or_none(ExportRun.id == run_id)
    # Exports hold customer data: each user sees their own; admins see all.
    if run is None or (run.user_id != g.user.id and g.user.role != "admin"):
        abort(404)
    return run


@bp.route("/")
def index():
    query = ExportRun.select().order_by(ExportRun.id.desc()).limit(50)
    if g.user.role != "admin":
        query = query.where(ExportRun.user == g.user.id)
    return render_template("exports/index.html", runs=list(query), keep_days=settings.EXPORT_KEEP_DAYS)


@bp.route("/new", methods=["GET", "POST"])
def new():
    args = request.form if request.method == "POST" else request.args
    source, segment = _source(args)
    form = CsrfForm()
    groups = export.available_columns(segment=segment is not None)
    chosen = list(export.DEFAULT_COLUMNS)
    fmt, bom, error, headers = "csv", False, None, None
    total = export.count_rows(source)
    if request.method == "POST":
        chosen = request.form.getlist("columns")
        fmt = request.form.get("format") or "csv"
        bom = request.form.get("bom") == "1"
        headers = request.form.get("headers") or None
        if form.validate_on_submit():
            try:
                run = export.create_export(source, chosen, fmt, bom=bom, user=g.user.id, headers=headers)
            except export.ExportError as exc:
                error = str(exc)
            else:
                if total <= current_app.config.get("EXPORT_SYNC_ROWS", 5000):
                    try:
                        run = export.execute(run.id, exports_dir(), tz=current_app.config.get("TZ"))
                    except export.ExportError:
                        run = ExportRun.get_by_id(run.id)
                        return redirect(url_for("exports.run", run_id=run.id))
                    return _download(run)
                jobs.enqueue(run, exports_dir(), current_app.config.get("TZ"))
                return redirect(url_for("exports.run", run_id=run.id))
        else:
            error = _("The form expired; try again.")
    return render_template(
        "exports/new.html",
        form=form,
        source=source,
        segment=segment,
        groups=groups,
        chosen=set(chosen),
        fmt=fmt,
        bom=bom,
        headers=headers,
        error=error,
        total=total,
        sync_rows=current_app.config.get("EXPORT_SYNC_ROWS", 5000),
    ), (422 if error else 200)


def _progress_context(run):
    return {
        "run": run,
        "rows_done": jobs.progress(run),
        "worker_lost": jobs.worker_lost(run),
        "keep_days": settings.EXPORT_KEEP_DAYS,
    }


@bp.route("/<int:run_id>", methods=["GET", "POST"])
def run(run_id):
    """GET: the export page (htmx: its progress partial). POST: run a failed, lost or expired export again."""
    run = _get_run(run_id)
    if request.method == "POST":
        form = CsrfForm()
        if form.validate_on_submit() and (run.status in ("failed", "expired") or jobs.worker_lost(run)):
            ExportRun.update(status="queued", error=None, rows_done=0).where(ExportRun.id == run.id).execute()
            jobs.enqueue(ExportRun.get_by_id(run.id), exports_dir(), current_app.config.get("TZ"))
        run = ExportRun.get_by_id(run.id)
        if not wants_fragment():
            return redirect(url_for("exports.run", run_id=run.id))
    if wants_fragment():
        return render_template("exports/_progress.html", form=CsrfForm(), **_progress_context(run))
    return render_template("exports/run.html", form=CsrfForm(), **_progress_context(run))


def _download(run):
    if run.status != "done" or not run.file_path:
        abort(404)
    response = downloads.download_response(
        run.file_path,
        "exports",
        run.file_name,
        MIMETYPES[run.format],
        files.get_storage(current_app.config.get("STORAGE_URL")),
    )
    if response is None:
        abort(404)
    response.cache_control.max_age = 0
    return response


@bp.route("/<int:run_id>/download")
def download(run_id):
    return _download(_get_run(run_id))


def init_app(app):
    app.register_blueprint(bp)

    # A stable address for the segment pages to link to.
    @app.route("/segments/<code>/export", endpoint="segment_export")
    def segment_export(code):
        return redirect(url_for("exports.new", segment=code))
