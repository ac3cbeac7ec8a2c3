"""The backfill job in the RQ worker, and queueing it from the web app.

One job per definition and revision, with the predictable id
`event-backfill-<id>-<revision>`, so a revision is never backfilled twice at
once; a job of an older revision stops at its next chunk.
Progress goes to the definition row, committed with each chunk, and to
`job.meta`.
"""

from .. import queue, settings
from ..db import database, init_from_settings
from .service import backfill, progress, segments_to_recompute

QUEUE = "default"
JOB_TIMEOUT = 3 * 3600


def job_id(definition_id, revision):
    return queue.job_id("event-backfill", definition_id, revision)


def backfill_job(definition_id, revision=None):
    """RQ job: backfill the definition, then queue runs of the dynamic segments
    with an Events block (see webapp.events: why not mark_changed)."""
    init_from_settings()

    def report(definition):
        share, done, total = progress(definition)
        queue.report_progress(share=share, orders_done=done, orders_total=total, recorded=definition.recorded)

    with database.connection_context():
        definition = backfill(definition_id, revision, on_progress=report, tz=settings.tz())
        if definition is not None and definition.status == "done":
            request_segment_runs()
        return definition.id if definition is not None else None


def delete_job(definition_id):
    """RQ job: delete a definition marked for deletion and its occurrences,
    range by range (progress in job.meta), then queue runs of the dynamic
    segments that read events."""
    from ..models import EventDefinition
    from .service import delete_definition

    init_from_settings()
    with database.connection_context():
        definition = EventDefinition.get_or_none(EventDefinition.id == definition_id)
        if definition is None:
            return None
        removed = delete_definition(definition, on_progress=lambda share: queue.report_progress(share=share))
        request_segment_runs()
        return removed


def delete_job_id(definition_id):
    return queue.job_id("event-delete", definition_id)


def current_job_id(definition):
    """The job doing what the definition's status says (backfill or delete)."""
    if definition.status == "deleting":
        return delete_job_id(definition.id)
    return job_id(definition.id, definition.revision)


def enqueue_delete(definition):
    """Queue the deletion of a definition `start_deleting` has marked."""
    return queue.enqueue_once(
        delete_job,
        definition.id,
        job_id=delete_job_id(definition.id),
        queue_name=QUEUE,
        job_timeout=JOB_TIMEOUT,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"event delete #{definition.id}",
    )


def request_segment_runs():
    """Queue a run of every dynamic segment that reads events; returns them."""
    from ..segments.runs import RunSkipped, request_run

    requested = []
    for segment in segments_to_recompute():
        try:
            request_run(segment, trigger="dependency")
            requested.append(segment)
        except RunSkipped:
            pass
    return requested


def enqueue(definition):
    """Queue the backfill of the definition's current revision (never twice).

    A job of an older revision still running stops at its next chunk."""
    return queue.enqueue_once(
        backfill_job,
        definition.id,
        definition.revision,
        job_id=job_id(definition.id, definition.revision),
        queue_name=QUEUE,
        job_timeout=JOB_TIMEOUT,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"event backfill #{definition.id} r{definition.revision}",
    )


def live_progress(definition):
    """(share, orders done, orders total): from the job while it runs (on
    PostgreSQL too the row is committed per chunk; the job's meta is the same
    figure without a query), else from the row."""
    if definition.status in ("running", "deleting"):
        meta = queue.job_meta(current_job_id(definition))
        if meta is not None:  # no job (yet) or no queue server: the row says enough
            if definition.status == "deleting":
                return meta.get("share", 0.0), None, None
            if "share" in meta:
                return meta["share"], meta["orders_done"], meta["orders_total"]
    return progress(definition)


def worker_lost(definition, now=None):
    """True when the definition says queued, running or deleting but no job
    will do it (the worker was killed, or the queue lost it): the page offers
    to run it again."""
    if definition.status not in ("queued", "running", "deleting"):
        return False
    return queue.worker_lost(current_job_id(definition), since=definition.updated_at, now=now)
