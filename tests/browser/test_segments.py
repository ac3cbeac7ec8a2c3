"""Segment list, segment page, recompute with live runs, notifications, delete,
and the customer card's segment history, in a real Chromium.

The worker's part (running a queued run) is done in the test process with
runs.execute_run, on the live server's database.
"""

import datetime
import re

import pytest
from playwright.sync_api import expect

from webapp.models import Notification, Segment, SegmentMember, SegmentRun, User, utcnow
from webapp.segments import runs, system
from webapp.segments import service as segments

from .conftest import ADMIN_EMAIL, screenshot

pytestmark = pytest.mark.browser


def customer_block(*filters):
    return {"version": 1, "match": "all", "blocks": [{"entity": "customer", "match": "all", "filters": list(filters)}]}


def orders_block(*having, filters=()):
    return {
        "version": 1,
        "match": "all",
        "blocks": [
            {"entity": "order", "match": "all", "filters": list(filters), "having": list(having), "having_match": "all"}
        ],
    }


def in_(field, *values, exclude=False):
    return {"field": field, "op": "in", "values": [{"value": v, "exclude": exclude} for v in values]}


def run_queued():
    for run in list(SegmentRun.select().where(SegmentRun.status == "queued").order_by(SegmentRun.id)):
        runs.execute_run(run.id)


def history(segment, days_back):
    """Real runs evaluated at past days, so the size line has a history to draw."""
    for days in days_back:
        run = SegmentRun.create(segment=segment, trigger="schedule")
        runs.execute_run(run.id, at=utcnow() - datetime.timedelta(days=days))


@pytest.fixture
def listed(live_db, queue_server):
    """A handful of segments like a marketer's, computed, some with a history."""
    from .conftest import ensure_admin

    admin = ensure_admin()
    if Segment.select().where(Segment.code == "sg_tea_reorder").exists():
        return admin
    system.ensure_system_segments()
    made = [
        ("sg_men", "Men for 8 March", "dynamic", True, customer_block(in_("gender", "male"))),
        ("sg_moscow", "Moscow", "dynamic", True, customer_block(in_("city", "Москва"))),
        (
            "sg_tea_reorder",
            "Chinese tea: time to reorder",
            "dynamic",
            True,
            orders_block(
                {"agg": "last_at", "op": "relative", "to_days": -90}, filters=[in_("product_group", "Tea/Chinese tea")]
            ),
        ),
        (
            "sg_cat_food",
            "Cat food buyers, last 6 months",
            "dynamic",
            True,
            orders_block(
                {"agg": "last_at", "op": "relative", "from_days": -180, "to_days": 0},
                filters=[in_("product_group", "Pet food/Cat food")],
            ),
        ),
        ("sg_launch_list", "Launch party guests", "static", True, customer_block(in_("city", "Санкт-Петербург"))),
        (
            "sg_paused",
            "Summer tours (paused)",
            "dynamic",
            False,
            orders_block({"agg": "count", "op": "between", "from": 2}, filters=[in_("product_group", "Tea")]),
        ),
    ]
    for code, name, type_, active, definition in made:
        segments.create_segment(
            {"code": code, "name": name, "type": type_, "active": True, "in_analytics": True, "definition": definition},
            user=admin,
        )
    run_queued()  # (segments saved by other browser tests too: the list shows them computed)
    for code in ("sg_men", "sg_moscow", "sg_tea_reorder", "sg_cat_food", "sg_paused"):
        history(Segment.get(Segment.code == code), [120, 90, 60, 45, 30, 20, 10, 5, 0])
    for code in ("system_active", "system_new", "system_lost", "system_sleeping", "system_never_ordered"):
        history(Segment.get(Segment.code == code), [60, 40, 20, 0])
    Segment.update(active=False).where(Segment.code == "sg_paused").execute()
    return admin


