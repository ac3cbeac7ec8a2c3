"""Segment analytics: orders read along the customer index alone.

The dashboard reads each member's orders in the range (customer_id,
ordered_at range) and needs their totals: with `total_cents` in the index
the read is index-only, instead of one random row read per order (10M-order
table). It replaces (customer_id, ordered_at), which it extends, and the
single-column index on customer_id goes too: the composite one starts with
it and serves every lookup it did (the cascade from customer included), and
`flask demo-data` rebuilds every index of orders after its load.
"""


def up(migrator, db):
    migrator.migrate(
        migrator.add_index('orders', ('customer_id', 'ordered_at', 'total_cents'), False),
        migrator.drop_index('orders', 'order_customer_id_ordered_at'),
        migrator.drop_index('orders', 'order_customer_id'),
    )
