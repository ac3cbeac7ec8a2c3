"""Triggers in-process, on SQLite and PostgreSQL: entries and exits found by
the real segment computation become executions once each; steps run after
their delays (time is passed in, not slept); a customer who leaves stops the
chain; actions: email through a real SMTP server, task, notification,
webhook to a local HTTP server (HMAC-signed, retried), clearing consent."""

import datetime
import hashlib
import hmac
import json

import pytest

from webapp import rollups, settings
from webapp.activation import delivery, limits, mailings, triggers
from webapp.activation.links import Links
from webapp.models import (
    Customer,
    MailingRecipient,
    MessageEvent,
    Notification,
    Order,
    OrderItem,
    Product,
    ProductGroup,
    Segment,
    SegmentChange,
    Task,
    TriggerExecution,
    User,
    WebhookCall,
    utcnow,
)
from webapp.segments import realtime, runs

from .conftest import customer

LINKS = Links("test-secret", "http://track.test")
# retailCRM's example: three months after buying Chinese tea, a 5% promo code.
CHINESE_TEA = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "order",
            "match": "all",
            "filters": [{"field": "product_group", "op": "in", "values": [{"value": "Tea/Chinese tea"}]}],
            "having": [{"agg": "last_at", "op": "relative", "to_days": -90}],
        }
    ],
}
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


def later(seconds):
    return utcnow() + datetime.timedelta(seconds=seconds)


def step(action, delay=0, **fields):
    return {"action": action, "delay_value": delay, "delay_unit": "seconds", "only_members": "1", **fields}


def make_trigger(segment, steps, event="entered", name="Trigger", user=None):
    return triggers.save(
        {"name": name, "segment_id": segment.id, "event": event, "active": "1", "steps": steps}, user=user
    )


def send_all():
    for mailing_id in {r.mailing_id for r in MailingRecipient.select()}:
        mailings.run_sender(mailing_id, links=LINKS)


def move(c, city):
    c.city = city
    c.save()
    realtime.recheck_customers([c.id])


@pytest.fixture
def moscow(db, queue_server):
    return Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)


def test_chinese_tea_promo_three_months_after(db, queue_server, smtp_server):
    group = ProductGroup.create(name="Chinese tea", path="Tea/Chinese tea", path_ci="tea/chinese tea")
    puer = Product.create(sku="PUER", sku_ci="puer", name="Puer", group=group)
    ann, bob = customer("ann", first_name="Ann"), customer("bob", first_name="Bob")
    for c, days in ((ann, 100), (bob, 10)):
        order = Order.create(
            external_id=f"o-{c.external_id}",
            customer=c,
            ordered_at=utcnow() - datetime.timedelta(days=days),
            total_cents=50000,
        )
        OrderItem.create(order=order, product=puer, quantity=1, price_cents=50000)
    rollups.refresh_order_stats([ann.id, bob.id])
    segment = Segment.create(code="tea90", name="Chinese tea, 3 months ago", type="dynamic", definition=CHINESE_TEA)
    make_trigger(
        segment,
        [step("email", subject="{{ first_name }}, time for more tea?", body="<p>Your code TEA5 gives 5% off.</p>")],
    )
    run = runs.request_run(segment)
    assert runs.execute_run(run.id)
    assert triggers.consume() == 1
    touched = triggers.run_due()
    send_all()
    assert dict(smtp_server.count) == {"ann@example.com": 1}
    [message] = smtp_server.to("ann@example.com")
    assert message["Subject"] == "Ann, time for more tea?"
    assert "TEA5 gives 5% off" in message.get_body(("html",)).get_content()
    assert touched == {MailingRecipient.get().mailing_id}
    # once per entry: running everything again sends nothing more
    assert triggers.consume() == 0
    triggers.run_due()
    send_all()
    assert sum(smtp_server.count.values()) == 1


