"""Activation pages in a real Chromium (the live server of tests/browser):
write a mailing, preview it in its sandboxed frame, send it now and watch
the progress partial replace itself until the report, tick off a task."""

import datetime
import re

import pytest
from playwright.sync_api import expect

# Only helpers are imported: the fixtures (browser, page, live_server) come from
# tests/browser/conftest.py, so one Chromium serves the whole session.
from browser.conftest import ADMIN_EMAIL, ensure_admin, log_in  # noqa: F401
from webapp import settings
from webapp.activation import mailings
from webapp.activation.links import Links
from webapp.models import Customer, Mailing, Segment, SegmentMember, Task, User

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(page, queue_server, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_URL", "")  # out of the box: emails go to the outbox
    ensure_admin()
    log_in(page)
    return page


def test_write_preview_send_and_watch_the_report(admin, live_server):
    page = admin
    # Not the well-known customer: test_flows counts that one's messages.
    known = (
        Customer.select()
        .where(
            Customer.id != live_server.known_id,
            Customer.email_consent == True,  # noqa: E712
            Customer.email.is_null(False),
            Customer.first_name.is_null(False),
        )
        .order_by(Customer.id)
        .first()
    )
    segment = Segment.create(
        code=f"browser_{datetime.datetime.now():%H%M%S%f}",
        name="Browser readers",
        type="static",
        source="list",
        definition={"version": 1, "match": "all", "blocks": []},
    )
    SegmentMember.create(segment=segment, customer=known)
    page.goto("/mailings/")
    page.get_by_role("link", name="New mailing").first.click()
    page.get_by_label("Name").fill(f"Browser mailing {segment.code}")
    page.get_by_label("Segment").select_option(str(segment.id))
    page.get_by_label("Subject (email only)").fill("Hello {{ first_name }}")
    page.get_by_label("Message: HTML for an email, plain text for an SMS").fill(
        '<p>Dear {{ name }}, <a href="https://shop.example/">the shop</a></p>'
    )
    page.get_by_role("button", name="Show preview").click()
    expect(page.locator(".preview-subject").first).to_have_text(f"Hello {known.first_name}")
    frame = page.frame_locator("iframe.mail-preview").first
    expect(frame.locator("p").first).to_contain_text(f"Dear {known.display_name}")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#mailing-progress")).to_contain_text("Now 1 of the segment’s 1 members would get it.")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send now").click()
    progress = page.locator("#mailing-progress")
    expect(progress).to_have_attribute("data-status", "queued")
    # The worker's part, here: recipients, then the sender.
    mailing = Mailing.get(Mailing.name == f"Browser mailing {segment.code}")
    mailings.materialise(mailing.id)
    mailings.run_sender(mailing.id, links=Links(live_server.app.config["SECRET_KEY"], settings.PUBLIC_URL))
    # The partial polls itself into the report, no reload.
    expect(progress).to_have_attribute("data-status", "sent", timeout=10000)
    expect(progress.locator(".sent-count")).to_have_text("1")
    expect(page.locator("h1 .badge")).to_have_text("Sent")  # the badge follows without a reload (issue 20, point 6)
    page.reload()
    expect(page.locator("h1 .badge")).to_have_text("Sent")


def test_tick_off_a_task(admin, live_server):
    page = admin
    admin_user = User.get(User.email == ADMIN_EMAIL)
    title = f"Call back {datetime.datetime.now():%H%M%S%f}"
    task = Task.create(
        customer=live_server.known_id,
        assignee=admin_user,
        title=title,
        due_on=datetime.date.today() - datetime.timedelta(days=1),
    )
    page.goto("/tasks/")
    row = page.locator(f"#task-{task.id}")
    expect(row.locator(".badge.bad")).to_have_attribute("title", "Overdue")
    row.get_by_role("checkbox").check()
    expect(page.locator(f"#task-{task.id}")).to_have_class(re.compile(r"\bdone\b"))
    assert Task.get_by_id(task.id).done_at is not None
    page.goto(f"/customers/{live_server.known_id}")
    expect(page.locator("#tasks")).to_contain_text(title)


def test_control_group_mailing_and_its_uplift_report(admin, live_server, monkeypatch):
    """A mailing with a 10 % control group to a demo segment's members, sent to
    a local SMTP server; orders by some recipients and some held-out
    customers; the uplift report read on the page."""
    import uuid

    from activation.conftest import free_port
    from aiosmtpd.controller import Controller

    from webapp import rollups
    from webapp.models import MailingRecipient, Order, utcnow

    from .conftest import screenshot

    class Count:
        def __init__(self):
            self.to = []

        async def handle_DATA(self, server, session, envelope):
            self.to.extend(envelope.rcpt_tos)
            return "250 OK"

    handler = Count()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setattr(settings, "SMTP_URL", f"smtp://127.0.0.1:{port}")
        page = admin
        # A segment of the demo customers who can get email (not the well-known one).
        segment = Segment.create(
            code=f"uplift_{datetime.datetime.now():%H%M%S%f}",
            name="Demo readers",
            type="static",
            source="list",
            definition={"version": 1, "match": "all", "blocks": []},
        )
        readers = (
            Customer.select(Customer.id)
            .where(
                Customer.id != live_server.known_id,
                Customer.email_consent == True,  # noqa: E712
                Customer.email.is_null(False),
            )
            .order_by(Customer.id)
            .limit(200)
        )
        for c in readers:
            SegmentMember.create(segment=segment, customer=c.id)
        assert len(readers) > 50
        name = f"Uplift mailing {segment.code}"
        page.goto("/mailings/new")
        page.get_by_label("Name").fill(name)
        page.get_by_label("Segment").select_option(str(segment.id))
        page.get_by_label("Subject (email only)").fill("Spring tea")
        page.get_by_label("Message: HTML for an email, plain text for an SMS").fill("<p>Hello {{ first_name }}</p>")
        page.get_by_label("Control group, %").fill("10")
        page.get_by_role("button", name="Save draft").click()
        expect(page.locator("dd.holdout")).to_have_text("10%")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Send now").click()
        progress = page.locator("#mailing-progress")
        expect(progress).to_have_attribute("data-status", "queued")
        mailing = Mailing.get(Mailing.name == name)
        mailings.materialise(mailing.id)
        mailings.run_sender(mailing.id, links=Links(live_server.app.config["SECRET_KEY"], settings.PUBLIC_URL))
        expect(progress).to_have_attribute("data-status", "sent", timeout=10000)
        counts = mailings.counts(mailing.id)
        assert counts["held_out"] > 0 and counts["sent"] == len(handler.to)
        expect(progress.locator(".held-count")).to_have_text(str(counts["held_out"]))

        def rows(status):
            return list(
                MailingRecipient.select()
                .where(MailingRecipient.mailing == mailing.id, MailingRecipient.status == status)
                .order_by(MailingRecipient.id)
            )

        sent, held = rows("sent"), rows("held_out")
        held_addresses = {Customer.get_by_id(r.customer_id).email for r in held}
        assert not held_addresses & set(handler.to)  # the control group got nothing
        buyers = sent[:3] + held[:1]
        for r in buyers:
            Order.create(
                external_id=f"uplift-{uuid.uuid4().hex}",
                customer=r.customer_id,
                ordered_at=utcnow() + datetime.timedelta(hours=2),
                total_cents=2500,
            )
        # as every order write does: the builder's order counts read the per-customer rollup
        rollups.refresh_order_stats([r.customer_id for r in buyers])
        page.reload()
        report = page.locator("#uplift")
        expect(report.locator(".uplift-sent-n")).to_have_text(str(len(sent)))
        expect(report.locator(".uplift-control-n")).to_have_text(str(len(held)))
        expect(report.locator(".uplift-sent-conv")).to_have_text(f"{300 / len(sent):.1f}%")
        expect(report.locator(".uplift-control-conv")).to_have_text(f"{100 / len(held):.1f}%")
        expect(report.locator(".uplift-not-enough")).to_contain_text("Not enough data yet")
        expect(report.locator("svg")).to_be_visible()
        screenshot(page, "mailing-uplift")
    finally:
        controller.stop()
