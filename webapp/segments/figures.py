"""The figures a marketer decides with, for the segment list and page: members;
reachable by email and by SMS (`webapp.reach`, the rule mailings apply); share
of the base; share of the revenue of the last 12 months; average order value
over those months; the predicted value of the next 12 months where there are
predictions.

Read in two statements for all the segments of a page (members with their
reachability and predictions; their orders of the last 12 months through the
(customer, ordered_at, total_cents) index) and cached per computation in
`segment_figures`: a segment's row is read again when it was computed since
(its `computed_at` moved) or the row is older than MAX_AGE (consents and
orders change between runs). Row 0 is the whole base. Flask-free.
"""

import datetime
from dataclasses import dataclass

from ..db import database
from ..models import SegmentFigures, utcnow
from ..reach import reachable
from ..sql import bind, param, placeholders

REVENUE_DAYS = 365
MAX_AGE = datetime.timedelta(hours=1)
BASE = 0  # the segment_figures row of the whole base


@dataclass
class Figures:
    members: int
    email: int
    sms: int
    revenue_cents: int
    orders: int
    predicted: int
    clv: float  # summed predicted value (currency units); None without predictions
    base: "Figures" = None

    @property
    def aov_cents(self):
        return round(self.revenue_cents / self.orders) if self.orders else None

    @property
    def base_share(self):
        return self.members / self.base.members if self.base and self.base.members else None

    @property
    def revenue_share(self):
        return self.revenue_cents / self.base.revenue_cents if self.base and self.base.revenue_cents else None


FIELDS = ("members", "email", "sms", "revenue_cents", "orders", "predicted", "clv")


def _rows(segment_ids, since):
    """{segment id (BASE for the base): {field: value}} read now, in two statements."""
    p = param()
    # the base's orders through the customers too: the (customer, ordered_at, total_cents)
    # index answers without the table (by ordered_at alone SQLite reads every order row: 20x slower)
    members_from, revenue_from, key = "customer c", "customer c JOIN orders o ON o.customer_id = c.id", f"{BASE}"
    where, args = "", []
    if segment_ids:
        members_from = "segment_member sm JOIN customer c ON c.id = sm.customer_id"
        revenue_from = "segment_member sm JOIN orders o ON o.customer_id = sm.customer_id"
        where, args, key = (
            f"WHERE sm.segment_id IN ({placeholders(len(segment_ids))})",
            list(segment_ids),
            "sm.segment_id",
        )
    group = f"GROUP BY {key}" if segment_ids else ""
    found = {}
    sql = (
        f"SELECT {key}, COUNT(*), SUM(CASE WHEN {reachable('email')} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {reachable('sms')} THEN 1 ELSE 0 END), COUNT(cp.clv), SUM(cp.clv) "
        f"FROM {members_from} LEFT JOIN customer_prediction cp ON cp.customer_id = c.id {where} {group}"
    )
    for sid, members, email, sms, predicted, clv in database.execute_sql(sql, args).fetchall():
        found[int(sid)] = {
            "members": int(members),
            "email": int(email or 0),
            "sms": int(sms or 0),
            "predicted": int(predicted or 0),
            "clv": float(clv) if predicted else None,
            "revenue_cents": 0,
            "orders": 0,
        }
    since_condition = f"o.ordered_at >= {p}"
    sql = (
        f"SELECT {key}, SUM(o.total_cents), COUNT(*) FROM {revenue_from} "
        f"{where + ' AND ' if where else 'WHERE '}{since_condition} {group}"
    )
    for sid, cents, orders in database.execute_sql(sql, args + [bind(since)]).fetchall():
        if int(sid) in found:
            found[int(sid)].update(revenue_cents=int(cents or 0), orders=int(orders))
    return found


def _fresh(row, computed_for, now):
    return row is not None and row.computed_for == computed_for and now - row.at < MAX_AGE


def _store(values_by_id, computed_for, now):
    with database.atomic():
        SegmentFigures.delete().where(SegmentFigures.segment_id.in_(list(values_by_id))).execute()
        SegmentFigures.insert_many(
            [
                {"segment_id": sid, "computed_for": computed_for.get(sid), "at": now, **values}
                for sid, values in values_by_id.items()
            ]
        ).execute()


def figures_of(segments, now=None):
    """{segment id: Figures} for Segment rows (with `id` and `computed_at`); segments
    never computed have none. Stale or missing cache rows are read in one go."""
    now = now or utcnow()
    computed = {s.id: s.computed_at for s in segments if s.computed_at is not None}
    wanted = list(computed) + [BASE]
    cached = {row.segment_id: row for row in SegmentFigures.select().where(SegmentFigures.segment_id.in_(wanted))}
    computed_for = {**computed, BASE: None}
    stale = [sid for sid in wanted if not _fresh(cached.get(sid), computed_for[sid], now)]
    if stale:
        since = now - datetime.timedelta(days=REVENUE_DAYS)
        values = {}
        ids = [sid for sid in stale if sid != BASE]
        if ids:
            values.update(_rows(ids, since))
            for sid in ids:  # computed, and now empty
                values.setdefault(sid, {f: (None if f == "clv" else 0) for f in FIELDS})
        if BASE in stale:
            values[BASE] = _rows([], since)[BASE]
        _store(values, computed_for, now)
        cached.update(
            {row.segment_id: row for row in SegmentFigures.select().where(SegmentFigures.segment_id.in_(stale))}
        )
    base_row = cached[BASE]
    base = Figures(**{f: getattr(base_row, f) for f in FIELDS})
    return {sid: Figures(**{f: getattr(cached[sid], f) for f in FIELDS}, base=base) for sid in computed}


def figures_of_segment(segment):
    """The Figures of one segment (None before its first computation)."""
    return figures_of([segment]).get(segment.id)


def forget(segment_id):
    """Drop a segment's cached figures (its members changed by hand)."""
    SegmentFigures.delete().where(SegmentFigures.segment_id == segment_id).execute()
