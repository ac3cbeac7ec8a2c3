"""A small generated customer base with a crafted entry/exit history, for the analytics tests.

Account time zone Europe/Berlin; "now" is 2024-11-05 10:00 UTC. The range
October 1 – November 5 crosses the end of summer time (October 27, a day of
25 hours). Segments:

- alpha, beta: in analytics, random entry/exit logs from October 3 (each
  customer alternates entered/exited; current members are those whose last
  change is an entry), plus crafted boundary cases (see CRAFTED);
- gamma: in analytics, an uploaded list: members with no logged change,
  since October 10 12:00 UTC;
- delta: in analytics, never computed (no log, no members);
- solo: in analytics, customer 1 alone with a crafted history (figures checked by hand);
- hidden: not in analytics.
"""

import datetime
import random
import zoneinfo

import pytest

from webapp.models import Customer, Order, Segment, SegmentChange, SegmentMember

TZ = zoneinfo.ZoneInfo("Europe/Berlin")
NOW = datetime.datetime(2024, 11, 5, 10, 0)
DT = datetime.datetime
EMPTY = {"version": 1, "match": "all", "blocks": []}

# customer 1, in alpha and alone in solo: enters at 2024-10-15 00:00 Berlin (22:00 UTC the day
# before), exits at 2024-10-20 12:00 UTC, enters again at 2024-10-27 23:00 Berlin (22:00 UTC, in
# the 25-hour day); orders a second before entering, at the entry instant, at the exit instant
# (not a member then), at 23:59 Berlin on October 26 (not a member) and at 23:30 Berlin on October 27.
CRAFTED_CHANGES = [
    (code, 1, change, at)
    for code in ("alpha", "solo")
    for change, at in [
        ("entered", DT(2024, 10, 14, 22, 0)),
        ("exited", DT(2024, 10, 20, 12, 0)),
        ("entered", DT(2024, 10, 27, 22, 0)),
    ]
]
CRAFTED_ORDERS = [
    (1, DT(2024, 10, 14, 21, 59, 59), 1000),
    (1, DT(2024, 10, 14, 22, 0), 2000),
    (1, DT(2024, 10, 20, 12, 0), 4000),
    (1, DT(2024, 10, 27, 22, 30), 8000),
    (1, DT(2024, 10, 26, 21, 59), 16000),
]


def _rand_time(rng, start, end):
    span = int((end - start).total_seconds())
    return start + datetime.timedelta(seconds=rng.randrange(span))


@pytest.fixture
def dataset(db):
    rng = random.Random(20241105)
    customers = []
    for n in range(1, 41):
        customers.append(Customer.create(external_id=f"c{n}", email=f"c{n}@example.com", first_name=f"C{n}"))
    ids = [c.id for c in customers]
    segments = {}
    for code, name, shown in [
        ("alpha", "Alpha", True),
        ("beta", "=Beta", True),
        ("gamma", "Gamma list", True),
        ("delta", "Delta never computed", True),
        ("hidden", "Hidden", False),
        ("solo", "Solo", True),
    ]:
        segments[code] = Segment.create(
            code=code,
            name=name,
            in_analytics=shown,
            definition=EMPTY,
            source="list" if code == "gamma" else "definition",
        )
    changes = [(segments[code].id, ids[cust - 1], change, at) for code, cust, change, at in CRAFTED_CHANGES]
    history_start = DT(2024, 10, 3, 9, 0)
    for code in ("alpha", "beta", "hidden"):
        for cid in ids[1:]:
            if rng.random() < 0.25 and cid != ids[1]:
                continue  # never a member
            times = sorted(
                _rand_time(rng, history_start, NOW - datetime.timedelta(hours=1))
                for _n in range(rng.choice([1, 1, 2, 3, 4]))
            )
            if cid == ids[1]:
                times[0] = history_start  # the first computation
            # alternating, as apply_members logs them (an entry for a non-member, an exit for a member)
            for k, at in enumerate(times):
                changes.append((segments[code].id, cid, "entered" if k % 2 == 0 else "exited", at))
    SegmentChange.insert_many(
        changes, fields=[SegmentChange.segment, SegmentChange.customer, SegmentChange.change, SegmentChange.at]
    ).execute()
    # current members: the last change is an entry (ties broken by id, as logged)
    last = {}
    for change in SegmentChange.select().order_by(SegmentChange.at, SegmentChange.id):
        last[(change.segment_id, change.customer_id)] = change
    members = [(sid, cid, c.at) for (sid, cid), c in last.items() if c.change == "entered"]
    gamma = rng.sample(ids, 12)
    members += [(segments["gamma"].id, cid, DT(2024, 10, 10, 12, 0)) for cid in gamma]
    SegmentMember.insert_many(
        members, fields=[SegmentMember.segment, SegmentMember.customer, SegmentMember.since]
    ).execute()
    orders = [(ids[cust - 1], at, cents) for cust, at, cents in CRAFTED_ORDERS]
    for cid in ids[1:]:
        for _n in range(rng.randrange(0, 14)):
            orders.append((cid, _rand_time(rng, DT(2024, 9, 20), NOW), rng.randrange(99, 50000)))
    Order.insert_many(
        [(f"o{n}", cid, at, cents) for n, (cid, at, cents) in enumerate(orders)],
        fields=[Order.external_id, Order.customer, Order.ordered_at, Order.total_cents],
    ).execute()
    return segments
