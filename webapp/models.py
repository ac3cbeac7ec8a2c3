"""The customer base: every entity the segment definition spec names.

Conventions:
- Money is stored as integer cents (`*_cents`), so sums are exact on both
  SQLite and PostgreSQL.
- Datetimes are naive UTC.
- Every string a filter compares has a folded shadow column `<name>_ci`
  (see webapp.text.fold), kept current by `save()` and by bulk writers through
  `fill_folded()`.
- Custom field values live in `custom_value`, one row per (field, record),
  with one typed column per kind so they filter and index in plain SQL.
"""

import datetime
import json

import peewee as pw

from .db import database
from .text import fold


def utcnow():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class BaseModel(pw.Model):
    # Names of string columns that have a folded `<name>_ci` twin.
    FOLDED = ()

    class Meta:
        database = database
        legacy_table_names = False

    @classmethod
    def fill_folded(cls, row):
        """Fill the `_ci` twins in a dict of column values (for bulk inserts)."""
        for name in cls.FOLDED:
            if name in row:
                row[name + "_ci"] = fold(row[name])
        return row

    def save(self, *args, **kwargs):
        for name in self.FOLDED:
            setattr(self, name + "_ci", fold(getattr(self, name)))
        return super().save(*args, **kwargs)


class JSONField(pw.TextField):
    """JSON stored as text: portable across SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


# --- users -----------------------------------------------------------------

ROLES = ("admin", "marketer", "manager")


class User(BaseModel):
    email = pw.CharField(unique=True)
    email_ci = pw.CharField(unique=True)
    name = pw.CharField(default="")
    password_hash = pw.CharField()
    role = pw.CharField(default="marketer")  # admin | marketer | manager
    active = pw.BooleanField(default=True)
    notify_email = pw.BooleanField(default=True)
    created_at = pw.DateTimeField(default=utcnow)
    last_login_at = pw.DateTimeField(null=True)
    # en | ru | vi, chosen on the account page; None: Accept-Language, then DEFAULT_LANGUAGE
    language = pw.CharField(null=True)
    # Without a chosen language: the one the pages last spoke to this user (kept by the login wall).
    last_language = pw.CharField(null=True)

    FOLDED = ("email",)

    class Meta:
        table_name = "app_user"  # "user" is reserved in PostgreSQL

    @property
    def display_name(self):
        return self.name or self.email

    @property
    def reading_language(self):
        """The language this user reads Segmento in, for what a job writes them (no request to ask):
        their choice, else the one the pages last spoke to them; None: the account's default."""
        return self.language or self.last_language

    @property
    def invited(self):
        """Invited and not joined yet: no password set."""
        return not self.password_hash


# --- customers -------------------------------------------------------------

CUSTOMER_TYPES = ("contact", "company")
GENDERS = ("male", "female")


class Customer(BaseModel):
    external_id = pw.CharField(unique=True)
    type = pw.CharField(default="contact", index=True)  # contact | company
    first_name = pw.CharField(null=True)
    last_name = pw.CharField(null=True)
    company_name = pw.CharField(null=True)
    email = pw.CharField(null=True)
    phone = pw.CharField(null=True)
    gender = pw.CharField(null=True, index=True)  # male | female
    birth_date = pw.DateField(null=True)
    # month * 100 + day of birth_date, for "ignore year" filters
    birth_md = pw.SmallIntegerField(null=True, index=True)
    city = pw.CharField(null=True)
    country = pw.CharField(null=True)
    source = pw.CharField(null=True)
    # the customer's language (ru, vi, en, ...) and IANA time zone; empty:
    # the account's default (migration 0010)
    language = pw.CharField(null=True, index=True)
    time_zone = pw.CharField(null=True, index=True)
    manager = pw.ForeignKeyField(User, null=True, backref="customers", on_delete="SET NULL")
    email_consent = pw.BooleanField(default=False, index=True)
    sms_consent = pw.BooleanField(default=False, index=True)
    created_at = pw.DateTimeField(default=utcnow, index=True)
    updated_at = pw.DateTimeField(default=utcnow)

    first_name_ci = pw.CharField(null=True, index=True)
    last_name_ci = pw.CharField(null=True, index=True)
    company_name_ci = pw.CharField(null=True, index=True)
    email_ci = pw.CharField(null=True, index=True)
    phone_ci = pw.CharField(null=True, index=True)
    city_ci = pw.CharField(null=True, index=True)
    country_ci = pw.CharField(null=True, index=True)
    source_ci = pw.CharField(null=True, index=True)

    FOLDED = ("first_name", "last_name", "company_name", "email", "phone", "city", "country", "source")

    @classmethod
    def fill_folded(cls, row):
        super().fill_folded(row)
        if "birth_date" in row:
            row["birth_md"] = birth_md(row["birth_date"])
        return row

    def save(self, *args, **kwargs):
        self.birth_md = birth_md(self.birth_date)
        self.updated_at = utcnow()
        return super().save(*args, **kwargs)

    @property
    def display_name(self):
        if self.type == "company" and self.company_name:
            return self.company_name
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.company_name or self.email or self.phone or self.external_id


def birth_md(value):
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.date.fromisoformat(value)
    return value.month * 100 + value.day


class Tag(BaseModel):
    name = pw.CharField()
    name_ci = pw.CharField(unique=True)

    FOLDED = ("name",)


