"""Activation jobs in the RQ worker (queued by `queueing`).

- `start_mailing_job(mailing_id)`: materialise a campaign's recipients.
- `send_mailing_job(mailing_id, slot)`: one of MAILING_SENDERS senders; it
  sends for a slice of time, then queues its continuation, so the periodic
  and real-time jobs get a worker between slices.
- `tick_job()` (periodic, every TRIGGER_POLL_SECONDS): due scheduled
  campaigns start; campaigns and trigger mailings with work and no live
  sender get one; new segment entries/exits become trigger executions; due
  steps run; due webhook calls are made.

Every job takes ids and is idempotent. A start job or a sender holds the
lease its queueing took (`queueing`) while it runs, so the dispatcher queues
another only once it has ended or its worker died.
"""

from .. import settings
from ..db import database, init_from_settings
from ..i18n import language
from ..models import Mailing, User
from ..queue import Lease, Single, connection
from .queueing import ensure_sender, ensure_senders, ensure_start, sender_key, start_key

SENDER_SLICE_SECONDS = 20
# The global control group's system segment is brought up to date, and
# contact_log rows no cap counts any more are deleted, this often.
GLOBAL_SYNC_KEY = "segmento:global-control-sync"
GLOBAL_SYNC_SECONDS = 3600


def error_key(mailing_id):
    return f"segmento:mailing-error:{mailing_id}"


def last_error(mailing_id):
    """The last delivery problem a sender met (shown on the report), if recent."""
    try:
        value = connection().get(error_key(mailing_id))
    except Exception:  # noqa: BLE001 - no queue server: no message
        return None
    return value.decode("utf-8", "replace") if value else None


# --- the jobs --------------------------------------------------------------------


def start_mailing_job(mailing_id):
    from . import mailings

    init_from_settings()
    with Lease(start_key(mailing_id), settings.MAILING_LEASE_SECONDS), database.connection_context():
        mailings.materialise(mailing_id)
        sending = (
            mailings.Mailing.select()
            .where(mailings.Mailing.id == mailing_id, mailings.Mailing.status == "sending")
            .exists()
        )
        if sending and not mailings.finish_if_done(mailing_id):
            ensure_senders(mailing_id)


def send_mailing_job(mailing_id, slot=0):
    from . import mailings
    from .links import default_links

    init_from_settings()
    redis = connection()

    def progress(error=None):
        if error:
            redis.set(error_key(mailing_id), error[:500], ex=600)

    with Lease(sender_key(mailing_id, slot), settings.MAILING_LEASE_SECONDS), database.connection_context():
        # The failures' reasons it records (a deleted customer, a template problem) are read on the
        # mailing's page: in the language of who made the mailing, as they read the pages.
        creator = User.select().join(Mailing, on=Mailing.created_by == User.id).where(Mailing.id == mailing_id).first()
        with language(creator.reading_language if creator else None):
            outcome = mailings.run_sender(
                mailing_id, links=default_links(), seconds=SENDER_SLICE_SECONDS, on_progress=progress
            )
        if outcome == "done":
            redis.delete(error_key(mailing_id))
    if outcome == "more":
        ensure_sender(mailing_id, slot)
    return outcome


def _single(key):
    """The periodic tick's lock: short, so that a killed worker's lock does
    not hold the triggers up for long."""
    return Single(key, min(30.0, settings.MAILING_LEASE_SECONDS))


def dispatch(now=None):
    """Start due campaigns and make sure every mailing with work has senders."""
    from ..models import Mailing
    from . import mailings

    for mailing_id in mailings.due_scheduled(now):
        ensure_start(mailing_id)
    for (mailing_id,) in (
        Mailing.select(Mailing.id).where(Mailing.kind == "campaign", Mailing.status == "queued").tuples()
    ):
        ensure_start(mailing_id)
    # Higher priority first: their senders are queued, and so run, before the others'.
    ids = [
        m
        for (m,) in Mailing.select(Mailing.id)
        .where(((Mailing.kind == "campaign") & (Mailing.status == "sending")) | (Mailing.kind == "trigger"))
        .order_by(Mailing.priority.desc(), Mailing.id)
        .tuples()
    ]
    for mailing_id in ids:
        if mailings.has_due_work(mailing_id):
            ensure_senders(mailing_id)
        elif not mailings.has_work(mailing_id):
            mailings.finish_if_done(mailing_id)


def run_triggers():
    """Entries/exits to executions, due steps, due webhook calls."""
    from . import triggers

    triggers.consume()
    for mailing_id in triggers.run_due():
        ensure_senders(mailing_id)
    triggers.call_webhooks()


def tick_job():
    """The periodic job (every TRIGGER_POLL_SECONDS): mailings, then triggers.

    One job rather than two: every periodic job costs the worker a fork.
    """
    init_from_settings()
    with _single("segmento:lock:activation-tick") as lock:
        if lock.held:
            with database.connection_context():
                dispatch()
                run_triggers()
                if connection().set(GLOBAL_SYNC_KEY, 1, nx=True, ex=GLOBAL_SYNC_SECONDS):
                    from . import limits

                    limits.sync_global_control()
                    limits.prune_contact_log()
