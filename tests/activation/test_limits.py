"""Control groups, frequency caps and quiet hours in the send path, and the
uplift report, on both databases (the two-worker and SIGKILL cases are in
test_limits_worker.py)."""

import datetime
import math
import uuid
import zoneinfo

import pytest

from webapp import settings
from webapp.activation import limits, mailings, uplift
from webapp.models import ContactLog, Customer, Mailing, MailingRecipient, Order, utcnow

from .conftest import audience, customer, static_segment


def campaign(segment, name="Spring", **fields):
    data = {"name": name, "channel": "email", "segment_id": segment.id, "subject": "Hi", "body": "<p>Hello</p>"}
    data.update(fields)
    mailing = mailings.create_campaign(data)
    Mailing.update(status="queued").where(Mailing.id == mailing.id).execute()
    return Mailing.get_by_id(mailing.id)


def held_ids(mailing_id):
    return {
        c
        for (c,) in MailingRecipient.select(MailingRecipient.customer)
        .where(MailingRecipient.mailing == mailing_id, MailingRecipient.status == "held_out")
        .tuples()
    }


def test_split_is_within_a_binomial_bound_matches_python_and_survives_a_rerun(db):
    n, share = 100_000, 10
    segment = audience(n)
    mailing = campaign(segment, holdout_percent=share)
    assert mailings.materialise(mailing.id) == n
    held = held_ids(mailing.id)
    # 10 % of 100,000: sd = sqrt(n p (1-p)) = 94.9; 4.5 sd either side.
    assert abs(len(held) - n * share / 100) < 4.5 * math.sqrt(n * 0.1 * 0.9)
    # The database's hash is Python's, customer by customer.
    key = limits.seed("campaign", mailing.id)
    expected = {c for (c,) in Customer.select(Customer.id).tuples() if limits.bucket(c, key) < share * 100}
    assert held == expected
    # A start that died half way is run again: nobody moves between groups.
    MailingRecipient.delete().where(
        MailingRecipient.mailing == mailing.id, MailingRecipient.customer > n // 2
    ).execute()
    Mailing.update(status="queued").where(Mailing.id == mailing.id).execute()
    assert mailings.materialise(mailing.id) == n
    assert held_ids(mailing.id) == expected
    # Another campaign splits differently (its own key), about as many.
    other = campaign(segment, name="Summer", holdout_percent=share)
    mailings.materialise(other.id)
    other_held = held_ids(other.id)
    assert other_held != held
    # Independent splits: about 1 % of customers are in both.
    assert abs(len(other_held & held) - n * 0.01) < 4.5 * math.sqrt(n * 0.01 * 0.99)


def test_held_out_rows_are_not_sent_and_unreachable_ones_are_not_split(db, no_delivery_settings, monkeypatch):
    reachable = [customer(f"r{i}") for i in range(200)]
    unreachable = [customer(f"u{i}", email_consent=False) for i in range(50)]
    segment = static_segment("mixed", reachable + unreachable)
    mailing = campaign(segment, holdout_percent=30)
    mailings.materialise(mailing.id)
    counts = mailings.counts(mailing.id)
    assert counts["skipped"] == 50
    assert counts["held_out"] + counts["pending"] == 200 and 30 < counts["held_out"] < 90
    before = utcnow()
    assert mailings.run_sender(mailing.id, links=None, seconds=30) == "done"
    counts = mailings.counts(mailing.id)
    assert counts["sent"] == 200 - counts["held_out"]
    held = MailingRecipient.select().where(
        MailingRecipient.mailing == mailing.id, MailingRecipient.status == "held_out"
    )
    assert all(r.reason == "control" and r.sent_at <= before for r in held)
    assert Mailing.get_by_id(mailing.id).status == "sent"


def test_global_control_group_is_held_out_of_every_campaign(db, no_delivery_settings, monkeypatch):
    monkeypatch.setattr(settings, "GLOBAL_CONTROL_PERCENT", 20)
    people = [customer(f"g{i}") for i in range(300)]
    segment = static_segment("g", people)
    first, second = campaign(segment, name="One"), campaign(segment, name="Two")
    for m in (first, second):
        mailings.materialise(m.id)
    expected = {c.id for c in people if limits.in_global_control(c.id)}
    assert 20 < len(expected) < 110
    assert held_ids(first.id) == held_ids(second.id) == expected
    reasons = {r.reason for r in MailingRecipient.select().where(MailingRecipient.status == "held_out")}
    assert reasons == {"global_control"}


