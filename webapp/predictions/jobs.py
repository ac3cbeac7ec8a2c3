"""The fit-and-score job in the RQ worker, queueing it, and the nightly refresh.

One job per fit, id `predict-<fit id>`; one fit queued or running at a time
(`request_fit` returns the one under way). Progress goes to `job.meta` (step
of STEPS, its label, rows stored of rows): the scoring is one transaction, so
nothing written to the fit row would show before the end.
"""

import datetime

from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ..db import database
from ..jobs import setup_worker_database
from ..models import PredictionFit, utcnow
from ..queue import Single, get_queue
from . import service

QUEUE = "default"
JOB_TIMEOUT = 3600


def job_id(fit_id):
    return f"predict-{fit_id}"  # RQ 3 ids allow letters, digits, _ and - only


def fit_job(fit_id):
    """RQ job: fit and score fit `fit_id` (idempotent: a finished fit is left alone)."""
    setup_worker_database()
    job = get_current_job()

    def progress(step, label, done=None, total=None):
        if job is not None:
            job.meta.update({"step": step, "steps": service.STEPS, "label": label, "done": done, "total": total})
            job.save_meta()

    with database.connection_context():
        fit = service.execute_fit(fit_id, on_progress=progress)
        return fit.id if fit else None


def nightly_job():
    """RQ cron job (PREDICTIONS_NIGHTLY_CRON): fit and score as of today.

    Every worker's cron scheduler queues it at the same minute: the first to
    take the lock computes, the others return."""
    setup_worker_database()
    with Single("segmento:lock:predictions-nightly", 60) as lock:
        if not lock.held:
            return None
        with database.connection_context():
            fit = service.active_fit()
            if fit is not None and not worker_lost(fit):
                return None  # one is under way
            fit = service.create_fit(trigger="nightly")
            return service.execute_fit(fit.id).id


def _fetch(fit_id, redis_url=None):
    try:
        return Job.fetch(job_id(fit_id), connection=get_queue(QUEUE, url=redis_url).connection)
    except NoSuchJobError:
        return None


def request_fit(*, user=None, redis_url=None, tz=None):
    """Queue a fit as of today; returns it (or the one already queued or running)."""
    fit = service.active_fit()
    if fit is not None:
        if not worker_lost(fit, redis_url):
            return fit
        (
            PredictionFit.update(
                status="failed",
                finished_at=utcnow(),
                error_code="error",
                error={"reason": "The worker stopped during the computation (killed or restarted)."},
            )
            .where(PredictionFit.id == fit.id)
            .execute()
        )
    fit = service.create_fit(trigger="user", user=user, tz=tz)
    get_queue(QUEUE, url=redis_url).enqueue(
        fit_job,
        fit.id,
        job_id=job_id(fit.id),
        job_timeout=JOB_TIMEOUT,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description=f"Predictions #{fit.id}",
    )
    return fit


def progress(fit, redis_url=None):
    """(step, steps, label, done, total) of a running fit, from its job; None when unknown."""
    if fit.status != "running":
        return None
    try:
        job = _fetch(fit.id, redis_url)
        meta = job.get_meta(refresh=True) if job is not None else {}
    except Exception:  # noqa: BLE001 - no queue server: show no progress rather than fail
        return None
    if not meta.get("step"):
        return None
    return (
        meta["step"],
        meta.get("steps") or service.STEPS,
        meta.get("label") or "",
        meta.get("done"),
        meta.get("total"),
    )


def worker_lost(fit, redis_url=None, now=None):
    """True when the fit says queued or running but its job has ended or is gone."""
    if fit.status not in ("queued", "running"):
        return False
    now = now or utcnow()
    if fit.trigger != "user":
        # nightly, demo and CLI fits run inside their caller, with no job of their own
        return now - (fit.started_at or fit.created_at) > datetime.timedelta(seconds=JOB_TIMEOUT)
    try:
        job = _fetch(fit.id, redis_url)
    except Exception:  # noqa: BLE001 - queue server down: say nothing rather than fail the page
        return False
    if job is None:
        return now - fit.created_at > datetime.timedelta(minutes=1)
    return job.get_status() in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)
