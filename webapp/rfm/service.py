"""RFM analysis: recency, frequency and monetary scores over orders.

Imports nothing from Flask: the pages (webapp.rfm.views), the job
(webapp.rfm.jobs), the launcher and the benchmark call these functions.

What is computed, as of a date D (the account time zone, TZ setting):

- The orders that count: `ordered_at` before the end of D and a status that
  is not excluded in the settings (orders with no status always count).
- Per customer with at least one counting order: `recency_days` (D minus the
  date of the last counting order; the time zone's offset on D converts
  order times to dates), `frequency` (number of counting orders) and
  `monetary_cents` (their total, or with the "average" setting the total
  divided by the number of orders, rounded down to the cent).
- Scores 1-5, 5 best (most recent, most frequent, most money):
  - quintiles: score = 1 + floor(5 × W / N), where N is the number of scored
    customers and W the number of them whose value is strictly worse
    (recency: more days; frequency, monetary: less). Equal values always get
    equal scores, and the score does not depend on row order. With many equal
    values (most customers ordering once) a score can stay empty.
  - thresholds: four increasing cut points per letter. R: 5 up to the first
    number of days, 4 up to the second, 3 up to the third, 2 up to the
    fourth, 1 beyond. F and M: 2 from the first cut point, 3 from the second,
    4 from the third, 5 from the fourth, 1 below the first.

The result replaces `rfm_score` and `rfm_cell` as a whole, in one transaction,
by INSERT ... SELECT statements (set work in the database). The named classes
(CLASSES, by R and F) and the score segments (one per letter and score, R1 to
M5: what the builder's "RFM scores" filter reads, since the definition's
customer fields have no RFM score) are system segments with source "rfm":
their members are set from the stored scores by `runs.apply_members`, so
entries and exits are logged and triggers fire; the segment scheduler and the
real-time re-check never evaluate them (their membership is stored, like a
list segment's). Score segments are not offered in analytics by default.
"""

import contextlib
import datetime
import logging
import re
import zoneinfo

from .. import settings as app_settings
from ..audit import service as audit
from ..db import database, is_postgres
from ..i18n import N_, _, pgettext
from ..models import (
    RFM_METHODS,
    RFM_MONETARY,
    Customer,
    Order,
    RfmCell,
    RfmRun,
    RfmScore,
    RfmSettings,
    Segment,
    SegmentRun,
    SegmentSize,
    utcnow,
)
from ..segments.system import RFM_LETTERS, RFM_SCORES, rfm_code
from ..sql import bind, key_type, param, placeholders, temporary_table
from ..text import fold

log = logging.getLogger(__name__)

SCORES = RFM_SCORES
DEFAULT_EXCLUDED = ("cancelled", "returned")
# Defaults offered when the user switches to thresholds.
DEFAULT_CUTS = {"r": [30, 90, 180, 365], "f": [2, 3, 5, 10], "m": [100000, 300000, 700000, 1500000]}
SOURCE = "rfm"
WHOLE = re.compile(r"^\d{1,9}$")

# The named classes by R (rows) and F (columns). Every one of the 25 cells
# belongs to exactly one class:
#
#   R\F   1            2            3          4          5
#   5     new          potential    potential  champions  champions
#   4     new          potential    potential  loyal      loyal
#   3     hibernating  hibernating  potential  loyal      loyal
#   2     hibernating  hibernating  at risk    at risk    can't lose
#   1     lost         lost         at risk    at risk    can't lose
CLASSES = [
    ("champions", N_("RFM: champions"), {(5, 4), (5, 5)}),
    ("loyal", N_("RFM: loyal"), {(4, 4), (4, 5), (3, 4), (3, 5)}),
    ("potential", N_("RFM: potential"), {(5, 2), (5, 3), (4, 2), (4, 3), (3, 3)}),
    ("new", N_("RFM: new"), {(5, 1), (4, 1)}),
    ("at_risk", N_("RFM: at risk"), {(2, 3), (2, 4), (1, 3), (1, 4)}),
    ("cant_lose", N_("RFM: can't lose"), {(2, 5), (1, 5)}),
    ("hibernating", N_("RFM: hibernating"), {(3, 1), (3, 2), (2, 1), (2, 2)}),
    ("lost", N_("RFM: lost"), {(1, 1), (1, 2)}),
]


