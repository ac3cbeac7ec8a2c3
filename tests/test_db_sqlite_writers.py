"""Several processes writing one SQLite file at once (the one-box set-up:
gunicorn processes, RQ workers and the scheduler) wait for each other instead
of failing with "database is locked" (issue 21).

In WAL mode a transaction begun DEFERRED that reads and then writes cannot
wait for the write lock: when another connection holds it or has committed
since the read, SQLite answers SQLITE_BUSY at once (the busy timeout is not
consulted, since waiting could not help its stale snapshot). Write
transactions therefore begin IMMEDIATE; read-only snapshots stay DEFERRED.
"""

import multiprocessing
import time

import pytest

from webapp.db import make_database

PROCESSES = 4
ROUNDS = 60


def _read_then_write(url, start, errors):
    db = make_database(url)
    db.connect()
    start.wait()
    try:
        for _ in range(ROUNDS):
            with db.atomic():
                (n,) = db.execute_sql("SELECT n FROM counter").fetchone()
                time.sleep(0.002)  # the work between the read and the write
                db.execute_sql("UPDATE counter SET n = ?", (n + 1,))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        errors.put(f"{type(exc).__name__}: {exc}")
    finally:
        db.close()


def _snapshot_reader(url, start, stop, errors):
    from webapp.db import database, snapshot

    db = make_database(url)
    database.initialize(db)  # this child process's own binding
    db.connect()
    start.wait()
    try:
        while not stop.is_set():
            with snapshot():
                first = db.execute_sql("SELECT n FROM counter").fetchone()[0]
                time.sleep(0.005)
                again = db.execute_sql("SELECT n FROM counter").fetchone()[0]
            if first != again:
                errors.put(f"snapshot moved: {first} then {again}")
                return
    except Exception as exc:  # noqa: BLE001 - reported to the test
        errors.put(f"{type(exc).__name__}: {exc}")
    finally:
        db.close()


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'writers.db'}"
    db = make_database(url)
    with db:
        db.execute_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
        db.execute_sql("INSERT INTO counter (n) VALUES (0)")
    return url


def test_concurrent_read_then_write_transactions_wait_instead_of_failing(sqlite_url):
    ctx = multiprocessing.get_context("fork")
    start, stop, errors = ctx.Event(), ctx.Event(), ctx.Queue()
    writers = [ctx.Process(target=_read_then_write, args=(sqlite_url, start, errors)) for _ in range(PROCESSES)]
    reader = ctx.Process(target=_snapshot_reader, args=(sqlite_url, start, stop, errors))
    for process in [*writers, reader]:
        process.start()
    start.set()
    for process in writers:
        process.join(120)
    stop.set()
    reader.join(30)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    assert all(p.exitcode == 0 for p in [*writers, reader])
    db = make_database(sqlite_url)
    with db:
        # every increment counted: the transactions ran one after another
        assert db.execute_sql("SELECT n FROM counter").fetchone()[0] == PROCESSES * ROUNDS