class CustomerTag(BaseModel):
    customer = pw.ForeignKeyField(Customer, backref="tag_links", on_delete="CASCADE", index=False)
    tag = pw.ForeignKeyField(Tag, backref="customer_links", on_delete="CASCADE", index=False)

    class Meta:
        primary_key = pw.CompositeKey("customer", "tag")
        indexes = ((("tag", "customer"), False),)


# --- custom fields ---------------------------------------------------------

CUSTOM_ENTITIES = ("customer", "order", "deal")
CUSTOM_TYPES = ("string", "integer", "decimal", "date", "boolean", "enum")
# The custom_value column that holds each custom field type's value.
CUSTOM_COLUMNS = {
    "string": "value_str",
    "enum": "value_str",
    "integer": "value_num",
    "decimal": "value_num",
    "date": "value_date",
    "boolean": "value_bool",
}


class CustomField(BaseModel):
    entity = pw.CharField()  # customer | order | deal
    code = pw.CharField()  # [a-z0-9_]+, used as custom.<code> in definitions
    name = pw.CharField()
    type = pw.CharField()  # one of CUSTOM_TYPES
    options = JSONField(null=True)  # enum: list of option strings
    position = pw.IntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("entity", "code"), True),)


class CustomValue(BaseModel):
    """One value of a custom field for one record (customer, order or deal id).

    Exactly one of the typed columns is set, by the field's type: string and
    enum use value_str (+ value_ci), integer and decimal value_num, date
    value_date, boolean value_bool.
    """

    field = pw.ForeignKeyField(CustomField, backref="values", on_delete="CASCADE", index=False)
    record_id = pw.BigIntegerField()
    value_str = pw.TextField(null=True)
    value_ci = pw.TextField(null=True)
    value_num = pw.DecimalField(max_digits=24, decimal_places=6, null=True, auto_round=True)
    value_date = pw.DateField(null=True)
    value_bool = pw.BooleanField(null=True)

    FOLDED = ()

    class Meta:
        primary_key = pw.CompositeKey("field", "record_id")
        indexes = (
            (("field", "value_ci"), False),
            (("field", "value_num"), False),
            (("field", "value_date"), False),
            (("record_id",), False),
        )

    def save(self, *args, **kwargs):
        self.value_ci = fold(self.value_str)
        return super().save(*args, **kwargs)


# --- shops, products, orders -----------------------------------------------


class Shop(BaseModel):
    name = pw.CharField()
    name_ci = pw.CharField(unique=True)

    FOLDED = ("name",)


class ProductGroup(BaseModel):
    """A node of the product group tree; `path` is the '/'-joined names."""

    parent = pw.ForeignKeyField("self", null=True, backref="children", on_delete="CASCADE")
    name = pw.CharField()
    path = pw.CharField()
    path_ci = pw.CharField(unique=True)

    FOLDED = ("path",)


class Product(BaseModel):
    sku = pw.CharField()
    sku_ci = pw.CharField(unique=True)
    name = pw.CharField(default="")
    group = pw.ForeignKeyField(ProductGroup, null=True, backref="products", on_delete="SET NULL")
    price_cents = pw.BigIntegerField(null=True)

    FOLDED = ("sku",)


class Order(BaseModel):
    external_id = pw.CharField(unique=True)
    # no single-column index (dropped in 0009): (customer, ordered_at, total_cents) starts with it
    customer = pw.ForeignKeyField(Customer, backref="orders", on_delete="CASCADE", index=False)
    ordered_at = pw.DateTimeField()
    status = pw.CharField(null=True)
    status_ci = pw.CharField(null=True)
    shop = pw.ForeignKeyField(Shop, null=True, backref="orders", on_delete="SET NULL", index=False)
    total_cents = pw.BigIntegerField(default=0)

    FOLDED = ("status",)

    class Meta:
        table_name = "orders"  # "order" is reserved in SQL
        indexes = (
            # total_cents: a member's orders in a range are summed from the index alone (analytics)
            (("customer", "ordered_at", "total_cents"), False),
            (("ordered_at",), False),
            (("shop", "customer"), False),
            (("status_ci", "customer"), False),
        )


class OrderItem(BaseModel):
    order = pw.ForeignKeyField(Order, backref="items", on_delete="CASCADE")
    product = pw.ForeignKeyField(Product, backref="order_items", on_delete="CASCADE", index=False)
    quantity = pw.IntegerField(default=1)
    price_cents = pw.BigIntegerField(default=0)

    class Meta:
        indexes = ((("product", "order"), False),)


class CustomerOrderStats(BaseModel):
    """Per-customer rollup of all orders, kept current on every order write.

    The engine uses it for order blocks without record filters; it must always
    equal the aggregates computed from `order` itself.
    """

    customer = pw.ForeignKeyField(Customer, primary_key=True, backref="order_stats", on_delete="CASCADE")
    orders_count = pw.IntegerField(default=0, index=True)
    total_cents = pw.BigIntegerField(default=0, index=True)
    quantity = pw.BigIntegerField(default=0)
    first_at = pw.DateTimeField(null=True, index=True)
    last_at = pw.DateTimeField(null=True, index=True)


# --- deals -----------------------------------------------------------------

STAGE_KINDS = ("open", "won", "lost")


