"""Issue 20.14 and 20.10 on SQLite and PostgreSQL: before an import starts,
its preview flags the values it would reject per column (counts, first
examples with line numbers) and tells which triggers it would fire and for
how many customers (computed by the engine, nothing saved); an import run
without triggers logs its entries but creates no executions."""

import io
import re

import pytest
from activation.test_triggers import MOSCOW
from conftest import csrf_from, work_off
from redis import Redis
from rq import Queue

from webapp.activation import triggers
from webapp.imports.service import Importer
from webapp.models import ChangedCustomer, Customer, ImportRun, Segment, SegmentChange, TriggerExecution, User
from webapp.segments import realtime

CSV = """external_id,first_name,email,birth_date,city
c1,Olga,olga-bad-email@,1990-03-08,Москва
c2,Ivan,ivan@example.ru,31.02.1990,Москва
c3,Anna,anna@example.ru,1991-01-01,Москва
c4,Petr,petr@example.ru,not a date,Тверь
c5,Oleg,oleg@example.ru,1992-02-02,Москва
c6,Kira,kira@example.ru,1993-03-03,Тверь
"""


@pytest.fixture
def web(app, auth_client, imports_dir):
    app.config["IMPORTS_DIR"] = str(imports_dir)
    return auth_client


@pytest.fixture
def welcome(db):
    moscow = Segment.create(code="moscow", name="Moscow", type="dynamic", definition=MOSCOW)
    user = User.create(email="mk@example.com", email_ci="mk@example.com", password_hash="x", role="marketer")
    step = {"action": "notify", "text": "Hello", "user_id": str(user.id), "delay_value": 0, "delay_unit": "seconds"}
    return triggers.save(
        {"name": "Welcome", "segment_id": moscow.id, "event": "entered", "active": "1", "steps": [step]}
    )


def upload(client, data):
    token = csrf_from(client.get("/imports/new").get_data(as_text=True))
    response = client.post(
        "/imports/new",
        data={"kind": "customers", "file": (io.BytesIO(data.encode()), "people.csv"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    run = ImportRun.select().order_by(ImportRun.id.desc()).get()
    return run, client.get(response.headers["Location"]).get_data(as_text=True)


def test_preview_flags_invalid_values_per_column(web):
    _run, html = upload(web, CSV)
    section = html.split('class="card section value-checks"')[1].split("</section>")[0]
    assert "All 6 rows checked" in section
    rows = dict(
        re.findall(
            r'<tr class="invalid-column">\s*<th scope="row">(\w+)</th>\s*<td class="error">([^<]+)</td>', section
        )
    )
    assert rows == {"email": "1 row", "birth_date": "2 rows"}
    assert "line 2: “olga-bad-email@” is not an email address" in section
    assert "line 3: “31.02.1990” is not a date" in section and "line 5: “not a date” is not a date" in section
    assert not Customer.select().exists()  # nothing imported yet


def writes(statements):
    """The statements of `statements` that write."""
    return [sql for sql in statements if re.match(r"\s*(INSERT|UPDATE|DELETE)\b", sql, re.I)]


def test_preview_forecasts_triggers_and_import_without_them(web, welcome, imports_dir, queue_server, queries):
    Queue("default", connection=Redis.from_url(queue_server)).empty()  # jobs left by earlier tests
    run, html = upload(web, CSV)
    # viewing the preview writes nothing: the forecast (written and rolled back) is the worker's
    queries.clear()
    html = web.get(f"/imports/{run.id}/preview").get_data(as_text=True)
    assert queries and writes(queries) == []
    section = html.split('class="card section trigger-forecast"')[1].split("</section>")[0]
    assert "Counting the customers each trigger fires for" in section and "Welcome" in section
    assert 'name="without_triggers"' in section
    url = re.search(r'hx-get="([^"]+/forecast[^"]*)"', section).group(1).replace("&amp;", "&")
    assert 'data-state="counting"' in web.get(url).get_data(as_text=True)  # asked again: queued once
    assert len(Queue("default", connection=Redis.from_url(queue_server))) == 1
    work_off(queue_server)
    counts = web.get(url).get_data(as_text=True)
    # c1 and c2 are rejected (bad email, bad date); c3 and c5 enter Moscow; c4, c6 are in Tver
    assert "“Welcome” (on entering Moscow): 2 customers" in counts and "hx-get" not in counts  # polling ends
    assert "“Welcome” (on entering Moscow): 2 customers" in web.get(f"/imports/{run.id}/preview").text
    # the forecast wrote nothing
    assert not Customer.select().exists() and not SegmentChange.select().exists()
    assert not ChangedCustomer.select().exists()

    form = {"csrf_token": csrf_from(html), "encoding": "utf-8", "delimiter": ","}
    form.update({f"col-{i}": t for i, t in enumerate(["external_id", "first_name", "email", "birth_date", "city"])})
    response = web.post(f"/imports/{run.id}/run", data={**form, "without_triggers": "1"})
    assert response.status_code == 302
    run = ImportRun.get_by_id(run.id)
    assert run.options["without_triggers"] is True
    Importer(run, imports_dir).execute()
    realtime.recheck_changed()
    entered = {c.customer.external_id for c in SegmentChange.select()}
    assert entered == {"c3", "c5"}  # the entries are logged...
    assert triggers.consume() == 0 and not TriggerExecution.select().exists()  # ...but fire nothing

    # the same customers changed again by an ordinary import do fire
    run2, html = upload(web, "external_id,city\nc4,Москва\n")
    web.post(
        f"/imports/{run2.id}/run", data={**form, "col-0": "external_id", "col-1": "city", "csrf_token": csrf_from(html)}
    )
    Importer(ImportRun.get_by_id(run2.id), imports_dir).execute()
    realtime.recheck_changed()
    assert triggers.consume() == 1
    assert [e.customer.external_id for e in TriggerExecution.select()] == ["c4"]
