"""Segment analytics: per segment and per period, size, revenue, orders, AOV and buyers share.

For the segments marked "available in analytics" (`Segment.in_analytics`).
Periods are whole days, weeks (Monday to Sunday) or calendar months of the
account time zone, from the one holding the range's first day to the one
holding its last; the current period runs up to now.

Which customers count, in the two modes:

- "history" (members at the time), reconstructed from the entry/exit log
  (`segment_change`): a customer is a member from an entry up to the next
  exit. (The log alternates per segment and customer: apply_members logs an
  entry only for a non-member and an exit only for a member; sizes count
  entries minus exits, which relies on it.) Members with no logged change at all (added by a list import) count
  from their `segment_member.since`.
  - size: members at the period's end (every change logged before it);
    for the current period, now.
  - orders, revenue: orders placed in the period by customers who were members
    when they placed them (entered at or before the order, not yet exited).
  - buyers: members at the period's end who placed such an order in the period.
  A segment's figures start with its history (`history_start`, the first
  logged change): periods that ended before it have no figures.
- "today" (today's members): the current members (`segment_member`) over
  every period, whatever their history: size is their number today, orders
  and revenue are all their orders in the period, buyers those of them who
  ordered in it. A segment created today has figures for the past too.

Then AOV = revenue / orders, rounded half up to the cent (none without
orders), and buyers share = buyers / size (none when size is 0).

The whole range is one more period (`total`): size at its end, every counted
order of the range, buyers counted once over the range.

Set work: one statement for sizes (the log counted per period), then one pass
per segment over its members' orders in the range, read along the index
orders (customer_id, ordered_at, total_cents) and grouped by period: the
period is a CASE over the exact UTC bounds (daylight saving time changes cut
days where the account time zone does); the range's orders and revenue are
summed from its periods. History mode first copies the membership intervals
of the chosen segments that overlap the range into an indexed temporary table.

Flask-free: the pages, the CSV export, the job (`jobs.py`, which also keeps
figures in Redis) and the bench call `plan()`, `compute()`, `fill()` or
`dashboard()`.
"""

import datetime
from dataclasses import dataclass, field

from ..db import database, is_postgres, snapshot
from ..i18n import N_
from ..models import Segment
from ..segments.system import rfm_score_of
from ..sql import bind, key_type, param, placeholders, temporary_table

GRAINS = ("day", "week", "month")
PRESETS = {"30d": ("day", 30), "12w": ("week", 12), "12m": ("month", 12)}
MODES = ("history", "today")
METRICS = ("size", "revenue", "orders", "aov", "share")
MAX_PERIODS = 400
MAX_SEGMENTS = 10
_EPOCH = datetime.datetime(1900, 1, 1)


# --- filters and periods -------------------------------------------------------------


@dataclass
class Filters:
    """What the dashboard shows; `errors` are messages (English, for _()) with their field."""

    segments: list = field(default_factory=list)  # codes; empty: every segment in analytics
    period: str = "30d"  # a PRESETS key or "custom"
    start: datetime.date = None  # custom range, inclusive
    end: datetime.date = None
    grain: str = ""  # "" (automatic: the preset's) or one of GRAINS
    mode: str = "history"
    metric: str = "revenue"  # the bar chart's
    errors: dict = field(default_factory=dict)
    mode_given: bool = True  # False: the user did not choose; plan() may show today's members

    @classmethod
    def from_args(cls, args):
        """From query args (anything with .get and .getlist, e.g. werkzeug's MultiDict)."""

        def date(name):
            text = (args.get(name) or "").strip()
            if not text:
                return None
            try:
                return datetime.date.fromisoformat(text)
            except ValueError:
                errors[name] = N_("Not a date: write it as YYYY-MM-DD.")
                return None

        errors = {}
        period = args.get("period") if args.get("period") in (*PRESETS, "custom") else "30d"
        filters = cls(
            segments=[c for c in dict.fromkeys(args.getlist("segment")) if c][:200],
            period=period,
            start=date("from"),
            end=date("to"),
            grain=args.get("grain") if args.get("grain") in GRAINS else "",
            mode=args.get("mode") if args.get("mode") in MODES else "history",
            metric=args.get("metric") if args.get("metric") in METRICS else "revenue",
            errors=errors,
            mode_given=args.get("mode") in MODES,
        )
        if period == "custom" and not errors:
            if not filters.start or not filters.end:
                errors["from" if not filters.start else "to"] = N_("Choose the first and the last day of the range.")
            elif filters.start > filters.end:
                errors["to"] = N_("The last day is before the first day.")
        return filters

    @property
    def effective_grain(self):
        return self.grain or (PRESETS[self.period][0] if self.period in PRESETS else "day")

    def args(self, **changes):
        """Query args of these filters (links, the CSV export), with `changes`."""
        values = {
            "segment": list(self.segments),
            "period": self.period,
            "from": self.start.isoformat() if self.period == "custom" and self.start else None,
            "to": self.end.isoformat() if self.period == "custom" and self.end else None,
            "grain": self.grain,
            "mode": self.mode,
            "metric": self.metric,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "", [])}