def class_label(key):
    return {
        "champions": _("Champions"),
        "loyal": _("Loyal"),
        "potential": _("Potential"),
        "new": _("New"),
        "at_risk": _("At risk"),
        "cant_lose": _("Can't lose"),
        "hibernating": _("Hibernating"),
        "lost": pgettext("RFM class", "Lost"),
    }[key]


def class_of(r, f):
    """The class key of an R×F cell."""
    for key, _name, cells in CLASSES:
        if (r, f) in cells:
            return key
    raise ValueError((r, f))


class RfmSettingsError(ValueError):
    """Bad settings: `errors` maps a field (method, monetary, r_cuts, f_cuts,
    m_cuts, excluded_statuses, as_of) to messages."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("; ".join(m for messages in errors.values() for m in messages))


# --- settings ------------------------------------------------------------------


def get_settings():
    """The settings row (created with the defaults on first use)."""
    row = RfmSettings.get_or_none(RfmSettings.id == 1)
    if row is None:
        with database.atomic():
            RfmSettings.insert(
                id=1, excluded_statuses=list(DEFAULT_EXCLUDED), updated_at=utcnow()
            ).on_conflict_ignore().execute()
        row = RfmSettings.get_by_id(1)
    return row


def today(tz=None):
    """Today's date in the account time zone."""
    return datetime.datetime.now(_zone(tz)).date()


def _zone(tz=None):
    try:
        return zoneinfo.ZoneInfo(tz or app_settings.tz())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


def order_statuses():
    """The order statuses present, as (folded, as written), in folded order.

    Walks the (status_ci, customer) index one status at a time: a handful of
    index seeks instead of a scan of every order.
    """
    found, last = [], None
    while True:
        query = Order.select(Order.status_ci).where(Order.status_ci.is_null(False))
        if last is not None:
            query = query.where(Order.status_ci > last)
        last = query.order_by(Order.status_ci).limit(1).scalar()
        if last is None:
            return found
        shown = Order.select(Order.status).where(Order.status_ci == last).limit(1).scalar()
        found.append((last, shown or last))


def _cuts(raw, name, label, *, kind, errors):
    """Four increasing cut points from text (or numbers); None on error."""
    values = list(raw or [])
    if len(values) != 4 or any(v is None or str(v).strip() == "" for v in values):
        errors[name] = [_("%(what)s: enter all four cut points.", what=label)]
        return None
    parsed = []
    for position, value in enumerate(values, 1):
        text = str(value).strip().replace(" ", "").replace("\u00a0", "")
        try:
            if kind == "money":
                from ..values import parse_money_cents

                number = parse_money_cents(text.replace(",", "."))
            elif WHOLE.match(text):
                number = int(text)
            else:
                raise ValueError(text)
        except (ValueError, ArithmeticError):
            if kind == "money":
                message = _(
                    "%(what)s: cut point %(n)s, “%(text)s”, is not a whole number or an amount with up to two decimals.",
                    what=label,
                    n=position,
                    text=value,
                )
            else:
                message = _(
                    "%(what)s: cut point %(n)s, “%(text)s”, is not a whole number.", what=label, n=position, text=value
                )
            errors[name] = [message]
            return None
        minimum = 1 if kind == "orders" else 0
        if number < minimum:
            errors[name] = [
                _("%(what)s: cut point %(n)s must be at least %(min)s.", what=label, n=position, min=minimum)
            ]
            return None
        parsed.append(number)
    if any(b <= a for a, b in zip(parsed, parsed[1:])):
        errors[name] = [
            _(
                "%(what)s: each cut point must be greater than the one before (got %(values)s).",
                what=label,
                values=", ".join(str(v).strip() for v in values),
            )
        ]
        return None
    return parsed


