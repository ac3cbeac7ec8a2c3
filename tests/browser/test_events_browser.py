"""Events in a real Chromium with a real worker process: the events list,
creating an order event with the builder's one-block editor, watching the
backfill's progress partial poll itself to the end, the chart of occurrences
per day and the customers behind a day.

Expected figures come from SQL written here over orders, items, products and
groups, not from the code under test.
"""

import datetime
import re

import pytest
from playwright.sync_api import expect

from webapp.db import database
from webapp.models import EventDefinition, EventOccurrence

from .conftest import screenshot
from .test_builder import add_filter, pick
from .test_import_browser import import_setup  # noqa: F401 - fixture: empties the queue, starts a worker

pytestmark = pytest.mark.browser

NAME = "Bought a croissant (browser)"

CROISSANT_ORDERS = """
    SELECT o.id, o.customer_id, o.ordered_at FROM orders o
    WHERE EXISTS (SELECT 1 FROM order_item i JOIN product p ON p.id = i.product_id
                  JOIN product_group g ON g.id = p.group_id
                  WHERE i.order_id = o.id AND (g.path = 'Bakery/Croissants' OR g.path LIKE 'Bakery/Croissants/%'))
"""


def test_create_an_order_event_watch_the_backfill_and_open_a_day(admin_page, import_setup):
    worker = import_setup  # starts worker.py on the live server's database and queue
    page = admin_page
    expected = {(o, c, datetime.datetime.fromisoformat(str(t))) for o, c, t in database.execute_sql(CROISSANT_ORDERS)}
    assert expected, "the demo data should have croissant orders"

    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Events", exact=True)).to_be_visible()
    # the figures come into the rows after the page shows
    visits = database.execute_sql(
        "SELECT COUNT(*) FROM event_occurrence o JOIN event_type t ON t.id = o.event_type_id "
        "WHERE t.code = 'website_visit'"
    ).fetchone()[0]
    row = page.locator("tr[data-code=website_visit]")
    expect(row.locator("td.num").first).to_have_text(f"{visits:,}")
    screenshot(page, "events")

    page.get_by_role("link", name="New order event").click()
    page.get_by_label("Name").fill(NAME)
    block = page.locator("#blocks-0")
    expect(page.locator(".add-block")).to_have_count(0)  # one Orders block, nothing else
    row = add_filter(page, block, "Product group")
    pick(page, row, "croiss", "Bakery/Croissants")
    expect(page.locator("#preview-number")).to_have_text(f"{len(expected):,}", timeout=10000)
    screenshot(page, "event-definition")
    page.get_by_role("button", name="Create event").click()

    # queued: the partial polls while no worker runs; then the worker records the past orders
    progress = page.locator("#backfill-progress")
    expect(progress).to_have_attribute("data-status", "queued")
    expect(progress).to_contain_text("Waiting for the worker")
    worker()
    expect(page.locator("#backfill-progress[data-status=done]")).to_be_visible(timeout=60000)
    expect(progress).to_contain_text(f"Past orders recorded: {len(expected):,} occurrences")
    definition = EventDefinition.get(EventDefinition.name == NAME)
    stored = {
        (o, c, t)
        for o, c, t in EventOccurrence.select(
            EventOccurrence.order, EventOccurrence.customer, EventOccurrence.occurred_at
        )
        .where(EventOccurrence.event_type == definition.event_type_id)
        .tuples()
    }
    assert stored == expected

    # the chart over 365 days, and the busiest day's customers
    page.get_by_role("link", name="365 days").click()
    bars = page.locator("svg.bar-chart a.bar-link")
    expect(bars).to_have_count(365)
    today = datetime.datetime.utcnow().date()
    per_day, per_customer = {}, {}
    for _o, c, t in expected:
        if t.date() > today - datetime.timedelta(days=365):
            per_day[t.date()] = per_day.get(t.date(), 0) + 1
    busiest = max(per_day, key=lambda d: (per_day[d], d))
    for _o, c, t in expected:
        if t.date() == busiest:
            per_customer[c] = per_customer.get(c, 0) + 1
    screenshot(page, "event-page")
    page.locator(f"svg.bar-chart a.bar-link[href*='day={busiest.isoformat()}']").click()
    day = page.locator("#day-customers")
    expect(day.get_by_role("heading")).to_have_text(f"Customers on {busiest.isoformat()}")
    rows = day.locator("table.day-customers tbody tr")
    expect(rows).to_have_count(min(len(per_customer), 50))
    times = [int(t) for t in day.locator("td.times").all_inner_texts()]
    assert times == sorted(per_customer.values(), reverse=True)[:50]
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/customers/\d+$"))
