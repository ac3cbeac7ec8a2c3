"""Hand-written SQL: what every module that writes statement text uses.

Most queries are peewee's; some set work is clearer and faster as SQL text
(runs, re-checks, mailings, triggers, analytics, RFM, imports). That text is
written the same way everywhere:

- values are always bound parameters: `param()` is the current driver's mark
  (`?` for sqlite3, `%s` for psycopg), `placeholders(n)` a list of them, and
  `bind(value)` a date or datetime as the driver must receive it to compare
  with stored ones. Only identifiers we own (table and column names from the
  models or this code, never from users or files) are formatted in, quoted
  by `q()`; `escape_percent()` keeps a literal `%` from being read as a mark.
- `key_type()` is the column type of an integer id, `temporary_table()` a
  temporary table for one block, `skip_locked()` the row-claiming lock.
- bulk writes and reads by key (`bulk_upsert`, `fetch_in`, `execute_in`):
  peewee builds a node per value, which costs more than the database work for
  batches of thousands of rows; these write the statement text once per
  shape and bind the values.

Flask-free (the engine uses it). Values come back as the driver returns them
(SQLite: dates and datetimes as text, booleans as 0/1), so callers compare
them through `same_value`.
"""

import contextlib
import datetime
import decimal

import peewee as pw

from .db import database, is_postgres

MAX_PARAMS = 30000  # bound parameters per statement (SQLite allows 32766)
# Statements come in few shapes (row and key counts are powers of two), so the
# drivers' statement caches (SQLite keeps 128 prepared statements, each of
# megabytes when it has thousands of parameters) stay small and are reused.
MAX_ROWS = 1024
MAX_KEYS = 512


# --- statement text ------------------------------------------------------------


def param():
    """The parameter mark of the current database's driver: `%s` (psycopg) or `?` (sqlite3)."""
    return database.param


def placeholders(n):
    """`n` parameter marks separated by commas: a VALUES row or an IN list."""
    return ", ".join([database.param] * n)


def bind(value):
    """`value` as a hand-written statement must bind it.

    SQLite stores dates and datetimes as peewee's text (`str()`:
    2026-01-31 09:30:00, microseconds when there are some) and compares them
    as text, so a bound one must be that text too; PostgreSQL takes them as
    they are. Other values pass through.
    """
    if isinstance(value, datetime.date) and not is_postgres():
        return str(value)
    return value


def q(name):
    """A quoted identifier (a table or column name we own, never user text)."""
    return f'"{name}"'


def column(model, field):
    """The column name of a model's field."""
    return model._meta.fields[field].column_name


def escape_percent(text):
    """SQL text with a literal `%` (in a LIKE pattern) as the driver needs it:
    psycopg reads `%` as the start of a parameter mark."""
    return text.replace("%", "%%") if is_postgres() else text


def key_type():
    """The column type of an integer id in a temporary table: INTEGER on
    SQLite, where an INTEGER PRIMARY KEY is the rowid itself (no second
    index); BIGINT on PostgreSQL, as ids are."""
    return "BIGINT" if is_postgres() else "INTEGER"


def skip_locked():
    """The tail of a SELECT that claims rows: on PostgreSQL `FOR UPDATE SKIP
    LOCKED`, so concurrent claimers never wait on each other's rows; nothing
    on SQLite, where writers take turns."""
    return " FOR UPDATE SKIP LOCKED" if is_postgres() else ""


@contextlib.contextmanager
def sqlite_foreign_keys_off():
    """SQLite: no foreign-key checks on this connection for the block (put back
    after); nothing on PostgreSQL. Open it outside the transaction: SQLite
    ignores the setting inside one (the checks then simply stay on).

    Only for set work whose every reference was read in its own transaction:
    in WAL mode a transaction that read a snapshot cannot write once another
    connection has committed since (SQLITE_BUSY_SNAPSHOT), so what it read
    still exists when it commits, and the checks would only repeat the read
    (a full run entering 585,000 customers: 2.1 s -> 1.25 s of CPU, 1M demo).
    Cascades do not fire either: the block must not delete rows others reference.
    """
    if is_postgres():
        yield
        return
    previous = database.execute_sql("PRAGMA foreign_keys").fetchone()[0]
    database.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        database.execute_sql(f"PRAGMA foreign_keys = {int(previous)}")


