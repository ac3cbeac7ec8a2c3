"""The analytics pages: login wall, page and htmx fragment, charts and table, empty states, errors, CSV."""

import csv
import datetime
import io
import re

import pytest

from webapp.models import Segment, utcnow

from .test_analytics import expected_history


@pytest.fixture
def signed_in(client, login, make_user):
    make_user(email="root@example.com", role="admin")  # the app is set up
    login(email="marketer@example.com", role="marketer")
    return client


def _fragment(client, query):
    return client.get(f"/analytics/?{query}", headers={"HX-Request": "true"})


def test_login_wall(client, make_user):
    make_user()  # the app is set up: anonymous visitors go to the login page
    response = client.get("/analytics/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/analytics/export.csv").status_code == 302


def test_page_loads_figures_lazily_with_the_filters(signed_in, dataset):
    html = signed_in.get("/analytics/?period=12w&segment=solo").get_data(as_text=True)
    assert 'id="analytics-filters"' in html and 'hx-push-url="true"' in html
    assert 'hx-get="/analytics/?period=12w&amp;segment=solo" hx-trigger="load"' in html
    assert 'value="solo"\n      checked' in html and 'value="alpha"\n      >' in html
    assert '<option value="12w" selected>' in html and "Computing the figures" in html
    assert "Hidden" not in html  # not in analytics
    assert 'aria-current="page">Analytics</a>' in html


def test_fragment_has_charts_table_and_history_notes(signed_in, dataset):
    html = _fragment(signed_in, "period=custom&from=2024-10-01&to=2024-10-31&grain=week&mode=history").get_data(
        as_text=True
    )
    assert "<html" not in html
    assert html.count('class="metric-') == 5 and html.count("chart line-chart") == 5
    assert html.count("chart bar-chart") == 1 and html.count('class="bar"') == 5  # a bar per segment
    assert "history from 2024-10-15 00:00" not in html  # the account zone is UTC here
    assert "history from 2024-10-14 22:00" in html and "no history yet: not computed" in html
    assert "=Beta" in html and "Before the segment’s history" in html
    assert 'href="/analytics/export.csv?period=custom&amp;from=2024-10-01&amp;to=2024-10-31&amp;grain=week' in html
    assert "members at the time" in html and "“members at the time” has no figures for most of it" in html


def test_without_history_in_the_range_todays_members_are_shown_by_default(signed_in, dataset):
    """The segments' logs start on 14 October: for October the default is
    today's members (said so); for November, history covers the range and
    members at the time are the default; a mode the user chose is kept."""
    october = "period=custom&from=2024-10-01&to=2024-10-31&grain=week"
    html = _fragment(signed_in, october).get_data(as_text=True)
    assert re.search(r"·\s*today(&#39;|')s members\s*·", html) and "has no figures for most of it" in html
    assert "history from" not in html  # the notes of history mode
    page = signed_in.get("/analytics/?" + october).get_data(as_text=True)
    assert re.search(r"<option value=\"today\"\s+selected>", page)  # the form shows what the figures use
    csv_text = signed_in.get("/analytics/export.csv?" + october + "&segment=alpha").get_data(as_text=True)
    explicit = signed_in.get("/analytics/export.csv?" + october + "&segment=alpha&mode=today").get_data(as_text=True)
    assert csv_text == explicit  # the export follows the same default
    november = _fragment(signed_in, "period=custom&from=2024-11-01&to=2024-11-30&grain=week").get_data(as_text=True)
    assert "members at the time" in november and "has no figures for most of it" not in november
    chosen = _fragment(signed_in, october + "&mode=history").get_data(as_text=True)
    assert "members at the time" in chosen


