"""RFM pages: the grid's figures against pandas, a cell's customers, the
settings form's errors, the empty state, managers read-only, CSRF."""

import re

from conftest import csrf_from
from redis import Redis
from rq.job import Job

from webapp.formats import money
from webapp.models import RfmSettings
from webapp.rfm import jobs
from webapp.rfm import service as rfm

from .conftest import AS_OF, expected_quintiles, expected_values

CELL = re.compile(r'<td class="rfm-cell[^"]*" style="--heat: [0-9.]+" data-r="(\d)" data-f="(\d)">(.*?)</td>', re.S)


def compute():
    RfmSettings.update(as_of=AS_OF).where(RfmSettings.id == rfm.get_settings().id).execute()
    return rfm.compute_now(trigger="user", tz="UTC")


def test_empty_state_before_the_first_computation(auth_client):
    html = auth_client.get("/rfm/").get_data(as_text=True)
    assert "RFM has not been computed yet" in html and 'class="rfm-grid"' not in html
    assert "Recompute now" in html


def test_grid_figures_match_pandas(auth_client, orders):
    run = compute()
    want = expected_quintiles(expected_values(orders))
    cells = want.groupby(["r", "f"]).agg(n=("m", "size"), s=("monetary_cents", "sum"))
    html = auth_client.get("/rfm/").get_data(as_text=True)
    found = {(int(r), int(f)): body for r, f, body in CELL.findall(html)}
    assert len(found) == 25
    for (r, f), body in found.items():
        if (r, f) in cells.index:
            n, s = int(cells.loc[(r, f), "n"]), int(cells.loc[(r, f), "s"])
            assert f'href="/rfm/cells/{r}/{f}"' in body
            assert re.search(rf'class="rfm-count"[^>]*>{n:,}</a>', body), (r, f, body)
            assert f"{100 * n / len(want):.1f}%" in body
            assert f"⌀ {money(s // n)}" in body
        else:
            assert '<span class="rfm-count muted">0</span>' in body
    unscored = run.unscored
    assert unscored and f"{unscored:,} customers have no counting orders" in html
    assert f"as of {AS_OF.isoformat()}" in html


def test_cell_lists_its_customers_with_values(auth_client, orders, app):
    compute()
    want = expected_quintiles(expected_values(orders))
    r, f = want.groupby(["r", "f"]).size().idxmax()
    in_cell = (
        want[(want.r == r) & (want.f == f)]
        .reset_index()
        .sort_values(["monetary_cents", "customer_id"], ascending=False)
        .set_index("customer_id")
    )  # biggest spenders first
    app.config["PER_PAGE"] = 5
    html = auth_client.get(f"/rfm/cells/{r}/{f}").get_data(as_text=True)
    rows = re.findall(
        r'<a href="/customers/(\d+)">.*?</th>\s*<td>[^<]*</td>\s*<td class="num">(\d)</td>'
        r'<td class="num">(\d)</td><td class="num">(\d)</td>\s*<td class="num">([\d,]+)</td>'
        r'<td class="num">([\d,]+)</td><td class="num">(\$[\d,.]+)</td>',
        html,
        re.S,
    )
    expected = [
        (
            str(c),
            str(int(v.r)),
            str(int(v.f)),
            str(int(v.m)),
            f"{int(v.recency_days):,}",
            f"{int(v.frequency):,}",
            money(int(v.monetary_cents)),
        )
        for c, v in in_cell.head(5).iterrows()
    ]
    assert rows == expected
    assert f'href="/segments/rfm_{rfm.class_of(int(r), int(f))}"' in html  # the cell's class segment
    assert len(in_cell) > 5 and 'rel="next"' in html  # paginated
    page2 = auth_client.get(f"/rfm/cells/{r}/{f}?page=2").get_data(as_text=True)
    assert f'/customers/{int(in_cell.index[5])}"' in page2
    assert auth_client.get("/rfm/cells/6/1").status_code == 404