def test_delay_once_per_entry_and_still_in_segment(moscow, smtp_server):
    ann = customer("ann", city="Tver")
    trigger = make_trigger(moscow, [step("email", delay=60, subject="Welcome", body="<p>Hi</p>")])
    move(ann, "Москва")
    assert triggers.consume() == 1
    execution = TriggerExecution.get()
    assert execution.trigger_id == trigger.id and execution.status == "active"
    assert abs((execution.due_at - execution.event_at).total_seconds() - 60) < 0.01
    triggers.run_due()
    assert not MailingRecipient.select().exists()  # not yet due
    triggers.run_due(now=later(61))
    send_all()
    assert smtp_server.count["ann@example.com"] == 1
    assert TriggerExecution.get().status == "done"
    # leave and come back: a new entry, a new message after the delay
    move(ann, "Tver")
    move(ann, "Москва")
    assert triggers.consume() == 1
    triggers.run_due(now=later(61))
    send_all()
    assert smtp_server.count["ann@example.com"] == 2
    # left before the delay was over: the step does not run
    move(ann, "Tver")
    move(ann, "Москва")
    triggers.consume()
    move(ann, "Tver")
    triggers.consume()
    triggers.run_due(now=later(61))
    send_all()
    assert smtp_server.count["ann@example.com"] == 2
    assert [e.status for e in TriggerExecution.select().order_by(TriggerExecution.id)] == ["done", "done", "stopped"]


def test_a_trigger_skips_a_bounced_address(moscow, smtp_server):
    ann, bob = customer("ann", city="Tver"), customer("bob", city="Tver")
    MessageEvent.create(customer=bob, channel="email", kind="bounced", occurred_at=utcnow())
    make_trigger(moscow, [step("email", subject="Welcome", body="<p>Hi</p>")])
    move(ann, "Москва")
    move(bob, "Москва")
    assert triggers.consume() == 2
    triggers.run_due()
    send_all()
    assert dict(smtp_server.count) == {"ann@example.com": 1}
    row = MailingRecipient.get(MailingRecipient.customer == bob)
    assert (row.status, row.reason) == ("skipped", "bounced")


def test_reactivation_chain_stops_for_those_who_woke_up(moscow, smtp_server):
    """OkoCRM + Unisender: sleeping subscribers get a chain of letters; who
    wakes up leaves the segment and the chain; the others are unsubscribed."""
    awake, asleep = customer("awake", city="Москва"), customer("asleep", city="Москва")
    make_trigger(
        moscow,
        [
            step("email", 0, subject="We miss you", body="<p>1</p>"),
            step("email", 10, subject="Still there?", body="<p>2</p>"),
            step("unsubscribe", 20, channel="email"),
        ],
        name="Reactivation",
    )
    realtime.recheck_customers([awake.id, asleep.id])
    triggers.consume()
    triggers.run_due()
    send_all()
    assert dict(smtp_server.count) == {"awake@example.com": 1, "asleep@example.com": 1}
    move(awake, "Tver")  # opened the letter: no longer sleeping
    triggers.run_due(now=later(11))
    send_all()
    assert dict(smtp_server.count) == {"awake@example.com": 1, "asleep@example.com": 2}
    triggers.run_due(now=later(21))
    assert Customer.get_by_id(asleep.id).email_consent is False
    assert Customer.get_by_id(awake.id).email_consent is True
    assert MessageEvent.get(MessageEvent.kind == "unsubscribed").customer_id == asleep.id
    statuses = {e.customer.external_id: e.status for e in TriggerExecution.select()}
    assert statuses == {"awake": "stopped", "asleep": "done"}


