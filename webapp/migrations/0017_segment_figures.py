"""Segment figures and hand-made changes of static segments (issue 18).

- `segment_figures`: the figures a segment list shows (members, reachable by
  email and SMS, revenue and orders of the last 12 months, predicted value),
  cached per computation of the segment: `computed_for` is the segment's
  `computed_at` they were read for. Row 0 holds the whole base. No foreign
  key: a row of a deleted segment is never read (its `computed_for` cannot
  match a new segment's) and is replaced when its id is used again.
- `segment_change.manual` and `segment_change.user_id`: an entry or exit made
  by hand in a static segment (one customer, a list upload, a snapshot), and
  who made it.
"""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "app_user"

    class SegmentFigures(Model):
        segment_id = BigIntegerField(primary_key=True)
        computed_for = DateTimeField(null=True)
        at = DateTimeField()
        members = BigIntegerField(default=0)
        email = BigIntegerField(default=0)
        sms = BigIntegerField(default=0)
        revenue_cents = BigIntegerField(default=0)
        orders = BigIntegerField(default=0)
        predicted = BigIntegerField(default=0)
        clv = DoubleField(null=True)

        class Meta:
            database = db
            table_name = "segment_figures"

    db.create_tables([SegmentFigures])
    migrator.migrate(
        migrator.add_column("segment_change", "manual", BooleanField(null=True)),
        migrator.add_column(
            "segment_change", "user_id", ForeignKeyField(User, field=User.id, null=True, on_delete="SET NULL")
        ),
    )
