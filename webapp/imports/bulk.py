"""The bulk import path: large files of customers, orders and order items.

The normal path writes a file batch by batch, each batch a transaction with
its own upserts, rollup refresh and change marks. Past a few hundred thousand
rows that per-batch work dominates. The bulk path does the same import in
two phases:

1. stage: the rows are read and parsed by the normal path's own code
   (`Importer._parse`, the kinds' cell parsers, the writers' row checks), so
   a bad row is rejected with the same line, column and message; the good
   ones are appended to TEMPORARY tables (PostgreSQL: COPY). Nothing real is
   written: a kill or a cancel here leaves the database as it was.
2. apply: one transaction of set-based statements from the staging tables:
   duplicate keys and unresolved references rejected, names (tags, shops,
   products, groups) created, rows inserted and updated, custom values and
   tags replaced where they differ, then the order rollup recomputed once for
   the customers touched (order items: their quantity moved by the file's
   difference) and the change marks written once (the real-time re-check
   picks them up after the commit). A kill leaves nothing half
   applied; running the file again is the same as running it once.

The result is the normal path's: the same rows, values, tags, rollup, change
marks, counters and rejected rows (tested side by side in
tests/imports/test_bulk.py). Rejected rows are kept in a staging table too
and written to the rejected-rows CSV after the commit, in line order; the
cells of a row rejected in the apply phase are read back from the file.
"""

import contextlib
import gc
import json
import os
import pickle
import signal
import traceback

from .. import rollups, settings
from ..db import database, is_postgres
from ..fields.service import value_row
from ..models import CUSTOM_COLUMNS, Customer, ImportRun, Order, utcnow
from ..segments import changes
from ..sql import bind, column, copy_rows, create_temporary_as, drop_temporary, q, rename_temporary
from .kinds import (
    CustomersWriter,
    OrderItemsWriter,
    OrdersWriter,
    duplicate_reason,
    no_customer_reason,
    no_order_reason,
)
from .reader import CsvStream, RecordError, read_header
from .service import Importer as NormalImporter
from .service import RejectedRows, Row, bulk_session, rejected_path_for, write_transaction

BULK_KINDS = ("customers", "orders", "order-items")
BULK_ROWS = 100_000  # files with at least this many rows take the bulk path by themselves
REBUILD_ROWS = 10_000  # fewer rows written than this: indexes are kept whatever the table's size
CACHE_KB = 24 * 1024  # SQLite's page cache (and sort memory) while a bulk import runs
CHUNK = 10_000  # rows staged at a time (and between progress reports)
REJECTED = "bulk_rejected"

REASONS = {
    "duplicate": lambda value, other: duplicate_reason("external_id", value, other),
    "no_customer": lambda value, other: no_customer_reason(value),
    "no_order": lambda value, other: no_order_reason(value),
}


def wanted(run, rows, bulk=None, threshold=BULK_ROWS):
    """Whether `run` takes the bulk path: chosen (`bulk` True/False, or the
    run's option), else by its row count."""
    if run.kind not in BULK_KINDS:
        return False
    chosen = bulk if bulk is not None else (run.options or {}).get("bulk")
    if chosen is not None:
        return bool(chosen)
    return rows >= threshold


def _op():
    return "IS DISTINCT FROM" if is_postgres() else "IS NOT"


def analyze(table):
    """PostgreSQL never analyzes temporary tables by itself: without
    statistics its plans for the joins below can be quadratic."""
    if is_postgres():
        sql(f"ANALYZE {table}")


def sql(text, params=()):
    return database.execute_sql(text, list(params))


def count(text, params=()):
    return sql(text, params).fetchone()[0] or 0


def secondary_indexes(table):
    """[(name, CREATE INDEX statement)] of `table`'s indexes that no constraint
    or upsert needs (not unique, not the primary key)."""
    if is_postgres():
        cursor = sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = %s AND indexdef NOT LIKE 'CREATE UNIQUE%%'",
            [table],
        )
    else:
        cursor = sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL "
            "AND sql NOT LIKE 'CREATE UNIQUE%'",
            [table],
        )
    return cursor.fetchall()


def foreign_keys(table):
    """[(name, definition)] of `table`'s foreign keys on PostgreSQL (SQLite's
    are switched off for the whole import instead: see bulk_session)."""
    if not is_postgres():
        return []
    return sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' "
        "AND conrelid = to_regclass(%s) ORDER BY conname",
        [table],
    ).fetchall()


@contextlib.contextmanager
def indexes_rebuilt(table, rows):
    """Inside the block, `table` has no secondary indexes and (PostgreSQL) no
    foreign keys when `rows` (the rows about to be written) are at least as
    many as it holds: building an index once from sorted data costs far less
    than a million random inserts into each, and checking a foreign key once
    for the whole table (one join, when it is added back) far less than one
    lookup per row (10 of the 15 s of inserting 1,000,000 orders). Every
    reference was looked up in the staging tables already. All are created
    again, as they were, at the end of the block, in the same transaction: a
    failure or a kill puts them back too."""
    if rows < REBUILD_ROWS or rows < count(f"SELECT COUNT(*) FROM {q(table)}"):
        yield
        return
    indexes, keys = secondary_indexes(table), foreign_keys(table)
    for name, _definition in keys:
        sql(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}")
    for name, _definition in indexes:
        sql(f"DROP INDEX {q(name)}")
    yield
    for _name, definition in indexes:
        sql(definition)
    for name, definition in keys:
        sql(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition}")


def create_index(table, cols):
    """An index of the staging table `table` on `cols`, named after them."""
    sql(f"CREATE INDEX {table}_{'_'.join(cols)} ON {table} ({', '.join(q(c) for c in cols)})")


