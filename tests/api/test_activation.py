"""Mailing and trigger endpoints on both databases: limits read and changed
(drafts only for campaigns; triggers copy to their steps' mailings), counts
of held-out, capped and waiting recipients, and the uplift report."""

import datetime

from webapp.activation import mailings, triggers
from webapp.models import Customer, Mailing, MailingRecipient, Order, Segment, SegmentMember, utcnow


def _segment(n):
    segment = Segment.create(
        code="all", name="All", type="static", source="list", definition={"version": 1, "match": "all", "blocks": []}
    )
    for i in range(n):
        c = Customer.create(external_id=f"a{i}", email=f"a{i}@example.com", email_consent=True)
        SegmentMember.create(segment=segment, customer=c)
    return segment


def test_mailing_limits_counts_and_uplift(api, api_as):
    segment = _segment(30)
    mailing = mailings.create_campaign(
        {"name": "M", "channel": "email", "segment_id": segment.id, "subject": "S", "body": "<p>b</p>"}
    )
    status, data = api.get(f"/mailings/{mailing.id}")
    assert status == 200 and (data["holdout_percent"], data["conversion_days"], data["segment"]) == (0, 7, "all")
    status, data = api.call("PATCH", f"/mailings/{mailing.id}", {"holdout_percent": 90})
    assert status == 422 and data["error"]["details"][0]["field"] == "holdout_percent"
    status, data = api.call("PATCH", f"/mailings/{mailing.id}", {"colour": "red"})
    assert status == 422 and "colour" in data["error"]["message"]
    status, data = api.call("PATCH", f"/mailings/{mailing.id}", {"holdout_percent": "x"})
    assert status == 422
    status, data = api.call("PATCH", f"/mailings/{mailing.id}", {"holdout_percent": 50, "transactional": True})
    assert status == 200 and (data["holdout_percent"], data["transactional"], data["priority"]) == (50, True, 0)
    assert api_as("manager").get(f"/mailings/{mailing.id}")[0] == 403
    mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    status, data = api.get(f"/mailings/{mailing.id}")
    held = data["recipients"]["held_out"]
    assert 0 < held < 30 and data["recipients"]["pending"] == 30 - held
    assert api.call("PATCH", f"/mailings/{mailing.id}", {"priority": 3})[0] == 422  # started
    # a held-out customer buys 12.50 the next day
    row = MailingRecipient.get(MailingRecipient.mailing == mailing.id, MailingRecipient.status == "held_out")
    Order.create(
        external_id="o1", customer=row.customer_id, ordered_at=utcnow() + datetime.timedelta(hours=25), total_cents=1250
    )
    status, report = api.get(f"/mailings/{mailing.id}/uplift?days=3")
    assert status == 200 and report["days"] == 3 and not report["enough_data"]
    assert report["control"]["recipients"] == held and report["control"]["buyers"] == 1
    assert report["control"]["revenue"] == 12.5 and report["control"]["average_order_value"] == 12.5
    assert report["conversion_difference"] is None
    assert report["cumulative_conversion"]["control"] == [0.0, 1 / held, 1 / held]
    assert api.get(f"/mailings/{mailing.id}/uplift?days=0")[0] == 422
    assert api.get("/mailings/999/uplift")[0] == 404


def test_trigger_limits_copy_to_its_steps(api):
    segment = _segment(1)
    trigger = triggers.save(
        {
            "name": "T",
            "segment_id": segment.id,
            "event": "entered",
            "active": "1",
            "holdout_percent": "10",
            "steps": [{"action": "email", "delay_value": "0", "subject": "S", "body": "<p>b</p>"}],
        }
    )
    status, data = api.get(f"/triggers/{trigger.id}")
    assert status == 200 and data["holdout_percent"] == 10 and data["steps"][0]["action"] == "email"
    mailing_id = data["steps"][0]["mailing_id"]
    assert Mailing.get_by_id(mailing_id).holdout_percent == 10
    status, data = api.call("PATCH", f"/triggers/{trigger.id}", {"holdout_percent": 20, "priority": 5})
    assert status == 200 and (data["holdout_percent"], data["priority"]) == (20, 5)
    assert (Mailing.get_by_id(mailing_id).holdout_percent, Mailing.get_by_id(mailing_id).priority) == (20, 5)
    assert api.get(f"/mailings/{mailing_id}")[1]["kind"] == "trigger"