class Pipeline(BaseModel):
    name = pw.CharField()
    name_ci = pw.CharField(unique=True)
    position = pw.IntegerField(default=0)

    FOLDED = ("name",)


class Stage(BaseModel):
    pipeline = pw.ForeignKeyField(Pipeline, backref="stages", on_delete="CASCADE", index=False)
    name = pw.CharField()
    name_ci = pw.CharField()
    kind = pw.CharField(default="open")  # open | won | lost
    position = pw.IntegerField(default=0)

    FOLDED = ("name",)

    class Meta:
        indexes = ((("pipeline", "name_ci"), True),)


class Deal(BaseModel):
    external_id = pw.CharField(unique=True)
    customer = pw.ForeignKeyField(Customer, backref="deals", on_delete="CASCADE", index=False)
    pipeline = pw.ForeignKeyField(Pipeline, backref="deals", on_delete="CASCADE", index=False)
    stage = pw.ForeignKeyField(Stage, backref="deals", on_delete="CASCADE")
    amount_cents = pw.BigIntegerField(default=0)
    manager = pw.ForeignKeyField(User, null=True, backref="deals", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    closed_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = (
            (("customer", "pipeline"), False),
            (("pipeline", "stage", "customer"), False),
        )


# --- messages and events ---------------------------------------------------

CHANNELS = ("email", "sms")
MESSAGE_KINDS = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed")


MAILING_KINDS = ("imported", "campaign", "trigger")
MAILING_STATUSES = ("draft", "scheduled", "queued", "sending", "sent", "cancelled")


class Mailing(BaseModel):
    """A mailing by name: imported ones (`kind` null), campaigns sent from here
    to a segment, and the messages of a trigger step (see webapp.activation)."""

    name = pw.CharField()
    name_ci = pw.CharField(unique=True)
    channel = pw.CharField(default="email")
    created_at = pw.DateTimeField(default=utcnow)
    # Activation (migration 0006); null on imported mailings.
    kind = pw.CharField(null=True)  # one of MAILING_KINDS
    segment = pw.DeferredForeignKey("Segment", null=True, backref="mailings", on_delete="SET NULL")
    subject = pw.TextField(null=True)  # a template (email only)
    body = pw.TextField(null=True)  # a template: HTML for email, text for SMS
    status = pw.CharField(null=True)  # campaigns: one of MAILING_STATUSES
    scheduled_at = pw.DateTimeField(null=True)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)
    created_by = pw.ForeignKeyField(User, null=True, backref="mailings", on_delete="SET NULL")
    updated_at = pw.DateTimeField(null=True)
    # Control group, caps and quiet hours (migration 0015; webapp.activation.limits).
    holdout_percent = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
    transactional = pw.BooleanField(default=False, constraints=[pw.SQL("DEFAULT FALSE")])
    priority = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
    conversion_days = pw.IntegerField(default=7, constraints=[pw.SQL("DEFAULT 7")])

    FOLDED = ("name",)


class MessageEvent(BaseModel):
    customer = pw.ForeignKeyField(Customer, backref="message_events", on_delete="CASCADE", index=False)
    channel = pw.CharField()  # email | sms
    kind = pw.CharField()  # one of MESSAGE_KINDS
    mailing = pw.ForeignKeyField(Mailing, null=True, backref="events", on_delete="SET NULL", index=False)
    occurred_at = pw.DateTimeField()

    class Meta:
        indexes = (
            (("customer", "occurred_at"), False),
            (("kind", "occurred_at"), False),
            (("mailing", "kind"), False),
        )


class EventType(BaseModel):
    code = pw.CharField()
    code_ci = pw.CharField(unique=True)
    name = pw.CharField(default="")

    FOLDED = ("code",)


class EventOccurrence(BaseModel):
    # No single-column indexes (dropped in 0007): the composite ones below
    # start with these columns, and a backfill maintains every index per row.
    customer = pw.ForeignKeyField(Customer, backref="event_occurrences", on_delete="CASCADE", index=False)
    event_type = pw.ForeignKeyField(EventType, backref="occurrences", on_delete="CASCADE", index=False)
    occurred_at = pw.DateTimeField()
    properties = JSONField(null=True)
    # Set on occurrences an event definition derived from an order (migration
    # 0007; a plain column in the database, see there); null for API events.
    order = pw.ForeignKeyField(Order, null=True, backref="event_occurrences", on_delete="CASCADE")

    class Meta:
        indexes = (
            (("customer", "occurred_at"), False),
            (("event_type", "customer"), False),
            (("event_type", "order"), True),
            (("event_type", "occurred_at"), False),
        )


# --- segments --------------------------------------------------------------

SEGMENT_TYPES = ("static", "dynamic")