class Load:
    """One kind's staging tables and set-based apply. `engine` is the
    Importer running the import (its parser, counters and rejections)."""

    tables = ()

    def __init__(self, engine):
        self.engine = engine
        self.buffers = {}
        self.columns = {}
        self.now = utcnow()

    # -- staging --

    def table(self, name, select, columns):
        create_temporary_as(name, select)
        self.buffers[name] = []
        self.columns[name] = columns

    def put(self, name, row):
        self.buffers[name].append(row)

    def flush(self):
        for name, rows in self.buffers.items():
            copy_rows(name, self.columns[name], rows)
            rows.clear()

    def drop(self):
        for name in list(self.columns) + list(self.tables) + [REJECTED, "bulk_next"]:
            drop_temporary(name)

    def header_name(self, target):
        return self.engine._where(0, self.engine.target_index.get(target))[1]

    def capture(self, row, target, reason):
        """Stands in for a writer's `reject` while staging: the reason is kept
        with the row, which is rejected in the apply phase unless it is a
        duplicate (the normal path looks for duplicates first)."""
        if row.values.get("_error") is None:
            row.values["_error"] = (self.header_name(target), reason)

    def index(self, table, *cols):
        create_index(table, cols)
        analyze(table)

    def temp(self, name, select):
        """A derived temporary table, with statistics for the planner."""
        create_temporary_as(name, select)
        analyze(name)

    def remake(self, name, select, *indexes):
        """Make the temporary table `name` again from `select` (which reads
        the old one), with `indexes` (tuples of columns): writing a new table
        costs a fraction of an UPDATE of every row (a new version of each
        row, and of each index entry; 7 of the 9.5 s of filling in the ids of
        1,000,000 new orders)."""
        create_temporary_as("bulk_next", select)
        drop_temporary(name)
        rename_temporary("bulk_next", name)
        for cols in indexes:
            create_index(name, cols)
        analyze(name)

    # -- apply helpers --

    def reject_from(self, select, params=()):
        """Reject the rows `select` gives as (line, col, reason, kind, value,
        other): a reason as text, or a kind of REASONS and its arguments."""
        cursor = sql(
            f'INSERT INTO {REJECTED} ("line", "seq", "col", "reason", "kind", "value", "other") '
            f"SELECT x.line, 0, x.col, x.reason, x.kind, x.value, x.other FROM ({select}) AS x",
            params,
        )
        n = max(cursor.rowcount, 0)
        self.engine.run.rows_rejected += n
        self.engine.run.rows_done += n
        return n

    def reject_duplicates(self, stage, key="external_id"):
        """Later rows of a key the file has already: rejected (the first stays)."""
        p = database.param
        self.temp("bulk_first", f'SELECT "{key}", MIN(line) AS line FROM {stage} GROUP BY "{key}"')
        self.index("bulk_first", key)
        if self.reject_from(
            f"SELECT s.line, {p} AS col, NULL AS reason, 'duplicate' AS kind, s.\"{key}\" AS value, f.line AS other "
            f'FROM {stage} s JOIN bulk_first f ON f."{key}" = s."{key}" WHERE s.line > f.line',
            [self.header_name(key)],
        ):
            sql(f'DELETE FROM {stage} WHERE line > (SELECT f.line FROM bulk_first f WHERE f."{key}" = {stage}."{key}")')
        drop_temporary("bulk_first")

    def stage_custom(self, row, custom):
        for target, field in custom:
            values = value_row(field, 0, row.values.get(target))
            if values is None:
                self.put("bulk_custom", (row.line, field.id, None, None, None, None, None))
            else:
                self.put(
                    "bulk_custom",
                    (
                        row.line,
                        field.id,
                        values["value_str"],
                        values["value_ci"],
                        values["value_num"],
                        values["value_date"],
                        values["value_bool"],
                    ),
                )

    def custom_table(self, custom):
        if custom:
            self.table(
                "bulk_custom",
                'SELECT 0 AS line, "field_id", "value_str", "value_ci", "value_num", "value_date", "value_bool" '
                'FROM "custom_value" WHERE 1 = 0',
                ["line", "field_id", "value_str", "value_ci", "value_num", "value_date", "value_bool"],
            )

    def apply_custom(self, custom, changed):
        """Replace the custom values that differ (bulk_match: line -> rid);
        the records whose values changed go into `changed` (a table of rid)."""
        if not custom:
            return
        self.index("bulk_custom", "line")
        op = _op()
        p = database.param
        self.temp(
            "bulk_cv",
            "SELECT s.field_id, m.rid, s.line FROM bulk_custom s JOIN bulk_match m ON m.line = s.line WHERE 1 = 0",
        )
        for _target, field in custom:
            col = q(CUSTOM_COLUMNS[field.type])
            sql(
                "INSERT INTO bulk_cv SELECT s.field_id, m.rid, s.line FROM bulk_custom s "
                "JOIN bulk_match m ON m.line = s.line "
                'LEFT JOIN "custom_value" v ON v."field_id" = s.field_id AND v."record_id" = m.rid '
                f"WHERE s.field_id = {p} AND ((v.field_id IS NULL AND s.{col} IS NOT NULL) "
                f"OR (v.field_id IS NOT NULL AND v.{col} {op} s.{col}))",
                [field.id],
            )
        self.index("bulk_cv", "field_id", "rid")
        sql(
            'DELETE FROM "custom_value" WHERE EXISTS (SELECT 1 FROM bulk_cv c '
            'WHERE c.field_id = "custom_value"."field_id" AND c.rid = "custom_value"."record_id")'
        )
        with indexes_rebuilt("custom_value", count("SELECT COUNT(*) FROM bulk_cv")):
            sql(
                'INSERT INTO "custom_value" ("field_id", "record_id", "value_str", "value_ci", "value_num", '
                '"value_date", "value_bool") SELECT s.field_id, c.rid, s.value_str, s.value_ci, s.value_num, '
                "s.value_date, s.value_bool FROM bulk_cv c JOIN bulk_custom s ON s.line = c.line "
                "AND s.field_id = c.field_id WHERE s.value_str IS NOT NULL OR s.value_num IS NOT NULL "
                "OR s.value_date IS NOT NULL OR s.value_bool IS NOT NULL ORDER BY c.line, c.field_id"
            )
        sql(f"INSERT INTO {changed} SELECT DISTINCT rid FROM bulk_cv")
        analyze(changed)
        drop_temporary("bulk_cv")

    def refresh_rollup(self, customers):
        """The order rollup of the customers `customers` selects, recomputed."""
        with indexes_rebuilt("customer_order_stats", count(f"SELECT COUNT(*) FROM ({customers}) AS x")):
            rollups.refresh_order_stats_from(customers)

    def mark(self, select):
        changes.mark_changed_from(select, at=self.now)

    def names(self, model, stage, name_col, ci_col, staged_only=False):
        """Create the named rows (tags, shops) the staged rows name and the
        table lacks, in the order the file first names them, with the name
        as first written (what the normal path's NameCache does). The rows
        of `stage` that count are those of bulk_match, or (`staged_only`:
        the stage's rejected rows are deleted already) all of them."""
        table = q(model._meta.table_name)
        matched = "" if staged_only else "JOIN bulk_match m ON m.line = u.line "
        sql(
            f'INSERT INTO {table} ("name", "name_ci") SELECT t.{name_col}, t.{ci_col} FROM {stage} t '
            f"JOIN (SELECT u.{ci_col} AS ci, MIN(u.line) AS line FROM {stage} u "
            f"{matched}WHERE u.{ci_col} IS NOT NULL GROUP BY u.{ci_col}) f "
            f"ON f.ci = t.{ci_col} AND f.line = t.line "
            f'WHERE NOT EXISTS (SELECT 1 FROM {table} g WHERE g."name_ci" = t.{ci_col}) '
            f"ORDER BY t.line" + (", t.pos" if stage == "bulk_tag" else "")
        )


