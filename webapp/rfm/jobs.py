"""The RFM job in the RQ worker, queueing it, and the nightly refresh.

One job per run, id `rfm-<run id>`; one run queued or running at a time
(`request_run` returns the one under way). Progress goes to `job.meta` (step
of STEPS and its label): on PostgreSQL the computation is one transaction,
so nothing written to the run row would show before the end.
"""
import datetime

from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from . import service as rfm
from ..db import database
from ..jobs import setup_worker_database
from ..models import RfmRun, utcnow
from ..queue import Single, get_queue

QUEUE = "default"
JOB_TIMEOUT = 3600
ACTIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def job_id(run_id):
    return f"rfm-{run_id}"  # RQ 3 ids allow letters, digits, _ and - only


def compute_job(run_id):
    """RQ job: compute RFM run `run_id` and refresh the class segments."""
    setup_worker_database()
    job = get_current_job()

    def progress(step, label):
        if job is not None:
            job.meta.update({"step": step, "steps": rfm.STEPS, "label": label})
            job.save_meta()

    with database.connection_context():
        run = rfm.execute_run(run_id, on_progress=progress)
        return run.id if run else None


def nightly_job():
    """RQ cron job (RFM_NIGHTLY_CRON): recompute with the current settings.

    Every worker's cron scheduler queues it at the same minute: the first to
    take the lock computes, the others return.
    """
    setup_worker_database()
    with Single("segmento:lock:rfm-nightly", 60) as lock:
        if not lock.held:
            return None
        with database.connection_context():
            run = rfm.active_run()
            if run is not None and not worker_lost(run):
                return None  # one is under way; it refreshes the classes too
            run = rfm.create_run(trigger="nightly")
            return rfm.execute_run(run.id).id


def _fetch(run_id, redis_url=None):
    try:
        return Job.fetch(job_id(run_id), connection=get_queue(QUEUE, url=redis_url).connection)
    except NoSuchJobError:
        return None


def request_run(*, user=None, redis_url=None, tz=None):
    """Queue a computation with the current settings; returns its run.

    A run already queued or running is returned instead, unless its job is
    gone (the worker died): that one is marked failed and a new one queued.
    """
    run = rfm.active_run()
    if run is not None:
        if not worker_lost(run, redis_url):
            return run
        (RfmRun.update(status="failed", finished_at=utcnow(),
                       error="The worker stopped during the computation (killed or restarted).")
         .where(RfmRun.id == run.id).execute())
    run = rfm.create_run(trigger="user", user=user, tz=tz)
    get_queue(QUEUE, url=redis_url).enqueue(
        compute_job, run.id, job_id=job_id(run.id), job_timeout=JOB_TIMEOUT, result_ttl=3600,
        failure_ttl=7 * 86400, description=f"RFM #{run.id}")
    return run


def progress(run, redis_url=None):
    """(step, steps, label) of a running run, from its job; None when unknown."""
    if run.status != "running":
        return None
    try:
        job = _fetch(run.id, redis_url)
        meta = job.get_meta(refresh=True) if job is not None else {}
    except Exception:  # noqa: BLE001 - no queue server: show no progress rather than fail
        return None
    if not meta.get("step"):
        return None
    return meta["step"], meta.get("steps") or rfm.STEPS, meta.get("label") or ""


def worker_lost(run, redis_url=None, now=None):
    """True when the run says queued or running but its job has ended or is
    gone (the worker was killed): the page then offers to compute again."""
    if run.status not in ("queued", "running"):
        return False
    now = now or utcnow()
    if run.trigger != "user":
        # nightly and demo runs run inside their caller, with no job of their own
        return now - (run.started_at or run.created_at) > datetime.timedelta(seconds=JOB_TIMEOUT)
    try:
        job = _fetch(run.id, redis_url)
    except Exception:  # noqa: BLE001 - queue server down: say nothing rather than fail the page
        return False
    if job is None:
        return now - run.created_at > datetime.timedelta(minutes=1)
    return job.get_status() in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)
