"""In-app notifications of a user: the latest, the unread count, marking read. Flask-free.

Notification rows are written where something happens (a run someone started
has finished or failed, a trigger step notifies a user).
"""

import peewee as pw

from ..models import Notification, OutboxEmail, utcnow


def mine(user_id):
    """The notifications of a user, newest first (a query)."""
    return Notification.select().where(Notification.user == user_id).order_by(Notification.id.desc())


def latest_id(user_id):
    """The id of the user's newest notification (0: none yet)."""
    return Notification.select(pw.fn.MAX(Notification.id)).where(Notification.user == user_id).scalar() or 0


def unread_count(user_id):
    return Notification.select().where(Notification.user == user_id, Notification.read_at.is_null()).count()


def newest(user_id, limit):
    """The user's `limit` newest notifications, newest first."""
    return list(mine(user_id).limit(limit))


def unread_since(user_id, seen_id, limit):
    """Unread notifications newer than `seen_id`: the `limit` newest, oldest first (as toasts appear)."""
    return list(mine(user_id).where(Notification.id > seen_id, Notification.read_at.is_null()).limit(limit))[::-1]


def open_notification(user_id, notification_id):
    """The user's notification, marked read (None: not theirs or no such one)."""
    row = mine(user_id).where(Notification.id == notification_id).first()
    if row is not None and row.read_at is None:
        row.read_at = utcnow()
        row.save()
    return row


def mark_read(user_id, notification_id=None):
    """Mark one of the user's notifications read, or all of them without `notification_id`."""
    query = Notification.update(read_at=utcnow()).where(Notification.user == user_id, Notification.read_at.is_null())
    if notification_id is not None:
        query = query.where(Notification.id == notification_id)
    query.execute()


def outbox():
    """The emails the app sent or would have sent, newest first."""
    return OutboxEmail.select().order_by(OutboxEmail.id.desc())
