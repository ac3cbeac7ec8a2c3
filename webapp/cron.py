"""The periodic schedule the worker's cron scheduler reads (`worker.py`).

This is the one module that imports every domain's jobs; no job imports it
(the worker's database set-up is `db.init_from_settings()`).
"""

from . import settings
from .db import init_from_settings
from .events.service import record_for_customers
from .queue import Single
from .segments.realtime import REALTIME_BATCH, recheck_changed


def recheck_changed_job(limit=REALTIME_BATCH):
    """RQ job (every few seconds): re-check the customers marked as changed,
    their order events recorded first (segments read them)."""
    init_from_settings()
    # Every worker's cron scheduler queues this job: one at a time is enough
    # (two would re-check the same marks and one would fail on the other's rows).
    with Single("segmento:lock:realtime-recheck", 30) as lock:
        if not lock.held:
            return 0
        return recheck_changed(limit, before=record_for_customers)


def periodic():
    """(function, interval in seconds or a cron string, queue) triples run by
    the cron scheduler."""
    from .activation.jobs import tick_job
    from .analytics.jobs import nightly_job as analytics_nightly_job
    from .exports.jobs import expire_job as expire_exports_job
    from .predictions.jobs import nightly_job as predictions_nightly_job
    from .rfm.jobs import nightly_job as rfm_nightly_job
    from .segments.jobs import REALTIME_QUEUE, schedule_due_job
    from .segments.runs import QUEUE

    return [
        (recheck_changed_job, settings.REALTIME_INTERVAL_SECONDS, REALTIME_QUEUE),
        (schedule_due_job, 30, QUEUE),
        (tick_job, settings.TRIGGER_POLL_SECONDS, QUEUE),
        (rfm_nightly_job, settings.RFM_NIGHTLY_CRON, QUEUE),
        (expire_exports_job, 3600, QUEUE),
        (analytics_nightly_job, settings.ANALYTICS_NIGHTLY_CRON, QUEUE),
        (predictions_nightly_job, settings.PREDICTIONS_NIGHTLY_CRON, QUEUE),
    ]
