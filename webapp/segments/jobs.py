"""RQ jobs of the segments domain: full runs and the schedule (the real-time re-check's job,
which records order events first, is `webapp.cron.recheck_changed_job`).

Jobs take ids, re-load rows inside the job and are idempotent.
"""

from ..db import database, init_from_settings
from ..models import SegmentRun
from .runs import QUEUE, execute_run
from .schedule import reap_abandoned, schedule_due

REALTIME_QUEUE = "realtime"
__all__ = ["QUEUE", "REALTIME_QUEUE", "compute_segment_job", "schedule_due_job"]


def compute_segment_job(segment_id):
    """RQ job: run every queued run of the segment, oldest first. Idempotent."""
    init_from_settings()
    with database.connection_context():
        while True:
            run = (
                SegmentRun.select()
                .where(SegmentRun.segment == segment_id, SegmentRun.status == "queued")
                .order_by(SegmentRun.id)
                .first()
            )
            if run is None:
                return
            if not execute_run(run.id):
                return  # the guard is held by another run: the reaper sorts it out


def schedule_due_job():
    """RQ cron job: queue runs of dynamic segments whose interval has passed,
    and fail and re-queue runs abandoned by dead workers."""
    init_from_settings()
    with database.connection_context():
        reap_abandoned()
        return [run.id for run in schedule_due()]
