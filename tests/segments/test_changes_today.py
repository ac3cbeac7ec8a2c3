"""The home page's "changes today" equals a count of today's log, whoever wrote it.

Runs' rows are counted through the totals the run stored with them and the
rows no run wrote one by one (migration 0023); the figures must be exactly
those of counting `segment_change` itself.
"""

import datetime

import peewee as pw

from webapp import localtime, settings
from webapp.models import Customer, Segment, SegmentChange, utcnow
from webapp.segments import manual, realtime, runs
from webapp.segments.listing import changes_today, local_day_start

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


def counted_from_the_log():
    start = local_day_start(localtime.today(settings.tz()))
    rows = (
        SegmentChange.select(SegmentChange.segment, SegmentChange.change, pw.fn.COUNT(pw.SQL("*")))
        .where(SegmentChange.at >= start)
        .group_by(SegmentChange.segment, SegmentChange.change)
        .tuples()
    )
    found = {}
    for segment_id, change, n in rows:
        entered, exited = found.get(segment_id, (0, 0))
        found[segment_id] = (entered + n, exited) if change == "entered" else (entered, exited + n)
    return found


def test_runs_rechecks_and_manual_changes_are_all_counted(db, queue_server):
    people = [Customer.create(external_id=f"c{n}", city="Москва", city_ci="москва") for n in range(6)]
    moscow = Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)
    hand = Segment.create(code="hand", name="By hand", type="static", source="manual", definition=MOSCOW)
    assert runs.execute_run(runs.request_run(moscow).id)  # six enter through a run
    for person in people[:2]:  # two leave Moscow: a real-time re-check logs them
        Customer.update(city="Тверь", city_ci="тверь").where(Customer.id == person.id).execute()
    realtime.recheck_customers([p.id for p in people[:2]])
    manual.add_customer(hand, people[0].id)
    manual.add_customer(hand, people[1].id)
    manual.remove_customer(hand, people[1].id)
    # yesterday's rows of an earlier run and of a re-check are not today's
    yesterday = local_day_start(localtime.today(settings.tz())) - datetime.timedelta(minutes=1)
    old = runs.request_run(moscow)
    SegmentChange.create(segment=moscow, customer=people[5], change="exited", at=yesterday)
    runs.SegmentRun.update(status="done", at=yesterday, entered=0, exited=7).where(
        runs.SegmentRun.id == old.id
    ).execute()
    assert utcnow() >= yesterday

    shown = {s.id: (entered, exited) for s, entered, exited in changes_today()}
    assert shown == counted_from_the_log() == {moscow.id: (6, 2), hand.id: (2, 1)}