def test_segment_list_filters_sorts_and_links_to_its_customers(admin_page, listed):
    page = admin_page
    page.get_by_role("link", name="Segments", exact=True).click()
    expect(page.get_by_role("heading", name="Segments", exact=True)).to_be_visible()
    rows = page.locator("table.segments tbody tr")
    expect(rows.first).to_be_visible()
    tea = rows.filter(has_text="Chinese tea: time to reorder")
    expect(tea.locator("svg.sparkline polyline")).to_have_count(1)
    paused = rows.filter(has_text="Summer tours (paused)")
    expect(paused.locator("svg.sparkline.inactive")).to_have_count(1)  # grey
    expect(paused).to_contain_text("Paused")
    static = rows.filter(has_text="Launch party guests")
    expect(static.locator("svg.lock")).to_have_count(1)
    expect(rows.filter(has_text="Never ordered").locator(".badge", has_text="System")).to_have_count(1)
    page.locator("body").click(position={"x": 5, "y": 5})
    screenshot(page, "segments")

    # search as you type, in any alphabet and case
    page.get_by_label("Search by name or code").press_sequentially("CHINESE", delay=30)
    chinese = [s.name for s in Segment.select() if "chinese" in s.name.casefold() or "chinese" in s.code]
    assert 1 <= len(chinese) < Segment.select().count()
    expect(rows).to_have_count(len(chinese))
    expect(rows.filter(has_text="Chinese tea: time to reorder")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=CHINESE"))
    page.get_by_label("Search by name or code").fill("")
    page.get_by_label("Type").select_option("static")
    expect(page).to_have_url(re.compile(r"type=static"))
    expect(rows.filter(has_text="Launch party guests")).to_have_count(1)
    # retried until the filtered list has replaced the whole one (reading the
    # rows at once raced the swap under load)
    expect(rows.filter(has_not_text="Static")).to_have_count(0)
    page.get_by_label("Type").select_option("")
    # the whole list is back before its sort link is clicked (the filtered
    # list's link keeps type=static)
    expect(page).not_to_have_url(re.compile(r"type=static"))
    # sort by size, biggest first
    page.locator("table.segments thead").get_by_role("link", name="Customers").click()
    expect(page).to_have_url(re.compile(r"sort=size&dir=desc"))
    biggest = max(s.size or 0 for s in Segment.select())
    expect(page.locator("table.segments td.num a").first).to_have_text(f"{biggest:,}")  # the sorted list is in
    sizes = [int(t.replace(",", "")) for t in page.locator("table.segments td.num a").all_inner_texts()]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) >= 5
    # the count is a link to the customers of the segment
    men = Segment.get(Segment.code == "sg_men")
    rows.filter(has=page.locator("code", has_text=re.compile("^sg_men$"))).locator("td.num a").click()
    expect(page).to_have_url(re.compile(r"/customers/\?segment=sg_men$"))
    expect(page.locator(".filter-chip")).to_contain_text("Men for 8 March")
    expect(page.locator(".summary")).to_contain_text(f"of {men.size:,}")
    for row in page.locator("table.customers td.name a").all()[:5]:
        customer_id = int(row.get_attribute("href").rsplit("/", 1)[1])
        assert (
            SegmentMember.select().where(SegmentMember.segment == men, SegmentMember.customer == customer_id).exists()
        )


def test_recompute_runs_live_and_notifies_with_a_toast(admin_page, listed):
    page = admin_page
    Notification.update(read_at=utcnow()).where(Notification.read_at.is_null()).execute()
    page.goto("/segments/sg_moscow")
    expect(page.locator("#bell-count")).to_have_class(re.compile("zero"))
    page.get_by_role("button", name="Recompute now").click()
    expect(page.locator("#runs")).to_contain_text("Recomputation queued")
    expect(page.locator("#runs tbody tr").first).to_contain_text("Queued")
    expect(page.get_by_role("button", name="Recompute now")).to_be_disabled()
    run = SegmentRun.get(SegmentRun.status == "queued")
    assert run.trigger == "user" and run.requested_by.email == ADMIN_EMAIL
    runs.execute_run(run.id)  # the worker
    expect(page.locator("#runs tbody tr").first).to_contain_text("Done", timeout=6000)  # the table polls itself
    expect(page.get_by_role("button", name="Recompute now")).to_be_enabled()
    toast = page.locator("#toasts .toast")
    expect(toast).to_contain_text("Segment “Moscow” computed", timeout=15000)
    expect(page.locator("#bell-count")).to_have_text(re.compile("1"))
    page.locator("#bell > summary").click()
    panel = page.locator("#bell-panel")
    expect(panel).to_contain_text("Segment “Moscow” computed")
    panel.get_by_role("button", name="Mark all as read").click()
    expect(page.locator("#bell-count")).to_have_class(re.compile("zero"))
    assert Notification.select().where(Notification.read_at.is_null()).count() == 0


