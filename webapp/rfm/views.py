"""RFM pages: the R×F heat map with the computation's progress, the settings
form, "Recompute now", and the customers of a cell.

Everyone logged in reads; admins and marketers change settings and compute.
"""

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from redis.exceptions import RedisError

from ..formats import money
from ..i18n import _
from ..pagination import Page
from ..segments.system import rfm_code
from ..text import fold
from ..web import EDITORS, CsrfForm, can_edit, int_arg, role_required, wants_fragment
from . import jobs
from . import service as rfm

bp = Blueprint("rfm", __name__, url_prefix="/rfm")


def _results_context(message=None, level="info"):
    run = rfm.last_run()
    done = rfm.last_done_run()
    lost = jobs.worker_lost(run) if run else False
    return {
        "run": run,
        "done": done,
        "lost": lost,
        "active": bool(run and run.status in ("queued", "running") and not lost),
        "progress": jobs.progress(run) if run else None,
        "grid": rfm.grid() if done else None,
        "form": CsrfForm(),
        "can_edit": can_edit(),
        "message": message,
        "level": level,
        "class_label": rfm.class_label,
    }


def _settings_form_data(row):
    """The settings row as the form shows it (money in currency units)."""
    cuts = {key: getattr(row, f"{key}_cuts") or rfm.DEFAULT_CUTS[key] for key in ("r", "f", "m")}
    return {
        "method": row.method,
        "monetary": row.monetary,
        "r_cuts": [str(v) for v in cuts["r"]],
        "f_cuts": [str(v) for v in cuts["f"]],
        "m_cuts": [money(v).replace(",", "") for v in cuts["m"]],
        "excluded_statuses": set(row.excluded_statuses or ()),
        "as_of": row.as_of.isoformat() if row.as_of else "",
    }


def _page(data=None, errors=None, status=200):
    settings_row = rfm.get_settings()
    statuses = rfm.order_statuses()
    data = data or _settings_form_data(settings_row)
    # statuses excluded in the settings stay listed even when no order has them now
    known = {folded for folded, _shown in statuses}
    statuses += [(s, s) for s in sorted(data["excluded_statuses"]) if s not in known]
    segments = rfm.segments_by_code()
    return render_template(
        "rfm/index.html",
        settings=settings_row,
        data=data,
        errors=errors or {},
        statuses=statuses,
        classes=rfm.class_sizes(segments),
        scores=rfm.score_sizes(segments),
        today=rfm.today(current_app.config.get("TZ")),
        **_results_context(),
    ), status


@bp.route("/")
def index():
    """The RFM page; for htmx, its results fragment (polled while computing)."""
    if wants_fragment() and request.htmx.target == "rfm-results":
        return render_template("rfm/_results.html", **_results_context())
    return _page()


@bp.route("/compute", methods=["POST"])
@role_required(*EDITORS)
def compute():
    form = CsrfForm()
    message, level = None, "info"
    if not form.validate_on_submit():
        message, level = _("The form expired; reload the page and try again."), "error"
    else:
        try:
            jobs.request_run(user=g.user.id, tz=current_app.config.get("TZ"))
        except (RedisError, RuntimeError):
            message, level = (
                _(
                    "The job queue cannot be reached right now, so the computation did not start. "
                    "Try again when the worker is back."
                ),
                "error",
            )
    if wants_fragment():
        return render_template("rfm/_results.html", **_results_context(message, level))
    if message:
        flash(message)
    return redirect(url_for("rfm.index"))


@bp.route("/settings", methods=["POST"])
@role_required(*EDITORS)
def save_settings():
    form = CsrfForm()
    data = {
        "method": request.form.get("method", ""),
        "monetary": request.form.get("monetary", ""),
        "r_cuts": request.form.getlist("r_cuts"),
        "f_cuts": request.form.getlist("f_cuts"),
        "m_cuts": request.form.getlist("m_cuts"),
        "excluded_statuses": request.form.getlist("excluded_statuses"),
        "as_of": request.form.get("as_of", ""),
    }
    if not form.validate_on_submit():
        return _page(
            dict(data, excluded_statuses=set(data["excluded_statuses"])),
            {"form": [_("The form expired; reload the page and try again.")]},
            400,
        )
    try:
        rfm.save_settings(data, user=g.user.id, tz=current_app.config.get("TZ"))
    except rfm.RfmSettingsError as exc:
        return _page(dict(data, excluded_statuses={fold(s) for s in data["excluded_statuses"]}), exc.errors, 422)
    flash(_("RFM settings saved. They apply from the next computation: press “Recompute now” to apply them."))
    return redirect(url_for("rfm.index") + "#settings")


@bp.route("/cells/<int:r>/<int:f>")
def cell(r, f):
    """The customers of one R×F cell, a page at a time, with their values."""
    if r not in rfm.SCORES or f not in rfm.SCORES:
        abort(404)
    page = Page(int_arg("page"), current_app.config["PER_PAGE"], rfm.cell_count(r, f))
    page.rows = rfm.cell_customers(r, f, page.offset, page.per_page)
    return render_template(
        "rfm/cell.html",
        r=r,
        f=f,
        page=page,
        done=rfm.last_done_run(),
        klass=rfm.class_of(r, f),
        class_label=rfm.class_label,
        rfm_code=rfm_code,
    )


def init_app(app):
    app.register_blueprint(bp)
