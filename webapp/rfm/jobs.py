"""The RFM job in the RQ worker, queueing it, and the nightly refresh.

One job per run, id `rfm-<run id>`; one run queued or running at a time
(`request_run` returns the one under way). Progress goes to `job.meta` (step
of STEPS and its label): on PostgreSQL the computation is one transaction,
so nothing written to the run row would show before the end.
"""

import datetime

from .. import queue
from ..db import database, init_from_settings
from ..models import RfmRun, utcnow
from . import service as rfm

QUEUE = "default"
JOB_TIMEOUT = 3600


def job_id(run_id):
    return queue.job_id("rfm", run_id)


def compute_job(run_id):
    """RQ job: compute RFM run `run_id` and refresh the class segments."""
    init_from_settings()

    def progress(step, label):
        queue.report_progress(step=step, steps=rfm.STEPS, label=label)

    with database.connection_context():
        run = rfm.execute_run(run_id, on_progress=progress)
        return run.id if run else None


def nightly_job():
    """RQ cron job (RFM_NIGHTLY_CRON): recompute with the current settings.

    Every worker's cron scheduler queues it at the same minute: the first to
    take the lock computes, the others return.
    """
    init_from_settings()
    with queue.Single("segmento:lock:rfm-nightly", 60) as lock:
        if not lock.held:
            return None
        with database.connection_context():
            run = rfm.active_run()
            if run is not None and not worker_lost(run):
                return None  # one is under way; it refreshes the classes too
            run = rfm.create_run(trigger="nightly")
            return rfm.execute_run(run.id).id


def request_run(*, user=None, tz=None):
    """Queue a computation with the current settings; returns its run.

    A run already queued or running is returned instead, unless its job is
    gone (the worker died): that one is marked failed and a new one queued.
    """
    run = rfm.active_run()
    if run is not None:
        if not worker_lost(run):
            return run
        (
            RfmRun.update(
                status="failed",
                finished_at=utcnow(),
                error="The worker stopped during the computation (killed or restarted).",
            )
            .where(RfmRun.id == run.id)
            .execute()
        )
    run = rfm.create_run(trigger="user", user=user, tz=tz)
    queue.enqueue_once(
        compute_job,
        run.id,
        job_id=job_id(run.id),
        queue_name=QUEUE,
        job_timeout=JOB_TIMEOUT,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description=f"RFM #{run.id}",
    )
    return run


def progress(run):
    """(step, steps, label) of a running run, from its job; None when unknown."""
    if run.status != "running":
        return None
    meta = queue.job_meta(job_id(run.id)) or {}
    if not meta.get("step"):
        return None
    return meta["step"], meta.get("steps") or rfm.STEPS, meta.get("label") or ""


def worker_lost(run, now=None):
    """True when the run says queued or running but its job has ended or is
    gone (the worker was killed): the page then offers to compute again."""
    if run.status not in ("queued", "running"):
        return False
    if run.trigger != "user":
        # nightly and demo runs run inside their caller, with no job of their own
        now = now or utcnow()
        return now - (run.started_at or run.created_at) > datetime.timedelta(seconds=JOB_TIMEOUT)
    return queue.worker_lost(job_id(run.id), since=run.created_at, now=now)