def test_recipients_one_by_one_with_status_reason_and_wait(api, api_as, monkeypatch):
    from webapp import settings
    from webapp.activation import limits

    for name in limits.ACCOUNT_LIMITS:
        monkeypatch.setattr(settings, name, 0 if name == "GLOBAL_CONTROL_PERCENT" else "")
    monkeypatch.setattr(settings, "SMTP_URL", "")
    segment = _segment(30)
    Customer.update(email_consent=False).where(Customer.external_id == "a0").execute()
    mailing = mailings.create_campaign(
        {"name": "M", "channel": "email", "segment_id": segment.id, "subject": "S", "body": "<p>b</p>"}
    )
    Mailing.update(holdout_percent=20).where(Mailing.id == mailing.id).execute()
    now = utcnow()
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=2)
    status, data = api.call(
        "PATCH",
        "/settings/campaign-limits",
        {"email_quiet_start": f"{start:%H:%M}", "email_quiet_end": f"{end:%H:%M}"},
    )
    assert status == 200 and data["saved"]
    mailings.send_now(mailing)
    mailings.materialise(mailing.id)
    mailings.run_sender(mailing.id, links=None, seconds=30)
    items, cursor = [], None
    while True:
        status, data = api.get(f"/mailings/{mailing.id}/recipients?limit=7" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        items += data["items"]
        cursor = data["next_cursor"]
        if not cursor:
            break
    assert len(items) == 30 and len({i["id"] for i in items}) == 30
    by_status = {}
    for item in items:
        by_status.setdefault(item["status"], []).append(item)
    assert set(by_status) == {"skipped", "held_out", "pending"}
    assert [(i["customer_external_id"], i["reason"], i["reason_text"]) for i in by_status["skipped"]] == [
        ("a0", "no_consent", "No consent for this channel")
    ]
    assert {(i["reason"], i["reason_text"]) for i in by_status["held_out"]} == {
        ("control", "Control group of this mailing")
    }
    assert all(i["sent_at"] for i in by_status["held_out"])
    assert {i["waiting_until"] for i in by_status["pending"]} == {f"{end:%Y-%m-%dT%H:%M}:00Z"}
    status, data = api.get(f"/mailings/{mailing.id}/recipients?status=held_out")
    assert status == 200 and len(data["items"]) == len(by_status["held_out"])
    assert api.get(f"/mailings/{mailing.id}/recipients?status=lost")[0] == 400
    assert api.get("/mailings/999/recipients")[0] == 404
    assert api_as("manager").get(f"/mailings/{mailing.id}/recipients")[0] == 403


def test_campaign_limits_for_admins(api, api_as, monkeypatch):
    from webapp import settings
    from webapp.activation import limits
    from webapp.models import AuditEvent

    monkeypatch.setattr(settings, "FREQUENCY_CAP_EMAIL", "2/7")
    monkeypatch.setattr(settings, "QUIET_HOURS_EMAIL", "")
    monkeypatch.setattr(settings, "FREQUENCY_CAP_SMS", "")
    monkeypatch.setattr(settings, "QUIET_HOURS_SMS", "")
    monkeypatch.setattr(settings, "GLOBAL_CONTROL_PERCENT", 0)
    status, data = api.get("/settings/campaign-limits")
    assert status == 200 and not data["saved"] and data["updated_at"] is None
    assert (data["email_cap_messages"], data["email_cap_days"], data["sms_cap_messages"]) == (2, 7, None)
    assert data["global_control_percent"] == 0
    for role in ("marketer", "manager"):
        assert api_as(role).get("/settings/campaign-limits")[0] == 403
        assert api_as(role).call("PATCH", "/settings/campaign-limits", {"global_control_percent": 5})[0] == 403
    status, data = api.call("PATCH", "/settings/campaign-limits", {"sms_quiet_start": "21:00"})
    assert status == 422 and data["error"]["details"] == [
        {
            "field": "sms_quiet_end",
            "message": "SMS quiet hours: enter both the start and the end (for example 21:00–09:00), "
            "or leave both empty for none.",
        }
    ]
    assert api.call("PATCH", "/settings/campaign-limits", {"sms_cap_days": "7"})[0] == 422  # wrong type
    assert api.call("PATCH", "/settings/campaign-limits", {"colour": 1})[0] == 422
    status, data = api.call(
        "PATCH",
        "/settings/campaign-limits",
        {"sms_cap_messages": 1, "sms_cap_days": 3, "sms_quiet_start": "21:00", "sms_quiet_end": "09:00"},
    )
    assert status == 200 and data["saved"] and data["updated_at"]
    assert (data["email_cap_messages"], data["sms_cap_messages"], data["sms_quiet_end"]) == (2, 1, "09:00")
    assert limits.account_limits()["FREQUENCY_CAP_SMS"] == "1/3"
    status, data = api.call("PATCH", "/settings/campaign-limits", {"email_cap_messages": None, "email_cap_days": None})
    assert status == 200 and data["email_cap_messages"] is None and limits.cap("email") is None
    assert AuditEvent.select().where(AuditEvent.action == "settings.limits").count() == 2
