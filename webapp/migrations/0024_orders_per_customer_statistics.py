"""PostgreSQL: the planner knows that orders have many customers (issue 21).

ANALYZE estimates the distinct values of a column from a sample of 30,000
rows, and for a column whose equal values sit together on disk (orders are
written customer by customer) it guesses far too few: on the
1,000,000-customer demo it put 95,119 customers on 10,000,000 orders, where
820,885 have orders. Planning "customers with at least 2 orders in the last
180 days" (an Orders block: GROUP BY customer_id HAVING COUNT(*) >= 2) for
95,119 groups, PostgreSQL chose a parallel sequential scan of the whole table
into hash tables that spilled to disk, then a sort: 1.95 s with three
processes, about 4 s of server CPU for one builder preview. Told that there
are many customers, it reads the (customer_id, ordered_at, total_cents) index
in customer order and counts each customer's orders as it goes: 0.78 s in
one process, a fifth of the CPU.

The number is a ratio (distinct customers per order row), so it holds as the
table grows. 0.2 is five orders a customer: the demo has twelve, a shop two
to five; any figure within a few times of the truth gives the same plans,
95,119 was 8.6 times too few. SQLite has no such estimate.
"""

from peewee import PostgresqlDatabase

ORDERS_PER_CUSTOMER = 5


def up(migrator, db):
    if not isinstance(db, PostgresqlDatabase):
        return
    db.execute_sql(f"ALTER TABLE orders ALTER COLUMN customer_id SET (n_distinct = {-1 / ORDERS_PER_CUSTOMER})")
    # The setting is read by ANALYZE: the plans follow now, not at the next autovacuum.
    db.execute_sql("ANALYZE orders")
