"""Live previews stop in the database when superseded or abandoned (issue 19):
a preview running a long statement is cancelled by the user's next preview or
by the page's cancel request, and leaves no statement running."""

import contextlib
import threading
import time

import pytest

from webapp.db import database, is_postgres
from webapp.models import User
from webapp.segments import previews

# CPU for minutes on either database unless stopped
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) "
    "SELECT COUNT(*) FROM c /* slow-preview */"
)


class Running:
    """A preview of `user_id` running SLOW in its own thread and connection."""

    def __init__(self, user_id, app=None):
        self.outcome, self.started, self.app = None, threading.Event(), app
        self.thread = threading.Thread(target=self._run, args=(user_id,))
        self.thread.start()
        assert self.started.wait(10)
        time.sleep(0.3)  # the statement is under way

    def _run(self, user_id):
        context = self.app.app_context() if self.app else contextlib.nullcontext()
        try:
            with context, previews.live(user_id):
                self.started.set()
                database.execute_sql(SLOW)
            self.outcome = "finished"
        except previews.Superseded:
            self.outcome = "superseded"
        finally:
            self.started.set()
            database.close()

    def stopped_within(self, seconds):
        self.thread.join(seconds)
        return not self.thread.is_alive()


def running_statements():
    if not is_postgres():
        return 0
    return database.execute_sql(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s AND pid <> pg_backend_pid()",
        ("%slow-preview%",),
    ).fetchone()[0]


def test_a_newer_preview_of_the_user_cancels_the_running_one_in_the_database(db):
    first = Running(1)
    assert first.thread.is_alive() and (running_statements() == 1 or not is_postgres())
    started = time.perf_counter()
    with previews.live(1):
        assert database.execute_sql("SELECT 1").fetchone()[0] == 1  # the newer one runs at once
    assert first.stopped_within(10), "the superseded preview kept running"
    assert first.outcome == "superseded"
    assert time.perf_counter() - started < 5
    assert running_statements() == 0


def test_previews_of_other_users_are_left_running(db):
    first = Running(1)
    try:
        with previews.live(2):
            database.execute_sql("SELECT 1")
        assert not first.stopped_within(0.5)
        assert running_statements() == 1 or not is_postgres()
    finally:
        previews.cancel(1)
    assert first.stopped_within(10) and first.outcome == "superseded"
    assert running_statements() == 0


def test_a_preview_that_is_not_superseded_raises_its_own_errors(db):
    with pytest.raises(Exception) as raised, previews.live(3):
        database.execute_sql("SELECT * FROM no_such_table")
    assert not isinstance(raised.value, previews.Superseded)


def test_leaving_the_builder_page_cancels_its_preview(marketer):
    user = User.get(User.email == "mia@example.com")
    running = Running(user.id)
    response = marketer.post("/segments/preview/cancel", data={})
    assert response.status_code == 204
    assert running.stopped_within(10) and running.outcome == "superseded"
    assert running_statements() == 0


def test_cancel_needs_the_csrf_token(marketer):
    marketer.token = "forged"
    assert marketer.post("/segments/preview/cancel", data={}).status_code == 400


@pytest.mark.postgresql_only
def test_a_preview_cancelled_from_another_web_process_is_superseded(db):
    running = Running(4)
    # what a newer preview in another process does: this process's registry is untouched
    database.execute_sql(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
        ("segmento-preview-4-%",),
    )
    assert running.stopped_within(10) and running.outcome == "superseded"
    assert running_statements() == 0


@pytest.mark.sqlite_only
def test_a_sqlite_preview_superseded_in_another_web_process_stops(app):
    with app.app_context():
        running = Running(6, app=app)
        # what a newer preview in another process does: the queue server names its token
        previews.queue.connection().set("segmento:preview:6", "another-process")
        assert running.stopped_within(10) and running.outcome == "superseded"
