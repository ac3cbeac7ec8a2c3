"""A team administered in a real Chromium (issue 21): an admin invites a
marketer, who joins from the email in a local SMTP server (aiosmtpd) and signs
in; once deactivated they cannot; the 11th wrong password in a minute is
refused; the audit log shows each step."""

import re

import pytest
from activation.conftest import smtp_server  # noqa: F401 - a fixture, used by name
from conftest import PASSWORD
from playwright.sync_api import expect

from webapp import settings
from webapp.models import User
from webapp.web import rate_limiter

from .conftest import screenshot

pytestmark = pytest.mark.browser

MARKETER = "mara.marketer@example.com"
THROTTLED = "Too many failed sign-ins from here or for this account. Wait a minute and try again."


@pytest.fixture
def fresh_throttle(live_server):
    """Sign-in counts of other tests (same address) do not reach this one, nor this one's theirs."""
    limiter = rate_limiter(live_server.app)
    limiter.reset()
    yield
    limiter.reset()


def try_log_in(page, email, password):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_invite_join_deactivate_throttle_and_the_audit_log(
    admin_page, browser, live_server, smtp_server, fresh_throttle, monkeypatch
):
    monkeypatch.setattr(settings, "PUBLIC_URL", live_server.url)  # the links in emails point there
    User.delete().where(User.email == MARKETER).execute()
    page = admin_page
    page.goto("/users/")
    page.get_by_role("link", name="Invite a user").click()
    page.get_by_label("Email").fill(MARKETER)
    page.get_by_label("Role").select_option("marketer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {MARKETER}")
    expect(page.locator("table.users")).to_contain_text("Invited")

    # the marketer opens the link in the email the local SMTP server received
    (message,) = smtp_server.to(MARKETER)
    assert message["Subject"] == "You are invited to Segmento"
    link = re.search(r"http://127\.0\.0\.1:\d+/invite/\S+", message.get_content()).group(0)
    theirs = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 850}, locale="en-US")
    theirs.set_default_timeout(5000)
    marketer = theirs.new_page()
    marketer.goto(link)
    expect(marketer.get_by_role("heading", name="Join Segmento")).to_be_visible()
    marketer.get_by_label("Your name").fill("Mara")
    marketer.get_by_label("New password", exact=True).fill(PASSWORD)
    marketer.get_by_label("Repeat new password").fill(PASSWORD)
    marketer.get_by_role("button", name="Join").click()
    expect(marketer.get_by_role("status")).to_contain_text("Welcome to Segmento, Mara!")
    expect(marketer.locator(".usermenu")).to_contain_text("Mara")

    # the admin deactivates them, after a confirmation
    page.goto("/users/")
    row = page.locator("tr", has_text=MARKETER)
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("Marketer")
    screenshot(page, "team-users")
    row.get_by_role("link", name="Deactivate").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("signed out everywhere")
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator("tr", has_text=MARKETER)).to_contain_text("Deactivated")
    # their open session ends, and they cannot sign in again
    marketer.goto("/customers/")
    expect(marketer).to_have_url(re.compile(r"/login"))
    try_log_in(marketer, MARKETER, PASSWORD)
    expect(marketer.get_by_role("alert")).to_have_text("Wrong email or password.")

    # ten wrong passwords in a minute (that refusal was the first); the 11th is refused
    for _ in range(9):
        try_log_in(marketer, MARKETER, "not the password")
        expect(marketer.get_by_role("alert")).to_have_text("Wrong email or password.")
    try_log_in(marketer, MARKETER, "not the password")
    expect(marketer.get_by_role("alert")).to_have_text(THROTTLED)
    theirs.close()

    # the audit log shows each step
    page.goto("/audit/")
    log = page.locator("table.audit")
    for action in [
        "Invited a user",
        "Accepted an invitation",
        "Deactivated a user",
        "Sign-in failed",
        "Sign-in refused: too many attempts",
        "Signed in",
    ]:
        expect(log).to_contain_text(action)
    page.get_by_label("Action").select_option(label="Accepted an invitation")
    expect(log.locator("tbody tr")).to_have_count(1)
    expect(log).to_contain_text(MARKETER)
    screenshot(page, "audit-log")
