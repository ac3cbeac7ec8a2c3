"""The Campaign limits page (frequency caps, quiet hours, the global control
group) on both databases: who may open it, saving and its audit entry,
validation messages naming the field, and each limit set on the page acting
on the next send (in this process and in a worker started before the save);
contact_log pruning."""

import datetime
import re

import pytest
from conftest import csrf_from
from rq import Worker

from webapp import settings
from webapp.activation import limits, mailings
from webapp.activation.links import Links
from webapp.db import database
from webapp.models import (
    AccountSetting,
    AuditEvent,
    ContactLog,
    Mailing,
    MailingRecipient,
    Segment,
    SegmentMember,
    utcnow,
)
from webapp.queue import connection

from .conftest import customer, static_segment

URL = "/settings/campaign-limits"
EMPTY = {name: "" for name in limits.LIMIT_FIELDS}


def page(client, url=URL, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def save(client, status=302, **fields):
    token = csrf_from(page(client))
    response = client.post(URL, data={**EMPTY, "global_control_percent": "0", **fields, "csrf_token": token})
    assert response.status_code == status, response.get_data(as_text=True)[:1500]
    return response.get_data(as_text=True)


def campaign(segment, name, **fields):
    data = {"name": name, "channel": "email", "segment_id": segment.id, "subject": "Hi", "body": "<p>Hello</p>"}
    mailing = mailings.create_campaign({**data, **fields})
    Mailing.update(status="queued").where(Mailing.id == mailing.id).execute()
    return Mailing.get_by_id(mailing.id)


def send(app, mailing):
    mailings.materialise(mailing.id)
    with app.app_context():
        mailings.run_sender(mailing.id, links=Links(app.config["SECRET_KEY"], settings.PUBLIC_URL), seconds=30)
    return mailings.counts(mailing.id)


@pytest.fixture
def no_environment_limits(monkeypatch, no_delivery_settings):
    for name in limits.ACCOUNT_LIMITS:
        monkeypatch.setattr(settings, name, 0 if name == "GLOBAL_CONTROL_PERCENT" else "")


def test_only_admins_open_the_page_and_see_its_link(client, login, make_user):
    make_user(email="first@example.com")
    assert client.get(URL).status_code == 302  # the login wall
    for role in ("marketer", "manager"):
        login(email=f"{role}@example.com", role=role)
        assert client.get(URL).status_code == 403
        assert client.post(URL, data={"email_cap_messages": "1", "email_cap_days": "1"}).status_code in (400, 403)
        assert URL not in page(client, "/")
        client.post("/logout", data={"csrf_token": csrf_from(page(client, "/"))})
    assert AccountSetting.select().count() == 0
    login(email="boss@example.com", role="admin")
    assert f'href="{URL}"' in page(client, "/")
    assert "<h1>Campaign limits</h1>" in page(client)


def test_the_page_starts_from_the_environment_then_its_saved_values_win(auth_client, monkeypatch):
    client = auth_client
    monkeypatch.setattr(settings, "FREQUENCY_CAP_EMAIL", "3/5")
    monkeypatch.setattr(settings, "QUIET_HOURS_SMS", "22:00-08:30")
    monkeypatch.setattr(settings, "FREQUENCY_CAP_SMS", "")
    monkeypatch.setattr(settings, "QUIET_HOURS_EMAIL", "")
    monkeypatch.setattr(settings, "GLOBAL_CONTROL_PERCENT", 0)
    html = page(client)
    assert "Not saved here yet" in html
    assert re.search(r'name="email_cap_messages"[^>]*value="3"', html)
    assert re.search(r'name="sms_quiet_start"[^>]*value="22:00"', html)
    assert "At most 3 messages in 5 days per customer." in html

    save(
        client,
        email_cap_messages="2",
        email_cap_days="7",
        sms_cap_messages="1",
        sms_cap_days="3",
        email_quiet_start="21:00",
        email_quiet_end="09:00",
    )
    html = page(client)
    assert "Campaign limits saved." in html and "Last saved" in html
    assert "At most 2 messages in 7 days per customer." in html and "Quiet hours 21:00–09:00" in html
    assert limits.account_limits() == {
        "FREQUENCY_CAP_EMAIL": "2/7",
        "FREQUENCY_CAP_SMS": "1/3",
        "QUIET_HOURS_EMAIL": "21:00-09:00",
        "QUIET_HOURS_SMS": "",  # emptied on the page: the environment's 22:00-08:30 applies no more
        "GLOBAL_CONTROL_PERCENT": "0",
    }
    assert limits.cap("sms") == (1, 3) and limits.quiet_hours("sms") is None
    # The environment changes: the saved values still win.
    monkeypatch.setattr(settings, "FREQUENCY_CAP_EMAIL", "9/9")
    assert limits.cap("email") == (2, 7)
    entry = AuditEvent.get(AuditEvent.action == "settings.limits")
    assert entry.actor.email == "admin@example.com"
    assert entry.details["changed"]["FREQUENCY_CAP_EMAIL"] == ["3/5", "2/7"]
    assert entry.details["changed"]["QUIET_HOURS_SMS"] == ["22:00-08:30", ""]
    assert "GLOBAL_CONTROL_PERCENT" not in entry.details["changed"]
    assert "Changed the campaign limits" in page(client, "/audit/")


@pytest.mark.parametrize(
    "fields, message",
    [
        (
            {"email_cap_messages": "2"},
            "Email frequency cap: enter both the number of messages and the days (for example 2 in 7 days)",
        ),
        ({"sms_cap_messages": "two", "sms_cap_days": "7"}, "SMS frequency cap: the number of messages is a whole"),
        ({"email_cap_messages": "2", "email_cap_days": "0"}, "Email frequency cap: the days are a whole number from 1"),
        ({"sms_quiet_start": "21:00"}, "SMS quiet hours: enter both the start and the end (for example 21:00–09:00)"),
        ({"email_quiet_start": "25:00", "email_quiet_end": "09:00"}, "Email quiet hours: “25:00” is not a time of day"),
        ({"email_quiet_start": "09:00", "email_quiet_end": "09:00"}, "Email quiet hours: the start and the end are"),
        ({"global_control_percent": "60"}, "Global control group: a whole percentage from 0 to 50, not “60”."),
    ],
)
def test_bad_values_are_refused_with_a_message_naming_the_field(auth_client, fields, message):
    html = save(auth_client, status=422, **fields)
    assert message in html and "The limits were not saved" in html
    assert 'aria-invalid="true"' in html
    assert (
        AccountSetting.select().count() == 0
        and not AuditEvent.select().where(AuditEvent.action == "settings.limits").exists()
    )


def test_messages_are_in_the_users_language(auth_client):
    from webapp.models import User

    User.update(language="ru").execute()
    html = save(auth_client, status=422, global_control_percent="x")
    assert "Общая контрольная группа: целое число процентов от 0 до 50, а не «x»." in html
    assert "Global control group" not in html


def test_a_form_without_its_csrf_token_is_refused(auth_client):
    response = auth_client.post(URL, data={**EMPTY, "email_cap_messages": "1", "email_cap_days": "7"})
    assert response.status_code == 400
    assert AccountSetting.select().count() == 0


def test_a_cap_set_on_the_page_caps_the_next_mailing(app, auth_client, no_environment_limits):
    people = [customer(f"k{i}") for i in range(6)]
    segment = static_segment("k", people)
    assert send(app, campaign(segment, "Before"))["sent"] == 6  # no cap yet
    save(auth_client, email_cap_messages="1", email_cap_days="7")
    counts = send(app, campaign(segment, "After"))
    assert (counts["sent"], counts["capped"]) == (0, 6)
    # SMS has no cap; a transactional email is never capped.
    receipt = campaign(segment, "Receipt", transactional="on")
    assert send(app, receipt)["sent"] == 6
    html = page(auth_client, f"/mailings/{Mailing.get(Mailing.name == 'After').id}")
    assert "At most 1 message in 7 days per customer." in html and re.search(r'class="capped-count"><a[^>]*>6<', html)


def test_quiet_hours_set_on_the_page_delay_a_send(app, auth_client, no_environment_limits, monkeypatch):
    monkeypatch.setattr(settings, "TZ", "UTC")
    now = utcnow()
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=2)
    people = [customer(f"q{i}") for i in range(4)] + [customer("tokyo", time_zone="Asia/Tokyo")]
    segment = static_segment("q", people)
    save(auth_client, email_quiet_start=f"{start:%H:%M}", email_quiet_end=f"{end:%H:%M}")
    mailing = campaign(segment, "Night")
    counts = send(app, mailing)
    # In UTC now is inside the window; in Tokyo (UTC+9) it is not.
    assert (counts["sent"], counts["pending"]) == (1, 4)
    waits = MailingRecipient.select().where(
        MailingRecipient.mailing == mailing.id, MailingRecipient.status == "pending"
    )
    until = end.replace(second=0, microsecond=0)
    assert {r.not_before for r in waits} == {until}
    Mailing.update(status="sending").where(Mailing.id == mailing.id).execute()
    html = page(auth_client, f"/mailings/{mailing.id}/progress")
    assert "4 messages wait for quiet hours to end" in html
    assert "Quiet hours until" in page(auth_client, f"/mailings/{mailing.id}/recipients?status=pending")
    # Emptied on the page: the next send goes out at once.
    save(auth_client)
    with app.app_context():
        MailingRecipient.update(not_before=None).where(MailingRecipient.mailing == mailing.id).execute()
        mailings.run_sender(mailing.id, links=Links(app.config["SECRET_KEY"], settings.PUBLIC_URL), seconds=30)
    assert mailings.counts(mailing.id)["sent"] == 5


