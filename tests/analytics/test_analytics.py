"""webapp.analytics: every figure per period, in both modes and three granularities, against
SQL written here (membership from the latest logged change, not from intervals), plus checks by hand."""

import datetime

import pytest
from werkzeug.datastructures import MultiDict

from webapp.analytics import service as analytics
from webapp.db import database
from webapp.sql import bind, param

from .conftest import NOW, TZ

DT = datetime.datetime
UTC = datetime.UTC


def _sql(sql, params):
    return database.execute_sql(sql.replace("?", param()), params).fetchall()


def _utc(day):
    return datetime.datetime.combine(day, datetime.time(), tzinfo=TZ).astimezone(UTC).replace(tzinfo=None)


def expected_periods(first, last, grain):
    """[(local start date, start UTC, end UTC, size instant)] in plain Python."""
    if grain == "week":
        day = first - datetime.timedelta(days=first.weekday())
    elif grain == "month":
        day = first.replace(day=1)
    else:
        day = first
    result = []
    while day <= last:
        if grain == "day":
            following = day + datetime.timedelta(days=1)
        elif grain == "week":
            following = day + datetime.timedelta(days=7)
        else:
            following = datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1)
        result.append((day, _utc(day), _utc(following), min(_utc(following), NOW)))
        day = following
    return result


# membership of customer `cu` in segment ? at an instant: its latest logged change up to then is an
# entry, or it is a member with no logged change at all (a list segment) since then
_LOGGED = (
    "(SELECT c.change FROM segment_change c WHERE c.segment_id = ? AND c.customer_id = {cu} "
    'AND c."at" {op} ? ORDER BY c."at" DESC, c.id DESC LIMIT 1) = \'entered\''
)
_UNLOGGED = (
    "EXISTS (SELECT 1 FROM segment_member m WHERE m.segment_id = ? AND m.customer_id = {cu} AND m.since {op} ? "
    "AND NOT EXISTS (SELECT 1 FROM segment_change c WHERE c.segment_id = ? AND c.customer_id = {cu}))"
)


def _member(cu, op):
    return f"({_LOGGED.format(cu=cu, op=op)} OR {_UNLOGGED.format(cu=cu, op=op)})"


def _member_params(sid, at):
    return [sid, at, sid, at, sid]


def expected_history(sid, start, end, at_end):
    """(size, revenue, orders, buyers) of members at the time, by SQL."""
    ((size,),) = _sql(
        f"SELECT COUNT(*) FROM customer cu WHERE {_member('cu.id', '<')}", _member_params(sid, bind(at_end))
    )
    # an order counts when its customer was a member at its instant (changes at or before it)
    at_order = (
        "((SELECT c.change FROM segment_change c WHERE c.segment_id = ? AND c.customer_id = o.customer_id "
        'AND c."at" <= o.ordered_at ORDER BY c."at" DESC, c.id DESC LIMIT 1) = \'entered\' '
        "OR EXISTS (SELECT 1 FROM segment_member m WHERE m.segment_id = ? AND m.customer_id = o.customer_id "
        "AND m.since <= o.ordered_at AND NOT EXISTS (SELECT 1 FROM segment_change c WHERE c.segment_id = ? "
        "AND c.customer_id = o.customer_id)))"
    )
    ((orders, revenue),) = _sql(
        f"SELECT COUNT(*), COALESCE(SUM(o.total_cents), 0) FROM orders o "
        f"WHERE o.ordered_at >= ? AND o.ordered_at < ? AND {at_order}",
        [bind(start), bind(end), sid, sid, sid],
    )
    ((buyers,),) = _sql(
        f"SELECT COUNT(DISTINCT o.customer_id) FROM orders o WHERE o.ordered_at >= ? "
        f"AND o.ordered_at < ? AND {at_order} AND {_member('o.customer_id', '<')}",
        [bind(start), bind(end), sid, sid, sid] + _member_params(sid, bind(at_end)),
    )
    return size, int(revenue), orders, buyers


