"""Events: named occurrences in a customer's life, each with its time.

Two sources:
- the API (`POST /api/v1/events`, any name: an unknown one becomes a new
  event type, see webapp.api.upserts.add_event);
- event definitions on orders: an occurrence for every order matching a
  condition (an Orders block of the spec, webapp.engine.orders), dated at
  the order's `ordered_at` and tied to it (`event_occurrence.order_id`,
  unique per event type), so recording is idempotent.

Past orders are recorded by the backfill job (webapp.events.jobs): set work,
`INSERT ... SELECT` by ranges of order ids, conflicts ignored. Orders written
later (API, CSV imports of orders and of order items) mark their customers
changed; the real-time re-check (webapp.cron.recheck_changed_job) calls
`record_for_customers` first, which re-evaluates every active definition over
those customers' orders: occurrences of orders that stopped matching (or
moved, or changed date) go, those of matching orders come.

Dynamic segments and the backfill: a backfill can touch a million customers.
Marking them all changed would re-check them 500 at a time against every
segment; instead, when a backfill (or a delete) is done, the active dynamic
segments whose definition has an Events block get a full run queued
(`segments_to_recompute`), which is one set-based diff each. The real-time
path needs neither: it runs right before those customers are re-checked.

Flask-free: the pages (views.py), the job, the CLI and the tests call this.
"""

import datetime
import json
import re

import peewee as pw

from .. import localtime
from ..db import database, is_postgres
from ..engine import DefinitionError, entities_read
from ..engine import catalogue as load_catalogue
from ..engine.orders import condition_json, matching_orders, parse_condition
from ..i18n import _
from ..models import Customer, EventDefinition, EventOccurrence, EventType, Order, Segment, utcnow
from ..text import fold, slug

CODE_RE = re.compile(r"^[a-z0-9_]{1,63}$")
CHUNK_ORDERS = 500_000  # order ids per backfill statement
SCOPE_CHUNK = 500  # customers per real-time statement
RANGES = (30, 90, 365)  # days the event page's chart shows


class EventError(Exception):
    """A definition that cannot be saved. `.errors`: {field: [messages]}, where
    field is "name", "code", or "condition" (engine errors, located)."""

    def __init__(self, errors, condition_errors=()):
        self.errors = errors
        self.condition_errors = list(condition_errors)
        super().__init__(
            "; ".join([m for ms in errors.values() for m in ms] + [e["message"] for e in self.condition_errors])
        )


# --- definitions ---------------------------------------------------------------


def suggest_code(name):
    return slug(name)


def _check_condition(condition, cat=None):
    try:
        return condition_json(parse_condition(condition, catalogue=cat)), []
    except DefinitionError as exc:
        return None, exc.errors


def _check_code(code, exclude_type_id=None):
    code = (code or "").strip()
    if not code:
        return code, [_("Enter a code.")]
    if not CODE_RE.match(code):
        return code, [_("Use 1 to 63 lower-case Latin letters, digits and _ (e.g. bought_croissant).")]
    existing = EventType.get_or_none(EventType.code_ci == fold(code))
    if existing is not None and existing.id != exclude_type_id:
        other = EventDefinition.get_or_none(EventDefinition.event_type == existing.id)
        if other is not None:
            return code, [
                _(
                    "The event “%(code)s” is already recorded by the definition “%(name)s”.",
                    code=existing.code,
                    name=other.name,
                )
            ]
        if EventOccurrence.select().where(EventOccurrence.event_type == existing.id).exists():
            return code, [
                _("The event “%(code)s” is already sent through the API; choose another code.", code=existing.code)
            ]
    return code, []


