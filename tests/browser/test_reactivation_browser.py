"""The OkoCRM/Unisender reactivation chain (issue 20, point 11), built in Chromium
from the starter in under two minutes, then run with time moved forward the
way the trigger tests do (`run_due(now=...)`): its letters arrive in a local
aiosmtpd server on days 0, 3 and 7; a customer who opens one leaves the
sleeping segment and the chain; the consent of those still silent is cleared
on day 14.

Its own small database (the live server's app reads the shared database
proxy, re-bound here), so the demo data other browser tests count is untouched.
"""

import datetime
import time

import pytest
from activation.conftest import smtp_server  # noqa: F401 - fixture: a real SMTP server (aiosmtpd)
from playwright.sync_api import expect

from webapp import settings
from webapp.activation import mailings, starters, triggers
from webapp.activation.links import Links
from webapp.db import database, init_database, upgrade
from webapp.models import Customer, MailingRecipient, MessageEvent, Segment, SegmentMember, SegmentRun, utcnow
from webapp.segments import realtime, runs

from .conftest import ensure_admin, log_in

pytestmark = pytest.mark.browser
DAY = datetime.timedelta(days=1)


@pytest.fixture
def small_base(live_db, tmp_path):
    """A fresh database with five sleeping subscribers and three who are not."""
    init_database(f"sqlite:///{tmp_path / 'reactivation.db'}")
    database.connect(reuse_if_open=True)
    upgrade()
    ensure_admin()
    now = utcnow()
    sleeping = []
    for n in range(5):
        c = Customer.create(external_id=f"s{n}", first_name=f"Sleepy{n}", email=f"s{n}@example.com", email_consent=True)
        sleeping.append(c)
    # opened long ago: still sleeping
    MessageEvent.create(customer=sleeping[0], channel="email", kind="opened", occurred_at=now - 40 * DAY)
    awake = Customer.create(external_id="a", first_name="Awake", email="a@example.com", email_consent=True)
    MessageEvent.create(customer=awake, channel="email", kind="opened", occurred_at=now - 5 * DAY)
    Customer.create(external_id="n", first_name="NoConsent", email="n@example.com", email_consent=False)
    Customer.create(external_id="p", first_name="PhoneOnly", phone="+79990000000", email_consent=True)
    yield sleeping
    database.close()


def subjects(smtp, address):
    return [m["Subject"] for m in smtp.to(address)]


def letters(smtp, addresses):
    """Letters the customers got (the admin may get a notification email too)."""
    return sum(len(smtp.to(a)) for a in addresses)


def deliver(live_server, now):
    """The worker's part at time `now`: due steps, then their letters."""
    links = Links(live_server.app.config["SECRET_KEY"], settings.PUBLIC_URL)
    triggers.run_due(now=now)
    for mailing_id in {r.mailing_id for r in MailingRecipient.select(MailingRecipient.mailing)}:
        mailings.run_sender(mailing_id, links=links)


def test_reactivation_chain_from_the_starter(page, live_server, small_base, smtp_server):  # noqa: F811
    sleeping = small_base
    log_in(page)
    started = time.monotonic()
    page.goto("/triggers/")
    page.get_by_role("button", name="Start from: reactivation chain").click()
    expect(page.get_by_label("Name")).to_have_value("Reactivation chain")
    segment = Segment.get(Segment.code == starters.SLEEPING_CODE)
    # the worker computes the new segment (here, in this process)
    run = SegmentRun.get_or_none(SegmentRun.segment == segment.id, SegmentRun.status == "queued")
    assert runs.execute_run((run or runs.request_run(segment)).id)
    members = Customer.select().join(SegmentMember).where(SegmentMember.segment == segment.id)
    assert {c.external_id for c in members} == {c.external_id for c in sleeping}
    page.reload()  # the offer now counts the members
    expect(page.locator("fieldset.step")).to_have_count(4)
    expect(page.locator("#steps-2-body")).to_contain_text("unsubscribe_url")
    offer = page.get_by_label("Also start it now for the 5 customers already in the segment")
    expect(offer).not_to_be_checked()
    offer.check()
    page.get_by_role("button", name="Save trigger").click()
    expect(page.get_by_role("status").filter(has_text="started for 5 customers")).to_be_visible()
    assert time.monotonic() - started < 120

    start = utcnow()
    addresses = [c.email for c in sleeping]
    deliver(live_server, start + datetime.timedelta(minutes=1))  # day 0
    first = "{name}, we have not heard from you for a while"
    assert {a: subjects(smtp_server, a) for a in addresses} == {
        a: [first.format(name=c.first_name)] for a, c in zip(addresses, sleeping)
    }
    assert not smtp_server.to("a@example.com") and not smtp_server.to("n@example.com")

    # one wakes up: opens the letter, leaves the sleeping segment, and so the chain
    woke = sleeping[1]
    MessageEvent.create(customer=woke, channel="email", kind="opened", occurred_at=utcnow())
    realtime.recheck_customers([woke.id])

    deliver(live_server, start + 2 * DAY)  # nothing is due before day 3
    assert letters(smtp_server, addresses) == 5
    deliver(live_server, start + 3 * DAY + datetime.timedelta(minutes=1))
    still = [c for c in sleeping if c.id != woke.id]
    for c in still:
        assert subjects(smtp_server, c.email)[-1] == f"Something useful for you, {c.first_name}"
    assert len(smtp_server.to(woke.email)) == 1
    deliver(live_server, start + 7 * DAY + datetime.timedelta(minutes=1))
    for c in still:
        [_first, _second, last] = smtp_server.to(c.email)
        assert last["Subject"] == "Should we keep writing to you?"
        assert "/u/" in last.get_body(("html",)).get_content()  # the unsubscribe link
    assert letters(smtp_server, addresses) == 1 + 3 * len(still)

    deliver(live_server, start + 14 * DAY + datetime.timedelta(minutes=1))  # consent cleared
    consent = {c.external_id: c.email_consent for c in Customer.select()}
    assert consent == {"s0": False, "s1": True, "s2": False, "s3": False, "s4": False, "a": True, "n": False, "p": True}
    assert letters(smtp_server, addresses) == 1 + 3 * len(still)  # no letter after the last step
