"""The peewee database: one proxy, bound late from DATABASE_URL.

SQLite runs in WAL mode with a file under instance/; a `postgresql://` URL
selects PostgreSQL (psycopg 3). Both run the same models and queries.
"""

import datetime
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

import peewee as pw
from playhouse.migrations import Runner
from playhouse.pool import PooledPostgresqlDatabase

database = pw.DatabaseProxy()

# Dates and datetimes go to SQLite as the text it stores, `str(value)`. These
# are the sqlite3 module's own default adapters, deprecated since Python 3.12
# ("register your own"): registered here so that every path (peewee's
# parameters and the bulk loader's executemany of raw tuples) converts them in
# the driver's C loop, not value by value in Python.
sqlite3.register_adapter(datetime.date, datetime.date.isoformat)
sqlite3.register_adapter(datetime.datetime, lambda value: value.isoformat(" "))

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 10000,
    "cache_size": -64 * 1024,
    # Temporary tables and sorts go through the page cache and spill to a
    # temporary file beyond it: in memory, one RFM class refresh at 1M
    # customers (800,000 entries in one transaction) peaked at 0.9-6.9 GB,
    # with a file at 142 MB in the same time.
    "temp_store": "file",
}


def make_database(url, pool=False):
    """A peewee Database for `url` (sqlite:///path or postgresql://...).

    `pool`: PostgreSQL connections are kept open and reused (the web app:
    opening one costs more than most pages' queries). Not for processes that
    fork after connecting (the RQ worker forks a work-horse per job).
    """
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql"):
        cls, extra = pw.PostgresqlDatabase, {}
        if pool:
            cls, extra = PooledPostgresqlDatabase, {"max_connections": 32, "stale_timeout": 300, "timeout": 30}
        return cls(
            parsed.path.lstrip("/"),
            user=parsed.username,
            password=parsed.password,
            host=parsed.hostname,
            port=parsed.port,
            prefer_psycopg3=True,
            **extra,
        )
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Every transaction takes the write lock at BEGIN (IMMEDIATE), waiting
        # up to the busy timeout for it. Begun DEFERRED, a transaction that
        # reads and then writes fails at once with "database is locked" when
        # another process wrote since its read (WAL: its snapshot is stale,
        # so SQLite does not wait): web processes, workers and the scheduler
        # on one box did, under load. Read-only snapshots: snapshot().
        return pw.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=10, lock_type="IMMEDIATE")
    raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgresql://, got {url!r}")


_databases = {}


def init_database(url, pool=False):
    """Bind the proxy to the database named by `url`; returns the real database.

    One Database object per URL (and pooling) and process, so re-binding
    (tests, several apps) reuses its connection state.
    """
    key = (url, pool)
    db = _databases.get(key)
    if db is None:
        db = _databases[key] = make_database(url, pool=pool)
    database.initialize(db)
    return db


def is_postgres():
    return isinstance(database.obj, pw.PostgresqlDatabase)


def migration_runner():
    return Runner(database.obj, directory=str(MIGRATIONS_DIR))


def upgrade():
    """Apply pending migrations; returns the names applied."""
    runner = migration_runner()
    pending = [m.name for m in runner.status() if m.applied is None and m.path]
    runner.up()
    return pending


def init_app(app):
    init_database(app.config["DATABASE_URL"], pool=True)

    @app.before_request
    def _connect():
        database.connect(reuse_if_open=True)

    @app.teardown_appcontext
    def _close(exc):
        if not database.is_closed():
            database.close()


def init_from_settings():
    """Bind the database from the DATABASE_URL setting unless it is bound: the
    worker process and each job's work-horse (jobs call it first)."""
    from . import settings

    if database.obj is None:
        init_database(settings.DATABASE_URL)


def snapshot():
    """A read-only transaction: every statement in it sees the same data.

    On SQLite it begins DEFERRED, so it neither waits for nor holds up the
    writers (a plain atomic() there takes the write lock: make_database)."""
    return database.atomic() if is_postgres() else database.atomic("DEFERRED")
