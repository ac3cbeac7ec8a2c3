"""What each import kind reads, and how one batch of its rows is written.

A writer gets parsed rows (`Row.values`: target name -> typed value), rejects
the ones whose references do not resolve (`engine.reject`), and writes the
rest with set-based statements: one upsert per chunk keyed by `external_id`
(`ON CONFLICT ... DO UPDATE ... WHERE` something differs, so an unchanged row
is not written at all), references looked up per batch with IN queries and
cached. Only columns present in the file are written: a column the file does
not have keeps its stored value; a blank cell in a present column clears it.

Decisions:
- `manager` (customers, deals) is a user's email. An unknown email rejects the
  row (create the user, or clear the cell, and re-import): silently dropping
  the assignment would hide the problem.
- Duplicate keys within one file: the first row is imported, later ones are
  rejected as duplicates (naming the first line).
- Order items replace the order's items: all rows of one order in the file are
  its items. An order whose items are unchanged is not rewritten.
- Products are found by SKU or created; a non-blank `product_name` or
  `product_group` updates the product. Groups are created along their path.
- Deal `stage_kind` sets the kind of a stage the import creates.
- Messages have no key: an event equal to a stored one (customer, channel,
  kind, mailing, time) is already there and is not added again.
"""

import operator
from collections import OrderedDict, defaultdict

from .. import rollups
from ..db import database
from ..fields.service import value_row
from ..i18n import _
from ..models import (
    CHANNELS,
    CUSTOM_COLUMNS,
    CUSTOMER_TYPES,
    GENDERS,
    MESSAGE_KINDS,
    STAGE_KINDS,
    Customer,
    CustomerTag,
    CustomValue,
    Deal,
    Mailing,
    MessageEvent,
    Order,
    OrderItem,
    Pipeline,
    Product,
    ProductGroup,
    Segment,
    SegmentChange,
    SegmentMember,
    Shop,
    Stage,
    Tag,
    User,
    utcnow,
)
from ..segments import changes
from ..segments.manual import free_code, self_definition
from ..sql import bulk_upsert, column, execute_in, fetch_in, hold_segment, lock_membership, q, same_value
from ..text import fold
from ..values import (
    parse_bool,
    parse_date,
    parse_datetime,
    parse_email,
    parse_integer,
    parse_language,
    parse_money_cents,
    parse_phone,
    parse_time_zone,
)

TEXT_MAX = 255  # CharField length (enforced by PostgreSQL)
BIGINT = 2**63 - 1
INT = 2**31 - 1


# --- cell parsers (ValueError with a message a person can act on) -------------


def text(raw):
    if raw is None:
        return None
    value = raw.strip()
    if not value:
        return None
    if len(value) > TEXT_MAX:
        raise ValueError(_("the value is %(n)s characters long; at most %(max)s fit", n=len(value), max=TEXT_MAX))
    return value


def enum(options):
    by_fold = {fold(o): o for o in options}

    def parse(raw):
        key = fold(raw)
        if key is None:
            return None
        try:
            return by_fold[key]
        except KeyError:
            raise ValueError(_("“%(v)s” is not one of: %(o)s", v=raw.strip(), o=", ".join(options))) from None

    return parse


def money(raw):
    value = parse_money_cents(raw)
    if value is not None and abs(value) > BIGINT:
        raise ValueError(_("“%(v)s” is too large", v=raw.strip()))
    return value


def quantity(raw):
    value = parse_integer(raw)
    if value is not None and abs(value) > INT:
        raise ValueError(_("“%(v)s” is too large", v=raw.strip()))
    return value


def tag_list(raw):
    if raw is None or not raw.strip():
        return ()
    names, seen = [], set()
    for part in raw.split("|"):
        name = text(part)
        if name and fold(name) not in seen:
            seen.add(fold(name))
            names.append(name)
    return tuple(names)


def group_path(raw):
    value = text(raw)
    if value is None:
        return None
    parts = [p.strip() for p in value.split("/") if p.strip()]
    return "/".join(parts) or None


def datetime_parser(tz):
    def parse(raw):
        return parse_datetime(raw, tz)

    return parse


def memo(convert, limit=20_000):
    """`convert` with its results remembered per cell text (bounded): a file
    repeats the same dates, flags, options and amounts over and over, and
    parsing is the costliest part of reading a row. Errors are not remembered
    (they raise again, with the same message)."""
    cache = {}

    def parse(raw):
        try:
            return cache[raw]
        except KeyError:
            pass
        value = convert(raw)
        if len(cache) >= limit:
            cache.clear()
        cache[raw] = value
        return value

    return parse


# --- kinds ---------------------------------------------------------------------


class Kind:
    name = ""
    entity = None  # custom field entity, when the kind has custom.<code> columns
    key = None  # target that must be unique within the file
    required = ()  # columns the header must have; their cells must not be blank

    @property
    def label(self):
        # Looked up when shown, so a translation applies.
        return {
            "customers": _("Customers"),
            "orders": _("Orders"),
            "order-items": _("Order items"),
            "deals": _("Deals"),
            "messages": _("Messages"),
            "segment": _("Static segment from a list"),
        }[self.name]

    def columns(self, tz):
        """{target: parser} for the spec's columns, in spec order."""
        raise NotImplementedError