class Segment(BaseModel):
    code = pw.CharField(unique=True)
    name = pw.CharField()
    type = pw.CharField(default="dynamic")  # static | dynamic
    active = pw.BooleanField(default=True)
    in_analytics = pw.BooleanField(default=False)
    system = pw.BooleanField(default=False)
    definition = JSONField()
    size = pw.IntegerField(null=True)
    computed_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.ForeignKeyField(User, null=True, backref="segments", on_delete="SET NULL")
    updated_at = pw.DateTimeField(default=utcnow)
    # "definition": members come from evaluating `definition`. "list": a static
    # segment made from an uploaded list of emails/external ids; its members are
    # that list and it is never recomputed (its definition only names itself).
    source = pw.CharField(default="definition")

    @classmethod
    def evaluated(cls):
        """Active dynamic segments whose members come from evaluating their definition
        (not lists, not RFM's stored classes): what the schedule, runs and the real-time
        re-check compute, and what reads of "which segments read X" look through."""
        return cls.select().where(cls.active == True, cls.type == "dynamic", cls.source == "definition")  # noqa: E712

    # Minutes between scheduled runs of a dynamic segment; null: the global
    # SEGMENT_INTERVAL_MINUTES setting.
    interval_minutes = pw.IntegerField(null=True)
    # The database guard for "one run per segment at a time": the run holding it.
    lock_run_id = pw.IntegerField(null=True)
    locked_at = pw.DateTimeField(null=True)


class SegmentMember(BaseModel):
    # no single-column indexes (dropped in 0018): the key and (customer, segment) start with them.
    # On PostgreSQL no foreign keys in the database (0022): delete triggers do the cascades.
    segment = pw.ForeignKeyField(Segment, backref="members", on_delete="CASCADE", index=False)
    customer = pw.ForeignKeyField(Customer, backref="memberships", on_delete="CASCADE", index=False)
    since = pw.DateTimeField(default=utcnow)

    class Meta:
        primary_key = pw.CompositeKey("segment", "customer")
        indexes = ((("customer", "segment"), False),)


# --- imports and change tracking --------------------------------------------

IMPORT_KINDS = ("customers", "orders", "order-items", "deals", "messages", "segment")
IMPORT_STATUSES = ("draft", "queued", "running", "done", "failed", "cancelled")


class ImportRun(BaseModel):
    """One CSV import (web or command line): its file, mapping, progress and report.

    Counts are updated in the same transaction as each committed batch, so
    they always describe what is stored.
    """

    kind = pw.CharField()  # one of IMPORT_KINDS
    file_name = pw.CharField()  # as uploaded, for display only
    file_path = pw.CharField()  # the stored file
    user = pw.ForeignKeyField(User, null=True, backref="imports", on_delete="SET NULL")
    origin = pw.CharField(default="web")  # web | cli
    status = pw.CharField(default="draft", index=True)  # one of IMPORT_STATUSES
    phase = pw.CharField(null=True)  # checking | importing, while running
    encoding = pw.CharField(null=True)
    delimiter = pw.CharField(null=True)
    mapping = JSONField(null=True)  # {"columns": [target|null per file column], "new_fields": {...}}
    options = JSONField(null=True)
    bytes_total = pw.BigIntegerField(default=0)
    bytes_done = pw.BigIntegerField(default=0)
    rows_total = pw.IntegerField(null=True)
    rows_done = pw.IntegerField(default=0)
    rows_imported = pw.IntegerField(default=0)
    rows_new = pw.IntegerField(default=0)
    rows_updated = pw.IntegerField(default=0)
    rows_rejected = pw.IntegerField(default=0)
    rejected_path = pw.CharField(null=True)
    report = JSONField(null=True)
    error = pw.TextField(null=True)
    cancel_requested = pw.BooleanField(default=False)
    segment = pw.ForeignKeyField(Segment, null=True, backref="imports", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow, index=True)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)


class ChangedCustomer(BaseModel):
    """Customers whose data changed since the real-time segment update last
    looked (one row per customer; see webapp.changes)."""

    customer = pw.ForeignKeyField(Customer, primary_key=True, backref="change_marks", on_delete="CASCADE")
    changed_at = pw.DateTimeField(default=utcnow, index=True)
    # True: marked by an import run without triggers (changes.quietly); null otherwise
    quiet = pw.BooleanField(null=True)


# --- segment computation ---------------------------------------------------

RUN_STATUSES = ("queued", "running", "done", "failed")


class SegmentRun(BaseModel):
    """One computation of a segment's members: queued, running, done or failed."""

    segment = pw.ForeignKeyField(Segment, backref="runs", on_delete="CASCADE", index=False)
    status = pw.CharField(default="queued", index=True)  # one of RUN_STATUSES
    # created | edited | user | schedule | dependency | retry
    trigger = pw.CharField(default="user")
    requested_by = pw.ForeignKeyField(User, null=True, backref="runs", on_delete="SET NULL")
    at = pw.DateTimeField(null=True)  # the evaluation time
    size = pw.IntegerField(null=True)
    entered = pw.IntegerField(null=True)
    exited = pw.IntegerField(null=True)
    attempts = pw.IntegerField(default=0)
    error = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("segment", "created_at"), False),)

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class SegmentChange(BaseModel):
    """The entry/exit log: a customer entered or exited a segment at a time.

    `run` is the run that found the change; null for real-time re-checks.
    """

    # no single-column index on segment (dropped in 0009) or customer (0018): composite ones start with them
    segment = pw.ForeignKeyField(Segment, backref="changes", on_delete="CASCADE", index=False)
    customer = pw.ForeignKeyField(Customer, backref="segment_changes", on_delete="CASCADE", index=False)
    change = pw.CharField()  # entered | exited
    at = pw.DateTimeField()
    # indexed on SQLite only (0025): PostgreSQL's trigger finds a deleted run's rows by segment
    run = pw.ForeignKeyField(SegmentRun, null=True, backref="changes", on_delete="SET NULL")
    # True: logged for a quiet mark (an import without triggers): fires no trigger; null otherwise
    quiet = pw.BooleanField(null=True)
    # made by hand in a static segment (one customer, a list upload, a snapshot), and by whom
    manual = pw.BooleanField(null=True)  # true; null for runs and re-checks (their INSERTs name no such column)
    # indexed only where not null (0022): a run's rows name no user
    user = pw.ForeignKeyField(User, null=True, backref="segment_changes", on_delete="SET NULL", index=False)

    class Meta:
        # On PostgreSQL the four references are not foreign keys in the database
        # (0022): triggers on delete do the cascades, a full run skips row checks.
        indexes = (
            (("segment", "at"), False),
            (("segment", "customer", "at"), False),  # a member's log in order (analytics)
            (("customer", "at"), False),  # SQLite only (0025): PostgreSQL reads a customer's log by segment
        )


