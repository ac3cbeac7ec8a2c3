"""Languages (issue 15).

- `app_user.language`: a code Segmento speaks (`en`, `ru`, `vi`) chosen on the
  account page; empty means the browser's Accept-Language, then the
  DEFAULT_LANGUAGE setting.
- `export_run.headers`: the language of an export's header row (column names
  as people read them); empty means the field codes the import reads (stable,
  for other tools).
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("app_user", "language", CharField(null=True)),
        migrator.add_column("export_run", "headers", CharField(null=True)),
    )
