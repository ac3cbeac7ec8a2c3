"""The export job in the RQ worker, and queueing it from the web app.

One job per export, with the predictable id `export-<run id>` (RQ 3 ids allow
letters, digits, _ and - only), so an export is never queued twice. The job
takes the run id and re-loads the run; running it again starts the file over.
Progress goes to `job.meta` (rows done): on PostgreSQL the rows are read
inside one transaction, where progress written to the run row would not be
seen by the page until the end.
"""

from pathlib import Path

from .. import queue, settings
from ..audit import service as audit
from ..db import database, init_from_settings
from ..models import ExportRun

JOB_TIMEOUT = 3 * 3600


def job_id(run_id):
    return queue.job_id("export", run_id)


def exports_dir(instance_path=None):
    return Path(instance_path or settings.INSTANCE_PATH) / "exports"


def run_export(run_id, directory=None, tz=None):
    """The job: write export `run_id`'s file."""
    from .service import execute

    init_from_settings()
    with database.connection_context():
        run = ExportRun.get_or_none(ExportRun.id == run_id)
        if run is None or run.status == "done":
            return None

        def progress(run, done):
            queue.report_progress(rows_done=done, rows_total=run.rows_total, status=run.status)

        execute(run_id, directory or exports_dir(), tz=tz or settings.tz(), on_progress=progress)
        return run_id


def expire_job():
    """Periodic job (hourly): delete export files older than EXPORT_KEEP_DAYS, and
    the audit log's entries older than AUDIT_KEEP_DAYS (one housekeeping job rather
    than one more in the schedule). Returns the number of files deleted."""
    from .service import expire_files

    init_from_settings()
    with database.connection_context():
        audit.prune(settings.AUDIT_KEEP_DAYS)
        return expire_files(settings.EXPORT_KEEP_DAYS)


def enqueue(run, directory, tz):
    return queue.enqueue_once(
        run_export,
        run.id,
        str(directory),
        tz,
        job_id=job_id(run.id),
        job_timeout=JOB_TIMEOUT,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"export #{run.id}",
    )


def progress(run):
    """Rows written so far: from the job while it runs, from the run when it has ended."""
    if run.status != "running":
        return run.rows_done
    return int((queue.job_meta(job_id(run.id)) or {}).get("rows_done") or 0)


def worker_lost(run, now=None):
    """True when the run says queued or running but its job has ended or is gone
    (the worker was killed): the page then offers to run it again."""
    if run.status not in ("queued", "running"):
        return False
    return queue.worker_lost(job_id(run.id), since=run.created_at, now=now)
