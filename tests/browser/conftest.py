"""Browser tests: the real app on a live server, driven by one Chromium per session.

The server is werkzeug's, in a thread on a free port of 127.0.0.1, serving an
app from `create_app` on a temporary, migrated SQLite database with demo data
(webapp.demo.generate) plus one well-known customer (sample_data.known_customer).

Chromium is /usr/bin/chromium. Locally a missing Chromium skips these tests
with the reason; in CI (CI=true) it fails them.
"""

import os
import threading
import types
import uuid
from pathlib import Path

import pytest
from conftest import IN_CI, PASSWORD
from werkzeug.serving import make_server

from webapp import create_app
from webapp.db import database, init_database, upgrade

from . import sample_data

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 850}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADMIN_EMAIL = "admin@example.com"
DEMO_CUSTOMERS = 300


def _load_data():
    """Demo data when the demo loader is there, and always the known customer."""
    from webapp import demo

    generate = getattr(demo, "generate", None)
    if generate is not None:
        generate(customers=DEMO_CUSTOMERS, seed=1)
    else:
        sample_data.populate(customers=DEMO_CUSTOMERS, seed=1)
    return sample_data.known_customer()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("browser") / "segmento.db"
    url = f"sqlite:///{path}"
    init_database(url)
    with database:
        upgrade()
        known = _load_data()
    # Roubles: the demo shops are Russian, and the tour's screenshots are in Russian.
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "browser-" + uuid.uuid4().hex, "WTF_CSRF_ENABLED": True, "CURRENCY": "RUB"}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield types.SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", db_url=url, app=app, known_id=known.id)
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def live_db(live_server):
    """The tests read and write the live server's database directly too.

    Other test modules re-bind the shared database proxy to their backend,
    so bind it back before each browser test.
    """
    init_database(live_server.db_url)
    database.connect(reuse_if_open=True)
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(5000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def ensure_admin():
    from webapp.accounts.service import create_user, find_user

    return find_user(ADMIN_EMAIL) or create_user(ADMIN_EMAIL, PASSWORD, role="admin", name="Ada Admin")


def log_in(page, email=ADMIN_EMAIL, password=PASSWORD, go=True):
    """Log in through the login form (`go=False`: the form already on the page)."""
    if go:
        page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture
def admin_page(page):
    """A page logged in as the admin (through the login form)."""
    ensure_admin()
    log_in(page)
    return page


def screenshot(page, name):
    """Save the viewport as docs/screenshots/<name>.png (overwritten on each run), in Russian.

    The README's tour shows Segmento in Russian: a page in another language is
    opened again at the same address, with the same session, in a browser
    that asks for Russian, scrolled as far, and that page is saved. (State
    kept only in the page, as in a half-built segment, is not carried over:
    such pictures are taken by a test that works in Russian, test_i18n_browser.)
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SCREENSHOTS / f"{name}.png")
    if page.locator("html").get_attribute("lang") == "ru":
        page.screenshot(path=path)
        return
    scrolled = page.evaluate("window.scrollY")
    context = page.context.browser.new_context(
        base_url=None, viewport=VIEWPORT, locale="ru-RU", storage_state=page.context.storage_state()
    )
    try:
        twin = context.new_page()
        twin.goto(page.url)
        twin.wait_for_load_state("networkidle")
        twin.evaluate("y => window.scrollTo(0, y)", scrolled)
        twin.wait_for_timeout(200)
        twin.screenshot(path=path)
    finally:
        context.close()