def lock_membership():
    """PostgreSQL: take `segment_member` in ROW EXCLUSIVE mode (the lock its
    writers take anyway) before a transaction reads the customers it will write
    memberships and log rows for; nothing on SQLite.

    The two tables have no foreign keys on PostgreSQL (migration 0022): a
    customer delete cleans them in a trigger that first takes SHARE ROW
    EXCLUSIVE on `segment_member`. Held from the read on, this lock makes that
    delete wait for the writer's commit (its trigger then sees the new rows) or
    the writer wait for the delete's (its read then no longer sees the deleted
    customers): no membership of a deleted customer is left.
    """
    if is_postgres():
        database.execute_sql("LOCK TABLE segment_member IN ROW EXCLUSIVE MODE")


def hold_segment(segment_id):
    """Whether the segment exists, held until the transaction ends so that it is
    not deleted under the membership and log rows about to be written for it.

    What a foreign key did per inserted row, done once: on PostgreSQL a FOR KEY
    SHARE lock of the segment's row (its delete waits for this transaction, then
    its trigger deletes the rows written here; a delete that came first makes
    this answer False). SQLite keeps its foreign keys: a plain look-up.
    """
    lock = " FOR KEY SHARE" if is_postgres() else ""
    return bool(database.execute_sql(f"SELECT 1 FROM segment WHERE id = {param()}{lock}", (segment_id,)).fetchone())


# --- temporary tables ----------------------------------------------------------


def _temporary(name):
    # Qualified, so a DROP can only ever find the temporary table, never a real one of the same name.
    return f"pg_temp.{name}" if is_postgres() else f"temp.{name}"


@contextlib.contextmanager
def temporary_table(name, columns, *, keep=False):
    """A TEMPORARY TABLE `name` for the block; yields its name.

    `columns`: its column definitions as SQL text (an id column's type is
    `key_type()`). It is created on entry (dropping one a failed block left on
    this connection) and dropped on exit. When the block fails inside a
    PostgreSQL transaction, that database refuses every statement until the
    rollback, which drops the table anyway: the drop is skipped there, so the
    block's own error is the one raised.

    `keep`: the table is made once per connection (CREATE ... IF NOT EXISTS),
    emptied on entry and left in place, for a table used every few seconds
    (the real-time re-check): creating and dropping it each time is a schema
    change per call, and on SQLite a schema change makes the connection
    prepare again every cached statement that reads the table.
    """
    if keep:
        database.execute_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({columns})")
        database.execute_sql(f"DELETE FROM {_temporary(name)}")
        yield name
        return
    database.execute_sql(f"DROP TABLE IF EXISTS {_temporary(name)}")
    database.execute_sql(f"CREATE TEMPORARY TABLE {name} ({columns})")
    try:
        yield name
    except BaseException:
        with contextlib.suppress(pw.DatabaseError):
            database.execute_sql(f"DROP TABLE IF EXISTS {_temporary(name)}")
        raise
    database.execute_sql(f"DROP TABLE IF EXISTS {_temporary(name)}")


# --- bulk writes and reads by key ---------------------------------------------


def _power_of_two_at_most(n):
    p = 1
    while p * 2 <= n:
        p *= 2
    return p


def shaped_chunks(items, largest):
    """`items` in chunks of `largest`, then of decreasing powers of two (`largest` is one)."""
    start, n = 0, len(items)
    size = largest
    while start < n:
        while size > n - start:
            size //= 2
        yield items[start : start + size]
        start += size


def padded_key_chunks(keys):
    """Keys in chunks of at most MAX_KEYS, each padded (repeating its last key:
    harmless in an IN list) to a power of two."""
    keys = list(keys)
    for start in range(0, len(keys), MAX_KEYS):
        chunk = keys[start : start + MAX_KEYS]
        size = 1
        while size < len(chunk):
            size *= 2
        yield chunk + [chunk[-1]] * (size - len(chunk))