def create_definition(name, code, condition, *, active=True, user=None):
    """Create a definition (and its event type); the caller queues its backfill.

    Raises EventError with every problem (name, code, located condition errors).
    """
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = [_("Enter a name.")]
    code, code_errors = _check_code(code)
    if code_errors:
        errors["code"] = code_errors
    canonical, condition_errors = _check_condition(condition)
    if errors or condition_errors:
        raise EventError(errors, condition_errors)
    with database.atomic():
        event_type = EventType.get_or_none(EventType.code_ci == fold(code))
        if event_type is None:
            event_type = EventType.create(code=code, name=name)
        else:  # an unused type (e.g. left by a deleted definition)
            EventType.update(name=name).where(EventType.id == event_type.id).execute()
        return EventDefinition.create(
            name=name,
            event_type=event_type,
            match=canonical["match"],
            filters=canonical["filters"],
            active=bool(active),
            status="queued",
            created_by=user,
        )


def update_definition(definition, name, condition, *, active=True):
    """Save a definition; returns whether its backfill must run again (the
    condition changed, or it was activated)."""
    name = (name or "").strip()
    errors = {} if name else {"name": [_("Enter a name.")]}
    canonical, condition_errors = _check_condition(condition)
    if errors or condition_errors:
        raise EventError(errors, condition_errors)
    changed = canonical != definition.condition
    rerun = bool(active) and (changed or not definition.active or definition.status == "failed")
    with database.atomic():
        values = {
            "name": name,
            "match": canonical["match"],
            "filters": canonical["filters"],
            "active": bool(active),
            "updated_at": utcnow(),
        }
        if rerun:
            values.update(revision=EventDefinition.revision + 1, status="queued", error=None)
        EventDefinition.update(values).where(EventDefinition.id == definition.id).execute()
        EventType.update(name=name).where(EventType.id == definition.event_type_id).execute()
    return rerun


def delete_derived(event_type_id, *, chunk=CHUNK_ORDERS, on_progress=None):
    """Delete a type's order-derived occurrences by ranges of order ids, each
    range committed on its own: one DELETE of 2.8 million rows held 600 MB and
    the write lock for a minute (1M demo file). Returns how many went;
    `on_progress(done share)` after each range."""
    eo = EventOccurrence
    derived = (eo.event_type == event_type_id) & eo.order.is_null(False)
    lo, hi = eo.select(pw.fn.MIN(eo.order), pw.fn.MAX(eo.order)).where(derived).tuples().get()
    removed = 0
    if lo is None:
        return removed
    for start in range(lo, hi + 1, chunk):
        with database.atomic():
            removed += eo.delete().where(derived, eo.order.between(start, start + chunk - 1)).execute()
        if on_progress:
            on_progress(min(1.0, (start + chunk - lo) / (hi - lo + 1)))
    return removed


def start_deleting(definition):
    """Mark a definition as being deleted: it records nothing more and a
    running backfill stops at its next range (the revision moves on); the
    delete job (or `delete_definition`) does the rest."""
    (
        EventDefinition.update(
            active=False, status="deleting", revision=EventDefinition.revision + 1, updated_at=utcnow()
        )
        .where(EventDefinition.id == definition.id)
        .execute()
    )


def delete_definition(definition, *, on_progress=None):
    """Delete a definition and the occurrences it recorded; its event type goes
    too unless the API recorded some. Returns the number of occurrences removed."""
    start_deleting(definition)
    removed = delete_derived(definition.event_type_id, on_progress=on_progress)
    with database.atomic():
        EventDefinition.delete().where(EventDefinition.id == definition.id).execute()
        if not EventOccurrence.select().where(EventOccurrence.event_type == definition.event_type_id).exists():
            EventType.delete().where(EventType.id == definition.event_type_id).execute()
    return removed


def segments_to_recompute():
    """Active dynamic segments whose definition has an Events block: their
    members may change when order events are recorded or removed in bulk."""
    return [segment for segment in Segment.evaluated() if "event" in entities_read(segment.definition)]


# --- recording -----------------------------------------------------------------


