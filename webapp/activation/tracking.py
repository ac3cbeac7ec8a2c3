"""Engagement: opens, clicks and unsubscribes from the signed links.

Each records a message event with its mailing, exactly like an imported one,
so segment conditions on messages ("last email open at least 30 days ago",
"last click in the last 2 weeks") see them; the customer is marked changed
(webapp.changes) so segments follow in real time. A reloaded pixel within a
minute is not a new open; a click also counts as an open when the images
were blocked. Unsubscribing clears the channel's consent.
"""

import datetime

from ..db import database
from ..models import Customer, Mailing, MessageEvent, utcnow
from ..segments import changes

REOPEN_SECONDS = 60


def _known(mailing_id, customer_id):
    """The mailing's channel if both still exist; None for test links (0, 0) or deleted rows."""
    if not mailing_id or not customer_id:
        return None
    channel = Mailing.select(Mailing.channel).where(Mailing.id == mailing_id).scalar()
    if channel is None or not Customer.select().where(Customer.id == customer_id).exists():
        return None
    return channel


def _event(customer_id, channel, kind, mailing_id, now):
    MessageEvent.create(customer=customer_id, channel=channel, kind=kind, mailing=mailing_id, occurred_at=now)


def _has(customer_id, mailing_id, kind, since=None):
    query = MessageEvent.select().where(
        MessageEvent.customer == customer_id, MessageEvent.mailing == mailing_id, MessageEvent.kind == kind
    )
    if since is not None:
        query = query.where(MessageEvent.occurred_at >= since)
    return query.exists()


def record_open(mailing_id, customer_id, now=None):
    """Returns whether an `opened` event was recorded."""
    channel = _known(mailing_id, customer_id)
    if channel is None:
        return False
    now = now or utcnow()
    with database.atomic():
        if _has(customer_id, mailing_id, "opened", since=now - datetime.timedelta(seconds=REOPEN_SECONDS)):
            return False
        _event(customer_id, channel, "opened", mailing_id, now)
        changes.mark_changed([customer_id], at=now)
    return True


def record_click(mailing_id, customer_id, now=None):
    """Record a `clicked` event (and `opened`, if none was seen). Returns whether recorded."""
    channel = _known(mailing_id, customer_id)
    if channel is None:
        return False
    now = now or utcnow()
    with database.atomic():
        if channel == "email" and not _has(customer_id, mailing_id, "opened"):
            _event(customer_id, channel, "opened", mailing_id, now)
        _event(customer_id, channel, "clicked", mailing_id, now)
        changes.mark_changed([customer_id], at=now)
    return True


def unsubscribe(mailing_id, customer_id, channel, now=None):
    """Clear the consent for `channel`; returns True if it was given before."""
    if not customer_id or channel not in ("email", "sms"):
        return False
    now = now or utcnow()
    column = Customer.email_consent if channel == "email" else Customer.sms_consent
    with database.atomic():
        changed = (
            Customer.update({column: False, Customer.updated_at: now})
            .where(Customer.id == customer_id, column == True)
            .execute()
        )  # noqa: E712
        if changed:
            mailing = mailing_id if mailing_id and Mailing.select().where(Mailing.id == mailing_id).exists() else None
            _event(customer_id, channel, "unsubscribed", mailing, now)
            changes.mark_changed([customer_id], at=now)
    return bool(changed)


def customer_language(customer_id):
    """The language the customer reads (their `language` field), None when unknown: the account's then."""
    customer = Customer.get_or_none(Customer.id == customer_id) if customer_id else None
    return customer.language if customer is not None else None


def masked_address(customer_id, channel):
    """The address a link was for, partly hidden: a.....@example.com, +7******12."""
    customer = Customer.get_or_none(Customer.id == customer_id) if customer_id else None
    if customer is None:
        return ""
    if channel == "email":
        local, _, domain = (customer.email or "").partition("@")
        return f"{local[:1]}{'•' * max(len(local) - 1, 1)}@{domain}" if domain else ""
    phone = customer.phone or ""
    return f"{phone[:2]}{'•' * max(len(phone) - 4, 1)}{phone[-2:]}" if len(phone) > 4 else ""