def clean_settings(data, *, tz=None):
    """Check settings from a form or dict; returns the fields to store.

    `data`: method, monetary, r_cuts/f_cuts/m_cuts (four texts each; money
    in currency units), excluded_statuses (statuses as written), as_of
    (YYYY-MM-DD or empty for today). Raises RfmSettingsError.
    """
    errors = {}
    method = (data.get("method") or "quintiles").strip()
    if method not in RFM_METHODS:
        errors["method"] = [_("Choose quintiles or thresholds.")]
    monetary = (data.get("monetary") or "total").strip()
    if monetary not in RFM_MONETARY:
        errors["monetary"] = [_("Choose total spent or average order value.")]
    cuts = {"r": None, "f": None, "m": None}
    if method == "thresholds":
        cuts["r"] = _cuts(data.get("r_cuts"), "r_cuts", _("Recency (days)"), kind="days", errors=errors)
        cuts["f"] = _cuts(data.get("f_cuts"), "f_cuts", _("Frequency (orders)"), kind="orders", errors=errors)
        cuts["m"] = _cuts(data.get("m_cuts"), "m_cuts", _("Monetary"), kind="money", errors=errors)
    as_of = None
    text = data.get("as_of") or ""
    text = text.strip() if isinstance(text, str) else text
    if text:
        try:
            as_of = text if isinstance(text, datetime.date) else datetime.date.fromisoformat(text)
        except ValueError:
            errors["as_of"] = [_("“%(text)s” is not a date: use YYYY-MM-DD, or leave it empty for today.", text=text)]
        else:
            if as_of > today(tz):
                errors["as_of"] = [
                    _(
                        "The as-of date %(date)s is in the future: orders after today are not known yet.",
                        date=as_of.isoformat(),
                    )
                ]
    excluded = sorted({fold(s) for s in (data.get("excluded_statuses") or ()) if fold(s)})
    if errors:
        raise RfmSettingsError(errors)
    return {
        "method": method,
        "monetary": monetary,
        "r_cuts": cuts["r"],
        "f_cuts": cuts["f"],
        "m_cuts": cuts["m"],
        "excluded_statuses": excluded,
        "as_of": as_of,
    }


def save_settings(data, *, user=None, tz=None):
    """Check and store the settings; returns the row. Raises RfmSettingsError."""
    fields = clean_settings(data, tz=tz)
    row = get_settings()
    if fields["method"] == "quintiles":
        # keep the last thresholds, so switching back does not lose them
        for key in ("r_cuts", "f_cuts", "m_cuts"):
            fields[key] = getattr(row, key)
    RfmSettings.update(updated_at=utcnow(), updated_by=user, **fields).where(RfmSettings.id == 1).execute()
    audit.record(user, "settings.rfm", row, {"method": fields["method"]})
    return RfmSettings.get_by_id(1)


def config_from(row, tz=None):
    """The settings a computation uses, as plain JSON (as_of resolved)."""
    return {
        "method": row.method,
        "monetary": row.monetary,
        "r_cuts": row.r_cuts or DEFAULT_CUTS["r"],
        "f_cuts": row.f_cuts or DEFAULT_CUTS["f"],
        "m_cuts": row.m_cuts or DEFAULT_CUTS["m"],
        "excluded_statuses": list(row.excluded_statuses or ()),
        "as_of": (row.as_of or today(tz)).isoformat(),
    }


# --- computing scores ------------------------------------------------------------


