"""Analytics as a marketer reads it (issue 20, point 13): the current period is
marked incomplete, segments of very different sizes each get their own scale,
and a segment just marked "available in analytics" is among those shown by
default. Both databases."""

import datetime
import re

from analytics.test_views import _fragment, signed_in  # noqa: F401 - fixture: a signed-in marketer
from webapp.analytics import service as analytics
from webapp.analytics import views
from webapp.analytics.views import far_apart
from webapp.models import Segment, utcnow


def test_the_current_period_is_marked_incomplete(signed_in, dataset):  # noqa: F811
    now = utcnow()
    spans = analytics.periods(now.date() - datetime.timedelta(days=20), now.date(), "week", datetime.UTC, now)
    assert [s.current for s in spans] == [False] * (len(spans) - 1) + [True]
    html = _fragment(signed_in, "period=12w&grain=week&mode=today&segment=alpha").get_data(as_text=True)
    assert html.count('class="badge current-period"') == 1
    last = spans[-1]
    week = f"{last.start.isoformat()} – {(last.end - datetime.timedelta(days=1)).isoformat()}"
    assert f"The last period ({week}) is still in progress: its figures are incomplete." in html
    # Named as the reader writes dates: the week's first and last days.
    ru = signed_in.get(
        "/analytics/?period=12w&grain=week&mode=today&segment=alpha",
        headers={"HX-Request": "true", "Accept-Language": "ru"},
    ).get_data(as_text=True)
    first_ru, last_ru = (d.strftime("%d.%m.%Y") for d in (last.start, last.end - datetime.timedelta(days=1)))
    assert f"Последний период ({first_ru} – {last_ru}) ещё не закончился" in ru
    assert f'<th scope="row">{first_ru} – {last_ru} <span class="badge current-period"' in ru
    past = _fragment(signed_in, "period=custom&from=2024-10-01&to=2024-10-31&grain=week&segment=alpha")
    assert "current-period" not in past.get_data(as_text=True) and "still in progress" not in past.get_data(
        as_text=True
    )


def test_sizes_orders_of_magnitude_apart_get_their_own_scale():
    small = ("Small", [(1, 3), (2, 5)])
    big = ("Big", [(1, 400), (2, 600)])
    medium = ("Medium", [(1, 40), (2, None)])
    assert far_apart([small, big]) and not far_apart([small, medium]) and not far_apart([big])
    assert not far_apart([small, ("Empty", [(1, None), (2, 0)])])  # a segment with nothing is no scale


def test_own_scale_charts_on_the_dashboard(signed_in, dataset, monkeypatch):  # noqa: F811
    html = _fragment(signed_in, "period=custom&from=2024-10-01&to=2024-11-30&grain=week&mode=today").get_data(
        as_text=True
    )
    # the dataset's segments are of like sizes: one shared chart per metric
    assert "each has its own scale" not in html and html.count("chart line-chart") == 5
    # segments far apart: each metric is drawn once per segment, on its own scale
    monkeypatch.setattr(views, "SCALE_SPREAD", 1.0001)
    html = _fragment(
        signed_in, "period=custom&from=2024-10-01&to=2024-11-30&grain=week&mode=today&segment=alpha&segment=solo"
    ).get_data(as_text=True)
    assert html.count("each has its own scale") >= 1
    assert html.count("own-scale") >= 2 and re.search(r'<h3 class="small">Solo</h3>', html)


def test_a_new_analytics_segment_is_selected_by_default(signed_in, dataset):  # noqa: F811
    for n in range(analytics.MAX_SEGMENTS):
        Segment.create(code=f"aa{n}", name=f"AA {n}", in_analytics=True, definition={"version": 1, "blocks": []})
    newest = Segment.create(code="zz_new", name="ZZ newest", in_analytics=True, definition={"version": 1, "blocks": []})
    page = signed_in.get("/analytics/").get_data(as_text=True)
    checked = set(re.findall(r'value="([\w-]+)"\s+checked', page))
    assert newest.code in checked and len(checked) == analytics.MAX_SEGMENTS
    assert "alpha" not in checked  # the oldest makes room