class Customers(Kind):
    name, entity, key, required = "customers", "customer", "external_id", ("external_id",)

    def columns(self, tz):
        return OrderedDict(
            [
                ("external_id", text),
                ("type", memo(enum(CUSTOMER_TYPES))),
                ("first_name", text),
                ("last_name", text),
                ("company_name", text),
                ("email", parse_email),
                ("phone", parse_phone),
                ("gender", memo(enum(GENDERS))),
                ("birth_date", memo(parse_date)),
                ("city", text),
                ("country", text),
                ("time_zone", memo(parse_time_zone)),
                ("source", text),
                ("manager", text),
                ("email_consent", memo(parse_bool)),
                ("sms_consent", memo(parse_bool)),
                ("language", memo(parse_language)),
                ("created_at", memo(datetime_parser(tz))),
                ("tags", memo(tag_list)),
            ]
        )


class Orders(Kind):
    name, entity, key = "orders", "order", "external_id"
    required = ("external_id", "customer_external_id", "ordered_at")

    def columns(self, tz):
        return OrderedDict(
            [
                ("external_id", text),
                ("customer_external_id", text),
                ("ordered_at", memo(datetime_parser(tz))),
                ("status", text),
                ("shop", text),
                ("total", memo(money)),
            ]
        )


class OrderItems(Kind):
    name, required = "order-items", ("order_external_id", "sku")

    def columns(self, tz):
        return OrderedDict(
            [
                ("order_external_id", text),
                ("sku", text),
                ("product_name", text),
                ("product_group", memo(group_path)),
                ("quantity", memo(quantity)),
                ("price", memo(money)),
            ]
        )


class Deals(Kind):
    name, entity, key = "deals", "deal", "external_id"
    required = ("external_id", "customer_external_id", "pipeline", "stage")

    def columns(self, tz):
        dt = memo(datetime_parser(tz))
        return OrderedDict(
            [
                ("external_id", text),
                ("customer_external_id", text),
                ("pipeline", text),
                ("stage", text),
                ("stage_kind", memo(enum(STAGE_KINDS))),
                ("amount", memo(money)),
                ("manager", text),
                ("created_at", dt),
                ("closed_at", dt),
            ]
        )


class Messages(Kind):
    name, required = "messages", ("customer_external_id", "channel", "kind", "occurred_at")

    def columns(self, tz):
        return OrderedDict(
            [
                ("customer_external_id", text),
                ("channel", memo(enum(CHANNELS))),
                ("kind", memo(enum(MESSAGE_KINDS))),
                ("mailing", text),
                ("occurred_at", memo(datetime_parser(tz))),
            ]
        )


class SegmentList(Kind):
    """A static segment from a one-column list of emails or external ids."""

    name, required = "segment", ("entry",)
    HEADER_WORDS = {
        "email",
        "e-mail",
        "e_mail",
        "emails",
        "external_id",
        "id",
        "entry",
        "customer",
        "почта",
        "электронная_почта",
        "email_адрес",
    }

    def columns(self, tz):
        return OrderedDict([("entry", text)])


KINDS = OrderedDict((k.name, k) for k in (Customers(), Orders(), OrderItems(), Deals(), Messages(), SegmentList()))
FILE_KINDS = ("customers", "orders", "order-items", "deals", "messages")  # the CLI's and the spec's


# --- references ------------------------------------------------------------------


def ids_by(model, key_field, keys, *more):
    """{key: (id, *more)} for rows of `model` whose `key_field` is in `keys`."""
    table, key = model._meta.table_name, column(model, key_field)
    cols = ", ".join([q(key), q("id")] + [q(column(model, f)) for f in more])
    rows = fetch_in(f"SELECT {cols} FROM {q(table)} WHERE {q(key)} IN ({{keys}})", set(keys))
    return {row[0]: row[1:] for row in rows}


class NameCache:
    """ids of named references (shop, mailing, tag, pipeline...) by folded
    name, created when missing. Bounded: cleared when it grows large."""

    LIMIT = 200_000

    def __init__(self, model, name_field="name", extra=None):
        self.model = model
        self.name_field = name_field
        self.ci_field = name_field + "_ci"
        self.extra = extra or (lambda name: {})
        self.ids = {}

    def resolve(self, names):
        """{folded name: id} for display names, creating the missing ones."""
        wanted = {}
        for name in names:
            if name is not None:
                wanted.setdefault(fold(name), name)
        missing = [k for k in wanted if k not in self.ids]
        if missing:
            if len(self.ids) > self.LIMIT:
                self.ids.clear()
            self.ids.update({k: v[0] for k, v in ids_by(self.model, self.ci_field, missing).items()})
            create = [k for k in missing if k not in self.ids]
            if create:
                rows = [{self.name_field: wanted[k], self.ci_field: k, **self.extra(wanted[k])} for k in create]
                fields = list(rows[0])
                bulk_upsert(self.model, fields, [tuple(r[f] for f in fields) for r in rows], [self.ci_field])
                self.ids.update({k: v[0] for k, v in ids_by(self.model, self.ci_field, create).items()})
        return {k: self.ids[k] for k in wanted}

    def clear(self):
        self.ids.clear()


