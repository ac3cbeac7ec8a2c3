"""Custom fields of customers, orders and deals: definitions and values.

One service for the admin page, import, API and demo data.
"""

import re

from ..audit import service as audit
from ..db import database
from ..i18n import _
from ..models import CUSTOM_ENTITIES, CUSTOM_TYPES, CustomField, CustomValue
from ..text import fold, slug
from ..values import parse_bool, parse_date, parse_decimal, parse_integer

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class FieldError(ValueError):
    """A readable reason; `field` names the form input it is about (name, code, type, options)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


def slugify(name):
    """A code from a display name: 'Favourite destination' -> 'favourite_destination',
    'Любимое направление' -> 'lyubimoe_napravlenie'."""
    code = slug(name)
    if code and not code[0].isalpha():
        code = "f_" + code
    return code[:63]


def fields_for(entity):
    return list(CustomField.select().where(CustomField.entity == entity).order_by(CustomField.position, CustomField.id))


def get_field(entity, code):
    return CustomField.get_or_none(CustomField.entity == entity, CustomField.code == code)


def clean_options(options):
    seen, result = set(), []
    for option in options or []:
        option = str(option).strip()
        if option and fold(option) not in seen:
            seen.add(fold(option))
            result.append(option)
    return result


def create_field(entity, code, name, type, options=None):
    """Create a custom field; FieldError says what is wrong."""
    if entity not in CUSTOM_ENTITIES:
        raise FieldError(_("Unknown entity “%(e)s”.", e=entity))
    code = (code or "").strip() or slugify(name)
    name = (name or "").strip() or code
    if not CODE_RE.match(code):
        raise FieldError(
            _("The code “%(code)s” must start with a letter and use only a-z, 0-9 and _.", code=code), field="code"
        )
    if type not in CUSTOM_TYPES:
        raise FieldError(_("Unknown type “%(t)s”.", t=type), field="type")
    options = clean_options(options) if type == "enum" else None
    if type == "enum" and not options:
        raise FieldError(_("An enum field needs at least one option."), field="options")
    if get_field(entity, code):
        raise FieldError(_("A field with the code “%(code)s” already exists.", code=code), field="code")
    position = CustomField.select().where(CustomField.entity == entity).count()
    field = CustomField.create(entity=entity, code=code, name=name, type=type, options=options, position=position)
    audit.record(None, "field.create", field, {"entity": entity, "type": type})
    return field


def rename_field(field, name, options=None):
    name = (name or "").strip()
    if not name:
        raise FieldError(_("The name cannot be empty."), field="name")
    field.name = name
    if field.type == "enum" and options is not None:
        options = clean_options(options)
        used = {
            v
            for (v,) in CustomValue.select(CustomValue.value_str).where(CustomValue.field == field).distinct().tuples()
        }
        missing = [v for v in used if fold(v) not in {fold(o) for o in options}]
        if missing:
            raise FieldError(
                _("Options in use cannot be removed: %(o)s.", o=", ".join(sorted(missing))), field="options"
            )
        field.options = options
    field.save()
    audit.record(None, "field.update", field)
    return field


def delete_field(field):
    """Delete the field and all its values, in one transaction."""
    with database.atomic():
        audit.record(None, "field.delete", field)
        CustomValue.delete().where(CustomValue.field == field).execute()
        field.delete_instance()


def parse_value(field, raw):
    """Text (or JSON value) to the typed value of this field; ValueError if it does not fit."""
    if field.type == "string":
        return None if raw is None or str(raw).strip() == "" else str(raw).strip()
    if field.type == "integer":
        return parse_integer(raw)
    if field.type == "decimal":
        return parse_decimal(raw)
    if field.type == "date":
        return parse_date(raw)
    if field.type == "boolean":
        return parse_bool(raw)
    if field.type == "enum":
        if raw is None or str(raw).strip() == "":
            return None
        for option in field.options or []:
            if fold(option) == fold(raw):
                return option
        raise ValueError(
            _(
                "“%(v)s” is not an option of %(f)s (options: %(o)s)",
                v=raw,
                f=field.name,
                o=", ".join(field.options or []),
            )
        )
    raise ValueError(field.type)


def value_row(field, record_id, value):
    """The custom_value row dict for a typed value (None: no row)."""
    if value is None:
        return None
    row = {
        "field": field.id,
        "record_id": record_id,
        "value_str": None,
        "value_ci": None,
        "value_num": None,
        "value_date": None,
        "value_bool": None,
    }
    if field.type in ("string", "enum"):
        row["value_str"], row["value_ci"] = value, fold(value)
    elif field.type in ("integer", "decimal"):
        row["value_num"] = value
    elif field.type == "date":
        row["value_date"] = value
    elif field.type == "boolean":
        row["value_bool"] = value
    return row


def set_value(field, record_id, value):
    """Store (or clear, for None) one typed value."""
    CustomValue.delete().where(CustomValue.field == field, CustomValue.record_id == record_id).execute()
    row = value_row(field, record_id, value)
    if row:
        CustomValue.insert(row).execute()


def typed_value(field, value):
    """The stored value of a CustomValue row in the field's type."""
    if field.type in ("string", "enum"):
        return value.value_str
    if field.type == "integer":
        return None if value.value_num is None else int(value.value_num)
    if field.type == "decimal":
        return value.value_num
    if field.type == "date":
        return value.value_date
    return value.value_bool


def values_for(entity, record_id):
    """[(field, typed value or None)] for every field of the entity, in order."""
    fields = fields_for(entity)
    stored = (
        {
            v.field_id: v
            for v in CustomValue.select().where(
                CustomValue.record_id == record_id, CustomValue.field.in_([f.id for f in fields])
            )
        }
        if fields
        else {}
    )
    return [(f, typed_value(f, stored[f.id]) if f.id in stored else None) for f in fields]


def infer_type(samples):
    """The narrowest type that fits every non-blank sample (import of unknown custom.<code>)."""
    samples = [s for s in samples if s is not None and str(s).strip() != ""]
    if not samples:
        return "string"
    for type_, parser in (
        ("boolean", parse_bool),
        ("integer", parse_integer),
        ("decimal", parse_decimal),
        ("date", parse_date),
    ):
        try:
            for s in samples:
                parser(s)
        except ValueError:
            continue
        if type_ == "boolean" and all(str(s).strip() in ("0", "1") for s in samples):
            continue  # 0/1 columns are numbers more often than flags
        return type_
    return "string"
