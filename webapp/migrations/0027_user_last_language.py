"""`app_user.last_language`: the language a user without a chosen one last read
Segmento in (their browser's Accept-Language, as the pages resolved it). Jobs
have no request: what they write for that user (a segment run's notification
and its email, an import's report) follows it, not the account's default."""

from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column("app_user", "last_language", CharField(null=True)))