@dataclass
class Period:
    start: datetime.date  # local, inclusive
    end: datetime.date  # local, exclusive
    start_utc: datetime.datetime  # naive UTC bounds of the local days
    end_utc: datetime.datetime
    size_at: datetime.datetime  # the instant sizes are taken: the end, or now for the current period
    label: str
    current: bool = False  # holds now: its figures are still incomplete


def _bucket(day, grain):
    if grain == "week":
        return day - datetime.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _next(day, grain):
    if grain == "week":
        return day + datetime.timedelta(days=7)
    if grain == "month":
        return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return day + datetime.timedelta(days=1)


def _utc(day, tz):
    """Naive UTC instant of local midnight starting `day` in `tz`."""
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=tz)
    return start.astimezone(datetime.UTC).replace(tzinfo=None)


def date_range(filters, today):
    """(first day, last day) of the filters' range, local; the last is never after today."""
    if filters.period in PRESETS:
        grain, count = PRESETS[filters.period]
        if grain == "day":
            return today - datetime.timedelta(days=count - 1), today
        first = _bucket(today, grain)
        for _n in range(count - 1):
            first = _bucket(first - datetime.timedelta(days=1), grain)
        return first, today
    return filters.start, min(filters.end, today)


def periods(first, last, grain, tz, now):
    """The Periods holding the local days `first`..`last` (whole days, weeks or months)."""
    result = []
    day = _bucket(first, grain)
    while day <= last:
        following = _next(day, grain)
        start_utc, end_utc = _utc(day, tz), _utc(following, tz)
        label = day.strftime("%Y-%m") if grain == "month" else day.isoformat()
        result.append(
            Period(
                start=day,
                end=following,
                start_utc=start_utc,
                end_utc=end_utc,
                size_at=min(end_utc, now),
                label=label,
                current=start_utc <= now < end_utc,
            )
        )
        day = following
    return result


def count_periods(first, last, grain):
    first = _bucket(first, grain)
    if grain == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return (last - first).days // (7 if grain == "week" else 1) + 1


# --- figures ---------------------------------------------------------------------------


@dataclass
class Figures:
    """One segment over one period; `size` None: before the segment's history."""

    size: int = None
    revenue: int = 0  # cents
    orders: int = 0
    buyers: int = 0

    @property
    def available(self):
        return self.size is not None

    @property
    def aov(self):
        """Average order value in cents, rounded half up; None without orders."""
        if not self.available or not self.orders:
            return None
        return (2 * self.revenue + self.orders) // (2 * self.orders)

    @property
    def share(self):
        """Buyers / size, None when the size is 0 or unknown."""
        if not self.available or not self.size:
            return None
        return self.buyers / self.size

    def value(self, metric):
        if not self.available:
            return None
        return {
            "size": self.size,
            "revenue": self.revenue,
            "orders": self.orders,
            "aov": self.aov,
            "share": self.share,
        }[metric]


@dataclass
class SegmentFigures:
    segment: Segment
    index: int  # colour (chart series) of the segment
    history_start: datetime.datetime  # naive UTC; None: no history (history mode)
    periods: list  # Figures, one per dashboard period
    total: Figures


@dataclass
class Dashboard:
    filters: Filters
    first: datetime.date
    last: datetime.date
    grain: str
    periods: list
    segments: list  # SegmentFigures
    available: list  # every Segment in analytics (id, code, name, system)
    defaulted: bool = False  # no segment chosen: the first MAX_SEGMENTS in analytics are shown
    no_history: bool = False  # no chosen segment's entry/exit log reaches back to the range's start
    chosen: list = field(default_factory=list)  # the Segments shown
    zone: str = ""  # the account time zone's name


