"""Segment analytics: orders read along the customer index alone.

The dashboard reads each member's orders in the range (customer_id,
ordered_at range) and needs their totals: with `total_cents` in the index
the read is index-only, instead of one random row read per order (10M-order
table). It replaces (customer_id, ordered_at), which it extends, and the
single-column index on customer_id goes too: the composite one starts with
it and serves every lookup it did (the cascade from customer included), and
`flask demo-data` rebuilds every index of orders after its load.

In history mode the dashboard replays the entry/exit log per segment and
customer (LEAD over PARTITION BY segment_id, customer_id ORDER BY at, id) and
looks up whether a member has any logged change: segment_change (segment_id,
customer_id, at) gives both in index order, without a sort or a row read per
member. It replaces the single-column index on segment_id, which it and
(segment_id, at) start with.
"""


def up(migrator, db):
    migrator.migrate(
        migrator.add_index("orders", ("customer_id", "ordered_at", "total_cents"), False),
        migrator.drop_index("orders", "order_customer_id_ordered_at"),
        migrator.drop_index("orders", "order_customer_id"),
        migrator.add_index("segment_change", ("segment_id", "customer_id", "at"), False),
        migrator.drop_index("segment_change", "segmentchange_segment_id"),
    )
