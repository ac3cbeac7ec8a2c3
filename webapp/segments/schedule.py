"""The schedule: dynamic segments due for a run, and runs abandoned by dead workers."""

import datetime

from .. import settings
from ..i18n import _
from ..models import Segment, SegmentRun, utcnow
from ..queue import forget
from .runs import enqueue, fail, heartbeat_alive, job_id, request_run


def schedule_due(now=None):
    now = now or utcnow()
    busy = {
        s for (s,) in SegmentRun.select(SegmentRun.segment).where(SegmentRun.status.in_(("queued", "running"))).tuples()
    }
    runs = []
    for segment in list(Segment.evaluated()):
        if segment.id in busy:
            continue
        interval = datetime.timedelta(minutes=segment.interval_minutes or settings.SEGMENT_INTERVAL_MINUTES)
        if segment.computed_at is None or segment.computed_at + interval <= now:
            runs.append(request_run(segment, trigger="schedule"))
    return runs


def reap_abandoned():
    """Fail runs whose worker died (no heartbeat) and queue a retry; re-queue
    queued runs whose job was lost. Returns the ids of the failed runs."""
    reaped = []
    grace = datetime.timedelta(seconds=settings.RUN_HEARTBEAT_SECONDS * 3)
    for run in list(SegmentRun.select().where(SegmentRun.status == "running")):
        if run.started_at and utcnow() - run.started_at < grace:
            continue
        if heartbeat_alive(run.id):
            continue
        # Its RQ job would otherwise stay "started" forever and block new jobs with the same id.
        forget(job_id(run.segment_id))
        # Retried at once: the data was fine, the worker was not.
        fail(
            run.id,
            _("The worker stopped during the run (killed or crashed); the previous members are kept."),
            retry=True,
            delay=False,
        )
        reaped.append(run.id)
    for run in list(SegmentRun.select().where(SegmentRun.status == "queued")):
        if utcnow() - run.created_at > datetime.timedelta(minutes=1):
            enqueue(run.segment_id)
    return reaped
