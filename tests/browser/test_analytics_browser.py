"""The analytics dashboard in a real Chromium: segments and period changed through htmx (and the
URL, so it can be bookmarked), charts and figures table, the CSV download; a big dashboard computed
by a real worker behind a progress bar, then shown from the cache, then under its latest figures
while the worker computes the new ones."""

import csv
import datetime
import re

import pytest
from playwright.sync_api import expect
from redis import Redis

from webapp.models import Order, Segment, SegmentMember, SegmentRun, utcnow
from webapp.segments import runs
from webapp.segments import service as segments

from .conftest import screenshot
from .test_import_browser import import_setup  # noqa: F401 - fixture: empties the queue, starts a worker

pytestmark = pytest.mark.browser


def _orders_block(*having):
    return {
        "version": 1,
        "match": "all",
        "blocks": [{"entity": "order", "match": "all", "filters": [], "having": list(having), "having_match": "all"}],
    }


@pytest.fixture
def analysed(live_db, queue_server):
    """Two segments in analytics with a history: real runs evaluated at past days."""
    from .conftest import ensure_admin

    admin = ensure_admin()
    if not Segment.select().where(Segment.code == "an_recent").exists():
        for code, name, definition in [
            (
                "an_recent",
                "Analytics: ordered in 60 days",
                _orders_block({"agg": "last_at", "op": "relative", "from_days": -60, "to_days": 0}),
            ),
            ("an_big", "Analytics: 3+ orders", _orders_block({"agg": "count", "op": "between", "from": 3})),
        ]:
            segment = segments.create_segment(
                {
                    "code": code,
                    "name": name,
                    "type": "dynamic",
                    "active": True,
                    "in_analytics": True,
                    "definition": definition,
                },
                user=admin,
            )
            for days in (50, 35, 20, 8, 0):
                run = SegmentRun.create(segment=segment, trigger="schedule")
                runs.execute_run(run.id, at=utcnow() - datetime.timedelta(days=days))
    return admin


def test_dashboard_segments_period_charts_table_and_csv(admin_page, analysed, tmp_path):
    page = admin_page
    page.goto("/analytics/?segment=an_recent&segment=an_big")
    dashboard = page.locator("#dashboard")
    expect(dashboard.locator("svg.line-chart")).to_have_count(5)  # size, revenue, orders, AOV, buyers share
    expect(dashboard.locator("svg.bar-chart rect.bar")).to_have_count(2)
    expect(dashboard.locator(".analytics-legend li")).to_have_count(2)
    expect(dashboard.locator('tr[data-segment="an_recent"]')).to_be_visible()
    expect(dashboard.locator('tr[data-segment="an_big"]')).to_be_visible()
    expect(dashboard).to_contain_text("by day")
    expect(dashboard).to_contain_text("history from")
    expect(dashboard.locator("svg.line-chart").first.locator("circle title").first).to_contain_text(
        "Analytics: ordered in 60 days"
    )
    screenshot(page, "analytics")
    page.locator("#compare-h").scroll_into_view_if_needed()
    page.locator("details.period-figures").first.locator("summary").click()
    screenshot(page, "analytics-figures")

    # one segment less: the dashboard and the address follow
    page.get_by_label("Analytics: 3+ orders", exact=True).uncheck()
    expect(page).to_have_url(re.compile(r"segment=an_recent(?!.*an_big)"))
    expect(dashboard.locator(".analytics-legend li")).to_have_count(1)
    expect(dashboard.locator('tr[data-segment="an_big"]')).to_have_count(0)

    # another period and granularity
    page.locator("select[name=period]").select_option("12w")
    expect(page).to_have_url(re.compile(r"period=12w"))
    expect(dashboard).to_contain_text("by week")
    expect(dashboard).to_contain_text("12 periods")
    page.locator("select[name=mode]").select_option("today")
    expect(dashboard).to_contain_text("today's members")

    # the custom range appears with its dates, and is used
    expect(page.locator(".custom-range")).to_be_hidden()
    page.locator("select[name=period]").select_option("custom")
    expect(page.locator(".custom-range")).to_be_visible()
    today = datetime.date.today()
    page.get_by_label("First day", exact=True).fill((today - datetime.timedelta(days=6)).isoformat())
    page.locator("select[name=grain]").select_option("day")
    expect(dashboard).to_contain_text("7 periods")

    # the bookmark opens the same dashboard
    page.goto(page.url)
    expect(page.locator("#dashboard")).to_contain_text("7 periods")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    path = tmp_path / "figures.csv"
    info.value.save_as(path)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0] == [
        "segment_code",
        "segment_name",
        "period_start",
        "size",
        "revenue",
        "orders",
        "aov",
        "buyers_share",
    ]
    assert [r[0] for r in rows[1:]] == ["an_recent"] * 7
    size = Segment.get(Segment.code == "an_recent").size
    assert {r[3] for r in rows[1:]} == {str(size)}  # today's members: their number today in every period


def test_dashboard_keyboard_and_empty_choice(admin_page, analysed):
    page = admin_page
    page.goto("/analytics/?segment=an_big&period=12m")
    expect(page.locator("#dashboard")).to_contain_text("by month")
    # keyboard: the metric compared changes from the keyboard alone
    page.locator("select[name=metric]").focus()
    page.keyboard.press("ArrowDown")  # revenue → orders
    expect(page.locator("#compare-h")).to_contain_text("orders over the whole range")


def test_big_dashboard_computed_by_the_worker_with_progress(
    admin_page,
    analysed,
    import_setup,  # noqa: F811
    live_server,
    queue_server,
):
    worker = import_setup  # starts worker.py on the live server's database and queue
    redis = Redis.from_url(queue_server)
    for key in redis.scan_iter("analytics*"):
        redis.delete(key)
    live_server.app.config["ANALYTICS_INLINE_WORK"] = 0  # every dashboard goes to the worker
    try:
        page = admin_page
        page.goto("/analytics/?segment=an_big&period=12m")
        progress = page.locator("#analytics-progress")
        expect(progress).to_contain_text("Waiting for the worker to compute the figures")
        expect(progress.locator("progress")).to_be_visible()
        worker()
        dashboard = page.locator("#dashboard")
        expect(dashboard.locator('tr[data-segment="an_big"]')).to_be_visible(timeout=60_000)
        expect(progress).to_have_count(0)
        expect(dashboard).to_contain_text("12 periods")
        orders = dashboard.locator('tr[data-segment="an_big"] td').nth(2).inner_text()

        # the same again: from the cache, at once
        page.reload()
        expect(dashboard.locator('tr[data-segment="an_big"]')).to_be_visible()
        expect(page.locator("#analytics-progress")).to_have_count(0)

        # a new order of a member: the latest figures stay on the page while the new ones are computed
        member = SegmentMember.select().join(Segment).where(Segment.code == "an_big").first()
        Order.create(
            external_id="analytics-browser",
            customer=member.customer_id,
            ordered_at=utcnow() - datetime.timedelta(minutes=5),
            total_cents=1234,
        )
        page.reload()
        expect(dashboard.locator('tr[data-segment="an_big"] td').nth(2)).to_have_text(
            f"{int(orders.replace(',', '')) + 1:,}", timeout=60_000
        )
        expect(page.locator("#analytics-progress")).to_have_count(0)
    finally:
        live_server.app.config.pop("ANALYTICS_INLINE_WORK", None)
        Order.delete().where(Order.external_id == "analytics-browser").execute()  # other tests count orders
