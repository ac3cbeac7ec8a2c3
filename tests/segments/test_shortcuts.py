"""Ready-made filters in the builder and the reactivation chain starter (issue 20,
point 11): each shortcut inserts the block the spec says it means, and that block
selects the right customers; the starter makes the sleeping subscribers' segment
and opens the trigger editor on the seed's chain. Both databases."""

import datetime
import re

from werkzeug.datastructures import MultiDict

from segments.conftest import marketer  # noqa: F401 - fixture: a logged-in marketer
from segments.formdata import form_fields
from webapp import engine
from webapp.activation import starters
from webapp.engine import catalogue
from webapp.models import Customer, MessageEvent, Order, Segment, utcnow
from webapp.rollups import refresh_order_stats
from webapp.segments import builder as b


def shortcut(marketer, name, days):
    response = marketer.post(
        "/segments/builder",
        data={"match": "all", "action": f"shortcut:{name}", "shortcut_days": str(days)},
        htmx=True,
    )
    assert response.status_code == 200
    definition = b.definition_from_form(MultiDict(form_fields(response.get_data(as_text=True))), catalogue())
    return engine.to_json(engine.parse_definition(definition))


def members(definition):
    return {c.external_id for c in engine.members_query(definition)}


def test_shortcuts_insert_the_blocks_that_mean_what_they_say(app, marketer):
    now = utcnow()
    people = {ext: Customer.create(external_id=ext, email=f"{ext}@example.com") for ext in "abcd"}
    for ext, days in (("a", 10), ("b", 60)):
        MessageEvent.create(
            customer=people[ext], channel="email", kind="opened", occurred_at=now - datetime.timedelta(days=days)
        )
    MessageEvent.create(customer=people["d"], channel="email", kind="sent", occurred_at=now)  # sent, never opened
    for n, (ext, days) in enumerate((("a", 100), ("b", 5), ("b", 200))):
        Order.create(
            external_id=f"o{n}", customer=people[ext], ordered_at=now - datetime.timedelta(days=days), total_cents=100
        )
    refresh_order_stats([c.id for c in people.values()])

    no_open = shortcut(marketer, "no_open", 45)
    assert no_open["blocks"] == [b.shortcut_block("no_open", 45)]
    assert no_open["blocks"][0]["filters"][1] == {
        "field": "occurred_at",
        "op": "relative",
        "from_days": -45,
        "to_days": 0,
    }
    assert members(no_open) == {"b", "c", "d"}
    assert members(shortcut(marketer, "never_ordered", 45)) == {"c", "d"}
    no_order = shortcut(marketer, "no_order", 30)
    assert no_order["blocks"][0]["filters"] == [
        {"field": "ordered_at", "op": "relative", "from_days": -30, "to_days": 0}
    ]
    assert members(no_order) == {"a", "c", "d"}
    # a days value out of range falls back to the default, never a 500
    assert shortcut(marketer, "no_order", "-5")["blocks"][0]["filters"][0]["from_days"] == -b.SHORTCUT_DAYS
    html = marketer.get("/segments/new").get_data(as_text=True)
    assert "Did not open an email in N days" in html and "Never ordered" in html and "No order in N days" in html


def test_reactivation_starter_makes_the_segment_and_fills_the_chain(app, marketer):
    page = marketer.get("/triggers/").get_data(as_text=True)
    assert "Start from: reactivation chain" in page
    response = marketer.post("/triggers/starters/reactivation")
    segment = Segment.get(Segment.code == starters.SLEEPING_CODE)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/triggers/new?starter=reactivation&segment={segment.id}")
    assert segment.definition == engine.to_json(engine.parse_definition(starters.sleeping_definition()))
    # asked again: the same segment, not a second one
    assert marketer.post("/triggers/starters/reactivation").headers["Location"] == response.headers["Location"]
    assert Segment.select().where(Segment.code.startswith("sleeping")).count() == 1
    editor = marketer.get(response.headers["Location"]).get_data(as_text=True)
    fields = MultiDict(form_fields(editor, form_id="trigger-form"))
    assert fields["name"] == "Reactivation chain" and fields["segment_id"] == str(segment.id)
    actions = [fields[f"steps-{i}-action"] for i in range(4)]
    assert actions == ["email", "email", "email", "unsubscribe"]
    assert [fields[f"steps-{i}-delay_value"] for i in range(4)] == ["0", "3", "7", "14"]
    assert all(fields.get(f"steps-{i}-only_members") == "1" for i in range(4))
    assert "unsubscribe_url" in fields["steps-2-body"] and fields["steps-3-channel"] == "email"
    assert re.search(r'name="start_existing" value="1" >', editor)  # the offer, off by default
