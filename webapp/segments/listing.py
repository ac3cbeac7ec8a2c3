"""The segment list (filters, sorting, paging), sparklines, run status, history.

Everything a list page needs is read in a fixed number of queries whatever
the number of segments: the page of segments with their creators, the last
size points of just those segments (one UNION ALL of index seeks), and their
latest runs.
"""

import dataclasses
import datetime
from dataclasses import dataclass

import peewee as pw

from .. import localtime, settings
from ..charts import sparkline
from ..db import database
from ..models import Customer, Segment, SegmentChange, SegmentMember, SegmentRun, SegmentSize, User, utcnow
from ..pagination import Page
from ..sql import param
from ..text import fold
from .figures import figures_of
from .system import is_rfm_score

SORTS = {
    "name": lambda: [pw.fn.LOWER(Segment.name)],
    "code": lambda: [Segment.code],
    "type": lambda: [Segment.type, pw.fn.LOWER(Segment.name)],
    "size": lambda: [pw.fn.COALESCE(Segment.size, -1)],
    "computed": lambda: [pw.fn.COALESCE(Segment.computed_at, datetime.datetime(1970, 1, 1))],
    "created": lambda: [Segment.created_at],
}
DEFAULT_SORT = ("created", "desc")
SPARK_POINTS = 30


def zone():
    """The account time zone of this app."""
    return localtime.zone(settings.tz())


def local_day_start(day):
    """Naive UTC instant of the start of `day` in the account time zone."""
    return localtime.day_start(day, zone())


@dataclass
class ListFilters:
    q: str = ""
    type: str = ""
    active: str = ""
    size_min: int = None
    size_max: int = None
    created_from: datetime.date = None
    created_to: datetime.date = None
    sort: str = DEFAULT_SORT[0]
    direction: str = DEFAULT_SORT[1]
    scores: bool = False  # list the RFM score segments too (fifteen rows, hidden unless asked for)

    @classmethod
    def from_args(cls, args):
        def number(name):
            text = (args.get(name) or "").replace(" ", "").replace(",", "")
            try:
                return max(0, int(text)) if text else None
            except ValueError:
                return None

        def date(name):
            try:
                return datetime.date.fromisoformat((args.get(name) or "").strip())
            except ValueError:
                return None

        sort = args.get("sort") or DEFAULT_SORT[0]
        if sort not in SORTS:
            sort = DEFAULT_SORT[0]
        direction = (
            args.get("dir")
            if args.get("dir") in ("asc", "desc")
            else (DEFAULT_SORT[1] if sort == DEFAULT_SORT[0] else "asc")
        )
        return cls(
            q=(args.get("q") or "").strip()[:200],
            type=args.get("type") if args.get("type") in ("static", "dynamic") else "",
            active=args.get("active") if args.get("active") in ("yes", "no") else "",
            size_min=number("size_min"),
            size_max=number("size_max"),
            created_from=date("created_from"),
            created_to=date("created_to"),
            sort=sort,
            direction=direction,
            scores=args.get("scores") == "1",
        )

    @property
    def any(self):
        return bool(
            self.q
            or self.type
            or self.active
            or self.size_min is not None
            or self.size_max is not None
            or self.created_from
            or self.created_to
        )

    def args(self, **changes):
        """Query args of these filters (for links), with `changes`."""
        values = {
            "q": self.q,
            "type": self.type,
            "active": self.active,
            "size_min": self.size_min,
            "size_max": self.size_max,
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
            "sort": self.sort,
            "dir": self.direction,
            "scores": "1" if self.scores else None,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "")}


def _name_matches(q):
    """Ids of segments whose name or code contains `q`, folded in every alphabet.

    Segment names have no folded twin; a few thousand rows compare in Python
    faster than a LIKE that folds only ASCII.
    """
    text = fold(q)
    return [
        sid
        for sid, name, code in Segment.select(Segment.id, Segment.name, Segment.code).tuples()
        if text in (fold(name) or "") or text in code.casefold()
    ]


def segment_query(filters):
    query = Segment.select()
    conditions = []
    if filters.q:
        conditions.append(Segment.id.in_(_name_matches(filters.q)))
    if filters.type:
        conditions.append(Segment.type == filters.type)
    if filters.active:
        conditions.append(Segment.active == (filters.active == "yes"))
    if filters.size_min is not None:
        conditions.append(Segment.size >= filters.size_min)
    if filters.size_max is not None:
        conditions.append(Segment.size <= filters.size_max)
    if filters.created_from:
        conditions.append(Segment.created_at >= local_day_start(filters.created_from))
    if filters.created_to:
        conditions.append(Segment.created_at < local_day_start(filters.created_to + datetime.timedelta(days=1)))
    if not filters.scores:
        conditions.append(~is_rfm_score())
    if conditions:
        query = query.where(*conditions)
    return query


