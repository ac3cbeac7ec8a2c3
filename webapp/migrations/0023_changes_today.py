"""The home page's "changes today" reads run totals, not the log (issue 21).

A scheduled full run at 1,000,000 customers logs 500,000 rows in one day;
counting them per segment on the (segment_id, at) index took 1.25 s of every
home page on PostgreSQL. A run already stores how many entered and exited
(`segment_run.entered`/`exited`, written in the transaction that logs the
rows), so today's figures are the sums over today's finished runs plus a count
of the rows no run wrote (real-time re-checks, manual changes, list imports):
those are found through a partial index that holds only them.
"""


def up(migrator, db):
    db.execute_sql('CREATE INDEX segment_run_segment_at ON segment_run (segment_id, "at")')
    db.execute_sql(
        'CREATE INDEX segment_change_without_run ON segment_change (segment_id, change, "at") WHERE run_id IS NULL'
    )