class SegmentVersion(BaseModel):
    """A saved definition of a segment (migration 0014), numbered from 1 per segment.

    `size`/`computed_at`: of the first run finished after the save (null until
    then); `restored_from`: the number of the version a restore copied.
    """

    segment = pw.ForeignKeyField(Segment, backref="versions", on_delete="CASCADE", index=False)
    number = pw.IntegerField()
    definition = JSONField()
    type = pw.CharField()
    interval_minutes = pw.IntegerField(null=True)
    created_by = pw.ForeignKeyField(User, null=True, backref="segment_versions", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    restored_from = pw.IntegerField(null=True)
    size = pw.IntegerField(null=True)
    computed_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("segment", "number"), True),)


class SegmentSize(BaseModel):
    """A point of a segment's size over time (the sparkline and size chart)."""

    segment = pw.ForeignKeyField(Segment, backref="sizes", on_delete="CASCADE", index=False)
    at = pw.DateTimeField()
    size = pw.IntegerField()

    class Meta:
        indexes = ((("segment", "at"), False),)


class SegmentFigures(BaseModel):
    """A segment's figures for the list and its page (webapp.segments.figures),
    cached per computation: `computed_for` is the segment's `computed_at` they
    were read for. Segment id 0: the whole base. No foreign key (see 0017)."""

    segment_id = pw.BigIntegerField(primary_key=True)
    computed_for = pw.DateTimeField(null=True)
    at = pw.DateTimeField()
    members = pw.BigIntegerField(default=0)
    email = pw.BigIntegerField(default=0)  # reachable by email (webapp.reach)
    sms = pw.BigIntegerField(default=0)
    revenue_cents = pw.BigIntegerField(default=0)  # orders of the last 12 months
    orders = pw.BigIntegerField(default=0)
    predicted = pw.BigIntegerField(default=0)  # members with a predicted value
    clv = pw.DoubleField(null=True)  # their predicted value, summed (currency units)


class Notification(BaseModel):
    """An in-app notification for a user (the bell list and toasts)."""

    user = pw.ForeignKeyField(User, backref="notifications", on_delete="CASCADE", index=False)
    message = pw.TextField()
    link = pw.CharField(null=True)
    level = pw.CharField(default="info")  # info | error
    created_at = pw.DateTimeField(default=utcnow)
    read_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "read_at"), False),)


class OutboxEmail(BaseModel):
    """An email the app sent, or, with no SMTP configured, would have sent."""

    to = pw.CharField()
    subject = pw.CharField()
    body = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow, index=True)
    delivered = pw.BooleanField(default=False)  # went out over SMTP
    error = pw.TextField(null=True)


# --- API tokens and exports ------------------------------------------------


class ApiToken(BaseModel):
    """A REST API token of a user (it acts with the user's role).

    Only the SHA-256 of the secret is stored; the secret is shown once.
    """

    user = pw.ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    name = pw.CharField(default="")
    token_hash = pw.CharField(unique=True)
    prefix = pw.CharField(default="")  # the first characters, to tell tokens apart in lists
    created_at = pw.DateTimeField(default=utcnow)
    last_used_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)


EXPORT_FORMATS = ("csv", "xlsx")
EXPORT_STATUSES = ("queued", "running", "done", "failed", "expired")  # expired: the file was deleted


class ExportRun(BaseModel):
    """One export of customers (a segment's members or the filtered customer
    list) to a CSV or XLSX file under instance/exports/."""

    user = pw.ForeignKeyField(User, null=True, backref="exports", on_delete="SET NULL")
    segment = pw.ForeignKeyField(Segment, null=True, backref="exports", on_delete="SET NULL")
    source = JSONField()  # {"segment": code} or {"q": text, "type": contact|company|""}
    columns = JSONField()  # column names, in order (see webapp.export)
    format = pw.CharField(default="csv")  # one of EXPORT_FORMATS
    bom = pw.BooleanField(default=False)
    # The header row: None, the field codes (import reads them back); a language code, the names in it.
    headers = pw.CharField(null=True)
    status = pw.CharField(default="queued", index=True)  # one of EXPORT_STATUSES
    rows_total = pw.IntegerField(null=True)
    rows_done = pw.IntegerField(default=0)
    file_name = pw.CharField(default="")
    file_path = pw.CharField(null=True)
    error = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow, index=True)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)


# --- activation: mailings, triggers, tasks (see webapp.activation) ------------

# held_out: in the control group (`sent_at`: when); capped: over a frequency cap
RECIPIENT_STATUSES = ("pending", "sending", "sent", "failed", "skipped", "held_out", "capped")


