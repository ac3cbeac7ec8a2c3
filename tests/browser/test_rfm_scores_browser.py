"""The builder's "RFM scores" filter in a real Chromium (issue 20, point 13): a
marketer ticks "R is 5 and F is 4 or 5" in the ready-made filters, gets the
segment-reference block, and the live count equals the customers counted
straight from the stored scores."""

import re

import pytest
from playwright.sync_api import expect

from webapp.models import RfmScore, Segment
from webapp.rfm import service as rfm

from .test_builder import new_segment, preview_count, quiet, shown_definition

pytestmark = pytest.mark.browser


def test_r_is_5_and_f_is_4_or_5(admin_page):
    page = admin_page
    rfm.compute_now(trigger="user")
    want = RfmScore.select().where(RfmScore.r == 5, RfmScore.f.in_([4, 5])).count()
    assert want > 0  # the demo data has such customers, so a count of 0 would be a failure

    new_segment(page, "Recent and frequent")
    page.locator(".shortcut-menu > summary").click()
    picker = page.locator("fieldset.rfm-score-picker")
    expect(picker.get_by_role("group", name="Recency (R)")).to_be_visible()
    picker.get_by_role("group", name="Recency (R)").get_by_label("5", exact=True).check()
    frequency = picker.get_by_role("group", name="Frequency (F)")
    frequency.get_by_label("4", exact=True).check()
    frequency.get_by_label("5", exact=True).check()
    picker.get_by_role("button", name="Add the RFM score filter").click()
    block = page.locator("#blocks-0")
    expect(block.locator("h3")).to_contain_text("Segments")
    quiet(page)
    rows = block.locator("ol.filters > li.filter")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".chips .chip-label")).to_have_text(["RFM: R5"])
    expect(rows.nth(1).locator(".chips .chip-label")).to_have_text(["RFM: F4", "RFM: F5"])

    assert preview_count(page) == want
    definition = shown_definition(page)
    assert [[v["value"] for v in f["values"]] for f in definition["blocks"][0]["filters"]] == [
        ["rfm_r5"],
        ["rfm_f4", "rfm_f5"],
    ]
    code = page.locator("#code").input_value()
    page.get_by_role("button", name="Create segment").click()
    expect(page).to_have_url(re.compile(rf"/segments/{code}$"))
    assert Segment.get(Segment.code == code).definition == definition
