"""webapp.settings: one source of the time zone and the queue server for the web app and the worker."""

import datetime

from conftest import csrf_from
from rq import Queue

from webapp import create_app, settings
from webapp.db import init_database
from webapp.models import Customer, Segment, SegmentMember, utcnow
from webapp.queue import connection
from webapp.segments import runs

BIRTHDAY_TODAY = {
    "match": "all",
    "blocks-0-entity": "customer",
    "blocks-0-match": "all",
    "blocks-0-filters-0-field": "birth_date",
    "blocks-0-filters-0-op": "relative",
    "blocks-0-filters-0-from_n": "0",
    "blocks-0-filters-0-from_dir": "ahead",
    "blocks-0-filters-0-to_n": "0",
    "blocks-0-filters-0-to_dir": "ahead",
    "blocks-0-filters-0-ignore_year": "1",
}


def test_preview_and_run_count_in_the_same_time_zone(app, auth_client, monkeypatch):
    """The app's zone is UTC+14 and the environment's UTC-12: 26 hours apart, always another day. A
    birthday today in the app's zone is counted by the preview and by the run alike."""
    monkeypatch.setattr(settings, "TZ", "Etc/GMT+12")
    app.config["TZ"] = "Etc/GMT-14"
    today = (utcnow() + datetime.timedelta(hours=14)).date()
    Customer.create(external_id="today", birth_date=datetime.date(2000, today.month, today.day))
    Customer.create(
        external_id="tomorrow",
        birth_date=datetime.date(2000, 1, 1) if (today.month, today.day) != (1, 1) else datetime.date(2000, 6, 1),
    )
    token = csrf_from(auth_client.get("/segments/new").get_data(as_text=True))
    page = auth_client.post(
        "/segments/preview", data=BIRTHDAY_TODAY, headers={"HX-Request": "true", "X-CSRFToken": token}
    ).get_data(as_text=True)
    assert 'data-count="1"' in page
    segment = Segment.create(
        code="birthday",
        name="Birthday",
        type="dynamic",
        definition={
            "version": 1,
            "match": "all",
            "blocks": [
                {
                    "entity": "customer",
                    "match": "all",
                    "filters": [
                        {"field": "birth_date", "op": "relative", "from_days": 0, "to_days": 0, "ignore_year": True}
                    ],
                }
            ],
        },
    )
    with app.app_context():
        run = runs.request_run(segment)
        assert runs.execute_run(run.id)
    assert [m.customer.external_id for m in SegmentMember.select().where(SegmentMember.segment == segment)] == ["today"]


def test_an_app_queues_to_its_own_queue_server(db, db_url, queue_server):
    """An app created with its own REDIS_URL queues there, not to the environment's server."""
    own = queue_server.rsplit("/", 1)[0] + "/1"  # another database of the same server
    connection(own).flushdb()
    connection(queue_server).flushdb()
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "REDIS_URL": own, "SECRET_KEY": "test"})
    try:
        segment = Segment.create(
            code="all", name="All", type="dynamic", definition={"version": 1, "match": "all", "blocks": []}
        )
        with app.app_context():
            runs.request_run(segment)
        assert Queue("default", connection=connection(own)).job_ids == [runs.job_id(segment.id)]
        assert Queue("default", connection=connection(queue_server)).job_ids == []
    finally:
        connection(own).flushdb()
        init_database(db_url)