def test_task_notification_and_signed_webhook(moscow, http_server, monkeypatch):
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE", True)  # the receiver is on 127.0.0.1
    monkeypatch.setattr(settings, "WEBHOOK_RETRY_SECONDS", "5,5")
    owner = User.create(email="mk@example.com", email_ci="mk@example.com", password_hash="x", role="marketer")
    boss = User.create(email="boss@example.com", email_ci="boss@example.com", password_hash="x", role="admin")
    olga = User.create(
        email="olga@example.com", email_ci="olga@example.com", name="Olga", password_hash="x", role="manager"
    )
    ann = customer("ann", first_name="Ann", city="Tver", manager=olga)
    nobody = customer("nob", first_name="Nob", city="Tver")
    trigger = make_trigger(
        moscow,
        [
            step("task", text="Call {{ first_name }} about Moscow", due_days="2"),
            step("notify", text="{{ name }} moved to Moscow", user_id=str(boss.id)),
            step("webhook", url=http_server.url + "/hook", secret="s3cret"),
        ],
        user=owner,
    )
    http_server.statuses = [500]
    move(ann, "Москва")
    move(nobody, "Москва")
    triggers.consume()
    triggers.run_due()
    tasks = {t.customer.external_id: t for t in Task.select()}
    assert tasks["ann"].assignee_id == olga.id and tasks["ann"].title == "Call Ann about Moscow"
    assert tasks["ann"].due_on == (utcnow() + datetime.timedelta(days=2)).date()
    assert tasks["nob"].assignee_id == owner.id  # no manager: the trigger's author
    assert sorted(n.message for n in Notification.select().where(Notification.user == boss)) == [
        "Ann moved to Moscow",
        "Nob moved to Moscow",
    ]
    assert triggers.call_webhooks() == 1  # one of two answered 500
    calls = {c.customer.external_id: c for c in WebhookCall.select()}
    failed = next(c for c in calls.values() if c.status == "pending")
    assert failed.attempts == 1 and failed.response_status == 500
    assert triggers.call_webhooks() == 0  # not due again yet
    assert triggers.call_webhooks(now=later(6)) == 1
    assert WebhookCall.get_by_id(failed.id).status == "done"
    requests = http_server.requests
    assert len(requests) == 3
    for request in requests:
        signature = dict(part.split("=", 1) for part in request["headers"]["X-Segmento-Signature"].split(","))
        expected = hmac.new(b"s3cret", signature["t"].encode() + b"." + request["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature["v1"], expected)
    body = json.loads(requests[-1]["body"])
    assert body["event"] == "segment.entered" and body["segment"]["code"] == "moscow"
    assert body["trigger"] == {"id": trigger.id, "name": "Trigger", "step": 3}
    assert requests[0]["headers"]["X-Segmento-Delivery"] == str(failed.id) or requests[1]["headers"][
        "X-Segmento-Delivery"
    ] == str(failed.id)


def test_exit_trigger_and_webhook_that_keeps_failing(moscow, http_server, monkeypatch):
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE", True)  # the receiver is on 127.0.0.1
    monkeypatch.setattr(settings, "WEBHOOK_RETRY_SECONDS", "1")
    ann = customer("ann", city="Москва")
    realtime.recheck_customers([ann.id])
    make_trigger(moscow, [step("webhook", url=http_server.url + "/gone")], event="exited")
    triggers.consume()
    assert not TriggerExecution.select().exists()  # the entry is not an exit
    http_server.statuses = [502, 503]
    move(ann, "Tver")
    assert triggers.consume() == 1
    triggers.run_due()
    triggers.call_webhooks()
    triggers.call_webhooks(now=later(2))
    call = WebhookCall.get()
    assert (call.status, call.attempts, call.response_status) == ("failed", 2, 503)
    assert json.loads(call.body)["event"] == "segment.exited"


def test_a_new_trigger_does_not_replay_history(moscow):
    ann = customer("ann", city="Москва")
    realtime.recheck_customers([ann.id])
    assert SegmentChange.select().count() == 1
    make_trigger(
        moscow,
        [step("notify", text="x", user_id=str(User.create(email="a@x.io", email_ci="a@x.io", password_hash="x").id))],
    )
    assert triggers.consume() == 0


def test_steps_are_validated(moscow):
    with pytest.raises(triggers.TriggerError) as caught:
        triggers.save(
            {
                "name": "",
                "segment_id": moscow.id,
                "event": "entered",
                "steps": [
                    step("email", subject="", body="{{ nope }}"),
                    step("webhook", url="file:///etc/passwd"),
                    step("notify", text="hi"),
                    step("sms", delay="-3", text="x"),
                ],
            }
        )
    assert set(caught.value.errors) == {
        "name",
        "steps-0-subject",
        "steps-0-body",
        "steps-1-url",
        "steps-2-user_id",
        "steps-3-delay_value",
    }


@pytest.mark.postgresql_only  # SQLite has one writer: log ids appear in commit order
def test_an_entry_committed_late_with_a_lower_id_still_fires(moscow, db_url):
    """PostgreSQL: a long transaction (a full run) can commit log rows whose
    ids are lower than rows already read. The cursor waits for it."""
    import psycopg

    early, late = customer("early", city="Москва"), customer("late", city="Москва")
    make_trigger(
        moscow,
        [
            step(
                "notify",
                text="{{ name }}",
                user_id=str(User.create(email="n@x.io", email_ci="n@x.io", password_hash="x").id),
            )
        ],
    )
    trigger = triggers.Trigger.get()
    with psycopg.connect(db_url) as long_run:
        # a run's transaction takes an id first ...
        long_run.execute(
            'INSERT INTO segment_change (segment_id, customer_id, change, "at") '
            "VALUES (%s, %s, 'entered', now() at time zone 'utc')",
            (moscow.id, early.id),
        )
        # ... a real-time re-check commits a higher one meanwhile
        SegmentChange.create(segment=moscow, customer=late, change="entered", at=utcnow())
        assert triggers.consume() == 1  # the visible entry fires ...
        assert triggers.Trigger.get_by_id(trigger.id).last_change_id == 0  # ... the cursor waits
        long_run.commit()
    assert triggers.consume() == 1  # the late one, with its lower id
    assert triggers.consume() == 0
    assert triggers.Trigger.get_by_id(trigger.id).last_change_id == SegmentChange.select().count() and {
        e.customer_id for e in TriggerExecution.select()
    } == {early.id, late.id}


def test_webhooks_to_internal_addresses_are_refused(moscow, http_server, monkeypatch):
    """SSRF: without WEBHOOK_ALLOW_PRIVATE, a trigger cannot reach this machine
    or a private network, whether named by address, by localhost, or by a
    name that resolves there (checked on the connected address)."""
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE", False)
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "https://192.168.0.10/x",
        "http://[::ffff:127.0.0.1]/",
    ):
        with pytest.raises(triggers.TriggerError) as caught:
            triggers.save(
                {"name": "Hook", "segment_id": moscow.id, "event": "entered", "steps": [step("webhook", url=url)]}
            )
        assert "private network" in caught.value.errors["steps-0-url"][0], url
    assert delivery.webhook_url_problem("https://hooks.example/in") is None

    # "127.1" is no address literal for Python but resolves to 127.0.0.1: the
    # check on the connected peer refuses it; the receiver gets nothing and the
    # call fails at once (no retries).
    hook = http_server.url.replace("127.0.0.1", "127.1") + "/hook"
    assert delivery.webhook_url_problem(hook) is None
    make_trigger(moscow, [step("webhook", url=hook, secret="s")])
    move(customer("inside", city="Tver"), "Москва")
    triggers.consume()
    triggers.run_due()
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE", False)
    triggers.call_webhooks()
    call = WebhookCall.get()
    assert call.status == "failed" and "private network" in call.error and call.attempts == 1
    assert http_server.requests == []


def test_a_triggers_control_group_is_held_out_of_every_step(moscow, smtp_server):
    people = [customer(f"m{i}", city="Tver") for i in range(60)]
    trigger = triggers.save(
        {
            "name": "Welcome",
            "segment_id": moscow.id,
            "event": "entered",
            "active": "1",
            "holdout_percent": "30",
            "steps": [
                step("email", subject="One", body="<p>1</p>"),
                step("email", delay=1, subject="Two", body="<p>2</p>"),
            ],
        }
    )
    for c in people:
        c.city = "Москва"
        c.save()
    realtime.recheck_customers([c.id for c in people])
    assert triggers.consume() == 60
    triggers.run_due(now=later(2))
    triggers.run_due(now=later(2))
    send_all()
    key = limits.seed("trigger", trigger.id)
    expected = {c.id for c in people if limits.bucket(c.id, key) < 3000}
    assert 5 < len(expected) < 35
    for mailing_id in {r.mailing_id for r in MailingRecipient.select()}:
        held = {
            r.customer_id
            for r in MailingRecipient.select().where(
                MailingRecipient.mailing == mailing_id, MailingRecipient.status == "held_out"
            )
        }
        assert held == expected  # the same customers in both steps: the trigger's split
    held_emails = {f"{c.external_id}@example.com" for c in people if c.id in expected}
    assert not held_emails & set(smtp_server.count)
    assert set(smtp_server.count.values()) == {2} and len(smtp_server.count) == 60 - len(expected)