class CustomersLoad(Load):
    tables = ("bulk_match", "bulk_changed", "bulk_want")

    def __init__(self, engine):
        super().__init__(engine)
        writer = self.writer = CustomersWriter(engine)
        writer.reject = self.capture
        self.custom = writer.custom
        self.fields = writer.fields[:-1]  # all but updated_at (set when applied)
        self.cols = [column(Customer, f) for f in self.fields]
        select = ", ".join(f"c.{q(c)}" for c in self.cols)
        self.table(
            "bulk_customer",
            f"SELECT 0 AS line, CAST(NULL AS TEXT) AS err_col, CAST(NULL AS TEXT) AS err_reason, {select} "
            'FROM "customer" c WHERE 1 = 0',
            ["line", "err_col", "err_reason"] + self.cols,
        )
        if writer.tags:
            self.table(
                "bulk_tag",
                'SELECT 0 AS line, 0 AS pos, t."name", t."name_ci" FROM "tag" t WHERE 1 = 0',
                ["line", "pos", "name", "name_ci"],
            )
        self.custom_table(self.custom)

    def add(self, row):
        writer = self.writer
        rows = [row]
        if "manager" in writer.core:
            writer.resolve_manager(rows, writer.users)
        if "phone" in writer.core and "country" in writer.core and row.values.get("_error") is None:
            writer.phones_by_country(rows)
        data = writer.row_data(row.values)
        error = row.values.get("_error") or (None, None)
        self.put("bulk_customer", (row.line, *error) + tuple(data.get(f) for f in self.fields))
        if writer.tags:
            for pos, name in enumerate(row.values["tags"]):
                self.put("bulk_tag", (row.line, pos, name, fold_name(name)))
        self.stage_custom(row, self.custom)

    def apply(self):
        writer, op = self.writer, _op()
        self.index("bulk_customer", "external_id")
        self.index("bulk_customer", "line")
        self.reject_duplicates("bulk_customer")
        if self.reject_from(
            "SELECT line, err_col AS col, err_reason AS reason, NULL AS kind, NULL AS value, 0 AS other "
            "FROM bulk_customer WHERE err_reason IS NOT NULL"
        ):
            sql("DELETE FROM bulk_customer WHERE err_reason IS NOT NULL")

        differs = []
        for f in writer.compare:
            c = q(column(Customer, f))
            if f == "created_at":
                differs.append(f"c.{c} {op} COALESCE(s.{c}, c.{c})")
            else:
                differs.append(f"c.{c} {op} s.{c}")
        self.temp(
            "bulk_match",
            "SELECT s.line, c.id AS rid, CASE WHEN c.id IS NULL THEN 0 "
            f"WHEN {' OR '.join(differs) or '1 = 0'} THEN 2 ELSE 1 END AS state "
            'FROM bulk_customer s LEFT JOIN "customer" c ON c."external_id" = s."external_id"',
        )
        self.index("bulk_match", "line")
        now = bind(self.now)
        cols = [c for c in self.cols if c != "created_at"]
        with indexes_rebuilt("customer", count("SELECT COUNT(*) FROM bulk_match WHERE state <> 1")):
            self.write_customers(cols, now)
        self.fill_ids()
        return self.apply_links()

    def write_customers(self, cols, now):
        writer, p = self.writer, database.param
        sql(
            f'INSERT INTO "customer" ({", ".join(q(c) for c in cols)}, "created_at", "updated_at") '
            f'SELECT {", ".join("s." + q(c) for c in cols)}, COALESCE(s."created_at", {p}), {p} '
            "FROM bulk_customer s JOIN bulk_match m ON m.line = s.line WHERE m.state = 0 ORDER BY s.line",
            [now, now],
        )
        analyze('"customer"')  # its statistics may say empty: the UPDATE below then ran 27 minutes
        if writer.compare:
            plain = [f for f in writer.update if f not in ("updated_at", "created_at")]
            sets = [f"{q(column(Customer, f))} = x.{q(column(Customer, f))}" for f in plain]
            if "created_at" in writer.update:
                sets.append('"created_at" = COALESCE(x."created_at", "customer"."created_at")')
            sets.append(f'"updated_at" = {p}')
            sql(
                f'UPDATE "customer" SET {", ".join(sets)} FROM (SELECT m.rid, s.* FROM bulk_match m '
                'JOIN bulk_customer s ON s.line = m.line WHERE m.state = 2) AS x WHERE "customer"."id" = x.rid',
                [now],
            )

    def fill_ids(self):
        """Every staged row's customer id, the new ones' included."""
        self.remake(
            "bulk_match",
            'SELECT m.line, c."id" AS rid, m.state FROM bulk_match m JOIN bulk_customer s ON s.line = m.line '
            'JOIN "customer" c ON c."external_id" = s."external_id"',
            ("line",),
            ("rid",),
        )

    def apply_links(self):
        """Tags and custom values, then the counts and the change marks."""
        writer = self.writer
        key = "BIGINT" if is_postgres() else "INTEGER"
        self.temp("bulk_changed", f"SELECT CAST(NULL AS {key}) AS rid WHERE 1 = 0")
        sql("INSERT INTO bulk_changed SELECT rid FROM bulk_match WHERE state = 2")
        analyze("bulk_changed")
        if writer.tags:
            self.apply_tags()
        self.apply_custom(self.custom, "bulk_changed")
        new = count("SELECT COUNT(*) FROM bulk_match WHERE state = 0")
        updated = count(
            "SELECT COUNT(DISTINCT c.rid) FROM bulk_changed c JOIN bulk_match m ON m.rid = c.rid WHERE m.state <> 0"
        )
        total = count("SELECT COUNT(*) FROM bulk_match")
        self.mark("SELECT rid AS cid FROM bulk_match WHERE state = 0 UNION SELECT rid AS cid FROM bulk_changed")
        return new, updated, total - new - updated

    def apply_tags(self):
        self.index("bulk_tag", "line")
        self.names(self.writer.tags.model, "bulk_tag", "name", "name_ci")
        self.temp(
            "bulk_want",
            'SELECT m.rid, g."id" AS tag_id FROM bulk_tag t JOIN bulk_match m ON m.line = t.line '
            'JOIN "tag" g ON g."name_ci" = t.name_ci',
        )
        self.index("bulk_want", "rid", "tag_id")
        sql(
            "INSERT INTO bulk_changed SELECT w.rid FROM bulk_want w WHERE NOT EXISTS (SELECT 1 FROM "
            '"customer_tag" ct WHERE ct."customer_id" = w.rid AND ct."tag_id" = w.tag_id) '
            'UNION SELECT ct."customer_id" FROM "customer_tag" ct JOIN bulk_match m ON m.rid = ct."customer_id" '
            'WHERE NOT EXISTS (SELECT 1 FROM bulk_want w WHERE w.rid = ct."customer_id" AND w.tag_id = ct."tag_id")'
        )
        sql(
            'DELETE FROM "customer_tag" WHERE "customer_id" IN (SELECT rid FROM bulk_match) AND NOT EXISTS '
            '(SELECT 1 FROM bulk_want w WHERE w.rid = "customer_tag"."customer_id" AND w.tag_id = "customer_tag"."tag_id")'
        )
        with indexes_rebuilt("customer_tag", count("SELECT COUNT(*) FROM bulk_want")):
            sql(
                'INSERT INTO "customer_tag" ("customer_id", "tag_id") SELECT DISTINCT w.rid, w.tag_id FROM bulk_want w '
                'WHERE NOT EXISTS (SELECT 1 FROM "customer_tag" ct WHERE ct."customer_id" = w.rid AND ct."tag_id" = w.tag_id)'
            )


