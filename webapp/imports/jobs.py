"""The import job in the RQ worker, and queueing/cancelling it from the web app.

One job per import run, with the predictable id `import-<run id>` (RQ 3 job
ids allow only letters, digits, _ and -), so a run is never queued twice.
The job takes the run id, re-loads the run, and is safe to run again: a
finished run is left alone, a failed one starts over (upserts are idempotent).
Progress goes to the run row (read by the page) and to `job.meta`.
"""

import hashlib
import json
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

from rq.job import JobStatus

from .. import queue, settings
from ..db import database, init_from_settings
from ..i18n import language
from ..models import ImportRun, utcnow
from ..ops import storage
from .bulk import Importer

log = logging.getLogger(__name__)

JOB_TIMEOUT = 6 * 3600  # a 10-million-row file takes minutes; never cut it at RQ's default 180 s


def job_id(run_id):
    return queue.job_id("import", run_id)


def account_tz(name=None):
    try:
        return ZoneInfo(name or settings.tz())
    except (KeyError, ValueError):
        return None


def run_import(run_id):
    """The job: run import `run_id` to its end."""
    init_from_settings()
    with database.connection_context():
        run = ImportRun.get_or_none(ImportRun.id == run_id)
        if run is None or run.status in ("done", "cancelled", "draft"):
            return None
        if run.cancel_requested:
            run.status, run.finished_at, run.cancel_requested = "cancelled", utcnow(), False
            run.save()
            return None

        def progress(run):
            queue.report_progress(
                status=run.status,
                phase=run.phase,
                rows_total=run.rows_total,
                rows_done=run.rows_done,
                rows_rejected=run.rows_rejected,
                bytes_done=run.bytes_done,
                bytes_total=run.bytes_total,
            )

        # Uploaded on another machine: fetched from STORAGE_URL; the rejected rows go back there.
        storage.local_copy(run.file_path, "imports")
        try:
            # The report's and the rejected rows' reasons in the language its user reads
            # Segmento in (else the account's): a job has no request to take it from.
            with language(run.user.reading_language if run.user_id else None):
                Importer(run, Path(run.file_path).parent, tz=account_tz(), on_progress=progress).execute()
        finally:
            rejected = ImportRun.get_by_id(run_id).rejected_path
            if rejected and Path(rejected).exists():
                storage.publish(rejected, "imports")
        return run.status


# --- the preview's trigger forecast ------------------------------------------------

FORECAST_KEEP_SECONDS = 600  # then counted again (segments and triggers change)
FORECAST_TIMEOUT = 600


def forecast_id(run, encoding, delimiter, mapping, trigger_ids):
    """The forecast job's id, also the key its counts are kept under: one per
    uploaded file, reading of it (encoding, delimiter), column mapping and set of
    triggers."""
    what = [run.file_path, encoding, delimiter, mapping, sorted(trigger_ids)]
    digest = hashlib.sha1(json.dumps(what, sort_keys=True).encode(), usedforsecurity=False).hexdigest()[:16]
    return queue.job_id("import-forecast", run.id, digest)


def forecast_job(run_id, encoding, delimiter, mapping, key):
    """The job: check the draft's first rows and count the customers each active
    trigger would fire for (`checks.trigger_forecast`: written and rolled back,
    here rather than on each view of the preview); the counts
    {trigger id: customers} are kept under `key` for the preview. Idempotent."""
    from .checks import check_file, trigger_forecast

    init_from_settings()
    with database.connection_context():
        run = ImportRun.get_or_none(ImportRun.id == run_id)
        if run is None or run.status != "draft":
            return None
        storage.local_copy(run.file_path, "imports")
        checked = check_file(run.file_path, run.kind, encoding, delimiter, mapping, account_tz())
        counts = {str(f["trigger"].id): f["count"] for f in trigger_forecast(run.kind, checked)}
        queue.write_json(key, counts, FORECAST_KEEP_SECONDS)
        return counts


def forecast(run, encoding, delimiter, mapping, triggers):
    """("ready", {trigger id: customers}), ("counting", None) with the job queued
    (once), or ("failed", None) when the job failed or cannot be queued."""
    key = forecast_id(run, encoding, delimiter, mapping, [t.id for t in triggers])
    counts = queue.read_json(key)
    if counts is not None:
        return "ready", {int(k): v for k, v in counts.items()}
    try:
        status, _meta = queue.job_state(key)
        if status in queue.FAILED:
            return "failed", None
        queue.enqueue_once(
            forecast_job,
            run.id,
            encoding,
            delimiter,
            mapping,
            key,
            job_id=key,
            job_timeout=FORECAST_TIMEOUT,
            result_ttl=FORECAST_KEEP_SECONDS,
            failure_ttl=FORECAST_KEEP_SECONDS,
            description=f"import forecast #{run.id}",
        )
    except Exception:  # noqa: BLE001 - no queue server: the preview goes without the forecast
        log.exception("import forecast for run %s could not be queued", run.id)
        return "failed", None
    return "counting", None


def enqueue(run, force=False):
    """Queue the run's job unless it is already queued or running (`force`:
    replace a job whose worker was lost, see worker_lost)."""
    job = None if force else queue.active_job(job_id(run.id))
    if job is not None:
        return job
    run.status, run.cancel_requested, run.error = "queued", False, None
    run.save(only=[ImportRun.status, ImportRun.cancel_requested, ImportRun.error])
    return queue.enqueue_once(
        run_import,
        run.id,
        job_id=job_id(run.id),
        replace=force,
        job_timeout=JOB_TIMEOUT,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"import {run.kind} #{run.id}",
    )


def request_cancel(run):
    """Cancel a queued run at once; ask a running one to stop after its batch."""
    ImportRun.update(cancel_requested=True).where(ImportRun.id == run.id).execute()
    if run.status == "queued":
        job = queue.fetch(job_id(run.id))
        if job is not None and job.get_status() == JobStatus.QUEUED:
            job.cancel()
        (
            ImportRun.update(status="cancelled", finished_at=utcnow(), cancel_requested=False)
            .where(ImportRun.id == run.id, ImportRun.status == "queued")
            .execute()
        )
    return ImportRun.get_by_id(run.id)


def worker_lost(run, now=None):
    """True when a run says queued or running but no worker is on it any more:
    its job ended or vanished, or the worker stopped sending heartbeats (it
    was killed). The page then offers to run it again."""
    if run.status not in ("running", "queued") or run.origin != "web":
        return False  # a CLI run has no job
    return queue.worker_lost(job_id(run.id), since=run.created_at, now=now)
