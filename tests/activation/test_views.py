"""The activation pages through the real app (UI flows, SQLite): roles, the
mailing editor with preview and test send, send now and the self-replacing
progress partial, scheduling, the trigger editor with its steps fragment,
tasks and the customer card."""

import datetime
import re

import pytest
from conftest import PASSWORD, csrf_from

from webapp import settings
from webapp.activation import mailings, triggers
from webapp.activation.links import Links
from webapp.models import Mailing, Task, Trigger, TriggerStep, utcnow
from webapp.queue import connection, get_queue

from .conftest import customer, static_segment

pytestmark = pytest.mark.sqlite_only
HX = {"HX-Request": "true"}


def page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def hx_post(client, url, data, token, status=200, method="post"):
    response = getattr(client, method)(url, data=data, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    return response.get_data(as_text=True)


def test_roles(app, client, login, make_user):
    make_user(email="first@example.com")
    assert client.get("/mailings/").status_code == 302  # the login wall
    login(email="m@example.com", role="manager")
    for url in (
        "/mailings/",
        "/mailings/new",
        "/triggers/",
        "/triggers/new",
        "/mailings/sms-outbox",
        "/mailings/imported",
    ):
        assert client.get(url).status_code == 403, url
    html = page(client, "/tasks/")
    assert "Mailings" not in html.split("</nav>")[0] and "Tasks" in html


def test_mailing_editor_preview_test_send_and_sending(app, auth_client, smtp_server):
    client = auth_client
    ann = customer("ann", first_name="<script>alert(1)</script>Ann")
    bob = customer("bob", first_name="Bob", email_consent=False)
    segment = static_segment("readers", [ann, bob])
    html = page(client, "/mailings/new")
    token = csrf_from(html)
    form = {
        "csrf_token": token,
        "name": "Spring tea",
        "channel": "email",
        "segment_id": segment.id,
        "subject": "Tea for {{ first_name }}",
        "body": "<p>Hello {{ first_name }}</p>",
    }
    # preview for the segment's first member: values escaped, inside a sandboxed frame
    preview = hx_post(client, "/mailings/preview", form, token)
    assert 'sandbox=""' in preview and "<script>alert" not in preview
    assert "&amp;lt;script&amp;gt;" in preview  # escaped in the email, then again in srcdoc
    assert "Tea for &lt;script&gt;" in preview
    preview = hx_post(client, "/mailings/preview", {**form, "preview_for": "bob"}, token)
    assert "Hello Bob" in preview
    bad = hx_post(client, "/mailings/preview", {**form, "body": "{{ nope }}"}, token)
    assert "Unknown placeholder: nope" in bad
    # test send: over SMTP, now, marked as a test
    result = hx_post(client, "/mailings/test", {**form, "test_to": "me@example.com", "preview_for": "bob"}, token)
    assert "Test sent to me@example.com" in result
    [test] = smtp_server.to("me@example.com")
    assert test["Subject"] == "[Test] Tea for Bob"
    # save: errors named at their field, then a draft
    response = client.post("/mailings/new", data={**form, "name": ""})
    assert response.status_code == 422 and "Give the mailing a name." in response.get_data(as_text=True)
    response = client.post("/mailings/new", data=form)
    assert response.status_code == 302
    mailing = Mailing.get(Mailing.name == "Spring tea")
    html = page(client, f"/mailings/{mailing.id}")
    assert "Now 1 of the segment’s 2 members would get it." in html
    assert "1 without consent" in html
    # send now through the progress partial
    partial = hx_post(client, f"/mailings/{mailing.id}/progress", {}, token)
    assert 'data-status="queued"' in partial and 'hx-trigger="every 1s"' in partial
    assert mailings.materialise(mailing.id) == 2
    partial = page(client, f"/mailings/{mailing.id}/progress")
    assert 'data-status="sending"' in partial and 'max="2" value="1"' in partial  # bob skipped at once
    with app.app_context():
        mailings.run_sender(mailing.id, links=Links(app.config["SECRET_KEY"], settings.PUBLIC_URL))
    partial = page(client, f"/mailings/{mailing.id}/progress")
    assert 'data-status="sent"' in partial and "every 1s" not in partial
    assert re.search(r'class="sent-count">1<', partial)
    assert "No consent for this channel — 1" in partial
    assert smtp_server.count["ann@example.com"] == 1
    # the list shows it, and it cannot be edited any more
    assert "Spring tea" in page(client, "/mailings/")
    assert client.get(f"/mailings/{mailing.id}/edit").status_code == 302
    assert "Skipped" in page(client, f"/mailings/{mailing.id}/recipients?status=skipped")


def test_schedule_and_cancel(app, auth_client):
    client = auth_client
    segment = static_segment("s", [customer("ann")])
    mailing = mailings.create_campaign({"name": "Later", "channel": "sms", "segment_id": segment.id, "body": "Hi"})
    token = csrf_from(page(client, f"/mailings/{mailing.id}"))
    response = client.post(
        f"/mailings/{mailing.id}/schedule", data={"csrf_token": token, "scheduled_at": "2001-01-01T10:00"}
    )
    assert Mailing.get_by_id(mailing.id).status == "draft"  # the past is refused
    when = (datetime.datetime.now() + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"/mailings/{mailing.id}/schedule", data={"csrf_token": token, "scheduled_at": when})
    assert response.status_code == 302
    scheduled = Mailing.get_by_id(mailing.id)
    assert scheduled.status == "scheduled"
    assert abs((scheduled.scheduled_at - utcnow()).total_seconds() - 7200) < 120  # TZ is UTC in tests
    assert mailings.due_scheduled(utcnow()) == []
    assert mailings.due_scheduled(utcnow() + datetime.timedelta(hours=3)) == [mailing.id]
    assert Mailing.get_by_id(mailing.id).status == "queued"
    partial = hx_post(client, f"/mailings/{mailing.id}/progress", {}, token, method="delete")
    assert 'data-status="cancelled"' in partial
    assert mailings.materialise(mailing.id) is None


def start_jobs(mailing_id):
    """The start jobs of the mailing waiting in the queue."""
    return [
        job
        for job in get_queue("default").get_jobs()
        if job.func_name == "webapp.activation.jobs.start_mailing_job" and job.args == (mailing_id,)
    ]


def test_sending_from_the_page_queues_the_start(app, auth_client):
    connection().flushdb()  # start keys of other tests' mailings (same ids) would hold the queueing back
    client = auth_client
    segment = static_segment("s", [customer("ann")])
    first, second = (
        mailings.create_campaign({"name": name, "channel": "sms", "segment_id": segment.id, "body": "Hi"})
        for name in ("One", "Two")
    )
    token = csrf_from(page(client, f"/mailings/{first.id}"))
    assert 'data-status="queued"' in hx_post(client, f"/mailings/{first.id}/progress", {}, token)
    assert client.post(f"/mailings/{second.id}/send", data={"csrf_token": token}).status_code == 302
    assert [Mailing.get_by_id(m.id).status for m in (first, second)] == ["queued", "queued"]
    assert len(start_jobs(first.id)) == len(start_jobs(second.id)) == 1


def test_trigger_editor(app, auth_client, make_user):
    client = auth_client
    olga = make_user(email="olga@example.com", role="manager", name="Olga")
    segment = static_segment("vip", [])
    html = page(client, "/triggers/new")
    token = csrf_from(html)
    form = {
        "csrf_token": token,
        "name": "VIP welcome",
        "segment_id": segment.id,
        "event": "entered",
        "active": "1",
        "steps-0-action": "email",
        "steps-0-delay_value": "0",
        "steps-0-delay_unit": "days",
        "steps-0-only_members": "1",
        "steps-0-subject": "Welcome",
        "steps-0-body": "<p>Hi {{ name }}</p>",
    }
    # structural edits come back as the steps fragment, nothing saved
    fragment = hx_post(client, "/triggers/steps", {**form, "op": "add"}, token)
    assert fragment.count("<fieldset") == 2 and not Trigger.select().exists()
    fragment = hx_post(client, "/triggers/steps", {**form, "steps-0-action": "task"}, token)
    assert "Due in (days)" in fragment and "Olga" in fragment
    form.update(
        {
            "steps-1-action": "task",
            "steps-1-delay_value": "2",
            "steps-1-delay_unit": "days",
            "steps-1-text": "Call {{ name }}",
            "steps-1-due_days": "1",
            "steps-1-user_id": str(olga.id),
            "steps-2-action": "webhook",
            "steps-2-delay_value": "1",
            "steps-2-delay_unit": "hours",
            "steps-2-url": "ftp://nope",
        }
    )
    response = client.post("/triggers/new", data={**form, "op": "save"})
    assert response.status_code == 422 and "Enter an http:// or https:// address." in response.get_data(as_text=True)
    form["steps-2-url"] = "https://hooks.example/in"
    response = client.post("/triggers/new", data={**form, "holdout_percent": "-1", "op": "save"})
    assert response.status_code == 422
    assert "The control group is a whole percentage from 0 to 50." in response.get_data(as_text=True)
    response = client.post("/triggers/new", data={**form, "holdout_percent": "15", "op": "save"})
    assert response.status_code == 302
    trigger = Trigger.get()
    assert trigger.holdout_percent == 15
    steps = triggers.steps_of(trigger.id)
    assert [(s.action, s.delay_seconds) for s in steps] == [("email", 0), ("task", 172800), ("webhook", 3600)]
    assert steps[0].mailing.subject == "Welcome" and steps[0].mailing.kind == "trigger"
    secret = steps[2].config["secret"]
    assert len(secret) >= 20
    html = page(client, f"/triggers/{trigger.id}")
    assert "VIP welcome" in html and "after 2 days" in html and "Nobody has entered" in html
    assert "Control group: 15%" in html and steps[0].mailing.holdout_percent == 15
    ru = client.get(f"/triggers/{trigger.id}", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Контрольная группа: 15\u00a0%" in ru  # as Russian writes a percentage
    edit = page(client, f"/triggers/{trigger.id}/edit")
    assert secret in edit and "Call {{ name }}" in edit and 'name="holdout_percent"' in edit
    assert re.search(r'id="holdout_percent"[^>]*value="15"', edit)
    # remove the first step through the full form: the email step's mailing is retired
    data = {k: v for k, v in form.items() if not k.startswith("steps-0-")}
    data = {k.replace("steps-1-", "steps-0-").replace("steps-2-", "steps-1-"): v for k, v in data.items()}
    data["steps-0-id"], data["steps-1-id"] = str(steps[1].id), str(steps[2].id)
    data["steps-1-secret"] = secret
    assert client.post(f"/triggers/{trigger.id}/edit", data={**data, "op": "save"}).status_code == 302
    assert [s.action for s in triggers.steps_of(trigger.id)] == ["task", "webhook"]
    assert triggers.steps_of(trigger.id)[1].config["secret"] == secret
    assert Mailing.get_by_id(steps[0].mailing_id).status == "retired"
    assert "VIP welcome" in page(client, "/triggers/")
    assert client.post(f"/triggers/{trigger.id}/delete", data={"csrf_token": token}).status_code == 302
    assert not Trigger.select().exists() and not TriggerStep.select().exists()


def test_tasks_page_toggle_and_customer_card(app, client, make_user):
    make_user()  # the admin: the app is set up
    manager = make_user(email="m@example.com", role="manager")
    other = make_user(email="o@example.com", role="manager")
    ann = customer("ann", first_name="Ann")
    mine = Task.create(customer=ann, assignee=manager, title="Call Ann", due_on=datetime.date(2000, 1, 1))
    theirs = Task.create(customer=ann, assignee=other, title="Email Ann")
    html = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"email": "m@example.com", "password": PASSWORD, "csrf_token": csrf_from(html)})
    html = page(client, "/tasks/")
    assert "Call Ann" in html and "Email Ann" not in html
    assert 'class="badge bad" title="Overdue"' in html
    token = csrf_from(html)
    row = hx_post(client, f"/tasks/{mine.id}/done", {"done": "1"}, token)
    assert row.startswith('<tr id="task-') and "checked" in row and "<s>Call Ann</s>" in row
    assert Task.get_by_id(mine.id).done_at is not None
    assert "Call Ann" in page(client, "/tasks/?state=done")
    assert client.post(f"/tasks/{theirs.id}/done", data={"done": "1", "csrf_token": token}).status_code == 403
    # the card lists the customer's tasks and adds one
    card = page(client, f"/customers/{ann.id}")
    assert 'id="tasks"' in card and "Email Ann" in card
    response = client.post(
        "/tasks/new", data={"csrf_token": token, "customer_id": ann.id, "title": "Send samples", "due_on": "2030-05-01"}
    )
    assert response.status_code == 302
    task = Task.get(Task.title == "Send samples")
    assert (task.assignee_id, task.customer_id, task.due_on) == (manager.id, ann.id, datetime.date(2030, 5, 1))