class OrdersLoad(Load):
    tables = ("bulk_match", "bulk_changed", "bulk_touched")

    def __init__(self, engine):
        super().__init__(engine)
        writer = self.writer = OrdersWriter(engine)
        self.custom = writer.custom
        self.table(
            "bulk_order",
            'SELECT 0 AS line, o."external_id", c."external_id" AS customer_external_id, o."ordered_at", '
            'o."status", o."status_ci", s."name" AS shop, s."name_ci" AS shop_ci, o."total_cents" '
            'FROM "orders" o, "customer" c, "shop" s WHERE 1 = 0',
            [
                "line",
                "external_id",
                "customer_external_id",
                "ordered_at",
                "status",
                "status_ci",
                "shop",
                "shop_ci",
                "total_cents",
            ],
        )
        self.custom_table(self.custom)

    def add(self, row):
        v = row.values
        shop = v.get("shop")
        self.put(
            "bulk_order",
            (
                row.line,
                v["external_id"],
                v["customer_external_id"],
                v["ordered_at"],
                v.get("status"),
                fold_name(v.get("status")),
                shop,
                fold_name(shop),
                v.get("total") or 0,
            ),
        )
        self.stage_custom(row, self.custom)

    def apply(self):
        writer, op, p = self.writer, _op(), database.param
        mapped = writer.mapped
        self.index("bulk_order", "external_id")
        self.index("bulk_order", "line")
        self.reject_duplicates("bulk_order")
        if self.reject_from(
            f"SELECT s.line, {p} AS col, NULL AS reason, 'no_customer' AS kind, s.customer_external_id AS value, 0 AS other "
            'FROM bulk_order s WHERE NOT EXISTS (SELECT 1 FROM "customer" c '
            'WHERE c."external_id" = s.customer_external_id)',
            [self.header_name("customer_external_id")],
        ):
            sql(
                'DELETE FROM bulk_order WHERE NOT EXISTS (SELECT 1 FROM "customer" c '
                'WHERE c."external_id" = bulk_order.customer_external_id)'
            )
        if "shop" in mapped:
            self.names(writer.shops.model, "bulk_order", "shop", "shop_ci", staged_only=True)
        exprs = {
            "customer": ('"customer_id"', "c.id"),
            "ordered_at": ('"ordered_at"', "s.ordered_at"),
            "status": ('"status"', "s.status"),
            "status_ci": ('"status_ci"', "s.status_ci"),
            "shop": ('"shop_id"', "sh.id"),
            "total_cents": ('"total_cents"', "s.total_cents"),
        }
        differs = [f"o.{exprs[f][0]} {op} {exprs[f][1]}" for f in writer.compare]
        self.temp(
            "bulk_match",
            "SELECT s.line, o.id AS rid, c.id AS cid, o.customer_id AS old_cid, "
            + ("sh.id" if "shop" in mapped else "CAST(NULL AS BIGINT)")
            + " AS shop_id, CASE WHEN o.id IS NULL THEN 0 "
            f"WHEN {' OR '.join(differs) or '1 = 0'} THEN 2 ELSE 1 END AS state "
            'FROM bulk_order s JOIN "customer" c ON c."external_id" = s.customer_external_id '
            + ('LEFT JOIN "shop" sh ON sh."name_ci" = s.shop_ci ' if "shop" in mapped else "")
            + 'LEFT JOIN "orders" o ON o."external_id" = s."external_id"',
        )
        self.index("bulk_match", "line")
        values = {
            "external_id": "x.external_id",
            "customer": "x.cid",
            "ordered_at": "x.ordered_at",
            "status": "x.status",
            "status_ci": "x.status_ci",
            "shop": "x.shop_id",
            "total_cents": "x.total_cents",
        }
        source = "(SELECT m.rid, m.cid, m.shop_id, m.state, s.* FROM bulk_match m JOIN bulk_order s ON s.line = m.line)"
        cols = [q(column(Order, f)) for f in writer.fields]
        with indexes_rebuilt("orders", count("SELECT COUNT(*) FROM bulk_match WHERE state <> 1")):
            self.write_orders(cols, values, source)
        return self.apply_links()

    def write_orders(self, cols, values, source):
        writer = self.writer
        sql(
            f'INSERT INTO "orders" ({", ".join(cols)}) SELECT {", ".join(values[f] for f in writer.fields)} '
            f"FROM {source} AS x WHERE x.state = 0 ORDER BY x.line"
        )
        analyze('"orders"')
        if writer.update:
            sets = ", ".join(f"{q(column(Order, f))} = {values[f]}" for f in writer.update)
            sql(f'UPDATE "orders" SET {sets} FROM {source} AS x WHERE x.state = 2 AND "orders"."id" = x.rid')

    def apply_links(self):
        """Ids of the new orders, custom values, the rollup, counts and change marks."""
        self.remake(
            "bulk_match",
            'SELECT m.line, o."id" AS rid, m.cid, m.old_cid, m.shop_id, m.state FROM bulk_match m '
            'JOIN bulk_order s ON s.line = m.line JOIN "orders" o ON o."external_id" = s."external_id"',
            ("line",),
            ("rid",),
        )
        key = "BIGINT" if is_postgres() else "INTEGER"
        self.temp("bulk_changed", f"SELECT CAST(NULL AS {key}) AS rid WHERE 1 = 0")
        self.apply_custom(self.custom, "bulk_changed")
        self.temp(
            "bulk_touched",
            "SELECT cid FROM bulk_match WHERE state <> 1 UNION SELECT old_cid FROM bulk_match WHERE state = 2",
        )
        self.refresh_rollup("SELECT cid FROM bulk_touched")
        new = count("SELECT COUNT(*) FROM bulk_match WHERE state = 0")
        updated = count(
            "SELECT COUNT(*) FROM bulk_match m WHERE m.state = 2 OR (m.state = 1 AND m.rid IN "
            "(SELECT rid FROM bulk_changed))"
        )
        total = count("SELECT COUNT(*) FROM bulk_match")
        self.mark(
            "SELECT cid FROM bulk_touched UNION SELECT m.cid FROM bulk_match m "
            "WHERE m.rid IN (SELECT rid FROM bulk_changed)"
        )
        return new, updated, total - new - updated


