"""The analytics dashboard: /analytics/ (page, or its figures for htmx) and /analytics/export.csv.

The figures come from the cache when the data has not changed since they were computed, are
computed in the request when they are small, and otherwise by a job whose progress the
fragment shows until they are there (webapp.analytics.jobs), under the latest figures of the same
filters if there are any. The progress polls itself; once the figures are there, the answer
re-targets the whole dashboard."""

import csv
import datetime
import io

from flask import Blueprint, Response, current_app, make_response, render_template, request, url_for
from rq.job import JobStatus

from .. import charts, csvsafe
from ..formats import figure, money, month, percent
from ..i18n import _
from ..models import utcnow
from ..predictions.service import segment_predictions
from ..segments.listing import zone
from ..web import wants_fragment
from . import jobs
from . import service as analytics

bp = Blueprint("analytics", __name__, url_prefix="/analytics")
PROGRESS_ID = "analytics-progress"
FAILED = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def init_app(app):
    app.register_blueprint(bp)


def metric_names():
    return {
        "size": _("Size"),
        "revenue": _("Revenue"),
        "orders": _("Orders"),
        "aov": _("Average order value"),
        "share": _("Buyers’ share"),
    }


def field_names():
    return {"from": _("First day"), "to": _("Last day"), "grain": _("Granularity")}


FORMATS = {"size": figure, "revenue": money, "orders": figure, "aov": money, "share": percent}


def _charts(board):
    """One line chart per metric (a series per segment) and the segments-as-axis bar chart."""
    x_label = month if board.grain == "month" else None
    lines, own_scale = {}, {}
    for metric in analytics.METRICS:
        series = [
            (item.segment.name, [(span.start, fig.value(metric)) for span, fig in zip(board.periods, item.periods)])
            for item in board.segments
        ]

        def chart(series, metric=metric):
            return charts.line_chart(
                series,
                width=560,
                height=220,
                value_label=FORMATS[metric],
                integer=metric in ("size", "orders"),
                x_label=x_label,
                max_x_ticks=6,
            )

        if far_apart(series):
            # one line would sit flat on the axis beside the others: each segment on its own scale
            own_scale[metric] = [(name, chart([(name, points)])) for name, points in series]
        else:
            lines[metric] = chart(series)
    metric = board.filters.metric
    bars = charts.bar_chart(
        [
            charts.Bar(
                item.segment.name,
                item.total.value(metric) or 0,
                index=item.index,
                title=f"{item.segment.name}: {FORMATS[metric](item.total.value(metric))}",
            )
            for item in board.segments
        ],
        width=1160,
        height=240,
        value_label=FORMATS[metric],
        integer=metric in ("size", "orders"),
    )
    return lines, own_scale, bars


SCALE_SPREAD = 100  # peaks this many times apart: one shared axis would flatten the smaller lines


def far_apart(series):
    """Whether the series' peaks differ by orders of magnitude (SCALE_SPREAD or more)."""
    peaks = [max((abs(v) for _x, v in points if v is not None), default=0) for _name, points in series]
    peaks = [p for p in peaks if p]
    return len(peaks) > 1 and max(peaks) >= SCALE_SPREAD * min(peaks)


def predicted_by_segment(items):
    """Today's members' predicted scores per shown segment (webapp.predictions)."""
    return segment_predictions([item.segment.id for item in items])


@bp.get("/")
def dashboard():
    filters = analytics.Filters.from_args(request.args)
    tz = zone()
    now = utcnow()
    board = analytics.plan(filters, tz, now)
    if board is not None:
        analytics.choose_default_mode(board)  # before the page's form and figures' URL are made
    if not wants_fragment():
        # the page comes at once; its figures load into it (they can take seconds on big segments)
        today = now.replace(tzinfo=datetime.UTC).astimezone(tz).date()
        first, last = analytics.date_range(filters, today) if not filters.errors else (filters.start, filters.end)
        return render_template(
            "analytics/page.html",
            filters=filters,
            available=analytics.analytics_segments(),
            defaults={s.code for s in analytics.default_segments(analytics.analytics_segments())},
            first=first,
            last=last,
            metrics=metric_names(),
            max_segments=analytics.MAX_SEGMENTS,
            tz_name=str(tz),
        )
    progress = _figures(board, now) if board is not None and board.chosen else None
    if progress is not None and (not board.segments or request.headers.get("HX-Target") == PROGRESS_ID):
        return render_template("analytics/_progress.html", progress=progress)
    lines, own_scale, bars = _charts(board) if board and board.segments else ({}, {}, None)
    response = make_response(
        render_template(
            "analytics/_dashboard.html",
            filters=filters,
            board=board,
            lines=lines,
            own_scale=own_scale,
            current=next((span for span in board.periods if span.current), None) if board else None,
            bars=bars,
            metrics=metric_names(),
            formats=FORMATS,
            zip=zip,
            field_names=field_names(),
            progress=progress,
            predicted=predicted_by_segment(board.segments) if board and board.segments else {},
        )
    )
    if request.headers.get("HX-Target") == PROGRESS_ID:  # the progress polled, the figures are there
        response.headers.update({"HX-Retarget": "#dashboard", "HX-Reswap": "innerHTML"})
    return response


def _figures(board, now):
    """Fill `board` from the cache, or compute it here when it is small; else queue the job and
    return its progress (the template's context), with `board` filled from the latest figures of
    the same filters if there are any (the page shows them, and their time, meanwhile)."""
    key = analytics.cache_key(board)
    figures = jobs.cached(key)
    if figures is not None:
        analytics.fill(board, figures)
        return None
    if analytics.work_estimate(board) <= current_app.config.get("ANALYTICS_INLINE_WORK", 10_000_000):
        jobs.store(key, analytics.compute(board))
        return None
    try:
        if request.args.get("retry"):
            jobs.forget_failed(key)
        state, done, total = jobs.status(key)
        if state not in FAILED:
            jobs.enqueue(list(request.args.items(multi=True)), board.zone, now, key)
            state, done, total = jobs.status(key)
    except Exception:  # noqa: BLE001 - no queue server: compute here, however long it takes
        analytics.compute(board)
        return None
    stale = jobs.latest(key)
    if stale is not None:
        analytics.fill(board, stale["figures"])
    args = board.filters.args()
    return {
        "failed": state in FAILED,
        "started": done is not None,
        "done": done or 0,
        "total": total or 1,
        "stale_at": datetime.datetime.fromisoformat(stale["at"]) if stale else None,
        "poll_url": url_for("analytics.dashboard", **args),
        "retry_url": url_for("analytics.dashboard", retry=1, **args),
    }


@bp.get("/export.csv")
def export():
    filters = analytics.Filters.from_args(request.args)
    board = analytics.plan(filters, zone(), utcnow())
    if board is not None:
        analytics.choose_default_mode(board)
    if board is not None and board.chosen:
        figures = jobs.cached(analytics.cache_key(board))
        if figures is not None:
            analytics.fill(board, figures)
        else:
            analytics.compute(board)
    if board is None:
        return Response(
            _("The filters have errors: %(errors)s", errors="; ".join(_(e) for e in filters.errors.values())),
            status=400,
            mimetype="text/plain",
        )
    out = io.StringIO()
    writer = csv.writer(out)
    for row in analytics.csv_rows(board):
        writer.writerow(csvsafe.safe_row(row))
    name = f"segment-analytics-{board.first.isoformat()}-{board.last.isoformat()}.csv"
    return Response(
        out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
