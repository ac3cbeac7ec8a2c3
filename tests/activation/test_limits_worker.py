"""Control groups and frequency caps through real worker.py processes on the
real queue server and a real SMTP server: two workers sending three
campaigns to the same customers at once never let a customer past the cap;
workers killed (SIGKILL) mid-mailing and a new one resuming leave the control
group exactly as the hash says and every other recipient with one message."""

import pytest
from procs import Workers, kill_tree, wait_for
from rq import Worker

from webapp.activation import jobs, limits, mailings
from webapp.db import database
from webapp.models import ContactLog, Customer, Mailing, MailingRecipient
from webapp.queue import connection

from .conftest import audience


@pytest.fixture(autouse=True)
def empty_queues(queue_server):
    connection().flushdb()


def workers_for(app, db_url, queue_server, smtp_server, tmp_path, **env):
    return Workers(
        tmp_path,
        DATABASE_URL=db_url,
        REDIS_URL=queue_server,
        SMTP_URL=smtp_server.url,
        SECRET_KEY=app.config["SECRET_KEY"],
        PUBLIC_URL="http://track.test",
        TRIGGER_POLL_SECONDS=1,
        MAILING_LEASE_SECONDS=2,
        MAILING_SENDERS=2,
        **env,
    )


def new_campaign(segment, name, **fields):
    return mailings.create_campaign(
        {
            "name": name,
            "channel": "email",
            "segment_id": segment.id,
            "subject": "Hi",
            "body": "<p>{{ external_id }}</p>",
            **fields,
        }
    )


def test_two_workers_never_let_a_customer_past_the_cap(app, db_url, queue_server, smtp_server, tmp_path):
    n = 150
    segment = audience(n, prefix="w")
    # Each sender pauses between counting and recording: without the
    # per-customer lock the two workers would both count the same messages.
    workers = workers_for(
        app, db_url, queue_server, smtp_server, tmp_path, FREQUENCY_CAP_EMAIL="1/7", SEGMENTO_FAULT_PAUSE_IN_CAP=2
    )
    try:
        workers.start()
        workers.start()
        wait_for(lambda: len(Worker.all(connection=connection())) == 2, what="two workers", logs=workers.tails)
        campaigns = [new_campaign(segment, name) for name in ("A", "B", "C")]
        for mailing in campaigns:
            mailings.send_now(mailing)
        wait_for(
            lambda: all(Mailing.get_by_id(m.id).status == "sent" for m in campaigns),
            timeout=120,
            what="the mailings to finish",
            logs=workers.tails,
        )
    finally:
        workers.stop()
    database.close()
    # Each customer: exactly 1 message on the SMTP server, the others capped.
    assert len(smtp_server.count) == n and set(smtp_server.count.values()) == {1}, {
        a: c for a, c in smtp_server.count.items() if c != 1
    }
    totals = [mailings.counts(m.id) for m in campaigns]
    assert sum(t["sent"] for t in totals) == n
    assert sum(t["capped"] for t in totals) == 2 * n
    assert ContactLog.select().count() == n


def test_killed_workers_leave_the_control_group_as_the_hash_says(app, db_url, queue_server, smtp_server, tmp_path):
    n = 300
    segment = audience(n, prefix="w")
    workers = workers_for(app, db_url, queue_server, smtp_server, tmp_path, FREQUENCY_CAP_EMAIL="1/7")
    try:
        mailing = new_campaign(segment, "Split", holdout_percent=20)
        smtp_server.hold_after = 60  # then the server stops answering: the senders are mid-mailing
        mailings.send_now(mailing)
        jobs.ensure_start(mailing.id)
        first = [workers.start(), workers.start()]
        wait_for(
            lambda: smtp_server.held >= 2 and mailings.counts(mailing.id)["sent"] >= 60,
            what="sending to start",
            logs=workers.tails,
        )
        for proc in first:
            kill_tree(proc.pid)
            proc.wait(10)
        smtp_server.hold_after = None
        database.close()
        assert mailings.counts(mailing.id)["sending"] > 0  # claims the dead senders left
        workers.start()
        wait_for(
            lambda: Mailing.get_by_id(mailing.id).status == "sent",
            timeout=120,
            what="the mailing to finish",
            logs=workers.tails,
        )
    finally:
        workers.stop()
    database.close()
    key = limits.seed("campaign", mailing.id)
    expected = {c for (c,) in Customer.select(Customer.id).tuples() if limits.bucket(c, key) < 2000}
    held = {
        r.customer_id
        for r in MailingRecipient.select().where(
            MailingRecipient.mailing == mailing.id, MailingRecipient.status == "held_out"
        )
    }
    assert held == expected and 20 < len(held) < 100
    final = mailings.counts(mailing.id)
    # Rows taken over from the killed senders were not capped by their own claim.
    assert (final["sent"], final["capped"], final["failed"]) == (n - len(held), 0, 0), final
    held_addresses = {f"w{i:04d}@example.com" for i in range(n)} - set(smtp_server.count)
    assert set(smtp_server.count.values()) == {1} and len(smtp_server.count) == n - len(held)
    assert {
        Customer.get(Customer.email == a).id for a in held_addresses
    } == held  # exactly the held-out customers got nothing
