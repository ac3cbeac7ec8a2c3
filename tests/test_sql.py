"""webapp.sql: the helpers every hand-written statement uses, on both databases."""

import datetime

import peewee as pw
import pytest

from webapp.db import database
from webapp.models import Customer, Segment, SegmentChange
from webapp.sql import bind, escape_percent, key_type, param, placeholders, q, temporary_table


def test_a_bound_datetime_finds_the_stored_one(db):
    """Raw SQL compares a bound datetime with what peewee stored (SQLite: text), microseconds or not."""
    customer = Customer.create(external_id="a")
    segment = Segment.create(code="s", name="S", definition={"version": 1, "match": "all", "blocks": []})
    for at in (datetime.datetime(2026, 3, 1, 9, 30), datetime.datetime(2026, 3, 1, 9, 30, 0, 250)):
        SegmentChange.create(segment=segment, customer=customer, change="entered", at=at)
        found = database.execute_sql(
            f'SELECT COUNT(*) FROM segment_change WHERE "at" = {param()}', [bind(at)]
        ).fetchone()[0]
        assert found == 1
    assert bind(datetime.date(2026, 3, 1)) in (datetime.date(2026, 3, 1), "2026-03-01")
    assert bind(None) is None and bind(5) == 5 and bind("x") == "x"


def test_placeholders_and_a_literal_percent(db):
    Customer.insert_many(
        [{"external_id": e, "email": m} for e, m in (("a", "a@example.com"), ("b", "not an address"), ("c", None))]
    ).execute()
    rows = database.execute_sql(
        f"SELECT external_id FROM customer WHERE external_id IN ({placeholders(3)}) "
        f"AND email LIKE '{escape_percent('%_@_%')}' ORDER BY external_id",
        ["a", "b", "c"],
    ).fetchall()
    assert rows == [("a",)]
    assert q("customer") == '"customer"'


def test_temporary_table_is_dropped_after_the_block(db):
    with database.atomic():
        with temporary_table("scratch", f"id {key_type()} PRIMARY KEY") as name:
            database.execute_sql(f"INSERT INTO {name} (id) VALUES ({param()})", [2**40])
            assert database.execute_sql(f"SELECT id FROM {name}").fetchall() == [(2**40,)]
        with pytest.raises(pw.DatabaseError):
            with database.atomic():  # a savepoint: PostgreSQL goes on after the error
                database.execute_sql("SELECT id FROM scratch")


def test_a_failing_block_raises_its_own_error(db):
    """Inside a PostgreSQL transaction a failed statement makes every later one fail until the
    rollback: the table's drop must not replace the block's error with that."""
    with pytest.raises(pw.DatabaseError, match="no_such_table"):
        with database.atomic():
            with temporary_table("scratch", f"id {key_type()} PRIMARY KEY"):
                database.execute_sql("SELECT id FROM no_such_table")
    with temporary_table("scratch", f"id {key_type()} PRIMARY KEY"):  # usable again: nothing left behind
        pass


def test_a_kept_table_stays_on_the_connection_and_starts_empty(db):
    for n in (1, 2):
        with database.atomic(), temporary_table("kept", f"id {key_type()} PRIMARY KEY", keep=True):
            assert database.execute_sql("SELECT COUNT(*) FROM kept").fetchone()[0] == 0
            database.execute_sql(f"INSERT INTO kept (id) VALUES ({param()})", [n])
        assert database.execute_sql("SELECT COUNT(*) FROM kept").fetchone()[0] == 1


def test_temporary_table_never_drops_a_real_table_of_the_same_name(db):
    database.execute_sql("CREATE TABLE scratch_real (id INTEGER)")
    try:
        database.execute_sql("INSERT INTO scratch_real (id) VALUES (7)")
        with temporary_table("scratch_real", "id INTEGER"):
            assert database.execute_sql("SELECT COUNT(*) FROM scratch_real").fetchone()[0] == 0  # the temporary one
        assert database.execute_sql("SELECT id FROM scratch_real").fetchall() == [(7,)]
    finally:
        database.execute_sql("DROP TABLE IF EXISTS scratch_real")