def hidden_scores(filters):
    """How many RFM score segments the other filters match but the list leaves out (0 when shown)."""
    if filters.scores:
        return 0
    shown = dataclasses.replace(filters, scores=True)
    return segment_query(shown).where(is_rfm_score()).count()


def list_segments(filters, page_number, per_page):
    """A Page of segments with `.creator`, `.points` (sizes, oldest first), `.last_run`
    and `.figures` (see webapp.segments.figures; None before the first computation)."""
    base = segment_query(filters)
    page = Page(page_number, per_page, base.count())
    order = SORTS[filters.sort]()
    if filters.direction == "desc":
        order = [o.desc() for o in order] + [Segment.id.desc()]
    else:
        order = [o.asc() for o in order] + [Segment.id.asc()]
    creator = User.alias("creator")
    # only what a row shows: no definition to decode, no lock columns
    rows = list(
        base.select(
            Segment.id,
            Segment.code,
            Segment.name,
            Segment.type,
            Segment.active,
            Segment.system,
            Segment.in_analytics,
            Segment.size,
            Segment.computed_at,
            Segment.created_at,
            Segment.source,
            creator.name.alias("creator_name"),
            creator.email.alias("creator_email"),
        )
        .join(creator, pw.JOIN.LEFT_OUTER, on=(Segment.created_by == creator.id))
        .order_by(*order)
        .limit(per_page)
        .offset(page.offset)
        .objects()
    )
    ids = [s.id for s in rows]
    points = size_points(ids, SPARK_POINTS)
    runs = latest_runs(ids)
    figures = figures_of(rows)
    tz = zone()
    for segment in rows:
        segment.figures = figures.get(segment.id)
        segment.points = points.get(segment.id, [])
        segment.spark = sparkline(segment.points)
        segment.last_run = runs.get(segment.id)
        # dates in the account time zone, formatted here once (a page has 50 rows)
        segment.created_local = _local(segment.created_at, tz)
        segment.computed_local = _local(segment.computed_at, tz)
    page.rows = rows
    return page


def _local(value, tz):
    if value is None:
        return None
    return value.replace(tzinfo=datetime.UTC).astimezone(tz)


def size_points(segment_ids, limit):
    """{segment id: [size, ...] oldest first}: the last `limit` sizes of each, in one statement
    (a UNION ALL of index seeks on (segment_id, at), whatever the length of the history)."""
    if not segment_ids:
        return {}
    p = param()
    part = (
        f'SELECT * FROM (SELECT segment_id, "at", size FROM segment_size WHERE segment_id = {p} '
        f'ORDER BY "at" DESC LIMIT {int(limit)}) AS s'
    )
    sql = " UNION ALL ".join(f"{part}{n}" for n in range(len(segment_ids)))
    result = {}
    for segment_id, _at, size in database.execute_sql(sql, list(segment_ids)).fetchall():
        result.setdefault(segment_id, []).append(size)  # newest first
    for values in result.values():
        values.reverse()
    return result


def latest_runs(segment_ids):
    """{segment id: its latest SegmentRun (id, status, error)}."""
    if not segment_ids:
        return {}
    latest = (
        SegmentRun.select(pw.fn.MAX(SegmentRun.id))
        .where(SegmentRun.segment.in_(segment_ids))
        .group_by(SegmentRun.segment)
    )
    return {
        run.segment_id: run
        for run in SegmentRun.select(SegmentRun.id, SegmentRun.segment, SegmentRun.status, SegmentRun.error).where(
            SegmentRun.id.in_(latest)
        )
    }


# --- size chart points (drawn by webapp.charts) ----------------------------------------


def chart_points(segment_id, days=90, max_points=240):
    """Size points of the last `days` days (thinned to about `max_points`, keeping the last)."""
    since = utcnow() - datetime.timedelta(days=days)
    points = [
        (at, size)
        for at, size in SegmentSize.select(SegmentSize.at, SegmentSize.size)
        .where(SegmentSize.segment == segment_id, SegmentSize.at >= since)
        .order_by(SegmentSize.at)
        .tuples()
    ]
    if len(points) > max_points:
        step = len(points) / max_points
        thinned = [points[int(n * step)] for n in range(max_points)]
        if thinned[-1] != points[-1]:
            thinned.append(points[-1])
        points = thinned
    return points


# --- entries and exits ----------------------------------------------------------------