def test_settings_form_errors_are_located(auth_client):
    token = csrf_from(auth_client.get("/rfm/").get_data(as_text=True))
    response = auth_client.post(
        "/rfm/settings",
        data={
            "csrf_token": token,
            "method": "thresholds",
            "monetary": "total",
            "r_cuts": ["30", "90", "60", "365"],
            "f_cuts": ["2", "3", "5", "8"],
            "m_cuts": ["10", "20", "abc", "40"],
            "as_of": "",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(
        r'id="r_cuts-error">Recency \(days\): each cut point must be greater than the one before '
        r"\(got 30, 90, 60, 365\)",
        html,
    )
    assert "Monetary: cut point 3, “abc”, is not a whole number" in html
    assert 'name="m_cuts" value="abc"' in html  # what was typed is kept
    assert rfm.get_settings().method == "quintiles"  # nothing saved
    response = auth_client.post(
        "/rfm/settings",
        data={
            "csrf_token": token,
            "method": "thresholds",
            "monetary": "average",
            "r_cuts": ["30", "60", "90", "365"],
            "f_cuts": ["2", "3", "5", "8"],
            "m_cuts": ["10", "20", "30", "40.50"],
            "excluded_statuses": ["cancelled"],
            "as_of": "2026-01-15",
        },
    )
    assert response.status_code == 302
    row = rfm.get_settings()
    assert (row.method, row.monetary, row.m_cuts, row.excluded_statuses, row.as_of.isoformat()) == (
        "thresholds",
        "average",
        [1000, 2000, 3000, 4050],
        ["cancelled"],
        "2026-01-15",
    )


def test_forms_need_csrf(auth_client):
    assert auth_client.post("/rfm/settings", data={"method": "thresholds"}).status_code == 400
    assert rfm.get_settings().method == "quintiles"
    assert auth_client.post("/rfm/compute").status_code in (302, 400)
    assert rfm.last_run() is None


def test_manager_reads_only(client, login, make_user, orders):
    compute()
    make_user()  # an admin exists, so the app is set up
    login("manager@example.com", role="manager")
    html = client.get("/rfm/").get_data(as_text=True)
    assert 'class="rfm-grid"' in html and "Recompute now" not in html and "Save settings" not in html
    assert "<fieldset disabled>" in html
    token = csrf_from(html)
    assert client.post("/rfm/compute", data={"csrf_token": token}).status_code == 403
    assert client.post("/rfm/settings", data={"csrf_token": token, "method": "thresholds"}).status_code == 403
    assert client.get("/rfm/cells/5/5").status_code == 200


def test_recompute_queues_a_run_and_the_fragment_polls(auth_client, orders, queue_server):
    html = auth_client.get("/rfm/").get_data(as_text=True)
    response = auth_client.post(
        "/rfm/compute", data={"csrf_token": csrf_from(html)}, headers={"HX-Request": "true", "HX-Target": "rfm-results"}
    )
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and fragment.lstrip().startswith('<section id="rfm-results"')
    assert 'hx-trigger="every 1s"' in fragment and "Waiting for the worker" in fragment
    assert rfm.last_run().status == "queued"
    polled = auth_client.get("/rfm/", headers={"HX-Request": "true", "HX-Target": "rfm-results"})
    assert polled.get_data(as_text=True).lstrip().startswith('<section id="rfm-results"')
    # the job is really queued (then removed: the queue server is shared by the session)
    job = Job.fetch(jobs.job_id(rfm.last_run().id), connection=Redis.from_url(queue_server))
    assert job.get_status() == "queued" and job.args == (rfm.last_run().id,)
    job.delete()


def test_classes_offered_in_the_builder_and_for_triggers(auth_client, orders):
    compute()
    options = auth_client.get("/segments/options/segment?q=rfm").get_data(as_text=True)
    for key in ("champions", "loyal", "potential", "new", "at_risk", "cant_lose", "hibernating", "lost"):
        assert f"rfm_{key}" in options
    page = auth_client.get("/segments/rfm_champions").get_data(as_text=True)
    assert "An RFM class" in page and "RFM computation" in page  # the class's runs say where they come from
    listing = auth_client.get("/segments/?q=rfm_").get_data(as_text=True)
    assert "RFM: hibernating" in listing
    edit = auth_client.get("/segments/rfm_champions/edit").get_data(as_text=True)
    assert 'id="builder-wrap"' not in edit and "An RFM class" in edit  # no definition to edit
    trigger_form = auth_client.get("/triggers/new").get_data(as_text=True)
    assert "RFM: champions" in trigger_form


def test_the_page_does_not_count_the_customer_base(auth_client, queries):
    """A count of every customer (a scan of 1,000,000 rows) was made for every view
    of the page and shown nowhere (issue 21)."""
    queries.clear()
    assert auth_client.get("/rfm/").status_code == 200
    assert queries and not [q for q in queries if 'FROM "customer"' in q]