def expected_today(sid, start, end):
    ((size,),) = _sql("SELECT COUNT(*) FROM segment_member WHERE segment_id = ?", [sid])
    ((orders, revenue, buyers),) = _sql(
        "SELECT COUNT(*), COALESCE(SUM(o.total_cents), 0), COUNT(DISTINCT o.customer_id) FROM orders o "
        "JOIN segment_member m ON m.customer_id = o.customer_id AND m.segment_id = ? "
        "WHERE o.ordered_at >= ? AND o.ordered_at < ?",
        [sid, bind(start), bind(end)],
    )
    return size, int(revenue), orders, buyers


def history_start(sid):
    rows = _sql(
        'SELECT MIN("at") FROM segment_change WHERE segment_id = ? UNION ALL '
        "SELECT MIN(since) FROM segment_member m WHERE segment_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM segment_change c WHERE c.segment_id = m.segment_id AND c.customer_id = m.customer_id)",
        [sid, sid],
    )
    values = [v if isinstance(v, datetime.datetime) else datetime.datetime.fromisoformat(v) for (v,) in rows if v]
    return min(values) if values else None


def _filters(**args):
    data = MultiDict()
    for key, value in args.items():
        for item in value if isinstance(value, list) else [value]:
            data.add(key, item)
    return analytics.Filters.from_args(data)


def _check(board, mode, first, last, grain):
    spans = expected_periods(first, last, grain)
    assert [(p.start, p.start_utc, p.end_utc, p.size_at) for p in board.periods] == spans
    checked = 0
    for item in board.segments:
        sid = item.segment.id
        start = history_start(sid) if mode == "history" else None
        for (day, lo, hi, at_end), fig in zip(spans, item.periods):
            if mode == "history" and (start is None or at_end <= start):
                assert not fig.available and fig.value("revenue") is None, (item.segment.code, day)
                continue
            size, revenue, orders, buyers = (
                expected_history(sid, lo, hi, at_end) if mode == "history" else expected_today(sid, lo, hi)
            )
            where = (item.segment.code, day)
            assert (fig.size, fig.revenue, fig.orders, fig.buyers) == (size, revenue, orders, buyers), where
            assert fig.aov == (None if not orders else int(revenue / orders + 0.5)), where
            assert fig.share == (None if not size else buyers / size), where
            checked += 1
        # the whole range: size at its end, orders over it, buyers counted once
        lo, hi, at_end = spans[0][1], spans[-1][2], spans[-1][3]
        if item.total.available:
            expected = expected_history(sid, lo, hi, at_end) if mode == "history" else expected_today(sid, lo, hi)
            assert (item.total.size, item.total.revenue, item.total.orders, item.total.buyers) == expected
    return checked


@pytest.mark.parametrize("mode", ["history", "today"])
def test_days_match_sql_in_both_modes(dataset, mode):
    board = analytics.dashboard(
        _filters(period="custom", **{"from": "2024-10-01", "to": "2024-11-05"}, mode=mode), TZ, NOW
    )
    assert [s.segment.code for s in board.segments] == ["beta", "alpha", "delta", "gamma", "solo"]  # "=Beta" first
    assert board.grain == "day" and len(board.periods) == 36
    checked = _check(board, mode, datetime.date(2024, 10, 1), datetime.date(2024, 11, 5), "day")
    assert checked > 80
    alpha = board.segments[1]
    assert sum(f.orders for f in alpha.periods) > 30 and any(f.buyers for f in alpha.periods)  # a real data set


@pytest.mark.parametrize(
    "grain, mode", [("week", "history"), ("month", "history"), ("week", "today"), ("month", "today")]
)
def test_weeks_and_months_match_sql(dataset, grain, mode):
    board = analytics.dashboard(_filters(period="12w", grain=grain, mode=mode), TZ, NOW)
    first = datetime.date(2024, 11, 4) - datetime.timedelta(weeks=11)  # 12 weeks up to Monday November 4
    assert board.first == first and board.last == datetime.date(2024, 11, 5)
    assert _check(board, mode, first, board.last, grain) > 5


