"""PostgreSQL: a full run's log rows go into three indexes, not five (issue 19).

A first full run in which 586,000 of the 1,000,000 demo customers enter logs
586,000 rows; each index of `segment_change` is one more B-tree insert and
WAL record per row. Measured on the demo with 1.2 million log rows, the same
rows inserted with one index dropped at a time (backend CPU, rolled back):
(customer_id, "at") 0.6-0.7 s, the most of the five (a first run's customers
land all over it), `run_id` 0.3-0.5 s, each of the others 0.3-0.5 s; the heap
alone 0.7-0.8 s. These two go:

- (customer_id, "at") served a customer's card history and the cascade of a
  customer delete. Both now reach the rows through (segment_id, customer_id,
  "at"), one probe per segment: the card already joins the segment, and the
  customer trigger below joins it too (a few hundred segments, each a probe,
  against a scattered insert per logged row).
- `run_id` served the clearing of a deleted run's id (the run trigger, and
  peewee's recursive delete of a segment). A run logs only its own segment's
  rows, so the trigger now looks for them by segment; `delete_segment`
  deletes the segment's log and runs before the recursive delete, whose
  UPDATE then finds no run to look for.

SQLite keeps both: its foreign keys cascade a deleted customer or run row by
row, each a look-up by that column, and a full run there already meets the
target.
"""

from peewee import PostgresqlDatabase

CUSTOMER_DELETED = (
    "LOCK TABLE segment_member IN SHARE ROW EXCLUSIVE MODE; "
    "DELETE FROM segment_member m USING gone WHERE m.customer_id = gone.id; "
    "DELETE FROM segment_change c USING gone, segment s WHERE c.segment_id = s.id AND c.customer_id = gone.id;"
)
RUN_DELETED = (
    "UPDATE segment_change c SET run_id = NULL FROM gone WHERE c.segment_id = gone.segment_id AND c.run_id = gone.id;"
)


def up(migrator, db):
    if not isinstance(db, PostgresqlDatabase):
        return
    for function, statements in (
        ("segmento_customer_deleted", CUSTOMER_DELETED),
        ("segmento_segment_run_deleted", RUN_DELETED),
    ):
        # the triggers (0022) stay; only what their functions run changes
        db.execute_sql(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {statements} RETURN NULL; END $$"
        )
    db.execute_sql("DROP INDEX IF EXISTS segmentchange_customer_id_at")
    db.execute_sql("DROP INDEX IF EXISTS segmentchange_run_id")
