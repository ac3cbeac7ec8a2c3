"""Customer data written through the API, by the import's own rules and writers.

A JSON body is turned into the cells of one CSV row and parsed by the import
kind's column parsers (webapp.imports.kinds, which use webapp.values and
webapp.custom_fields), then written by the same set-based writer an import
uses, in one transaction: the same upsert on external_id, the same "only the
fields sent are written; null clears a field", the same order rollup refresh
and the same `changes.mark_changed` for the real-time segment update.

Flask-free: errors are UpsertError with one {field, message} per problem.
"""

import decimal

from ..fields.service import fields_for
from ..i18n import _
from ..imports.kinds import KINDS, WRITERS, text
from ..imports.service import Row, custom_value, write_transaction
from ..models import Customer, EventOccurrence, EventType, Order, OrderItem
from ..rollups import refresh_order_stats
from ..segments import changes
from ..text import fold

MAX_ITEMS = 1000
PROPERTIES_MAX = 16 * 1024  # bytes of an event's properties as JSON


class UpsertError(ValueError):
    def __init__(self, details, status=422):
        self.details = details
        self.status = status
        super().__init__("; ".join(f"{d['field']}: {d['message']}" for d in details))


class _NoTracker:
    """The import remembers keys across a file's batches; one API call is one row."""

    def earlier(self, items):
        return {}


class _Call:
    """What the import writers need from their engine, for one API call."""

    def __init__(self, mapped, custom_targets):
        self.mapped = set(mapped)
        self.custom_targets = custom_targets
        self.tracker = _NoTracker()
        self.problems = []
        self.run = None

    def reject(self, row, target, reason):
        self.problems.append({"field": target or "body", "message": reason})


def cell(value):
    """A JSON value as the text of a CSV cell (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError(_("must be a single value (text, number, true/false or null), not a list or object"))


def _custom_fields(entity, data, problems):
    """{code: value} from the body's `custom` object and `custom.<code>` keys."""
    custom = {}
    raw = data.get("custom")
    if raw is not None:
        if not isinstance(raw, dict):
            problems.append({"field": "custom", "message": _("must be an object {code: value}")})
        else:
            custom.update(raw)
    for key, value in data.items():
        if key.startswith("custom."):
            custom[key[7:]] = value
    fields = {f.code: f for f in fields_for(entity)} if custom else {}
    values, targets = {}, []
    for code, value in custom.items():
        field = fields.get(code)
        if field is None:
            problems.append(
                {
                    "field": f"custom.{code}",
                    "message": _(
                        "no %(entity)s custom field has the code “%(code)s” (create it "
                        "first on the Custom fields page)",
                        entity=entity,
                        code=code,
                    ),
                }
            )
            continue
        try:
            values["custom." + code] = custom_value(field, cell(value))
        except (ValueError, OverflowError) as exc:
            problems.append({"field": f"custom.{code}", "message": str(exc)})
            continue
        targets.append(("custom." + code, field))
    return values, targets


def parse_fields(kind_name, data, tz, *, fixed=(), skip=()):
    """Parse `data` by the import kind's columns: (values, mapped targets, custom targets).

    `fixed`: columns set by the URL (not accepted in the body unless equal);
    `skip`: body keys handled by the caller. Raises UpsertError.
    """
    kind = KINDS[kind_name]
    columns = kind.columns(tz)
    problems = []
    values = {}
    for key, value in data.items():
        if key in skip or (kind.entity and (key == "custom" or key.startswith("custom."))):
            continue
        if key not in columns:
            problems.append(
                {
                    "field": key,
                    "message": _("unknown field (fields: %(names)s)", names=", ".join(list(columns) + ["custom"])),
                }
            )
            continue
        if key in fixed:
            continue
        try:
            values[key] = columns[key](cell(value))
        except (ValueError, OverflowError) as exc:
            problems.append({"field": key, "message": str(exc)})
    custom_values, custom_targets = ({}, [])
    if kind.entity:
        custom_values, custom_targets = _custom_fields(kind.entity, data, problems)
    for name in kind.required:
        if name in fixed:
            continue
        if values.get(name) is None:
            problems.append({"field": name, "message": _("a value is required")})
    if problems:
        raise UpsertError(problems)
    values.update(custom_values)
    mapped = set(values) | {target for target, _f in custom_targets}
    return values, mapped, custom_targets


