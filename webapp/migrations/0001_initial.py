"""Initial schema: the customer base, custom fields, segments and users."""

from peewee import *


def up(migrator, db):
    class User(Model):
        email = CharField(unique=True)
        email_ci = CharField(unique=True)
        name = CharField(default="")
        password_hash = CharField()
        role = CharField(default="marketer")
        active = BooleanField(default=True)
        notify_email = BooleanField(default=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "app_user"

    db.create_tables([User])

    class Customer(Model):
        external_id = CharField(unique=True)
        type = CharField(index=True, default="contact")
        first_name = CharField(null=True)
        last_name = CharField(null=True)
        company_name = CharField(null=True)
        email = CharField(null=True)
        phone = CharField(null=True)
        gender = CharField(index=True, null=True)
        birth_date = DateField(null=True)
        birth_md = SmallIntegerField(index=True, null=True)
        city = CharField(null=True)
        country = CharField(null=True)
        source = CharField(null=True)
        manager = ForeignKeyField(User, null=True, on_delete="SET NULL")
        email_consent = BooleanField(index=True, default=False)
        sms_consent = BooleanField(index=True, default=False)
        created_at = DateTimeField(index=True)
        updated_at = DateTimeField()
        first_name_ci = CharField(index=True, null=True)
        last_name_ci = CharField(index=True, null=True)
        company_name_ci = CharField(index=True, null=True)
        email_ci = CharField(index=True, null=True)
        phone_ci = CharField(index=True, null=True)
        city_ci = CharField(index=True, null=True)
        country_ci = CharField(index=True, null=True)
        source_ci = CharField(index=True, null=True)

        class Meta:
            database = db
            table_name = "customer"

    db.create_tables([Customer])

    class CustomerOrderStats(Model):
        customer = ForeignKeyField(Customer, primary_key=True, on_delete="CASCADE")
        orders_count = IntegerField(index=True, default=0)
        total_cents = BigIntegerField(index=True, default=0)
        quantity = BigIntegerField(default=0)
        first_at = DateTimeField(index=True, null=True)
        last_at = DateTimeField(index=True, null=True)

        class Meta:
            database = db
            table_name = "customer_order_stats"

    db.create_tables([CustomerOrderStats])

    class Tag(Model):
        name = CharField()
        name_ci = CharField(unique=True)

        class Meta:
            database = db
            table_name = "tag"

    db.create_tables([Tag])

    class CustomerTag(Model):
        customer = ForeignKeyField(Customer, on_delete="CASCADE")
        tag = ForeignKeyField(Tag, on_delete="CASCADE")

        class Meta:
            database = db
            table_name = "customer_tag"
            primary_key = CompositeKey("customer", "tag")
            indexes = ((("tag", "customer"), False),)

    db.create_tables([CustomerTag])

    class CustomField(Model):
        entity = CharField()
        code = CharField()
        name = CharField()
        type = CharField()
        options = TextField(null=True)
        position = IntegerField(default=0)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "custom_field"
            indexes = ((("entity", "code"), True),)

    db.create_tables([CustomField])

    class CustomValue(Model):
        field = ForeignKeyField(CustomField, on_delete="CASCADE")
        record_id = BigIntegerField()
        value_str = TextField(null=True)
        value_ci = TextField(null=True)
        value_num = DecimalField(null=True, max_digits=24, decimal_places=6)
        value_date = DateField(null=True)
        value_bool = BooleanField(null=True)

        class Meta:
            database = db
            table_name = "custom_value"
            primary_key = CompositeKey("field", "record_id")
            indexes = (
                (("field", "value_ci"), False),
                (("field", "value_num"), False),
                (("field", "value_date"), False),
                (("record_id",), False),
            )

    db.create_tables([CustomValue])

    class Pipeline(Model):
        name = CharField()
        name_ci = CharField(unique=True)
        position = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "pipeline"

    db.create_tables([Pipeline])

    class Stage(Model):
        pipeline = ForeignKeyField(Pipeline, on_delete="CASCADE")
        name = CharField()
        name_ci = CharField()
        kind = CharField(default="open")
        position = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "stage"
            indexes = ((("pipeline", "name_ci"), True),)

    db.create_tables([Stage])

    class Deal(Model):
        external_id = CharField(unique=True)
        customer = ForeignKeyField(Customer, on_delete="CASCADE")
        pipeline = ForeignKeyField(Pipeline, on_delete="CASCADE")
        stage = ForeignKeyField(Stage, on_delete="CASCADE")
        amount_cents = BigIntegerField(default=0)
        manager = ForeignKeyField(User, null=True, on_delete="SET NULL")
        created_at = DateTimeField()
        closed_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "deal"
            indexes = ((("customer", "pipeline"), False), (("pipeline", "stage", "customer"), False))

    db.create_tables([Deal])

    class EventType(Model):
        code = CharField()
        code_ci = CharField(unique=True)
        name = CharField(default="")

        class Meta:
            database = db
            table_name = "event_type"

    db.create_tables([EventType])

    class EventOccurrence(Model):
        customer = ForeignKeyField(Customer, on_delete="CASCADE")
        event_type = ForeignKeyField(EventType, on_delete="CASCADE")
        occurred_at = DateTimeField()
        properties = TextField(null=True)

        class Meta:
            database = db
            table_name = "event_occurrence"
            indexes = ((("customer", "occurred_at"), False), (("event_type", "customer"), False))

    db.create_tables([EventOccurrence])

    class Mailing(Model):
        name = CharField()
        name_ci = CharField(unique=True)
        channel = CharField(default="email")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "mailing"

    db.create_tables([Mailing])

    class MessageEvent(Model):
        customer = ForeignKeyField(Customer, on_delete="CASCADE")
        channel = CharField()
        kind = CharField()
        mailing = ForeignKeyField(Mailing, null=True, on_delete="SET NULL")
        occurred_at = DateTimeField()

        class Meta:
            database = db
            table_name = "message_event"
            indexes = (
                (("customer", "occurred_at"), False),
                (("kind", "occurred_at"), False),
                (("mailing", "kind"), False),
            )

    db.create_tables([MessageEvent])

    class Shop(Model):
        name = CharField()
        name_ci = CharField(unique=True)

        class Meta:
            database = db
            table_name = "shop"

    db.create_tables([Shop])

    class Order(Model):
        external_id = CharField(unique=True)
        customer = ForeignKeyField(Customer, on_delete="CASCADE")
        ordered_at = DateTimeField()
        status = CharField(null=True)
        status_ci = CharField(null=True)
        shop = ForeignKeyField(Shop, null=True, on_delete="SET NULL")
        total_cents = BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "orders"
            indexes = (
                (("customer", "ordered_at"), False),
                (("ordered_at",), False),
                (("shop", "customer"), False),
                (("status_ci", "customer"), False),
            )

    db.create_tables([Order])

    class ProductGroup(Model):
        parent = ForeignKeyField("self", null=True, on_delete="CASCADE")
        name = CharField()
        path = CharField()
        path_ci = CharField(unique=True)

        class Meta:
            database = db
            table_name = "product_group"

    db.create_tables([ProductGroup])

    class Product(Model):
        sku = CharField()
        sku_ci = CharField(unique=True)
        name = CharField(default="")
        group = ForeignKeyField(ProductGroup, null=True, on_delete="SET NULL")
        price_cents = BigIntegerField(null=True)

        class Meta:
            database = db
            table_name = "product"

    db.create_tables([Product])

    class OrderItem(Model):
        order = ForeignKeyField(Order, on_delete="CASCADE")
        product = ForeignKeyField(Product, on_delete="CASCADE")
        quantity = IntegerField(default=1)
        price_cents = BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "order_item"
            indexes = ((("product", "order"), False),)

    db.create_tables([OrderItem])

    class Segment(Model):
        code = CharField(unique=True)
        name = CharField()
        type = CharField(default="dynamic")
        active = BooleanField(default=True)
        in_analytics = BooleanField(default=False)
        system = BooleanField(default=False)
        definition = TextField()
        size = IntegerField(null=True)
        computed_at = DateTimeField(null=True)
        created_at = DateTimeField()
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "segment"

    db.create_tables([Segment])

    class SegmentMember(Model):
        segment = ForeignKeyField(Segment, on_delete="CASCADE")
        customer = ForeignKeyField(Customer, on_delete="CASCADE")
        since = DateTimeField()

        class Meta:
            database = db
            table_name = "segment_member"
            primary_key = CompositeKey("segment", "customer")
            indexes = ((("customer", "segment"), False),)

    db.create_tables([SegmentMember])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("segment_member"))
    migrator.migrate(migrator.drop_table("segment"))
    migrator.migrate(migrator.drop_table("order_item"))
    migrator.migrate(migrator.drop_table("product"))
    migrator.migrate(migrator.drop_table("product_group"))
    migrator.migrate(migrator.drop_table("orders"))
    migrator.migrate(migrator.drop_table("shop"))
    migrator.migrate(migrator.drop_table("message_event"))
    migrator.migrate(migrator.drop_table("mailing"))
    migrator.migrate(migrator.drop_table("event_occurrence"))
    migrator.migrate(migrator.drop_table("event_type"))
    migrator.migrate(migrator.drop_table("deal"))
    migrator.migrate(migrator.drop_table("stage"))
    migrator.migrate(migrator.drop_table("pipeline"))
    migrator.migrate(migrator.drop_table("custom_value"))
    migrator.migrate(migrator.drop_table("custom_field"))
    migrator.migrate(migrator.drop_table("customer_tag"))
    migrator.migrate(migrator.drop_table("tag"))
    migrator.migrate(migrator.drop_table("customer_order_stats"))
    migrator.migrate(migrator.drop_table("customer"))
    migrator.migrate(migrator.drop_table("app_user"))
