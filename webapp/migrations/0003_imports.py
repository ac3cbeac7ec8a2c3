"""Imports: import runs, the changed-customer queue, and list segments.

- `import_run`: one row per CSV import (web or CLI) with progress and report.
- `changed_customer`: customers whose data changed, for the real-time segment
  update to re-check (one row per customer, upserted by webapp.changes).
- `segment.source`: "definition" (computed from its definition) or "list"
  (a static segment made from an uploaded list; never recomputed).
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

    class ImportRun(Model):
        kind = CharField()
        file_name = CharField()
        file_path = CharField()
        user = ForeignKeyField(User, null=True, on_delete="SET NULL")
        origin = CharField(default="web")
        status = CharField(index=True, default="draft")
        phase = CharField(null=True)
        encoding = CharField(null=True)
        delimiter = CharField(null=True)
        mapping = TextField(null=True)
        options = TextField(null=True)
        bytes_total = BigIntegerField(default=0)
        bytes_done = BigIntegerField(default=0)
        rows_total = IntegerField(null=True)
        rows_done = IntegerField(default=0)
        rows_imported = IntegerField(default=0)
        rows_new = IntegerField(default=0)
        rows_updated = IntegerField(default=0)
        rows_rejected = IntegerField(default=0)
        rejected_path = CharField(null=True)
        report = TextField(null=True)
        error = TextField(null=True)
        cancel_requested = BooleanField(default=False)
        segment = ForeignKeyField(Segment, null=True, on_delete="SET NULL")
        created_at = DateTimeField(index=True)
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "import_run"

    db.create_tables([ImportRun])

    class ChangedCustomer(Model):
        customer = ForeignKeyField(Customer, primary_key=True, on_delete="CASCADE")
        changed_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "changed_customer"

    db.create_tables([ChangedCustomer])

    migrator.migrate(migrator.add_column("segment", "source", CharField(default="definition")))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("segment", "source"))
    migrator.migrate(migrator.drop_table("changed_customer"))
    migrator.migrate(migrator.drop_table("import_run"))
