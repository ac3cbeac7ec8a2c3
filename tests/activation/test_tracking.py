"""Engagement tracking through the real app, on SQLite and PostgreSQL: the
open pixel, click redirects (signed, never an open redirect), unsubscribe
(page with CSRF, RFC 8058 one-click without), and the Unisender conditions of
the seeds evaluated by the segment engine over our own events."""

import datetime

import pytest
from conftest import csrf_from

from webapp import settings
from webapp.activation.links import Links
from webapp.models import ChangedCustomer, Customer, Mailing, MessageEvent, Segment, SegmentMember, utcnow
from webapp.segments import realtime, runs

from .conftest import customer

# Unisender: "last email open in the last 2 weeks" / "last open at least 30 days ago".
OPENED_RECENTLY = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "message",
            "match": "all",
            "filters": [
                {"field": "channel", "op": "in", "values": [{"value": "email"}]},
                {"field": "kind", "op": "in", "values": [{"value": "opened"}]},
            ],
            "having": [{"agg": "last_at", "op": "relative", "from_days": -14}],
        }
    ],
}
SLEEPING = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "message",
            "match": "all",
            "filters": [{"field": "kind", "op": "in", "values": [{"value": "opened"}]}],
            "having": [{"agg": "last_at", "op": "relative", "to_days": -30}],
        }
    ],
}


@pytest.fixture
def sent(app, client):
    ann = customer("ann", phone="+79990000001", sms_consent=True)
    mailing = Mailing.create(name="Spring", kind="campaign", status="sent", channel="email")
    MessageEvent.create(
        customer=ann, channel="email", kind="sent", mailing=mailing, occurred_at=utcnow() - datetime.timedelta(days=40)
    )
    links = Links(app.config["SECRET_KEY"], settings.PUBLIC_URL)
    return ann, mailing, links


def path(url):
    return url[len(settings.PUBLIC_URL) :]


def events(kind):
    return [(e.customer_id, e.mailing_id, e.channel) for e in MessageEvent.select().where(MessageEvent.kind == kind)]


def test_open_pixel(client, sent):
    ann, mailing, links = sent
    response = client.get(path(links.open_url(mailing.id, ann.id)))
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert response.data.startswith(b"GIF89a") and "no-store" in response.headers["Cache-Control"]
    assert events("opened") == [(ann.id, mailing.id, "email")]
    client.get(path(links.open_url(mailing.id, ann.id)))  # a reload is not a new open
    assert len(events("opened")) == 1
    assert ChangedCustomer.select().where(ChangedCustomer.customer == ann).exists()
    # a forged token still gets the pixel, and records nothing
    forged = Links("another key", settings.PUBLIC_URL).open_url(mailing.id, ann.id)
    assert client.get(path(forged)).status_code == 200
    assert client.get("/t/o/garbage.gif").status_code == 200
    assert len(events("opened")) == 1


def test_click_redirects_only_to_the_signed_url(client, sent):
    ann, mailing, links = sent
    url = "https://shop.example/tea?utm=mail&x=1"
    response = client.get(path(links.click_url(mailing.id, ann.id, url)))
    assert response.status_code == 302 and response.headers["Location"] == url
    assert events("clicked") == [(ann.id, mailing.id, "email")]
    assert events("opened") == [(ann.id, mailing.id, "email")]  # images were off, the click says it was read
    token = links.click_url(mailing.id, ann.id, url).rsplit("/", 1)[1]
    payload, _, signature = token.rpartition(".")
    assert client.get(f"/t/c/{payload[:-2]}xx.{signature}").status_code == 404  # tampered
    assert client.get(path(links.open_url(mailing.id, ann.id)).replace("/t/o/", "/t/c/")[:-4]).status_code == 404
    assert client.get(path(links.click_url(mailing.id, ann.id, "javascript:alert(1)"))).status_code == 404
    assert (
        client.get(
            path(Links("x", "http://a").click_url(mailing.id, ann.id, "https://evil.example")).replace("http://a", "")
        ).status_code
        == 404
    )
    assert len(events("clicked")) == 1
    # test messages (mailing 0) redirect and record nothing
    assert client.get(path(links.click_url(0, 0, url))).status_code == 302
    assert len(events("clicked")) == 1