class OrderItemsLoad(Load):
    tables = ("bulk_match", "bulk_group", "bulk_product", "bulk_changed", "bulk_touched", "bulk_quantity")

    def __init__(self, engine):
        super().__init__(engine)
        self.writer = OrderItemsWriter(engine)
        self.table(
            "bulk_item",
            'SELECT 0 AS line, o."external_id" AS order_external_id, p."sku", p."sku_ci", p."name" AS product_name, '
            'g."path" AS product_group, g."path_ci" AS group_ci, i."quantity", i."price_cents" '
            'FROM "order_item" i, "orders" o, "product" p, "product_group" g WHERE 1 = 0',
            [
                "line",
                "order_external_id",
                "sku",
                "sku_ci",
                "product_name",
                "product_group",
                "group_ci",
                "quantity",
                "price_cents",
            ],
        )

    def add(self, row):
        v = row.values
        self.put(
            "bulk_item",
            (
                row.line,
                v["order_external_id"],
                v["sku"],
                fold_name(v["sku"]),
                v.get("product_name"),
                v.get("product_group"),
                fold_name(v.get("product_group")),
                1 if v.get("quantity") is None else v["quantity"],
                v.get("price") or 0,
            ),
        )

    def apply(self):
        p = database.param
        op = _op()
        self.index("bulk_item", "order_external_id")
        self.index("bulk_item", "line")
        if self.reject_from(
            f"SELECT s.line, {p} AS col, NULL AS reason, 'no_order' AS kind, s.order_external_id AS value, 0 AS other "
            'FROM bulk_item s WHERE NOT EXISTS (SELECT 1 FROM "orders" o WHERE o."external_id" = s.order_external_id)',
            [self.header_name("order_external_id")],
        ):
            sql(
                'DELETE FROM bulk_item WHERE NOT EXISTS (SELECT 1 FROM "orders" o '
                'WHERE o."external_id" = bulk_item.order_external_id)'
            )
        # Groups are few: created along their paths by the normal path's own code.
        paths = [
            path
            for path, _line in sql(
                "SELECT product_group, MIN(line) AS first FROM bulk_item WHERE product_group IS NOT NULL "
                "GROUP BY group_ci, product_group ORDER BY first"
            ).fetchall()
        ]
        key = "BIGINT" if is_postgres() else "INTEGER"
        create_temporary_as(
            "bulk_group", f"SELECT CAST(NULL AS TEXT) AS path_ci, CAST(NULL AS {key}) AS gid WHERE 1 = 0"
        )
        groups = self.writer.resolve_groups(paths) if paths else {}
        copy_rows("bulk_group", ["path_ci", "gid"], list(groups.items()))
        self.index("bulk_item", "sku_ci", "line")
        self.temp(
            "bulk_product",
            "SELECT f.sku_ci, f.line, (SELECT i.sku FROM bulk_item i WHERE i.line = f.line) AS sku, "
            "(SELECT i.product_name FROM bulk_item i WHERE i.sku_ci = f.sku_ci AND i.product_name IS NOT NULL "
            "ORDER BY i.line DESC LIMIT 1) AS name, "
            "(SELECT g.gid FROM bulk_item i JOIN bulk_group g ON g.path_ci = i.group_ci WHERE i.sku_ci = f.sku_ci "
            "ORDER BY i.line DESC LIMIT 1) AS gid, "
            'pr."id" AS pid, pr."name" AS old_name, pr."group_id" AS old_gid '
            "FROM (SELECT sku_ci, MIN(line) AS line FROM bulk_item GROUP BY sku_ci) f "
            'LEFT JOIN "product" pr ON pr."sku_ci" = f.sku_ci',
        )
        # Customers who bought a product that moves to another group match other group filters.
        self.temp(
            "bulk_touched",
            'SELECT DISTINCT o."customer_id" AS cid FROM "order_item" i JOIN "orders" o ON o."id" = i."order_id" '
            f'WHERE i."product_id" IN (SELECT pid FROM bulk_product WHERE gid IS NOT NULL AND gid {op} old_gid '
            "AND pid IS NOT NULL)",
        )
        sql(
            'UPDATE "product" SET "name" = COALESCE(x.name, "product"."name"), '
            '"group_id" = COALESCE(x.gid, "product"."group_id") FROM bulk_product x '
            f'WHERE x.pid = "product"."id" AND ((x.name IS NOT NULL AND x.name {op} x.old_name) '
            f"OR (x.gid IS NOT NULL AND x.gid {op} x.old_gid))"
        )
        sql(
            'INSERT INTO "product" ("sku", "sku_ci", "name", "group_id") '
            "SELECT sku, sku_ci, COALESCE(name, ''), gid FROM bulk_product WHERE pid IS NULL ORDER BY line"
        )
        sql(
            'UPDATE bulk_product SET pid = pr."id" FROM "product" pr '
            'WHERE pr."sku_ci" = bulk_product.sku_ci AND bulk_product.pid IS NULL'
        )
        self.index("bulk_product", "sku_ci")
        # Each order of the file: its id, customer, first line, and whether its items differ.
        self.temp(
            "bulk_match",
            'SELECT o."id" AS oid, o."customer_id" AS cid, MIN(s.line) AS line, COUNT(*) AS n, SUM(s.quantity) AS qty '
            'FROM bulk_item s JOIN "orders" o ON o."external_id" = s.order_external_id GROUP BY o."id", o."customer_id"',
        )
        self.index("bulk_match", "oid")
        self.temp(
            "bulk_changed",
            "SELECT d.oid FROM (SELECT k.oid, k.pid, k.quantity, k.price_cents, SUM(k.n) AS n FROM ("
            'SELECT o."id" AS oid, pr.pid, s.quantity, s.price_cents, 1 AS n FROM bulk_item s '
            'JOIN "orders" o ON o."external_id" = s.order_external_id JOIN bulk_product pr ON pr.sku_ci = s.sku_ci '
            'UNION ALL SELECT i."order_id", i."product_id", i."quantity", i."price_cents", -1 FROM "order_item" i '
            'WHERE i."order_id" IN (SELECT oid FROM bulk_match)) AS k '
            "GROUP BY k.oid, k.pid, k.quantity, k.price_cents HAVING SUM(k.n) <> 0) AS d GROUP BY d.oid",
        )
        self.index("bulk_changed", "oid")
        # state: 1 unchanged, 2 replaced (it had items), 0 new items. A join (bulk_changed
        # has one row per order), not NOT IN: PostgreSQL hashes a NOT IN list only when it
        # fits in work_mem, and rescanned 1,000,000 changed orders for each of 1,000,000
        # rows otherwise; nor a NOT EXISTS per row: 1,000,000 index probes, 4 s.
        self.remake(
            "bulk_match",
            "SELECT m.oid, m.cid, m.line, m.n, m.qty, CASE WHEN c.oid IS NULL THEN 1 "
            'WHEN EXISTS (SELECT 1 FROM "order_item" i WHERE i."order_id" = m.oid) THEN 2 ELSE 0 END AS state '
            "FROM bulk_match m LEFT JOIN bulk_changed c ON c.oid = m.oid",
            ("oid",),
        )
        # Of the order rollup, items change the quantity alone: each customer's
        # moves by its changed orders' quantities in the file less those of the
        # items they had (read here, before they are replaced). Recomputing
        # the touched customers' rows from all their orders and items instead
        # read the whole order_item table at 1,400,255 items (7 s of 35).
        # (The file's quantity of each order is summed with bulk_match; state 2
        # is an order that had items, state 0 one that had none.)
        self.temp(
            "bulk_quantity",
            "SELECT x.cid, SUM(x.quantity) AS delta FROM ("
            "SELECT m.cid, m.qty AS quantity FROM bulk_match m WHERE m.state <> 1 "
            'UNION ALL SELECT m.cid, -i."quantity" FROM bulk_match m JOIN "order_item" i ON i."order_id" = m.oid '
            "WHERE m.state = 2) AS x GROUP BY x.cid",
        )
        with indexes_rebuilt("order_item", count("SELECT SUM(n) FROM bulk_match WHERE state <> 1")):
            self.write_items()
        sql(
            'UPDATE "customer_order_stats" SET "quantity" = "customer_order_stats"."quantity" + d.delta '
            'FROM bulk_quantity d WHERE d.cid = "customer_order_stats"."customer_id" AND d.delta <> 0'
        )
        new = count("SELECT SUM(n) FROM bulk_match WHERE state = 0")
        updated = count("SELECT SUM(n) FROM bulk_match WHERE state = 2")
        unchanged = count("SELECT SUM(n) FROM bulk_match WHERE state = 1")
        self.mark("SELECT cid FROM bulk_match WHERE state <> 1 UNION SELECT cid FROM bulk_touched")
        return new, updated, unchanged

    def write_items(self):
        sql('DELETE FROM "order_item" WHERE "order_id" IN (SELECT oid FROM bulk_changed)')
        sql(
            'INSERT INTO "order_item" ("order_id", "product_id", "quantity", "price_cents") '
            "SELECT m.oid, pr.pid, s.quantity, s.price_cents FROM bulk_item s "
            'JOIN "orders" o ON o."external_id" = s.order_external_id JOIN bulk_match m ON m.oid = o."id" '
            "JOIN bulk_product pr ON pr.sku_ci = s.sku_ci WHERE m.state <> 1 ORDER BY m.line, s.line"
        )
        analyze('"order_item"')


