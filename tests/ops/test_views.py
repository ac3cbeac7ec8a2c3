"""/healthz and /metrics: real database, real queue server, a real worker;
answered only to the monitoring networks, with nothing internal in them;
forwarded headers believed only from the configured proxies."""

import json

import pytest
from procs import Workers, wait_for

from webapp import create_app
from webapp.models import (
    Customer,
    ImportRun,
    Mailing,
    MailingRecipient,
    Segment,
    SegmentRun,
)

OUTSIDE = {"REMOTE_ADDR": "203.0.113.5"}


@pytest.fixture(autouse=True)
def empty_queues(queue_server):
    from webapp.queue import connection

    connection().flushdb()


def health(client, **kwargs):
    response = client.get("/healthz", **kwargs)
    return response.status_code, response.get_json()


def test_healthz_is_503_without_workers_and_200_once_a_worker_and_the_scheduler_run(
    client, db_url, queue_server, tmp_path
):
    status, body = health(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["workers"] == {"ok": False, "live": 0}
    assert body["checks"]["scheduler"]["ok"] is False

    workers = Workers(
        tmp_path,
        DATABASE_URL=db_url,
        REDIS_URL=queue_server,
        REALTIME_INTERVAL_SECONDS=1,
    )
    workers.start()
    try:
        wait_for(
            lambda: health(client)[0] == 200,
            timeout=60,
            what="healthz 200: " + workers.tails(),
        )
        status, body = health(client)
        assert body["status"] == "ok"
        assert body["checks"]["workers"]["live"] == 1
        assert body["checks"]["scheduler"]["last_tick_seconds_ago"] < 60
        assert body["checks"]["queue"]["oldest_queued_seconds"] < 600
    finally:
        workers.stop()


def test_healthz_reports_an_old_queued_job(client, queue_server):
    from webapp.ops.health import oldest_queued_age
    from webapp.queue import connection, get_queue

    job = get_queue().enqueue("webapp.db.init_from_settings")
    age = oldest_queued_age(connection(), now=job.enqueued_at.timestamp() + 700)
    assert 699 < age < 701
    _, body = health(client)
    assert body["checks"]["queue"]["oldest_queued_seconds"] < 60


def test_healthz_says_503_when_the_queue_server_is_down_and_shows_no_error_text(db, db_url):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "SECRET_KEY": "x",
        }
    )
    status, body = health(app.test_client())
    assert status == 503
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": False}
    text = json.dumps(body)
    assert "Error" not in text and "127.0.0.1" not in text and "Traceback" not in text


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_monitoring_pages_are_404_outside_the_monitoring_networks_and_need_no_login(client, path):
    assert client.get(path, environ_base=OUTSIDE).status_code == 404
    inside = client.get(path)
    assert inside.status_code in (
        200,
        503,
    )  # answered, not a redirect to the login page


def test_monitoring_networks_setting_admits_a_listed_network(db, db_url, queue_server):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "REDIS_URL": queue_server,
            "SECRET_KEY": "x",
            "MONITORING_NETWORKS": "10.8.0.0/16, 203.0.113.0/24",
        }
    )
    client = app.test_client()
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 200
    assert client.get("/metrics").status_code == 404  # loopback is no longer listed
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.9.0.1"}).status_code == 404


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(db, db_url, queue_server):
    forged = {"X-Forwarded-For": "127.0.0.1"}
    direct = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "REDIS_URL": queue_server,
            "SECRET_KEY": "x",
        }
    )
    # No proxy configured: a client cannot claim to be the monitoring host.
    assert direct.test_client().get("/metrics", headers=forged, environ_base=OUTSIDE).status_code == 404

    proxied = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "REDIS_URL": queue_server,
            "SECRET_KEY": "x",
            "TRUSTED_PROXIES": 1,
        }
    )
    client = proxied.test_client()
    # Behind nginx on this machine: the client's own address is what counts.
    outside_via_proxy = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
    assert client.get("/metrics", headers=outside_via_proxy).status_code == 404
    # A client's forged first hop is not believed: only the one nginx appended.
    forged_chain = {"X-Forwarded-For": "127.0.0.1, 203.0.113.5"}
    assert client.get("/metrics", headers=forged_chain).status_code == 404
    # The forwarded scheme makes redirects https (and secure cookies apply).
    response = client.get("/customers/", headers=outside_via_proxy)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(("https://", "/"))


