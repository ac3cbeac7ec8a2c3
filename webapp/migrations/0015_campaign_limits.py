"""Control groups, frequency caps and quiet hours (issue 17).

- `mailing`: `holdout_percent` (0-50, the share held out as a control
  group), `transactional` (never capped, no quiet hours), `priority` (higher
  first when several mailings have work), `conversion_days` (the uplift
  report's window, 7 by default).
- `trigger`: the same four, copied to its steps' mailings.
  All with a database default: mailings imported from message events are
  inserted by hand-written SQL that names only their own columns.
- `mailing_recipient.not_before`: a message due inside quiet hours waits
  (`pending`) until then; `sent_at` of a `held_out` row is when it was held out.
- `contact_log`: one row per message a cap counts (customer, channel, when,
  the recipient row), written in the transaction that claims the message.
- `contact_lock`: one row per customer and channel, locked (PostgreSQL: FOR
  UPDATE) by that same transaction, so two senders decide a customer's cap
  one after the other. SQLite has one writer at a time anyway.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("mailing", "holdout_percent", IntegerField(default=0, constraints=[SQL("DEFAULT 0")])),
        migrator.add_column(
            "mailing", "transactional", BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])
        ),
        migrator.add_column("mailing", "priority", IntegerField(default=0, constraints=[SQL("DEFAULT 0")])),
        migrator.add_column("mailing", "conversion_days", IntegerField(default=7, constraints=[SQL("DEFAULT 7")])),
        migrator.add_column("trigger", "holdout_percent", IntegerField(default=0, constraints=[SQL("DEFAULT 0")])),
        migrator.add_column(
            "trigger", "transactional", BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])
        ),
        migrator.add_column("trigger", "priority", IntegerField(default=0, constraints=[SQL("DEFAULT 0")])),
        migrator.add_column("trigger", "conversion_days", IntegerField(default=7, constraints=[SQL("DEFAULT 7")])),
        migrator.add_column("mailing_recipient", "not_before", DateTimeField(null=True)),
    )

    class ContactLog(Model):
        customer_id = IntegerField()
        channel = CharField()
        at = DateTimeField()
        recipient_id = BigIntegerField(unique=True)

        class Meta:
            database = db
            table_name = "contact_log"
            indexes = ((("customer_id", "channel", "at"), False),)

    class ContactLock(Model):
        customer_id = IntegerField()
        channel = CharField()

        class Meta:
            database = db
            table_name = "contact_lock"
            primary_key = CompositeKey("customer_id", "channel")

    db.create_tables([ContactLog, ContactLock])