class Importer(NormalImporter):
    """The import engine with both paths: the bulk one for customers, orders
    and order items when chosen (`bulk` True, or the run's option) or when the
    file has `bulk_rows` rows or more; the normal one otherwise."""

    def __init__(self, run, imports_dir, *args, bulk=None, bulk_rows=None, **kwargs):
        super().__init__(run, imports_dir, *args, **kwargs)
        self.bulk = bulk
        self.bulk_rows = bulk_rows or BULK_ROWS

    def _import(self):
        if wanted(self.run, self.run.rows_total or 0, self.bulk, self.bulk_rows):
            load(self)
        else:
            super()._import()


LOADS = {"customers": CustomersLoad, "orders": OrdersLoad, "order-items": OrderItemsLoad}


def fold_name(value):
    from ..text import fold

    return fold(value)


def load(engine):
    """Run the import of `engine` (an Importer past its check) on the bulk path."""
    run = engine.run
    engine._setup_columns()
    engine.rejected = RejectedRows(rejected_path_for(run, engine.imports_dir), engine.header, run.delimiter)
    run.phase = "importing"
    engine.report["import_started_at"] = utcnow().isoformat()
    engine.report["bulk"] = True
    run.save(only=[ImportRun.phase, ImportRun.report])
    engine.on_progress(run)
    stage = LOADS[run.kind](engine)
    create_temporary_as(
        REJECTED,
        "SELECT 0 AS line, 0 AS seq, CAST(NULL AS TEXT) AS cells, CAST(NULL AS TEXT) AS col, "
        "CAST(NULL AS TEXT) AS reason, CAST(NULL AS TEXT) AS kind, CAST(NULL AS TEXT) AS value, 0 AS other "
        "WHERE 1 = 0",
    )
    cache = None
    if not is_postgres():
        # The apply phase's sorts and GROUP BYs each take up to the page cache's
        # size in memory before they spill to a file (at 1.4 M order items the
        # process grew from 175 to 310 MB with the app's 64 MB): smaller caches
        # here, for the main and the temporary (staging) database alike.
        cache = sql("PRAGMA main.cache_size").fetchone()[0]
        sql(f"PRAGMA main.cache_size = {-CACHE_KB}")
        sql(f"PRAGMA temp.cache_size = {-CACHE_KB}")
    try:
        with bulk_session():
            with _parsing(engine, stage) as chunks:
                for read, bytes_read in chunks:
                    _stage_chunk(engine, stage, read, bytes_read)
            run.rows_done = run.rows_rejected
            with write_transaction():
                counts = stage.apply()
                engine._count(counts, run.bytes_total)
        _write_rejected(engine)
    finally:
        stage.drop()
        if cache is not None:
            sql(f"PRAGMA main.cache_size = {int(cache)}")
    engine._finish("done")