def _insert_matching(event_type_id, query, o):
    """INSERT the occurrences of the orders `query` selects, ignoring those
    already recorded; returns how many were added."""
    rows = query.select(o.customer, pw.Value(event_type_id, converter=False), o.ordered_at, o.id)
    return (
        EventOccurrence.insert_from(
            rows,
            [EventOccurrence.customer, EventOccurrence.event_type, EventOccurrence.occurred_at, EventOccurrence.order],
        )
        .on_conflict_ignore()
        .as_rowcount()
        .execute()
    )


def backfill(definition_id, revision=None, *, on_progress=None, chunk=CHUNK_ORDERS, tz="UTC"):
    """Record the occurrences of every past order matching the definition.

    Idempotent and resumable: the first run of a revision removes the type's
    derived occurrences (the condition may have changed), then sets the order
    id range; each chunk's INSERT ... SELECT commits with the id it reached. A re-run resumes there, and conflicts are ignored, so a
    crash midway does no harm. Stops quietly when the definition was changed
    (a newer revision has its own job) or deleted. Returns the definition, or
    None when there was nothing to do.
    """
    definition = EventDefinition.get_or_none(EventDefinition.id == definition_id)
    if definition is None or (revision is not None and definition.revision != revision):
        return None
    if not definition.active:
        return None
    revision = definition.revision
    try:
        block = parse_condition(definition.condition)
    except DefinitionError as exc:  # e.g. a custom field deleted since
        _finish(definition.id, revision, "failed", error="\n".join(exc.messages))
        return EventDefinition.get_by_id(definition.id)
    type_id = definition.event_type_id

    def claim():
        # Every write of the job starts with an UPDATE of the definition row
        # guarded by the revision: it locks the row (PostgreSQL) against a
        # concurrent edit, and matches nothing once the condition changed.
        return (
            EventDefinition.update(status="running", error=None, finished_at=None)
            .where(
                EventDefinition.id == definition.id,
                EventDefinition.revision == revision,
                EventDefinition.active == True,
            )
            .execute()
        )  # noqa: E712

    with database.atomic():
        if not claim():
            return None
    if definition.cleared_revision != revision:
        # the previous condition's occurrences, range by range (the bar stays
        # at 0 meanwhile); a crash here clears again on the next run, as
        # cleared_revision is set after
        (
            EventDefinition.update(next_order_id=EventDefinition.first_order_id, recorded=0)
            .where(EventDefinition.id == definition.id)
            .execute()
        )
        delete_derived(type_id)
    with database.atomic():
        if not claim():
            return None
        if definition.cleared_revision != revision:
            lo, hi = Order.select(pw.fn.MIN(Order.id), pw.fn.MAX(Order.id)).tuples().get()
            lo, hi = lo or 1, hi or 0
            values = {
                "cleared_revision": revision,
                "first_order_id": lo,
                "next_order_id": lo,
                "last_order_id": hi,
                "recorded": 0,
                "started_at": utcnow(),
            }
            EventDefinition.update(values).where(EventDefinition.id == definition.id).execute()
    definition = EventDefinition.get_by_id(definition.id)
    if on_progress:
        on_progress(definition)
    start = definition.next_order_id
    while start <= definition.last_order_id:
        end = min(start + chunk - 1, definition.last_order_id)
        with database.atomic():
            if not (
                EventDefinition.update(next_order_id=end + 1)
                .where(
                    EventDefinition.id == definition.id,
                    EventDefinition.revision == revision,
                    EventDefinition.active == True,
                )
                .execute()
            ):  # noqa: E712
                return None  # changed, deactivated or deleted meanwhile
            query, o = matching_orders(block, id_range=(start, end), tz=tz)
            added = _insert_matching(type_id, query, o)
            (
                EventDefinition.update(recorded=EventDefinition.recorded + added)
                .where(EventDefinition.id == definition.id)
                .execute()
            )
        start = end + 1
        definition = EventDefinition.get_by_id(definition.id)
        if on_progress:
            on_progress(definition)
    _finish(definition.id, revision, "done")
    return EventDefinition.get_by_id(definition.id)