def test_caps_count_messages_per_customer_and_channel_and_spare_transactional(db, no_delivery_settings, monkeypatch):
    monkeypatch.setattr(settings, "FREQUENCY_CAP_EMAIL", "2/7")
    people = [customer(f"k{i}") for i in range(5)]
    segment = static_segment("k", people)
    sent = []
    for name in ("A", "B", "C"):
        m = campaign(segment, name=name)
        mailings.materialise(m.id)
        mailings.run_sender(m.id, links=None, seconds=30)
        sent.append(mailings.counts(m.id))
    assert [c["sent"] for c in sent] == [5, 5, 0]
    assert sent[2]["capped"] == 5
    row = MailingRecipient.select().where(MailingRecipient.status == "capped").first()
    assert row.reason == "frequency_cap" and mailings.reason_label(row.reason) == "Over the frequency cap"
    receipt = campaign(segment, name="Receipt", transactional="on")
    mailings.materialise(receipt.id)
    mailings.run_sender(receipt.id, links=None, seconds=30)
    assert mailings.counts(receipt.id)["sent"] == 5
    # Older than the window: counted no more.
    ContactLog.update(at=utcnow() - datetime.timedelta(days=8)).execute()
    again = campaign(segment, name="D")
    mailings.materialise(again.id)
    mailings.run_sender(again.id, links=None, seconds=30)
    assert mailings.counts(again.id)["sent"] == 5


def test_a_message_not_sent_after_all_gives_its_place_under_the_cap_back(db, no_delivery_settings, monkeypatch):
    monkeypatch.setattr(settings, "FREQUENCY_CAP_EMAIL", "1/7")
    person = customer("x")
    segment = static_segment("x", [person])
    mailing = campaign(segment)
    mailings.materialise(mailing.id)
    token = uuid.uuid4().hex
    rows = mailings.claim(mailing.id, token)
    assert len(rows) == 1 and ContactLog.select().count() == 1
    mailings._retry_or_fail([rows[0][0]], token, {rows[0][0]: "try later"})
    assert ContactLog.select().count() == 0
    assert MailingRecipient.get_by_id(rows[0][0]).status == "pending"


def test_a_sender_that_lost_its_rows_leaves_the_new_senders_place_under_the_cap(db, no_delivery_settings, monkeypatch):
    # Sender A stalls past the lease, sender B takes its rows over (and their
    # places under the cap); A's late hand-back must not free B's places, or a
    # third sender of another campaign sends to the same customers again.
    monkeypatch.setattr(settings, "FREQUENCY_CAP_EMAIL", "1/7")
    people = [customer(f"t{i}") for i in range(3)]
    segment = static_segment("t", people)
    first, second = campaign(segment, name="First"), campaign(segment, name="Second")
    mailings.materialise(first.id)
    mailings.materialise(second.id)
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    rows = mailings.claim(first.id, a)
    assert len(rows) == 3 and ContactLog.select().count() == 3
    stale = utcnow() - datetime.timedelta(seconds=settings.MAILING_LEASE_SECONDS + 1)
    MailingRecipient.update(claimed_at=stale).where(MailingRecipient.claim == a).execute()
    assert sorted(mailings.claim(first.id, b)) == sorted(rows)  # B takes them over
    ids = [r for r, _c in rows]
    mailings._retry_or_fail(ids, a, dict.fromkeys(ids, "timed out"))  # A, late: holds nothing now
    mailings._mark(ids, a, "failed", "late")
    assert ContactLog.select().count() == 3  # B's places are kept
    assert {r.claim for r in MailingRecipient.select().where(MailingRecipient.mailing == first.id)} == {b}
    assert mailings.claim(second.id, uuid.uuid4().hex) == []  # so the second campaign is capped
    assert mailings.counts(second.id)["capped"] == 3


NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # 2026-03-08: clocks go 02:00 -> 03:00. 00:00 EST (UTC-5) waits for 09:00 EDT (UTC-4) = 13:00 UTC.
        (datetime.datetime(2026, 3, 8, 5, 0), datetime.datetime(2026, 3, 8, 13, 0)),
        # 21:30 EST the evening before: until 09:00 EDT next morning.
        (datetime.datetime(2026, 3, 8, 2, 30), datetime.datetime(2026, 3, 8, 13, 0)),
        # 2026-11-01: clocks go 02:00 -> 01:00. 23:00 EDT on Oct 31 waits for 09:00 EST = 14:00 UTC.
        (datetime.datetime(2026, 11, 1, 3, 0), datetime.datetime(2026, 11, 1, 14, 0)),
        # 08:59 EST on Nov 1 (after the change): one minute left.
        (datetime.datetime(2026, 11, 1, 13, 59), datetime.datetime(2026, 11, 1, 14, 0)),
        # 09:00 EDT on Mar 8 is 13:00 UTC: the window is over.
        (datetime.datetime(2026, 3, 8, 13, 0), None),
        # 20:59 EST on Nov 1 = 01:59 UTC Nov 2: not yet.
        (datetime.datetime(2026, 11, 2, 1, 59), None),
    ],
)
def test_quiet_hours_end_in_the_customers_zone_across_dst(now, until):
    window = (datetime.time(21, 0), datetime.time(9, 0))
    assert limits.quiet_until(now, NEW_YORK, window) == until


def test_quiet_hours_hold_messages_until_the_end_of_the_window(db, no_delivery_settings, monkeypatch):
    monkeypatch.setattr(settings, "QUIET_HOURS_EMAIL", "21:00-09:00")
    monkeypatch.setattr(settings, "TZ", "UTC")
    ny = customer("ny", time_zone="America/New_York")
    local = customer("utc")  # the account's zone
    wrong = customer("bad", time_zone="Mars/Olympus")  # unknown: the account's zone
    segment = static_segment("q", [ny, local, wrong])
    mailing = campaign(segment)
    mailings.materialise(mailing.id)
    # 2026-03-08 05:00 UTC: midnight in New York (quiet), 05:00 in UTC (quiet too).
    now = datetime.datetime(2026, 3, 8, 5, 0)
    assert mailings.claim(mailing.id, uuid.uuid4().hex, now=now) == []
    waits = {r.customer_id: r.not_before for r in MailingRecipient.select()}
    assert waits == {
        ny.id: datetime.datetime(2026, 3, 8, 13, 0),
        local.id: datetime.datetime(2026, 3, 8, 9, 0),
        wrong.id: datetime.datetime(2026, 3, 8, 9, 0),
    }
    assert mailings.waiting(mailing.id, now=now) == (3, datetime.datetime(2026, 3, 8, 13, 0))
    assert not mailings.has_due_work(mailing.id, now=now) and mailings.has_work(mailing.id)
    at_nine = datetime.datetime(2026, 3, 8, 9, 30)
    assert {c for _r, c in mailings.claim(mailing.id, uuid.uuid4().hex, now=at_nine)} == {local.id, wrong.id}
    MailingRecipient.update(status="sent", claim=None).where(MailingRecipient.status == "sending").execute()
    later = datetime.datetime(2026, 3, 8, 13, 0)
    assert [c for _r, c in mailings.claim(mailing.id, uuid.uuid4().hex, now=later)] == [ny.id]


def test_transactional_mailings_ignore_quiet_hours(db, monkeypatch):
    monkeypatch.setattr(settings, "QUIET_HOURS_EMAIL", "00:00-23:59")
    segment = static_segment("t", [customer("t1")])
    mailing = campaign(segment, transactional="on")
    mailings.materialise(mailing.id)
    assert len(mailings.claim(mailing.id, uuid.uuid4().hex)) == 1


def test_settings_are_validated_with_the_field_named(db):
    segment = static_segment("v", [])
    with pytest.raises(mailings.MailingError) as caught:
        campaign(segment, holdout_percent="70", priority="x", conversion_days="0")
    assert set(caught.value.errors) == {"holdout_percent", "priority", "conversion_days"}


