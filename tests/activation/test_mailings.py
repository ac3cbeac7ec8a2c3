"""Campaign mailings in-process, on SQLite and PostgreSQL, against a real SMTP
server (aiosmtpd) and a local HTTP server as SMS gateway: recipients and skip
reasons, personalisation, exactly one message each, outboxes, refusals,
consent checked again at send time, the report."""

import json

import pytest

from webapp import settings
from webapp.activation import mailings
from webapp.activation.links import Links
from webapp.db import database
from webapp.fields.service import create_field, set_value
from webapp.models import (
    ChangedCustomer,
    Customer,
    Mailing,
    MailingRecipient,
    MessageEvent,
    OutboxEmail,
    OutboxSms,
    Segment,
    User,
    utcnow,
)

from .conftest import customer, static_segment

LINKS = Links("test-secret", "http://track.test")


@pytest.fixture
def base(db, queue_server):
    manager = User.create(
        email="olga@example.com", email_ci="olga@example.com", name="Olga", password_hash="x", role="manager"
    )
    tea = create_field("customer", "favourite_tea", "Favourite tea", "string")
    people = [
        customer("ann", first_name="Анна", manager=manager),
        customer("bob", first_name="Bob <b>"),
        customer("cid", email_consent=False),
        customer("dan", email=None),
        customer("eve", email="not-an-address"),
        customer("fay", first_name="Fay", phone="+79990000001", sms_consent=True),
        customer("gus", phone="+79990000002", sms_consent=False),
    ]
    set_value(tea, people[0].id, "Пуэр")
    return {"people": {c.external_id: c for c in people}, "segment": static_segment("all", people), "manager": manager}


def campaign(segment, channel="email", **kw):
    data = {
        "name": kw.pop("name", f"Spring {channel}"),
        "channel": channel,
        "segment_id": segment.id,
        "subject": "Hello {{ first_name }}",
        "body": kw.pop(
            "body",
            '<p>Hi {{ first_name|default("friend") }}, your tea: {{ custom.favourite_tea }}. '
            'Manager: {{ manager }}. <a href="https://shop.example/tea?a=1&amp;b=2">Shop</a></p>',
        ),
        **kw,
    }
    return mailings.create_campaign(data)


def send(mailing):
    mailing = mailings.send_now(mailing)
    assert mailing.status == "queued"
    assert mailings.materialise(mailing.id) is not None
    assert mailings.run_sender(mailing.id, links=LINKS, seconds=30) == "done"
    return Mailing.get_by_id(mailing.id)


def test_email_campaign_over_smtp(base, smtp_server):
    # a segment that reads messages: sends mark their customers for the real-time update
    Segment.create(
        code="got_mail",
        name="Got mail",
        definition={
            "version": 1,
            "match": "all",
            "blocks": [
                {
                    "entity": "message",
                    "match": "all",
                    "filters": [{"field": "kind", "op": "in", "values": [{"value": "sent"}]}],
                }
            ],
        },
    )
    mailing = send(campaign(base["segment"]))
    assert mailing.status == "sent" and mailing.finished_at is not None
    # consent and an address decide; each recipient got exactly one message
    assert dict(smtp_server.count) == {
        "ann@example.com": 1,
        "bob@example.com": 1,
        "fay@example.com": 1,
        "gus@example.com": 1,
    }
    report = mailings.report(mailing)
    assert (report["sent"], report["skipped"], report["failed"], report["total"]) == (4, 3, 0, 7)
    assert dict(report["skipped_by"]) == {"No consent for this channel": 1, "No address": 2}
    # personalisation, escaping, tracking
    [ann] = smtp_server.to("ann@example.com")
    assert ann["Subject"] == "Hello Анна"
    html = ann.get_body(("html",)).get_content()
    text = ann.get_body(("plain",)).get_content()
    assert "Hi Анна, your tea: Пуэр. Manager: Olga." in html
    assert "https://shop.example/tea" not in html  # the link is a signed click link
    click = html.split('href="')[1].split('"')[0]
    assert click.startswith("http://track.test/t/c/")
    assert LINKS.load(click.rsplit("/", 1)[1], "c") == [
        mailing.id,
        base["people"]["ann"].id,
        "https://shop.example/tea?a=1&b=2",
    ]
    assert "/t/o/" in html and "/u/" in html  # open pixel, unsubscribe link
    assert "Hi Анна" in text and "/t/c/" in text
    assert ann["List-Unsubscribe"].startswith("<http://track.test/u/")
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    recipient = MailingRecipient.get(
        MailingRecipient.mailing == mailing, MailingRecipient.customer == base["people"]["ann"]
    )
    assert ann["Message-ID"] == f"<segmento.{mailing.id}.{recipient.id}@localhost>"
    [bob] = smtp_server.to("bob@example.com")
    assert "Hi Bob &lt;b&gt;" in bob.get_body(("html",)).get_content()
    # one `sent` event per message, and the customers marked for the real-time update
    sent = MessageEvent.select().where(MessageEvent.mailing == mailing, MessageEvent.kind == "sent")
    assert sorted(e.customer.external_id for e in sent) == ["ann", "bob", "fay", "gus"]
    assert ChangedCustomer.select().where(ChangedCustomer.customer == base["people"]["ann"]).exists()
    # sending again sends nothing more
    assert mailings.run_sender(mailing.id, links=LINKS) == "stopped"
    assert sum(smtp_server.count.values()) == 4


