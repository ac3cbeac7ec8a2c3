"""A pure-Python reference evaluator of the segment definition spec.

Written from the spec (shared/spec/segment-definition.md), not from the
compiler: it walks plain Python rows (a `World`) customer by customer. The
differential test asserts that the SQL of webapp.engine gives the same
customers on SQLite and PostgreSQL.

It shares with the engine only the parsed Definition (typed bounds) and
webapp.text.fold, the project's one definition of "case-insensitive".
"""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from webapp.text import fold

UTC = datetime.UTC


@dataclass
class World:
    """Plain rows, keyed like the tables (ids explicit)."""

    users: dict = field(default_factory=dict)  # id -> email
    customers: list = field(default_factory=list)  # dicts with Customer columns (no _ci)
    tags: dict = field(default_factory=dict)  # id -> name
    customer_tags: set = field(default_factory=set)  # (customer_id, tag_id)
    custom_fields: dict = field(default_factory=dict)  # id -> dict(entity, code, type, options)
    custom_values: dict = field(default_factory=dict)  # (field_id, record_id) -> typed value
    shops: dict = field(default_factory=dict)  # id -> name
    groups: dict = field(default_factory=dict)  # id -> dict(path, parent_id, name)
    products: dict = field(default_factory=dict)  # id -> dict(sku, group_id)
    orders: list = field(default_factory=list)  # dicts with Order columns
    items: list = field(default_factory=list)  # dicts with OrderItem columns
    pipelines: dict = field(default_factory=dict)  # id -> name
    stages: dict = field(default_factory=dict)  # id -> dict(pipeline_id, name, kind)
    deals: list = field(default_factory=list)
    mailings: dict = field(default_factory=dict)  # id -> name
    messages: list = field(default_factory=list)
    event_types: dict = field(default_factory=dict)  # id -> code
    events: list = field(default_factory=list)
    segments: dict = field(default_factory=dict)  # code -> id
    segment_members: set = field(default_factory=set)  # (segment_id, customer_id)
    predictions: dict = field(default_factory=dict)  # customer_id -> {score name: float or None}


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def local_date(value, tz):
    """The date of a naive UTC datetime in the zone tz."""
    return value.replace(tzinfo=UTC).astimezone(tz).date()


def _md(day):
    return (day.month, day.day)


def _md_int(value):
    return divmod(value, 100)


def _in_md_range(md, lo, hi):
    if lo <= hi:
        return lo <= md <= hi
    return md >= lo or md <= hi


def _as_fraction(value):
    return Fraction(value) if value is not None else None


