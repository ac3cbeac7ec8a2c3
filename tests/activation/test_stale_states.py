"""Issue 20.6 on SQLite and PostgreSQL: no state shown stale beside a newer
one. A mailing's badge follows its progress fragment to the final state; a
segment's members refresh with its figures when a run ends; a trigger firing
whose webhook is still being retried (or gave up) is not "Done"."""

import datetime
import re

from conftest import csrf_from

from webapp import settings
from webapp.activation import mailings, triggers
from webapp.activation.links import Links
from webapp.models import Segment, User, WebhookCall, utcnow
from webapp.segments import realtime, runs

from .conftest import customer, static_segment
from .test_triggers import MOSCOW, step

HX = {"HX-Request": "true"}


def badge(html):
    found = re.search(
        r'<span id="mailing-status" hx-swap-oob="true">\s*<span class="badge[^"]*" data-status="(\w+)"', html
    )
    return found and found.group(1)


def test_the_mailing_badge_reaches_its_final_state(app, auth_client, queue_server, smtp_server):
    segment = static_segment("all", [customer("ann"), customer("bob")])
    mailing = mailings.create_campaign(
        {"name": "Spring", "channel": "email", "segment_id": segment.id, "subject": "Hi", "body": "<p>Hi</p>"}
    )
    page = auth_client.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert page.count('id="mailing-status"') == 1
    token = csrf_from(page)
    started = auth_client.post(f"/mailings/{mailing.id}/progress", headers={**HX, "X-CSRFToken": token})
    html = started.get_data(as_text=True)
    assert badge(html) == "queued" and 'hx-trigger="every 1s"' in html
    mailings.materialise(mailing.id)
    assert mailings.run_sender(mailing.id, links=Links("k", "http://track.test"), seconds=30) == "done"
    html = auth_client.get(f"/mailings/{mailing.id}", headers=HX).get_data(as_text=True)
    assert badge(html) == "sent" and "hx-trigger" not in html  # final: the polling stops


def test_segment_members_refresh_with_its_figures(app, auth_client, queue_server):
    ann = customer("ann", city="Москва")
    segment = Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)
    run = runs.request_run(segment)
    page = auth_client.get("/segments/moscow").get_data(as_text=True)
    assert "The segment has not been computed yet." in page
    assert runs.execute_run(run.id)
    html = auth_client.get("/segments/moscow/runs", headers=HX).get_data(as_text=True)
    members = html.split('<section class="card" id="seg-members" aria-labelledby="members-h" hx-swap-oob="true">')[1]
    assert '<span class="count">1</span>' in members and ann.display_name in members
    assert "not been computed" not in members
    kpis = html.split('id="seg-kpis" hx-swap-oob="true"')[1].split("</dl>")[0]
    assert ">1</a>" in kpis


def test_a_firing_with_a_failing_webhook_is_not_done(app, auth_client, http_server, monkeypatch):
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE", True)  # the receiver is on 127.0.0.1
    monkeypatch.setattr(settings, "WEBHOOK_RETRY_SECONDS", "1")
    moscow = Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)
    trigger = triggers.save(
        {
            "name": "Hook",
            "segment_id": moscow.id,
            "event": "entered",
            "active": "1",
            "steps": [step("webhook", url=http_server.url + "/hook")],
        },
        user=User.get(),
    )
    ann = customer("ann", city="Москва")
    realtime.recheck_customers([ann.id])
    assert triggers.consume() == 1
    triggers.run_due()
    http_server.statuses = [502, 503]
    triggers.call_webhooks()
    assert WebhookCall.get().status == "pending"
    html = auth_client.get(f"/triggers/{trigger.id}").get_data(as_text=True)
    assert "Retrying the webhook (1 attempt so far)" in html and 'data-status="done"' not in html
    assert triggers.stats([trigger.id])[trigger.id] == {"done": 0, "retrying": 1}
    triggers.call_webhooks(now=utcnow() + datetime.timedelta(seconds=2))
    assert WebhookCall.get().status == "failed"
    html = auth_client.get(f"/triggers/{trigger.id}").get_data(as_text=True)
    assert "Failed: the webhook gave up after 2 attempts" in html
    assert triggers.stats([trigger.id])[trigger.id] == {"done": 0, "failed": 1}
