"""Segment computation: runs, the entry/exit log, size points, the run guard,
notifications and the email outbox."""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "app_user"

    class Customer(Model):
        class Meta:
            database = db
            table_name = "customer"

    class Segment(Model):
        class Meta:
            database = db
            table_name = "segment"

    class SegmentRun(Model):
        segment = ForeignKeyField(Segment, on_delete="CASCADE")
        status = CharField(index=True, default="queued")
        trigger = CharField(default="user")
        requested_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        at = DateTimeField(null=True)
        size = IntegerField(null=True)
        entered = IntegerField(null=True)
        exited = IntegerField(null=True)
        attempts = IntegerField(default=0)
        error = TextField(null=True)
        created_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "segment_run"
            indexes = ((("segment", "created_at"), False),)

    class SegmentChange(Model):
        segment = ForeignKeyField(Segment, on_delete="CASCADE")
        customer = ForeignKeyField(Customer, on_delete="CASCADE")
        change = CharField()
        at = DateTimeField()
        run = ForeignKeyField(SegmentRun, null=True, on_delete="SET NULL")

        class Meta:
            database = db
            table_name = "segment_change"
            indexes = ((("segment", "at"), False), (("customer", "at"), False))

    class SegmentSize(Model):
        segment = ForeignKeyField(Segment, on_delete="CASCADE")
        at = DateTimeField()
        size = IntegerField()

        class Meta:
            database = db
            table_name = "segment_size"
            indexes = ((("segment", "at"), False),)

    class Notification(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        message = TextField()
        link = CharField(null=True)
        level = CharField(default="info")
        created_at = DateTimeField()
        read_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "notification"
            indexes = ((("user", "read_at"), False),)

    class OutboxEmail(Model):
        to = CharField()
        subject = CharField()
        body = TextField()
        created_at = DateTimeField(index=True)
        delivered = BooleanField(default=False)
        error = TextField(null=True)

        class Meta:
            database = db
            table_name = "outbox_email"

    db.create_tables([SegmentRun, SegmentChange, SegmentSize, Notification, OutboxEmail])
    migrator.migrate(
        migrator.add_column("segment", "interval_minutes", IntegerField(null=True)),
        migrator.add_column("segment", "lock_run_id", IntegerField(null=True)),
        migrator.add_column("segment", "locked_at", DateTimeField(null=True)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("segment", "locked_at"),
        migrator.drop_column("segment", "lock_run_id"),
        migrator.drop_column("segment", "interval_minutes"),
    )
    for table in ("outbox_email", "notification", "segment_size", "segment_change", "segment_run"):
        migrator.migrate(migrator.drop_table(table))
