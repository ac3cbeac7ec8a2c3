"""webapp.analytics.jobs: figures kept in Redis until the data changes, big dashboards computed by
the worker with a progress fragment, a failed job offered again; progress steps of the service."""

import datetime
import json

import pytest
from conftest import work_off
from redis import Redis
from rq import Queue

from webapp.analytics import jobs
from webapp.analytics import service as analytics
from webapp.models import Order, SegmentChange, SegmentMember, utcnow

from .conftest import NOW, TZ
from .test_analytics import _filters, expected_history
from .test_views import _fragment, signed_in  # noqa: F401 - the logged-in client fixture

QUERY = "period=custom&from=2024-10-14&to=2024-10-20&grain=week&segment=alpha"
START, END = datetime.datetime(2024, 10, 13, 22), datetime.datetime(2024, 10, 20, 22)


@pytest.fixture
def redis(queue_server):
    connection = Redis.from_url(queue_server)
    for key in connection.scan_iter("analytics*"):
        connection.delete(key)
    Queue("default", connection=connection).empty()
    yield connection
    for key in connection.scan_iter("analytics*"):
        connection.delete(key)


def member_of(sid):
    return (
        SegmentMember.select().where(SegmentMember.segment == sid).order_by(SegmentMember.customer).first().customer_id
    )


def _alpha_row(html):
    row = html[html.index('<tr data-segment="alpha">') :]
    row = row[: row.index("</tr>")]
    return [c.split("</td>")[0] for c in row.split('<td class="num">')[1:]]


def _expected_cells(alpha):
    size, revenue, orders, buyers = expected_history(alpha, START, END, min(END, utcnow()))
    aov = (2 * revenue + orders) // (2 * orders)
    return [
        f"{size:,}",
        f"${revenue // 100:,}.{revenue % 100:02d}",
        f"{orders:,}",
        f"${aov // 100:,}.{aov % 100:02d}",
        f"{buyers / size * 100:.1f}%",
    ]


def test_cached_figures_are_shown_until_an_order_comes_in(app, signed_in, dataset, redis):  # noqa: F811
    app.config["TZ"] = "Europe/Berlin"
    alpha = dataset["alpha"].id
    assert _alpha_row(_fragment(signed_in, QUERY).get_data(as_text=True)) == _expected_cells(alpha)
    (key,) = list(redis.scan_iter("analytics:*"))  # computed in the request (small) and kept
    assert redis.ttl(key) > 0
    figures = json.loads(redis.get(key))
    figures[str(alpha)]["total"][2] = 987654  # orders over the range
    redis.set(key, json.dumps(figures))
    html = _fragment(signed_in, QUERY).get_data(as_text=True)
    assert "987,654" in _alpha_row(html)  # from the cache, not recomputed
    csv = signed_in.get(f"/analytics/export.csv?{QUERY}").get_data(as_text=True)
    assert csv.count("\n") == 2  # the export reads the same cached figures (one period)
    # a new order of a member in the range: a new data version, figures computed again
    member = (
        SegmentChange.select()
        .where(SegmentChange.segment == alpha, SegmentChange.change == "entered", SegmentChange.at < START)
        .order_by(SegmentChange.id)
        .first()
    )
    Order.create(
        external_id="new", customer=member.customer_id, ordered_at=END - datetime.timedelta(hours=1), total_cents=777
    )
    cells = _alpha_row(_fragment(signed_in, QUERY).get_data(as_text=True))
    assert "987,654" not in cells and cells == _expected_cells(alpha)
    assert len(list(redis.scan_iter("analytics:*"))) == 2


def test_cache_key_follows_the_data(dataset, redis):
    """Filters, the last order (above), the last logged change, members removed without a log."""
    board = analytics.plan(_filters(period="12w", segment=["alpha", "beta"]), TZ, NOW)
    key = analytics.cache_key(board)
    assert analytics.cache_key(analytics.plan(_filters(period="12w", segment=["alpha", "beta"]), TZ, NOW)) == key
    assert analytics.cache_key(analytics.plan(_filters(period="12w", segment=["alpha"]), TZ, NOW)) != key
    assert (
        analytics.cache_key(analytics.plan(_filters(period="12w", segment=["alpha", "beta"], mode="today"), TZ, NOW))
        != key
    )
    SegmentChange.create(segment=dataset["beta"].id, customer=member_of(dataset["beta"].id), change="exited", at=NOW)
    changed = analytics.cache_key(analytics.plan(_filters(period="12w", segment=["alpha", "beta"]), TZ, NOW))
    assert changed != key
    SegmentMember.delete().where(
        SegmentMember.segment == dataset["alpha"].id, SegmentMember.customer == member_of(dataset["alpha"].id)
    ).execute()
    assert analytics.cache_key(analytics.plan(_filters(period="12w", segment=["alpha", "beta"]), TZ, NOW)) not in (
        key,
        changed,
    )


