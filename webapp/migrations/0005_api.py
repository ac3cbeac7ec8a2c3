"""REST API tokens and customer exports.

- `api_token`: a user's API tokens; only the SHA-256 of the secret is stored.
- `export_run`: one CSV/XLSX export of customers with its progress and file.
"""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "app_user"

    class Segment(Model):
        class Meta:
            database = db
            table_name = "segment"

    class ApiToken(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(default="")
        token_hash = CharField(unique=True)
        prefix = CharField(default="")
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "api_token"

    class ExportRun(Model):
        user = ForeignKeyField(User, null=True, on_delete="SET NULL")
        segment = ForeignKeyField(Segment, null=True, on_delete="SET NULL")
        source = TextField()
        columns = TextField()
        format = CharField(default="csv")
        bom = BooleanField(default=False)
        status = CharField(index=True, default="queued")
        rows_total = IntegerField(null=True)
        rows_done = IntegerField(default=0)
        file_name = CharField(default="")
        file_path = CharField(null=True)
        error = TextField(null=True)
        created_at = DateTimeField(index=True)
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "export_run"

    db.create_tables([ApiToken, ExportRun])


def down(migrator, db):
    for table in ("export_run", "api_token"):
        migrator.migrate(migrator.drop_table(table))