class MailingRecipient(BaseModel):
    """One message of a mailing to one customer: materialised when a campaign
    starts (or a trigger step fires), then claimed, sent and marked by the
    senders. `execution_id` is 0 for campaigns, the trigger execution's id for
    trigger messages (a customer gets a trigger's message once per entry).

    No foreign key constraints in the database (migration 0006): a million
    rows are inserted at once, and PostgreSQL would check each with a trigger.
    A deleted customer's rows stay as the record of what was sent."""

    mailing = pw.ForeignKeyField(Mailing, backref="recipients", on_delete="CASCADE")
    customer = pw.ForeignKeyField(Customer, backref="mailing_recipients", on_delete="CASCADE")
    execution_id = pw.BigIntegerField(default=0)
    status = pw.CharField(default="pending")  # one of RECIPIENT_STATUSES
    reason = pw.CharField(null=True)  # why skipped or failed
    claim = pw.CharField(null=True)  # the sender holding it while `sending`
    claimed_at = pw.DateTimeField(null=True)
    sent_at = pw.DateTimeField(null=True)
    attempts = pw.IntegerField(default=0)
    not_before = pw.DateTimeField(null=True)  # waiting for quiet hours to end (migration 0015)

    class Meta:
        indexes = (
            (("mailing", "customer", "execution_id"), True),
            (("mailing", "status"), False),
        )


class OutboxSms(BaseModel):
    """An SMS that, with no gateway configured (SMS_GATEWAY_URL), was not sent."""

    to = pw.CharField()
    text = pw.TextField()
    mailing = pw.ForeignKeyField(Mailing, null=True, backref="outbox_sms", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow, index=True)


class ContactLog(BaseModel):
    """A message a frequency cap counts: written when a sender claims it,
    removed if it is not sent (migration 0015; webapp.activation.limits)."""

    customer_id = pw.IntegerField()
    channel = pw.CharField()
    at = pw.DateTimeField()
    recipient_id = pw.BigIntegerField(unique=True)

    class Meta:
        indexes = ((("customer_id", "channel", "at"), False),)


class ContactLock(BaseModel):
    """Locked per customer and channel while a sender decides a cap."""

    customer_id = pw.IntegerField()
    channel = pw.CharField()

    class Meta:
        primary_key = pw.CompositeKey("customer_id", "channel")


class AccountSetting(BaseModel):
    """An account-wide setting changed on a settings page (migration 0020): the
    value of the environment variable of the same `name` (FREQUENCY_CAP_EMAIL,
    QUIET_HOURS_SMS, GLOBAL_CONTROL_PERCENT...) as text, in the variable's own
    format. A row wins over the environment; without one the environment's
    value applies (webapp.activation.limits)."""

    name = pw.CharField(unique=True)
    value = pw.TextField(default="")
    updated_at = pw.DateTimeField(default=utcnow)
    updated_by = pw.ForeignKeyField(User, null=True, backref="account_settings", on_delete="SET NULL")

    class Meta:
        table_name = "account_setting"


TRIGGER_EVENTS = ("entered", "exited")
STEP_ACTIONS = ("email", "sms", "task", "notify", "webhook", "unsubscribe")


class Trigger(BaseModel):
    """On entry into (or exit from) a segment, run steps, each after a delay."""

    name = pw.CharField()
    segment = pw.ForeignKeyField(Segment, backref="triggers", on_delete="CASCADE")
    event = pw.CharField(default="entered")  # one of TRIGGER_EVENTS
    active = pw.BooleanField(default=True)
    # The last segment_change id read: later entries/exits are new events.
    last_change_id = pw.BigIntegerField(default=0)
    created_by = pw.ForeignKeyField(User, null=True, backref="triggers", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    # Copied to the steps' mailings (migration 0015).
    holdout_percent = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
    transactional = pw.BooleanField(default=False, constraints=[pw.SQL("DEFAULT FALSE")])
    priority = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
    conversion_days = pw.IntegerField(default=7, constraints=[pw.SQL("DEFAULT 7")])


class TriggerStep(BaseModel):
    """One action of a trigger, `delay_seconds` after the entry/exit."""

    trigger = pw.ForeignKeyField(Trigger, backref="steps", on_delete="CASCADE", index=False)
    position = pw.IntegerField(default=0)
    delay_seconds = pw.BigIntegerField(default=0)
    # Run only if the customer is still in (for exit triggers: still out of)
    # the segment; otherwise the chain stops here.
    only_members = pw.BooleanField(default=True)
    action = pw.CharField()  # one of STEP_ACTIONS
    mailing = pw.ForeignKeyField(Mailing, null=True, backref="trigger_steps", on_delete="SET NULL")
    user = pw.ForeignKeyField(User, null=True, backref="trigger_steps", on_delete="SET NULL")
    config = JSONField(null=True)  # per action: task title/due days, notice text, webhook url/secret

    class Meta:
        indexes = ((("trigger", "position"), False),)


EXECUTION_STATUSES = ("active", "done", "stopped", "failed")


class TriggerExecution(BaseModel):
    """A trigger firing for one entry/exit event (unique per event): its next
    step, when that is due, and whether the chain is done or stopped."""

    trigger = pw.ForeignKeyField(Trigger, backref="executions", on_delete="CASCADE", index=False)
    change_id = pw.BigIntegerField()  # the segment_change row
    customer = pw.ForeignKeyField(Customer, backref="trigger_executions", on_delete="CASCADE")
    event_at = pw.DateTimeField()
    step = pw.IntegerField(default=0)  # index of the next step
    due_at = pw.DateTimeField()
    status = pw.CharField(default="active")  # one of EXECUTION_STATUSES
    claim = pw.CharField(null=True)
    claimed_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)
    error = pw.TextField(null=True)

    class Meta:
        indexes = (
            (("trigger", "change_id"), True),
            (("status", "due_at"), False),
            (("customer",), False),
        )