def test_big_dashboard_is_computed_by_the_worker_with_progress(app, signed_in, dataset, redis):  # noqa: F811
    app.config.update(TZ="Europe/Berlin", ANALYTICS_INLINE_WORK=0)
    html = _fragment(signed_in, QUERY).get_data(as_text=True)
    assert "Waiting for the worker to compute the figures" in html and 'hx-trigger="load delay:1s"' in html
    assert 'hx-get="/analytics/?segment=alpha&amp;period=custom&amp;from=2024-10-14' in html
    assert '<tr data-segment="alpha">' not in html and not list(redis.scan_iter("analytics:*"))
    assert Queue("default", connection=redis).count == 1
    _fragment(signed_in, QUERY)  # polling does not queue it twice
    assert Queue("default", connection=redis).count == 1
    work_off(redis)
    (key,) = list(redis.scan_iter("analytics:*"))
    state, done, total = jobs.status(key.decode())
    assert (state, done, total) == ("finished", 3, 3)  # the log's sizes, the intervals, alpha's orders
    assert _alpha_row(_fragment(signed_in, QUERY).get_data(as_text=True)) == _expected_cells(dataset["alpha"].id)


def test_failed_job_is_offered_again(app, signed_in, dataset, redis, monkeypatch):  # noqa: F811
    app.config.update(TZ="Europe/Berlin", ANALYTICS_INLINE_WORK=0)
    _fragment(signed_in, QUERY)

    def broken(board, progress=None):
        raise RuntimeError("database gone")

    monkeypatch.setattr(analytics, "compute", broken)
    work_off(redis)
    html = _fragment(signed_in, QUERY).get_data(as_text=True)
    assert "could not be computed" in html and "hx-trigger" not in html  # no polling: not queued again
    assert Queue("default", connection=redis).count == 0
    assert 'hx-get="/analytics/?retry=1&amp;segment=alpha' in html
    monkeypatch.undo()
    html = _fragment(signed_in, "retry=1&" + QUERY).get_data(as_text=True)
    assert "Waiting for the worker" in html and Queue("default", connection=redis).count == 1
    work_off(redis)
    assert _alpha_row(_fragment(signed_in, QUERY).get_data(as_text=True)) == _expected_cells(dataset["alpha"].id)


@pytest.mark.parametrize("mode, steps", [("history", 2 + 3), ("today", 1 + 3)])
def test_progress_steps(dataset, mode, steps):
    calls = []
    analytics.dashboard(
        _filters(period="12w", mode=mode, segment=["alpha", "beta", "gamma"]),
        TZ,
        NOW,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(n, steps) for n in range(1, steps + 1)]


def test_latest_figures_are_shown_while_new_ones_are_computed(app, signed_in, dataset, redis):  # noqa: F811
    app.config.update(TZ="Europe/Berlin", ANALYTICS_INLINE_WORK=0)
    alpha = dataset["alpha"].id
    _fragment(signed_in, QUERY)
    work_off(redis)
    before = _expected_cells(alpha)
    member = SegmentMember.select().where(SegmentMember.segment == alpha, SegmentMember.since < START).first()
    Order.create(
        external_id="new", customer=member.customer_id, ordered_at=END - datetime.timedelta(hours=1), total_cents=777
    )
    after = _expected_cells(alpha)
    assert after != before
    html = _fragment(signed_in, QUERY).get_data(as_text=True)
    # the figures before the order, with their time, and the progress of the new ones
    assert _alpha_row(html) == before and "newer ones are being computed" in html
    assert 'id="analytics-progress"' in html and 'hx-trigger="load delay:1s"' in html
    poll = signed_in.get(f"/analytics/?{QUERY}", headers={"HX-Request": "true", "HX-Target": "analytics-progress"})
    html = poll.get_data(as_text=True)
    assert 'id="analytics-progress"' in html and '<tr data-segment="alpha">' not in html  # the progress alone
    assert "HX-Retarget" not in poll.headers
    work_off(redis)
    poll = signed_in.get(f"/analytics/?{QUERY}", headers={"HX-Request": "true", "HX-Target": "analytics-progress"})
    assert poll.headers["HX-Retarget"] == "#dashboard" and poll.headers["HX-Reswap"] == "innerHTML"
    html = poll.get_data(as_text=True)
    assert _alpha_row(html) == after and 'id="analytics-progress"' not in html


def test_nightly_job_keeps_the_dashboards_the_page_opens_with(app, signed_in, dataset, redis):  # noqa: F811
    from webapp.cron import periodic

    assert (jobs.nightly_job, "0 3 * * *", "default") in [(f, when, q) for f, when, q in periodic()]
    assert jobs.nightly_job() == len(analytics.PRESETS) * len(analytics.MODES)
    app.config["ANALYTICS_INLINE_WORK"] = 0  # nothing computed in the request, nothing queued
    for period in analytics.PRESETS:
        for mode in analytics.MODES:
            html = _fragment(signed_in, f"period={period}&mode={mode}").get_data(as_text=True)
            assert '<tr data-segment="alpha">' in html and 'id="analytics-progress"' not in html, (period, mode)
    assert Queue("default", connection=redis).count == 0
    # a chosen segment is another dashboard: queued
    assert 'id="analytics-progress"' in _fragment(signed_in, "period=12m&segment=alpha").get_data(as_text=True)
