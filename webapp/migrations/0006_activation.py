"""Activation: campaign and trigger mailings, their recipients, the SMS
outbox, triggers with steps and executions, tasks, webhook calls.

`mailing` gains the columns of a mailing sent from here (null on imported ones).
`mailing_recipient` holds plain ids (see below).
"""

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

    class Mailing(Model):
        class Meta:
            database = db
            table_name = "mailing"

    migrator.migrate(
        migrator.add_column("mailing", "kind", CharField(null=True)),
        migrator.add_column(
            "mailing", "segment_id", ForeignKeyField(Segment, null=True, field=Segment.id, on_delete="SET NULL")
        ),
        migrator.add_column("mailing", "subject", TextField(null=True)),
        migrator.add_column("mailing", "body", TextField(null=True)),
        migrator.add_column("mailing", "status", CharField(null=True)),
        migrator.add_column("mailing", "scheduled_at", DateTimeField(null=True)),
        migrator.add_column("mailing", "started_at", DateTimeField(null=True)),
        migrator.add_column("mailing", "finished_at", DateTimeField(null=True)),
        migrator.add_column(
            "mailing", "created_by_id", ForeignKeyField(User, null=True, field=User.id, on_delete="SET NULL")
        ),
        migrator.add_column("mailing", "updated_at", DateTimeField(null=True)),
    )

    # Plain ids, no foreign keys: a million rows are written at once when a
    # campaign starts, and PostgreSQL checks a foreign key with a trigger per
    # row (3.2 s per 100,000 rows measured, for the two of them).
    class MailingRecipient(Model):
        mailing_id = IntegerField()
        customer_id = IntegerField()
        execution_id = BigIntegerField(default=0)
        status = CharField(default="pending")
        reason = CharField(null=True)
        claim = CharField(null=True)
        claimed_at = DateTimeField(null=True)
        sent_at = DateTimeField(null=True)
        attempts = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "mailing_recipient"
            indexes = (
                (("mailing_id", "customer_id", "execution_id"), True),
                (("mailing_id", "status"), False),
            )

    class OutboxSms(Model):
        to = CharField()
        text = TextField()
        mailing = ForeignKeyField(Mailing, null=True, on_delete="SET NULL")
        created_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "outbox_sms"

    class Trigger(Model):
        name = CharField()
        segment = ForeignKeyField(Segment, on_delete="CASCADE")
        event = CharField(default="entered")
        active = BooleanField(default=True)
        last_change_id = BigIntegerField(default=0)
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "trigger"

    class TriggerStep(Model):
        trigger = ForeignKeyField(Trigger, on_delete="CASCADE")
        position = IntegerField(default=0)
        delay_seconds = BigIntegerField(default=0)
        only_members = BooleanField(default=True)
        action = CharField()
        mailing = ForeignKeyField(Mailing, null=True, on_delete="SET NULL")
        user = ForeignKeyField(User, null=True, on_delete="SET NULL")
        config = TextField(null=True)

        class Meta:
            database = db
            table_name = "trigger_step"
            indexes = ((("trigger", "position"), False),)

    class TriggerExecution(Model):
        trigger = ForeignKeyField(Trigger, on_delete="CASCADE")
        change_id = BigIntegerField()
        customer = ForeignKeyField(Customer, on_delete="CASCADE")
        event_at = DateTimeField()
        step = IntegerField(default=0)
        due_at = DateTimeField()
        status = CharField(default="active")
        claim = CharField(null=True)
        claimed_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)
        error = TextField(null=True)

        class Meta:
            database = db
            table_name = "trigger_execution"
            indexes = (
                (("trigger", "change_id"), True),
                (("status", "due_at"), False),
                (("customer",), False),
            )

    class Task(Model):
        customer = ForeignKeyField(Customer, null=True, on_delete="CASCADE")
        assignee = ForeignKeyField(User, null=True, on_delete="SET NULL")
        title = CharField()
        note = TextField(null=True)
        due_on = DateField(null=True)
        done_at = DateTimeField(null=True)
        created_at = DateTimeField()
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        trigger = ForeignKeyField(Trigger, null=True, on_delete="SET NULL")

        class Meta:
            database = db
            table_name = "task"
            indexes = (
                (("assignee", "done_at", "due_on"), False),
                (("customer", "created_at"), False),
            )

    class WebhookCall(Model):
        step = ForeignKeyField(TriggerStep, null=True, on_delete="SET NULL")
        execution_id = BigIntegerField(null=True)
        customer = ForeignKeyField(Customer, null=True, on_delete="SET NULL")
        url = TextField()
        body = TextField()
        status = CharField(default="pending")
        attempts = IntegerField(default=0)
        next_at = DateTimeField()
        claim = CharField(null=True)
        claimed_at = DateTimeField(null=True)
        response_status = IntegerField(null=True)
        error = TextField(null=True)
        created_at = DateTimeField()
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "webhook_call"
            indexes = ((("status", "next_at"), False),)

    db.create_tables([MailingRecipient, OutboxSms, Trigger, TriggerStep, TriggerExecution, Task, WebhookCall])


def down(migrator, db):
    for table in (
        "webhook_call",
        "task",
        "trigger_execution",
        "trigger_step",
        "trigger",
        "outbox_sms",
        "mailing_recipient",
    ):
        migrator.migrate(migrator.drop_table(table))
    migrator.migrate(
        *[
            migrator.drop_column("mailing", column)
            for column in (
                "updated_at",
                "created_by_id",
                "finished_at",
                "started_at",
                "scheduled_at",
                "status",
                "body",
                "subject",
                "segment_id",
                "kind",
            )
        ]
    )