def test_consent_is_checked_again_when_sending(base, smtp_server):
    mailing = mailings.send_now(campaign(base["segment"]))
    mailings.materialise(mailing.id)
    Customer.update(email_consent=False).where(Customer.external_id == "bob").execute()
    mailings.run_sender(mailing.id, links=LINKS)
    assert "bob@example.com" not in smtp_server.count
    row = MailingRecipient.get(MailingRecipient.customer == base["people"]["bob"])
    assert (row.status, row.reason) == ("skipped", "no_consent")


def test_a_bounced_address_is_skipped_with_the_reason(base, smtp_server):
    # the segment figures count a bounced address as unreachable: the mailing skips it by the same rule
    bob, fay = base["people"]["bob"], base["people"]["fay"]
    MessageEvent.create(customer=bob, channel="email", kind="bounced", occurred_at=utcnow())
    MessageEvent.create(customer=fay, channel="sms", kind="bounced", occurred_at=utcnow())  # not an email bounce
    assert mailings.audience(base["segment"].id, "email") == {
        "members": 7,
        "pending": 3,
        "no_consent": 1,
        "no_address": 2,
        "bounced": 1,
    }
    mailing = send(campaign(base["segment"]))
    assert sorted(smtp_server.count) == ["ann@example.com", "fay@example.com", "gus@example.com"]
    row = MailingRecipient.get(MailingRecipient.mailing == mailing, MailingRecipient.customer == bob)
    assert (row.status, row.reason) == ("skipped", "bounced")
    assert dict(mailings.report(mailing)["skipped_by"])["The address bounced"] == 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "stepwise"])
def test_refusals_are_failures_with_the_reason(base, smtp_server, pipelining):
    smtp_server.pipelining = pipelining
    smtp_server.refuse["bob@example.com"] = "550 5.1.1 No such user"
    smtp_server.refuse_data["fay@example.com"] = "554 5.7.1 Content rejected"
    mailing = send(campaign(base["segment"]))
    rows = {r.customer.external_id: r for r in MailingRecipient.select().where(MailingRecipient.mailing == mailing)}
    assert (rows["bob"].status, rows["fay"].status) == ("failed", "failed")
    assert "No such user" in rows["bob"].reason and "Content rejected" in rows["fay"].reason
    assert rows["ann"].status == rows["gus"].status == "sent"
    # a message refused at its end has no `sent` event
    sent = {e.customer.external_id for e in MessageEvent.select().where(MessageEvent.kind == "sent")}
    assert sent == {"ann", "gus"}
    assert mailings.report(mailing)["failed"] == 2


def test_without_smtp_emails_go_to_the_outbox(base, no_delivery_settings):
    mailing = send(campaign(base["segment"]))
    assert not ChangedCustomer.select().exists()  # no segment reads messages: no re-check to ask for
    assert sorted(o.to for o in OutboxEmail.select()) == [
        "ann@example.com",
        "bob@example.com",
        "fay@example.com",
        "gus@example.com",
    ]
    assert OutboxEmail.get(OutboxEmail.to == "ann@example.com").subject == "Hello Анна"
    assert mailings.counts(mailing.id)["sent"] == 4


