"""Imported mailings (sent by other tools, known from imported message
events): listed with their engagement, counted independently here."""

import datetime
import re

from webapp.activation import mailings
from webapp.models import Mailing, MessageEvent

from .conftest import customer


def test_imported_mailings_list_their_engagement(auth_client, make_user):
    spring = Mailing.create(name="Spring sale <b>", channel="email")
    quiet = Mailing.create(name="Quiet one", channel="sms")
    campaign = Mailing.create(name="Our own campaign", channel="email", kind="campaign", status="draft")
    day = datetime.datetime(2026, 3, 1, 9, 0)
    people = [customer(f"c{n}") for n in range(5)]
    events = []
    for n, person in enumerate(people):
        kinds = ["sent", "delivered"] + (["opened"] if n < 3 else []) + (["clicked"] if n == 0 else [])
        kinds += ["unsubscribed"] if n == 4 else []
        for k, kind in enumerate(kinds):
            events.append((person, spring, kind, day + datetime.timedelta(hours=n, minutes=k)))
    for person, mailing, kind, at in events:
        MessageEvent.create(customer=person, channel=mailing.channel, kind=kind, mailing=mailing, occurred_at=at)

    expected = {}
    for _person, mailing, kind, _at in events:
        expected.setdefault(mailing.id, {}).setdefault(kind, 0)
        expected[mailing.id][kind] += 1
    figures = mailings.event_counts([spring.id, quiet.id])
    assert {k: v for k, v in figures[spring.id].items() if k not in ("first_at", "last_at")} == expected[spring.id]
    assert figures[spring.id]["first_at"] == min(at for *_x, at in events)
    assert figures[spring.id]["last_at"] == max(at for *_x, at in events)
    assert quiet.id not in figures and mailings.event_counts([]) == {}

    html = auth_client.get("/mailings/imported").get_data(as_text=True)
    assert "Spring sale &lt;b&gt;" in html and "Quiet one" in html and "Our own campaign" not in html
    row = re.search(rf'<tr data-mailing="{spring.id}">(.*?)</tr>', html, re.S).group(1)
    cell = lambda kind: re.search(rf'<td class="num {kind}">(.*?)</td>', row, re.S).group(1)  # noqa: E731
    assert cell("sent") == "5" and cell("opened").startswith("3 ") and "(60.0%)" in cell("opened")
    assert "(20.0%)" in cell("clicked") and "(20.0%)" in cell("unsubscribed")
    assert 'href="/mailings/imported"' in auth_client.get("/mailings/").get_data(as_text=True)
    assert Mailing.get_by_id(campaign.id).kind == "campaign"


def test_no_imported_mailings_says_how_to_get_them(auth_client):
    html = auth_client.get("/mailings/imported").get_data(as_text=True)
    assert "No imported mailings" in html and 'href="/imports/new"' in html