def analytics_segments():
    """The segments marked available in analytics, by name (sorted here: the same on both databases)."""
    segments = Segment.select(Segment.id, Segment.code, Segment.name, Segment.system, Segment.size).where(
        Segment.in_analytics == True
    )  # noqa: E712
    return sorted(segments, key=lambda s: (s.name.casefold(), s.id))


def default_segments(available):
    """The segments shown when none are chosen: the newest MAX_SEGMENTS of those available (a
    segment just marked "available in analytics" is among them), in the list's order. The RFM
    score segments are never among them (fifteen of them, made at the first RFM computation,
    would push the marketer's own segments out), even when someone made them available."""
    candidates = [s for s in available if rfm_score_of(s.code) is None]
    newest = {s.id for s in sorted(candidates, key=lambda s: s.id, reverse=True)[:MAX_SEGMENTS]}
    return [s for s in available if s.id in newest]


def dashboard(filters, tz, now, progress=None):
    """The Dashboard of `filters` (see the module docstring), or None when the filters have errors.

    `tz` is the account time zone, `now` a naive UTC datetime; `progress(done, total)` is called
    after each step (a few: sizes, the membership intervals, each segment's orders).
    """
    board = plan(filters, tz, now)
    if board is not None and board.chosen:
        compute(board, progress)
    return board


def plan(filters, tz, now):
    """The Dashboard of `filters` without figures (`chosen` segments, periods), or None when the
    filters have errors: what the figures are computed or looked up for."""
    today = now.replace(tzinfo=datetime.UTC).astimezone(tz).date()
    available = analytics_segments()
    if filters.errors:
        return None
    first, last = date_range(filters, today)
    grain = filters.effective_grain
    if first > last:
        filters.errors["from"] = N_("The range starts after today.")
        return None
    if count_periods(first, last, grain) > MAX_PERIODS:
        filters.errors["grain"] = N_("Too many periods: choose weeks or months, or a shorter range.")
        return None
    by_code = {s.code: s for s in available}
    chosen = [by_code[c] for c in filters.segments if c in by_code]
    defaulted = not chosen
    if defaulted:
        chosen = default_segments(available)
    return Dashboard(
        filters=filters,
        first=first,
        last=last,
        grain=grain,
        periods=periods(first, last, grain, tz, now),
        segments=[],
        available=available,
        defaulted=defaulted and len(chosen) < len(available),
        chosen=chosen[:MAX_SEGMENTS],
        zone=str(tz),
    )


def choose_default_mode(board):
    """Members at the time are known from the entry/exit log only: note on the
    board whether any chosen segment's log reaches back to the range's start
    (`no_history`), and when the user chose no mode and none does (new
    segments, a fresh install), show the segments' current members instead of
    empty figures."""
    if not board.chosen:
        return board
    starts = _first_logged([s.id for s in board.chosen])
    board.no_history = all(starts.get(s.id) is None or starts[s.id] > board.periods[0].start_utc for s in board.chosen)
    if board.no_history and not board.filters.mode_given:
        board.filters.mode = "today"
    return board


# Each segment's first logged change, one index seek per segment on
# (segment_id, at). `MIN("at") ... WHERE segment_id IN (...) GROUP BY segment_id`
# read every log row of the segments instead: 117 ms of the analytics page on
# the 1M demo (a million rows), against 0.1 ms.
_FIRST_CHANGE = 'SELECT s.id, (SELECT MIN(c."at") FROM segment_change c WHERE c.segment_id = s.id) FROM segment s'


def _first_logged(ids):
    """{segment id: its first logged change} (one index seek per segment); segments with none are left out."""
    rows = database.execute_sql(f"{_FIRST_CHANGE} WHERE s.id IN ({placeholders(len(ids))})", ids).fetchall()
    return {sid: datetime.datetime.fromisoformat(at) if isinstance(at, str) else at for sid, at in rows if at}


