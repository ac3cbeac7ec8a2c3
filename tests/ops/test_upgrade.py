"""Upgrading a database made by the previous release.

tests/ops/data/release-0009.sqlite is a SQLite database made with that
release's schema (migrations up to 0009_analytics) and rows in every table
(demo data, an admin, and one row of each activation, import, export and API
table). On SQLite the file itself is upgraded; on PostgreSQL a database is
migrated to 0009 and the same rows are loaded into it. `flask db upgrade`
then applies every later migration, and every row of every old column must
still be there, and the app must serve its pages."""

import shutil
import sqlite3
import uuid
from pathlib import Path

import peewee as pw
import pytest

from webapp import create_app
from webapp.db import database, init_database, make_database, migration_runner
from webapp.models import MODELS

FIXTURE = Path(__file__).parent / "data" / "release-0009.sqlite"
RELEASE = "0009_analytics"


def snapshot(url, columns=None):
    """{table: sorted rows} of every table but the migration history; with
    `columns` ({table: [column]}) only those columns."""
    db = make_database(url)
    db.connect()
    try:
        out = {}
        for table in db.get_tables():
            if (
                table == "schema_migration"
                or table.startswith("sqlite_")
                or (columns is not None and table not in columns)
            ):
                # the history, SQLite's planner statistics (an index a migration drops takes its rows
                # along), or a table a later migration created (nothing old to keep)
                continue
            cols = columns[table] if columns else [c.name for c in db.get_columns(table)]
            select = ", ".join(f'"{c}"' for c in cols)
            out[table] = sorted(repr(row) for row in db.execute_sql(f'SELECT {select} FROM "{table}"').fetchall())
        return out
    finally:
        db.close()


def column_names(url):
    db = make_database(url)
    db.connect()
    try:
        return {t: [c.name for c in db.get_columns(t)] for t in db.get_tables() if t != "schema_migration"}
    finally:
        db.close()


def load_fixture_into_postgres(url):
    """Migrate the database at `url` to the release and copy the fixture's rows in."""
    db = init_database(url)
    with database:
        migration_runner().up(target=RELEASE)
    source = sqlite3.connect(FIXTURE)
    booleans = {
        (t, c)
        for t, c in db.execute_sql(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = 'boolean'"
        ).fetchall()
    }
    order = [m._meta.table_name for m in pw.sort_models(MODELS)]
    tables = [t for t in order if t in db.get_tables()]
    with db.atomic():
        for table in tables:
            cursor = source.execute(f'SELECT * FROM "{table}"')
            cols = [d[0] for d in cursor.description]
            rows = [
                [bool(v) if (table, c) in booleans and v is not None else v for c, v in zip(cols, row, strict=True)]
                for row in cursor.fetchall()
            ]
            if not rows:
                continue
            marks = ", ".join(["%s"] * len(cols))
            names = ", ".join(f'"{c}"' for c in cols)
            db.cursor().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
            if "id" in cols:
                db.execute_sql(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT MAX(id) FROM \"{table}\"))"
                )
    db.close()
    source.close()


@pytest.fixture
def release_url(backend, db_url, tmp_path):
    if backend == "sqlite":
        path = tmp_path / "release.db"
        shutil.copy(FIXTURE, path)
        yield f"sqlite:///{path}"
        return
    import psycopg

    base = db_url.rsplit("/", 1)[0]
    name = f"segmento_release_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    load_fixture_into_postgres(f"{base}/{name}")
    yield f"{base}/{name}"
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_flask_db_upgrade_keeps_every_row_of_the_previous_release(release_url, db_url, queue_server):
    old_columns = column_names(release_url)
    before = snapshot(release_url)
    empty = [t for t, rows in before.items() if not rows]
    assert not empty, f"the fixture should have rows in every table: {empty}"
    # Every table of the release: the fixture is the whole schema, not a sample.
    assert len(before) >= 40

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": release_url,
            "REDIS_URL": queue_server,
            "SECRET_KEY": "x",
            "WTF_CSRF_ENABLED": False,
        }
    )
    try:
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        init_database(release_url)
        with database:
            pending = [m.name for m in migration_runner().status() if m.applied is None and m.path]
        assert pending == []
        after = snapshot(release_url, old_columns)
        # every old row is still there, unchanged; a later release may add rows of its own
        # (0011 brings two system segments built on the predictions)
        lost = {t: sorted(set(rows) - set(after[t])) for t, rows in before.items() if set(rows) - set(after[t])}
        assert lost == {}
        added = {t: len(after[t]) - len(rows) for t, rows in before.items() if len(after[t]) != len(rows)}
        assert added == {"segment": 2}

        client = app.test_client()
        response = client.post("/login", data={"email": "admin@example.com", "password": "correct horse battery"})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        for page in ["/", "/customers/", "/segments/", "/imports/", "/exports/"]:
            answer = client.get(page, follow_redirects=True)
            assert answer.status_code == 200, page
    finally:
        database.close()
        init_database(db_url)
