"""Versions and explanations in a real Chromium (issue 18): edit a segment
twice and restore the first version; open a customer card and read why the
customer is in two segments."""

import re

import pytest
from playwright.sync_api import expect

from webapp.models import Segment, SegmentRun, SegmentVersion, User
from webapp.segments import runs
from webapp.segments import service as segments

from .conftest import ADMIN_EMAIL, ensure_admin
from .test_builder import pick, quiet

pytestmark = pytest.mark.browser


def in_(field, *values):
    return {"field": field, "op": "in", "values": [{"value": v, "exclude": False} for v in values]}


def run_queued():
    for run in list(SegmentRun.select().where(SegmentRun.status == "queued").order_by(SegmentRun.id)):
        runs.execute_run(run.id)


def make(code, name, blocks, **kw):
    ensure_admin()
    Segment.delete().where(Segment.code == code).execute()
    return segments.create_segment(
        dict({"code": code, "name": name, "definition": {"version": 1, "match": "all", "blocks": blocks}}, **kw),
        user=User.get(User.email == ADMIN_EMAIL),
    )


def test_edit_a_segment_twice_and_restore_the_first_version(admin_page, queue_server):
    page = admin_page
    segment = make(
        "sg_versions",
        "Moscow, versioned",
        [{"entity": "customer", "filters": [in_("city", "Москва")]}],
        interval_minutes=15,
    )
    run_queued()
    first = SegmentVersion.get(segment=segment.id, number=1)
    # edit 1: "Recompute every" 15 -> 60 minutes
    page.goto("/segments/sg_versions/edit")
    page.locator("input[name=interval_minutes]").fill("60")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(r"/segments/sg_versions$"))
    # edit 2: the city filter also includes Санкт-Петербург
    page.goto("/segments/sg_versions/edit")
    quiet(page)
    pick(page, page.locator("#blocks-0 li.filter").first, "санкт", "Санкт-Петербург")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(r"/segments/sg_versions$"))

    versions = page.locator("ol.versions")
    expect(versions.locator("li.version")).to_have_count(3)
    third, second = versions.locator("[data-version='3']"), versions.locator("[data-version='2']")
    expect(third).to_contain_text("Block 1 (Customer):")
    expect(third).to_contain_text("City now also includes “Санкт-Петербург”")
    expect(second).to_contain_text("“Recompute every”: 15 minutes → 60 minutes")
    expect(versions.locator("[data-version='1']")).to_contain_text("at its first run")

    page.once("dialog", lambda dialog: dialog.accept())  # "Restore version 1? ..."
    versions.locator("[data-version='1']").get_by_role("button", name="Restore").click()
    # (the flash "Version 1 restored ..." is a toast that may be gone on a slow machine: the list tells)
    restored = page.locator("ol.versions [data-version='4']")
    expect(restored).to_contain_text("restored from version 1")
    expect(restored).to_contain_text("no longer includes “Санкт-Петербург”")
    expect(restored).to_contain_text("“Recompute every”: 60 minutes → 15 minutes")
    segment = Segment.get_by_id(segment.id)
    assert segment.definition == first.definition and segment.interval_minutes == 15


def test_a_customer_card_says_why_they_are_in_two_segments(admin_page, live_server, queue_server):
    page = admin_page
    make(
        "sg_why_women",
        "Women in Moscow",
        [{"entity": "customer", "filters": [in_("city", "Москва"), in_("gender", "female")]}],
    )
    make(
        "sg_why_runners",
        "VIP runners",
        [
            {"entity": "customer", "filters": [in_("tags", "VIP")]},
            {"entity": "order", "filters": [in_("product_group", "Спорт")]},
        ],
    )
    run_queued()
    page.goto(f"/customers/{live_server.known_id}")
    section = page.locator("#segment-history")
    section.scroll_into_view_if_needed()  # loaded when revealed

    women = section.locator("details.why-segment[data-segment='sg_why_women']")
    women.get_by_text("Why in “Women in Moscow”?").click()
    expect(women.locator(".why")).to_have_attribute("data-holds", "true")
    expect(women.locator("[data-block='1']")).to_contain_text("the value is “Москва”")
    expect(women.locator("[data-block='1']")).to_contain_text("the value is “Female”")

    runners = section.locator("details.why-segment[data-segment='sg_why_runners']")
    runners.get_by_text("Why in “VIP runners”?").click()
    expect(runners.locator(".why")).to_contain_text("Ирина Лебедева matches the definition.")
    # (the demo data named the tag first, in its own spelling)
    expect(runners.locator("[data-block='1']")).to_contain_text(re.compile("the value is “vip”", re.I))
    expect(runners.locator("[data-block='2']")).to_contain_text("1 record passes")
    expect(runners.locator(".why-block.fail")).to_have_count(0)