def test_the_global_share_set_on_the_page_holds_out_customers_and_is_a_system_segment(
    app, auth_client, no_environment_limits
):
    people = [customer(f"g{i}") for i in range(300)]
    segment = static_segment("g", people)
    html = page(auth_client)
    assert "once it is first computed" in html
    save(auth_client, global_control_percent="20")
    expected = {c.id for c in people if limits.in_global_control(c.id)}
    assert 20 < len(expected) < 110
    system = Segment.get(Segment.code == limits.GLOBAL_SEGMENT)
    members = {
        c for (c,) in SegmentMember.select(SegmentMember.customer).where(SegmentMember.segment == system).tuples()
    }
    assert members == expected and system.system and Segment.get_by_id(system.id).size == len(expected)
    html = page(auth_client)
    assert f"{len(expected)} customers" in html and f"/segments/{limits.GLOBAL_SEGMENT}" in html
    assert "Global control group" in page(auth_client, "/segments/")
    mailing = campaign(segment, "Everyone")
    counts = send(app, mailing)
    held = {
        r.customer_id
        for r in MailingRecipient.select().where(
            MailingRecipient.mailing == mailing.id, MailingRecipient.status == "held_out"
        )
    }
    assert held == expected and counts["sent"] == 300 - len(expected)
    assert "Global control group" in page(auth_client, f"/mailings/{mailing.id}/recipients?status=held_out")
    save(auth_client, global_control_percent="0")  # off: the segment empties
    assert Segment.get_by_id(system.id).size == 0
    assert not held_ids_of(campaign(segment, "Later"))


