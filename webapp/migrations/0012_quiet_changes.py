"""Imports that fire no triggers (issue 20.10).

- `changed_customer.quiet`: true for a customer marked by an import run
  "without firing triggers" (null otherwise; a later ordinary mark clears it).
- `segment_change.quiet`: true for an entry or exit the real-time update
  logged for such a customer: it is in the log, membership and history like
  any other, but triggers do not create executions for it.
Null rather than false with a default, so the set-based INSERTs that name
their columns need no change.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("changed_customer", "quiet", BooleanField(null=True)),
        migrator.add_column("segment_change", "quiet", BooleanField(null=True)),
    )
