"""What a marketer does from a segment's page and from an event day's customer
list (issue 20, point 4): export the members, start a mailing to them, and
turn the day's customers into a segment or an export. Both databases."""

import datetime
import html as html_lib
import json
import re

from segments.conftest import marketer  # noqa: F401 - fixture: a logged-in marketer
from webapp import engine
from webapp.localtime import day_bounds
from webapp.models import Customer, EventOccurrence, EventType, Segment, SegmentMember


def hrefs(page):
    return {
        html_lib.unescape(text.strip()): html_lib.unescape(href)
        for href, text in re.findall(r'<a class="button[^"]*" href="([^"]+)">([^<]+)</a>', page)
    }


def test_segment_page_offers_export_and_a_mailing(app, marketer):
    segment = Segment.create(code="vip", name="VIP", definition={"version": 1, "blocks": []})
    customer = Customer.create(external_id="c1", email="a@example.com")
    SegmentMember.create(segment=segment, customer=customer, since=datetime.datetime(2025, 1, 1))
    buttons = hrefs(marketer.get("/segments/vip").get_data(as_text=True))
    assert buttons["Export"] == "/segments/vip/export"
    assert marketer.get(buttons["Export"]).headers["Location"].endswith("/exports/new?segment=vip")
    assert buttons["New mailing to this segment"] == f"/mailings/new?segment={segment.id}"
    form = marketer.get(buttons["New mailing to this segment"]).get_data(as_text=True)
    assert re.search(rf'<option value="{segment.id}"[^>]*selected', form)


def test_event_day_makes_a_segment_and_an_export(app, marketer):
    tz = app.config.get("TZ") or "UTC"
    day = datetime.date(2025, 3, 10)
    start, end = day_bounds(day, tz)
    croissant = EventType.create(code="bought_croissant", name="Bought a croissant")
    other = EventType.create(code="app_opened", name="Opened the app")
    people = [Customer.create(external_id=f"c{n}", email=f"c{n}@example.com") for n in range(1, 6)]
    for customer, event, at in [
        (people[0], croissant, start),  # first instant of the local day
        (people[1], croissant, end - datetime.timedelta(seconds=1)),  # last second of it
        (people[1], croissant, start + datetime.timedelta(hours=2)),
        (people[2], croissant, start - datetime.timedelta(seconds=1)),  # the day before
        (people[3], croissant, end),  # the day after
        (people[4], other, start + datetime.timedelta(hours=1)),  # another event that day
    ]:
        EventOccurrence.create(customer=customer, event_type=event, occurred_at=at)
    page = marketer.get(f"/events/{croissant.id}?day={day.isoformat()}").get_data(as_text=True)
    buttons = hrefs(page)

    builder = marketer.get(buttons["Make a segment"]).get_data(as_text=True)
    assert 'value="Bought a croissant on 2025-03-10"' in builder
    assert 'value="bought_a_croissant_on_2025_03_10"' in builder
    # the event's chip says its name, its code in the tooltip (point 8)
    assert '<span class="chip-label" title="bought_croissant">Bought a croissant</span>' in builder
    shown = json.loads(
        html_lib.unescape(re.search(r'<pre id="json-current" class="json">(.*?)</pre>', builder, re.S).group(1))
    )
    members = {c.external_id for c in engine.members_query(shown, tz=tz)}
    assert members == {"c1", "c2"}

    form = marketer.get(buttons["Export"]).get_data(as_text=True)
    assert "2 customers" in form
    definition = html_lib.unescape(re.search(r"name=\"definition\" value='([^']*)'", form).group(1))
    name = re.search(r'name="name" value="([^"]*)"', form).group(1)
    response = marketer.post(
        "/exports/new", data={"definition": definition, "name": name, "columns": ["external_id"], "format": "csv"}
    )
    assert response.status_code == 200
    assert "filename=bought_croissant-2025-03-10-" in response.headers["Content-Disposition"]
    assert sorted(response.data.decode().split()[1:]) == ["c1", "c2"]
    # a definition that is not one: a clear 400, never a 500
    assert marketer.get("/exports/new?definition=%7Bnot%20json").status_code == 400
    broken = marketer.get("/segments/new?definition=%7Bnot%20json")
    assert broken.status_code == 200 and "error-box" in broken.get_data(as_text=True)
