"""Mailings and triggers through real worker.py processes on the real queue
server, with a real SMTP server: workers killed mid-mailing and a new one
resuming leave every recipient with exactly one message; triggers follow
real-time entries with their delays, and a chain stops for a customer who
left; a scheduled mailing goes out at its time."""

import datetime

import pytest
from procs import Workers, kill_tree, wait_for

from webapp.activation import jobs, mailings, triggers
from webapp.db import database
from webapp.models import (
    Customer,
    Mailing,
    MailingRecipient,
    MessageEvent,
    Segment,
    SegmentChange,
    SegmentMember,
    TriggerExecution,
    utcnow,
)
from webapp.segments import changes

from .conftest import audience, customer

MOSCOW = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "customer",
            "match": "all",
            "filters": [{"field": "city", "op": "in", "values": [{"value": "москва"}]}],
        }
    ],
}


@pytest.fixture
def workers(app, db_url, queue_server, smtp_server, tmp_path):
    workers = Workers(
        tmp_path,
        DATABASE_URL=db_url,
        REDIS_URL=queue_server,
        SMTP_URL=smtp_server.url,
        SECRET_KEY=app.config["SECRET_KEY"],
        PUBLIC_URL="http://track.test",
        TRIGGER_POLL_SECONDS=2,
        REALTIME_INTERVAL_SECONDS=1,
        MAILING_LEASE_SECONDS=2,
        MAILING_SENDERS=2,
    )
    yield workers
    workers.stop()


@pytest.fixture(autouse=True)
def empty_queues(queue_server):
    from webapp.queue import connection

    connection().flushdb()


def status_counts(mailing_id):
    return mailings.counts(mailing_id)


def test_killed_workers_mid_mailing_every_recipient_gets_exactly_one(workers, smtp_server):
    n = 300
    segment = audience(n)
    mailing = mailings.create_campaign(
        {
            "name": "Big",
            "channel": "email",
            "segment_id": segment.id,
            "subject": "Hi {{ external_id }}",
            "body": "<p>{{ external_id }}</p>",
        }
    )
    # After 100 messages the server stops answering RCPT: the workers are
    # mid-mailing, with groups in flight (envelopes open, nothing committed).
    smtp_server.hold_after = 100
    mailings.send_now(mailing)
    jobs.ensure_start(mailing.id)  # as the page does
    first = [workers.start(), workers.start()]
    wait_for(
        lambda: smtp_server.held >= 2 and status_counts(mailing.id)["sent"] >= 100,
        what="sending to start",
        logs=workers.tails,
    )
    for proc in first:
        kill_tree(proc.pid)
        proc.wait(10)
    smtp_server.hold_after = None
    database.close()
    at_kill = status_counts(mailing.id)
    assert at_kill["sent"] == len(smtp_server.messages) >= 100, at_kill  # committed = stored
    assert at_kill["sending"] > 0, at_kill  # claimed batches left behind by the dead senders

    workers.start()
    wait_for(
        lambda: Mailing.get_by_id(mailing.id).status == "sent",
        timeout=120,
        what="the mailing to finish",
        logs=workers.tails,
    )
    final = status_counts(mailing.id)
    assert (final["sent"], final["failed"], final["skipped"], final["total"]) == (n, 0, 0, n)
    # what the SMTP server got: every recipient exactly once
    assert len(smtp_server.count) == n and set(smtp_server.count.values()) == {1}, {
        a: c for a, c in smtp_server.count.items() if c != 1
    }
    for address, message in smtp_server.messages[:50]:
        assert message["Subject"] == "Hi " + address.split("@")[0]
    assert MessageEvent.select().where(MessageEvent.mailing == mailing, MessageEvent.kind == "sent").count() == n
    # one Message-ID per recipient row
    assert len({m["Message-ID"] for _a, m in smtp_server.messages}) == n


