"""The customer's own language and time zone (issues 15 and 17).

- `customer.language`: a language code (`ru`, `vi`, `en`, ...) for the pages
  a customer reads (unsubscribe, confirmation) and their messages; empty means
  the account's default language.
- `customer.time_zone`: an IANA zone name (`Europe/Moscow`,
  `Asia/Ho_Chi_Minh`) for quiet hours; empty means the account's zone.
Both indexed: segments filter on them.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("customer", "language", CharField(null=True)),
        migrator.add_column("customer", "time_zone", CharField(null=True)),
        migrator.add_index("customer", ("language",)),
        migrator.add_index("customer", ("time_zone",)),
    )
