"""The predictions page: the fitted models (parameters, log-likelihood, date
range, the tracking chart and the repeat-order histogram), "Recompute now"
with its progress, and the message when the data are too few for a fit.

Everyone logged in reads; admins and marketers recompute.
"""

from flask import Blueprint, current_app, flash, g, redirect, render_template, url_for
from flask_wtf import FlaskForm
from redis.exceptions import RedisError

from .. import charts, formats, settings
from ..i18n import _, ngettext
from ..web import role_required, wants_fragment
from . import jobs, service

bp = Blueprint("predictions", __name__, url_prefix="/predictions")

EDITORS = ("admin", "marketer")


class CsrfForm(FlaskForm):
    """CSRF only."""


def _number(value):
    return formats.fixed(value) if isinstance(value, float) else formats.thousands(value)


def _figures(fit):
    """(tracking LineChart, histogram BarChart) of a done fit, or (None, None)."""
    if fit is None or fit.status != "done":
        return None, None
    tracking, histogram = service.charts_of(fit)
    line = (
        charts.line_chart(
            [
                (_("Actual repeat orders"), [(d, a) for d, a, _e in tracking]),
                (_("Model"), [(d, round(e, 1)) for d, _a, e in tracking]),
            ],
            value_label=_number,
            integer=False,
            max_x_ticks=12,
        )
        if tracking
        else None
    )
    bars = []
    for n, actual, expected in histogram:
        label = f"{n}+" if n == service.HISTOGRAM_MAX else str(n)
        bars.append(
            charts.Bar(
                label,
                actual,
                index=0,
                title=ngettext(
                    "%(n)s repeat orders: %(num)s customer",
                    "%(n)s repeat orders: %(num)s customers",
                    actual,
                    n=label,
                    num=formats.thousands(actual),
                ),
            )
        )
        bars.append(
            charts.Bar(
                "",
                round(expected, 1),
                index=1,
                title=_("%(n)s repeat orders: %(num)s expected by the model", n=label, num=f"{expected:,.0f}"),
            )
        )
    bar = charts.bar_chart(bars, value_label=_number, integer=False) if bars else None
    return line, bar


def _context(message=None, level="info"):
    fit = service.active_fit() or service.last_fit()
    last = service.last_fit()
    done = service.last_done_fit()
    lost = jobs.worker_lost(fit) if fit else False
    tracking, histogram = _figures(done)
    return {
        "fit": fit,
        "last": last,
        "done": done,
        "lost": lost,
        "active": bool(fit and fit.status in ("queued", "running") and not lost),
        "progress": jobs.progress(fit) if fit else None,
        "no_fit_message": service.fit_message(last) if last is not None else None,
        "tracking": tracking,
        "histogram": histogram,
        "scored": service.scored_count() if done else 0,
        "form": CsrfForm(),
        "can_edit": g.user is not None and g.user.role in EDITORS,
        "message": message,
        "level": level,
    }


@bp.route("/")
def index():
    """The predictions page; for htmx, its model fragment (polled while computing)."""
    if wants_fragment():
        return render_template("predictions/_model.html", **_context())
    done = service.last_done_fit()
    rate = done.annual_discount_rate if done is not None else settings.PREDICTIONS_ANNUAL_DISCOUNT_RATE
    return render_template("predictions/index.html", discount_rate=rate, **_context())


@bp.route("/compute", methods=["POST"])
@role_required(*EDITORS)
def compute():
    form = CsrfForm()
    message, level = None, "info"
    if not form.validate_on_submit():
        message, level = _("The form expired; reload the page and try again."), "error"
    else:
        try:
            jobs.request_fit(user=g.user.id, tz=current_app.config.get("TZ"))
        except (RedisError, RuntimeError):
            message, level = (
                _(
                    "The job queue cannot be reached right now, so the computation did not start. "
                    "Try again when the worker is back."
                ),
                "error",
            )
    if wants_fragment():
        return render_template("predictions/_model.html", **_context(message, level))
    if message:
        flash(message)
    return redirect(url_for("predictions.index"))


def init_app(app):
    app.register_blueprint(bp)
    # the customer card's predictions section (templates/predictions/_customer.html) reads them
    app.add_template_global(service.customer_scores, "predicted_scores")