def _parsed_chunks(engine, stage, share=(0, 1)):
    """Read and parse the file into `stage`'s buffers (the normal path's
    parsers and checks); yield (rows read, bytes read) after every CHUNK rows
    and once at the end. `share` (k, n): parse only the k-th of every n
    records (the others are read, not parsed)."""
    run = engine.run
    mine, every = share
    with CsvStream(run.file_path, run.encoding, run.delimiter, checked=engine.clean) as stream:
        read_header(stream)
        read = 0
        while True:
            try:
                start, end, cells = next(stream)
            except StopIteration:
                break
            except RecordError as exc:
                if read % every == mine:
                    engine._reject_record(exc)
            else:
                if read % every == mine:
                    row = engine._parse(Row(start, end, cells))
                    if row is not None:
                        stage.add(row)
            read += 1
            if read % CHUNK == 0:
                yield read, stream.bytes_read
        yield read, stream.bytes_read


def parsers():
    """How many child processes parse a bulk file beside the one writing it:
    the IMPORT_PARSERS setting, else one per core up to four; none on one
    core or where processes cannot fork."""
    if not hasattr(os, "fork"):
        return 0
    if settings.IMPORT_PARSERS is not None:
        return max(settings.IMPORT_PARSERS, 0)
    cores = os.cpu_count() or 1
    return min(cores, 4) if cores > 1 else 0


