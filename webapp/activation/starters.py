"""Ready-made triggers a marketer starts from (issue 20): the reactivation chain of
the OkoCRM/Unisender example. Sleeping subscribers (email consent, no email opened
in 30 days) get three letters a few days apart, the last one offering to
unsubscribe; whoever opens one wakes up, leaves the segment and so the chain
(every step runs only for customers still in it); for those still silent the
email consent is cleared at the end.

Flask-free: the triggers page calls it; the marketer reviews the steps before saving.
"""

from redis.exceptions import RedisError

from ..i18n import _
from ..models import Segment
from ..segments.builder import shortcut_block
from ..segments.service import create_segment

SLEEPING_CODE = "sleeping_subscribers"
SLEEPING_DAYS = 30


def sleeping_definition(days=SLEEPING_DAYS):
    """Customers who may be emailed but opened no email in the last `days` days."""
    consent = {
        "entity": "customer",
        "match": "all",
        "filters": [
            {"field": "email_consent", "op": "is", "value": True},
            {"field": "email", "op": "is_not_empty"},
        ],
    }
    return {"version": 1, "match": "all", "blocks": [consent, shortcut_block("no_open", days)]}


def sleeping_segment(user=None):
    """The sleeping subscribers' segment: the one with its code if it exists, else a new
    dynamic one (queued for its first computation)."""
    segment = Segment.get_or_none(Segment.code == SLEEPING_CODE)
    if segment is not None:
        return segment
    data = {
        "code": SLEEPING_CODE,
        "name": _("Sleeping subscribers (no email opened in %(n)s days)", n=SLEEPING_DAYS),
        "type": "dynamic",
        "active": True,
        "definition": sleeping_definition(),
    }
    try:
        return create_segment(data, user=user)
    except (RedisError, RuntimeError):
        # saved, its run recorded as queued: the scheduler queues it once the worker is back
        return Segment.get(Segment.code == SLEEPING_CODE)


def reactivation_steps():
    """The chain's steps as the trigger editor takes them (days after the start)."""

    def email(days, subject, body):
        return {
            "action": "email",
            "delay_value": days,
            "delay_unit": "days",
            "only_members": True,
            "subject": subject,
            "body": body,
        }

    return [
        email(
            0,
            _("{{ first_name }}, we have not heard from you for a while"),
            _("<p>Hello {{ name }}!</p><p>Here is what is new with us since your last visit.</p>"),
        ),
        email(
            3,
            _("Something useful for you, {{ first_name }}"),
            _("<p>Hello {{ name }}!</p><p>We picked a few things we think you will like.</p>"),
        ),
        email(
            7,
            _("Should we keep writing to you?"),
            _(
                "<p>Hello {{ name }}!</p><p>You have not opened our letters for a while. If you no longer want "
                'them, <a href="{{ unsubscribe_url }}">unsubscribe here</a>; otherwise just open this letter and '
                "we will keep writing.</p>"
            ),
        ),
        {"action": "unsubscribe", "delay_value": 14, "delay_unit": "days", "only_members": True, "channel": "email"},
    ]
