import datetime

import pytest

from webapp.fields import service as cf
from webapp.models import Customer, CustomValue


def test_create_parse_store_and_delete(db):
    field = cf.create_field("customer", "", "Favourite destination", "enum", ["Vietnam", "Italy", "vietnam"])
    assert field.code == "favourite_destination" and field.options == ["Vietnam", "Italy"]
    customer = Customer.create(external_id="c1")
    cf.set_value(field, customer.id, cf.parse_value(field, " VIETNAM "))
    assert cf.values_for("customer", customer.id) == [(field, "Vietnam")]
    with pytest.raises(ValueError, match="not an option"):
        cf.parse_value(field, "Mars")
    with pytest.raises(cf.FieldError, match="in use"):
        cf.rename_field(field, "Destination", ["Italy"])
    cf.delete_field(field)
    assert CustomValue.select().count() == 0


def test_codes_are_validated_and_unique(db):
    cf.create_field("deal", "membership_type", "Membership type", "enum", ["annual"])
    with pytest.raises(cf.FieldError, match="already exists"):
        cf.create_field("deal", "membership_type", "x", "string")
    with pytest.raises(cf.FieldError, match="must start with a letter"):
        cf.create_field("deal", "9lives", "x", "string")
    with pytest.raises(cf.FieldError, match="at least one option"):
        cf.create_field("order", "kind", "Kind", "enum", [])


def test_typed_values_round_trip(db):
    customer = Customer.create(external_id="c1")
    for code, type_, raw, expected in [
        ("pets", "integer", "3", 3),
        ("visit", "date", "01.02.2024", datetime.date(2024, 2, 1)),
        ("vip", "boolean", "да", True),
    ]:
        field = cf.create_field("customer", code, code, type_)
        cf.set_value(field, customer.id, cf.parse_value(field, raw))
    assert [v for _, v in cf.values_for("customer", customer.id)] == [3, datetime.date(2024, 2, 1), True]


def test_infer_type():
    assert cf.infer_type(["1", "2", "", "30"]) == "integer"
    assert cf.infer_type(["1,5", "2"]) == "decimal"
    assert cf.infer_type(["да", "нет"]) == "boolean"
    assert cf.infer_type(["2024-01-01", "05.06.2020"]) == "date"
    assert cf.infer_type(["Vietnam", "3"]) == "string"