# --- writers -------------------------------------------------------------------


class Writer:
    """Writes one kind's batches. `write(rows, final)` returns (new, updated,
    unchanged) counts of the rows it handled."""

    def __init__(self, engine):
        self.engine = engine
        self.mapped = engine.mapped
        self.custom = engine.custom_targets  # [(target, CustomField)]

    def reset(self):
        """Forget cached ids (after a rolled-back batch)."""

    def hold_back(self, rows):
        """(rows to write now, rows to keep for the next batch)."""
        return rows, []

    def finish(self):
        """After the last batch (in its own transaction)."""

    def reject(self, row, target, reason):
        self.engine.reject(row, target, reason)

    def customers_by_external_id(self, keys):
        return {k: v[0] for k, v in ids_by(Customer, "external_id", keys).items()}

    def users_by_email(self):
        return {ci: uid for ci, uid in User.select(User.email_ci, User.id).tuples()}

    def resolve_customers(self, rows):
        """Rows whose customer_external_id names a customer (values["customer_id"] set); rejects the rest."""
        customers = self.customers_by_external_id(r.values["customer_external_id"] for r in rows)
        ok = []
        for row in rows:
            cid = customers.get(row.values["customer_external_id"])
            if cid is None:
                self.reject(row, "customer_external_id", no_customer_reason(row.values["customer_external_id"]))
                continue
            row.values["customer_id"] = cid
            ok.append(row)
        return ok

    def resolve_manager(self, rows, users):
        ok = []
        for row in rows:
            email = row.values.get("manager")
            if email is None:
                row.values["manager_id"] = None
            elif fold(email) in users:
                row.values["manager_id"] = users[fold(email)]
            else:
                self.reject(
                    row,
                    "manager",
                    _("no user with the email “%(e)s” (create the user first, or clear the cell)", e=email),
                )
                continue
            ok.append(row)
        return ok

    def upsert_records(self, model, tuples, existing, rows):
        """Upsert `tuples` (in `self.fields` order) of a kind keyed by external id with a
        customer (orders, deals), then the custom values of `rows`.

        `existing`: {external id: (id, customer id, ...)} before the batch. Returns
        (returned, new, updated, custom_changed): the rows inserted or changed as
        (id, external id, customer id), the external ids inserted, the ones changed (row
        or custom values), and the ones whose custom values changed.
        """
        returned = bulk_upsert(
            model,
            self.fields,
            tuples,
            ["external_id"],
            self.update,
            self.compare,
            returning=("id", "external_id", "customer"),
        )
        new = {ext for _id, ext, _c in returned if ext not in existing}
        updated = {ext for _id, ext, _c in returned if ext in existing}
        ids = {k: row[0] for k, row in existing.items()}
        ids.update({ext: rid for rid, ext, _c in returned})
        ext_of = {rid: ext for ext, rid in ids.items()}
        custom_changed = {
            ext_of[rid]
            for rid in self.write_custom(
                [(ids[r.values["external_id"]], r.values) for r in rows], {ids[k] for k in new}
            )
        }
        return returned, new, (updated | custom_changed) - new, custom_changed

    def write_custom(self, records, new_ids=frozenset()):
        """Store custom values for [(record_id, values)]; returns record ids whose values changed.

        `new_ids`: records created in this batch, which have no values to compare with yet.
        """
        changed = set()
        if not self.custom or not records:
            return changed
        old_ids = [rid for rid, _values in records if rid not in new_ids]
        for target, field in self.custom:
            column_name = CUSTOM_COLUMNS[field.type]
            existing = dict(
                fetch_in(
                    f'SELECT "record_id", {q(column_name)} FROM "custom_value" '
                    f'WHERE "field_id" = {{p}} AND "record_id" IN ({{keys}})',
                    old_ids,
                    before=[field.id],
                )
            )
            # Only the typed column (and its folded twin) is written; the others stay NULL.
            fields = ["field", "record_id", column_name] + (["value_ci"] if column_name == "value_str" else [])
            delete, insert = [], []
            for rid, values in records:
                new = values.get(target)
                if rid in existing:
                    if same_value(existing[rid], new):
                        continue
                    delete.append(rid)
                elif new is None:
                    continue
                row = value_row(field, rid, new)
                if row:
                    insert.append(tuple(row[f] for f in fields))
                changed.add(rid)
            execute_in(
                'DELETE FROM "custom_value" WHERE "field_id" = {p} AND "record_id" IN ({keys})',
                delete,
                before=[field.id],
            )
            bulk_upsert(CustomValue, fields, insert)
        return changed


