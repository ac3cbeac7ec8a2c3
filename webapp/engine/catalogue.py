"""The field catalogue: every field and aggregate a definition may name.

Standard fields are fixed here; custom fields are read from the database on
each call, so a new custom field is filterable at once. The builder renders
its pickers from `catalogue().as_json()`: labels are for people, names are what
definitions store.
"""

from dataclasses import dataclass
from dataclasses import field as dc_field

from ..i18n import LANGUAGES, _, pgettext
from ..models import CHANNELS, CUSTOMER_TYPES, GENDERS, MESSAGE_KINDS, STAGE_KINDS, CustomField

ENTITIES = ("customer", "order", "deal", "message", "event", "segment")
RECORD_ENTITIES = ("order", "deal", "message", "event")

# Value types as the spec names them; `number` with money=True is exact to the cent.
OPS_BY_TYPE = {
    "string": ("in", "contains", "is_empty", "is_not_empty"),
    "enum": ("in", "is_empty", "is_not_empty"),
    "reference": ("in", "is_empty", "is_not_empty"),
    "number": ("between", "is_empty", "is_not_empty"),
    "date": ("between", "relative", "is_empty", "is_not_empty"),
    "datetime": ("between", "relative", "is_empty", "is_not_empty"),
    "boolean": ("is", "is_empty", "is_not_empty"),
}
ALL_OPS = ("in", "contains", "between", "relative", "is", "is_empty", "is_not_empty")

CUSTOM_TYPE_MAP = {
    "string": "string",
    "enum": "enum",
    "integer": "number",
    "decimal": "number",
    "date": "date",
    "boolean": "boolean",
}


def entity_label(entity):
    """The block's name for people, as messages show it: "Block 2 (Deals)"."""
    return {
        "customer": _("Customer"),
        "order": _("Orders"),
        "deal": _("Deals"),
        "message": _("Messages"),
        "event": _("Events"),
        "segment": _("Segments"),
    }.get(entity, entity)


def op_labels():
    return {
        "in": _("is one of / is none of"),
        "contains": _("contains"),
        "between": _("between"),
        "relative": _("in days from today"),
        "is": _("is"),
        "is_empty": _("is empty"),
        "is_not_empty": _("is not empty"),
    }


@dataclass(frozen=True)
class FieldInfo:
    """One filterable field (or aggregate) of a block entity.

    `type` is one of OPS_BY_TYPE; `reference` names what the values of a
    reference or multi-valued field are (for autocomplete): shop, pipeline,
    stage, user, tag, product, product_group, mailing, event, segment.
    """

    name: str
    label: str
    type: str
    ops: tuple
    options: tuple = None
    reference: str = None
    multi: bool = False
    money: bool = False
    integer: bool = False
    custom_field_id: int = None
    custom_type: str = None

    def as_json(self):
        data = {"name": self.name, "label": self.label, "type": self.type, "ops": list(self.ops)}
        if self.options is not None:
            data["options"] = list(self.options)
        if self.reference:
            data["reference"] = self.reference
        if self.multi:
            data["multi"] = True
        if self.money:
            data["money"] = True
        if self.custom_type:
            data["custom_type"] = self.custom_type
        return data


@dataclass(frozen=True)
class EntityInfo:
    entity: str
    label: str
    fields: dict
    aggregates: dict = dc_field(default_factory=dict)


@dataclass(frozen=True)
class Catalogue:
    entities: dict

    def field(self, entity, name):
        info = self.entities.get(entity)
        return info.fields.get(name) if info else None

    def aggregate(self, entity, name):
        info = self.entities.get(entity)
        return info.aggregates.get(name) if info else None

    def as_json(self):
        """Plain data for the builder: entities in order, fields and aggregates with labels."""
        return {
            "entities": [
                {
                    "entity": e.entity,
                    "label": e.label,
                    "fields": [f.as_json() for f in e.fields.values()],
                    "aggregates": [a.as_json() for a in e.aggregates.values()],
                }
                for e in self.entities.values()
            ],
            "ops": op_labels(),
        }


def _f(name, label, type_, **kw):
    ops = kw.pop("ops", None) or OPS_BY_TYPE[type_]
    if kw.get("options") is not None:
        kw["options"] = tuple(kw["options"])
    return FieldInfo(name=name, label=label, type=type_, ops=tuple(ops), **kw)


