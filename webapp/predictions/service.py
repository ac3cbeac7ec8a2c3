"""Predictions: fit the purchase models on the order log and score every customer.

Imports nothing from Flask: the page (webapp.predictions.views), the job
(webapp.predictions.jobs), the CLI, the launcher and the benchmark call it.

What is computed, with calibration end D (a date in the account time zone):

- The orders that count: `ordered_at` before the end of D, with a status the
  RFM settings do not exclude (orders with no status always count). Orders
  on the same local day are one purchase (their totals summed), as in the
  published CDNOW analyses.
- Per customer with a counting order (SQL, one row each): x = purchase days
  after the first, t_x = last purchase day minus the first, T = D minus the
  first purchase day, and the mean value of the repeat purchase days; in days
  or weeks (`time_unit`).
- BG/NBD and Gamma-Gamma fitted by maximum likelihood on those arrays
  (webapp.predictions.model), then each customer's scores: probability still
  buying, expected orders in the next 30/90/365 days, expected order value and
  the discounted value of the next 12 months (`annual_discount_rate`). Money
  in currency units.
- The scores replace `customer_prediction` as a whole in one transaction;
  a customer with no counting order has no row (every score null). Dynamic
  segments that read a predicted field are then queued for a run, so their
  entries and exits (and the triggers on them) follow the new scores.

Too little data (fewer than 50 repeat customers...): the fit is recorded with
status `no_fit` and a message code; the stored scores stay as they were.
"""

import datetime
import json
import logging
import zoneinfo

import numpy as np
import peewee as pw

from .. import settings as app_settings
from ..db import database, is_postgres
from ..engine import customer_fields_read
from ..i18n import _, ngettext
from ..models import PREDICTED_FIELDS, CustomerPrediction, PredictionFit, Segment, SegmentMember, utcnow
from ..text import fold
from . import model

log = logging.getLogger(__name__)

TIME_UNITS = {"day": 1, "week": 7}
HORIZONS = (("orders_30d", 30), ("orders_90d", 90), ("orders_365d", 365))
DEFAULT_TIME_UNIT = "week"
DEFAULT_DISCOUNT_RATE = 0.10
MIN_REPEAT_CUSTOMERS = model.MIN_REPEAT_CUSTOMERS
HISTOGRAM_MAX = 7  # the last bar is "7 or more", as in the papers
BATCH = 20_000
STEPS = 5
# Python's date ordinal of the day SQLite's julianday numbers as 0
_JULIAN_TO_ORDINAL = 1721425


class PredictionError(ValueError):
    """Bad input to a fit (a date, a time unit): `message` is for people."""


# --- input ---------------------------------------------------------------------


def today(tz=None):
    return datetime.datetime.now(_zone(tz)).date()