# Reasons a row is rejected for what the database holds (both import paths say them alike).


def duplicate_reason(label, value, line):
    return _(
        "duplicate %(col)s “%(v)s”: line %(line)s has it too (that row is the one imported)",
        col=label,
        v=value,
        line=line,
    )


def no_customer_reason(value):
    return _("no customer with the external id “%(v)s”", v=value)


def no_order_reason(value):
    return _("no order with the external id “%(v)s”", v=value)


def _dedupe_key_rows(writer, rows, key, label):
    """Rows whose `key` is first seen in this file; later ones are rejected."""

    def duplicate(row, line):
        writer.reject(row, key, duplicate_reason(label, row.values[key], line))

    first = {}
    unique = []
    for row in rows:
        value = row.values[key]
        if value in first:
            duplicate(row, first[value])
            continue
        first[value] = row.line
        unique.append(row)
    earlier = writer.engine.tracker.earlier([(r.values[key], r.line) for r in unique])
    if not earlier:
        return unique
    result = []
    for row in unique:
        value = row.values[key]
        if value in earlier:
            duplicate(row, earlier[value])
        else:
            result.append(row)
    return result


class CustomersWriter(Writer):
    CORE = (
        "type",
        "first_name",
        "last_name",
        "company_name",
        "email",
        "phone",
        "gender",
        "birth_date",
        "city",
        "country",
        "time_zone",
        "source",
        "manager",
        "email_consent",
        "sms_consent",
        "language",
        "created_at",
    )
    DEFAULTS = {"type": "contact", "email_consent": False, "sms_consent": False}

    def __init__(self, engine):
        super().__init__(engine)
        self.core = [c for c in self.CORE if c in self.mapped]
        self.tags = NameCache(Tag) if "tags" in self.mapped else None
        self.users = self.users_by_email() if "manager" in self.mapped else {}
        plain = [c for c in self.core if c != "created_at"]
        self.folded = [c for c in Customer.FOLDED if c in plain]
        self.update = list(plain) + [c + "_ci" for c in self.folded]
        if "birth_date" in plain:
            self.update.append("birth_md")
        self.compare = list(plain) + (["created_at"] if "created_at" in self.core else [])
        if self.compare:
            self.update += ["updated_at"] + (["created_at"] if "created_at" in self.core else [])
        # Columns without a database default are always inserted; only mapped ones are updated.
        self.fields = ["external_id"] + plain + [c + "_ci" for c in self.folded]
        if "birth_date" in plain:
            self.fields.append("birth_md")
        self.fields += [c for c in self.DEFAULTS if c not in plain] + ["created_at", "updated_at"]
        self.defaulted = [c for c in self.core if c in self.DEFAULTS]

    def reset(self):
        if self.tags:
            self.tags.clear()

    def row_data(self, values):
        """The customer's column values from a parsed row (both import paths):
        defaults for blank cells, the manager's id, the folded twins. A
        `created_at` of None means: the stored one, or now for a new customer."""
        data = dict(self.DEFAULTS)
        data.update(values)
        for c in self.defaulted:
            if data[c] is None:
                data[c] = self.DEFAULTS[c]
        if "manager" in data:
            data["manager"] = data.get("manager_id")
        Customer.fill_folded(data)
        return data

    def write(self, rows, final=False):
        rows = _dedupe_key_rows(self, rows, "external_id", "external_id")
        if "manager" in self.core:
            rows = self.resolve_manager(rows, self.users)
        if "phone" in self.core and "country" in self.core:
            rows = self.phones_by_country(rows)
        if not rows:
            return 0, 0, 0
        existing = ids_by(Customer, "external_id", [r.values["external_id"] for r in rows], "created_at")
        now = utcnow()
        fields = self.fields
        row_of = operator.itemgetter(*fields)
        tuples = []
        for row in rows:
            v = row.values
            data = self.row_data(v)
            if data.get("created_at") is None:
                old = existing.get(v["external_id"])
                data["created_at"] = old[1] if old else now
            data["updated_at"] = now
            tuples.append(row_of(data))
        returned = bulk_upsert(
            Customer, fields, tuples, ["external_id"], self.update, self.compare, returning=("id", "external_id")
        )
        ids = {k: row[0] for k, row in existing.items()}
        ids.update({ext: cid for cid, ext in returned})
        new = {ext for _cid, ext in returned if ext not in existing}
        updated = {ext for _cid, ext in returned if ext in existing}
        ext_of = {cid: ext for ext, cid in ids.items()}
        new_ids = {ids[k] for k in new}
        if self.tags:
            for cid in self.write_tags([(ids[r.values["external_id"]], r.values["tags"]) for r in rows], new_ids):
                updated.add(ext_of[cid])
        for cid in self.write_custom([(ids[r.values["external_id"]], r.values) for r in rows], new_ids):
            updated.add(ext_of[cid])
        updated -= new
        changes.mark_changed(ids[k] for k in new | updated)
        return len(new), len(updated), len(rows) - len(new) - len(updated)

    def phones_by_country(self, rows):
        """A phone written without its country code gets the code of the row's
        country (E.164); a number that country does not have rejects the row."""
        ok = []
        for row in rows:
            v = row.values
            if v.get("phone") and v.get("country") and not v["phone"].startswith("+"):
                try:
                    v["phone"] = parse_phone(v["phone"], v["country"])
                except ValueError as exc:
                    self.reject(row, "phone", str(exc))
                    continue
            ok.append(row)
        return ok

    def write_tags(self, pairs, new_ids=frozenset()):
        tag_ids = self.tags.resolve(name for _cid, names in pairs for name in names)
        current = defaultdict(set)
        for cid, tid in fetch_in(
            'SELECT "customer_id", "tag_id" FROM "customer_tag" WHERE "customer_id" IN ({keys})',
            [cid for cid, _names in pairs if cid not in new_ids],
        ):
            current[cid].add(tid)
        changed, add, gone = set(), [], []
        for cid, names in pairs:
            wanted = {tag_ids[fold(n)] for n in names}
            have = current[cid]
            if wanted == have:
                continue
            changed.add(cid)
            if have - wanted:
                gone.append(cid)
                add.extend((cid, tid) for tid in wanted)
            else:
                add.extend((cid, tid) for tid in wanted - have)
        execute_in('DELETE FROM "customer_tag" WHERE "customer_id" IN ({keys})', gone)
        bulk_upsert(CustomerTag, ["customer", "tag"], add)
        return changed


