"""Set-based SQL for bulk writes, with parameters and without an ORM layer.

Peewee builds a node per value, which costs more than the database work for
batches of thousands of rows; these helpers write the statement text once per
shape and bind the values. Table and column names come from model metadata
(never from files); every value is a bound parameter.

Values come back as the driver returns them (SQLite: dates and datetimes as
text, booleans as 0/1), so callers compare them through `same_value`.
"""
import datetime
import decimal

import peewee as pw

from ..db import database, is_postgres

MAX_PARAMS = 30000  # bound parameters per statement (SQLite allows 32766)
# Statements come in few shapes (row and key counts are powers of two), so the
# drivers' statement caches (SQLite keeps 128 prepared statements, each of
# megabytes when it has thousands of parameters) stay small and are reused.
MAX_ROWS = 1024
MAX_KEYS = 512


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
        yield items[start:start + size]
        start += size


def padded_key_chunks(keys):
    """Keys in chunks of at most MAX_KEYS, each padded (repeating its last key:
    harmless in an IN list) to a power of two."""
    keys = list(keys)
    for start in range(0, len(keys), MAX_KEYS):
        chunk = keys[start:start + MAX_KEYS]
        size = 1
        while size < len(chunk):
            size *= 2
        yield chunk + [chunk[-1]] * (size - len(chunk))


def q(name):
    return '"%s"' % name


def column(model, field):
    return model._meta.fields[field].column_name


def placeholders(n):
    return ", ".join([database.obj.param] * n)


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
            differs = " OR ".join(f"{q(table)}.{q(column(model, f))} {op} excluded.{q(column(model, f))}"
                                  for f in compare)
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
    """Dates and datetimes as the text SQLite stores (what peewee's adapters
    make: str()), converted once per distinct value rather than by an adapter
    call per value."""
    columns = [i for i, f in enumerate(fields)
               if isinstance(model._meta.fields[f], (pw.DateField, pw.DateTimeField))]
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
    p = database.obj.param
    for chunk in padded_key_chunks(set(keys)):
        cursor = database.execute_sql(sql.format(keys=placeholders(len(chunk)), p=p), list(before) + chunk)
        out.extend(cursor.fetchall())
    return out


def execute_in(sql, keys, before=()):
    p = database.obj.param
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
