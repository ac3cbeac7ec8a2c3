"""PostgreSQL: membership and log rows are no longer checked one by one (issue 19).

A first full run in which 585,000 customers enter inserts 585,000 rows into
`segment_member` and as many into `segment_change`. PostgreSQL checks a
foreign key with a trigger per inserted row (a look-up and a row lock of the
referenced customer or segment), and a non-superuser cannot skip it: on the
1,000,000-customer demo the six checks took 14 of the run's 20 s (EXPLAIN
ANALYZE: `segment_change` segment 2.3 s, customer 3.6 s, run 2.4 s, user
0.5 s; `segment_member` segment 2.5 s, customer 3.1 s), the inserts
themselves 4.9 s.

So on PostgreSQL these two tables lose their foreign-key constraints, and what
the constraints did on delete is done once per statement by triggers that
read the deleted rows as a set (transition tables): deleting customers or
segments deletes their memberships and log rows, deleting runs or users
clears `segment_change.run_id` / `user_id`. Every writer of these tables
writes ids it read in its own transaction; the races the row locks used to
close are closed once per transaction instead of once per row: a writer holds
its segment's row (FOR KEY SHARE, `sql.hold_segment`), so a segment delete
waits for it and then cleans what it wrote; a customer delete's trigger takes
`segment_member` in SHARE ROW EXCLUSIVE mode, which waits for runs and
re-checks under way (they take ROW EXCLUSIVE before they read,
`sql.lock_membership`) and holds new ones until the delete commits. (The
application deletes no customers; the trigger is for whoever does.)

On both databases the index on `segment_change.user_id` only holds the rows
that name a user (hand-made changes): it serves the clearing of a deleted
user's id, and a run's log rows, which name none, no longer go into it.

SQLite keeps its foreign keys: a full run there already skips their checks
(`sql.sqlite_foreign_keys_off`), and dropping them would rebuild both tables.
"""

from peewee import PostgresqlDatabase

TABLES = ("segment_member", "segment_change")

# (function, table whose deletes fire it, statement run with the deleted rows as "gone", table lock first)
CASCADES = (
    (
        "segmento_customer_deleted",
        "customer",
        "DELETE FROM segment_member m USING gone WHERE m.customer_id = gone.id; "
        "DELETE FROM segment_change c USING gone WHERE c.customer_id = gone.id;",
        True,
    ),
    (
        "segmento_segment_deleted",
        "segment",
        "DELETE FROM segment_member m USING gone WHERE m.segment_id = gone.id; "
        "DELETE FROM segment_change c USING gone WHERE c.segment_id = gone.id;",
        False,
    ),
    (
        "segmento_segment_run_deleted",
        "segment_run",
        "UPDATE segment_change c SET run_id = NULL FROM gone WHERE c.run_id = gone.id;",
        False,
    ),
    (
        "segmento_user_deleted",
        "app_user",
        "UPDATE segment_change c SET user_id = NULL FROM gone WHERE c.user_id = gone.id AND c.user_id IS NOT NULL;",
        False,
    ),
)


def up(migrator, db):
    # Both databases: only hand-made changes name a user; a run's 585,000 log rows
    # each added a NULL entry to this index (one B-tree insert and WAL record more).
    db.execute_sql("DROP INDEX IF EXISTS segment_change_user_id")
    db.execute_sql("CREATE INDEX segment_change_user_id ON segment_change (user_id) WHERE user_id IS NOT NULL")
    if not isinstance(db, PostgresqlDatabase):
        return
    for table in TABLES:
        constraints = db.execute_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", (table,)
        ).fetchall()
        for (name,) in constraints:
            db.execute_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for function, table, statements, lock in CASCADES:
        first = "LOCK TABLE segment_member IN SHARE ROW EXCLUSIVE MODE; " if lock else ""
        db.execute_sql(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {first}{statements} RETURN NULL; END $$"
        )
        db.execute_sql(f"DROP TRIGGER IF EXISTS {function} ON {table}")
        db.execute_sql(
            f"CREATE TRIGGER {function} AFTER DELETE ON {table} REFERENCING OLD TABLE AS gone "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
