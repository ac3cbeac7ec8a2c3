"""Issue 20.1, on SQLite and PostgreSQL: `default(...)` gives its fallback for
a value that is missing or empty (a company has no first name), in campaign
emails and SMS and in trigger subjects; the preview shows what a customer with
no name gets."""

import pytest
from conftest import csrf_from

from webapp.activation import mailings, triggers
from webapp.activation.links import Links
from webapp.activation.templating import MessageTemplate
from webapp.models import OutboxSms, TriggerStep
from webapp.segments import realtime

from .conftest import customer, static_segment
from .test_triggers import MOSCOW, send_all, step

LINKS = Links("test-secret", "http://track.test")


@pytest.mark.parametrize("value", [None, "", "   ", "Ann"], ids=["none", "empty", "spaces", "present"])
def test_default_takes_empty_values(value):
    template = MessageTemplate("sms", None, '{{ first_name|default("Друг") }}, {{ custom.tea|d("чай") }}!')
    expected = "Ann" if value == "Ann" else "Друг"
    assert template.render({"first_name": value, "custom": {"tea": ""}})["text"] == f"{expected}, чай!"


def test_sms_campaign_to_a_company_takes_the_fallback(db, queue_server, no_delivery_settings):
    company = customer(
        "acme", type="company", company_name="ACME", first_name="", phone="+79990000001", sms_consent=True
    )
    person = customer("ann", first_name="Анна", phone="+79990000002", sms_consent=True)
    nameless = customer("nil", first_name=None, phone="+79990000003", sms_consent=True)
    mailing = mailings.create_campaign(
        {
            "name": "Thanks",
            "channel": "sms",
            "segment_id": static_segment("all", [company, person, nameless]).id,
            "subject": "",
            "body": '{{ first_name|default("Друг") }}, спасибо за первый заказ!',
        }
    )
    mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    assert mailings.run_sender(mailing.id, links=LINKS, seconds=30) == "done"
    texts = {sms.to: sms.text for sms in OutboxSms.select()}
    assert texts == {
        "+79990000001": "Друг, спасибо за первый заказ!",
        "+79990000002": "Анна, спасибо за первый заказ!",
        "+79990000003": "Друг, спасибо за первый заказ!",
    }


def test_trigger_subject_takes_the_fallback(db, queue_server, smtp_server):
    from webapp.models import Segment

    moscow = Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)
    triggers.save(
        {
            "name": "Welcome",
            "segment_id": moscow.id,
            "event": "entered",
            "active": "1",
            "steps": [step("email", subject="{{ first_name|default('Friend') }}, welcome", body="<p>Hi</p>")],
        }
    )
    assert TriggerStep.select().count() == 1
    acme = customer("acme", type="company", company_name="ACME", first_name="", city="Москва")
    realtime.recheck_customers([acme.id])
    assert triggers.consume() == 1
    triggers.run_due()
    send_all()
    [message] = smtp_server.to("acme@example.com")
    assert message["Subject"] == "Friend, welcome"


def test_preview_shows_a_customer_without_a_name(app, auth_client):
    ann = customer("ann", first_name="Ann")
    segment = static_segment("readers", [ann])
    token = csrf_from(auth_client.get("/mailings/new").get_data(as_text=True))
    form = {
        "csrf_token": token,
        "name": "Spring",
        "channel": "sms",
        "segment_id": segment.id,
        "subject": "",
        "body": '{{ first_name|default("friend") }}, tea is here',
    }
    html = auth_client.post("/mailings/preview", data=form, headers={"HX-Request": "true", "X-CSRFToken": token})
    html = html.get_data(as_text=True)
    assert "Ann, tea is here" in html
    assert "As a customer with no name gets it" in html and "friend, tea is here" in html
    # a template that shows no name needs no second rendering
    html = auth_client.post(
        "/mailings/preview", data={**form, "body": "Tea is here"}, headers={"HX-Request": "true", "X-CSRFToken": token}
    ).get_data(as_text=True)
    assert "Tea is here" in html and "with no name" not in html
