"""Predictions (issue 16): the purchase-model fits and each customer's scores.

- `prediction_fit`: each fit of the BG/NBD and Gamma-Gamma models: status,
  what it was fitted on (calibration end, time unit, date range, counts),
  the parameters and log-likelihoods, the page's chart series, or why there
  is no fit (a message code and its numbers, translated when shown).
- `customer_prediction`: per customer, the scores of the last successful fit,
  replaced as a whole by each scoring. A customer with no orders has no row
  (every field null). Each score is indexed: a segment filter on one is an
  index range read. Double precision on both backends (peewee's FloatField is a 4-byte REAL on PostgreSQL). The foreign key cascades, so counts read from the table
  never include a deleted customer.
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

    class PredictionFit(Model):
        status = CharField(default="queued", index=True)
        trigger = CharField(default="user")
        time_unit = CharField(default="week")
        calibration_end = DateField()
        annual_discount_rate = DoubleField(default=0.10)
        first_order_date = DateField(null=True)
        last_order_date = DateField(null=True)
        customers = IntegerField(null=True)
        repeat_customers = IntegerField(null=True)
        scored = IntegerField(null=True)
        bgnbd = TextField(null=True)
        gamma_gamma = TextField(null=True)
        charts = TextField(null=True)
        error_code = CharField(null=True)
        error = TextField(null=True)
        requested_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        created_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "prediction_fit"

    class CustomerPrediction(Model):
        customer = ForeignKeyField(Customer, primary_key=True, on_delete="CASCADE")
        p_alive = DoubleField(null=True, index=True)
        orders_30d = DoubleField(null=True, index=True)
        orders_90d = DoubleField(null=True, index=True)
        orders_365d = DoubleField(null=True, index=True)
        aov = DoubleField(null=True, index=True)
        clv = DoubleField(null=True, index=True)

        class Meta:
            database = db
            table_name = "customer_prediction"

    db.create_tables([PredictionFit, CustomerPrediction])