def test_secure_session_cookie_under_https(db, db_url, queue_server, make_user):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "REDIS_URL": queue_server,
            "SECRET_KEY": "x",
            "TRUSTED_PROXIES": 1,
            "SESSION_COOKIE_SECURE": True,
        }
    )
    make_user()
    client = app.test_client()
    response = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    cookie = response.headers.get("Set-Cookie", "")
    assert "session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_metrics_text_has_queue_jobs_segment_runs_sends_and_import_rows(client, db, queue_server):
    from webapp.ops.metrics import record_job
    from webapp.queue import connection, get_queue

    segment = Segment.create(name="VIP", code="vip", definition={"blocks": []})
    SegmentRun.create(segment=segment, status="done")
    SegmentRun.create(segment=segment, status="failed")
    customers = [Customer.create(external_id=f"c{i}") for i in range(3)]
    email = Mailing.create(name="Spring", channel="email")
    sms = Mailing.create(name="Promo", channel="sms")
    MailingRecipient.create(mailing=email, customer=customers[0], status="sent")
    MailingRecipient.create(mailing=email, customer=customers[1], status="sent")
    MailingRecipient.create(mailing=email, customer=customers[2], status="failed")
    MailingRecipient.create(mailing=sms, customer=customers[0], status="sent")
    ImportRun.create(
        kind="customers",
        file_name="a.csv",
        file_path="x",
        rows_imported=7,
        rows_rejected=2,
    )
    get_queue().enqueue("webapp.db.init_from_settings")
    record_job(connection(), "run_job", 0.3, failed=False)
    record_job(connection(), "run_job", 12, failed=True)
    client.get("/login")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    for line in [
        'segmento_queue_jobs{queue="default",state="queued"} 1.0',
        'segmento_queue_jobs{queue="realtime",state="queued"} 0.0',
        "segmento_workers 0.0",
        'segmento_segment_runs_total{status="done"} 1.0',
        'segmento_segment_runs_total{status="failed"} 1.0',
        'segmento_messages_sent_total{channel="email"} 2.0',
        'segmento_messages_sent_total{channel="sms"} 1.0',
        'segmento_messages_failed_total{channel="email"} 1.0',
        'segmento_import_rows_total{outcome="imported"} 7.0',
        'segmento_import_rows_total{outcome="rejected"} 2.0',
        'segmento_job_duration_seconds_count{job="run_job"} 2.0',
        'segmento_job_duration_seconds_bucket{job="run_job",le="0.5"} 1.0',
        'segmento_job_duration_seconds_bucket{job="run_job",le="30"} 2.0',
        'segmento_job_failures_total{job="run_job"} 1.0',
    ]:
        assert line in text, line
    assert 'segmento_http_requests_total{method="GET",status="200"}' in text
    assert "SELECT" not in text and "secret" not in text.lower()


@pytest.mark.parametrize(
    "env, secure",
    [
        ({"PUBLIC_URL": "https://crm.example.ru"}, True),
        ({"PUBLIC_URL": "http://127.0.0.1:5000"}, False),
        ({"PUBLIC_URL": "https://crm.example.ru", "SESSION_COOKIE_SECURE": "0"}, False),
    ],
)
def test_session_cookie_is_secure_when_the_public_url_is_https_unless_set(env, secure):
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_URL", "SESSION_COOKIE_SECURE")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from webapp import settings; print(settings.SESSION_COOKIE_SECURE)",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(secure)