def compute(board, progress=None):
    """Fill `board.segments` from the database (one snapshot)."""
    spans, mode = board.periods, board.filters.mode
    whole = Period(
        start=spans[0].start,
        end=spans[-1].end,
        start_utc=spans[0].start_utc,
        end_utc=spans[-1].end_utc,
        size_at=spans[-1].size_at,
        label="",
    )
    ids = [s.id for s in board.chosen]
    steps = [0, len(ids) + (1 if mode == "today" else 2)]

    def step():
        steps[0] += 1
        if progress is not None:
            progress(*steps)

    with snapshot():  # one snapshot for every statement
        if mode == "today":
            sizes = _current_sizes(ids)
            history = {}
            step()
            orders = _orders_today(ids, spans, whole, step)
        else:
            history = _history_starts(ids)
            sizes = _history_sizes(ids, spans)
            step()
            orders = _orders_history(ids, spans, whole, step)
    figures = {}
    for sid in ids:
        rows = []
        for n, span in enumerate(spans):
            size = sizes.get(sid, 0) if mode == "today" else sizes.get(sid, [None] * len(spans))[n]
            if mode == "history" and (history.get(sid) is None or span.size_at <= history[sid]):
                size = None
            rows.append([size, *orders.get((sid, n), (0, 0, 0))] if size is not None else [None, 0, 0, 0])
        total = [rows[-1][0], *orders.get((sid, -1), (0, 0, 0))] if rows[-1][0] is not None else [None, 0, 0, 0]
        figures[str(sid)] = {
            "history_start": history[sid].isoformat() if history.get(sid) else None,
            "periods": rows,
            "total": total,
        }
    fill(board, figures)
    return figures


def fill(board, figures):
    """Set `board.segments` from `figures`, as `compute` returns them (plain JSON: cached)."""
    board.segments = []
    for index, segment in enumerate(board.chosen):
        item = figures[str(segment.id)]

        def make(size, revenue, orders, buyers):
            return Figures(size=size, revenue=revenue, orders=orders, buyers=buyers) if size is not None else Figures()

        start = item["history_start"]
        board.segments.append(
            SegmentFigures(
                segment=segment,
                index=index,
                history_start=datetime.datetime.fromisoformat(start) if start else None,
                periods=[make(*row) for row in item["periods"]],
                total=make(*item["total"]),
            )
        )


def cache_key(board):
    """What the figures of `board` depend on: "analytics:" + the database, mode, periods, time zone
    and chosen segments + "|" + a data version in three parts (the members' counts, the last order,
    the last logged change). An order changed in place leaves the version as it is: cached figures
    also expire (see `webapp.analytics.jobs`)."""
    ids = [s.id for s in board.chosen]
    ((orders,),) = database.execute_sql("SELECT MAX(id) FROM orders").fetchall()
    ((changes,),) = database.execute_sql("SELECT MAX(id) FROM segment_change").fetchall()
    sizes = _current_sizes(ids) if ids else {}  # list imports change members without logging
    # (sizes "now" in the current period move only with logged changes: now itself is not a part)
    parts = [
        str(database.database),
        board.filters.mode,
        board.grain,
        board.first.isoformat(),
        board.last.isoformat(),
        board.zone,
        ",".join(str(i) for i in ids),
        ",".join(str(sizes.get(i, 0)) for i in ids),
        f"o{orders}",
        f"c{changes}",
    ]
    return "analytics:" + "|".join(parts)


def work_estimate(board):
    """Member-days the figures read (members of the chosen segments times days in the range): about
    10 million a second on SQLite with 1M customers."""
    days = (board.periods[-1].end - board.periods[0].start).days if board.periods else 0
    ids = [s.id for s in board.chosen]
    return sum(_current_sizes(ids).values()) * days if ids else 0


# --- SQL -------------------------------------------------------------------------------


def _periods_cte(columns, rows):
    """`periods(columns)` as a VALUES list, and its parameters."""
    p = param()
    one = "(" + ", ".join([p] * len(columns)) + ")"
    cast = [f"CAST({p} AS TIMESTAMP)" if is_postgres() and c != "n" else p for c in columns]
    first = "(" + ", ".join(cast) + ")"  # PostgreSQL types the VALUES columns from the first row
    sql = f"periods ({', '.join(columns)}) AS (VALUES {first}{(', ' + one) * (len(rows) - 1)})"
    params = [bind(v) for row in rows for v in row]
    return sql, params


def _current_sizes(ids):
    marks = placeholders(len(ids))
    sql = f"SELECT segment_id, COUNT(*) FROM segment_member WHERE segment_id IN ({marks}) GROUP BY segment_id"
    return dict(database.execute_sql(sql, ids).fetchall())


