"""Shared fixtures: the app on a fresh database, SQLite and PostgreSQL.

Every test that uses `app` (or `client`, `runner`, `db`) runs once per
database backend: `[sqlite]` always, `[postgresql]` when a server is reachable
at TEST_POSTGRES_URL (or DATABASE_URL, when that names PostgreSQL). Locally a
missing server skips with the reason; in CI (CI=true) it fails.

The queue is a real embedded Valkey server, started once per session.
"""

import logging
import os
import uuid

import peewee as pw
import pytest
from redis import Redis
from rq import SimpleWorker

from webapp import create_app, settings
from webapp.db import database, init_database, upgrade
from webapp.models import MODELS
from webapp.queue import PromptStop

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_sessionstart(session):
    # Real argon2id hashes, with the cheapest parameters: the default ones cost
    # ~0.5 s a hash, and tests create many users.
    from argon2 import PasswordHasher, profiles

    from webapp.accounts import passwords

    passwords._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)


def pytest_sessionfinish(session, exitstatus):
    """Drop this session's PostgreSQL test database (other sessions keep theirs)."""
    url, _ = _backends.get("postgresql", (None, None))
    if not url:
        return
    import psycopg

    db = init_database(url)
    if not db.is_closed():
        db.close()
    name = url.rsplit("/", 1)[1]
    try:
        with psycopg.connect(_postgres_url(), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # noqa: BLE001 - cleanup is best effort
        pass


def _postgres_url():
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgresql://", "postgres://")):
        return url
    return os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


def _probe_postgres(url):
    """Create a fresh test database on the server at `url`; its URL or an error."""
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            name = f"segmento_test_{os.getpid()}"
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return None, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}", None


_backends = {}


def _backend_url(backend, tmp_path_factory):
    if backend not in _backends:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("db") / "test.db"
            _backends[backend] = (f"sqlite:///{path}", None)
        else:
            _backends[backend] = _probe_postgres(_postgres_url())
        url, error = _backends[backend]
        if url:
            init_database(url)
            with database:
                upgrade()
    url, error = _backends[backend]
    if url is None:
        message = f"PostgreSQL not reachable at {_postgres_url()} ({error}); set TEST_POSTGRES_URL"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return url


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite", "postgresql"]
        if metafunc.definition.get_closest_marker("sqlite_only") or metafunc.definition.get_closest_marker("browser"):
            backends = ["sqlite"]
        elif metafunc.definition.get_closest_marker("postgresql_only"):
            backends = ["postgresql"]
        metafunc.parametrize("backend", backends, scope="session")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: runs on SQLite only (e.g. UI flows)")
    config.addinivalue_line("markers", "postgresql_only: a PostgreSQL behaviour SQLite cannot have")


def _truncate():
    # DELETE in dependency order: on PostgreSQL, TRUNCATE of every table costs
    # ~1.5 s a test, DELETE of a test's few rows ~15 ms. Sequences restart so
    # ids are as in a fresh database.
    models = list(reversed(pw.sort_models(MODELS)))
    with database.atomic():
        for model in models:
            database.execute_sql(f'DELETE FROM "{model._meta.table_name}"')
        if isinstance(database.obj, pw.PostgresqlDatabase):
            database.execute_sql(
                "SELECT setval(s.seq, 1, false) FROM (SELECT pg_get_serial_sequence(quote_ident(t), 'id') AS seq "
                "FROM unnest(%s::text[]) AS t) s WHERE s.seq IS NOT NULL",
                ([m._meta.table_name for m in models if isinstance(m._meta.primary_key, pw.AutoField)],),
            )
        elif database.table_exists("sqlite_sequence"):
            database.execute_sql("DELETE FROM sqlite_sequence")


class BurstWorker(PromptStop, SimpleWorker):
    """RQ's in-process worker with the stop our workers have (webapp.queue.PromptStop):
    RQ's own waited up to 60 s for its pubsub thread now and then."""


def work_off(connection, queues=("default",)):
    """Run the queued jobs in this process, then return (RQ's burst mode); `connection`
    is a Redis client or the queue server's URL."""
    if isinstance(connection, str):
        connection = Redis.from_url(connection)
    BurstWorker(list(queues), connection=connection).work(burst=True)


@pytest.fixture(scope="session")
def queue_server(tmp_path_factory):
    """A real embedded Valkey server for the whole session."""
    from webapp.queue import embedded_server

    server = embedded_server(data_dir=tmp_path_factory.mktemp("valkey"))
    url = f"redis://127.0.0.1:{server.port}/0"
    # The settings were read before this server started: tell them, and the
    # processes the tests start, where it is.
    settings.REDIS_URL = os.environ["REDIS_URL"] = url
    yield url
    server.stop()


@pytest.fixture
def db_url(backend, tmp_path_factory):
    return _backend_url(backend, tmp_path_factory)


@pytest.fixture
def db(db_url):
    """A bound, connected, empty database."""
    init_database(db_url)
    database.connect(reuse_if_open=True)
    _truncate()
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture
def app(db, db_url, queue_server):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "REDIS_URL": queue_server,
            "WTF_CSRF_ENABLED": True,
            "SECRET_KEY": "test-" + uuid.uuid4().hex,
            # rate-limit counts (API, sign-in) of one test never reach another's
            "RATELIMIT_KEY_PREFIX": "test-" + uuid.uuid4().hex,
        }
    )
    yield app
    init_database(db_url)


@pytest.fixture
def queries():
    """The SQL statements peewee sends while the test runs, in order (a list
    the test may clear; each a str with its `params`): for tests that a page
    costs the statements it should."""
    sent = []

    class Statement(str):
        params = ()

    class Record(logging.Handler):
        def emit(self, record):
            if isinstance(record.msg, tuple):  # (sql, params); peewee also logs pool events
                statement = Statement(record.msg[0])
                statement.params = record.msg[1]
                sent.append(statement)

    handler, log = Record(logging.DEBUG), logging.getLogger("peewee")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield sent
    log.removeHandler(handler)
    log.setLevel(level)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


PASSWORD = "correct horse battery"


@pytest.fixture
def make_user(db):
    from webapp.accounts.service import create_user

    def make(email="admin@example.com", role="admin", password=PASSWORD, name=""):
        return create_user(email, password, role=role, name=name)

    return make


def csrf_from(html):
    import re

    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def login(client, make_user):
    """Log a user in through the real login form; returns the user."""

    def do(email="admin@example.com", role="admin"):
        user = make_user(email=email, role=role)
        page = client.get("/login").get_data(as_text=True)
        response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page)})
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return do


@pytest.fixture
def auth_client(client, login):
    login()
    return client
