"""The overlap of three demo segments in a real Chromium (issue 18, point 3):
picked on the overlap page, the matrix and Venn picture drawn by htmx, and
"not in this one" opening the builder with the difference's definition."""

import pytest
from playwright.sync_api import expect

from webapp.models import Segment
from webapp.segments import overlap
from webapp.segments import service as segments

from .conftest import screenshot
from .test_segments import customer_block, in_, orders_block, run_queued

pytestmark = pytest.mark.browser

THREE = [
    ("ov_men", "Men", customer_block(in_("gender", "male"))),
    ("ov_moscow", "Moscow", customer_block(in_("city", "Москва"))),
    ("ov_buyers", "Two orders or more", orders_block({"agg": "count", "op": "between", "from": 2})),
]


@pytest.fixture
def three(live_db, queue_server):
    from .conftest import ensure_admin

    admin = ensure_admin()
    for code, name, definition in THREE:
        if not Segment.select().where(Segment.code == code).exists():
            segments.create_segment(
                {"code": code, "name": name, "type": "dynamic", "active": True, "definition": definition}, user=admin
            )
    run_queued()
    return overlap.overlap([code for code, _n, _d in THREE])


def test_overlap_of_three_demo_segments(admin_page, three):
    page = admin_page
    assert all(three.sizes) and three.count(0, 1) > 0  # the demo data make them overlap
    page.goto("/segments/")
    page.get_by_role("link", name="Compare segments").click()
    expect(page.get_by_role("heading", name="Segment overlap")).to_be_visible()
    for code, _name, _d in THREE:
        # by the segment's code: other browser tests' segments have names containing "Men" and "Moscow"
        page.locator(f'input[name="s"][value="{code}"]').check()
    page.get_by_role("button", name="Compare").click()
    matrix = page.locator("table.overlap-matrix")
    expect(matrix).to_be_visible()
    rows = matrix.locator("tbody tr")
    expect(rows).to_have_count(3)
    # row Men, column Moscow: customers in both, and their share of Men
    cell = rows.nth(0).locator("td").nth(1)
    both, men = three.count(0, 1), three.sizes[0]
    expect(cell.locator("strong")).to_have_text(f"{both:,}")
    expect(cell).to_contain_text(f"{both / men * 100:.1f}%")
    venn = page.locator("svg.venn-chart")
    expect(venn).to_be_visible()
    expect(venn.locator("circle")).to_have_count(3)
    expect(venn.locator("text.venn-count")).to_have_count(7)
    assert "s=ov_men" in page.url  # the picked segments are in the address, to share or reload
    screenshot(page, "segment-overlap")
    cell.get_by_role("link").click()
    page.wait_for_url("**/segments/new?**")
    expect(page.get_by_label("Name")).to_have_value("Men, not in Moscow")
    expect(page.locator(".chip.include .chip-label")).to_have_text("Men")
    expect(page.locator(".chip.exclude .chip-label")).to_have_text("Moscow")
    expect(page.locator("#preview-number")).to_have_attribute("data-count", str(men - both), timeout=10000)