class Task(BaseModel):
    """A to-do for a user (a customer's manager): by hand or from a trigger."""

    customer = pw.ForeignKeyField(Customer, null=True, backref="tasks", on_delete="CASCADE", index=False)
    assignee = pw.ForeignKeyField(User, null=True, backref="tasks", on_delete="SET NULL", index=False)
    title = pw.CharField()
    note = pw.TextField(null=True)
    due_on = pw.DateField(null=True)
    done_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.ForeignKeyField(User, null=True, backref="created_tasks", on_delete="SET NULL")
    trigger = pw.ForeignKeyField(Trigger, null=True, backref="tasks", on_delete="SET NULL")

    class Meta:
        indexes = (
            (("assignee", "done_at", "due_on"), False),
            (("customer", "created_at"), False),
        )


WEBHOOK_STATUSES = ("pending", "sending", "done", "failed")


class WebhookCall(BaseModel):
    """A webhook POST of a trigger step: retried with backoff, result kept."""

    step = pw.ForeignKeyField(TriggerStep, null=True, backref="webhook_calls", on_delete="SET NULL")
    execution_id = pw.BigIntegerField(null=True)
    customer = pw.ForeignKeyField(Customer, null=True, backref="webhook_calls", on_delete="SET NULL")
    url = pw.TextField()
    body = pw.TextField()  # the JSON sent
    status = pw.CharField(default="pending")  # one of WEBHOOK_STATUSES
    attempts = pw.IntegerField(default=0)
    next_at = pw.DateTimeField(default=utcnow)
    claim = pw.CharField(null=True)
    claimed_at = pw.DateTimeField(null=True)
    response_status = pw.IntegerField(null=True)
    error = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    finished_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("status", "next_at"), False),)


# --- events derived from orders (see webapp.events) ----------------------------

BACKFILL_STATUSES = ("queued", "running", "done", "failed")


class EventDefinition(BaseModel):
    """An event recorded for every order matching a condition: `match` and
    `filters` of an Orders block of the segment definition spec (no `having`).

    One definition per event type. `revision` goes up when the condition
    changes; the backfill job clears the type's derived occurrences once per
    revision (`cleared_revision`) and records past orders by id range,
    committing `next_order_id` with each chunk so a re-run resumes there.
    """

    name = pw.CharField()
    event_type = pw.ForeignKeyField(EventType, unique=True, backref="definitions", on_delete="CASCADE")
    match = pw.CharField(default="all")
    filters = JSONField()
    active = pw.BooleanField(default=True)
    revision = pw.IntegerField(default=1)
    status = pw.CharField(default="queued")  # one of BACKFILL_STATUSES
    cleared_revision = pw.IntegerField(default=0)
    first_order_id = pw.BigIntegerField(default=0)
    next_order_id = pw.BigIntegerField(default=0)
    last_order_id = pw.BigIntegerField(default=0)
    recorded = pw.BigIntegerField(default=0)
    error = pw.TextField(null=True)
    created_by = pw.ForeignKeyField(User, null=True, backref="event_definitions", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)

    @property
    def condition(self):
        return {"match": self.match, "filters": self.filters}


MODELS = [
    User,
    Customer,
    Tag,
    CustomerTag,
    CustomField,
    CustomValue,
    Shop,
    ProductGroup,
    Product,
    Order,
    OrderItem,
    CustomerOrderStats,
    Pipeline,
    Stage,
    Deal,
    Mailing,
    MessageEvent,
    EventType,
    EventOccurrence,
    Segment,
    SegmentMember,
    ImportRun,
    ChangedCustomer,
    SegmentRun,
    SegmentChange,
    SegmentSize,
    SegmentFigures,
    Notification,
    OutboxEmail,
    ApiToken,
    ExportRun,
    MailingRecipient,
    OutboxSms,
    ContactLog,
    ContactLock,
    AccountSetting,
    Trigger,
    TriggerStep,
    TriggerExecution,
    Task,
    WebhookCall,
    EventDefinition,
]


# --- RFM analysis (see webapp.rfm) --------------------------------------------

RFM_METHODS = ("quintiles", "thresholds")
RFM_MONETARY = ("total", "average")
RFM_RUN_STATUSES = ("queued", "running", "done", "failed")


class RfmSettings(BaseModel):
    """How RFM scores are computed: one row (id 1), edited on the RFM page."""

    method = pw.CharField(default="quintiles")  # one of RFM_METHODS
    monetary = pw.CharField(default="total")  # total spent | average order value
    # Thresholds: four increasing cut points each (days, orders, cents).
    r_cuts = JSONField(null=True)
    f_cuts = JSONField(null=True)
    m_cuts = JSONField(null=True)
    # Folded order statuses that do not count (orders with no status count).
    excluded_statuses = JSONField(null=True)
    as_of = pw.DateField(null=True)  # null: today
    updated_at = pw.DateTimeField(default=utcnow)
    updated_by = pw.ForeignKeyField(User, null=True, backref="rfm_settings", on_delete="SET NULL")


