"""One log line per request and per job; JSON objects with LOG_FORMAT=json."""

import json
import logging

import pytest
from procs import Workers, wait_for

from webapp import create_app
from webapp.ops import logs


@pytest.fixture(autouse=True)
def restore_logging():
    root = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = root
    for logger in (logs.REQUESTS, logs.JOBS):
        logger.handlers[:] = []
        logger.propagate = True


def json_lines(text):
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_each_request_is_one_json_line(db, db_url, queue_server, capsys):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "REDIS_URL": queue_server,
            "SECRET_KEY": "x",
            "ACCESS_LOG": True,
            "LOG_FORMAT": "json",
        }
    )
    client = app.test_client()
    client.get("/login")
    client.get("/customers/?q=secret")
    client.get("/no-such-page")
    lines = [line for line in json_lines(capsys.readouterr().err) if line.get("logger") == "segmento.request"]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/login", 302),
        ("GET", "/customers/", 302),
        ("GET", "/no-such-page", 404),
    ]
    assert all(line["duration_ms"] >= 0 and line["remote_addr"] == "127.0.0.1" for line in lines)
    assert all("secret" not in json.dumps(line) for line in lines)  # query strings (searches) are not logged


def test_each_request_is_one_text_line_by_default_under_access_log(db, db_url, queue_server, capsys):
    app = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "REDIS_URL": queue_server, "SECRET_KEY": "x", "ACCESS_LOG": True}
    )
    app.test_client().get("/login")
    err = capsys.readouterr().err
    # with the client's address, as an access log has it (nobody is signed in: no user)
    lines = [line for line in err.splitlines() if "segmento.request: GET /login 302" in line]
    assert lines and lines[0].endswith("ms from 127.0.0.1"), lines


@pytest.mark.sqlite_only
def test_each_job_is_one_json_line_from_the_worker(db, db_url, queue_server, tmp_path):
    from webapp.queue import connection, get_queue

    connection().flushdb()
    workers = Workers(
        tmp_path,
        DATABASE_URL=db_url,
        REDIS_URL=queue_server,
        LOG_FORMAT="json",
        ACCESS_LOG="1",
        REALTIME_INTERVAL_SECONDS=3600,
        TRIGGER_POLL_SECONDS=3600,
    )
    worker = workers.start()
    try:
        ok = get_queue().enqueue("time.sleep", 0, job_id="log-ok")
        bad = get_queue().enqueue("os.path.getsize", "/no/such/file", job_id="log-bad")

        def job_lines():
            return [
                line
                for line in json_lines(worker.log.read_text())
                if line.get("logger") == "segmento.job" and line.get("job_id") in ("log-ok", "log-bad")
            ]

        wait_for(lambda: len(job_lines()) == 2, timeout=60, what="two job lines")
        by_id = {line["job_id"]: line for line in job_lines()}
        assert by_id["log-ok"]["status"] == "finished" and by_id["log-ok"]["job"] == "sleep"
        assert by_id["log-bad"]["status"] == "failed" and by_id["log-bad"]["level"] == "WARNING"
        assert ok.get_status(refresh=True) == "finished" and bad.get_status(refresh=True) == "failed"
    finally:
        workers.stop()
