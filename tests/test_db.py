"""The database binding: the web app keeps PostgreSQL connections in a pool
(opening one costs more than most pages' queries); SQLite opens its file per
request, which costs next to nothing."""

import peewee as pw
from playhouse.pool import PooledPostgresqlDatabase

from webapp.db import database


def test_web_app_reuses_postgresql_connections(app, db_url, auth_client):
    assert auth_client.get("/customers/").status_code == 200
    with app.app_context():
        if db_url.startswith("postgresql"):
            assert isinstance(database.obj, PooledPostgresqlDatabase)
            pids = set()
            for _ in range(3):  # what each request does: connect, query, close
                database.connect(reuse_if_open=True)
                pids.add(database.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
                database.close()
            assert len(pids) == 1  # one server connection served all three
        else:
            assert type(database.obj) is pw.SqliteDatabase
