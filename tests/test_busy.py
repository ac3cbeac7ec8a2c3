"""When every pooled database connection stays taken, a request is answered 503
"busy" with Retry-After in the user's language: never a 500 and a stack trace.

`make run`'s threaded development server takes any number of requests at once;
its pool of 32 PostgreSQL connections then runs dry under load (bench/load.py:
684 failures as 500s before this).
"""

import threading

import pytest

from webapp.db import database, init_database


@pytest.fixture
def tiny_pool(app, db_url):
    """The app's database as a pool of one connection, taken by another thread."""
    plain = database.obj
    pooled = init_database(db_url, pool=True)  # one object per URL and process: earlier tests may have used it
    if not pooled.is_closed():
        pooled.close()  # this thread's connection back to the pool...
    pooled.close_idle()  # ... and every idle one closed: the request would reuse any of them
    sizes = pooled._max_connections, pooled._wait_timeout
    pooled._max_connections, pooled._wait_timeout = 1, 0.2
    taken, release = threading.Event(), threading.Event()

    def hold():
        pooled.connect(reuse_if_open=True)
        taken.set()
        release.wait(30)
        pooled.close()

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(10)
    yield
    release.set()
    holder.join(10)
    pooled._max_connections, pooled._wait_timeout = sizes
    database.initialize(plain)


@pytest.mark.postgresql_only
def test_pages_and_the_api_say_busy_when_no_connection_is_free(app, client, tiny_pool):
    page = client.get("/login", headers={"Accept-Language": "ru"})
    assert page.status_code == 503, (page.status_code, page.headers.get("Location"))
    assert page.headers["Retry-After"] == "5"
    assert "Ничего не изменилось" in page.get_data(as_text=True)

    api = client.get("/api/v1/segments", headers={"Authorization": "Bearer nothing"})
    assert api.status_code == 503
    assert api.get_json()["error"]["code"] == "busy" and api.headers["Retry-After"] == "5"