def test_unsubscribe_page_and_one_click(client, sent):
    ann, mailing, links = sent
    url = path(links.unsubscribe_url(mailing.id, ann.id, "email"))
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "a••@example.com" in html and "ann@example.com" not in html
    assert client.post(url, data={}).status_code == 400  # no CSRF token
    assert Customer.get_by_id(ann.id).email_consent is True
    done = client.post(url, data={"csrf_token": csrf_from(html)})
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    assert Customer.get_by_id(ann.id).email_consent is False
    assert Customer.get_by_id(ann.id).sms_consent is True
    assert events("unsubscribed") == [(ann.id, mailing.id, "email")]
    client.post(url, data={"csrf_token": csrf_from(html)})  # again: nothing new
    assert len(events("unsubscribed")) == 1
    # RFC 8058: a mail client posts without session or CSRF token
    bob = customer("bob")
    fresh = client.application.test_client()
    response = fresh.post(
        path(links.one_click_url(mailing.id, bob.id, "email")), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert Customer.get_by_id(bob.id).email_consent is False
    assert fresh.get(path(links.one_click_url(mailing.id, bob.id, "email"))).status_code == 405
    assert fresh.post("/u/forged/one-click").status_code == 404
    # the SMS link clears the SMS consent
    client.post(path(links.unsubscribe_url(mailing.id, ann.id, "sms")), data={"csrf_token": csrf_from(html)})
    assert Customer.get_by_id(ann.id).sms_consent is False


def test_unisender_conditions_see_our_events(client, sent):
    ann, mailing, links = sent
    bob = customer("bob")
    MessageEvent.create(
        customer=bob,
        channel="email",
        kind="opened",
        mailing=mailing,
        occurred_at=utcnow() - datetime.timedelta(days=45),
    )
    active = Segment.create(code="active_readers", name="Active readers", definition=OPENED_RECENTLY)
    sleeping = Segment.create(code="sleeping", name="Sleeping", definition=SLEEPING)

    def members(segment):
        run = runs.request_run(segment)
        assert runs.execute_run(run.id)
        return {m.customer.external_id for m in SegmentMember.select().where(SegmentMember.segment == segment)}

    assert members(active) == set() and members(sleeping) == {"bob"}
    client.get(path(links.open_url(mailing.id, bob.id)))  # bob woke up
    client.get(path(links.click_url(mailing.id, ann.id, "https://shop.example")))
    # the real-time re-check follows the marks the tracking left
    marks = [m for (m,) in ChangedCustomer.select(ChangedCustomer.customer).tuples()]
    assert sorted(marks) == sorted([ann.id, bob.id])
    realtime.recheck_customers(marks)
    assert {m.customer.external_id for m in SegmentMember.select().where(SegmentMember.segment == active)} == {
        "ann",
        "bob",
    }
    assert {m.customer.external_id for m in SegmentMember.select().where(SegmentMember.segment == sleeping)} == set()


def test_the_unsubscribe_page_speaks_the_customers_language(client, app, sent):
    ann, mailing, links = sent
    url = path(links.unsubscribe_url(mailing.id, ann.id, "email"))
    Customer.update(language="ru").where(Customer.id == ann.id).execute()
    page = client.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ru">' in page  # the customer's, not the browser's
    done = client.post(url, data={"csrf_token": csrf_from(page)}).get_data(as_text=True)
    assert "Вы отписались" in done
    # Unknown language: the account's default, whatever the browser asks.
    bob = customer("bob")
    app.config["DEFAULT_LANGUAGE"] = "vi"
    page = client.get(path(links.unsubscribe_url(mailing.id, bob.id, "email")), headers={"Accept-Language": "ru"})
    assert '<html lang="vi">' in page.get_data(as_text=True)
    one_click = client.post(path(links.one_click_url(mailing.id, ann.id, "sms")))
    assert one_click.get_data(as_text=True) != "You are unsubscribed."
