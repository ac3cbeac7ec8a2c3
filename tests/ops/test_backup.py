"""`flask backup` / `flask restore` on both databases: a backup restored into
an empty database holds every table's rows exactly."""

import os
import uuid

import peewee as pw
import pytest

from webapp.db import database
from webapp.models import MODELS


def table_rows(url):
    """Every table's rows, sorted, read through a fresh connection to `url`."""
    from webapp.db import make_database

    db = make_database(url)
    db.connect()
    try:
        tables = sorted(db.get_tables())
        return {t: sorted(map(repr, db.execute_sql(f'SELECT * FROM "{t}"').fetchall())) for t in tables}
    finally:
        db.close()


@pytest.fixture
def empty_url(backend, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    import psycopg

    name = f"segmento_restore_{uuid.uuid4().hex[:8]}"
    base = database.obj.connect_params
    admin = f"postgresql://{base['user']}:{base['password']}@{base['host']}:{base['port']}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_restored_into_an_empty_database_has_every_row(app, runner, db_url, empty_url, make_user, tmp_path):
    from webapp.demo import generate

    make_user()
    generate(customers=200, seed=3)
    database.close()
    before = table_rows(db_url)
    assert sum(1 for rows in before.values() if rows) >= 10  # real data in many tables
    assert {m._meta.table_name for m in MODELS} <= set(before)

    file = tmp_path / "segmento.backup"
    result = runner.invoke(args=["backup", str(file)])
    assert result.exit_code == 0, result.output
    assert file.stat().st_size > 0

    app.config["DATABASE_URL"] = empty_url
    result = runner.invoke(args=["restore", str(file)])
    assert result.exit_code == 0, result.output
    assert table_rows(empty_url) == before

    # A second restore into the now full database is refused, and changes nothing.
    result = runner.invoke(args=["restore", str(file)])
    assert result.exit_code != 0
    assert "not empty" in result.output
    assert table_rows(empty_url) == before
    app.config["DATABASE_URL"] = db_url


def test_restore_of_a_missing_or_foreign_file_says_so(app, runner, empty_url, tmp_path):
    app.config["DATABASE_URL"] = empty_url
    result = runner.invoke(args=["restore", str(tmp_path / "nope.backup")])
    assert result.exit_code != 0 and "no such file" in result.output
    junk = tmp_path / "junk.backup"
    junk.write_bytes(os.urandom(4096))
    result = runner.invoke(args=["restore", str(junk)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert pw  # peewee imported for the backend fixtures