def test_twelve_months_and_thirty_days_ranges(dataset):
    board = analytics.dashboard(_filters(period="12m"), TZ, NOW)
    assert board.grain == "month" and [p.label for p in board.periods][:2] == ["2023-12", "2024-01"]
    assert board.periods[-1].label == "2024-11" and board.periods[-1].size_at == NOW  # the current month: now
    board = analytics.dashboard(_filters(period="30d", grain="week"), TZ, NOW)
    assert board.first == datetime.date(2024, 10, 7) and board.periods[0].start == datetime.date(2024, 10, 7)


def test_day_boundaries_in_the_account_time_zone_by_hand(dataset):
    board = analytics.dashboard(
        _filters(period="custom", **{"from": "2024-10-13", "to": "2024-10-28"}, segment="solo"), TZ, NOW
    )
    days = {p.start.isoformat(): (p, f) for p, f in zip(board.periods, board.segments[0].periods)}
    # summer time: Berlin midnight is 22:00 UTC; October 27 has 25 hours
    assert days["2024-10-15"][0].start_utc == DT(2024, 10, 14, 22, 0)
    assert (days["2024-10-27"][0].start_utc, days["2024-10-27"][0].end_utc) == (
        DT(2024, 10, 26, 22),
        DT(2024, 10, 27, 23),
    )
    figures = {d: (f.size, f.revenue, f.orders, f.buyers, f.aov, f.share) for d, (_p, f) in days.items()}
    # history starts at the first entry, 2024-10-15 00:00 Berlin: nothing before
    assert figures["2024-10-13"] == figures["2024-10-14"] == (None, 0, 0, 0, None, None)
    assert figures["2024-10-15"] == (1, 2000, 1, 1, 2000, 1.0)  # 23:59:59 the day before did not count
    assert figures["2024-10-19"] == (1, 0, 0, 0, None, 0.0)
    assert figures["2024-10-20"] == (0, 0, 0, 0, None, None)  # the order at the exit instant does not count
    assert figures["2024-10-26"] == (0, 0, 0, 0, None, None)  # 23:59 Berlin: not a member
    assert figures["2024-10-27"] == (1, 8000, 1, 1, 8000, 1.0)  # back at 23:00, ordered at 23:30 (UTC+1 by then)
    assert figures["2024-10-28"] == (1, 0, 0, 0, None, 0.0)
    total = board.segments[0].total
    assert (total.size, total.revenue, total.orders, total.buyers) == (1, 10000, 2, 1)
    assert board.segments[0].history_start == DT(2024, 10, 14, 22, 0)


def test_weeks_and_months_by_hand(dataset):
    weeks = analytics.dashboard(
        _filters(period="custom", **{"from": "2024-10-07", "to": "2024-10-27"}, grain="week", segment="solo"), TZ, NOW
    )
    assert [p.label for p in weeks.periods] == ["2024-10-07", "2024-10-14", "2024-10-21"]
    fig = weeks.segments[0].periods
    assert not fig[0].available
    # out on Sunday: ordered while a member but no longer one at the week's end
    assert (fig[1].size, fig[1].orders, fig[1].revenue, fig[1].buyers, fig[1].share) == (0, 1, 2000, 0, None)
    assert (fig[2].size, fig[2].orders, fig[2].revenue, fig[2].buyers, fig[2].share) == (1, 1, 8000, 1, 1.0)
    months = analytics.dashboard(
        _filters(period="custom", **{"from": "2024-10-01", "to": "2024-11-30"}, grain="month", segment="solo"), TZ, NOW
    )
    assert months.last == datetime.date(2024, 11, 5)  # never after today
    oct_, nov = months.segments[0].periods
    assert (oct_.size, oct_.revenue, oct_.orders, oct_.aov, oct_.share) == (1, 10000, 2, 5000, 1.0)
    assert (nov.size, nov.revenue, nov.orders, nov.aov) == (1, 0, 0, None)
    today = analytics.dashboard(
        _filters(
            period="custom", **{"from": "2024-10-01", "to": "2024-10-31"}, grain="month", segment="solo", mode="today"
        ),
        TZ,
        NOW,
    )
    (oct_,) = today.segments[0].periods
    # today's member: all five of its October orders, from before it ever entered too
    assert (oct_.size, oct_.revenue, oct_.orders, oct_.buyers, oct_.aov) == (1, 31000, 5, 1, 6200)


