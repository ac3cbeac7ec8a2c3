"""Per-customer order rollup (`customer_order_stats`), kept current on writes.

Every writer of orders or order items (demo data, import, API, UI) calls
`refresh_order_stats(customer_ids)` in the same transaction (or, for orders
it has just inserted, `add_new_orders(order_ids)`), or
`rebuild_order_stats()` after a bulk load. A customer with no orders has no
row: readers treat a missing row as count 0, sums 0, dates null.
"""

import contextlib

import peewee as pw

from .db import database
from .models import CustomerOrderStats, Order, OrderItem

BATCH = 500


def _stats_query(customer_ids=None):
    """Each customer's rollup row: the orders' figures per customer beside
    the items' quantity per customer, joined once on the customer (not the
    quantity per order joined back to every order: at 1,000,000 orders that
    was a million-row aggregate and a million-row join more, 30 % of the time)."""
    orders = Order.select(
        Order.customer.alias("customer_id"),
        pw.fn.COUNT(Order.id).alias("orders_count"),
        pw.fn.SUM(Order.total_cents).alias("total_cents"),
        pw.fn.MIN(Order.ordered_at).alias("first_at"),
        pw.fn.MAX(Order.ordered_at).alias("last_at"),
    ).group_by(Order.customer)
    quantities = (
        OrderItem.select(Order.customer.alias("customer_id"), pw.fn.SUM(OrderItem.quantity).alias("qty"))
        .join(Order, on=(OrderItem.order == Order.id))
        .group_by(Order.customer)
    )
    if customer_ids is not None:
        # Only these customers' orders and items: else every refresh aggregates the whole tables.
        orders = orders.where(Order.customer.in_(customer_ids))
        quantities = quantities.where(Order.customer.in_(customer_ids))
    o, q = orders.alias("o"), quantities.alias("q")
    return pw.Select(
        from_list=[pw.Join(o, q, pw.JOIN.LEFT_OUTER, on=(q.c.customer_id == o.c.customer_id))],
        columns=[
            o.c.customer_id,
            o.c.orders_count,
            o.c.total_cents,
            pw.fn.COALESCE(q.c.qty, 0),
            o.c.first_at,
            o.c.last_at,
        ],
    ).bind(database)


_COLUMNS = [
    CustomerOrderStats.customer,
    CustomerOrderStats.orders_count,
    CustomerOrderStats.total_cents,
    CustomerOrderStats.quantity,
    CustomerOrderStats.first_at,
    CustomerOrderStats.last_at,
]


def refresh_order_stats(customer_ids):
    """Recompute the rollup rows of these customers from their orders."""
    ids = sorted(set(customer_ids))
    with database.atomic():
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            CustomerOrderStats.delete().where(CustomerOrderStats.customer.in_(chunk)).execute()
            CustomerOrderStats.insert_from(_stats_query(chunk), _COLUMNS).execute()


def refresh_order_stats_from(select):
    """Recompute the rollup rows of the customers whose ids `select` (SQL text
    of one column) returns, in two statements: what a bulk import does once,
    after its load, for every customer it touched."""
    customers = pw.SQL(f"(SELECT * FROM ({select}) AS touched)")
    CustomerOrderStats.delete().where(CustomerOrderStats.customer.in_(customers)).execute()
    CustomerOrderStats.insert_from(_stats_query(customers), _COLUMNS).execute()


def add_new_orders(order_ids):
    """Add orders just inserted (so without items yet) to their customers'
    rollup rows, reading only those orders: what refresh_order_stats would
    compute, at a fraction of the cost for big imports. The caller must not
    pass an order whose customer it also refreshes (it would count twice)."""
    ids = sorted(set(order_ids))
    stats = CustomerOrderStats
    with contextlib.nullcontext() if database.in_transaction() else database.atomic():
        for start in range(0, len(ids), BATCH * 4):
            chunk = ids[start : start + BATCH * 4]
            new = (
                Order.select(
                    Order.customer,
                    pw.fn.COUNT(Order.id),
                    pw.fn.SUM(Order.total_cents),
                    pw.Value(0),
                    pw.fn.MIN(Order.ordered_at),
                    pw.fn.MAX(Order.ordered_at),
                )
                .where(Order.id.in_(chunk))
                .group_by(Order.customer)
            )
            (
                stats.insert_from(new, _COLUMNS)
                .on_conflict(
                    conflict_target=[stats.customer],
                    update={
                        stats.orders_count: stats.orders_count + pw.EXCLUDED.orders_count,
                        stats.total_cents: stats.total_cents + pw.EXCLUDED.total_cents,
                        stats.first_at: pw.Case(
                            None, [(pw.EXCLUDED.first_at < stats.first_at, pw.EXCLUDED.first_at)], stats.first_at
                        ),
                        stats.last_at: pw.Case(
                            None, [(pw.EXCLUDED.last_at > stats.last_at, pw.EXCLUDED.last_at)], stats.last_at
                        ),
                    },
                )
                .execute()
            )


def rebuild_order_stats():
    """Recompute the whole rollup in one statement (after bulk loads)."""
    with database.atomic():
        CustomerOrderStats.delete().execute()
        CustomerOrderStats.insert_from(_stats_query(), _COLUMNS).execute()
