"""SMTP connections kept across a sender's groups, and a connection lost in
the middle of a batch, against a real SMTP server (aiosmtpd) that counts the
connections it was opened and the messages each one carried: every recipient
gets exactly one message, over far fewer connections than messages."""

import collections
import json

import pytest

from webapp import settings
from webapp.activation import delivery, mailings
from webapp.activation.links import Links
from webapp.models import Customer, MailingRecipient, MessageEvent, utcnow

from .conftest import audience, customer, static_segment

LINKS = Links("test-secret", "http://track.test")


def run(segment, name="Reuse"):
    mailing = mailings.create_campaign(
        {
            "name": name,
            "channel": "email",
            "segment_id": segment.id,
            "subject": "Hi",
            "body": "<p>{{ external_id }}</p>",
        }
    )
    mailing = mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    assert mailings.run_sender(mailing.id, links=LINKS, seconds=60) == "done"
    return mailing


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "stepwise"])
def test_messages_share_a_few_connections(db, queue_server, smtp_server, monkeypatch, pipelining):
    monkeypatch.setattr(settings, "SMTP_CONNECTIONS", 5)
    smtp_server.pipelining = pipelining
    n = 450  # more than two claimed batches (mailings.BATCH), so connections outlive a batch
    mailing = run(audience(n))
    assert len(smtp_server.count) == n and set(smtp_server.count.values()) == {1}
    # 450 messages over the sender's 5 connections, 90 each, none opened again
    assert smtp_server.connections == 5
    assert sorted(smtp_server.peers.values()) == [n // 5] * 5
    assert mailings.counts(mailing.id)["sent"] == n


def test_a_connection_lost_mid_batch_is_opened_again_without_repeats_or_losses(
    db, queue_server, smtp_server, monkeypatch
):
    monkeypatch.setattr(settings, "SMTP_CONNECTIONS", 5)
    n = 100
    segment = audience(n)
    # Cut at RCPT: nothing stored, the row goes back to pending and is sent on
    # a new connection. Cut after the message was stored, before the server's
    # reply: the "." went out, the row stays sent, nothing is sent twice.
    smtp_server.drop_at_rcpt = {"c0012@example.com", "c0047@example.com"}
    smtp_server.drop_after_data = {"c0030@example.com"}
    mailing = run(segment, "Dropped")
    assert not smtp_server.drop_at_rcpt and not smtp_server.drop_after_data  # all three cuts happened
    assert len(smtp_server.count) == n and set(smtp_server.count.values()) == {1}, {
        a: c for a, c in smtp_server.count.items() if c != 1
    }
    assert smtp_server.connections == 5 + 3  # each cut connection opened again, the others kept
    counts = mailings.counts(mailing.id)
    assert (counts["sent"], counts["pending"], counts["sending"], counts["failed"]) == (n, 0, 0, 0)
    assert MessageEvent.select().where(MessageEvent.mailing == mailing, MessageEvent.kind == "sent").count() == n
    attempts = {
        r.customer.external_id: r.attempts for r in MailingRecipient.select().where(MailingRecipient.mailing == mailing)
    }
    assert (attempts["c0012"], attempts["c0047"], attempts["c0030"], attempts["c0001"]) == (2, 2, 1, 1)


def test_sms_go_out_over_kept_connections_a_few_at_once(db, queue_server, http_server, monkeypatch):
    monkeypatch.setattr(settings, "SMS_GATEWAY_URL", http_server.url + "/send")
    monkeypatch.setattr(settings, "SMS_CONCURRENCY", 4)
    n = 60
    now = utcnow()
    Customer.insert_many(
        [
            {"external_id": f"s{i:03d}", "phone": f"+7999{i:07d}", "sms_consent": True, "created_at": now}
            for i in range(n)
        ]
    ).execute()
    segment = static_segment("phones", Customer.select())
    http_server.delay = 0.02  # each answer takes a while: requests overlap when they can
    http_server.statuses = [200] * 10 + [503, 500]  # two passing failures: sent again later, once
    mailing = mailings.create_campaign(
        {"name": "Texts", "channel": "sms", "segment_id": segment.id, "body": "Hi {{ external_id }}"}
    )
    mailing = mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    assert mailings.run_sender(mailing.id, links=LINKS, seconds=60) == "done"
    requests = http_server.requests
    assert len(requests) == n + 2
    taken = collections.Counter(json.loads(r["body"])["phone"] for r in requests if r["status"] == 200)
    assert len(taken) == n and set(taken.values()) == {1}
    assert 1 < http_server.most_active <= 4  # concurrent, within SMS_CONCURRENCY
    # kept alive: 62 requests over at most 4 connections (one per request under way)
    assert len({r["connection"] for r in requests}) <= 4
    counts = mailings.counts(mailing.id)
    assert (counts["sent"], counts["pending"], counts["failed"]) == (n, 0, 0)
    keys = [r["headers"]["Idempotency-Key"] for r in requests]
    assert len(set(keys)) == n  # a repeat carries its first try's key


def test_temporary_refusals_are_retried_then_failed_with_their_own_reasons(db, queue_server, smtp_server):
    segment = static_segment("retry", [customer(f"r{i}", email=f"r{i}@example.com") for i in range(7)])
    smtp_server.refuse = {
        "r1@example.com": "451 4.3.0 Try again later",
        "r2@example.com": "451 4.3.0 Try again later",
        "r3@example.com": "452 4.2.2 Mailbox full",
        "r6@example.com": "550 5.1.1 No such user",  # refused for good in the same group: failed at once
    }
    mailing = run(segment, "Retried")
    rows = {
        r.customer.external_id: (r.status, r.attempts, r.reason)
        for r in MailingRecipient.select().where(MailingRecipient.mailing == mailing)
    }
    for ext, text in (("r1", "Try again later"), ("r2", "Try again later"), ("r3", "Mailbox full")):
        status, attempts, reason = rows[ext]
        assert (status, attempts) == ("failed", mailings.MAX_ATTEMPTS) and text in reason, rows[ext]
    status, attempts, reason = rows["r6"]
    assert (status, attempts) == ("failed", 1) and "No such user" in reason, rows["r6"]
    assert {rows[e][0] for e in ("r0", "r4", "r5")} == {"sent"}
    assert set(smtp_server.count) == {"r0@example.com", "r4@example.com", "r5@example.com"}


def test_a_commit_that_raises_drops_the_connections_at_once_and_nothing_is_sent(smtp_server, monkeypatch):
    # The database gone mid-group (PostgreSQL restarted): the messages are inside DATA, without
    # their ".". A QUIT there is message content to the server, so the group must not wait for its
    # reply (SMTP_TIMEOUT a connection, 20 connections); it drops them and the servers discard all.
    monkeypatch.setattr(delivery, "SMTP_TIMEOUT", 2)  # if it did wait, a failing test still ends soon

    class DatabaseGone(Exception):
        pass

    def commit(keys):
        raise DatabaseGone

    with delivery.SmtpGroup(size=3) as group:
        messages = [
            (i, f"c{i}@example.com", delivery.build_email(f"c{i}@example.com", "Hi", "<p>x</p>", "x")) for i in range(3)
        ]
        with pytest.raises(DatabaseGone):
            group.deliver(messages, commit)
        assert group.conns == [None, None, None]
        # The next group opens new connections and goes out as usual.
        assert group.deliver(messages[:1], lambda keys: keys) == {0: ("sent", None)}
    assert smtp_server.count == {"c0@example.com": 1}
    assert smtp_server.connections == 4
