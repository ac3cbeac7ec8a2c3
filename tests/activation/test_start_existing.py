"""A new entry trigger (or chain) started for the customers already in its
segment (issue 20, point 9): offered with their count when saving, off by
default; the members then run the steps as if they entered now, once each,
and one who leaves stops as after any entry. Both databases."""

import datetime
import re

from conftest import csrf_from

from webapp.activation import triggers
from webapp.models import Segment, SegmentMember, Trigger, TriggerExecution, utcnow
from webapp.segments import realtime

from .conftest import customer
from .test_triggers import MOSCOW, move, send_all, step


def later(seconds):
    return utcnow() + datetime.timedelta(seconds=seconds)


def chain(segment, start_existing, event="entered"):
    data = {
        "name": f"Chain {start_existing} {event}",
        "segment_id": segment.id,
        "event": event,
        "active": "1",
        "steps": [
            step("email", 0, subject="We miss you", body="<p>1</p>"),
            step("email", 60, subject="Still there?", body="<p>2</p>"),
        ],
    }
    return triggers.save(data, start_existing=start_existing)


def test_started_for_current_members_once_and_stopped_for_who_leaves(db, queue_server, smtp_server):
    moscow = Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)
    ann, bob = customer("ann", city="Москва"), customer("bob", city="Москва")
    realtime.recheck_customers([ann.id, bob.id])  # both entered (logged)
    carl = customer("carl", city="Москва")
    SegmentMember.create(segment=moscow, customer=carl)  # a member whose entry is not in the log
    customer("dora", city="Tver")
    assert triggers.members_count(moscow.id) == 3

    untouched = chain(moscow, start_existing=False)
    assert untouched.started is None and not TriggerExecution.select().exists()  # off by default
    exit_trigger = chain(moscow, start_existing=True, event="exited")
    assert exit_trigger.started is None  # only entry triggers start for members
    trigger = chain(moscow, start_existing=True)
    assert trigger.started == 3
    executions = list(TriggerExecution.select().where(TriggerExecution.trigger == trigger.id))
    assert {e.customer_id for e in executions} == {ann.id, bob.id, carl.id}
    assert triggers.start_for_members(trigger) == 0  # never twice
    assert triggers.consume() == 0  # the old entries do not fire it again

    triggers.run_due()
    send_all()
    assert dict(smtp_server.count) == {"ann@example.com": 1, "bob@example.com": 1, "carl@example.com": 1}
    move(bob, "Tver")  # left before the second letter
    move(carl, "Tver")  # carl too, and came back: a new entry, so this chain stops for him
    move(carl, "Москва")
    triggers.run_due(now=later(61))
    send_all()
    assert dict(smtp_server.count) == {"ann@example.com": 2, "bob@example.com": 1, "carl@example.com": 1}
    statuses = {
        e.customer.external_id: e.status
        for e in TriggerExecution.select().where(TriggerExecution.trigger == trigger.id)
    }
    assert statuses == {"ann": "done", "bob": "stopped", "carl": "stopped"}


def test_the_editor_offers_it_with_the_count(app, auth_client, queue_server):
    moscow = Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)
    people = [customer(f"c{n}", city="Москва") for n in range(3)]
    for c in people:
        SegmentMember.create(segment=moscow, customer=c)
    html = auth_client.get("/triggers/new").get_data(as_text=True)
    assert 'id="start-existing"' in html and "already in the segment" not in html  # no segment chosen yet
    offer = auth_client.get(f"/triggers/start-existing?segment_id={moscow.id}&event=entered").get_data(as_text=True)
    assert "Also start it now for the 3 customers already in the segment" in offer
    assert re.search(r'name="start_existing" value="1" >', offer)  # not checked
    gone = auth_client.get(f"/triggers/start-existing?segment_id={moscow.id}&event=exited").get_data(as_text=True)
    assert "start_existing" not in gone
    form = {
        "csrf_token": csrf_from(html),
        "name": "Welcome",
        "segment_id": moscow.id,
        "event": "entered",
        "active": "1",
        "steps-0-action": "email",
        "steps-0-delay_value": "0",
        "steps-0-delay_unit": "days",
        "steps-0-only_members": "1",
        "steps-0-subject": "Hi",
        "steps-0-body": "<p>Hi</p>",
        "op": "save",
    }
    # a problem elsewhere keeps the choice as it was made
    refused = auth_client.post("/triggers/new", data={**form, "name": "", "start_existing": "1"})
    assert refused.status_code == 422 and re.search(
        r'name="start_existing" value="1" checked>', refused.get_data(as_text=True)
    )
    assert not Trigger.select().exists()
    saved = auth_client.post("/triggers/new", data={**form, "start_existing": "1"}, follow_redirects=True)
    assert "Trigger saved and started for 3 customers already in the segment." in saved.get_data(as_text=True)
    assert TriggerExecution.select().count() == 3