class OrdersWriter(Writer):
    def __init__(self, engine):
        super().__init__(engine)
        self.shops = NameCache(Shop)
        self.fields = ["external_id", "customer", "ordered_at"]
        if "status" in self.mapped:
            self.fields += ["status", "status_ci"]
        if "shop" in self.mapped:
            self.fields.append("shop")
        self.fields.append("total_cents")  # no database default: always inserted
        self.row_of = operator.itemgetter(*self.fields)
        self.update = [f for f in self.fields[1:] if f != "total_cents" or "total" in self.mapped]
        self.compare = [f for f in self.update if f != "status_ci"]

    def reset(self):
        self.shops.clear()

    def write(self, rows, final=False):
        rows = _dedupe_key_rows(self, rows, "external_id", "external_id")
        ok = self.resolve_customers(rows)
        if not ok:
            return 0, 0, 0
        shops = self.shops.resolve(r.values.get("shop") for r in ok) if "shop" in self.mapped else {}
        existing = ids_by(Order, "external_id", [r.values["external_id"] for r in ok], "customer")
        tuples = []
        for row in ok:
            v = row.values
            shop = v.get("shop")
            data = {
                "external_id": v["external_id"],
                "customer": v["customer_id"],
                "ordered_at": v["ordered_at"],
                "status": v.get("status"),
                "status_ci": fold(v.get("status")),
                "shop": shops[fold(shop)] if shop else None,
                "total_cents": v.get("total") or 0,
            }
            tuples.append(self.row_of(data))
        returned, new, updated, custom_changed = self.upsert_records(Order, tuples, existing, ok)
        # Rollup: changed orders recompute their customers (old and new: an order may move);
        # orders just inserted are added on top, unless their customer is recomputed anyway.
        touched = set()
        for _id, ext, cid in returned:
            if ext in existing:
                touched.update((cid, existing[ext][1]))
        added = [oid for oid, ext, cid in returned if ext not in existing and cid not in touched]
        marked = touched | {cid for _id, _ext, cid in returned}
        marked.update(row.values["customer_id"] for row in ok if row.values["external_id"] in custom_changed)
        if added:
            rollups.add_new_orders(added)
        if touched:
            rollups.refresh_order_stats(touched)
        changes.mark_changed(marked)
        return len(new), len(updated), len(ok) - len(new) - len(updated)