def changes_by_day(segment_id, page_number, per_page=30):
    """A Page of (day, entered, exited), newest day first, over the whole log.

    Days are local days of the account time zone, exact across clock changes
    (see webapp.localtime): the log is grouped by quarter-hour in SQL and the
    buckets are folded into days here.
    """
    bucket = localtime.quarter_hours(SegmentChange.at)
    rows = (
        SegmentChange.select(
            bucket,
            pw.fn.SUM(pw.Case(None, [(SegmentChange.change == "entered", 1)], 0)),
            pw.fn.SUM(pw.Case(None, [(SegmentChange.change == "exited", 1)], 0)),
        )
        .where(SegmentChange.segment == segment_id)
        .group_by(pw.SQL("1"))
        .tuples()
    )
    tz = zone()
    days = {}
    for quarter, entered, exited in rows:
        day = localtime.day_of_quarter(quarter, tz)
        have = days.get(day, (0, 0))
        days[day] = (have[0] + int(entered or 0), have[1] + int(exited or 0))
    page = Page(page_number, per_page, len(days))
    newest_first = sorted(days, reverse=True)[page.offset : page.offset + per_page]
    page.rows = [(day, *days[day]) for day in newest_first]
    return page


def changes_on(segment_id, day, limit=100):
    """Entries and exits of one local day: [(change, Customer, at)], newest first, and the total."""
    start = local_day_start(day)
    end = local_day_start(day + datetime.timedelta(days=1))
    query = (
        SegmentChange.select(SegmentChange, Customer)
        .join(Customer)
        .where(SegmentChange.segment == segment_id, SegmentChange.at >= start, SegmentChange.at < end)
    )
    total = query.count()
    return list(query.order_by(SegmentChange.at.desc(), SegmentChange.id.desc()).limit(limit)), total


def customer_history(customer_id, limit=20, offset=0):
    """A customer's segments now and their entries and exits, newest first."""
    member_of = list(
        Segment.select(Segment, SegmentMember.since.alias("since"))
        .join(SegmentMember)
        .where(SegmentMember.customer == customer_id)
        .order_by(Segment.name)
        .objects()
    )
    query = (
        SegmentChange.select(SegmentChange, Segment, User)
        .join(Segment)
        .switch(SegmentChange)
        .join(User, pw.JOIN.LEFT_OUTER, on=(SegmentChange.user == User.id))
        .where(SegmentChange.customer == customer_id)
    )
    total = query.count()
    changes = list(query.order_by(SegmentChange.at.desc(), SegmentChange.id.desc()).limit(limit).offset(offset))
    return {"member_of": member_of, "changes": changes, "total": total, "offset": offset, "limit": limit}


def members_sample(segment_id, limit=12):
    """A few members, newest customers first: read backwards along the (segment, customer)
    key, so a segment of a million members costs what a small one does."""
    members = (
        Customer.select(Customer, SegmentMember.since.alias("since"))
        .join(SegmentMember)
        .where(SegmentMember.segment == segment_id)
        .order_by(SegmentMember.customer.desc())
        .limit(limit)
        .objects()
    )
    return list(members)


def changes_today(limit=20):
    """[(segment, entered, exited)] of today's local day (account time zone), the
    busiest segments first, only those with a change today (the RFM score segments left out).

    One query whose cost follows the number of segments and runs, never the
    size of the log: a finished run's rows are counted by the totals it stored
    with them (`segment_run.entered`/`exited`, at the run's evaluation time,
    which is the `at` of every row it logged), and only the rows no run wrote
    (real-time re-checks, manual changes, list imports) are counted one by one,
    on the partial index that holds just them (migration 0023). A run's rows
    whose run was deleted lose their run_id and are counted as rows.
    """
    start = local_day_start(localtime.today(settings.tz()))

    def counted(change):
        run, sc = SegmentRun.alias(), SegmentChange.alias()
        by_runs = run.select(pw.fn.COALESCE(pw.fn.SUM(getattr(run, change)), 0)).where(
            (run.segment == Segment.id) & (run.status == "done") & (run.at >= start)
        )
        by_rows = sc.select(pw.fn.COUNT(pw.SQL("*"))).where(
            (sc.segment == Segment.id) & (sc.change == change) & (sc.at >= start) & sc.run.is_null()
        )
        return pw.Expression(by_runs, "+", by_rows)  # (`+` of two queries is UNION ALL in peewee)

    entered, exited = counted("entered").alias("entered_today"), counted("exited").alias("exited_today")
    # the RFM score segments move with every RFM run: their fifteen rows would crowd out the rest
    inner = Segment.select(Segment.id.alias("sid"), entered, exited).where(~is_rfm_score()).alias("t")
    rows = (
        Segment.select(Segment, inner.c.entered_today, inner.c.exited_today)
        .join(inner, on=(Segment.id == inner.c.sid))
        .where((inner.c.entered_today > 0) | (inner.c.exited_today > 0))
        .order_by((inner.c.entered_today + inner.c.exited_today).desc(), Segment.name)
        .limit(limit)
        .objects()
    )
    return [(s, s.entered_today, s.exited_today) for s in rows]
