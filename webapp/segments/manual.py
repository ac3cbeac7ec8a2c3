"""Static segments people shape by hand: add or remove one customer, a snapshot
of a dynamic segment's members, and the definition a stored-member segment
carries. Every entry and exit made here is logged as manual, with who made it.

Flask-free: the segment page, the customer card and the list import call it.
"""

from ..db import database
from ..i18n import _
from ..models import Customer, Segment, SegmentChange, SegmentMember, utcnow
from ..sql import bind, hold_segment, lock_membership, param, q
from . import changes, figures
from .service import SegmentError, free_code, membership_definition


def self_definition(code):
    """The definition of a segment whose members are stored (a list, a snapshot):
    a segment block naming itself, so evaluating it gives exactly its members."""
    return membership_definition(code)


def _check_static(segment):
    if segment.type != "static":
        raise SegmentError(
            {"segment": [_("Only static segments are changed by hand; “%(name)s” is dynamic.", name=segment.name)]},
            status=409,
        )


def _after_change(segment, customer_ids):
    size = SegmentMember.select().where(SegmentMember.segment == segment.id).count()
    Segment.update(size=size, updated_at=utcnow()).where(Segment.id == segment.id).execute()
    segment.size = size
    changes.mark_changed(customer_ids)  # segments that read this one re-check them
    figures.forget(segment.id)


def _hold(segment):
    # what the foreign key did per row, once: a delete of the segment waits for this transaction
    if not hold_segment(segment.id):
        raise SegmentError({"segment": [_("No such resource.")]}, status=404)


def add_customer(segment, customer_id, user=None):
    """Put one customer into a static segment by hand; False when already a member."""
    _check_static(segment)
    now = utcnow()
    with database.atomic():
        lock_membership()  # before the customer is read (no foreign keys on PostgreSQL)
        _hold(segment)
        if not Customer.select().where(Customer.id == customer_id).exists():
            raise SegmentError({"customer": [_("No such customer.")]}, status=404)
        if (
            SegmentMember.select()
            .where(SegmentMember.segment == segment.id, SegmentMember.customer == customer_id)
            .exists()
        ):
            return False
        SegmentMember.create(segment=segment.id, customer=customer_id, since=now)
        SegmentChange.create(segment=segment.id, customer=customer_id, change="entered", at=now, manual=True, user=user)
        _after_change(segment, [customer_id])
    return True


def remove_customer(segment, customer_id, user=None):
    """Take one customer out of a static segment by hand; False when not a member."""
    _check_static(segment)
    now = utcnow()
    with database.atomic():
        _hold(segment)
        removed = (
            SegmentMember.delete()
            .where(SegmentMember.segment == segment.id, SegmentMember.customer == customer_id)
            .execute()
        )
        if not removed:
            return False
        SegmentChange.create(segment=segment.id, customer=customer_id, change="exited", at=now, manual=True, user=user)
        _after_change(segment, [customer_id])
    return True


def find_customer(text):
    """The customer with this external id, else the one with this email (folded); None when none or several."""
    text = (text or "").strip()
    if not text:
        return None
    found = Customer.get_or_none(Customer.external_id == text)
    if found is None:
        from ..text import fold

        by_email = list(Customer.select().where(Customer.email_ci == fold(text)).limit(2))
        found = by_email[0] if len(by_email) == 1 else None
    return found


def log_entries(segment_id, customer_ids_sql, args, at, user_id):
    """Log an entry, made by hand by `user_id`, for each customer id the SELECT
    `customer_ids_sql` (with `args`) returns."""
    p = param()
    database.execute_sql(
        f"INSERT INTO segment_change (segment_id, customer_id, change, {q('at')}, manual, user_id) "
        f"SELECT {p}, x.customer_id, 'entered', {p}, {p}, {p} FROM ({customer_ids_sql}) AS x",
        [segment_id, bind(at), True, user_id, *args],
    )


def snapshot(segment, name=None, user=None):
    """A new static segment holding `segment`'s current members (each logged as a
    manual entry); its definition names itself, so it never changes by itself."""
    if segment.computed_at is None:
        raise SegmentError(
            {"segment": [_("The segment has not been computed yet: there is nothing to copy.")]}, status=409
        )
    now = utcnow()
    name = (name or "").strip() or _("%(name)s on %(date)s", name=segment.name, date=now.strftime("%Y-%m-%d %H:%M"))
    code = free_code(f"{segment.code[:50]}_snapshot")
    p = param()
    with database.atomic():
        copy = Segment.create(
            code=code,
            name=name[:200],
            type="static",
            active=True,
            definition=self_definition(code),
            source="list",
            created_by=user,
            computed_at=now,
        )
        database.execute_sql(
            f"INSERT INTO segment_member (segment_id, customer_id, since) SELECT {p}, customer_id, {p} "
            f"FROM segment_member WHERE segment_id = {p}",
            [copy.id, bind(now), segment.id],
        )
        log_entries(
            copy.id,
            f"SELECT customer_id FROM segment_member WHERE segment_id = {p}",
            [copy.id],
            now,
            user.id if user else None,
        )
        copy.size = SegmentMember.select().where(SegmentMember.segment == copy.id).count()
        copy.save()
    return copy
