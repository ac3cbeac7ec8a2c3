"""Order conditions: an Orders block of a definition on its own, selecting orders.

An event definition (webapp.events) records an occurrence for every order
matching a condition `{"match": "all"|"any", "filters": [...]}`, written with
the Orders block filters of the spec. It is checked by the definition
validator itself, as block 1 of a definition, so its messages are the same
("Block 1 (Orders), filter 2: …"), and compiled by the compiler's own
record-filter code into a query of order ids.

Two rules of the definition spec do not fit a condition that records an
occurrence once, for good, and are refused with a located message:
- conditions on records (`having`): a condition is about one order;
- relative dates ("in the last 30 days"): they would hold for an order today
  and not next month, while its occurrence stays.
"""

from ..i18n import _
from .catalogue import catalogue as load_catalogue
from .compiler import records_query
from .definition import DefinitionError, Errors, parse_definition

CONDITION_KEYS = ("match", "filters")


def parse_condition(data, *, catalogue=None):
    """Check an order condition; returns the parsed Orders `Block`.

    Raises DefinitionError (messages name block 1 (Orders) and the filter).
    """
    cat = catalogue or load_catalogue()
    errors = Errors()
    if not isinstance(data, dict):
        errors.add(_("a condition must be an object"), block=1, entity="order")
        raise DefinitionError(errors.items)
    for key in data:
        if key in ("having", "having_match"):
            errors.add(
                _("conditions on records (“%(key)s”) do not apply to an event: it is about one order", key=key),
                block=1,
                entity="order",
            )
        elif key not in CONDITION_KEYS:
            errors.add(_("unexpected “%(key)s”", key=key), block=1, entity="order")
    block = {"entity": "order", "match": data.get("match", "all"), "filters": data.get("filters", [])}
    try:
        definition = parse_definition({"version": 1, "match": "all", "blocks": [block]}, catalogue=cat)
    except DefinitionError as exc:
        raise DefinitionError(errors.items + exc.errors) from None
    parsed = definition.blocks[0]
    for k, flt in enumerate(parsed.filters, 1):
        if flt.op == "relative":
            info = cat.field("order", flt.field)
            errors.add(
                _(
                    "%(label)s: dates relative to today do not apply to an event (it is recorded once, "
                    "for good): use “between” with dates",
                    label=info.label if info else flt.field,
                ),
                block=1,
                filter=k,
                entity="order",
            )
    if errors.items:
        raise DefinitionError(errors.items)
    return parsed


def condition_json(block):
    """The canonical JSON-ready condition of a parsed Orders block."""
    from .definition import Definition, to_json

    data = to_json(Definition(blocks=(block,)))["blocks"][0]
    return {"match": data["match"], "filters": data["filters"]}


def matching_orders(condition, *, catalogue=None, customers=None, id_range=None, tz="UTC"):
    """A peewee query `SELECT o.id, o.customer_id, o.ordered_at` of the orders
    matching the condition (a parsed block, or a dict checked first), and the
    orders alias `o`. `customers`: only these customers' orders (the
    real-time path); `id_range`: (lo, hi) order ids, inclusive (the backfill)."""
    cat = catalogue or load_catalogue()
    block = condition if not isinstance(condition, dict) else parse_condition(condition, catalogue=cat)
    return records_query(block, cat, tz=tz, scope=customers, id_range=id_range)
