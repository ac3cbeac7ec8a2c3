"""A segment as it was: its size and members at a past moment, read from the
entry/exit log (issue 18). A customer was a member at `at` when their last
logged change up to `at` is an entry.
"""

import datetime

import peewee as pw

from ..localtime import zone
from ..models import Customer, SegmentChange


def parse_moment(text, tz):
    """A local "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM" in the zone `tz` as a naive
    UTC datetime (a date alone: the end of that day); None when empty or not a
    date."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            local = datetime.datetime.combine(datetime.date.fromisoformat(text), datetime.time(23, 59, 59))
        else:
            local = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone(tz))
    return local.astimezone(datetime.UTC).replace(tzinfo=None)


def _last_changes(segment_id, at):
    """Each customer's last logged change of the segment up to `at` (rn = 1)."""
    rank = pw.fn.ROW_NUMBER().over(
        partition_by=[SegmentChange.customer], order_by=[SegmentChange.at.desc(), SegmentChange.id.desc()]
    )
    return (
        SegmentChange.select(SegmentChange.customer.alias("customer_id"), SegmentChange.change, rank.alias("rn"))
        .where((SegmentChange.segment == segment_id) & (SegmentChange.at <= at))
        .alias("last")
    )


def _members_at(segment_id, at):
    last = _last_changes(segment_id, at)
    return pw.Select([last], [last.c.customer_id]).where((last.c.rn == 1) & (last.c.change == "entered"))


def size_on(segment_id, at):
    """How many members the log says the segment had at `at`."""
    members = _members_at(segment_id, at).alias("m")
    return pw.Select([members], [pw.fn.COUNT(pw.SQL("*"))]).bind(SegmentChange._meta.database).scalar()


def members_on(segment_id, at, *, limit, offset=0):
    """The customers who were members at `at`, by id."""
    return list(
        Customer.select()
        .where(Customer.id.in_(_members_at(segment_id, at)))
        .order_by(Customer.id)
        .limit(limit)
        .offset(offset)
    )