def test_list_segment_counts_from_its_members_since(dataset):
    board = analytics.dashboard(
        _filters(period="custom", **{"from": "2024-10-09", "to": "2024-10-11"}, segment="gamma"), TZ, NOW
    )
    sizes = [f.size for f in board.segments[0].periods]
    assert sizes == [None, 12, 12]  # members since October 10 12:00 UTC
    assert board.segments[0].history_start == DT(2024, 10, 10, 12, 0)


def test_never_computed_segment_has_no_history(dataset):
    board = analytics.dashboard(_filters(segment="delta"), TZ, NOW)
    item = board.segments[0]
    assert item.history_start is None and not any(f.available for f in item.periods) and not item.total.available
    board = analytics.dashboard(_filters(segment="delta", mode="today"), TZ, NOW)
    assert all(f.size == 0 and f.share is None for f in board.segments[0].periods)


def test_segments_not_in_analytics_are_not_shown(dataset):
    board = analytics.dashboard(_filters(segment=["hidden", "solo", "nope"]), TZ, NOW)
    assert [s.segment.code for s in board.segments] == ["solo"]
    assert "hidden" not in [s.code for s in board.available]


def test_no_segment_in_analytics(db):
    board = analytics.dashboard(_filters(), TZ, NOW)
    assert board.available == [] and board.segments == []


def test_filter_errors():
    assert _filters(period="custom").errors == {"from": "Choose the first and the last day of the range."}
    assert "to" in _filters(period="custom", **{"from": "2024-10-05", "to": "2024-10-01"}).errors
    assert "from" in _filters(period="custom", **{"from": "05/10/2024", "to": "2024-10-01"}).errors
    filters = _filters(period="bogus", grain="hour", mode="x", metric="y")
    assert (filters.period, filters.effective_grain, filters.mode, filters.metric) == (
        "30d",
        "day",
        "history",
        "revenue",
    )
    assert _filters(period="12m").effective_grain == "month"


def test_too_many_periods_is_an_error(db):
    filters = _filters(period="custom", **{"from": "2020-01-01", "to": "2024-11-01"}, grain="day")
    assert analytics.dashboard(filters, TZ, NOW) is None and "grain" in filters.errors


def test_aov_rounds_half_up_to_the_cent():
    assert analytics.Figures(size=1, revenue=1001, orders=2).aov == 501
    assert analytics.Figures(size=1, revenue=1000, orders=3).aov == 333
    assert analytics.Figures(size=1, revenue=2000, orders=3).aov == 667
    assert analytics.Figures(size=0, revenue=0, orders=0).aov is None
    assert analytics.Figures(size=4, buyers=1).share == 0.25


def _scans(plan, table):
    """Every node of an EXPLAIN (FORMAT JSON) plan that reads `table`."""
    nodes = [plan]
    while nodes:
        node = nodes.pop()
        nodes += node.get("Plans", [])
        if node.get("Relation Name") == table:
            yield node


@pytest.mark.postgresql_only
def test_first_logged_changes_are_one_index_seek_per_segment(dataset, queries):
    """The first logged change of each chosen segment (the page's default mode,
    the history's start) read every log row of the segments: 117 ms of the
    analytics page on the 1M demo (issue 21). Now one row per segment."""
    queries.clear()
    board = analytics.dashboard(_filters(segment=["alpha", "beta", "gamma"]), TZ, NOW)
    analytics.choose_default_mode(board)
    firsts = [q for q in queries if "MIN(" in q and "segment_change" in q]
    assert len(firsts) == 2  # choose_default_mode and the history's start
    for statement in firsts:
        first = statement.split(" UNION ALL ")[0]  # the history's start adds list members without a logged change
        params = statement.params[: first.count("%s")]
        ((plan,),) = database.execute_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + first, params).fetchall()
        scans = list(_scans(plan[0]["Plan"], "segment_change"))
        assert scans and all(scan["Actual Rows"] <= 1 for scan in scans), scans
    assert board.segments[0].history_start is not None
