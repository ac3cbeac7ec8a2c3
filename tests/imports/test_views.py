"""The imports pages: upload, preview and mapping, the job in a real RQ worker
(in-process, burst) on a real Valkey, the progress partial, cancel, the
report and its download, static segments from a list, roles and CSRF."""

import csv
import io
import re

import pytest
from conftest import csrf_from, work_off
from redis import Redis
from rq import Queue

from webapp.fields import service as cf
from webapp.models import ChangedCustomer, Customer, ImportRun, Segment, SegmentMember

from .conftest import FIXTURES

pytestmark = pytest.mark.sqlite_only  # UI flows; the engine itself is tested on both databases


@pytest.fixture
def web(app, auth_client, imports_dir, queue_server):
    app.config["IMPORTS_DIR"] = str(imports_dir)
    Queue("default", connection=Redis.from_url(queue_server)).empty()  # jobs left by earlier tests
    return auth_client


def work(queue_server):
    """Run the queued jobs in this process, as the worker would."""
    work_off(queue_server)


def get(client, url, status=200, **kwargs):
    response = client.get(url, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    return response.get_data(as_text=True)


def upload(client, name, kind="customers", data=None):
    token = csrf_from(get(client, "/imports/new"))
    data = data if data is not None else (FIXTURES / name).read_bytes()
    return client.post(
        "/imports/new",
        data={"kind": kind, "file": (io.BytesIO(data), name), "csrf_token": token},
        content_type="multipart/form-data",
    )


def test_upload_preview_map_run_report_download(web, queue_server):
    response = upload(web, "customers_cp1251.csv")
    assert response.status_code == 302
    run = ImportRun.get()
    assert (run.status, run.file_name, run.kind) == ("draft", "customers_cp1251.csv", "customers")
    preview_url = response.headers["Location"]
    html = get(web, preview_url)
    assert "Detected: Windows-1251, semicolon" in html
    assert "Санкт-Петербург" in html and "Иванов" in html  # first rows, decoded
    assert re.search(r'<select name="col-0" id="col-0">.*?<option value="external_id" selected>', html, re.S)
    assert '<option value="custom.score" selected>custom.score (new field)</option>' in html
    assert re.search(r'<select name="type-score".*?<option value="decimal" selected>', html, re.S)
    assert "/imports" in get(web, "/")  # nav link

    # Map last_name to ignore, keep the rest; create custom.score as text instead of decimal.
    form = {
        "csrf_token": csrf_from(html),
        "encoding": "cp1251",
        "delimiter": ";",
        "col-0": "external_id",
        "col-1": "first_name",
        "col-2": "",
        "col-3": "city",
        "col-4": "email_consent",
        "col-5": "birth_date",
        "col-6": "custom.score",
        "type-score": "string",
    }
    response = web.post(f"/imports/{run.id}/run", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/imports/{run.id}")
    page = get(web, f"/imports/{run.id}")
    assert 'hx-trigger="every 1s"' in page and "Waiting for the worker" in page
    assert ImportRun.get_by_id(run.id).status == "queued"

    work(queue_server)
    run = ImportRun.get_by_id(run.id)
    assert (run.status, run.rows_imported, run.rows_rejected) == ("done", 2, 0)
    ivan = Customer.get(Customer.external_id == "r1")
    assert (ivan.first_name, ivan.last_name, ivan.city) == ("Иван", None, "Москва")
    assert cf.get_field("customer", "score").type == "string"
    fragment = get(web, f"/imports/{run.id}", headers={"HX-Request": "true"})
    assert fragment.lstrip().startswith('<section id="import-progress"')  # the partial alone
    assert "hx-trigger" not in fragment  # finished: stops polling
    assert 'data-status="done"' in fragment and "custom.score" in fragment
    listing = get(web, "/imports/")
    assert "customers_cp1251.csv" in listing and "Done" in listing and "admin@example.com" in listing


def test_rejected_rows_are_listed_and_downloadable(web, queue_server):
    upload(
        web,
        "orders.csv",
        kind="customers",
        data=b"external_id,birth_date,first_name\ng1,1990-01-01,=cmd()\ng2,1990-02-30,=cmd()\n",
    )
    run = ImportRun.get()
    html = get(web, f"/imports/{run.id}/preview")
    web.post(
        f"/imports/{run.id}/run",
        data={
            "csrf_token": csrf_from(html),
            "encoding": "utf-8",
            "delimiter": ",",
            "col-0": "external_id",
            "col-1": "birth_date",
            "col-2": "first_name",
        },
    )
    work(queue_server)
    page = get(web, f"/imports/{run.id}")
    assert "Rejected rows" in page and "birth_date" in page and "“1990-02-30” is not a date" in page
    assert f'href="/imports/{run.id}/rejected.csv"' in page
    response = web.get(f"/imports/{run.id}/rejected.csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename=orders-rejected.csv")
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"), newline="")))
    assert rows == [
        ["external_id", "birth_date", "first_name", "error"],
        [
            "g2",
            "1990-02-30",
            "'=cmd()",
            "line 3, column birth_date: “1990-02-30” is not a date (use YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY)",
        ],
    ]
    assert Customer.get(Customer.external_id == "g1").first_name == "=cmd()"  # stored as given


def test_a_broken_file_shows_why_in_the_preview_and_changes_nothing(web):
    Customer.create(external_id="keep", first_name="Kept")
    upload(web, "wrong_encoding_latin1.csv", data=(FIXTURES / "broken" / "wrong_encoding_latin1.csv").read_bytes())
    run = ImportRun.get()
    html = get(web, f"/imports/{run.id}/preview")
    assert "This file cannot be imported" in html and "Line 2, character 7" in html
    assert "Start import" not in html
    response = web.post(f"/imports/{run.id}/run", data={"csrf_token": csrf_from(html)})
    assert response.status_code == 422
    assert [c.external_id for c in Customer.select()] == ["keep"]


def test_mapping_problems_are_shown_and_nothing_starts(web):
    upload(web, "c.csv", data=b"id,name\n1,Ivan\n")
    run = ImportRun.get()
    html = get(web, f"/imports/{run.id}/preview")
    assert "The file has no “external_id” column" in html
    response = web.post(
        f"/imports/{run.id}/run", data={"csrf_token": csrf_from(html), "col-0": "external_id", "col-1": "external_id"}
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Columns “id” and “name” are both mapped to external_id" in body
    assert ImportRun.get_by_id(run.id).status == "draft"
    response = web.post(
        f"/imports/{run.id}/run", data={"csrf_token": csrf_from(html), "col-0": "external_id", "col-1": "first_name"}
    )
    assert response.status_code == 302 and ImportRun.get_by_id(run.id).status == "queued"


def test_cancel_a_queued_import_with_delete(web, queue_server):
    upload(web, "customers.csv")
    run = ImportRun.get()
    html = get(web, f"/imports/{run.id}/preview")
    web.post(f"/imports/{run.id}/run", data={"csrf_token": csrf_from(html), "col-0": "external_id"})
    page = get(web, f"/imports/{run.id}")
    assert f'hx-delete="/imports/{run.id}"' in page
    token = csrf_from(page)
    assert web.delete(f"/imports/{run.id}", headers={"HX-Request": "true"}).status_code == 400  # no CSRF token
    response = web.delete(f"/imports/{run.id}", headers={"HX-Request": "true", "X-CSRFToken": token})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-status="cancelled"' in fragment and "hx-trigger" not in fragment
    work(queue_server)  # the cancelled job is not run
    assert Customer.select().count() == 0
    assert ImportRun.get_by_id(run.id).status == "cancelled"
    # Run again (htmx POST) returns the partial, queued and polling.
    response = web.post(f"/imports/{run.id}/run", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert 'data-status="queued"' in response.get_data(as_text=True)
    work(queue_server)
    assert ImportRun.get_by_id(run.id).status == "done" and Customer.select().count() == 4


def test_static_segment_from_a_list(web, queue_server):
    for ext, email in (("a1", "ann@example.com"), ("b2", "bob@example.com"), ("c3", None)):
        Customer.create(external_id=ext, email=email)
    html = get(web, "/imports/segment")
    response = web.post(
        "/imports/segment",
        data={
            "csrf_token": csrf_from(html),
            "name": "Выставка 2024",
            "file": (io.BytesIO(b"email\nANN@example.com\nc3\nghost@example.com\n"), "list.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    work(queue_server)
    run = ImportRun.get()
    page = get(web, f"/imports/{run.id}")
    assert "Entries that matched no customer" in page and "ghost" not in page.split("Entries that")[0]
    segment = Segment.get_by_id(run.segment_id)
    assert (segment.name, segment.source, segment.type, segment.size) == ("Выставка 2024", "list", "static", 2)
    assert "has 2 members" in page
    assert {m.customer.external_id for m in SegmentMember.select()} == {"a1", "c3"}
    assert ChangedCustomer.select().count() == 2
    download = web.get(f"/imports/{run.id}/rejected.csv").get_data().decode("utf-8-sig")
    assert "ghost@example.com" in download and "no customer has this email or external id" in download


def test_segment_list_upload_that_is_not_text(web):
    html = get(web, "/imports/segment")
    response = web.post(
        "/imports/segment",
        data={"csrf_token": csrf_from(html), "name": "X", "file": (io.BytesIO(b"PK\x03\x04zip"), "list.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "This is an Excel workbook" in response.get_data(as_text=True)
    assert ImportRun.select().count() == 0 and Segment.select().count() == 0


def test_empty_list_page(web):
    html = get(web, "/imports/")
    assert "No imports yet" in html


def test_only_admins_and_marketers_import(app, client, login, make_user, imports_dir):
    make_user()  # an admin exists, so login is open
    login(email="m@example.com", role="manager")
    assert client.get("/imports/").status_code == 403
    assert client.get("/imports/new").status_code == 403
    assert client.get("/imports/segment").status_code == 403
    assert "/imports/" not in client.get("/").get_data(as_text=True)


def test_marketer_can_import(app, client, login, make_user, imports_dir):
    app.config["IMPORTS_DIR"] = str(imports_dir)
    make_user()
    login(email="mk@example.com", role="marketer")
    assert client.get("/imports/new").status_code == 200


def test_upload_without_file_or_token(web):
    token = csrf_from(get(web, "/imports/new"))
    response = web.post(
        "/imports/new", data={"kind": "customers", "csrf_token": token}, content_type="multipart/form-data"
    )
    assert response.status_code == 422 and "Choose a CSV file." in response.get_data(as_text=True)
    response = web.post(
        "/imports/new",
        data={"kind": "customers", "file": (io.BytesIO(b"external_id\n1\n"), "a.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert ImportRun.select().count() == 0


def test_unknown_run_is_404(web):
    assert web.get("/imports/999").status_code == 404
    assert web.get("/imports/999/rejected.csv").status_code == 404


def test_starting_twice_queues_one_job(web, queue_server):
    upload(web, "customers.csv")
    run = ImportRun.get()
    form = {"csrf_token": csrf_from(get(web, f"/imports/{run.id}/preview")), "col-0": "external_id"}
    first, second = web.post(f"/imports/{run.id}/run", data=form), web.post(f"/imports/{run.id}/run", data=form)
    assert first.status_code == second.status_code == 302
    assert Queue("default", connection=Redis.from_url(queue_server)).job_ids == [f"import-{run.id}"]
