"""Export to CSV and XLSX: columns (standard, custom, order rollup, member
since), BOM, formula neutralising, XLSX typed cells; the pages, the small
export downloaded at once and the large one as a job in a real RQ worker."""

import csv
import io
import re
import zipfile

import pytest
from conftest import csrf_from, work_off
from redis import Redis
from rq import Queue

from webapp import csvsafe
from webapp.exports import service as export
from webapp.fields import service as cf
from webapp.models import Customer, CustomerOrderStats, CustomerTag, ExportRun, Segment, SegmentMember, Tag, User


@pytest.fixture
def base(db):
    manager = User.create(email="m@example.com", email_ci="m@example.com", password_hash="x", role="manager")
    age = cf.create_field("customer", "age", "Age", "integer")
    vip = cf.create_field("customer", "vip", "VIP", "boolean")
    evil = Customer.create(
        external_id="c1",
        first_name='=HYPERLINK("http://x")',
        last_name="@SUM(A1)",
        email="a@example.com",
        phone="+7 999 123-45-67",
        city="Москва",
        manager=manager,
        birth_date="1990-03-08",
        email_consent=True,
        created_at="2025-01-01 21:30:00",
    )
    plain = Customer.create(
        external_id="c2", first_name="Anna", last_name="-2+3", company_name="\tTab Co", created_at="2025-01-02 00:00:00"
    )
    Customer.create(external_id="c3", first_name="Not a member", created_at="2025-01-03 00:00:00")
    cf.set_value(age, evil.id, 42)
    cf.set_value(vip, plain.id, False)
    for name in ("wholesale", "VIP"):
        CustomerTag.create(customer=evil, tag=Tag.create(name=name))
    CustomerOrderStats.create(
        customer=evil,
        orders_count=3,
        total_cents=123456,
        quantity=7,
        first_at="2024-05-01 08:00:00",
        last_at="2024-12-31 22:15:00",
    )
    segment = Segment.create(code="seg", name="Seg", definition={"version": 1, "blocks": []})
    SegmentMember.create(segment=segment, customer=evil, since="2025-02-01 10:00:00")
    SegmentMember.create(segment=segment, customer=plain, since="2025-02-02 10:00:00")
    return segment


COLUMNS = [
    "external_id",
    "first_name",
    "last_name",
    "company_name",
    "phone",
    "city",
    "manager",
    "tags",
    "birth_date",
    "email_consent",
    "created_at",
    "custom.age",
    "custom.vip",
    "orders_count",
    "orders_total",
    "items_quantity",
    "last_order_at",
    "member_since",
]


def run_export(source, columns, fmt, tmp_path, bom=False, tz="Europe/Moscow"):
    run = export.create_export(source, columns, fmt, bom=bom)
    run = export.execute(run.id, tmp_path, tz=tz)
    return run, (tmp_path / f"export-{run.id}.{fmt}").read_bytes()


def test_csv_of_segment_members(base, tmp_path):
    run, data = run_export({"segment": "seg"}, COLUMNS, "csv", tmp_path, bom=True)
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == COLUMNS
    assert rows[1] == [
        "c1",
        '\'=HYPERLINK("http://x")',
        "'@SUM(A1)",
        "",
        "+7 999 123-45-67",
        "Москва",
        "m@example.com",
        "VIP|wholesale" if rows[1][7].startswith("V") else "wholesale|VIP",
        "1990-03-08",
        "true",
        "2025-01-02 00:30:00",
        "42",
        "",
        "3",
        "1234.56",
        "7",
        "2025-01-01 01:15:00",
        "2025-02-01 13:00:00",
    ]
    assert sorted(rows[1][7].split("|")) == ["VIP", "wholesale"]
    # formula-like cells are neutralised; numbers and phones are left as they are
    assert rows[2][:5] == ["c2", "Anna", "'-2+3", "'\tTab Co", ""]
    assert rows[2][11:17] == ["", "false", "0", "0.00", "0", ""]
    assert len(rows) == 3  # members only
    assert (run.status, run.rows_total, run.rows_done) == ("done", 2, 2)
    # and what we wrote reads back to the original values
    assert csvsafe.restore(rows[1][1]) == '=HYPERLINK("http://x")'


def test_csv_of_filtered_customer_list_without_bom(base, tmp_path):
    _run, data = run_export({"q": "ann"}, ["external_id", "first_name"], "csv", tmp_path)
    assert data == b"external_id,first_name\r\nc2,Anna\r\n"
    _run, data = run_export({"q": "ann", "segment": "seg"}, ["external_id", "first_name"], "csv", tmp_path)
    assert data == b"external_id,first_name\r\nc2,Anna\r\n"
    _run, data = run_export({"type": "company"}, ["external_id"], "csv", tmp_path)
    assert data == b"external_id\r\n"