def _finish(definition_id, revision, status, error=None):
    values = {"status": status, "error": error, "finished_at": utcnow()}
    if status == "done":
        definition = EventDefinition.get_by_id(definition_id)
        values["recorded"] = derived_count(definition.event_type_id)
        if not is_postgres():
            # SQLite plans by its statistics; without fresh ones for the
            # table's indexes it counted a type's customers through the
            # (event_type, occurred_at) index and a row read each (1M demo
            # file: 2.3 s instead of 0.07 s). Sampled: ~20 ms at 3M rows.
            database.execute_sql("PRAGMA analysis_limit = 1000")
            database.execute_sql("ANALYZE event_occurrence")
    (
        EventDefinition.update(values)
        .where(EventDefinition.id == definition_id, EventDefinition.revision == revision)
        .execute()
    )


def derived_count(event_type_id):
    return (
        EventOccurrence.select()
        .where(EventOccurrence.event_type == event_type_id, EventOccurrence.order.is_null(False))
        .count()
    )


def progress(definition):
    """(share done 0..1, orders looked at, orders in range) of a definition's backfill."""
    total = max(definition.last_order_id - definition.first_order_id + 1, 0)
    done = min(max(definition.next_order_id - definition.first_order_id, 0), total)
    if definition.status == "done":
        return 1.0, total, total
    if definition.status == "deleting":
        return 0.0, 0, total  # the delete job reports its own share
    return (done / total if total else 0.0), done, total


def record_for_customers(customer_ids, *, tz="UTC"):
    """Bring these customers' order-derived occurrences in line with the active
    definitions (the real-time path; called before their segments are
    re-checked). Set-based per definition and slice of customers: first every
    occurrence whose order no longer matches, or no longer belongs to the
    customer or has another date, is deleted; then the matching orders'
    occurrences are inserted (conflicts ignored). Returns (added, removed).
    """
    ids = sorted({int(i) for i in customer_ids if i is not None})
    definitions = list(EventDefinition.select().where(EventDefinition.active == True))  # noqa: E712
    if not ids or not definitions:
        return 0, 0
    cat = load_catalogue()
    added = removed = 0
    slices = [ids[k : k + SCOPE_CHUNK] for k in range(0, len(ids), SCOPE_CHUNK)]
    with database.atomic():
        for definition in definitions:
            try:
                block = parse_condition(definition.condition, catalogue=cat)
            except DefinitionError:
                continue  # the backfill reports it on the definition's page
            type_id = definition.event_type_id
            # Deletes of every slice first: an order that moved between two
            # customers of different slices must lose its old row before the
            # new one is inserted (one row per order and type).
            for part in slices:
                query, o = matching_orders(block, catalogue=cat, customers=part, tz=tz)
                eo = EventOccurrence
                same = Order.select(pw.SQL("1")).where(
                    (Order.id == eo.order) & (Order.customer == eo.customer) & (Order.ordered_at == eo.occurred_at)
                )
                removed += (
                    eo.delete()
                    .where(
                        eo.event_type == type_id,
                        eo.order.is_null(False),
                        eo.customer.in_(part),
                        eo.order.not_in(query.select(o.id)) | ~pw.fn.EXISTS(same),
                    )
                    .execute()
                )
            for part in slices:
                query, o = matching_orders(block, catalogue=cat, customers=part, tz=tz)
                added += _insert_matching(type_id, query, o)
    return added, removed


# --- reading ---------------------------------------------------------------------


def event_types(page, per_page):
    """(event types of the page by code, total): each with `source`
    ("orders" | "api") and its definition (or None)."""
    query = EventType.select().order_by(EventType.code_ci)
    total = query.count()
    types = list(query.paginate(page, per_page))
    definitions = {
        d.event_type_id: d
        for d in EventDefinition.select().where(EventDefinition.event_type.in_([t.id for t in types]))
    }
    for event_type in types:
        event_type.definition = definitions.get(event_type.id)
        event_type.source = "orders" if event_type.definition else "api"
    return types, total