def _bounds(as_of, tz=None):
    """(end of the as-of day as naive UTC, the zone's UTC offset in minutes then)."""
    zone = _zone(tz)
    end = datetime.datetime.combine(as_of + datetime.timedelta(days=1), datetime.time(), tzinfo=zone)
    offset = int(end.utcoffset().total_seconds() // 60)
    return end.astimezone(datetime.UTC).replace(tzinfo=None), offset


def _score_case(column, cuts, p, *, lower_is_better):
    """A CASE giving 1-5 from four cut points (as parameters)."""
    sign, cuts = ("<=", list(cuts)) if lower_is_better else (">=", list(reversed(cuts)))
    whens = " ".join(f"WHEN {column} {sign} CAST({p} AS BIGINT) THEN {5 - i}" for i in range(4))
    return f"CASE {whens} ELSE 1 END", cuts


def compute(config, *, now=None, tz=None, on_progress=None):
    """Compute scores with `config` (see config_from) and replace the stored ones.

    One transaction. Returns (scored customers, customers without scores).
    `on_progress(step, label)` is called at each step (STEPS in all).
    """
    progress = on_progress or (lambda step, label: None)
    pg = is_postgres()
    p = param()
    as_of = datetime.date.fromisoformat(config["as_of"])
    end, offset = _bounds(as_of, tz)
    computed_at = now or utcnow()
    excluded = [fold(s) for s in config.get("excluded_statuses") or ()]
    bigint = key_type()
    if pg:
        recency = f"({p}::date - (MAX(o.ordered_at) + {p} * interval '1 minute')::date)"
        recency_params = [bind(as_of), offset]
        average = "CAST(DIV(SUM(o.total_cents), COUNT(*)) AS BIGINT)"
    else:
        recency = f"CAST(julianday({p}) - julianday(date(MAX(o.ordered_at), {p})) AS INTEGER)"
        recency_params = [bind(as_of), f"{offset:+d} minutes"]
        average = "SUM(o.total_cents) / COUNT(*)"
    monetary = average if config["monetary"] == "average" else "SUM(o.total_cents)"
    # SQLite: "+" keeps the as-of bound off the (customer, ordered_at) index, which
    # it would otherwise skip-scan customer by customer (measured slower).
    where, where_params = f"{'' if pg else '+'}o.ordered_at < {p}", [bind(end)]
    if excluded:
        where += f" AND (o.status_ci IS NULL OR o.status_ci NOT IN ({placeholders(len(excluded))}))"
        where_params += excluded
    db = database
    with db.atomic(), contextlib.ExitStack() as tables:
        progress(1, _("Adding up orders"))
        tables.enter_context(
            temporary_table(
                "rfm_agg",
                f"customer_id {bigint} PRIMARY KEY, recency_days INTEGER, frequency INTEGER, monetary_cents {bigint}",
            )
        )
        db.execute_sql(
            f"INSERT INTO rfm_agg (customer_id, recency_days, frequency, monetary_cents) "
            f"SELECT o.customer_id, {recency}, COUNT(*), {monetary} FROM orders o "
            f"WHERE {where} GROUP BY o.customer_id",
            recency_params + where_params,
        )
        scored = db.execute_sql("SELECT COUNT(*) FROM rfm_agg").fetchone()[0]
        progress(2, _("Scoring"))
        if config["method"] == "quintiles":
            # One row per distinct value with its score: W (strictly worse
            # values) is the running count before the value's own group.
            for table, column, order in (
                ("rfm_lr", "recency_days", "DESC"),
                ("rfm_lf", "frequency", "ASC"),
                ("rfm_lm", "monetary_cents", "ASC"),
            ):
                tables.enter_context(temporary_table(table, f"v {bigint} PRIMARY KEY, score INTEGER"))
                db.execute_sql(
                    f"INSERT INTO {table} (v, score) SELECT v, 1 + (5 * (CAST(SUM(c) OVER (ORDER BY v {order}) "
                    f"AS BIGINT) - c)) / CAST({p} AS BIGINT) FROM (SELECT {column} AS v, COUNT(*) AS c "
                    f"FROM rfm_agg GROUP BY {column}) g",
                    (max(scored, 1),),
                )
            scores = "lr.score, lf.score, lm.score"
            joins = (
                "JOIN rfm_lr lr ON lr.v = a.recency_days JOIN rfm_lf lf ON lf.v = a.frequency "
                "JOIN rfm_lm lm ON lm.v = a.monetary_cents"
            )
            score_params = []
        else:
            parts, score_params = [], []
            for column, cuts, lower in (
                ("a.recency_days", config["r_cuts"], True),
                ("a.frequency", config["f_cuts"], False),
                ("a.monetary_cents", config["m_cuts"], False),
            ):
                sql, params = _score_case(column, cuts, p, lower_is_better=lower)
                parts.append(sql)
                score_params += params
            scores, joins = ", ".join(parts), ""
        progress(3, _("Storing scores"))
        db.execute_sql("DELETE FROM rfm_score")
        db.execute_sql(
            f"INSERT INTO rfm_score (customer_id, r, f, m, recency_days, frequency, monetary_cents, as_of, "
            f"computed_at) SELECT a.customer_id, {scores}, a.recency_days, a.frequency, a.monetary_cents, "
            f"{p}, {p} FROM rfm_agg a {joins}",
            score_params + [bind(as_of), bind(computed_at)],
        )
        db.execute_sql("DELETE FROM rfm_cell")
        # read from the (r, f, monetary_cents) index alone, in its order: no sort
        db.execute_sql(
            "INSERT INTO rfm_cell (r, f, customers, monetary_cents) "
            "SELECT r, f, COUNT(*), SUM(monetary_cents) FROM rfm_score GROUP BY r, f"
        )
        total = Customer.select().count()
    return scored, total - scored


STEPS = 3 + 1  # compute's steps, then the class and score segments


# --- the named classes -----------------------------------------------------------


def _class_specs():
    """(key, code, name, in analytics) of the class segments, named in the current language
    (the account's when a job or the CLI creates them)."""
    return [(key, rfm_code(key), _(name), True) for key, name, _cells in CLASSES]


def _score_specs():
    """(key, code, name, in analytics) of the score segments: fifteen segments would
    crowd the analytics picker, so they are not offered there."""
    return [(score_key(x, n), rfm_code(x, n), score_name(x, n), False) for x in RFM_LETTERS for n in RFM_SCORES]


def _ensure(specs):
    """Create the segments of `specs` that are missing (dynamic system segments with
    source "rfm" whose members are stored, not evaluated); returns them all by key."""
    from ..segments.service import membership_definition

    existing = {s.code: s for s in Segment.select().where(Segment.code.in_([code for _k, code, _n, _a in specs]))}
    found = {}
    for key, code, name, in_analytics in specs:
        found[key] = existing.get(code) or Segment.create(
            code=code,
            name=name,
            type="dynamic",
            active=True,
            system=True,
            in_analytics=in_analytics,
            source=SOURCE,
            # like a list segment's: evaluating it gives exactly the stored members
            definition=membership_definition(code),
        )
    return found


def ensure_class_segments():
    """Create the RFM class segments that are missing; returns them all by key."""
    return _ensure(_class_specs())


def class_query(key):
    """The customers of a class: a query on the stored scores."""
    cells = next(c for k, _n, c in CLASSES if k == key)
    by_r = {}
    for r, f in cells:
        by_r.setdefault(r, []).append(f)
    condition = None
    for r, fs in sorted(by_r.items()):
        part = (RfmScore.r == r) & RfmScore.f.in_(sorted(fs))
        condition = part if condition is None else (condition | part)
    # Not joined to customer (that costs a row lookup per member, 4 s CPU at
    # 1M): the scores come from orders, which go with their customer, and the
    # classes are refreshed right after the scores are computed.
    return RfmScore.select(RfmScore.customer).where(condition)


def score_key(letter, score):
    """The key of a score segment in refresh_segments' result: "r5"."""
    return f"{letter}{score}"


def score_name(letter, score):
    # stored like the classes' names; R, F and M read the same in every language
    return f"RFM: {letter.upper()}{score}"


def score_query(letter, score):
    """The customers whose `letter` (r, f or m) score is `score`: a query on the stored scores."""
    return RfmScore.select(RfmScore.customer).where(getattr(RfmScore, letter) == score)


def refresh_segments(*, at=None):
    """Set every class and score segment's members from the stored scores, in
    one transaction: entries and exits logged (triggers fire on them), sizes and
    a run recorded per segment. Returns {key: (entered, exited, size)}, keyed by
    class ("champions") and by score ("r5")."""
    at = at or utcnow()
    result, changed = {}, []
    segments = _ensure(_class_specs() + _score_specs())
    queries = {key: class_query(key) for key, _name, _cells in CLASSES}
    queries |= {score_key(x, n): score_query(x, n) for x in RFM_LETTERS for n in RFM_SCORES}
    with database.atomic():
        for key, segment in segments.items():
            if not segment.active:
                continue  # paused by a user: inactive segments are never recomputed
            result[key] = _refresh(segment, queries[key], at)
            if result[key][0] or result[key][1]:
                changed.append(segment)
    _request_dependants(changed)
    return result


def _refresh(segment, query, at):
    from ..segments.runs import apply_members

    run = SegmentRun.create(segment=segment.id, trigger="rfm", status="running", at=at, started_at=at, attempts=1)
    entered, exited, size = apply_members(segment.id, query, at=at, run_id=run.id)
    finished = utcnow()
    SegmentSize.create(segment=segment.id, at=finished, size=size)
    Segment.update(size=size, computed_at=finished).where(Segment.id == segment.id).execute()
    (
        SegmentRun.update(status="done", size=size, entered=entered, exited=exited, finished_at=finished)
        .where(SegmentRun.id == run.id)
        .execute()
    )
    return entered, exited, size


def _request_dependants(segments):
    """Queue the dynamic segments that read a class whose members changed."""
    from redis.exceptions import RedisError

    from ..segments.runs import request_dependants as request

    for segment in segments:
        try:
            request(segment)
        except (RedisError, RuntimeError):
            # their runs are recorded as queued: the scheduler queues them again
            log.warning("could not queue segments reading %s", segment.code, exc_info=True)


# --- runs ------------------------------------------------------------------------


def active_run():
    return RfmRun.select().where(RfmRun.status.in_(("queued", "running"))).order_by(RfmRun.id.desc()).first()


def last_done_run():
    return RfmRun.select().where(RfmRun.status == "done").order_by(RfmRun.id.desc()).first()


def last_run():
    return RfmRun.select().order_by(RfmRun.id.desc()).first()


def create_run(*, trigger="user", user=None, tz=None):
    """A queued run with the current settings."""
    config = config_from(get_settings(), tz)
    return RfmRun.create(
        trigger=trigger, config=config, as_of=datetime.date.fromisoformat(config["as_of"]), requested_by=user
    )


def execute_run(run_id, *, tz=None, on_progress=None):
    """Compute run `run_id` now, in this process, then refresh the class and score segments.

    Idempotent: a run that is done is left alone; a failed or interrupted one
    computes again from the start (the scores are replaced as a whole).
    """
    run = RfmRun.get_or_none(RfmRun.id == run_id)
    if run is None or run.status == "done":
        return run
    RfmRun.update(status="running", started_at=utcnow(), error=None).where(RfmRun.id == run.id).execute()
    progress = on_progress or (lambda step, label: None)
    try:
        scored, unscored = compute(run.config, tz=tz, on_progress=progress)
        progress(4, _("Updating the RFM class and score segments"))
        refresh_segments()
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the run
        log.exception("RFM run %s failed", run.id)
        (
            RfmRun.update(status="failed", error=f"{type(exc).__name__}: {exc}", finished_at=utcnow())
            .where(RfmRun.id == run.id)
            .execute()
        )
        raise
    (
        RfmRun.update(status="done", scored=scored, unscored=unscored, finished_at=utcnow())
        .where(RfmRun.id == run.id)
        .execute()
    )
    return RfmRun.get_by_id(run.id)


def compute_now(*, trigger="demo", tz=None):
    """Compute RFM with the current settings in this process (the launcher
    calls it after loading demo data, so the grid is not empty)."""
    run = create_run(trigger=trigger, tz=tz)
    return execute_run(run.id, tz=tz)


# --- reading results ---------------------------------------------------------------


def grid():
    """The R×F grid of the last computation: rows R 5..1, columns F 1..5, each
    cell {r, f, customers, share, avg_monetary_cents, klass}; with totals."""
    cells = {(c.r, c.f): c for c in RfmCell.select()}
    total = sum(c.customers for c in cells.values())
    biggest = max([c.customers for c in cells.values()] or [0])
    rows = []
    for r in reversed(SCORES):
        row = []
        for f in SCORES:
            cell = cells.get((r, f))
            count = cell.customers if cell else 0
            row.append(
                {
                    "r": r,
                    "f": f,
                    "customers": count,
                    "share": (count / total) if total else 0.0,
                    "avg_monetary_cents": (cell.monetary_cents // cell.customers) if cell and cell.customers else None,
                    "heat": (count / biggest) if biggest else 0.0,
                    "klass": class_of(r, f),
                }
            )
        rows.append({"r": r, "cells": row})
    return {"rows": rows, "total": total}


def cell_customers(r, f, offset, limit):
    """A page of the customers in an R×F cell with their values, biggest
    spenders first (the order of the (r, f, monetary_cents) index)."""
    query = (
        RfmScore.select(RfmScore, Customer)
        .join(Customer, on=(RfmScore.customer == Customer.id))
        .where(RfmScore.r == r, RfmScore.f == f)
        .order_by(RfmScore.monetary_cents.desc(), RfmScore.customer.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(query)


def cell_count(r, f):
    cell = RfmCell.get_or_none(RfmCell.r == r, RfmCell.f == f)
    return cell.customers if cell else 0


def segments_by_code():
    """The class and score segments by code: what class_sizes and score_sizes read (one query)."""
    return {s.code: s for s in Segment.select().where(Segment.source == SOURCE)}


def class_sizes(by_code):
    """[(key, label, segment or None)] in CLASSES order; `by_code`: segments_by_code()."""
    return [(key, class_label(key), by_code.get(rfm_code(key)), cells) for key, _n, cells in CLASSES]


def score_sizes(by_code):
    """[(letter, [(score, segment or None)])] for R, F and M, scores 5..1; `by_code`: segments_by_code()."""
    return [
        (letter.upper(), [(n, by_code.get(rfm_code(letter, n))) for n in reversed(RFM_SCORES)])
        for letter in RFM_LETTERS
    ]