def test_triggers_and_schedule_through_the_worker(workers, smtp_server):
    segment = Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)
    stay, leave = customer("stay", city="Tver"), customer("leave", city="Tver")
    delay = 6
    triggers.save(
        {
            "name": "Moscow chain",
            "segment_id": segment.id,
            "event": "entered",
            "active": "1",
            "steps": [
                {
                    "action": "email",
                    "delay_value": "0",
                    "delay_unit": "seconds",
                    "subject": "Welcome to Moscow",
                    "body": "<p>1</p>",
                },
                {
                    "action": "email",
                    "delay_value": str(delay),
                    "delay_unit": "seconds",
                    "only_members": "1",
                    "subject": "Still in Moscow?",
                    "body": "<p>2</p>",
                },
            ],
        }
    )
    static = Segment.create(
        code="list", name="List", type="static", source="list", definition={"version": 1, "match": "all", "blocks": []}
    )
    SegmentMember.create(segment=static, customer=stay)
    scheduled = mailings.create_campaign(
        {"name": "Timed", "channel": "email", "segment_id": static.id, "subject": "Timed", "body": "<p>t</p>"}
    )
    send_at = utcnow() + datetime.timedelta(seconds=3)
    mailings.schedule(scheduled, send_at)
    workers.start()
    for c in (stay, leave):
        Customer.update(city="Москва", city_ci="москва").where(Customer.id == c.id).execute()
    changes.mark_changed([stay.id, leave.id])

    def logged(c, change):
        return SegmentChange.get_or_none(SegmentChange.customer == c, SegmentChange.change == change)

    entry = wait_for(lambda: logged(leave, "entered"), what="the real-time entry", logs=workers.tails)
    Customer.update(city="Tver", city_ci="tver").where(Customer.id == leave.id).execute()
    changes.mark_changed([leave.id])
    exit_ = wait_for(lambda: logged(leave, "exited"), what="the real-time exit", logs=workers.tails)
    assert (exit_.at - entry.at).total_seconds() < delay, "the machine is too slow for this test's delays"

    def subjects(address):
        return [m["Subject"] for m in smtp_server.to(address)]

    wait_for(lambda: "Still in Moscow?" in subjects("stay@example.com"), what="the second step", logs=workers.tails)
    second = (
        MailingRecipient.select()
        .join(Mailing)
        .where(MailingRecipient.customer == stay, Mailing.subject == "Still in Moscow?")
        .get()
    )
    stay_entry = logged(stay, "entered")
    assert (second.sent_at - stay_entry.at).total_seconds() >= delay
    wait_for(
        lambda: TriggerExecution.select().where(TriggerExecution.status == "active").count() == 0,
        what="the chains to end",
        logs=workers.tails,
    )
    assert {e.customer_id: e.status for e in TriggerExecution.select()} == {stay.id: "done", leave.id: "stopped"}
    assert subjects("leave@example.com") == ["Welcome to Moscow"]  # the first step does not require membership
    assert subjects("stay@example.com").count("Welcome to Moscow") == 1
    # the scheduled mailing went out at its time, not before
    wait_for(lambda: Mailing.get_by_id(scheduled.id).status == "sent", what="the scheduled mailing", logs=workers.tails)
    assert subjects("stay@example.com").count("Timed") == 1
    assert MailingRecipient.get(MailingRecipient.mailing == scheduled).sent_at >= send_at


def test_failure_reasons_are_in_the_language_of_who_made_the_mailing(workers, smtp_server, make_user):
    # A job has no request: the reasons it records were English on a Vietnamese marketer's mailing page.
    maker = make_user(email="lan@example.com", role="marketer")
    maker.last_language = "vi"  # as the pages last spoke to her (no language chosen)
    maker.save()
    from .conftest import static_segment

    gone = customer("gone")
    segment = static_segment("two", [customer("good"), gone])
    mailing = mailings.create_campaign(
        {"name": "Hi", "channel": "email", "segment_id": segment.id, "subject": "Hi", "body": "<p>Hi</p>"}, user=maker
    )
    mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    Customer.delete().where(Customer.id == gone.id).execute()  # after its message was made, before it went out
    jobs.ensure_start(mailing.id)
    workers.start()
    wait_for(lambda: Mailing.get_by_id(mailing.id).status == "sent", what="the mailing", logs=workers.tails)
    failed = MailingRecipient.get(MailingRecipient.mailing == mailing, MailingRecipient.status == "failed")
    assert failed.reason == "Khách hàng đã bị xóa."
    assert smtp_server.count == {"good@example.com": 1}