def test_uplift_figures_match_a_hand_computed_example(db):
    sent_at = datetime.datetime(2026, 1, 10, 12, 0)
    people = [customer(f"u{i}") for i in range(9)]
    segment = static_segment("u", people)
    mailing = Mailing.create(name="Up", kind="campaign", status="sent", segment=segment, channel="email")
    statuses = ["sent"] * 4 + ["held_out"] * 3 + ["capped", "skipped"]
    for person, status in zip(people, statuses, strict=True):
        MailingRecipient.create(mailing=mailing, customer=person, status=status, sent_at=sent_at)

    def order(person, days, cents):
        Order.create(
            external_id=uuid.uuid4().hex,
            customer=person,
            ordered_at=sent_at + datetime.timedelta(days=days),
            total_cents=cents,
        )

    # Sent: revenue per recipient 1000, 0, 3000 (two orders), 0.
    order(people[0], 0.5, 1000)
    order(people[2], 2.5, 1000)
    order(people[2], 3.5, 2000)
    order(people[1], 7.5, 9999)  # after the 7 days
    order(people[3], -1, 9999)  # before the message
    # Control: 500, 0, 0.
    order(people[4], 1.5, 500)
    # Capped and skipped customers are in neither group.
    order(people[7], 1, 7777)
    order(people[8], 1, 7777)

    report = uplift.report(mailing.id, days=7)
    s, c = report.sent, report.control
    assert (s.recipients, s.buyers, s.orders, s.revenue_cents) == (4, 2, 3, 4000)
    assert (c.recipients, c.buyers, c.orders, c.revenue_cents) == (3, 1, 1, 500)
    assert s.average_order == pytest.approx(4000 / 3) and c.average_order == 500
    # Conversion 2/4 vs 1/3: diff 1/6, se = sqrt(.25/4 + (2/9)/3) = 0.369559.
    diff, low, high = report.conversion_diff
    assert (diff, low, high) == pytest.approx((0.166667, -0.557656, 0.890990), abs=1e-5)
    # Revenue per recipient 1000 vs 166.67: variances 2,000,000 and 83,333.3;
    # Welch df = 3.3272, t(0.975) = 3.01252, half width 2188.55.
    diff, low, high = report.revenue_diff
    assert (diff, low, high) == pytest.approx((833.333, -1355.213, 3021.880), abs=1e-2)
    # Cumulative conversion by day: sent 1 on day 1, 2 on day 3; control 1 on day 2.
    assert s.cumulative(4) == [(1, 0.25), (2, 0.25), (3, 0.5), (4, 0.5)]
    assert [share for _day, share in c.cumulative(3)] == pytest.approx([0.0, 1 / 3, 1 / 3])
    assert not report.enough


def test_uplift_says_when_there_is_enough_data(db):
    report = uplift.Uplift(
        days=7,
        sent=uplift.Group(recipients=100, buyers=6),
        control=uplift.Group(recipients=100, buyers=3),
    )
    assert not report.enough
    report.control.buyers = 4
    assert report.enough
    report.control.recipients = 99
    assert not report.enough


def test_global_control_group_is_a_system_segment(db, monkeypatch):
    from webapp.models import Segment, SegmentMember

    people = [customer(f"s{i}") for i in range(200)]
    assert limits.sync_global_control() == 0  # off by default: the segment is there, empty
    segment = Segment.get(Segment.code == limits.GLOBAL_SEGMENT)
    assert segment.system and segment.size == 0
    monkeypatch.setattr(settings, "GLOBAL_CONTROL_PERCENT", 25)
    expected = {c.id for c in people if limits.in_global_control(c.id)}
    assert limits.sync_global_control() == len(expected) and 20 < len(expected) < 80
    members = {m.customer_id for m in SegmentMember.select().where(SegmentMember.segment == segment)}
    assert members == expected
    monkeypatch.setattr(settings, "GLOBAL_CONTROL_PERCENT", 10)  # a smaller share: a subset
    smaller = {c.id for c in people if limits.in_global_control(c.id)}
    assert limits.sync_global_control() == len(smaller) and smaller < expected


def test_a_higher_priority_mailing_gets_its_senders_queued_first(app, no_delivery_settings):
    from webapp.activation import jobs
    from webapp.queue import connection, get_queue

    connection().flushdb()
    segment = static_segment("p", [customer(f"p{i}") for i in range(3)])
    low, high, middle = (campaign(segment, name=n, priority=p) for n, p in (("Low", -5), ("High", 10), ("Mid", 0)))
    for m in (low, high, middle):
        mailings.materialise(m.id)
        assert Mailing.get_by_id(m.id).status == "sending"
    jobs.dispatch()
    queued = [job.args[0] for job in get_queue("default").jobs if job.func_name.endswith("send_mailing_job")]
    order = [m for i, m in enumerate(queued) if m not in queued[:i]]
    assert order == [high.id, middle.id, low.id]
