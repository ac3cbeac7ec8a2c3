"""RFM analysis.

- `rfm_settings`: one row, how scores are computed (method, cut points,
  monetary kind, excluded order statuses, as-of date).
- `rfm_run`: each computation with its status and counts.
- `rfm_score`: per customer, the values and scores of the last computation,
  replaced as a whole by each computation. A plain customer id, no foreign
  key constraint: with one, SQLite deletes the old rows one by one instead
  of truncating, checks each new row, and PostgreSQL runs a trigger per row
  (see 0006). The rows come from orders, which go with their customer,
  and are replaced as a whole by each computation.
- `rfm_cell`: the R×F grid of the last computation (count, monetary sum).
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

    class RfmSettings(Model):
        method = CharField(default="quintiles")
        monetary = CharField(default="total")
        r_cuts = TextField(null=True)
        f_cuts = TextField(null=True)
        m_cuts = TextField(null=True)
        excluded_statuses = TextField(null=True)
        as_of = DateField(null=True)
        updated_at = DateTimeField()
        updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            database = db
            table_name = "rfm_settings"

    class RfmRun(Model):
        status = CharField(default="queued", index=True)
        trigger = CharField(default="user")
        config = TextField()
        as_of = DateField()
        scored = IntegerField(null=True)
        unscored = IntegerField(null=True)
        requested_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        error = TextField(null=True)
        created_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "rfm_run"

    class RfmScore(Model):
        customer_id = IntegerField(primary_key=True)
        r = SmallIntegerField()
        f = SmallIntegerField()
        m = SmallIntegerField()
        recency_days = IntegerField()
        frequency = IntegerField()
        monetary_cents = BigIntegerField()
        as_of = DateField()
        computed_at = DateTimeField()

        class Meta:
            database = db
            table_name = "rfm_score"
            # a cell's customers, biggest spenders first; the grid's sums without a row lookup
            indexes = ((("r", "f", "monetary_cents"), False),)

    class RfmCell(Model):
        r = SmallIntegerField()
        f = SmallIntegerField()
        customers = IntegerField()
        monetary_cents = BigIntegerField()

        class Meta:
            database = db
            table_name = "rfm_cell"
            primary_key = CompositeKey("r", "f")

    db.create_tables([RfmSettings, RfmRun, RfmScore, RfmCell])