class OrderItemsWriter(Writer):
    def __init__(self, engine):
        super().__init__(engine)
        self.groups = {}  # folded path -> id
        self.products = {}  # sku_ci -> (id, name, group_id)

    def reset(self):
        self.groups.clear()
        self.products.clear()

    def hold_back(self, rows):
        """Keep the last order's rows for the next batch: its items may go on there."""
        if not rows:
            return rows, []
        last = rows[-1].values["order_external_id"]
        cut = len(rows)
        while cut > 0 and rows[cut - 1].values["order_external_id"] == last:
            cut -= 1
        if cut == 0:  # one order fills the whole batch: write it, the rest is appended later
            return rows, []
        return rows[:cut], rows[cut:]

    def write(self, rows, final=False):
        if not rows:
            return 0, 0, 0
        orders = ids_by(Order, "external_id", [r.values["order_external_id"] for r in rows], "customer")
        ok = []
        for row in rows:
            if row.values["order_external_id"] not in orders:
                self.reject(row, "order_external_id", no_order_reason(row.values["order_external_id"]))
                continue
            ok.append(row)
        if not ok:
            return 0, 0, 0
        group_ids = self.resolve_groups(r.values.get("product_group") for r in ok)
        products = self.resolve_products(ok, group_ids)

        by_order = OrderedDict()
        for row in ok:
            by_order.setdefault(row.values["order_external_id"], []).append(row)
        earlier = self.engine.tracker.earlier([(ext, rs[0].line) for ext, rs in by_order.items()])
        replace = [orders[ext][0] for ext in by_order if ext not in earlier]
        current = defaultdict(list)
        for oid, pid, qty, price in fetch_in(
            'SELECT "order_id", "product_id", "quantity", "price_cents" FROM "order_item" WHERE "order_id" IN ({keys})',
            replace,
        ):
            current[oid].append((pid, qty, price))
        new = updated = unchanged = 0
        delete, insert, touched = [], [], set()
        for ext, group in by_order.items():
            oid, cid = orders[ext]
            items = [
                (
                    products[fold(r.values["sku"])],
                    1 if r.values.get("quantity") is None else r.values["quantity"],
                    r.values.get("price") or 0,
                )
                for r in group
            ]
            if ext in earlier:  # more items of an order already replaced in this file
                insert.extend((oid,) + item for item in items)
                new += len(group)
                touched.add(cid)
                continue
            if sorted(items) == sorted(current.get(oid, [])):
                unchanged += len(group)
                continue
            if current.get(oid):
                delete.append(oid)
                updated += len(group)
            else:
                new += len(group)
            insert.extend((oid,) + item for item in items)
            touched.add(cid)
        execute_in('DELETE FROM "order_item" WHERE "order_id" IN ({keys})', delete)
        bulk_upsert(OrderItem, ["order", "product", "quantity", "price_cents"], insert)
        if touched:
            rollups.refresh_order_stats(touched)
            changes.mark_changed(touched)
        return new, updated, unchanged

    def resolve_groups(self, paths):
        """{folded path: group id}, creating each missing node along the path."""
        wanted = {fold(p): p for p in paths if p}
        missing = [k for k in wanted if k not in self.groups]
        if missing:
            self.groups.update({k: v[0] for k, v in ids_by(ProductGroup, "path_ci", missing).items()})
            for key in missing:
                if key in self.groups:
                    continue
                parts = wanted[key].split("/")
                parent = None
                for depth in range(1, len(parts) + 1):
                    path = "/".join(parts[:depth])
                    ci = fold(path)
                    if ci not in self.groups:
                        node = ProductGroup.get_or_none(ProductGroup.path_ci == ci)
                        if node is None:
                            node = ProductGroup.create(parent=parent, name=parts[depth - 1], path=path)
                        self.groups[ci] = node.id
                    parent = self.groups[ci]
        return {k: self.groups[k] for k in wanted}

    def resolve_products(self, rows, group_ids):
        """{sku_ci: product id}: found, updated (name/group given and different) or created."""
        wanted = OrderedDict()
        for row in rows:
            v = row.values
            entry = wanted.setdefault(fold(v["sku"]), {"sku": v["sku"], "name": None, "group": None})
            if v.get("product_name"):
                entry["name"] = v["product_name"]
            if v.get("product_group"):
                entry["group"] = group_ids[fold(v["product_group"])]
        if len(self.products) > 50_000:
            self.products.clear()
        missing = [k for k in wanted if k not in self.products]
        self.products.update(ids_by(Product, "sku_ci", missing, "name", "group"))
        create = [(w["sku"], k, w["name"] or "", w["group"]) for k, w in wanted.items() if k not in self.products]
        if create:
            bulk_upsert(Product, ["sku", "sku_ci", "name", "group"], create, ["sku_ci"])
            self.products.update(ids_by(Product, "sku_ci", [c[1] for c in create], "name", "group"))
        regrouped = []
        for k, w in wanted.items():
            pid, name, gid = self.products[k]
            update = {}
            if w["name"] and w["name"] != name:
                update[Product.name] = w["name"]
            if w["group"] and w["group"] != gid:
                update[Product.group] = w["group"]
                regrouped.append(pid)
            if update:
                Product.update(update).where(Product.id == pid).execute()
                self.products[k] = (pid, w["name"] or name, w["group"] or gid)
        if regrouped:
            # Customers who bought a product that moved group now match other group filters.
            buyers = fetch_in(
                'SELECT DISTINCT o."customer_id" FROM "orders" o JOIN "order_item" i '
                'ON i."order_id" = o."id" WHERE i."product_id" IN ({keys})',
                regrouped,
            )
            changes.mark_changed(cid for (cid,) in buyers)
        return {k: self.products[k][0] for k in wanted}


