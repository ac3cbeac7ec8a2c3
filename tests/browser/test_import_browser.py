"""Import in a real Chromium with a real worker process: upload a CSV, check
the preview, start it, watch the progress bar fill and finish, and download
the rejected rows.

The worker (worker.py) is started only once the page shows the queued import
polling, so the test sees every state of the progress partial.
"""

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect
from procs import kill_tree
from redis import Redis
from rq import Queue

from webapp.models import Customer, ImportRun

from .conftest import screenshot

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ROWS = 50000  # big enough to be seen running for a few polls
BAD_LINES = {101: "31.02.1990", 5001: "not a date", 45001: "1990-13-01"}


@pytest.fixture
def import_setup(live_server, queue_server, tmp_path):
    app = live_server.app
    app.config["REDIS_URL"] = queue_server
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    Queue("default", connection=Redis.from_url(queue_server)).empty()
    procs = []

    def start_worker():
        env = dict(
            os.environ,
            DATABASE_URL=live_server.db_url,
            REDIS_URL=queue_server,
            PYTHONUNBUFFERED="1",
            SEGMENTO_INSTANCE=str(tmp_path / "instance"),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=ROOT,
                env=env,
                start_new_session=True,
                stdout=open(tmp_path / "worker.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )

    yield start_worker
    for proc in procs:
        if proc.poll() is None:
            kill_tree(proc.pid)
            proc.wait(10)
    app.config.pop("REDIS_URL", None)


def customers_csv(path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("external_id;first_name;city;birth_date;email_consent\n")
        for line in range(2, ROWS + 2):
            birth = BAD_LINES.get(line, "01.02.1990")
            f.write(f"browser-{line};Имя {line};Казань;{birth};да\n")
    return path


def test_upload_watch_progress_and_download_rejected_rows(admin_page, import_setup, tmp_path):
    page = admin_page
    page.goto("/imports/")
    page.get_by_role("link", name="New import").first.click()
    page.get_by_label("What the file holds").select_option("customers")
    page.get_by_label("CSV file").set_input_files(str(customers_csv(tmp_path / "browser-customers.csv")))
    page.get_by_role("button", name="Upload and preview").click()

    # Preview: what was detected, the first rows, the mapping.
    expect(page.locator("#detected")).to_have_text("Detected: UTF-8, semicolon")
    expect(page.locator("table.preview-rows")).to_contain_text("Имя 2")
    expect(page.get_by_label("birth_date", exact=True)).to_have_value("birth_date")
    screenshot(page, "import-preview")
    page.get_by_role("button", name="Start import").click()

    # Queued: the partial polls; no worker yet.
    progress = page.locator("#import-progress")
    expect(progress).to_have_attribute("data-status", "queued")
    expect(progress).to_contain_text("Waiting for the worker")
    import_setup()

    # Running: the bar fills, then the report replaces it.
    running_bar = page.locator("#import-progress[data-status=running] progress.import-bar")
    expect(running_bar).to_be_visible(timeout=60000)
    partly = page.locator("#import-progress[data-status=running] .rows-done")
    expect(partly).to_have_text(re.compile(r"^[1-9][\d,]* / 50,000$"), timeout=60000)  # some batches in
    screenshot(page, "import-progress")
    expect(page.locator("#import-progress[data-status=done]")).to_be_visible(timeout=180000)
    run = ImportRun.get(ImportRun.file_name == "browser-customers.csv")
    assert (run.rows_total, run.rows_imported, run.rows_rejected) == (ROWS, ROWS - 3, 3)
    expect(progress.locator(".rows-imported")).to_have_text(f"{ROWS - 3:,}")
    expect(progress.locator(".rows-rejected")).to_have_text("3")
    rejected = progress.locator("table.rejections tbody tr")
    expect(rejected).to_have_count(3)
    expect(rejected.first).to_contain_text("“31.02.1990” is not a date")
    screenshot(page, "import-report")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download rejected rows (CSV)").click()
    download = info.value
    assert download.suggested_filename == "browser-customers-rejected.csv"
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows[0] == ["external_id", "first_name", "city", "birth_date", "email_consent", "error"]
    assert [(r[0], r[3]) for r in rows[1:]] == [(f"browser-{line}", birth) for line, birth in BAD_LINES.items()]
    assert rows[1][5].startswith("line 101, column birth_date:")
    assert Customer.select().where(Customer.external_id.startswith("browser-")).count() == ROWS - 3

    # The Imports page lists the run.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    expect(page.locator("table.imports-table")).to_contain_text("browser-customers.csv")
