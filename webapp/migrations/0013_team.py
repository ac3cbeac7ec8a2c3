"""A team administered in the browser (issue 21, point 7).

- `app_user.last_login_at`: when the user last signed in (the users page).
- `audit_event`: who did what, when: sign-ins and their failures, changes to
  segments, mailings, triggers, custom fields, users and settings. The actor's
  email is kept beside the foreign key, so the log still says who once the
  user is gone; the object is its table, id and name at the time.
"""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "app_user"

    class AuditEvent(Model):
        created_at = DateTimeField(index=True)
        actor = ForeignKeyField(User, null=True, on_delete="SET NULL")
        actor_email = CharField(default="")
        action = CharField(index=True)
        object_type = CharField(default="")
        object_id = IntegerField(null=True)
        object_label = CharField(default="")
        details = TextField(default="{}")
        address = CharField(default="")

        class Meta:
            database = db
            table_name = "audit_event"
            indexes = ((("object_type", "object_id"), False),)

    db.create_tables([AuditEvent])
    migrator.migrate(migrator.add_column("app_user", "last_login_at", DateTimeField(null=True)))