def test_control_group_caps_and_quiet_hours_on_the_pages(app, auth_client, monkeypatch):
    from webapp.models import MailingRecipient, Order

    client, token = auth_client, None
    monkeypatch.setattr(settings, "QUIET_HOURS_EMAIL", "00:00-23:59")
    monkeypatch.setattr(settings, "FREQUENCY_CAP_EMAIL", "2/7")
    people = [customer(f"p{i}") for i in range(40)]
    segment = static_segment("people", people)
    html = page(client, "/mailings/new")
    token = csrf_from(html)
    assert 'name="holdout_percent"' in html and 'name="transactional"' in html
    form = {
        "csrf_token": token,
        "name": "Held",
        "channel": "email",
        "segment_id": segment.id,
        "subject": "Hi",
        "body": "<p>Hi</p>",
        "holdout_percent": "80",
    }
    response = client.post("/mailings/new", data=form)
    assert response.status_code == 422
    assert "The control group is a whole percentage from 0 to 50." in response.get_data(as_text=True)
    assert client.post("/mailings/new", data={**form, "holdout_percent": "50"}).status_code == 302
    mailing = Mailing.get(Mailing.name == "Held")
    assert (mailing.holdout_percent, mailing.conversion_days, mailing.transactional) == (50, 7, False)
    html = page(client, f"/mailings/{mailing.id}")
    assert "At most 2 messages in 7 days per customer." in html and "Quiet hours 00:00–23:59" in html
    mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    with app.app_context():
        mailings.run_sender(mailing.id, links=Links(app.config["SECRET_KEY"], settings.PUBLIC_URL))
    counts = mailings.counts(mailing.id)
    held = counts["held_out"]
    assert 0 < held < 40 and counts["pending"] == 40 - held  # all the others wait for quiet hours
    partial = page(client, f"/mailings/{mailing.id}/progress")
    assert "messages wait for quiet hours to end" in partial and re.search(
        rf'class="held-count"><a[^>]*>{held}<', partial
    )
    assert "Quiet hours until" in page(client, f"/mailings/{mailing.id}/recipients?status=pending")
    assert "Control group of this mailing" in page(client, f"/mailings/{mailing.id}/recipients?status=held_out")
    # the uplift report: one held-out customer bought
    buyer = MailingRecipient.get(MailingRecipient.mailing == mailing.id, MailingRecipient.status == "held_out")
    Order.create(
        external_id="o1",
        customer=buyer.customer_id,
        ordered_at=utcnow() + datetime.timedelta(hours=1),
        total_cents=1234,
    )
    html = page(client, f"/mailings/{mailing.id}")
    assert 'id="uplift"' in html and "Not enough data yet" in html
    assert re.search(rf'class="uplift-control-n">{held}<', html) and "12.34" in html
    assert "<svg" in html  # the cumulative conversion chart
    assert page(client, f"/mailings/{mailing.id}?days=abc")  # garbage: the default window