def held_ids_of(mailing):
    mailings.materialise(mailing.id)
    return [
        r.id
        for r in MailingRecipient.select().where(
            MailingRecipient.mailing == mailing.id, MailingRecipient.status == "held_out"
        )
    ]


def test_contact_log_is_pruned_past_the_longest_cap(db, no_environment_limits, monkeypatch):
    now = utcnow()
    person = customer("p")
    ages = {1: 0, 2: 10, 3: 36, 4: 38, 5: 80}  # recipient id: days ago
    for rid, days in ages.items():
        ContactLog.create(
            customer_id=person.id, channel="email", at=now - datetime.timedelta(days=days), recipient_id=rid
        )
    # No cap: a month and a week are kept.
    assert limits.prune_contact_log(now) == 2
    assert {r.recipient_id for r in ContactLog.select()} == {1, 2, 3}
    assert limits.prune_contact_log(now) == 0  # idempotent
    # A 60-day SMS cap: rows up to 67 days old still count for someone.
    limits.save_account_limits({**EMPTY, "sms_cap_messages": "5", "sms_cap_days": "60"})
    ContactLog.create(customer_id=person.id, channel="email", at=now - datetime.timedelta(days=66), recipient_id=6)
    ContactLog.create(customer_id=person.id, channel="email", at=now - datetime.timedelta(days=68), recipient_id=7)
    assert limits.prune_contact_log(now) == 1
    assert {r.recipient_id for r in ContactLog.select()} == {1, 2, 3, 6}


def test_the_tick_job_prunes_contact_log(app, db, no_environment_limits):
    from webapp.activation import jobs

    person = customer("p")
    ContactLog.create(customer_id=person.id, channel="sms", at=utcnow() - datetime.timedelta(days=400), recipient_id=1)
    ContactLog.create(customer_id=person.id, channel="sms", at=utcnow(), recipient_id=2)
    connection().delete(jobs.GLOBAL_SYNC_KEY, "segmento:lock:activation-tick")
    jobs.tick_job()
    database.connect(reuse_if_open=True)
    assert [r.recipient_id for r in ContactLog.select()] == [2]


def test_a_worker_running_before_the_save_follows_it(app, auth_client, db_url, queue_server, smtp_server, tmp_path):
    from procs import wait_for

    from .test_limits_worker import workers_for

    connection().flushdb()
    people = [customer(f"w{i}") for i in range(20)]
    segment = static_segment("w", people)
    workers = workers_for(app, db_url, queue_server, smtp_server, tmp_path, FREQUENCY_CAP_EMAIL="")
    try:
        workers.start()
        wait_for(lambda: len(Worker.all(connection=connection())) == 1, what="a worker", logs=workers.tails)
        before = campaign(segment, "Before")
        Mailing.update(status="draft").where(Mailing.id == before.id).execute()
        mailings.send_now(Mailing.get_by_id(before.id))
        wait_for(lambda: Mailing.get_by_id(before.id).status == "sent", timeout=90, logs=workers.tails)
        assert mailings.counts(before.id)["sent"] == 20
        save(auth_client, email_cap_messages="1", email_cap_days="7")
        after = campaign(segment, "After")
        Mailing.update(status="draft").where(Mailing.id == after.id).execute()
        mailings.send_now(Mailing.get_by_id(after.id))
        wait_for(lambda: Mailing.get_by_id(after.id).status == "sent", timeout=90, logs=workers.tails)
    finally:
        workers.stop()
    database.close()
    counts = mailings.counts(after.id)
    assert (counts["sent"], counts["capped"]) == (0, 20)
    assert len(smtp_server.count) == 20 and set(smtp_server.count.values()) == {1}
