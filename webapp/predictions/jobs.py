"""The fit-and-score job in the RQ worker, queueing it, and the nightly refresh.

One job per fit, id `predict-<fit id>`; one fit queued or running at a time
(`request_fit` returns the one under way). Progress goes to `job.meta` (step
of STEPS, its label, rows stored of rows): the scoring is one transaction, so
nothing written to the fit row would show before the end.
"""

import datetime

from .. import queue
from ..db import database, init_from_settings
from ..models import PredictionFit, utcnow
from . import service

QUEUE = "default"
JOB_TIMEOUT = 3600


def job_id(fit_id):
    return queue.job_id("predict", fit_id)


def fit_job(fit_id):
    """RQ job: fit and score fit `fit_id` (idempotent: a finished fit is left alone)."""
    init_from_settings()

    def progress(step, label, done=None, total=None):
        queue.report_progress(step=step, steps=service.STEPS, label=label, done=done, total=total)

    with database.connection_context():
        fit = service.execute_fit(fit_id, on_progress=progress)
        return fit.id if fit else None


def nightly_job():
    """RQ cron job (PREDICTIONS_NIGHTLY_CRON): fit and score as of today.

    Every worker's cron scheduler queues it at the same minute: the first to
    take the lock computes, the others return."""
    init_from_settings()
    with queue.Single("segmento:lock:predictions-nightly", 60) as lock:
        if not lock.held:
            return None
        with database.connection_context():
            fit = service.active_fit()
            if fit is not None and not worker_lost(fit):
                return None  # one is under way
            fit = service.create_fit(trigger="nightly")
            return service.execute_fit(fit.id).id


def request_fit(*, user=None, tz=None):
    """Queue a fit as of today; returns it (or the one already queued or running)."""
    fit = service.active_fit()
    if fit is not None:
        if not worker_lost(fit):
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
    queue.enqueue_once(
        fit_job,
        fit.id,
        job_id=job_id(fit.id),
        queue_name=QUEUE,
        job_timeout=JOB_TIMEOUT,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description=f"Predictions #{fit.id}",
    )
    return fit


def progress(fit):
    """(step, steps, label, done, total) of a running fit, from its job; None when unknown."""
    if fit.status != "running":
        return None
    meta = queue.job_meta(job_id(fit.id)) or {}
    if not meta.get("step"):
        return None
    return (
        meta["step"],
        meta.get("steps") or service.STEPS,
        meta.get("label") or "",
        meta.get("done"),
        meta.get("total"),
    )


def worker_lost(fit, now=None):
    """True when the fit says queued or running but its job has ended or is gone."""
    if fit.status not in ("queued", "running"):
        return False
    if fit.trigger != "user":
        # nightly, demo and CLI fits run inside their caller, with no job of their own
        now = now or utcnow()
        return now - (fit.started_at or fit.created_at) > datetime.timedelta(seconds=JOB_TIMEOUT)
    return queue.worker_lost(job_id(fit.id), since=fit.created_at, now=now)
