"""The user's language (issue 15): `app_user.language`, a code Segmento speaks
(`en`, `ru`, `vi`) chosen on the account page; empty means the browser's
Accept-Language, then the DEFAULT_LANGUAGE setting.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column("app_user", "language", CharField(null=True)))