def test_sms_through_the_gateway(base, http_server, monkeypatch):
    monkeypatch.setattr(settings, "SMS_GATEWAY_URL", http_server.url + "/send")
    monkeypatch.setattr(settings, "SMS_GATEWAY_TOKEN", "tok-123")
    monkeypatch.setattr(settings, "SMS_BODY_TEMPLATE", '{"to": "{{ phone }}", "message": "{{ text }}"}')
    http_server.statuses = [503]  # the first try fails: retried
    mailing = campaign(base["segment"], channel="sms", body='Hi {{ first_name }}, "tea" -5% today')
    mailing = mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    assert mailings.run_sender(mailing.id, links=LINKS) == "done"  # the 503 went back to pending ...
    assert mailings.counts(mailing.id)["pending"] == 0
    requests = http_server.requests
    assert [r["status"] for r in requests] == [503, 200]  # ... and was sent on the next claim
    body = json.loads(requests[1]["body"])
    assert body == {"to": "+79990000001", "message": 'Hi Fay, "tea" -5% today'}
    assert requests[1]["headers"]["Authorization"] == "Bearer tok-123"
    recipient = MailingRecipient.get(MailingRecipient.mailing == mailing, MailingRecipient.status == "sent")
    assert (
        requests[0]["headers"]["Idempotency-Key"]
        == requests[1]["headers"]["Idempotency-Key"]
        == f"segmento-{mailing.id}-{recipient.id}"
    )
    report = mailings.report(mailing)
    assert (report["sent"], report["skipped"]) == (1, 6)  # gus: no consent; the rest: no consent or phone
    assert MessageEvent.get(MessageEvent.mailing == mailing).channel == "sms"


def test_sms_without_a_gateway_go_to_the_outbox(base, no_delivery_settings):
    mailing = send(campaign(base["segment"], channel="sms", body="Hi {{ first_name }}"))
    [sms] = OutboxSms.select()
    assert (sms.to, sms.text, sms.mailing_id) == ("+79990000001", "Hi Fay", mailing.id)


def test_form_problems_are_named(base):
    with pytest.raises(mailings.MailingError) as caught:
        mailings.create_campaign({"name": "", "channel": "email", "segment_id": 999, "subject": "", "body": "{% if %}"})
    assert set(caught.value.errors) == {"name", "segment_id", "subject", "body"}
    with pytest.raises(mailings.MailingError) as caught:
        mailings.create_campaign(
            {
                "name": "x",
                "channel": "email",
                "segment_id": base["segment"].id,
                "subject": "s",
                "body": "{{ frist_name }}",
            }
        )
    assert "frist_name" in caught.value.errors["body"][0]
    # the sandbox does not reach into Python
    out = mailings.preview(
        "sms",
        None,
        "[{{ custom.__class__.__mro__ }}][{{ name.__class__ }}][{{ custom.items.__globals__ }}]",
        base["people"]["ann"].id,
    )
    assert out["text"] == "[][][]"
    with pytest.raises(mailings.TemplateProblem):
        mailings.preview("sms", None, "{{ custom.update({'a': 1}) }}", base["people"]["ann"].id)


def test_cancel_skips_the_rest(base, smtp_server):
    mailing = mailings.send_now(campaign(base["segment"]))
    mailings.materialise(mailing.id)
    mailings.cancel(Mailing.get_by_id(mailing.id))
    assert mailings.run_sender(mailing.id, links=LINKS) == "stopped"
    assert not smtp_server.count
    assert dict(mailings.report(mailing)["skipped_by"])["Mailing cancelled"] == 4


def test_cancel_while_sending_stops_at_the_next_group(base, smtp_server, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_CONNECTIONS", 1)
    mailing = mailings.send_now(campaign(base["segment"]))
    mailings.materialise(mailing.id)

    def cancel_after_first(n):
        if n == 1:  # the marketer clicks Cancel while the first message is being accepted
            mailings.cancel(Mailing.get_by_id(mailing.id))
            database.close()  # this runs in the SMTP server's thread

    smtp_server.on_message = cancel_after_first
    mailings.run_sender(mailing.id, links=LINKS)
    assert sum(smtp_server.count.values()) == 1
    report = mailings.report(Mailing.get_by_id(mailing.id))
    assert (report["sent"], dict(report["skipped_by"])["Mailing cancelled"]) == (1, 3)