class DealsWriter(Writer):
    def __init__(self, engine):
        super().__init__(engine)
        self.pipelines = NameCache(Pipeline, extra=lambda name: {"position": Pipeline.select().count()})
        self.stages = {}  # (pipeline id, folded name) -> id
        self.users = self.users_by_email() if "manager" in self.mapped else {}
        self.fields = ["external_id", "customer", "pipeline", "stage", "amount_cents"]
        if "manager" in self.mapped:
            self.fields.append("manager")
        if "closed_at" in self.mapped:
            self.fields.append("closed_at")
        self.fields.append("created_at")
        self.row_of = operator.itemgetter(*self.fields)
        # amount_cents and created_at have no database default: always inserted, updated when mapped.
        self.update = [
            f
            for f in self.fields[1:]
            if (f != "created_at" or "created_at" in self.mapped) and (f != "amount_cents" or "amount" in self.mapped)
        ]
        self.compare = list(self.update)

    def reset(self):
        self.pipelines.clear()
        self.stages.clear()

    def write(self, rows, final=False):
        rows = _dedupe_key_rows(self, rows, "external_id", "external_id")
        if "manager" in self.mapped:
            rows = self.resolve_manager(rows, self.users)
        ok = self.resolve_customers(rows)
        if not ok:
            return 0, 0, 0
        pipelines = self.pipelines.resolve(r.values["pipeline"] for r in ok)
        stages = self.resolve_stages(ok, pipelines)
        existing = ids_by(Deal, "external_id", [r.values["external_id"] for r in ok], "customer", "created_at")
        now = utcnow()
        tuples = []
        for row in ok:
            v = row.values
            pid = pipelines[fold(v["pipeline"])]
            created = v.get("created_at")
            if created is None:
                old = existing.get(v["external_id"])
                created = old[2] if old else now
            data = {
                "external_id": v["external_id"],
                "customer": v["customer_id"],
                "pipeline": pid,
                "stage": stages[(pid, fold(v["stage"]))],
                "amount_cents": v.get("amount") or 0,
                "manager": v.get("manager_id"),
                "closed_at": v.get("closed_at"),
                "created_at": created,
            }
            tuples.append(self.row_of(data))
        returned, new, updated, custom_changed = self.upsert_records(Deal, tuples, existing, ok)
        marked = set()
        for _id, ext, cid in returned:
            marked.add(cid)
            if ext in existing:
                marked.add(existing[ext][1])
        marked.update(row.values["customer_id"] for row in ok if row.values["external_id"] in custom_changed)
        changes.mark_changed(marked)
        return len(new), len(updated), len(ok) - len(new) - len(updated)

    def resolve_stages(self, rows, pipelines):
        wanted = OrderedDict()
        for row in rows:
            pid = pipelines[fold(row.values["pipeline"])]
            key = (pid, fold(row.values["stage"]))
            wanted.setdefault(key, (row.values["stage"], row.values.get("stage_kind")))
        missing = [k for k in wanted if k not in self.stages]
        for pid in {p for p, _n in missing}:
            names = [n for p, n in missing if p == pid]
            for name_ci, sid in fetch_in(
                'SELECT "name_ci", "id" FROM "stage" WHERE "pipeline_id" = {p} AND "name_ci" IN ({keys})',
                names,
                before=[pid],
            ):
                self.stages[(pid, name_ci)] = sid
        for key in missing:
            if key in self.stages:
                continue
            pid, name_ci = key
            name, kind = wanted[key]
            position = Stage.select().where(Stage.pipeline == pid).count()
            Stage.insert(
                pipeline=pid, name=name, name_ci=name_ci, kind=kind or "open", position=position
            ).on_conflict_ignore().execute()
            self.stages[key] = Stage.get(Stage.pipeline == pid, Stage.name_ci == name_ci).id
        return {k: self.stages[k] for k in wanted}


class MessagesWriter(Writer):
    def __init__(self, engine):
        super().__init__(engine)
        self.channel_of = {}  # folded mailing name -> channel of its first message (for new mailings)
        self.mailings = NameCache(
            Mailing, extra=lambda name: {"channel": self.channel_of.get(fold(name), "email"), "created_at": utcnow()}
        )

    def reset(self):
        self.mailings.clear()

    def write(self, rows, final=False):
        ok = self.resolve_customers(rows)
        if not ok:
            return 0, 0, 0
        for row in ok:
            if row.values.get("mailing"):
                self.channel_of.setdefault(fold(row.values["mailing"]), row.values["channel"])
        mailings = self.mailings.resolve(r.values.get("mailing") for r in ok) if "mailing" in self.mapped else {}
        events = []
        for row in ok:
            v = row.values
            mailing = mailings[fold(v["mailing"])] if v.get("mailing") else None
            events.append((v["customer_id"], v["channel"], v["kind"], mailing, v["occurred_at"]))
        first, last = min(e[4] for e in events), max(e[4] for e in events)
        # Times compare as text: what SQLite stores, and str() of PostgreSQL's datetimes.
        stored = {
            (c, ch, k, m, str(at))
            for c, ch, k, m, at in fetch_in(
                'SELECT "customer_id", "channel", "kind", "mailing_id", "occurred_at" FROM "message_event" '
                'WHERE "occurred_at" >= {p} AND "occurred_at" <= {p} AND "customer_id" IN ({keys})',
                {e[0] for e in events},
                before=[first, last],
            )
        }
        insert, marked = [], set()
        for event in events:
            key = event[:4] + (str(event[4]),)
            if key in stored:
                continue
            stored.add(key)  # the same event twice in the file is one event
            insert.append(event)
            marked.add(event[0])
        bulk_upsert(MessageEvent, ["customer", "channel", "kind", "mailing", "occurred_at"], insert)
        changes.mark_changed(marked)
        return len(insert), 0, len(ok) - len(insert)


