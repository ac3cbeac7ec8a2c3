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
