"""Drop the 17 indexes whose column is the first column of another index.

peewee gives every foreign key an index of its own; where a table also has
an index (or primary key) that starts with that column, the single-column
index answers no query the longer one cannot: the planners of SQLite and
PostgreSQL use the longer one for the same lookups, foreign-key checks and
cascades included. Each still costs a write on every insert and a rebuild
in every bulk import: at 1,400,255 order items, `order_item(product_id)`
beside `order_item(product_id, order_id)` was 1.5-4.6 s of the import
(bench/RESULTS.md, issue 19).
"""

# index -> (table, the index or key that starts with its column)
PREFIXES = {
    "customertag_customer_id": ("customer_tag", "primary key (customer_id, tag_id)"),
    "customertag_tag_id": ("customer_tag", "customertag_tag_id_customer_id"),
    "customvalue_field_id": ("custom_value", "primary key (field_id, record_id)"),
    "deal_customer_id": ("deal", "deal_customer_id_pipeline_id"),
    "deal_pipeline_id": ("deal", "deal_pipeline_id_stage_id_customer_id"),
    "messageevent_customer_id": ("message_event", "messageevent_customer_id_occurred_at"),
    "messageevent_mailing_id": ("message_event", "messageevent_mailing_id_kind"),
    "notification_user_id": ("notification", "notification_user_id_read_at"),
    "order_shop_id": ("orders", "order_shop_id_customer_id"),
    "orderitem_product_id": ("order_item", "orderitem_product_id_order_id"),
    "segmentrun_segment_id": ("segment_run", "segment_run_segment_at"),
    "segmentsize_segment_id": ("segment_size", "segmentsize_segment_id_at"),
    "stage_pipeline_id": ("stage", "stage_pipeline_id_name_ci"),
    "task_assignee_id": ("task", "task_assignee_id_done_at_due_on"),
    "task_customer_id": ("task", "task_customer_id_created_at"),
    "triggerexecution_trigger_id": ("trigger_execution", "triggerexecution_trigger_id_change_id"),
    "triggerstep_trigger_id": ("trigger_step", "triggerstep_trigger_id_position"),
}


def up(migrator, db):
    for index in PREFIXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{index}"')