def bulk_upsert(model, fields, rows, conflict=None, update=(), compare=(), returning=()):
    """INSERT `rows` (tuples in `fields` order).

    With `conflict` (fields of a unique key): ON CONFLICT DO UPDATE SET `update`
    WHERE any of `compare` differs, or DO NOTHING when there is nothing to
    update, so an unchanged row is not written. Returns the RETURNING tuples:
    the rows inserted or changed.
    """
    if not rows:
        return []
    table = model._meta.table_name
    cols = [column(model, f) for f in fields]
    tail = ""
    if conflict:
        target = ", ".join(q(column(model, f)) for f in conflict)
        if update:
            op = "IS DISTINCT FROM" if is_postgres() else "IS NOT"
            sets = ", ".join(f"{q(column(model, f))} = excluded.{q(column(model, f))}" for f in update)
            differs = " OR ".join(
                f"{q(table)}.{q(column(model, f))} {op} excluded.{q(column(model, f))}" for f in compare
            )
            tail = f" ON CONFLICT ({target}) DO UPDATE SET {sets}" + (f" WHERE {differs}" if differs else "")
        else:
            tail = f" ON CONFLICT ({target}) DO NOTHING"
    ret = (" RETURNING " + ", ".join(q(column(model, f)) for f in returning)) if returning else ""
    if not is_postgres():
        rows = _adapt_dates(model, fields, rows)
    row_sql = "(" + placeholders(len(cols)) + ")"
    head = f"INSERT INTO {q(table)} ({', '.join(q(c) for c in cols)}) VALUES "
    out = []
    rows = list(rows)
    for chunk in shaped_chunks(rows, _power_of_two_at_most(min(MAX_ROWS, max(1, MAX_PARAMS // len(cols))))):
        sql = head + ", ".join([row_sql] * len(chunk)) + tail + ret
        cursor = database.execute_sql(sql, [v for row in chunk for v in row])
        if returning:
            out.extend(cursor.fetchall())
    return out


def _adapt_dates(model, fields, rows):
    """Dates and datetimes as the text SQLite stores (what `bind` makes),
    converted once per distinct value rather than by a call per value."""
    columns = [i for i, f in enumerate(fields) if isinstance(model._meta.fields[f], (pw.DateField, pw.DateTimeField))]
    if not columns:
        return rows
    cache = {}
    out = []
    for row in rows:
        row = list(row)
        for i in columns:
            value = row[i]
            if value is not None and not isinstance(value, str):
                text = cache.get(value)
                if text is None:
                    text = cache[value] = str(value)
                row[i] = text
        out.append(row)
    return out


def fetch_in(sql, keys, before=()):
    """Rows of `sql`, whose `{keys}` is an IN list, over `keys` in chunks.

    `{p}` in `sql` is the driver's parameter mark, for the `before` values.
    """
    out = []
    p = param()
    for chunk in padded_key_chunks(set(keys)):
        cursor = database.execute_sql(sql.format(keys=placeholders(len(chunk)), p=p), list(before) + chunk)
        out.extend(cursor.fetchall())
    return out


def execute_in(sql, keys, before=()):
    """Run `sql`, whose `{keys}` is an IN list, over `keys` in chunks (`{p}`: as in `fetch_in`)."""
    p = param()
    for chunk in padded_key_chunks(set(keys)):
        database.execute_sql(sql.format(keys=placeholders(len(chunk)), p=p), list(before) + chunk)


def same_value(stored, value):
    """Whether a value as the driver returned it equals a Python value."""
    if stored is None or value is None:
        return stored is None and value is None
    if isinstance(value, bool):
        return bool(stored) == value
    if isinstance(value, (int, decimal.Decimal)) and not isinstance(stored, str):
        return decimal.Decimal(str(stored)) == value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return str(stored) == str(value)
    return stored == value


# --- staging tables for bulk loads ---------------------------------------------


def create_temporary_as(name, select):
    """A TEMPORARY TABLE `name` made by `CREATE ... AS select` (its columns
    take the types of the select's, so a `SELECT ... FROM real WHERE 1 = 0`
    copies a real table's column types). Replaces one this connection left."""
    database.execute_sql(f"DROP TABLE IF EXISTS {_temporary(name)}")
    database.execute_sql(f"CREATE TEMPORARY TABLE {name} AS {select}")
    return name


def drop_temporary(name):
    """Drop the temporary table `name` if this connection has it."""
    with contextlib.suppress(pw.DatabaseError):
        database.execute_sql(f"DROP TABLE IF EXISTS {_temporary(name)}")


def rename_temporary(name, new_name):
    """Rename this connection's temporary table `name` to `new_name`."""
    database.execute_sql(f"ALTER TABLE {_temporary(name)} RENAME TO {new_name}")


def copy_rows(table, columns, rows):
    """Append `rows` (tuples in `columns` order) to `table` as fast as the
    driver allows: PostgreSQL's COPY FROM STDIN, SQLite's executemany in one
    transaction (dates and datetimes become the text SQLite stores through
    the adapters webapp/db.py registers)."""
    if not rows:
        return
    cols = ", ".join(q(c) for c in columns)
    if is_postgres():
        with database.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    with database.atomic():
        database.cursor().executemany(
            f"INSERT INTO {table} ({cols}) VALUES ({placeholders(len(columns))})",
            rows,
        )
