"""The audit log: one table (`audit_event`), written by the services, read by
the admin's page.

Each service function that changes something calls, in one line,
`audit.record(actor, action, obj, details)`. The actor is a User (or its id), an
email (a failed sign-in: no user is known), or None: whoever acts in this request
(the login wall and the API's token check say who, with `acting`), else the
system (a job, the CLI). Actions are `<object>.<verb>` names (`action_labels`).
"""

import contextvars
import datetime
import json

from ..i18n import _
from ..localtime import day_start
from ..models import AuditEvent, User, utcnow
from ..pagination import page_of

# (user, client address) of the request being served; None outside requests.
_acting = contextvars.ContextVar("segmento_audit_actor", default=None)

OBJECT_TYPES = ("app_user", "segment", "mailing", "trigger", "custom_field", "rfm_settings")
LABEL_MAX = 200


def action_labels():
    """Every action, with what it reads as on the page (in the user's language)."""
    return {
        "auth.login": _("Signed in"),
        "auth.login_failed": _("Sign-in failed"),
        "auth.throttled": _("Sign-in refused: too many attempts"),
        "auth.logout": _("Signed out"),
        "auth.password_change": _("Changed their password"),
        "auth.reset_request": _("Asked for a password reset"),
        "auth.reset_throttled": _("Password reset not sent: too many requests"),
        "auth.password_reset": _("Reset their password"),
        "user.create": _("Created a user"),
        "user.invite": _("Invited a user"),
        "user.join": _("Accepted an invitation"),
        "user.role": _("Changed a role"),
        "user.deactivate": _("Deactivated a user"),
        "user.reactivate": _("Reactivated a user"),
        "segment.create": _("Created a segment"),
        "segment.update": _("Changed a segment"),
        "segment.delete": _("Deleted a segment"),
        "mailing.create": _("Created a mailing"),
        "mailing.update": _("Changed a mailing"),
        "mailing.send": _("Started sending a mailing"),
        "mailing.schedule": _("Scheduled a mailing"),
        "mailing.unschedule": _("Unscheduled a mailing"),
        "mailing.cancel": _("Cancelled a mailing"),
        "trigger.create": _("Created a trigger"),
        "trigger.update": _("Changed a trigger"),
        "trigger.delete": _("Deleted a trigger"),
        "field.create": _("Created a custom field"),
        "field.update": _("Changed a custom field"),
        "field.delete": _("Deleted a custom field"),
        "settings.rfm": _("Changed the RFM settings"),
        "settings.limits": _("Changed the campaign limits"),
    }


def object_type_labels():
    return {
        "app_user": _("User"),
        "segment": _("Segment"),
        "mailing": _("Mailing"),
        "trigger": _("Trigger"),
        "custom_field": _("Custom field"),
        "rfm_settings": _("Settings"),
    }


def acting(user, address=""):
    """Say who acts in the current request (None: nobody signed in)."""
    _acting.set((user, address or ""))


def _label(obj):
    for name in ("email", "name", "code"):
        value = getattr(obj, name, None)
        if value:
            return str(value)[:LABEL_MAX]
    return ""


def record(actor, action, obj=None, details=None):
    """Write one entry of the log and return it (see the module's docstring for `actor`)."""
    current, address = _acting.get() or (None, "")
    if actor is None:
        actor = current
    elif isinstance(actor, int):  # some services are given the user's id
        actor = current if current is not None and current.id == actor else User.get_or_none(User.id == actor)
    user = actor if isinstance(actor, User) else None
    email = user.email if user else (actor or "")
    return AuditEvent.create(
        actor=user,
        actor_email=email[:LABEL_MAX],
        action=action,
        object_type=obj._meta.table_name if obj is not None else "",
        object_id=getattr(obj, "id", None) if obj is not None else None,
        object_label=_label(obj) if obj is not None else "",
        # Values a JSON column cannot hold (dates, decimals) are kept as their text.
        details=json.loads(json.dumps(details or {}, default=str)),
        address=address[:64],
    )


def prune(keep_days, now=None):
    """Delete the entries older than `keep_days` days (AUDIT_KEEP_DAYS; 0 or less: keep
    them all); returns how many. Idempotent: a periodic job calls it."""
    if keep_days <= 0:
        return 0
    cutoff = (now or utcnow()) - datetime.timedelta(days=keep_days)
    return AuditEvent.delete().where(AuditEvent.created_at < cutoff).execute()


class Filters:
    """What the log page filters by; every value already checked (bad input is ignored, never an error)."""

    def __init__(self, user_id=None, action="", object_type="", obj="", date_from=None, date_to=None):
        self.user_id = user_id
        self.action = action if action in action_labels() else ""
        self.object_type = object_type if object_type in OBJECT_TYPES else ""
        self.obj = (obj or "").strip()[:LABEL_MAX]
        self.date_from = date_from
        self.date_to = date_to


def search(filters, page, per_page, tz):
    """A Page of log entries matching `filters`, newest first; dates are local days in `tz`."""
    query = AuditEvent.select().order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    if filters.user_id:
        query = query.where(AuditEvent.actor == filters.user_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.object_type:
        query = query.where(AuditEvent.object_type == filters.object_type)
    if filters.obj:
        if filters.obj.isdigit():
            query = query.where(AuditEvent.object_id == int(filters.obj))
        else:
            query = query.where(AuditEvent.object_label ** f"%{filters.obj}%")
    if filters.date_from:
        query = query.where(AuditEvent.created_at >= day_start(filters.date_from, tz))
    if filters.date_to:
        query = query.where(AuditEvent.created_at < day_start(filters.date_to + datetime.timedelta(days=1), tz))
    return page_of(query, page, per_page)


def actors():
    """The users the log can be filtered by."""
    return list(User.select().order_by(User.email_ci))
