"""The RFM page in a real Chromium: "Recompute now" queues a real job, the
progress fragment polls itself into the heat map once the run is done (the
worker's part is done in the test process), a cell opens its customers by
keyboard, and a customer links to the card."""

import re

import peewee as pw
import pytest
from playwright.sync_api import expect
from redis import Redis
from rq.job import Job

from webapp.models import RfmRun, RfmScore
from webapp.rfm import jobs
from webapp.rfm import service as rfm

from .conftest import screenshot

pytestmark = pytest.mark.browser


def test_rfm_grid_recompute_and_a_cells_customers(admin_page, queue_server):
    page = admin_page
    page.get_by_role("link", name="RFM", exact=True).click()
    expect(page.get_by_role("heading", name="RFM analysis", exact=True)).to_be_visible()
    if rfm.last_done_run() is None:
        expect(page.locator("#rfm-results")).to_contain_text("RFM has not been computed yet")
    page.get_by_role("button", name="Recompute now").click()
    expect(page.locator("#rfm-results")).to_contain_text("Waiting for the worker")
    expect(page.get_by_role("button", name="Recompute now")).to_be_disabled()
    run = RfmRun.get(RfmRun.status == "queued")
    Job.fetch(jobs.job_id(run.id), connection=Redis.from_url(queue_server)).delete()  # the test is the worker
    rfm.execute_run(run.id)
    grid = page.locator("table.rfm-grid")
    expect(grid).to_be_visible(timeout=6000)  # the fragment polls itself
    expect(page.locator("#rfm-results")).to_contain_text(f"as of {run.as_of.isoformat()}")
    expect(grid.locator("tbody tr")).to_have_count(5)
    expect(grid.locator("td.rfm-cell")).to_have_count(25)
    screenshot(page, "rfm")

    # the fullest cell, counted straight from the scores table
    n_col = pw.fn.COUNT(RfmScore.customer)
    ((r, f, n),) = (
        RfmScore.select(RfmScore.r, RfmScore.f, n_col)
        .group_by(RfmScore.r, RfmScore.f)
        .order_by(n_col.desc(), RfmScore.r, RfmScore.f)
        .limit(1)
        .tuples()
    )
    cell = grid.locator(f'td[data-r="{r}"][data-f="{f}"]')
    expect(cell.locator("a.rfm-count")).to_have_text(f"{n:,}")
    cell.locator("a.rfm-count").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(f"Recency {r} · frequency {f}"))).to_be_visible()
    rows = page.locator("table.rfm-customers tbody tr")
    expect(rows).to_have_count(min(n, 50))
    expect(rows.first.locator("td.num").nth(0)).to_have_text(str(r))
    expect(rows.first.locator("td.num").nth(1)).to_have_text(str(f))
    screenshot(page, "rfm_cell")
    name = rows.first.locator("th a").inner_text()
    rows.first.locator("th a").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
