"""Events derived from orders.

- `event_occurrence` gains `order_id`: the order an event definition recorded
  the occurrence for (null for occurrences sent through the API). A plain
  column without a foreign key constraint: a backfill inserts millions of rows
  at once, and PostgreSQL would check each with a trigger (see 0006). The
  unique index on (event_type_id, order_id) makes recording idempotent (NULLs
  are distinct, so API occurrences are not affected); (event_type_id,
  occurred_at) serves the per-day chart and the day's customers. The
  single-column indexes on customer_id and event_type_id go: the composite
  ones start with those columns.
- `event_definition`: an event recorded for every order matching a condition.
"""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "app_user"

    class EventType(Model):
        class Meta:
            database = db
            table_name = "event_type"

    migrator.migrate(
        migrator.add_column("event_occurrence", "order_id", BigIntegerField(null=True)),
        migrator.add_index("event_occurrence", ("event_type_id", "order_id"), True),
        migrator.add_index("event_occurrence", ("event_type_id", "occurred_at"), False),
        # (customer_id, occurred_at) and (event_type_id, customer_id) serve
        # every lookup these did; each index costs a backfill per row.
        migrator.drop_index("event_occurrence", "eventoccurrence_customer_id"),
        migrator.drop_index("event_occurrence", "eventoccurrence_event_type_id"),
    )

    class EventDefinition(Model):
        name = CharField()
        event_type = ForeignKeyField(EventType, unique=True, on_delete="CASCADE")
        match = CharField(default="all")
        filters = TextField()
        active = BooleanField(default=True)
        revision = IntegerField(default=1)
        status = CharField(default="queued")
        cleared_revision = IntegerField(default=0)
        first_order_id = BigIntegerField(default=0)
        next_order_id = BigIntegerField(default=0)
        last_order_id = BigIntegerField(default=0)
        recorded = BigIntegerField(default=0)
        error = TextField(null=True)
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        created_at = DateTimeField()
        updated_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "event_definition"

    db.create_tables([EventDefinition])


def down(migrator, db):
    migrator.migrate(
        migrator.add_index("event_occurrence", ("customer_id",), False),
        migrator.add_index("event_occurrence", ("event_type_id",), False),
        migrator.drop_table("event_definition"),
        migrator.drop_index("event_occurrence", "event_occurrence_event_type_id_occurred_at"),
        migrator.drop_index("event_occurrence", "event_occurrence_event_type_id_order_id"),
        migrator.drop_column("event_occurrence", "order_id"),
    )