def _history_starts(ids):
    """{segment id: first instant of its history}: its first logged change, or its first
    member without any logged change (list imports)."""
    marks = placeholders(len(ids))
    sql = (
        f"{_FIRST_CHANGE} WHERE s.id IN ({marks}) "
        f"UNION ALL "
        f"SELECT m.segment_id, MIN(m.since) FROM segment_member m WHERE m.segment_id IN ({marks}) "
        f"AND NOT EXISTS (SELECT 1 FROM segment_change c WHERE c.customer_id = m.customer_id "
        f"AND c.segment_id = m.segment_id) GROUP BY m.segment_id"
    )
    starts = {}
    for sid, at in database.execute_sql(sql, ids + ids).fetchall():
        if at is None:
            continue
        if isinstance(at, str):
            at = datetime.datetime.fromisoformat(at)
        starts[sid] = min(starts.get(sid, at), at)
    return starts


def _history_sizes(ids, spans):
    """{segment id: [size at each period's end]}: entries minus exits logged before it."""
    marks = placeholders(len(ids))
    lows = [_EPOCH] + [s.size_at for s in spans[:-1]]
    cte, params = _periods_cte(("n", "lo", "hi"), [(n, lo, s.size_at) for n, (lo, s) in enumerate(zip(lows, spans))])
    sql = (
        f"WITH {cte} "
        f"SELECT c.segment_id, p.n, SUM(CASE WHEN c.change = 'entered' THEN 1 ELSE -1 END) "
        f'FROM periods p JOIN segment_change c ON c."at" >= p.lo AND c."at" < p.hi '
        f"WHERE c.segment_id IN ({marks}) GROUP BY c.segment_id, p.n "
        f"UNION ALL "
        f"SELECT m.segment_id, p.n, COUNT(*) "
        f"FROM periods p JOIN segment_member m ON m.since >= p.lo AND m.since < p.hi "
        f"WHERE m.segment_id IN ({marks}) AND NOT EXISTS (SELECT 1 FROM segment_change c "
        f"WHERE c.customer_id = m.customer_id AND c.segment_id = m.segment_id) GROUP BY m.segment_id, p.n"
    )
    deltas = {}
    for sid, n, delta in database.execute_sql(sql, params + ids + ids).fetchall():
        deltas[(sid, n)] = deltas.get((sid, n), 0) + int(delta)
    sizes = {}
    for sid in ids:
        running, values = 0, []
        for n in range(len(spans)):
            running += deltas.get((sid, n), 0)
            values.append(running)
        sizes[sid] = values
    return sizes


def _period_case(column, spans, leaf):
    """SQL for the period holding `column` (an instant in the range), and its parameters: a CASE
    that halves the periods at each step (log2 comparisons per row, not one per period), each
    leaf `leaf(n)` -> (sql, params)."""
    p = param()

    def build(a, b):
        if b - a == 1:
            return leaf(a)
        mid = (a + b) // 2
        left, left_params = build(a, mid)
        right, right_params = build(mid, b)
        return (
            f"CASE WHEN {column} < {p} THEN {left} ELSE {right} END",
            [bind(spans[mid].start_utc)] + left_params + right_params,
        )

    return build(0, len(spans))


def _period_number(n):
    return str(int(n)), []


def _order_rows(sql, params_of, ids, spans, step):
    """{(segment id, period n or -1): (revenue, orders, buyers)}: `sql` run for each segment with
    `params_of(segment id)`, giving rows (segment, n, orders, revenue, buyers) per period plus one
    (segment, -1, 0, 0, buyers) for the range; `step()` after each segment."""
    rows = {}
    for sid in ids:
        rows.update(
            {
                (seg, n): (int(revenue or 0), int(count), int(buyers))
                for seg, n, count, revenue, buyers in database.execute_sql(sql, params_of(sid)).fetchall()
            }
        )
        # the whole range: orders and revenue summed from its periods
        _r, _c, buyers = rows.get((sid, -1), (0, 0, 0))
        figures = [rows.get((sid, n), (0, 0, 0)) for n in range(len(spans))]
        rows[(sid, -1)] = (sum(f[0] for f in figures), sum(f[1] for f in figures), buyers)
        step()
    return rows


