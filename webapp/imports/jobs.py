"""The import job in the RQ worker, and queueing/cancelling it from the web app.

One job per import run, with the predictable id `import-<run id>` (RQ 3 job
ids allow only letters, digits, _ and -), so a run is never queued twice.
The job takes the run id, re-loads the run, and is safe to run again: a
finished run is left alone, a failed one starts over (upserts are idempotent).
Progress goes to the run row (read by the page) and to `job.meta`.
"""
import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rq import get_current_job
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from .. import settings
from ..db import database
from ..jobs import setup_worker_database
from ..models import ImportRun, utcnow
from ..ops import storage
from ..queue import get_queue
from .service import Importer

JOB_TIMEOUT = 6 * 3600  # a 10-million-row file takes minutes; never cut it at RQ's default 180 s
ACTIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def job_id(run_id):
    return f"import-{run_id}"


def account_tz(name=None):
    try:
        return ZoneInfo(name or settings.TZ)
    except (KeyError, ValueError):
        return None


def run_import(run_id):
    """The job: run import `run_id` to its end."""
    setup_worker_database()
    database.connect(reuse_if_open=True)
    try:
        run = ImportRun.get_or_none(ImportRun.id == run_id)
        if run is None or run.status in ("done", "cancelled", "draft"):
            return None
        if run.cancel_requested:
            run.status, run.finished_at, run.cancel_requested = "cancelled", utcnow(), False
            run.save()
            return None
        job = get_current_job()

        def progress(run):
            if job is not None:
                job.meta.update({"status": run.status, "phase": run.phase, "rows_total": run.rows_total,
                                 "rows_done": run.rows_done, "rows_rejected": run.rows_rejected,
                                 "bytes_done": run.bytes_done, "bytes_total": run.bytes_total})
                job.save_meta()

        # Uploaded on another machine: fetched from STORAGE_URL; the rejected rows go back there.
        storage.local_copy(run.file_path, "imports")
        try:
            Importer(run, Path(run.file_path).parent, tz=account_tz(), on_progress=progress).execute()
        finally:
            rejected = ImportRun.get_by_id(run_id).rejected_path
            if rejected and Path(rejected).exists():
                storage.publish(rejected, "imports")
        return run.status
    finally:
        if not database.is_closed():
            database.close()


def enqueue(run, redis_url=None, force=False):
    """Queue the run's job unless it is already queued or running (`force`:
    replace a job whose worker was lost, see worker_lost)."""
    queue = get_queue(url=redis_url)
    jid = job_id(run.id)
    try:
        job = Job.fetch(jid, connection=queue.connection)
    except NoSuchJobError:
        job = None
    if job is not None:
        if job.get_status() in ACTIVE and not force:
            return job
        job.delete()  # an ended (or lost) earlier attempt: start over
    run.status, run.cancel_requested, run.error = "queued", False, None
    run.save(only=[ImportRun.status, ImportRun.cancel_requested, ImportRun.error])
    return queue.enqueue(run_import, run.id, job_id=jid, job_timeout=JOB_TIMEOUT, unique=True,
                         result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600,
                         description=f"import {run.kind} #{run.id}")


def request_cancel(run, redis_url=None):
    """Cancel a queued run at once; ask a running one to stop after its batch."""
    ImportRun.update(cancel_requested=True).where(ImportRun.id == run.id).execute()
    if run.status == "queued":
        try:
            job = Job.fetch(job_id(run.id), connection=get_queue(url=redis_url).connection)
            if job.get_status() == JobStatus.QUEUED:
                job.cancel()
        except NoSuchJobError:
            pass
        (ImportRun.update(status="cancelled", finished_at=utcnow(), cancel_requested=False)
         .where(ImportRun.id == run.id, ImportRun.status == "queued").execute())
    return ImportRun.get_by_id(run.id)


LOST_AFTER = datetime.timedelta(seconds=4 * DEFAULT_JOB_MONITORING_INTERVAL)


def _naive_utc(value):
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def worker_lost(run, redis_url=None, now=None):
    """True when a run says queued or running but no worker is on it any more:
    its job ended or vanished, or the worker stopped sending heartbeats (it
    was killed). The page then offers to run it again."""
    if run.status not in ("running", "queued") or run.origin != "web":
        return False  # a CLI run has no job
    now = now or utcnow()
    try:
        job = Job.fetch(job_id(run.id), connection=get_queue(url=redis_url).connection)
        status = job.get_status()
    except NoSuchJobError:
        return now - run.created_at > datetime.timedelta(minutes=1)  # a very young job may not be saved yet
    except Exception:  # noqa: BLE001 - queue server down: say nothing rather than fail the page
        return False
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED):
        return True
    if status == JobStatus.STARTED:
        beat = _naive_utc(job.last_heartbeat or job.started_at)
        return beat is not None and now - beat > LOST_AFTER
    return False
