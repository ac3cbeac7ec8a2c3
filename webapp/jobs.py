"""Background jobs: setup for the worker process and the periodic schedule.

Jobs take ids and primitives, re-load rows inside the job, and are
idempotent: re-running one after a crash does no harm.
"""
from . import settings
from .db import database, init_database


def setup_worker_database():
    """Bind the database in the worker process (and in each job's work-horse)."""
    if database.obj is None:
        init_database(settings.DATABASE_URL)


def periodic():
    """(function, interval in seconds or a cron string, queue) triples run by
    the cron scheduler."""
    from .segments.jobs import REALTIME_QUEUE, recheck_changed_job, schedule_due_job
    from .segments.runs import QUEUE
    from .activation.jobs import tick_job
    from .rfm.jobs import nightly_job as rfm_nightly_job
    from .exports.jobs import expire_job as expire_exports_job
    from .analytics.jobs import nightly_job as analytics_nightly_job
    from .predictions.jobs import nightly_job as predictions_nightly_job
    return [
        (recheck_changed_job, settings.REALTIME_INTERVAL_SECONDS, REALTIME_QUEUE),
        (schedule_due_job, 30, QUEUE),
        (tick_job, settings.TRIGGER_POLL_SECONDS, QUEUE),
        (rfm_nightly_job, settings.RFM_NIGHTLY_CRON, QUEUE),
        (expire_exports_job, 3600, QUEUE),
        (analytics_nightly_job, settings.ANALYTICS_NIGHTLY_CRON, QUEUE),
        (predictions_nightly_job, settings.PREDICTIONS_NIGHTLY_CRON, QUEUE),
    ]
