"""Why one customer is (or is not) in a definition's set.

Pass or fail of the definition, each block and each filter comes from the
compiler (`compiler.explain_query`: the predicates a run evaluates, rendered
for that one customer in SQL); this module only adds the customer's values
those predicates read, for people to see what was decided on.
"""

from ..models import (
    CUSTOM_COLUMNS,
    Customer,
    CustomerPrediction,
    CustomerTag,
    CustomValue,
    Segment,
    SegmentMember,
    Tag,
    User,
)
from .catalogue import catalogue as load_catalogue
from .compiler import RECORDS, ensure_definition, explain_query, today_at


def _age(birth_date, today):
    if birth_date is None:
        return None
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def customer_value(customer, name, info, today):
    """The customer's value of a customer-block field, as shown (lists for tags)."""
    if info is not None and info.custom_field_id is not None:
        row = CustomValue.get_or_none(CustomValue.field == info.custom_field_id, CustomValue.record_id == customer.id)
        return getattr(row, CUSTOM_COLUMNS[info.custom_type]) if row else None
    if name == "age":
        return _age(customer.birth_date, today)
    if name == "manager":
        user = User.get_or_none(User.id == customer.manager_id) if customer.manager_id else None
        return user.email if user else None
    if name == "tags":
        tags = Tag.select(Tag.name).join(CustomerTag).where(CustomerTag.customer == customer.id).order_by(Tag.name)
        return [t.name for t in tags]
    if name.startswith("predicted."):
        row = CustomerPrediction.get_or_none(CustomerPrediction.customer == customer.id)
        return getattr(row, name.split(".", 1)[1]) if row else None
    return getattr(customer, name, None)


def segments_of(customer_id):
    """Codes of the segments the customer is a stored member of, sorted."""
    query = (
        Segment.select(Segment.code)
        .join(SegmentMember)
        .where(SegmentMember.customer == customer_id)
        .order_by(Segment.code)
    )
    return [s.code for s in query]


def explain(definition, customer_id, *, at=None, tz="UTC"):
    """The compiler's verdicts for one customer (see `compiler.explain_query`),
    each customer and segment filter with `value`: the customer's value it read
    (segment filters: the codes of the segments the customer is a member of).
    Record blocks carry their record counts and aggregates. None when the
    customer does not exist."""
    definition = ensure_definition(definition)
    result = explain_query(definition, customer_id, at=at, tz=tz)
    if result is None:
        return None
    customer = Customer.get_by_id(customer_id)
    cat = getattr(definition, "_catalogue", None) or load_catalogue()
    today = today_at(at, tz)
    memberships = None
    for block, facts in zip(definition.blocks, result["blocks"], strict=True):
        if block.entity in RECORDS:
            continue
        for flt, item in zip(block.filters, facts["filters"], strict=True):
            if block.entity == "segment":
                if memberships is None:
                    memberships = segments_of(customer_id)
                item["value"] = memberships
            else:
                item["value"] = customer_value(customer, flt.field, cat.field("customer", flt.field), today)
    result["today"] = today
    return result
