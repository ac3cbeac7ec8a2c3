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
    quantities = OrderItem.select(
        OrderItem.order.alias("order_id"), pw.fn.SUM(OrderItem.quantity).alias("qty")
    ).group_by(OrderItem.order)
    if customer_ids is not None:
        # Only these customers' items: else every refresh aggregates the whole order_item table.
        quantities = quantities.join(Order, on=(OrderItem.order == Order.id)).where(Order.customer.in_(customer_ids))
    quantities = quantities.alias("q")
    query = (
        Order.select(
            Order.customer,
            pw.fn.COUNT(Order.id),
            pw.fn.SUM(Order.total_cents),
            pw.fn.COALESCE(pw.fn.SUM(quantities.c.qty), 0),
            pw.fn.MIN(Order.ordered_at),
            pw.fn.MAX(Order.ordered_at),
        )
        .join(quantities, pw.JOIN.LEFT_OUTER, on=(quantities.c.order_id == Order.id))
        .group_by(Order.customer)
    )
    if customer_ids is not None:
        query = query.where(Order.customer.in_(customer_ids))
    return query


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
