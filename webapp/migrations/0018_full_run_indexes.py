"""Full runs write fewer indexes (issue 19): the single-column indexes of
`segment_member` and `segment_change` that a composite index starts with go.

A first full run in which 600,000 customers enter inserts 600,000 rows into
each table; every index is one more B-tree insert per row. `segment_member`
keeps its key (segment_id, customer_id), which serves every lookup by segment
(and the cascade from segment), and (customer_id, segment_id), which serves
every lookup by customer (and the cascade from customer): the indexes on
segment_id alone and customer_id alone only repeated them. `segment_change`
keeps (customer_id, at), which serves the cascade from customer the index on
customer_id alone served.
"""


def up(migrator, db):
    migrator.migrate(
        migrator.drop_index("segment_member", "segmentmember_segment_id"),
        migrator.drop_index("segment_member", "segmentmember_customer_id"),
        migrator.drop_index("segment_change", "segmentchange_customer_id"),
    )
