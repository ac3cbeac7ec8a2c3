"""Account settings changed on a page (issue 17: the campaign limits).

- `account_setting`: one row per setting an admin saved (`name` is the
  environment variable it overrides: FREQUENCY_CAP_EMAIL, FREQUENCY_CAP_SMS,
  QUIET_HOURS_EMAIL, QUIET_HOURS_SMS, GLOBAL_CONTROL_PERCENT), its value as
  text in that variable's format, when and by whom. No rows are written here:
  until an admin saves the page, the environment's values apply.
"""

from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "app_user"

    class AccountSetting(Model):
        name = CharField(unique=True)
        value = TextField(default="")
        updated_at = DateTimeField()
        updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            database = db
            table_name = "account_setting"

    db.create_tables([AccountSetting])