def type_stats(type_ids, tz, now=None):
    """{type id: {"total", "recent" (last 30 days), "customers", "last_at"}}.

    One query, each figure a subquery per type that its own index answers
    ((event_type, occurred_at) for counts and the last date, (event_type,
    customer) for distinct customers): a GROUP BY with a CASE read every
    row (1M demo file, 480,000 occurrences: 3.2 s)."""
    if not type_ids:
        return {}
    since, _end = localtime.day_bounds(localtime.today(tz, now) - datetime.timedelta(days=29), tz)
    t = EventType.alias("t")

    def per_type(figure, recent=False):
        eo = EventOccurrence.alias()
        query = eo.select(figure(eo)).where(eo.event_type == t.id)
        return query.where(eo.occurred_at >= since) if recent else query

    rows = (
        t.select(
            t.id,
            per_type(lambda eo: pw.fn.COUNT(pw.SQL("*"))),
            per_type(lambda eo: pw.fn.COUNT(pw.SQL("*")), recent=True),
            per_type(lambda eo: pw.fn.COUNT(eo.customer.distinct())),
            per_type(lambda eo: pw.fn.MAX(eo.occurred_at)),
        )
        .where(t.id.in_(list(type_ids)))
        .tuples()
    )
    stats = {}
    for type_id, total, recent_n, customers, last_at in rows:
        if isinstance(last_at, str):  # SQLite: MAX() in a subquery gives the column's text
            last_at = datetime.datetime.fromisoformat(last_at)
        stats[type_id] = {"total": total, "recent": recent_n, "customers": customers, "last_at": last_at}
    return stats


def per_day(event_type_id, days, tz, now=None):
    """[(local date, occurrences)] for the last `days` days up to today, zeros included."""
    today = localtime.today(tz, now)
    first = today - datetime.timedelta(days=days - 1)
    start, _e = localtime.day_bounds(first, tz)
    _s, end = localtime.day_bounds(today, tz)
    eo = EventOccurrence
    bucket = localtime.quarter_hours(eo.occurred_at)
    rows = (
        eo.select(bucket, pw.fn.COUNT(pw.SQL("*")))
        .where(eo.event_type == event_type_id, eo.occurred_at >= start, eo.occurred_at < end)
        .group_by(pw.SQL("1"))
        .tuples()
    )  # by position: PostgreSQL sees two parameter sets as two expressions
    counts = {}
    for quarter, n in rows:
        day = localtime.day_of_quarter(quarter, tz)
        counts[day] = counts.get(day, 0) + n
    return [
        (first + datetime.timedelta(days=k), counts.get(first + datetime.timedelta(days=k), 0)) for k in range(days)
    ]


def day_definition(event_code, day):
    """The segment definition of the customers who had the event on a local day
    (an Events block of the spec: the event's code and `occurred_at` on that date):
    what "Make a segment" and "Export" on a day's customer list open."""
    return {
        "version": 1,
        "match": "all",
        "blocks": [
            {
                "entity": "event",
                "match": "all",
                "filters": [
                    {"field": "event", "op": "in", "values": [{"value": event_code}]},
                    {"field": "occurred_at", "op": "between", "from": day.isoformat(), "to": day.isoformat()},
                ],
            }
        ],
    }