def _standard_fields():
    return {
        "customer": [
            _f("type", _("Type"), "enum", options=CUSTOMER_TYPES),
            _f("first_name", _("First name"), "string"),
            _f("last_name", _("Last name"), "string"),
            _f("company_name", _("Company name"), "string"),
            _f("email", _("Email"), "string"),
            _f("phone", _("Phone"), "string"),
            _f("gender", _("Gender"), "enum", options=GENDERS),
            _f("birth_date", _("Birth date"), "date"),
            _f("age", _("Age"), "number", integer=True),
            _f("city", _("City"), "string"),
            _f("country", _("Country"), "string"),
            _f("source", _("Source"), "string"),
            _f("manager", _("Manager"), "reference", reference="user"),
            _f("email_consent", _("Email consent"), "boolean"),
            _f("sms_consent", _("SMS consent"), "boolean"),
            _f("language", _("Language"), "enum", options=LANGUAGES),
            _f("created_at", _("Created"), "datetime"),
            _f("tags", _("Tags"), "reference", reference="tag", multi=True),
            _f("predicted.p_alive", _("Predicted: probability still buying (0–1)"), "number"),
            _f("predicted.orders_30d", _("Predicted: orders in the next 30 days"), "number"),
            _f("predicted.orders_90d", _("Predicted: orders in the next 90 days"), "number"),
            _f("predicted.orders_365d", _("Predicted: orders in the next 365 days"), "number"),
            _f("predicted.aov", _("Predicted: average order value"), "number"),
            _f("predicted.clv", _("Predicted: value over the next 12 months"), "number"),
        ],
        "order": [
            _f("ordered_at", _("Order date"), "datetime"),
            _f("status", _("Order status"), "string"),
            _f("shop", _("Shop"), "reference", reference="shop"),
            _f("total", _("Order total"), "number", money=True),
            _f("product", _("Product (SKU)"), "reference", reference="product", multi=True),
            _f("product_group", _("Product group"), "reference", reference="product_group", multi=True),
        ],
        "deal": [
            _f("pipeline", _("Deal pipeline"), "reference", reference="pipeline"),
            _f("stage", _("Deal stage"), "reference", reference="stage"),
            _f("stage_kind", _("Deal stage kind"), "enum", options=STAGE_KINDS),
            _f("amount", _("Deal amount"), "number", money=True),
            _f("manager", _("Deal manager"), "reference", reference="user"),
            _f("created_at", _("Deal created"), "datetime"),
            _f("closed_at", _("Deal closed"), "datetime"),
        ],
        "message": [
            _f("channel", _("Channel"), "enum", options=CHANNELS),
            _f("kind", _("Message event"), "enum", options=MESSAGE_KINDS),
            _f("mailing", _("Mailing"), "reference", reference="mailing"),
            _f("occurred_at", _("Message date"), "datetime"),
        ],
        "event": [
            _f("event", _("Event"), "reference", reference="event"),
            _f("occurred_at", _("Event date"), "datetime"),
        ],
        "segment": [
            _f("segment", _("Segment"), "reference", reference="segment", ops=("in",)),
        ],
    }


# Which aggregates each record entity has (spec: sum and avg for orders and
# deals, quantity for orders only).
AGGREGATES_BY_ENTITY = {
    "order": ("count", "sum", "avg", "quantity", "first_at", "last_at"),
    "deal": ("count", "sum", "avg", "first_at", "last_at"),
    "message": ("count", "first_at", "last_at"),
    "event": ("count", "first_at", "last_at"),
}
ALL_AGGREGATES = ("count", "sum", "avg", "quantity", "first_at", "last_at")


def _aggregates(entity):
    labels = {
        "count": _f("count", _("Number of records"), "number", integer=True),
        "sum": _f("sum", pgettext("aggregate", "Sum"), "number", money=True),
        "avg": _f("avg", _("Average"), "number", money=True),
        "quantity": _f("quantity", _("Quantity of items"), "number", integer=True),
        "first_at": _f("first_at", _("First date"), "datetime"),
        "last_at": _f("last_at", _("Last date"), "datetime"),
    }
    return {name: labels[name] for name in AGGREGATES_BY_ENTITY.get(entity, ())}


def catalogue():
    """The field catalogue: standard fields plus every custom field in the database.

    Returns a `Catalogue`: `.field(entity, name)`, `.aggregate(entity, name)`,
    `.entities[entity].fields` (ordered) and `.as_json()` for the builder.
    """
    standard = _standard_fields()
    custom = {}
    for cf in CustomField.select().order_by(CustomField.position, CustomField.id):  # one query for all entities
        custom.setdefault(cf.entity, []).append(cf)
    entities = {}
    for entity in ENTITIES:
        fields = {f.name: f for f in standard[entity]}
        if entity in ("customer", "order", "deal"):
            for cf in custom.get(entity, ()):
                type_ = CUSTOM_TYPE_MAP[cf.type]
                fields["custom." + cf.code] = _f(
                    "custom." + cf.code,
                    cf.name,
                    type_,
                    options=tuple(cf.options or ()) if cf.type == "enum" else None,
                    integer=cf.type == "integer",
                    custom_field_id=cf.id,
                    custom_type=cf.type,
                )
        entities[entity] = EntityInfo(
            entity=entity, label=entity_label(entity), fields=fields, aggregates=_aggregates(entity)
        )
    return Catalogue(entities=entities)