class Evaluator:
    def __init__(self, world, today, tz):
        self.w, self.today, self.tz = world, today, tz
        self.fields_by_code = {(f["entity"], f["code"]): (fid, f) for fid, f in world.custom_fields.items()}
        self.items_by_order = {}
        for item in world.items:
            self.items_by_order.setdefault(item["order_id"], []).append(item)
        self.tags_by_customer = {}
        for cid, tid in world.customer_tags:
            self.tags_by_customer.setdefault(cid, set()).add(world.tags[tid])
        self.records = {"order": {}, "deal": {}, "message": {}, "event": {}}
        for entity, rows in (
            ("order", world.orders),
            ("deal", world.deals),
            ("message", world.messages),
            ("event", world.events),
        ):
            for row in rows:
                self.records[entity].setdefault(row["customer_id"], []).append(row)

    # --- values --------------------------------------------------------------
    def value(self, entity, row, name):
        """(kind, value): kind in text/raw/date/datetime/number/money/boolean/multi/multi_group."""
        w = self.w
        if name.startswith("custom."):
            fid, f = self.fields_by_code[(entity, name[len("custom.") :])]
            value = w.custom_values.get((fid, row["id"]))
            kind = {
                "string": "text",
                "enum": "text",
                "integer": "number",
                "decimal": "number",
                "date": "date",
                "boolean": "boolean",
            }[f["type"]]
            return kind, value
        if entity == "customer":
            if name in ("type", "gender", "language"):
                return "raw", row.get(name)
            if name in ("first_name", "last_name", "company_name", "email", "phone", "city", "country", "source"):
                return "text", row.get(name)
            if name == "birth_date":
                return "date", row.get("birth_date")
            if name in ("email_consent", "sms_consent"):
                return "boolean", row.get(name)
            if name == "created_at":
                return "datetime", row["created_at"]
            if name == "manager":
                return "text", w.users.get(row.get("manager_id"))
            if name == "tags":
                return "multi", self.tags_by_customer.get(row["id"], set())
            if name.startswith("predicted."):
                # no row (no orders): every score is null
                return "float", w.predictions.get(row["id"], {}).get(name[len("predicted.") :])
        if entity == "order":
            if name == "ordered_at":
                return "datetime", row["ordered_at"]
            if name == "status":
                return "text", row.get("status")
            if name == "shop":
                return "text", w.shops.get(row.get("shop_id"))
            if name == "total":
                return "money", Decimal(row["total_cents"]) / 100
            items = self.items_by_order.get(row["id"], [])
            if name == "product":
                return "multi", {w.products[i["product_id"]]["sku"] for i in items}
            if name == "product_group":
                paths = set()
                for i in items:
                    gid = w.products[i["product_id"]]["group_id"]
                    if gid is not None:
                        paths.add(w.groups[gid]["path"])
                return "multi_group", paths
        if entity == "deal":
            stage = w.stages[row["stage_id"]]
            if name == "pipeline":
                return "text", w.pipelines[row["pipeline_id"]]
            if name == "stage":
                return "text", stage["name"]
            if name == "stage_kind":
                return "raw", stage["kind"]
            if name == "amount":
                return "money", Decimal(row["amount_cents"]) / 100
            if name == "manager":
                return "text", w.users.get(row.get("manager_id"))
            if name in ("created_at", "closed_at"):
                return "datetime", row.get(name)
        if entity == "message":
            if name in ("channel", "kind"):
                return "raw", row[name]
            if name == "mailing":
                return "text", w.mailings.get(row.get("mailing_id"))
            if name == "occurred_at":
                return "datetime", row["occurred_at"]
        if entity == "event":
            if name == "event":
                return "text", w.event_types[row["event_type_id"]]
            if name == "occurred_at":
                return "datetime", row["occurred_at"]
        raise KeyError((entity, name))

    # --- one filter on one value ------------------------------------------------
    def holds(self, kind, value, flt):
        op = flt.op
        if kind in ("multi", "multi_group"):
            values = {fold(v) for v in value if fold(v) is not None}
            if op == "is_empty":
                return not values
            if op == "is_not_empty":
                return bool(values)
            inc = {fold(c.value) for c in flt.values if not c.exclude}
            exc = {fold(c.value) for c in flt.values if c.exclude}
            if kind == "multi_group":

                def hit(wanted):
                    return any(v == g or v.startswith(g + "/") for v in values for g in wanted)
            else:

                def hit(wanted):
                    return bool(values & wanted)

            return (not inc or hit(inc)) and not (exc and hit(exc))

        if op == "is_empty":
            return _blank(value)
        if op == "is_not_empty":
            return not _blank(value)
        if op == "in":
            v = fold(value) if isinstance(value, str) else None
            inc = {fold(c.value) for c in flt.values if not c.exclude}
            exc = {fold(c.value) for c in flt.values if c.exclude}
            return (not inc or v in inc) and v not in exc
        if _blank(value):
            return False  # null never satisfies between, relative, contains or is
        if op == "contains":
            return fold(flt.value) in fold(value)
        if op == "is":
            return value is flt.value or value == flt.value
        if kind == "datetime":
            value = local_date(value, self.tz)
        if op == "between":
            if flt.ignore_year:
                lo = _md_int(flt.from_) if flt.from_ is not None else (1, 1)
                hi = _md_int(flt.to) if flt.to is not None else (12, 31)
                return _in_md_range(_md(value), lo, hi)
            if kind == "float":
                # scores are doubles; a bound compares as the nearest double (spec: numbers)
                value = Fraction(value)
                return (flt.from_ is None or Fraction(float(flt.from_)) <= value) and (
                    flt.to is None or value <= Fraction(float(flt.to))
                )
            if kind in ("number", "money"):
                value = Fraction(value)
                return (flt.from_ is None or Fraction(flt.from_) <= value) and (
                    flt.to is None or value <= Fraction(flt.to)
                )
            return (flt.from_ is None or flt.from_ <= value) and (flt.to is None or value <= flt.to)
        if op == "relative":
            lo = None if flt.from_days is None else self.today + datetime.timedelta(days=flt.from_days)
            hi = None if flt.to_days is None else self.today + datetime.timedelta(days=flt.to_days)
            if flt.ignore_year:
                if (hi - lo).days >= 365:
                    return True  # a year or more of days holds every month and day
                return _in_md_range(_md(value), _md(lo), _md(hi))
            return (lo is None or lo <= value) and (hi is None or value <= hi)
        raise ValueError(op)

    def age(self, birth):
        if birth is None:
            return None
        t = self.today
        return t.year - birth.year - ((t.month, t.day) < (birth.month, birth.day))

    # --- blocks ---------------------------------------------------------------
    def combine(self, match, results):
        results = list(results)
        if not results:
            return True
        return all(results) if match == "all" else any(results)

    def customer_block(self, customer, block):
        results = []
        for flt in block.filters:
            if flt.field == "age":
                age = self.age(customer.get("birth_date"))
                results.append(self.holds("number", age, flt))
            else:
                kind, value = self.value("customer", customer, flt.field)
                results.append(self.holds(kind, value, flt))
        return self.combine(block.match, results)

    def segment_block(self, customer, block):
        mine = {code for code, sid in self.w.segments.items() if (sid, customer["id"]) in self.w.segment_members}
        results = []
        for flt in block.filters:
            inc = {c.value for c in flt.values if not c.exclude}
            exc = {c.value for c in flt.values if c.exclude}
            results.append((not inc or bool(mine & inc)) and not (mine & exc))
        return self.combine(block.match, results)

    def aggregates(self, entity, records):
        date_name = {"order": "ordered_at", "deal": "created_at"}.get(entity, "occurred_at")
        count = len(records)
        aggs = {"count": count}
        if entity in ("order", "deal"):
            money = "total_cents" if entity == "order" else "amount_cents"
            total = sum(r[money] for r in records)
            aggs["sum"] = Fraction(total, 100)
            aggs["avg"] = Fraction(total, 100 * count) if count else None
        if entity == "order":
            aggs["quantity"] = sum(i["quantity"] for r in records for i in self.items_by_order.get(r["id"], []))
        dates = [r[date_name] for r in records]
        aggs["first_at"] = min(dates) if dates else None
        aggs["last_at"] = max(dates) if dates else None
        return aggs

    def record_block(self, customer, block):
        records = self.records[block.entity].get(customer["id"], [])
        if block.entity == "deal" and any(f.field == "pipeline" and f.op == "is_empty" for f in block.filters):
            return not records
        selected = []
        for row in records:
            results = []
            for flt in block.filters:
                kind, value = self.value(block.entity, row, flt.field)
                results.append(self.holds(kind, value, flt))
            if self.combine(block.match, results):
                selected.append(row)
        if not block.having:
            return bool(selected)
        aggs = self.aggregates(block.entity, selected)
        results = []
        for cond in block.having:
            value = aggs[cond.agg]
            kind = "datetime" if cond.agg in ("first_at", "last_at") else "number"
            results.append(self.holds(kind, value, cond))
        return self.combine(block.having_match, results)

    def matches(self, customer, definition):
        results = []
        for block in definition.blocks:
            if block.entity == "customer":
                results.append(self.customer_block(customer, block))
            elif block.entity == "segment":
                results.append(self.segment_block(customer, block))
            else:
                results.append(self.record_block(customer, block))
        return self.combine(definition.match, results)


def evaluate(world, definition, today, tz):
    """The set of customer ids the spec says match `definition` on `today` in zone `tz`."""
    ev = Evaluator(world, today, tz)
    return {c["id"] for c in world.customers if ev.matches(c, definition)}