def _xlsx_cells(data):
    """{cell ref: (type, text)} of the first sheet, read from the XML."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        xml = book.read("xl/worksheets/sheet1.xml").decode()
        shared = (
            re.findall(r"<si><t[^>]*>(.*?)</t></si>", book.read("xl/sharedStrings.xml").decode(), re.S)
            if "xl/sharedStrings.xml" in book.namelist()
            else []
        )
    cells = {}
    for ref, attrs, body in re.findall(r'<c r="([A-Z]+\d+)"([^>]*)>(.*?)</c>', xml, re.S):
        kind = re.search(r't="(\w+)"', attrs)
        kind = kind.group(1) if kind else "n"
        if kind == "s":
            text = shared[int(re.search(r"<v>(.*?)</v>", body).group(1))]
        elif kind == "inlineStr":
            text = re.search(r"<t[^>]*>(.*?)</t>", body, re.S).group(1)
        else:
            text = re.search(r"<v>(.*?)</v>", body).group(1)
        assert "<f>" not in body  # never a formula
        cells[ref] = (kind, text)
    return cells


def test_xlsx_has_typed_cells_and_no_formulas(base, tmp_path):
    run, data = run_export(
        {"segment": "seg"},
        ["external_id", "first_name", "orders_total", "email_consent", "birth_date", "custom.age"],
        "xlsx",
        tmp_path,
    )
    assert run.file_name.startswith("seg-") and run.file_name.endswith(".xlsx") and not run.bom
    cells = _xlsx_cells(data)
    assert cells["A1"][1] == "external_id" and cells["A2"][1] == "c1"
    # a text cell holding the value as it is: shown, never evaluated, no apostrophe
    assert cells["B2"] == ("inlineStr", '=HYPERLINK("http://x")')
    assert cells["C2"] == ("n", "1234.56") and cells["D2"] == ("b", "1")
    assert cells["E2"][0] == "n" and float(cells["E2"][1]) == 32940  # 1990-03-08 as an Excel date
    assert cells["F2"] == ("n", "42") and "F3" not in cells  # empty stays empty


def test_columns_are_checked(base, tmp_path):
    with pytest.raises(export.ExportError):
        export.create_export({"segment": "seg"}, ["external_id", "password_hash"], "csv")
    with pytest.raises(export.ExportError):
        export.create_export({"segment": "seg"}, [], "csv")
    with pytest.raises(export.ExportError):
        export.create_export({"q": ""}, ["member_since"], "csv")  # only segments have it
    with pytest.raises(export.ExportError):
        export.create_export({"segment": "seg"}, ["external_id"], "pdf")
    with pytest.raises(export.ExportError):
        export.create_export({"segment": "gone"}, ["external_id"], "csv")
    assert ExportRun.select().count() == 0


@pytest.mark.sqlite_only
def test_pages_small_export_downloads_at_once(app, auth_client, base, tmp_path):
    app.config["EXPORTS_DIR"] = str(tmp_path)
    assert auth_client.get("/segments/seg/export").headers["Location"].endswith("/exports/new?segment=seg")
    page = auth_client.get("/exports/new?segment=seg").get_data(as_text=True)
    assert "Export the members of “Seg”" in page and 'value="custom.age"' in page and 'value="member_since"' in page
    response = auth_client.post(
        "/exports/new",
        data={
            "csrf_token": csrf_from(page),
            "segment": "seg",
            "columns": ["external_id", "email"],
            "format": "csv",
            "bom": "1",
        },
    )
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename=seg-")
    assert response.data == "\ufeffexternal_id,email\r\nc1,a@example.com\r\nc2,\r\n".encode()
    assert "seg-" in auth_client.get("/exports/").get_data(as_text=True)
    # the customer list as filtered
    page = auth_client.get("/exports/new?q=anna&type=").get_data(as_text=True)
    assert "1 customer" in page
    response = auth_client.post(
        "/exports/new",
        data={"csrf_token": csrf_from(page), "q": "anna", "type": "", "columns": ["first_name"], "format": "csv"},
    )
    assert response.data == b"first_name\r\nAnna\r\n"
    page = auth_client.get("/exports/new?q=not&segment=seg").get_data(as_text=True)  # list filters + segment
    assert "0 members" in page
    assert 'href="/exports/new"' in auth_client.get("/customers/").get_data(as_text=True)
    response = auth_client.post(
        "/exports/new", data={"csrf_token": csrf_from(page), "q": "", "columns": [], "format": "csv"}
    )
    assert response.status_code == 422 and "Choose at least one column" in response.get_data(as_text=True)
    assert auth_client.get("/exports/new?segment=nope").status_code == 404


@pytest.mark.sqlite_only
def test_large_export_runs_as_a_job_with_progress(app, auth_client, base, tmp_path, queue_server, make_user):
    app.config.update(EXPORTS_DIR=str(tmp_path), EXPORT_SYNC_ROWS=1)
    Queue("default", connection=Redis.from_url(queue_server)).empty()
    page = auth_client.get("/exports/new?segment=seg").get_data(as_text=True)
    assert "runs in the background" in page
    response = auth_client.post(
        "/exports/new",
        data={"csrf_token": csrf_from(page), "segment": "seg", "columns": ["external_id", "tags"], "format": "xlsx"},
    )
    assert response.status_code == 302
    run = ExportRun.get()
    url = response.headers["Location"]
    assert url.endswith(f"/exports/{run.id}") and run.status == "queued"
    page = auth_client.get(url).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in page and "Waiting for the worker" in page
    assert auth_client.get(f"/exports/{run.id}/download").status_code == 404  # not ready yet

    work_off(queue_server)
    fragment = auth_client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="export-progress"') and "hx-trigger" not in fragment
    assert "2 rows exported." in fragment and f"/exports/{run.id}/download" in fragment
    response = auth_client.get(f"/exports/{run.id}/download")
    assert response.status_code == 200 and response.data.startswith(b"PK")
    assert not list(tmp_path.glob("*.part"))

    # another (non-admin) user cannot see it
    other = app.test_client()
    make_user(email="mk@example.com", role="marketer")
    login = other.get("/login").get_data(as_text=True)
    other.post(
        "/login", data={"email": "mk@example.com", "password": "correct horse battery", "csrf_token": csrf_from(login)}
    )
    assert other.get(f"/exports/{run.id}/download").status_code == 404


def test_old_export_files_are_deleted_and_can_be_made_again(app, auth_client, base, tmp_path, monkeypatch):
    """Files are kept EXPORT_KEEP_DAYS days; then the periodic job deletes them
    and the export page offers to run the export again."""
    import datetime

    from webapp import settings
    from webapp.cron import periodic
    from webapp.exports import jobs
    from webapp.models import utcnow

    app.config.update(EXPORTS_DIR=str(tmp_path))
    old, _data = run_export({"segment": "seg"}, ["external_id"], "csv", tmp_path)
    recent, _data = run_export({"segment": "seg"}, ["external_id"], "csv", tmp_path)
    ExportRun.update(finished_at=utcnow() - datetime.timedelta(days=8)).where(ExportRun.id == old.id).execute()
    monkeypatch.setattr(settings, "EXPORT_KEEP_DAYS", 7)
    assert any(func is jobs.expire_job for func, _every, _queue in periodic())
    assert jobs.expire_job() == 1
    assert not (tmp_path / f"export-{old.id}.csv").exists() and (tmp_path / f"export-{recent.id}.csv").exists()
    old, recent = ExportRun.get_by_id(old.id), ExportRun.get_by_id(recent.id)
    assert (old.status, old.file_path, recent.status) == ("expired", None, "done")
    assert jobs.expire_job() == 0  # nothing left to expire

    listing = auth_client.get("/exports/").get_data(as_text=True)
    assert "File deleted: export again" in listing and f"/exports/{recent.id}/download" in listing
    assert auth_client.get(f"/exports/{old.id}/download").status_code == 404
    page = auth_client.get(f"/exports/{old.id}").get_data(as_text=True)
    assert "This file was deleted 7 days after the export" in page and "Run again" in page
    response = auth_client.post(f"/exports/{old.id}", data={"csrf_token": csrf_from(page)})
    assert response.status_code in (200, 302)
    assert ExportRun.get_by_id(old.id).status == "queued"


def test_predicted_columns(base, tmp_path):
    from webapp.models import CustomerPrediction

    evil = Customer.get(Customer.external_id == "c1")
    CustomerPrediction.create(
        customer=evil,
        p_alive=0.8234567,
        orders_30d=0.1,
        orders_90d=0.35,
        orders_365d=1.25,
        aov=1234.56789,
        clv=98765.4321,
    )
    columns = [
        "external_id",
        "predicted.p_alive",
        "predicted.orders_30d",
        "predicted.orders_90d",
        "predicted.orders_365d",
        "predicted.aov",
        "predicted.clv",
    ]
    assert "predicted.clv" in {n for _g, cols in export.available_columns() for n, _l in cols}
    _run, data = run_export({"segment": "seg"}, columns, "csv", tmp_path)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows == [
        columns,
        ["c1", "0.8235", "0.1", "0.35", "1.25", "1234.5679", "98765.4321"],
        ["c2", "", "", "", "", "", ""],
    ]  # no orders, no scores: empty cells
    _run, data = run_export({"segment": "seg"}, columns, "xlsx", tmp_path)
    cells = _xlsx_cells(data)
    assert cells["B2"] == ("n", "0.8234567") and "B3" not in cells


def test_headers_are_field_codes_or_the_column_names_in_a_language(base, tmp_path):
    columns = ["external_id", "first_name", "orders_total", "member_since"]
    run = export.create_export({"segment": "seg"}, columns, "csv", headers="ru")
    export.execute(run.id, tmp_path)
    header = (tmp_path / f"export-{run.id}.csv").read_bytes().decode("utf-8").splitlines()[0]
    assert header == "Внешний ID,Имя,Сумма заказов,В сегменте с"
    run = export.create_export({"segment": "seg"}, columns, "csv", headers="vi")
    export.execute(run.id, tmp_path)
    assert (tmp_path / f"export-{run.id}.csv").read_bytes().decode("utf-8").startswith("ID ngoài,")
    # No language (or one Segmento does not speak): the stable codes the import reads.
    run = export.create_export({"segment": "seg"}, columns, "csv", headers="xx")
    export.execute(run.id, tmp_path)
    assert (tmp_path / f"export-{run.id}.csv").read_bytes().decode("utf-8").splitlines()[0] == ",".join(columns)
