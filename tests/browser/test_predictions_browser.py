"""Predictions in a real Chromium: the model page computes through "Recompute now"
(the test is the worker) and shows the tracking chart and the histogram for the demo
data; a marketer builds "p_alive below 0.3 and predicted value above 5,000" in the
builder and saves it; after the nightly job a lapsed valuable customer enters the
segment and the trigger on entry fires; the card reads the scores in plain words."""

import datetime
import re

import pytest
from playwright.sync_api import expect
from redis import Redis
from rq.job import Job

from webapp.activation import triggers
from webapp.models import Customer, Notification, Order, PredictionFit, Segment, SegmentMember, SegmentRun, User, utcnow
from webapp.predictions import jobs, service
from webapp.rollups import refresh_order_stats
from webapp.segments import runs

from .conftest import ADMIN_EMAIL, screenshot
from .test_builder import add_block, add_filter, check_and_save, new_segment, settled

pytestmark = pytest.mark.browser


def test_model_page_builder_segment_and_entry_trigger_after_the_nightly_job(
    admin_page, live_server, queue_server, tmp_path
):
    page = admin_page
    page.get_by_role("link", name="Predictions", exact=True).click()
    expect(page.get_by_role("heading", name="Predictions", exact=True)).to_be_visible()
    page.get_by_role("button", name="Recompute now").click()
    expect(page.locator("#predictions-model")).to_contain_text("Waiting for the worker")
    fit = PredictionFit.get(PredictionFit.status == "queued")
    Job.fetch(jobs.job_id(fit.id), connection=Redis.from_url(queue_server)).delete()  # the test is the worker
    fit = service.execute_fit(fit.id)
    assert fit.status == "done", fit.error
    model = page.locator("#predictions-model")
    expect(model.locator("svg.predictions-tracking")).to_be_visible(timeout=6000)  # the fragment polls itself
    expect(model.locator("svg.predictions-histogram")).to_be_visible()
    expect(model.locator("svg.predictions-tracking polyline")).to_have_count(2)  # actual and model
    expect(model.locator("svg.predictions-histogram rect.bar")).to_have_count(2 * (service.HISTOGRAM_MAX + 1))
    expect(model).to_contain_text(f"r = {fit.bgnbd['r']:.4f}")
    expect(model).to_contain_text(f"to {fit.calibration_end.isoformat()} (calibration end)")
    screenshot(page, "predictions")

    # the marketer's segment, built with clicks and typing
    new_segment(page, "Valuable but lapsing")
    block = add_block(page, "Customer")
    row = add_filter(page, block, "Predicted: probability still buying (0–1)")
    row.locator("input[name$='-to']").fill("0.3")
    settled(page)
    row = add_filter(page, block, "Predicted: value over the next 12 months")
    row.locator("input[name$='-from']").fill("5000")
    settled(page)
    _count, definition = check_and_save(page, live_server, tmp_path, expect_some=False)
    assert definition["blocks"][0]["filters"] == [
        {"field": "predicted.p_alive", "op": "between", "to": 0.3},
        {"field": "predicted.clv", "op": "between", "from": 5000},
    ]
    segment = Segment.get(Segment.name == "Valuable but lapsing")
    for run in list(SegmentRun.select().where(SegmentRun.segment == segment.id, SegmentRun.status == "queued")):
        runs.execute_run(run.id)
    admin = User.get(User.email == ADMIN_EMAIL)
    triggers.save(
        {
            "name": "Win back",
            "segment_id": segment.id,
            "event": "entered",
            "active": "1",
            "steps": [
                {
                    "action": "notify",
                    "delay_value": 0,
                    "delay_unit": "seconds",
                    "only_members": "1",
                    "text": "Win back {{ name }}",
                    "user_id": str(admin.id),
                }
            ],
        }
    )

    # big orders three weeks apart, the last 200 days ago: no scores until the nightly fit
    vip = Customer.create(external_id="pred-lapsed-vip", first_name="Lapsed", last_name="Vip")
    now = utcnow()
    for n in range(6):
        Order.create(
            external_id=f"pred-lv-{n}",
            customer=vip,
            total_cents=200_000_00,
            ordered_at=now - datetime.timedelta(days=300 - 20 * n),
        )
    refresh_order_stats([vip.id])  # as every order writer does
    assert not SegmentMember.select().where(SegmentMember.customer == vip.id).exists()
    nightly = PredictionFit.get_by_id(jobs.nightly_job())
    assert nightly.status == "done"
    scores = service.customer_scores(vip.id)
    assert scores["p_alive"] < 0.3 and scores["clv"] > 5000
    for run in list(SegmentRun.select().where(SegmentRun.segment == segment.id, SegmentRun.status == "queued")):
        runs.execute_run(run.id)  # the test is the worker
    assert SegmentMember.select().where(SegmentMember.segment == segment.id, SegmentMember.customer == vip.id).exists()
    triggers.consume()
    triggers.run_due()
    assert (
        Notification.select().where(Notification.user == admin, Notification.message == "Win back Lapsed Vip").exists()
    )

    # the card in plain words
    page.goto(f"/customers/{vip.id}")
    card = page.locator("section.predictions-card")
    expect(card).to_contain_text(f"Probably lost: {round(scores['p_alive'] * 100)} % chance of ordering again")
    expect(card).to_contain_text("Predicted value, next 12 months")
    screenshot(page, "predictions_card")
    # the segment page lists the entry
    page.goto(f"/segments/{segment.code}")
    expect(page.get_by_text(re.compile("Lapsed Vip")).first).to_be_visible()
