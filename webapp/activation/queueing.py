"""Queueing a mailing's jobs, once each: its start job and its MAILING_SENDERS senders.

Liveness of a start job or a sender slot is a lease key in Redis
(`queue.enqueue_once(lease_key=...)`): taken when the job is queued, held by
the job while it runs (`Lease`), released when it ends; a killed worker's key
expires after MAILING_LEASE_SECONDS and the dispatcher queues the job again.
An extra job is harmless: senders share the work through database claims.

The jobs are queued by their dotted names, so this module imports no job
module and `mailings` can queue a campaign's start.
"""

from .. import settings
from ..queue import enqueue_once, job_id

QUEUE = "default"
START_JOB = "webapp.activation.jobs.start_mailing_job"
SENDER_JOB = "webapp.activation.jobs.send_mailing_job"
QUEUED_TTL = 600  # seconds a queued job's key lives before the dispatcher queues another
JOB_OPTIONS = dict(queue_name=QUEUE, lease_seconds=QUEUED_TTL, job_timeout=3600, result_ttl=60, failure_ttl=7 * 86400)


def start_key(mailing_id):
    return f"segmento:mailing-start:{mailing_id}"


def sender_key(mailing_id, slot):
    return f"segmento:mailing-sender:{mailing_id}:{slot}"


def ensure_start(mailing_id):
    """Queue the mailing's start job unless one is queued or running; True if queued."""
    return (
        enqueue_once(
            START_JOB,
            mailing_id,
            job_id=job_id("mailing-start", mailing_id),
            lease_key=start_key(mailing_id),
            **JOB_OPTIONS,
        )
        is not None
    )


def ensure_sender(mailing_id, slot):
    """Queue the sender of `slot` unless one is queued or running; True if queued."""
    return (
        enqueue_once(
            SENDER_JOB,
            mailing_id,
            slot,
            job_id=job_id("mailing", mailing_id, slot),
            lease_key=sender_key(mailing_id, slot),
            **JOB_OPTIONS,
        )
        is not None
    )


def ensure_senders(mailing_id):
    """Queue the mailing's missing senders; returns how many were queued."""
    return sum(ensure_sender(mailing_id, slot) for slot in range(max(1, settings.MAILING_SENDERS)))