def _zone(tz=None):
    try:
        return zoneinfo.ZoneInfo(tz or app_settings.TZ or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


def parse_calibration_end(text, tz=None):
    """A calibration end from YYYY-MM-DD text (empty: today); PredictionError when bad."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return today(tz)
    if isinstance(text, datetime.date):
        day = text
    else:
        try:
            day = datetime.date.fromisoformat(text.strip())
        except ValueError:
            raise PredictionError(
                _("“%(text)s” is not a date: use YYYY-MM-DD, or leave it empty for today.", text=text)
            ) from None
    if day > today(tz):
        raise PredictionError(
            _(
                "The calibration end %(date)s is in the future: orders after today are not known yet.",
                date=day.isoformat(),
            )
        )
    return day


def parse_time_unit(text):
    unit = (text or DEFAULT_TIME_UNIT).strip().lower()
    if unit not in TIME_UNITS:
        raise PredictionError(_("The time unit must be “day” or “week”, not “%(text)s”.", text=text))
    return unit


# --- per-customer summaries in SQL -------------------------------------------------


def _end_and_offset(day, tz=None):
    """(end of `day` in the zone as naive UTC, the zone's UTC offset in minutes then)."""
    zone = _zone(tz)
    end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tzinfo=zone)
    offset = int(end.utcoffset().total_seconds() // 60)
    return end.astimezone(datetime.UTC).replace(tzinfo=None), offset


def _excluded_statuses():
    from ..rfm.service import get_settings

    return [fold(s) for s in (get_settings().excluded_statuses or ()) if fold(s)]


class Summaries:
    """Per-customer summaries as numpy arrays (one element per customer with a
    counting order by the calibration end), times in days."""

    def __init__(self, n):
        self.ids = np.zeros(n, dtype=np.int64)
        self.x = np.zeros(n)
        self.t_x = np.zeros(n)
        self.T = np.zeros(n)
        self.m = np.zeros(n)  # mean repeat purchase value, currency units (0 without repeats)
        self.first = np.zeros(n, dtype=np.int64)  # first purchase day (date ordinal)

    def __len__(self):
        return int(self.ids.size)


def _build_days(calibration_end, tz, *, upto=None):
    """Temporary table `pred_day`: one row per customer and local purchase day
    (totals summed), for orders before the end of `upto` (default: all)."""
    pg = is_postgres()
    p = "%s" if pg else "?"
    end, offset = _end_and_offset(calibration_end, tz)
    if pg:
        day = f"((o.ordered_at + {p} * interval '1 minute')::date - DATE '0001-01-01' + 1)"
        day_params = [offset]
    else:
        day = f"(CAST(julianday(o.ordered_at, {p}) + 0.5 AS INTEGER) - {_JULIAN_TO_ORDINAL})"
        day_params = [f"{offset:+d} minutes"]
    where, params = "1 = 1", []
    if upto is not None:
        upto_end, _offset = _end_and_offset(upto, tz)
        where += f" AND o.ordered_at < {p}"
        params.append(upto_end if pg else upto_end.strftime("%Y-%m-%d %H:%M:%S"))
    excluded = _excluded_statuses()
    if excluded:
        where += f" AND (o.status_ci IS NULL OR o.status_ci NOT IN ({', '.join([p] * len(excluded))}))"
        params += excluded
    bigint = "BIGINT" if pg else "INTEGER"
    database.execute_sql("DROP TABLE IF EXISTS pred_day")
    database.execute_sql(
        f"CREATE TEMPORARY TABLE pred_day (customer_id {bigint}, day INTEGER, cents {bigint}, "
        f"PRIMARY KEY (customer_id, day))" + ("" if pg else " WITHOUT ROWID")
    )
    database.execute_sql(
        f"INSERT INTO pred_day (customer_id, day, cents) SELECT o.customer_id, {day}, SUM(o.total_cents) "
        f"FROM orders o WHERE {where} GROUP BY o.customer_id, 2",
        day_params + params,
    )
    return end


def _build_summary(calibration_end):
    """Temporary table `pred_sum` from `pred_day`: per customer first and last
    day, purchase days, and the total of the repeat days, by the calibration end."""
    pg = is_postgres()
    p = "%s" if pg else "?"
    bigint = "BIGINT" if pg else "INTEGER"
    cal = calibration_end.toordinal()
    database.execute_sql("DROP TABLE IF EXISTS pred_sum")
    database.execute_sql(
        f"CREATE TEMPORARY TABLE pred_sum (customer_id {bigint} PRIMARY KEY, first_day INTEGER, "
        f"last_day INTEGER, days INTEGER, total_cents {bigint}, first_cents {bigint})"
    )
    database.execute_sql(
        f"INSERT INTO pred_sum (customer_id, first_day, last_day, days, total_cents) "
        f"SELECT customer_id, MIN(day), MAX(day), COUNT(*), SUM(cents) FROM pred_day WHERE day <= {p} "
        f"GROUP BY customer_id",
        (cal,),
    )
    # the first day's total through pred_day's primary key: one seek per customer
    database.execute_sql(
        "UPDATE pred_sum SET first_cents = (SELECT d.cents FROM pred_day d "
        "WHERE d.customer_id = pred_sum.customer_id AND d.day = pred_sum.first_day)"
    )


def _read_summaries(calibration_end):
    """pred_sum into numpy arrays, in batches (no Python object per customer kept)."""
    n = database.execute_sql("SELECT COUNT(*) FROM pred_sum").fetchone()[0]
    s = Summaries(n)
    cal = calibration_end.toordinal()
    cursor = database.execute_sql(
        "SELECT customer_id, first_day, last_day, days, total_cents - first_cents FROM pred_sum ORDER BY customer_id"
    )
    i = 0
    while True:
        rows = cursor.fetchmany(BATCH)
        if not rows:
            break
        block = np.array(rows, dtype=np.float64)
        j = i + len(rows)
        s.ids[i:j] = block[:, 0].astype(np.int64)
        first, last, days, repeat_cents = block[:, 1], block[:, 2], block[:, 3], block[:, 4]
        s.first[i:j] = first.astype(np.int64)
        s.x[i:j] = days - 1
        s.t_x[i:j] = last - first
        s.T[i:j] = cal - first
        with np.errstate(divide="ignore", invalid="ignore"):
            s.m[i:j] = np.where(days > 1, repeat_cents / 100.0 / np.maximum(days - 1, 1), 0.0)
        i = j
    return s


def summaries(calibration_end, *, tz=None):
    """Per-customer summaries as of `calibration_end` (days): a `Summaries`."""
    with database.atomic():
        _build_days(calibration_end, tz, upto=calibration_end)
        _build_summary(calibration_end)
        result = _read_summaries(calibration_end)
        _drop_temp()
    return result


def _drop_temp():
    for table in ("pred_sum", "pred_day"):
        database.execute_sql(f"DROP TABLE IF EXISTS {table}")


# --- fitting ------------------------------------------------------------------------


class Fitted:
    """The result of `fit_models`: parameters (gamma_gamma None when it could not
    be fitted: no order values then), the summaries, and any reason."""

    def __init__(self, s, unit, bgnbd, gamma_gamma, gg_error=None):
        self.summaries, self.unit, self.bgnbd, self.gamma_gamma, self.gg_error = s, unit, bgnbd, gamma_gamma, gg_error

    @property
    def days(self):
        return TIME_UNITS[self.unit]


def _reason_code(exc):
    reason = exc.reason
    if reason.startswith("Only") and "order-value" in reason:
        return "too_few_values"
    if reason.startswith("Only"):
        return "too_few_repeat"
    if "no history" in reason:
        return "no_history"
    if "dispersed" in reason:
        return "dispersed"
    return "no_convergence"


def fit_models(s, unit):
    """Fit BG/NBD (and Gamma-Gamma when it can) on summaries `s` in `unit`.

    Raises model.FitError when BG/NBD cannot be fitted."""
    days = TIME_UNITS[unit]
    x, t_x, T = s.x, s.t_x / days, s.T / days
    xu, tu, Tu, counts, _inverse = model.group_customers(x, t_x, T)
    bgnbd = model.fit_bgnbd(xu, tu, Tu, weights=counts)
    repeat = (s.x > 0) & (s.m > 0)
    try:
        gamma_gamma = model.fit_gamma_gamma(s.x[repeat], s.m[repeat])
        gg_error = None
    except model.FitError as exc:
        gamma_gamma, gg_error = None, exc
    return Fitted(s, unit, bgnbd, gamma_gamma, gg_error)


def scores(fitted, *, annual_discount_rate=DEFAULT_DISCOUNT_RATE):
    """{field: array} of every customer's scores (aov and clv None without Gamma-Gamma)."""
    s, days = fitted.summaries, fitted.days
    x, t_x, T = s.x, s.t_x / days, s.T / days
    out = {"p_alive": model.bgnbd_probability_alive(fitted.bgnbd, x, t_x, T)}
    for name, horizon in HORIZONS:
        out[name] = model.bgnbd_expected_purchases(fitted.bgnbd, horizon / days, x, t_x, T)
    if fitted.gamma_gamma is not None:
        out["aov"] = model.gamma_gamma_expected_order_value(fitted.gamma_gamma, x, s.m)
        out["clv"] = model.customer_lifetime_value(
            fitted.bgnbd,
            fitted.gamma_gamma,
            x,
            t_x,
            T,
            s.m,
            time_unit_days=days,
            annual_discount_rate=annual_discount_rate,
        )
    else:
        out["aov"] = out["clv"] = None
    return out


def _column(values, i, j):
    if values is None:
        return [None] * (j - i)
    part = values[i:j]
    # PostgreSQL rejects subnormal doubles (a score of 1e-310 is 0 to anyone)
    part = np.where(np.abs(part) < np.finfo(np.float64).tiny, 0.0, part)
    if np.isfinite(part).all():
        return part.tolist()
    obj = part.astype(object)
    obj[~np.isfinite(part)] = None
    return obj.tolist()


def store_scores(ids, values, on_progress=None):
    """Replace `customer_prediction` with these scores (call inside a transaction)."""
    columns = ", ".join(("customer_id",) + PREDICTED_FIELDS)
    p = "%s" if is_postgres() else "?"
    sql = f"INSERT INTO customer_prediction ({columns}) VALUES ({', '.join([p] * (1 + len(PREDICTED_FIELDS)))})"
    database.execute_sql("DELETE FROM customer_prediction")
    n = int(ids.size)
    cursor = database.cursor()
    for i in range(0, n, BATCH):
        j = min(i + BATCH, n)
        cols = [ids[i:j].tolist()] + [_column(values[name], i, j) for name in PREDICTED_FIELDS]
        cursor.executemany(sql, list(zip(*cols, strict=True)))
        if on_progress:
            on_progress(j, n)


# --- the model page's figures -----------------------------------------------------


def _tracking(fitted, calibration_end, last_day):
    """Weekly cumulative repeat purchases, actual (from pred_day) and as the
    model expects them, from the first purchase week to the last order's week.

    [(week start ordinal, actual cumulative, expected cumulative)]."""
    s, days = fitted.summaries, fitted.days
    if not len(s):
        return []
    start = int(s.first.min())
    end = max(int(last_day), calibration_end.toordinal())
    weeks = (end - start) // 7 + 1
    # actual: repeat purchase days of the fitted customers, by week
    p = "%s" if is_postgres() else "?"
    actual = np.zeros(weeks)
    rows = database.execute_sql(
        f"SELECT (d.day - {p}) / 7, COUNT(*) FROM pred_day d JOIN pred_sum s ON s.customer_id = d.customer_id "
        f"WHERE d.day > s.first_day GROUP BY 1",
        (start,),
    ).fetchall()
    for week, count in rows:
        if 0 <= int(week) < weeks:
            actual[int(week)] = count
    # expected: every cohort of first purchase day times E[X(t - s)]
    first_days, cohort = np.unique(s.first, return_counts=True)
    ends = start + 7 * np.arange(1, weeks + 1)  # the day after each week
    expected = np.zeros(weeks)
    for k in range(0, weeks, 16):  # a few weeks at a time keeps the matrix small
        span = ends[k : k + 16]
        age = (span[None, :] - first_days[:, None] - 1) / days
        e = np.where(age > 0, model.bgnbd_unconditional_expected_purchases(fitted.bgnbd, np.maximum(age, 0)), 0.0)
        expected[k : k + 16] = cohort @ e
    cumulative = np.cumsum(actual)
    return [(int(start + 7 * w), float(cumulative[w]), float(expected[w])) for w in range(weeks)]


def _histogram(fitted):
    """[(repeat purchases 0..7+, actual customers, expected customers)] in the calibration period."""
    s, days = fitted.summaries, fitted.days
    T = s.T / days
    Tu, counts = np.unique(T, return_counts=True)
    expected = model.bgnbd_expected_frequency_histogram(fitted.bgnbd, Tu, HISTOGRAM_MAX, weights=counts)
    actual = np.bincount(np.minimum(s.x.astype(np.int64), HISTOGRAM_MAX), minlength=HISTOGRAM_MAX + 1)
    return [(n, int(actual[n]), float(expected[n])) for n in range(HISTOGRAM_MAX + 1)]


# --- fits -----------------------------------------------------------------------------


def create_fit(*, trigger="user", user=None, calibration_end=None, time_unit=None, tz=None, annual_discount_rate=None):
    return PredictionFit.create(
        trigger=trigger,
        requested_by=user,
        calibration_end=calibration_end or today(tz),
        time_unit=time_unit or DEFAULT_TIME_UNIT,
        annual_discount_rate=(
            app_settings.PREDICTIONS_ANNUAL_DISCOUNT_RATE if annual_discount_rate is None else annual_discount_rate
        ),
    )


def active_fit():
    return (
        PredictionFit.select()
        .where(PredictionFit.status.in_(("queued", "running")))
        .order_by(PredictionFit.id.desc())
        .first()
    )


def last_fit():
    """The latest finished fit (done or no_fit), or None."""
    return (
        PredictionFit.select()
        .where(PredictionFit.status.in_(("done", "no_fit")))
        .order_by(PredictionFit.id.desc())
        .first()
    )


def last_done_fit():
    return PredictionFit.select().where(PredictionFit.status == "done").order_by(PredictionFit.id.desc()).first()


def execute_fit(fit_id, *, tz=None, on_progress=None, store=True):
    """Fit and (with `store`) score fit `fit_id` now, in this process.

    Idempotent: a finished fit is left alone; a failed or interrupted one runs
    again from the start (the scores are replaced as a whole, in one
    transaction). Returns the fit row."""
    fit = PredictionFit.get_or_none(PredictionFit.id == fit_id)
    if fit is None or fit.status in ("done", "no_fit"):
        return fit
    progress = on_progress or (lambda step, label, done=None, total=None: None)
    PredictionFit.update(status="running", started_at=utcnow(), error=None, error_code=None).where(
        PredictionFit.id == fit.id
    ).execute()
    unit = fit.time_unit
    cal = fit.calibration_end
    try:
        with database.atomic():
            progress(1, _("Summarising each customer's orders"))
            _build_days(cal, tz)
            _build_summary(cal)
            s = _read_summaries(cal)
            first_last = database.execute_sql("SELECT MIN(day), MAX(day) FROM pred_day").fetchone()
            n_repeat = int((s.x > 0).sum())
            update = {"customers": len(s), "repeat_customers": n_repeat}
            if first_last[0] is not None:
                update["first_order_date"] = datetime.date.fromordinal(int(first_last[0]))
                update["last_order_date"] = datetime.date.fromordinal(int(first_last[1]))
            progress(2, _("Fitting the purchase models"))
            try:
                fitted = fit_models(s, unit)
            except model.FitError as exc:
                _drop_temp()
                update.update(
                    status="no_fit",
                    error_code=_reason_code(exc),
                    error={"reason": exc.reason, "customers": len(s), "repeat": n_repeat, "min": MIN_REPEAT_CUSTOMERS},
                    finished_at=utcnow(),
                )
                PredictionFit.update(**update).where(PredictionFit.id == fit.id).execute()
                return PredictionFit.get_by_id(fit.id)
            progress(3, _("Drawing the model's figures"))
            charts = {
                "tracking": _tracking(fitted, cal, first_last[1] or cal.toordinal()),
                "histogram": _histogram(fitted),
            }
            _drop_temp()
            update.update(
                bgnbd=fitted.bgnbd.to_dict(),
                gamma_gamma=fitted.gamma_gamma.to_dict() if fitted.gamma_gamma else None,
                charts=charts,
            )
            if fitted.gg_error is not None:
                update.update(error_code=_reason_code(fitted.gg_error), error={"reason": fitted.gg_error.reason})
            if store:
                progress(4, _("Scoring customers"))
                values = scores(fitted, annual_discount_rate=fit.annual_discount_rate)
                del s  # keep one copy of the arrays at a time
                store_scores(
                    fitted.summaries.ids,
                    values,
                    on_progress=lambda done, total: progress(4, _("Storing scores"), done, total),
                )
                update["scored"] = int(fitted.summaries.ids.size)
            update.update(status="done", finished_at=utcnow())
            PredictionFit.update(**update).where(PredictionFit.id == fit.id).execute()
        if store:
            progress(5, _("Queueing the segments that read predicted fields"))
            request_dependants()
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the fit
        log.exception("prediction fit %s failed", fit.id)
        (
            PredictionFit.update(
                status="failed",
                error_code="error",
                error={"reason": f"{type(exc).__name__}: {exc}"},
                finished_at=utcnow(),
            )
            .where(PredictionFit.id == fit.id)
            .execute()
        )
        raise
    return PredictionFit.get_by_id(fit.id)


def compute_now(*, trigger="demo", tz=None, calibration_end=None, time_unit=None, store=True, on_progress=None):
    """Fit and score in this process (the launcher after demo data, the CLI)."""
    fit = create_fit(trigger=trigger, calibration_end=calibration_end, time_unit=time_unit, tz=tz)
    return execute_fit(fit.id, tz=tz, store=store, on_progress=on_progress)


# --- segments reading predicted fields ---------------------------------------------


def reads_predictions(definition):
    """Whether a definition (dict) has a filter on a predicted field."""
    return any(name.startswith("predicted.") for name in customer_fields_read(definition))


def dependant_segments():
    """Active dynamic segments whose definition reads a predicted field."""
    # A list, not a live cursor: SQLite aborts open reads on ROLLBACK.
    segments = list(Segment.evaluated())
    return [s for s in segments if reads_predictions(s.definition)]


def request_dependants():
    """Queue a run of every segment reading predicted fields (entries, exits and
    their triggers follow the new scores). Returns the segments queued."""
    from redis.exceptions import RedisError

    from ..segments.runs import RunSkipped, request_run

    queued = []
    for segment in dependant_segments():
        try:
            request_run(segment, trigger="predictions")
            queued.append(segment)
        except RunSkipped:
            pass
        except RuntimeError:
            # no queue server configured (make run computes the demo's predictions before
            # starting it): the run is recorded as queued and the scheduler queues it
            log.info("segment %s: run recorded, queued when the worker starts", segment.code)
        except RedisError:
            # the run is recorded as queued: the scheduler queues it again
            log.warning("could not queue segment %s after the predictions", segment.code, exc_info=True)
    return queued


# --- reading -----------------------------------------------------------------------------


def customer_scores(customer_id):
    """{field: value or None} of one customer (all None without a row)."""
    row = CustomerPrediction.get_or_none(CustomerPrediction.customer == customer_id)
    return {name: (getattr(row, name) if row is not None else None) for name in PREDICTED_FIELDS}


def fit_summary(fit):
    """The fit as plain JSON: parameters and log-likelihoods (the CLI's last line)."""
    if fit is None:
        return None
    return {
        "id": fit.id,
        "status": fit.status,
        "time_unit": fit.time_unit,
        "calibration_end": fit.calibration_end.isoformat() if fit.calibration_end else None,
        "first_order_date": fit.first_order_date.isoformat() if fit.first_order_date else None,
        "last_order_date": fit.last_order_date.isoformat() if fit.last_order_date else None,
        "customers": fit.customers,
        "repeat_customers": fit.repeat_customers,
        "scored": fit.scored,
        "bgnbd": fit.bgnbd,
        "gamma_gamma": fit.gamma_gamma,
        "error": fit.error.get("reason") if fit.error else None,
    }


def fit_message(fit):
    """Why there is no fit (or no order-value model), in the user's language; None when none."""
    if fit is None or not fit.error_code:
        return None
    e = fit.error or {}
    code = fit.error_code
    if code == "too_few_repeat":
        return ngettext(
            "Too little data to trust a fit: %(repeat)s of %(customers)s customers with orders has bought on "
            "more than one day; at least %(min)s repeat customers are needed.",
            "Too little data to trust a fit: %(repeat)s of %(customers)s customers with orders have bought on "
            "more than one day; at least %(min)s repeat customers are needed.",
            e.get("repeat") or 0,
            repeat=e.get("repeat") or 0,
            customers=e.get("customers") or 0,
            min=e.get("min") or MIN_REPEAT_CUSTOMERS,
        )
    if code == "no_history":
        return _(
            "Too little data to trust a fit: every customer's first order is on the calibration end, so "
            "there is no history yet."
        )
    if code == "too_few_values":
        return _(
            "Too few repeat orders with a value to predict order values: the expected order value and the "
            "predicted value stay empty."
        )
    if code == "dispersed":
        return _(
            "The order values are too dispersed to predict them: the expected order value and the "
            "predicted value stay empty."
        )
    if code == "no_convergence":
        return _(
            "The model could not be fitted: the customers' orders are too few or too irregular to trust an estimate."
        )
    return _("The computation failed: %(error)s", error=e.get("reason") or "")


def charts_of(fit):
    """(tracking, histogram) of a done fit: tracking [(date, actual, expected)],
    histogram [(n, actual, expected)]."""
    data = (fit.charts if fit is not None else None) or {}
    tracking = [(datetime.date.fromordinal(d), a, e) for d, a, e in data.get("tracking") or ()]
    histogram = [tuple(row) for row in data.get("histogram") or ()]
    return tracking, histogram


def scored_count():
    return CustomerPrediction.select().count()


def dumps(value):
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def segment_predictions(segment_ids):
    """Per segment, its current members' scores added up (one GROUP BY):
    {segment id: {"scored": members with scores, "clv": sum, "orders_90d": sum,
    "p_alive": mean}}; segments without scored members are left out."""
    ids = [int(i) for i in segment_ids]
    if not ids:
        return {}
    query = (
        SegmentMember.select(
            SegmentMember.segment,
            pw.fn.COUNT(CustomerPrediction.customer),
            pw.fn.SUM(CustomerPrediction.clv),
            pw.fn.SUM(CustomerPrediction.orders_90d),
            pw.fn.AVG(CustomerPrediction.p_alive),
        )
        .join(CustomerPrediction, on=(CustomerPrediction.customer == SegmentMember.customer))
        .where(SegmentMember.segment.in_(ids))
        .group_by(SegmentMember.segment)
        .tuples()
    )
    return {sid: {"scored": n, "clv": clv, "orders_90d": orders, "p_alive": p} for sid, n, clv, orders, p in query}