def day_customers(event_type_id, day, tz, page, per_page):
    """(rows, total customers) of one local day's page: customers with how many
    times, most first. Rows: (Customer, times, first at, last at)."""
    start, end = localtime.day_bounds(day, tz)
    eo = EventOccurrence
    times = pw.fn.COUNT(pw.SQL("*"))
    where = (eo.event_type == event_type_id) & (eo.occurred_at >= start) & (eo.occurred_at < end)
    total = eo.select(pw.fn.COUNT(eo.customer.distinct())).where(where).scalar() or 0
    grouped = (
        eo.select(
            eo.customer.alias("cid"),
            times.alias("times"),
            pw.fn.MIN(eo.occurred_at).alias("first_at"),
            pw.fn.MAX(eo.occurred_at).alias("last_at"),
        )
        .where(where)
        .group_by(eo.customer)
        .order_by(times.desc(), eo.customer)
        .paginate(page, per_page)
        .alias("g")
    )
    rows = (
        Customer.select(
            Customer,
            grouped.c.times.alias("times"),
            grouped.c.first_at.alias("first_at"),
            grouped.c.last_at.alias("last_at"),
        )
        .join(grouped, on=(Customer.id == grouped.c.cid))
        .order_by(grouped.c.times.desc(), Customer.id)
        .objects()
    )
    result = []
    for customer in rows:
        first_at, last_at = customer.first_at, customer.last_at
        if isinstance(first_at, str):
            first_at, last_at = datetime.datetime.fromisoformat(first_at), datetime.datetime.fromisoformat(last_at)
        result.append((customer, customer.times, first_at, last_at))
    return result, total


def describe(condition, cat=None):
    """The condition's filters in words, one string a filter:
    "Product group: Bakery/Croissants", "Order total: from 50 to 120",
    "Product: not BR-1"."""
    cat = cat or load_catalogue()
    lines = []
    for flt in condition.get("filters") or ():
        info = cat.field("order", flt.get("field"))
        label = info.label if info else flt.get("field")
        op = flt.get("op")
        if op == "in":
            included = [v["value"] for v in flt.get("values", ()) if not v.get("exclude")]
            excluded = [v["value"] for v in flt.get("values", ()) if v.get("exclude")]
            if included and excluded:
                text = _(
                    "one of %(values)s and none of %(excluded)s",
                    values=", ".join(included),
                    excluded=", ".join(excluded),
                )
            elif excluded:
                text = _("none of %(values)s", values=", ".join(excluded))
            else:
                text = _("one of %(values)s", values=", ".join(included))
        elif op == "between":
            lo, hi = flt.get("from"), flt.get("to")
            if lo is not None and hi is not None:
                text = _("from %(lo)s to %(hi)s", lo=lo, hi=hi)
            elif lo is not None:
                text = _("%(lo)s or more", lo=lo)
            else:
                text = _("up to %(hi)s", hi=hi)
        elif op == "contains":
            text = _("contains “%(v)s”", v=flt.get("value"))
        elif op == "is":
            text = _("yes") if flt.get("value") else _("no")
        elif op == "is_empty":
            text = _("none") if info is not None and info.multi else _("empty")
        elif op == "is_not_empty":
            text = _("any") if info is not None and info.multi else _("not empty")
        else:
            text = json.dumps(flt, ensure_ascii=False)
        lines.append(_("%(label)s: %(text)s", label=label, text=text))
    return lines


# --- demo --------------------------------------------------------------------------

DEMO_DEFINITIONS = (
    # (code, name, condition)
    (
        "bought_croissant",
        "Bought a croissant",
        {
            "match": "all",
            "filters": [{"field": "product_group", "op": "in", "values": [{"value": "Bakery/Croissants"}]}],
        },
    ),
    (
        "big_order",
        "Order of 5,000 or more",
        {"match": "all", "filters": [{"field": "total", "op": "between", "from": 5000}]},
    ),
)


def seed_demo_definitions(user=None):
    """Create the demo's order event definitions that are missing (their
    backfill is the caller's to queue or run); returns the definitions created.

    A product group that does not exist makes no error: the event simply has
    no occurrences until such orders arrive.
    """
    created = []
    for code, name, condition in DEMO_DEFINITIONS:
        if EventType.select().where(EventType.code_ci == fold(code)).exists():
            continue
        created.append(create_definition(name, code, condition, user=user))
    return created
