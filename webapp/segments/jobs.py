"""RQ jobs of the segments domain: full runs, the real-time re-check and the schedule.

Jobs take ids, re-load rows inside the job and are idempotent.
"""
from ..db import database, init_from_settings
from ..models import SegmentRun
from ..queue import Single
from .realtime import REALTIME_BATCH, recheck_changed
from .runs import QUEUE, execute_run
from .schedule import reap_abandoned, schedule_due

REALTIME_QUEUE = "realtime"
__all__ = ["QUEUE", "REALTIME_QUEUE", "compute_segment_job", "recheck_changed_job", "schedule_due_job"]


def compute_segment_job(segment_id):
    """RQ job: run every queued run of the segment, oldest first. Idempotent."""
    init_from_settings()
    with database.connection_context():
        while True:
            run = (SegmentRun.select()
                   .where(SegmentRun.segment == segment_id, SegmentRun.status == "queued")
                   .order_by(SegmentRun.id).first())
            if run is None:
                return
            if not execute_run(run.id):
                return  # the guard is held by another run: the reaper sorts it out


def recheck_changed_job(limit=REALTIME_BATCH):
    """RQ job (every few seconds): re-check the customers marked as changed."""
    init_from_settings()
    # Every worker's cron scheduler queues this job: one at a time is enough
    # (two would re-check the same marks and one would fail on the other's rows).
    with Single("segmento:lock:realtime-recheck", 30) as lock:
        if not lock.held:
            return 0
        return recheck_changed(limit)


def schedule_due_job():
    """RQ cron job: queue runs of dynamic segments whose interval has passed,
    and fail and re-queue runs abandoned by dead workers."""
    init_from_settings()
    with database.connection_context():
        reap_abandoned()
        return [run.id for run in schedule_due()]