def _check_key(external_id, data, field="external_id"):
    try:
        key = text(external_id)
    except (ValueError, OverflowError) as exc:
        raise UpsertError([{"field": field, "message": str(exc)}]) from None
    if key is None or key != external_id:
        raise UpsertError(
            [{"field": field, "message": _("the external id must not be blank or have spaces around it")}]
        )
    if "external_id" in data and data["external_id"] != external_id:
        raise UpsertError([{"field": "external_id", "message": _("differs from the one in the address")}])
    return key


def _write(kind_name, call, rows):
    writer = WRITERS[kind_name](call)
    counts = writer.write(rows, True)
    if call.problems:
        raise UpsertError(call.problems)
    return counts


def _in_transaction(work):
    """Run `work()` in one write transaction; an UpsertError rolls it all back."""
    with write_transaction():
        return work()


def _tags(value):
    if value is None:
        return None
    if isinstance(value, list):
        parts = []
        for item in value:
            if not isinstance(item, str) or "|" in item:
                raise ValueError(_("tags must be a list of texts without “|”"))
            parts.append(item)
        return "|".join(parts)
    return cell(value)


def upsert_customer(external_id, data, tz=None):
    """Create or update a customer; returns (Customer id, created?)."""
    external_id = _check_key(external_id, data)
    if "tags" in data:
        try:
            data = dict(data, tags=_tags(data["tags"]))
        except (ValueError, OverflowError) as exc:
            raise UpsertError([{"field": "tags", "message": str(exc)}]) from None
    values, mapped, custom_targets = parse_fields("customers", data, tz, fixed=("external_id",))
    values["external_id"] = external_id
    mapped.add("external_id")
    if "tags" in mapped and values.get("tags") is None:
        values["tags"] = []

    def work():
        call = _Call(mapped, custom_targets)
        new, _updated, _same = _write("customers", call, [Row(1, 1, [], values)])
        return Customer.get(Customer.external_id == external_id).id, bool(new)

    return _in_transaction(work)


def _items(raw, tz):
    if not isinstance(raw, list):
        raise UpsertError([{"field": "items", "message": _("must be a list of items")}])
    if len(raw) > MAX_ITEMS:
        raise UpsertError([{"field": "items", "message": _("at most %(n)s items per order", n=MAX_ITEMS)}])
    columns = KINDS["order-items"].columns(tz)
    problems, rows = [], []
    for index, item in enumerate(raw):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            problems.append({"field": where, "message": _("must be an object")})
            continue
        values = {}
        for key, value in item.items():
            if key not in columns or key == "order_external_id":
                problems.append(
                    {
                        "field": f"{where}.{key}",
                        "message": _(
                            "unknown field (fields: %(names)s)",
                            names="sku, product_name, product_group, quantity, price",
                        ),
                    }
                )
                continue
            try:
                values[key] = columns[key](cell(value))
            except (ValueError, OverflowError) as exc:
                problems.append({"field": f"{where}.{key}", "message": str(exc)})
        if not problems and values.get("sku") is None:
            problems.append({"field": f"{where}.sku", "message": _("a value is required")})
        rows.append(values)
    if problems:
        raise UpsertError(problems)
    return rows