def _orders_today(ids, spans, whole, step):
    """{(segment id, period n or -1): (revenue, orders, buyers)} of today's members.

    One pass a segment: each member's orders in the range read along the (customer_id,
    ordered_at, total_cents) index, bucketed by period; SQLite keeps the members outside
    (CROSS JOIN). Buyers over the range: one EXISTS per member."""
    p = param()
    bucket, bucket_params = _period_case("o.ordered_at", spans, _period_number)
    sql = (
        f"SELECT m.segment_id, {bucket}, COUNT(*), SUM(o.total_cents), COUNT(DISTINCT o.customer_id) "
        f"FROM segment_member m CROSS JOIN orders o "
        f"WHERE m.segment_id = {p} AND o.customer_id = m.customer_id "
        f"AND o.ordered_at >= {p} AND o.ordered_at < {p} GROUP BY 1, 2 "
        f"UNION ALL "
        f"SELECT m.segment_id, -1, 0, 0, COUNT(*) FROM segment_member m WHERE m.segment_id = {p} "
        f"AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = m.customer_id "
        f"AND o.ordered_at >= {p} AND o.ordered_at < {p}) GROUP BY m.segment_id"
    )
    bounds = [bind(whole.start_utc), bind(whole.end_utc)]
    return _order_rows(sql, lambda sid: bucket_params + [sid] + bounds + [sid] + bounds, ids, spans, step)


