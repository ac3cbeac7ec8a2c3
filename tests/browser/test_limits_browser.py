"""The Campaign limits page in a real Chromium: an admin opens it from the
account menu, is told which field is wrong, sets an email frequency cap and
quiet hours, and sees them listed and applied on a mailing's page (one
recipient capped, one waiting for the quiet hours' end) and its recipients."""

import datetime
import uuid

import pytest
from playwright.sync_api import expect

from browser.conftest import ensure_admin, log_in  # noqa: F401
from webapp import settings
from webapp.activation import mailings
from webapp.activation.links import Links
from webapp.models import AccountSetting, ContactLog, Customer, Mailing, Segment, SegmentMember, utcnow

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(page, queue_server, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_URL", "")  # emails go to the outbox
    ensure_admin()
    log_in(page)
    yield page
    # The live server's database is shared by the session: no limits left behind.
    AccountSetting.delete().execute()


def test_an_admin_sets_a_cap_and_quiet_hours_and_sees_them_applied(admin, live_server):
    page = admin
    tag = uuid.uuid4().hex[:8]
    people = [
        Customer.create(external_id=f"lim-{tag}-{i}", email=f"lim-{tag}-{i}@example.com", email_consent=True)
        for i in range(2)
    ]
    # The first one got an email yesterday: with "1 in 7 days" the next one is capped.
    ContactLog.create(
        customer_id=people[0].id, channel="email", at=utcnow() - datetime.timedelta(days=1), recipient_id=10**12
    )
    # Quiet hours from an hour ago to two hours from now (UTC clock times) hold now
    # for the second one, in UTC, not for the first, in Tokyo (UTC+9): it is capped.
    Customer.update(time_zone="Asia/Tokyo").where(Customer.id == people[0].id).execute()
    Customer.update(time_zone="UTC").where(Customer.id == people[1].id).execute()
    segment = Segment.create(
        code=f"limits_{tag}",
        name="Limits readers",
        type="static",
        source="list",
        definition={"version": 1, "match": "all", "blocks": []},
    )
    for p in people:
        SegmentMember.create(segment=segment, customer=p.id)
    now = utcnow()
    start, end = (
        (now - datetime.timedelta(hours=1)).strftime("%H:%M"),
        (now + datetime.timedelta(hours=2)).strftime("%H:%M"),
    )

    page.goto("/")
    page.locator("details.account summary").click()
    page.get_by_role("link", name="Campaign limits").click()
    expect(page.locator("h1")).to_have_text("Campaign limits")
    email = page.locator("section", has=page.locator("h2", has_text="Email"))
    email.locator("#email_cap_messages").fill("1")
    email.locator("#email_cap_days").fill("")
    email.locator("#email_quiet_start").fill(start)
    email.locator("#email_quiet_end").fill(end)
    page.get_by_role("button", name="Save limits").click()
    # One field left empty: the page says which, and keeps what was typed.
    expect(page.locator("#email_cap_days-error")).to_contain_text(
        "Email frequency cap: enter both the number of messages and the days (for example 2 in 7 days)"
    )
    expect(page.locator("#email_cap_messages")).to_have_value("1")
    expect(page.locator("#email_cap_days")).to_have_attribute("aria-invalid", "true")
    page.locator("#email_cap_days").fill("7")
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator(".flash, [role=status]").first).to_contain_text("Campaign limits saved.")
    rule = f"At most 1 message in 7 days per customer. Quiet hours {start}–{end} in the customer's time zone."
    expect(page.locator(".limits-now[data-channel=email]")).to_contain_text(rule)
    expect(page.locator(".limits-source")).to_contain_text("Last saved")

    mailing = mailings.create_campaign(
        {"name": f"Limited {tag}", "channel": "email", "segment_id": segment.id, "subject": "Hi", "body": "<p>Hi</p>"}
    )
    mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    mailings.run_sender(mailing.id, links=Links(live_server.app.config["SECRET_KEY"], settings.PUBLIC_URL))
    page.goto(f"/mailings/{mailing.id}")
    expect(page.locator("dl.fields")).to_contain_text(rule)
    progress = page.locator("#mailing-progress")
    expect(progress.locator(".capped-count")).to_have_text("1")
    expect(progress.locator(".quiet-wait")).to_contain_text("1 message waits for quiet hours to end")
    progress.locator(".capped-count a").click()
    expect(page.locator("table.list tbody")).to_contain_text("Over the frequency cap")
    page.goto(f"/mailings/{mailing.id}/recipients?status=pending")
    expect(page.locator("table.list tbody")).to_contain_text("Quiet hours until")
    assert Mailing.get_by_id(mailing.id).status == "sending"  # the waiting one is still to go