@contextlib.contextmanager
def _parsing(engine, stage):
    """The file's chunks, parsed (see `_parsed_chunks`).

    The parsing and checking of every cell is most of a bulk import's CPU
    (bench/RESULTS.md). With `parsers()` > 0 child processes parse the file
    while this process writes the staged rows: each child reads the whole
    file and parses its share of the records (every n-th), then sends each
    chunk's staged rows, rejections and count of rejected rows through a
    pipe; this process takes one chunk from each child in turn, so at most
    about a chunk per child is in flight and memory stays flat. The children
    get a copy of everything set up so far (columns, writers, custom fields,
    users) and never touch the database. They die with this process (a
    broken pipe, or the kill of the process group); if one dies first, the
    import fails before anything real was written, as a kill while staging
    would. The staged rows are the same; their order in the staging tables
    differs, and the apply phase orders by line wherever order matters."""
    n = parsers()
    if not n:
        yield _parsed_chunks(engine, stage)
        return
    children = []
    # Objects made so far stay out of the children's garbage collections, which
    # would otherwise write to (and so copy) every page holding one.
    gc.freeze()
    try:
        for k in range(n):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: parse, send, never return
                os.close(read_fd)
                for _pid, pipe in children:
                    pipe.close()
                _parse_in_child(engine, stage, (k, n), write_fd)
            os.close(write_fd)
            children.append((pid, os.fdopen(read_fd, "rb")))
        gc.unfreeze()  # (this process's own collections go on as before)
        yield _received_chunks(engine, stage, [pipe for _pid, pipe in children])
    finally:
        gc.unfreeze()
        for pid, pipe in children:
            pipe.close()  # a child still writing gets a broken pipe and ends
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _received_chunks(engine, stage, pipes):
    run = engine.run
    base = run.rows_rejected
    rejected = [base] * len(pipes)
    while True:
        ends = 0
        for k, pipe in enumerate(pipes):
            try:
                message = pickle.load(pipe)
            except EOFError:
                raise RuntimeError("a parsing process of the bulk import ended before the end of the file") from None
            if message[0] == "error":
                raise message[1]
            if message[0] == "end":
                ends += 1
                continue
            _, read, bytes_read, buffers, rejections, rejected[k] = message
            for name, rows in buffers.items():
                stage.buffers[name].extend(rows)
            engine.pending_rejections.extend(rejections)
        if ends:
            if ends < len(pipes):
                raise RuntimeError("the parsing processes of the bulk import disagree about the file's end")
            return
        run.rows_rejected = base + sum(n - base for n in rejected)
        yield read, bytes_read


def _parse_in_child(engine, stage, share, fd):
    status = 0
    try:
        # Any use of the database here would share the parent's connection.
        database.initialize(None)
        with os.fdopen(fd, "wb") as out:
            try:
                for read, bytes_read in _parsed_chunks(engine, stage, share):
                    # pickled as they are (dump serializes now), then emptied for the next chunk
                    message = (
                        "chunk",
                        read,
                        bytes_read,
                        stage.buffers,
                        engine.pending_rejections,
                        engine.run.rows_rejected,
                    )
                    pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
                    for rows in stage.buffers.values():
                        rows.clear()
                    engine.pending_rejections.clear()
                pickle.dump(("end",), out)
            except BrokenPipeError:
                raise
            except Exception as exc:  # the parent raises it as its own
                status = 1
                try:
                    pickle.dumps(exc)
                except Exception:
                    exc = RuntimeError("".join(traceback.format_exception(exc)))
                pickle.dump(("error", exc), out)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _stage_chunk(engine, stage, read, bytes_read):
    stage.flush()
    pending = engine.pending_rejections
    if pending:
        copy_rows(
            REJECTED,
            ["line", "seq", "cells", "col", "reason"],
            [
                (entry["line"], 0, json.dumps(cells), entry["column"] or None, entry["reason"])
                for cells, _message, entry in pending
            ],
        )
        pending.clear()
    run = engine.run
    run.rows_done, run.bytes_done = read, bytes_read
    ImportRun.update(rows_done=read, bytes_done=bytes_read).where(ImportRun.id == run.id).execute()
    engine._check_cancel()
    engine.on_progress(run)


def _write_rejected(engine):
    """The rejected rows, in line order, into the rejected-rows CSV and the
    report (the normal path's own writer); cells of rows rejected while
    applying are read back from the file."""
    run = engine.run
    p = database.param
    stream = None
    after = 0
    try:
        while True:
            rows = sql(
                f"SELECT line, cells, col, reason, kind, value, other FROM {REJECTED} WHERE line > {p} "
                "ORDER BY line LIMIT 5000",
                [after],
            ).fetchall()
            if not rows:
                break
            for line, cells, col, reason, kind, value, other in rows:
                if reason is None:
                    reason = REASONS[kind](value, other)
                if cells is None:
                    if stream is None:
                        stream = CsvStream(run.file_path, run.encoding, run.delimiter, checked=engine.clean)
                        read_header(stream)
                    cells = _cells_at(stream, line)
                else:
                    cells = json.loads(cells)
                engine._record_rejection(cells, line, col, reason)
            after = rows[-1][0]
            engine._flush_rejections()
    finally:
        if stream is not None:
            stream.close()


def _cells_at(stream, line):
    while True:
        try:
            start, _end, cells = next(stream)
        except RecordError:
            continue
        except StopIteration:
            return []
        if start == line:
            return cells