def test_inactive_segments_say_why_they_are_not_recomputed(admin_page, listed):
    page = admin_page
    page.goto("/segments/sg_paused")
    page.get_by_role("button", name="Recompute now").click()
    expect(page.get_by_role("alert")).to_have_text(
        "The segment is inactive: it is not recomputed until you activate it."
    )
    expect(page.locator("svg.size-chart.inactive")).to_be_visible()


def test_segment_page_history_and_the_customer_card(admin_page, listed):
    page = admin_page
    page.goto("/segments/sg_tea_reorder")
    expect(page.locator(".summary-blocks")).to_contain_text("Product group")
    expect(page.locator(".summary-blocks")).to_contain_text("90 days ago or earlier")
    expect(page.locator("svg.size-chart polyline")).to_be_visible()
    page.get_by_role("heading", name="Entries and exits by day").scroll_into_view_if_needed()
    day_row = page.locator("table.changes tbody tr").first  # loaded when revealed
    expect(day_row).to_be_visible()
    day_row.get_by_text("Show customers").click()
    entry = day_row.locator(".day-list li").first
    expect(entry).to_be_visible()
    customer_link = entry.locator("a")
    name = customer_link.inner_text()
    customer_link.click()
    expect(page.get_by_role("heading", name=re.compile(re.escape(name)))).to_be_visible()
    section = page.locator("#segment-history")
    section.scroll_into_view_if_needed()
    expect(section.locator("table.history")).to_contain_text("Chinese tea: time to reorder")  # loaded when revealed


def test_delete_asks_first_and_system_segments_have_no_delete(admin_page, listed, live_server):
    page = admin_page
    page.goto("/segments/system_never_ordered")
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_be_visible()
    segments.create_segment(
        {
            "code": "sg_short_lived",
            "name": "Short-lived",
            "type": "dynamic",
            "active": False,
            "definition": customer_block(in_("gender", "female")),
        },
        user=User.get(User.email == ADMIN_EMAIL),
    )
    page.goto("/segments/sg_short_lived")
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete the segment “Short-lived”?")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel")).to_be_focused()  # the safe choice has the focus
    page.get_by_role("button", name="Delete segment").click()
    expect(page).to_have_url(re.compile(r"/segments/$"))
    expect(page.get_by_role("status").filter(has_text="Segment “Short-lived” deleted.")).to_be_visible()
    assert not Segment.select().where(Segment.code == "sg_short_lived").exists()


def test_edit_loads_the_builder_from_the_stored_definition(admin_page, listed):
    page = admin_page
    page.goto("/segments/sg_cat_food/edit")
    expect(page.locator("#blocks-0 .chip-label")).to_have_text("Pet food/Cat food")
    expect(page.locator("#blocks-0 output.words")).to_have_text("from 180 days ago to today")
    page.get_by_label("Name").fill("Cat food buyers, last half year")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(r"/segments/sg_cat_food$"))
    segment = Segment.get(Segment.code == "sg_cat_food")
    assert segment.name == "Cat food buyers, last half year"
    assert segment.definition == orders_block(
        {"agg": "last_at", "op": "relative", "from_days": -180, "to_days": 0},
        filters=[in_("product_group", "Pet food/Cat food")],
    )