def _orders_history(ids, spans, whole, step):
    """{(segment id, period n or -1): (revenue, orders, buyers)} of members at the time.

    The membership intervals of the chosen segments that overlap the range go into a temporary
    table, clipped to the range (`lo_at`, `hi_at`), with what the buyers count needs: the start
    of the period holding the exit (`exit_period`; the range's end when the member is still in
    at its period's end) and whether the customer is back by the end of that period
    (`back_by_end`, a later interval). An order in an interval then counts its customer as a
    buyer of its period when it precedes `exit_period` or `back_by_end` is set: one pass over
    the intervals and their orders a segment, no lookup per order."""
    marks = placeholders(len(ids))
    p = param()
    big = key_type()
    db = database
    lo, hi = bind(whole.start_utc), bind(whole.end_utc)
    with temporary_table(
        "analytics_interval",
        f"segment_id {big}, customer_id {big}, since_at TIMESTAMP, "
        f"until_at TIMESTAMP, lo_at TIMESTAMP, hi_at TIMESTAMP, exit_period TIMESTAMP, "
        f"back_by_end INTEGER, earlier INTEGER",
    ):
        # membership intervals overlapping the range: each entry up to the next change, clipped;
        # an exit counts against the buyers of its period when it comes before the period's size
        # instant (its end, or now for the current one); later ones never do
        exit_start, exit_params = _period_case("log.until_at", spans, lambda n: (p, [bind(spans[n].start_utc)]))
        size_at, size_params = _period_case("log.until_at", spans, lambda n: (p, [bind(spans[n].size_at)]))
        db.execute_sql(
            f"INSERT INTO analytics_interval (segment_id, customer_id, since_at, until_at, lo_at, hi_at, "
            f"exit_period, back_by_end, earlier) "
            f"SELECT log.segment_id, log.customer_id, log.since_at, log.until_at, "
            f"CASE WHEN log.since_at > {p} THEN log.since_at ELSE {p} END, "
            f"CASE WHEN log.until_at IS NOT NULL AND log.until_at < {p} THEN log.until_at ELSE {p} END, "
            f"CASE WHEN log.until_at IS NOT NULL AND log.until_at < {p} AND log.until_at < {size_at} "
            f"THEN {exit_start} ELSE {p} END, 0, CASE WHEN log.exited_at > {p} THEN 1 ELSE 0 END FROM ("
            f'SELECT c.segment_id, c.customer_id, c.change, c."at" AS since_at, '
            f'LEAD(c."at") OVER member AS until_at, LAG(c."at") OVER member AS exited_at '
            f"FROM segment_change c WHERE c.segment_id IN ({marks}) "
            f'WINDOW member AS (PARTITION BY c.segment_id, c.customer_id ORDER BY c."at", c.id)) AS log '
            f"WHERE log.change = 'entered' AND log.since_at <= {p} "
            f"AND (log.until_at IS NULL OR log.until_at > {p}) "
            f"UNION ALL "
            f"SELECT m.segment_id, m.customer_id, m.since, CAST(NULL AS TIMESTAMP), "
            f"CASE WHEN m.since > {p} THEN m.since ELSE {p} END, {p}, {p}, 0, 0 FROM segment_member m "
            f"WHERE m.segment_id IN ({marks}) AND m.since <= {p} AND NOT EXISTS (SELECT 1 FROM segment_change c "
            f"WHERE c.customer_id = m.customer_id AND c.segment_id = m.segment_id)",
            [lo, lo, hi, hi, hi]
            + size_params
            + exit_params
            + [hi, lo]
            + ids
            + [hi, lo]
            + [lo, lo, hi, hi]
            + ids
            + [hi],
        )
        db.execute_sql("CREATE INDEX analytics_interval_member ON analytics_interval (segment_id, customer_id)")
        # back in the segment by the end of the period of the exit: rare (re-entries within a period)
        size_at, size_params = _period_case(
            "analytics_interval.until_at", spans, lambda n: (p, [bind(spans[n].size_at)])
        )
        db.execute_sql(
            f"UPDATE analytics_interval SET back_by_end = 1 WHERE exit_period < {p} AND EXISTS ("
            f"SELECT 1 FROM analytics_interval j WHERE j.customer_id = analytics_interval.customer_id "
            f"AND j.segment_id = analytics_interval.segment_id AND j.since_at > analytics_interval.since_at "
            f"AND j.since_at < {size_at} AND (j.until_at IS NULL OR j.until_at >= {size_at}))",
            [hi] + size_params + size_params,
        )
        if is_postgres():
            db.execute_sql("ANALYZE analytics_interval")
        step()
        bucket, bucket_params = _period_case("o.ordered_at", spans, _period_number)
        sql = (
            f"SELECT i.segment_id, {bucket}, COUNT(*), SUM(o.total_cents), "
            f"COUNT(DISTINCT CASE WHEN o.ordered_at < i.exit_period OR i.back_by_end = 1 "
            f"THEN o.customer_id END) "
            f"FROM analytics_interval i CROSS JOIN orders o "
            f"WHERE i.segment_id = {p} AND o.customer_id = i.customer_id AND o.ordered_at >= i.lo_at "
            f"AND o.ordered_at < i.hi_at GROUP BY 1, 2 "
            f"UNION ALL "
            # over the whole range: members at its end (an interval holding its size instant)
            # with a counted order in it
            # (one interval each: they do not overlap), in that interval or an earlier one
            f"SELECT i.segment_id, -1, 0, 0, COUNT(*) FROM analytics_interval i "
            f"WHERE i.segment_id = {p} AND i.since_at < {p} AND (i.until_at IS NULL OR i.until_at >= {p}) "
            f"AND (EXISTS ("
            f"SELECT 1 FROM orders o WHERE o.customer_id = i.customer_id AND o.ordered_at >= i.lo_at "
            f"AND o.ordered_at < i.hi_at) OR i.earlier = 1 AND EXISTS ("
            f"SELECT 1 FROM analytics_interval j CROSS JOIN orders o WHERE j.customer_id = i.customer_id "
            f"AND j.segment_id = i.segment_id AND j.since_at < i.since_at AND o.customer_id = j.customer_id "
            f"AND o.ordered_at >= j.lo_at AND o.ordered_at < j.hi_at)) GROUP BY i.segment_id"
        )
        end = bind(whole.size_at)
        return _order_rows(sql, lambda sid: bucket_params + [sid, sid, end, end], ids, spans, step)


# --- CSV -------------------------------------------------------------------------------

CSV_HEADER = ("segment_code", "segment_name", "period_start", "size", "revenue", "orders", "aov", "buyers_share")


def _decimal(cents):
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"


def csv_rows(board):
    """The header and one row per segment and period (plain values; the caller neutralises cells).

    Money in currency units with two decimals, buyers share as a fraction with 4 decimals;
    periods before a segment's history are empty cells.
    """
    yield CSV_HEADER
    for item in board.segments:
        for span, fig in zip(board.periods, item.periods):
            share = fig.share
            yield (
                item.segment.code,
                item.segment.name,
                span.start.isoformat(),
                "" if fig.size is None else fig.size,
                _decimal(fig.revenue) if fig.available else "",
                fig.orders if fig.available else "",
                _decimal(fig.aov),
                "" if share is None else f"{share:.4f}",
            )