class RfmRun(BaseModel):
    """One RFM computation: its settings as used, status and result counts."""

    status = pw.CharField(default="queued", index=True)  # one of RFM_RUN_STATUSES
    trigger = pw.CharField(default="user")  # user | nightly | demo
    config = JSONField()  # the settings it computes with (as_of resolved to a date)
    as_of = pw.DateField()
    scored = pw.IntegerField(null=True)  # customers with counting orders
    unscored = pw.IntegerField(null=True)  # customers without
    requested_by = pw.ForeignKeyField(User, null=True, backref="rfm_runs", on_delete="SET NULL")
    error = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)


class RfmScore(BaseModel):
    """A customer's RFM values and scores (1-5, 5 best) from the last computation.

    No foreign key constraint in the database (migration 0008). Rows come
    from orders, which go with their customer, and are replaced as a whole;
    cell lists join `customer`, so a customer deleted since is left out."""

    customer = pw.ForeignKeyField(Customer, primary_key=True, backref="rfm_score", on_delete="CASCADE")
    r = pw.SmallIntegerField()
    f = pw.SmallIntegerField()
    m = pw.SmallIntegerField()
    recency_days = pw.IntegerField()
    frequency = pw.IntegerField()
    monetary_cents = pw.BigIntegerField()
    as_of = pw.DateField()
    computed_at = pw.DateTimeField()

    class Meta:
        indexes = ((("r", "f", "monetary_cents"), False),)


class RfmCell(BaseModel):
    """One cell of the R×F grid of the last computation (for the heat map)."""

    r = pw.SmallIntegerField()
    f = pw.SmallIntegerField()
    customers = pw.IntegerField()
    monetary_cents = pw.BigIntegerField()  # the sum over the cell's customers

    class Meta:
        primary_key = pw.CompositeKey("r", "f")


MODELS += [RfmSettings, RfmRun, RfmScore, RfmCell]


# --- predictions (issue 16) --------------------------------------------------

PREDICTION_STATUSES = ("queued", "running", "done", "failed", "no_fit")
PREDICTION_TIME_UNITS = ("day", "week")
PREDICTED_FIELDS = ("p_alive", "orders_30d", "orders_90d", "orders_365d", "aov", "clv")


class PredictionFit(BaseModel):
    """One fit of the purchase models (webapp.predictions.service) and its scoring.

    `status` no_fit: the data were too few to trust a fit; `error_code` and
    `error` (its numbers, JSON) say why, translated when shown."""

    status = pw.CharField(default="queued", index=True)  # one of PREDICTION_STATUSES
    trigger = pw.CharField(default="user")  # user | nightly | demo | cli
    time_unit = pw.CharField(default="week")
    calibration_end = pw.DateField()
    annual_discount_rate = pw.DoubleField(default=0.10)
    first_order_date = pw.DateField(null=True)
    last_order_date = pw.DateField(null=True)
    customers = pw.IntegerField(null=True)  # customers with an order by the calibration end
    repeat_customers = pw.IntegerField(null=True)
    scored = pw.IntegerField(null=True)
    bgnbd = JSONField(null=True)  # r, alpha, a, b, log_likelihood, ...
    gamma_gamma = JSONField(null=True)  # p, q, gamma, log_likelihood, ...
    charts = JSONField(null=True)  # tracking and histogram series for the model page
    error_code = pw.CharField(null=True)
    error = JSONField(null=True)
    requested_by = pw.ForeignKeyField(User, null=True, backref="prediction_fits", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)


class CustomerPrediction(BaseModel):
    """A customer's scores from the last successful fit (no row: no orders, all null).

    Money (aov, clv) in currency units, as floats: they are model estimates."""

    customer = pw.ForeignKeyField(Customer, primary_key=True, backref="prediction", on_delete="CASCADE")
    p_alive = pw.DoubleField(null=True, index=True)
    orders_30d = pw.DoubleField(null=True, index=True)
    orders_90d = pw.DoubleField(null=True, index=True)
    orders_365d = pw.DoubleField(null=True, index=True)
    aov = pw.DoubleField(null=True, index=True)
    clv = pw.DoubleField(null=True, index=True)


MODELS += [PredictionFit, CustomerPrediction]


# --- audit log (webapp.audit) -----------------------------------------------


class AuditEvent(BaseModel):
    """One entry of the audit log: who (the user, and their email as it was),
    when, what (an action such as `segment.update`), on which object (its table,
    id and name as it was) and the details of the change."""

    created_at = pw.DateTimeField(default=utcnow, index=True)
    actor = pw.ForeignKeyField(User, null=True, backref="audit_events", on_delete="SET NULL")
    actor_email = pw.CharField(default="")
    action = pw.CharField(index=True)
    object_type = pw.CharField(default="")
    object_id = pw.IntegerField(null=True)
    object_label = pw.CharField(default="")
    details = JSONField(default=dict)
    address = pw.CharField(default="")

    class Meta:
        table_name = "audit_event"
        indexes = ((("object_type", "object_id"), False),)


MODELS += [AuditEvent]