def upsert_order(external_id, data, tz=None):
    """Create or update an order (and replace its items when `items` is sent);
    returns (Order id, created?). Keeps the customer's order rollup current."""
    external_id = _check_key(external_id, data)
    items = _items(data["items"], tz) if "items" in data and data["items"] is not None else None
    values, mapped, custom_targets = parse_fields("orders", data, tz, fixed=("external_id",), skip=("items",))
    values["external_id"] = external_id
    mapped.add("external_id")

    def work():
        call = _Call(mapped, custom_targets)
        new, _updated, _same = _write("orders", call, [Row(1, 1, [], values)])
        order = Order.get(Order.external_id == external_id)
        if items is not None:
            if items:
                rows = [
                    Row(i + 1, i + 1, [], dict(item, order_external_id=external_id)) for i, item in enumerate(items)
                ]
                _write("order-items", _Call({"order_external_id"} | set().union(*items), []), rows)
            elif OrderItem.delete().where(OrderItem.order == order.id).execute():
                refresh_order_stats([order.customer_id])
                changes.mark_changed([order.customer_id])
        return order.id, bool(new)

    return _in_transaction(work)


def upsert_deal(external_id, data, tz=None):
    """Create or update a deal; returns (Deal id, created?)."""
    from ..models import Deal

    external_id = _check_key(external_id, data)
    values, mapped, custom_targets = parse_fields("deals", data, tz, fixed=("external_id",))
    values["external_id"] = external_id
    mapped.add("external_id")

    def work():
        call = _Call(mapped, custom_targets)
        new, _updated, _same = _write("deals", call, [Row(1, 1, [], values)])
        return Deal.get(Deal.external_id == external_id).id, bool(new)

    return _in_transaction(work)


def add_message(data, tz=None):
    """Record a message event (an equal one already stored is not added twice);
    returns the customer id and the parsed values."""
    values, mapped, _custom = parse_fields("messages", data, tz)

    def work():
        call = _Call(mapped, [])
        _write("messages", call, [Row(1, 1, [], values)])
        return values

    return _in_transaction(work)


def add_event(data, tz=None):
    """Record an event occurrence; the event type is created on first use.
    Returns the EventOccurrence."""
    import json

    from ..values import parse_datetime

    problems = []
    allowed = {"customer_external_id", "event", "occurred_at", "properties"}
    for key in data:
        if key not in allowed:
            problems.append(
                {"field": key, "message": _("unknown field (fields: %(names)s)", names=", ".join(sorted(allowed)))}
            )
    parsed = {}
    for key, parse in (
        ("customer_external_id", text),
        ("event", text),
        ("occurred_at", lambda raw: parse_datetime(raw, tz)),
    ):
        try:
            parsed[key] = parse(cell(data.get(key)))
        except (ValueError, OverflowError) as exc:
            problems.append({"field": key, "message": str(exc)})
            continue
        if parsed[key] is None:
            problems.append({"field": key, "message": _("a value is required")})
    properties = data.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            problems.append({"field": "properties", "message": _("must be an object")})
        else:
            if len(json.dumps(properties, ensure_ascii=False).encode()) > PROPERTIES_MAX:
                problems.append({"field": "properties", "message": _("at most %(n)s bytes", n=PROPERTIES_MAX)})
    if problems:
        raise UpsertError(problems)

    def work():
        customer = Customer.get_or_none(Customer.external_id == parsed["customer_external_id"])
        if customer is None:
            raise UpsertError(
                [
                    {
                        "field": "customer_external_id",
                        "message": _("no customer with the external id “%(v)s”", v=parsed["customer_external_id"]),
                    }
                ]
            )
        code_ci = fold(parsed["event"])
        EventType.insert(code=parsed["event"], code_ci=code_ci, name=parsed["event"]).on_conflict_ignore().execute()
        event_type = EventType.get(EventType.code_ci == code_ci)
        occurrence = EventOccurrence.create(
            customer=customer.id, event_type=event_type.id, occurred_at=parsed["occurred_at"], properties=properties
        )
        changes.mark_changed([customer.id])
        occurrence.customer_external_id = customer.external_id
        occurrence.event_code = event_type.code
        return occurrence

    return _in_transaction(work)