def test_fragment_figures_match_sql(app, signed_in, dataset):
    app.config["TZ"] = "Europe/Berlin"
    html = _fragment(signed_in, "period=custom&from=2024-10-14&to=2024-10-20&grain=week&segment=alpha").get_data(
        as_text=True
    )
    alpha = dataset["alpha"].id
    start = datetime.datetime(2024, 10, 13, 22)
    end = datetime.datetime(2024, 10, 20, 22)
    size, revenue, orders, buyers = expected_history(alpha, start, end, min(end, utcnow()))
    row = html[html.index('<tr data-segment="alpha">') :]
    row = row[: row.index("</tr>")]
    cells = [c.split("</td>")[0] for c in row.split('<td class="num">')[1:]]
    aov = (2 * revenue + orders) // (2 * orders)
    assert cells == [
        f"{size:,}",
        f"${revenue // 100:,}.{revenue % 100:02d}",
        f"{orders:,}",
        f"${aov // 100:,}.{aov % 100:02d}",
        f"{buyers / size * 100:.1f}%",
    ]


def test_empty_state_without_segments_in_analytics(signed_in, db):
    html = _fragment(signed_in, "").get_data(as_text=True)
    assert "No segment is available in analytics yet" in html and 'href="/segments/"' in html
    assert "Available in analytics" in html


def test_filter_errors_are_shown(signed_in, dataset):
    html = _fragment(signed_in, "period=custom&from=2024-10-09&to=2024-10-01").get_data(as_text=True)
    assert 'role="alert"' in html and "Last day: The last day is before the first day." in html
    response = signed_in.get("/analytics/export.csv?period=custom&from=2024-10-09")
    assert response.status_code == 400 and "Choose the first and the last day" in response.get_data(as_text=True)
    # In the reader's language, field and message alike (the messages were kept untranslated).
    ru = signed_in.get(
        "/analytics/?period=custom&from=2024-10-09&to=2024-10-01",
        headers={"HX-Request": "true", "Accept-Language": "ru"},
    ).get_data(as_text=True)
    assert "Последний день раньше первого." in ru and "The last day" not in ru
    vi = signed_in.get(
        "/analytics/export.csv?period=custom&from=2024-13-01", headers={"Accept-Language": "vi"}
    ).get_data(as_text=True)
    assert "Không phải là ngày: hãy viết theo dạng YYYY-MM-DD." in vi


def test_csv_export(app, signed_in, dataset):
    app.config["TZ"] = "Europe/Berlin"
    response = signed_in.get(
        "/analytics/export.csv?period=custom&from=2024-10-14&to=2024-10-20&grain=week"
        "&segment=beta&segment=solo&segment=delta"
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="segment-analytics-2024-10-14-2024-10-20.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == [
        "segment_code",
        "segment_name",
        "period_start",
        "size",
        "revenue",
        "orders",
        "aov",
        "buyers_share",
    ]
    beta = dataset["beta"].id
    size, revenue, orders, buyers = expected_history(
        beta,
        datetime.datetime(2024, 10, 13, 22),
        datetime.datetime(2024, 10, 20, 22),
        datetime.datetime(2024, 10, 20, 22),
    )
    aov = (2 * revenue + orders) // (2 * orders) if orders else None
    assert rows[1] == [
        "beta",
        "'=Beta",
        "2024-10-14",
        str(size),
        f"{revenue // 100}.{revenue % 100:02d}",
        str(orders),
        "" if aov is None else f"{aov // 100}.{aov % 100:02d}",
        f"{buyers / size:.4f}" if size else "",
    ]
    assert rows[2] == ["solo", "Solo", "2024-10-14", "0", "20.00", "1", "20.00", ""]
    assert rows[3] == ["delta", "Delta never computed", "2024-10-14", "", "", "", "", ""]
    assert len(rows) == 4


def test_csv_of_todays_members_by_month(signed_in, dataset):
    rows = list(
        csv.reader(
            io.StringIO(
                signed_in.get(
                    "/analytics/export.csv?period=custom&from=2024-10-01&to=2024-10-31&grain=month&segment=solo&mode=today"
                ).get_data(as_text=True)
            )
        )
    )
    assert rows[1] == ["solo", "Solo", "2024-10-01", "1", "310.00", "5", "62.00", "1.0000"]


def test_segment_marked_in_analytics_appears(signed_in, dataset):
    Segment.update(in_analytics=True).where(Segment.code == "hidden").execute()
    html = signed_in.get("/analytics/").get_data(as_text=True)
    assert 'value="hidden"' in html