class SegmentDeleted(LookupError):
    """The segment a list goes into was deleted while the list was imported."""


class SegmentListWriter(Writer):
    def __init__(self, engine):
        super().__init__(engine)
        run = engine.run
        self.segment = Segment.get_by_id(run.segment_id) if run.segment_id else None
        if self.segment is None:
            with database.atomic():
                self.segment = create_list_segment(
                    (run.options or {}).get("segment_name") or run.file_name, run.user_id
                )
                run.segment = self.segment
                run.save(only=[type(run).segment])
        # into an existing static segment: "add" to its members, or "replace" them
        # (members the list does not name leave it when the last batch is written)
        self.replace = (run.options or {}).get("mode") == "replace"
        self.user_id = run.user_id
        self.matched = set()

    def _hold(self):
        """What the foreign keys' row checks did (none on PostgreSQL, migration 0022), once
        a transaction, before the customers or members it writes about are read."""
        lock_membership()
        if not hold_segment(self.segment.id):
            raise SegmentDeleted(self.segment.id)

    def write(self, rows, final=False):
        self._hold()
        entries = [(row, row.values["entry"]) for row in rows]
        by_ext = {k: v[0] for k, v in ids_by(Customer, "external_id", {e for _r, e in entries}).items()}
        by_email = defaultdict(list)
        for email_ci, cid in fetch_in(
            'SELECT "email_ci", "id" FROM "customer" WHERE "email_ci" IN ({keys})', {fold(e) for _r, e in entries}
        ):
            by_email[email_ci].append(cid)
        wanted = {}
        for row, entry in entries:
            ids = set(by_email.get(fold(entry), []))
            if entry in by_ext:
                ids.add(by_ext[entry])
            if not ids:
                self.reject(row, "entry", _("no customer has this email or external id"))
                continue
            wanted[row.line] = ids
        now = utcnow()
        all_ids = sorted({cid for ids in wanted.values() for cid in ids})
        added = {
            cid
            for (cid,) in bulk_upsert(
                SegmentMember,
                ["segment", "customer", "since"],
                [(self.segment.id, cid, now) for cid in all_ids],
                ["segment", "customer"],
                returning=("customer",),
            )
        }
        if added:
            SegmentChange.insert_many(
                [(self.segment.id, cid, "entered", now, True, self.user_id) for cid in sorted(added)],
                fields=["segment", "customer", "change", "at", "manual", "user"],
            ).execute()
        self.matched.update(all_ids)
        changes.mark_changed(added)
        new = sum(1 for ids in wanted.values() if ids & added)
        return new, 0, len(wanted) - new

    def finish(self):
        if self.replace:
            self._hold()
            members = {
                cid
                for (cid,) in SegmentMember.select(SegmentMember.customer)
                .where(SegmentMember.segment == self.segment.id)
                .tuples()
            }
            gone = sorted(members - self.matched)
            now = utcnow()
            for start in range(0, len(gone), 500):
                chunk = gone[start : start + 500]
                SegmentMember.delete().where(
                    SegmentMember.segment == self.segment.id, SegmentMember.customer.in_(chunk)
                ).execute()
                SegmentChange.insert_many(
                    [(self.segment.id, cid, "exited", now, True, self.user_id) for cid in chunk],
                    fields=["segment", "customer", "change", "at", "manual", "user"],
                ).execute()
            changes.mark_changed(gone)
        size = SegmentMember.select().where(SegmentMember.segment == self.segment.id).count()
        Segment.update(size=size, computed_at=utcnow(), updated_at=utcnow()).where(
            Segment.id == self.segment.id
        ).execute()


def create_list_segment(name, user_id=None):
    """A static segment whose members are an uploaded list (source "list").

    Its definition is a segment block naming the segment itself: evaluating it
    gives exactly its stored members, so even a recompute changes nothing.
    """
    code = free_code(name, "list")
    definition = self_definition(code)
    return Segment.create(
        code=code,
        name=(name or code)[:TEXT_MAX],
        type="static",
        active=True,
        definition=definition,
        source="list",
        size=0,
        created_by=user_id,
    )


WRITERS = {
    "customers": CustomersWriter,
    "orders": OrdersWriter,
    "order-items": OrderItemsWriter,
    "deals": DealsWriter,
    "messages": MessagesWriter,
    "segment": SegmentListWriter,
}
