"""Real-time re-checks: customers whose data changed, against every dynamic segment.

Writers mark changed customers (`changes.mark_changed`); every few seconds
`recheck_changed()` re-checks them against every active dynamic segment, in
dependency order, with the same diff as a full run restricted to those
customers.
"""

import json

import peewee as pw

from .. import settings
from ..db import database, is_postgres
from ..engine import DefinitionError, catalogue, customer_query, dependency_order, parse_definition, today_at
from ..models import CustomField, Segment, SegmentChange, SegmentMember, SegmentSize, utcnow
from ..sql import hold_segment, key_type, lock_membership, temporary_table
from . import changes

REALTIME_BATCH = 500


def _log_batch_changes(segment_id, entered, exited, at, quiet=frozenset()):
    """Write a real-time batch's entries and exits for one segment: the log,
    membership, size and a size point. Inside the caller's transaction.
    Changes of the `quiet` customers are logged as quiet (no trigger fires)."""
    SegmentChange.insert_many(
        [
            (segment_id, i, change, at, True if i in quiet else None)
            for change, ids in (("entered", entered), ("exited", exited))
            for i in ids
        ],
        fields=[
            SegmentChange.segment,
            SegmentChange.customer,
            SegmentChange.change,
            SegmentChange.at,
            SegmentChange.quiet,
        ],
    ).execute()
    if exited:
        (
            SegmentMember.delete()
            .where(SegmentMember.segment == segment_id, SegmentMember.customer.in_(exited))
            .execute()
        )
    if entered:
        SegmentMember.insert_many(
            [(segment_id, i, at) for i in entered],
            fields=[SegmentMember.segment, SegmentMember.customer, SegmentMember.since],
        ).execute()
    (
        Segment.update(size=pw.fn.COALESCE(Segment.size, 0) + len(entered) - len(exited))
        .where(Segment.id == segment_id)
        .execute()
    )
    size = Segment.select(Segment.size).where(Segment.id == segment_id).scalar()
    SegmentSize.create(segment=segment_id, at=at, size=size)


def dynamic_segments_in_order():
    """Active dynamic segments, each after the segments it reads."""
    segments = list(Segment.evaluated().order_by(Segment.id))
    return dependency_order(segments)


# The batch being re-checked, in a temporary table: each segment's scoped query
# reads its ids from there, so the query's SQL text does not depend on the
# batch and is compiled once per segment, definition, day and custom fields.
_SCOPE = pw.Table("rt_scope", ("customer_id",))
_compiled = {}
_COMPILED_MAX = 2000


def _custom_fields_version():
    """What of the custom fields a compiled query depends on (one small query)."""
    return repr(
        list(
            CustomField.select(
                CustomField.id, CustomField.entity, CustomField.code, CustomField.type, CustomField.options
            )
            .order_by(CustomField.id)
            .tuples()
        )
    )


def _scoped_sql(segment, at, today, fields, load_catalogue):
    """(sql, params) of the segment's members among the batch in `rt_scope`;
    None when its definition is invalid (the scheduled run reports that)."""
    key = (segment.id, json.dumps(segment.definition, sort_keys=True), today, settings.tz(), is_postgres(), fields)
    if key not in _compiled:
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        try:
            definition = parse_definition(segment.definition, catalogue=load_catalogue())
            _compiled[key] = customer_query(
                definition, at=at, tz=settings.tz(), scope=_SCOPE.select(_SCOPE.customer_id)
            ).sql()
        except DefinitionError:
            _compiled[key] = None
    return _compiled[key]


def recheck_customers(customer_ids, *, at=None, quiet=frozenset()):
    """Re-check these customers against every active dynamic segment now.

    One transaction for the batch: the ids go to a temporary table, current
    memberships are read in one query, each segment runs one query restricted
    to the batch (in dependency order, so a segment reading another sees its
    new members), and only differences are written. Returns the number of
    (entered, exited) changes logged, and whether every segment could be
    checked (a segment held by a full run is skipped: the caller keeps the
    marks and tries again). Changes of the `quiet` customers fire no trigger.
    """
    at = at or utcnow()
    ids = sorted(set(customer_ids))
    if not ids:
        return 0, 0, True
    today = today_at(at, settings.tz())
    fields = _custom_fields_version()
    loaded = []

    def load_catalogue():
        if not loaded:
            loaded.append(catalogue())
        return loaded[0]

    total_entered = total_exited = 0
    complete = True
    # keep: this runs every few seconds, and a table made anew each time would
    # have SQLite prepare every segment's cached query again.
    with database.atomic(), temporary_table("rt_scope", f"customer_id {key_type()} PRIMARY KEY", keep=True):
        lock_membership()  # before the segments' queries read the customers
        for start in range(0, len(ids), 500):
            _SCOPE.insert([(i,) for i in ids[start : start + 500]], columns=[_SCOPE.customer_id]).execute(database)
        current = {}
        for segment_id, customer_id in (
            SegmentMember.select(SegmentMember.segment, SegmentMember.customer)
            .where(SegmentMember.customer.in_(_SCOPE.select(_SCOPE.customer_id)))
            .tuples()
        ):
            current.setdefault(segment_id, set()).add(customer_id)
        for segment in dynamic_segments_in_order():
            if segment.lock_run_id is not None:
                complete = False
                continue
            compiled = _scoped_sql(segment, at, today, fields, load_catalogue)
            if compiled is None:
                continue
            matched = {row[0] for row in database.execute_sql(*compiled)}
            have = current.get(segment.id, set())
            entered, exited = sorted(matched - have), sorted(have - matched)
            if not (entered or exited):
                continue
            if not hold_segment(segment.id):  # deleted since it was listed
                continue
            _log_batch_changes(segment.id, entered, exited, at, quiet)
            total_entered += len(entered)
            total_exited += len(exited)
    return total_entered, total_exited, complete


def recheck_changed(limit=REALTIME_BATCH, *, before=None):
    """Re-check the customers marked as changed, in batches, until none is left
    (or a full run holds a segment); returns how many marks were handled.

    `before(customer_ids, tz=...)` runs first for each batch: the worker's job
    (`webapp.cron.recheck_changed_job`) records the customers' order events
    there, since segments read them; this package does not import events.
    """
    with database.connection_context():
        handled = 0
        while True:
            marks = changes.pending(limit)
            if not marks:
                return handled
            ids = [customer_id for customer_id, _ in marks]
            if before is not None:
                before(ids, tz=settings.tz())
            _, _, complete = recheck_customers(ids, quiet=changes.quiet_among(ids))
            if not complete:
                return handled  # a full run holds a segment: try again next tick
            changes.clear(marks)
            handled += len(marks)
