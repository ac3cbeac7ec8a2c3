"""Full runs of a segment: the whole base evaluated, the diff and the log in SQL.

A run is set work in SQL. The engine's query fills a temporary table with the
new members; entries and exits are the differences with `segment_member`,
logged to `segment_change`; membership, log, a size point and the run's
result are written in one transaction. A run that fails, or whose worker is
killed, commits nothing: the previous membership stays, and the run is marked
failed and retried.

One run per segment at a time: jobs have the predictable id `segment-<id>`,
and the segment row holds a guard (`lock_run_id`) taken in the database. A
running run beats a heartbeat in Redis; `schedule.reap_abandoned()` fails and
re-queues runs whose heartbeat stopped (their worker died).
"""

import logging
import time

from .. import formats, queue, settings
from ..db import database, is_postgres
from ..engine import DefinitionError, customer_query, dependants_of, parse_definition
from ..i18n import _, language
from ..models import Notification, Segment, SegmentRun, SegmentSize, User, utcnow
from ..sql import bind, hold_segment, key_type, lock_membership, param, sqlite_foreign_keys_off, temporary_table
from . import figures
from .versions import note_first_run

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RETRY_DELAYS = (10, 60)  # seconds before the 2nd and 3rd attempt
QUEUE = "default"
# By name: the job module imports this one.
COMPUTE_JOB = "webapp.segments.jobs.compute_segment_job"


class RunSkipped(Exception):
    pass


# --- requesting runs -------------------------------------------------------


def job_id(segment_id):
    return queue.job_id("segment", segment_id)


def is_computable(segment, trigger):
    """Whether a run with this trigger may change the segment's members."""
    if segment.source != "definition" or not segment.active:
        return False  # list and RFM class segments: their members are stored
    if segment.type == "static":
        # Static segments are computed when created or edited, then frozen.
        return trigger in ("created", "edited", "retry")
    return True


def request_run(segment, *, trigger="user", user=None, delay=None):
    """Queue a run of the segment (reusing one already queued); returns it.

    Raises RunSkipped with a reason when the segment is not computed
    (inactive, a frozen static segment, a list segment).
    """
    if not is_computable(segment, trigger):
        if not segment.active:
            raise RunSkipped(_("The segment is inactive: it is not recomputed until you activate it."))
        if segment.source == "rfm":
            raise RunSkipped(
                _("An RFM class or score segment is refreshed from the RFM scores: recompute them on the RFM page.")
            )
        raise RunSkipped(_("A static segment is frozen: its members do not change."))
    with database.atomic():
        run = (
            SegmentRun.select()
            .where(SegmentRun.segment == segment, SegmentRun.status == "queued")
            .order_by(SegmentRun.id)
            .first()
        )
        if run is None:
            run = SegmentRun.create(segment=segment, trigger=trigger, requested_by=user)
        elif user is not None and run.requested_by_id is None:
            run.requested_by = user
            run.save()
    enqueue(segment.id, delay=delay)
    return run


def enqueue(segment_id, delay=None):
    """Make sure a job for this segment is queued or running (never two)."""
    from rq import Retry

    # A queued job will see the run; a started one loops over queued runs
    # before it ends. Only a finished, failed or missing job needs a new one.
    queue.enqueue_once(
        COMPUTE_JOB,
        segment_id,
        job_id=job_id(segment_id),
        queue_name=QUEUE,
        delay=delay,
        job_timeout=3 * 3600,
        result_ttl=600,
        failure_ttl=7 * 86400,
        retry=Retry(max=1, interval=30),
    )


# --- the run -----------------------------------------------------------------


def _acquire(segment_id, run_id):
    return (
        Segment.update(lock_run_id=run_id, locked_at=utcnow())
        .where(Segment.id == segment_id, (Segment.lock_run_id.is_null()) | (Segment.lock_run_id == run_id))
        .execute()
    ) == 1


def _release(segment_id, run_id):
    (
        Segment.update(lock_run_id=None, locked_at=None)
        .where(Segment.id == segment_id, Segment.lock_run_id == run_id)
        .execute()
    )


def heartbeat_key(run_id):
    return f"segmento:run-heartbeat:{run_id}"


def heartbeat_alive(run_id):
    return bool(queue.connection().exists(heartbeat_key(run_id)))


def _heartbeat(run_id):
    """Beats every RUN_HEARTBEAT_SECONDS while the run works, and lasts three beats: the reaper
    fails a run whose heartbeat is gone. A run computed without a queue server (the CLI, a test)
    beats nothing."""
    return queue.Lease(heartbeat_key(run_id), settings.RUN_HEARTBEAT_SECONDS * 3, required=False)


def execute_run(run_id, *, at=None):
    """Run one queued run now, in this process. Returns False if the segment's
    guard is held by another run (the run stays queued)."""
    run = SegmentRun.get_by_id(run_id)
    segment = run.segment
    if not is_computable(segment, run.trigger):
        run.status, run.finished_at = "failed", utcnow()
        run.error = _("Not computed: the segment is inactive or frozen.")
        run.save()
        return True
    if not _acquire(segment.id, run.id):
        return False
    run.status, run.started_at, run.attempts = "running", utcnow(), run.attempts + 1
    run.error = None
    run.save()
    at = at or utcnow()
    try:
        definition = parse_definition(segment.definition, segment_code=segment.code)
        # every customer id a run writes was read by its own query in the same
        # transaction, and a run deletes memberships only (nothing references them)
        with _heartbeat(run.id), sqlite_foreign_keys_off(), database.atomic():
            entered, exited, size = apply_members(
                segment.id, customer_query(definition, at=at, tz=settings.tz()), at=at, run_id=run.id
            )
            if settings.FAULT_PAUSE_BEFORE_COMMIT:
                time.sleep(settings.FAULT_PAUSE_BEFORE_COMMIT)
            finished = utcnow()
            SegmentSize.create(segment=segment.id, at=finished, size=size)
            note_first_run(segment.id, size, finished)
            (
                Segment.update(size=size, computed_at=finished, lock_run_id=None, locked_at=None)
                .where(Segment.id == segment.id)
                .execute()
            )
            (
                SegmentRun.update(
                    status="done", at=at, size=size, entered=entered, exited=exited, finished_at=finished, error=None
                )
                .where(SegmentRun.id == run.id)
                .execute()
            )
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the run
        message = str(exc) if isinstance(exc, DefinitionError) else f"{type(exc).__name__}: {exc}"
        log.exception("segment run %s failed", run.id)
        fail(run.id, message, retry=not isinstance(exc, DefinitionError))
        return True
    run = SegmentRun.get_by_id(run.id)
    _notify(run)
    if entered or exited:
        request_dependants(segment)
    try:  # the list's figures of this computation, read here so that pages find them cached
        figures.figures_of([Segment.get_by_id(segment.id)])
    except Exception:  # noqa: BLE001 - the run is done; the list reads them itself
        log.exception("figures of segment %s", segment.id)
    return True


def fail(run_id, message, *, retry, delay=True):
    run = SegmentRun.get_by_id(run_id)
    run.status, run.error, run.finished_at = "failed", message, utcnow()
    run.save()
    _release(run.segment_id, run.id)
    _notify(run)
    failures = _consecutive_failures(run.segment_id)
    if retry and failures < MAX_ATTEMPTS:
        segment = run.segment
        if is_computable(segment, "retry"):
            retry_run = SegmentRun.create(segment=segment, trigger="retry", requested_by=run.requested_by_id)
            try:
                enqueue(segment.id, delay=RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1] if delay else None)
            except Exception:  # noqa: BLE001 - the scheduler re-queues queued runs
                log.warning("could not queue retry run %s", retry_run.id, exc_info=True)


def _consecutive_failures(segment_id):
    failures = 0
    for (status,) in (
        SegmentRun.select(SegmentRun.status)
        .where(SegmentRun.segment == segment_id, SegmentRun.status.in_(("done", "failed")))
        .order_by(SegmentRun.id.desc())
        .limit(MAX_ATTEMPTS)
        .tuples()
    ):
        if status != "failed":
            break
        failures += 1
    return failures


def _notify(run):
    if run.requested_by_id is None or run.status not in ("done", "failed"):
        return
    segment = run.segment
    user = User.get_by_id(run.requested_by_id)
    # In the language the user reads Segmento in (else the account's): a job has no request.
    with language(user.reading_language):
        if run.status == "done":
            message = _(
                "Segment “%(name)s” computed: %(size)s members, %(entered)s entered, %(exited)s exited.",
                name=segment.name,
                size=formats.thousands(run.size),
                entered=formats.thousands(run.entered),
                exited=formats.thousands(run.exited),
            )
            level = "info"
        else:
            message = _("Segment “%(name)s” failed to compute: %(error)s", name=segment.name, error=run.error)
            level = "error"
    Notification.create(user=run.requested_by_id, message=message, level=level, link=f"/segments/{segment.code}")
    if user.notify_email:
        from ..mailer import send_email

        send_email(user.email, message[:150], message)


def request_dependants(segment):
    """Queue runs of the dynamic segments that read this one's membership."""
    # A list, not a live cursor: SQLite aborts open reads on ROLLBACK.
    others = list(Segment.evaluated().where(Segment.id != segment.id))
    for other in dependants_of(segment.code, others):
        try:
            request_run(other, trigger="dependency")
        except RunSkipped:
            pass


# --- the set work ----------------------------------------------------------


def apply_members(segment_id, query, *, at, run_id=None):
    """Make `segment_member` equal the customers of `query`, logging the diff.

    Set work in the database, one pass over the new members, which go to a
    temporary table with a key first. On PostgreSQL one statement then inserts
    the entries into `segment_member` and deletes the exits from it, both
    logged from what those two return. On SQLite (no data-modifying WITH) each
    new member is marked once as entering or not (a probe of `segment_member`'s key), and
    the log and membership inserts read the marked rows in key order, the
    order of the indexes they extend; exits are one anti-join the other way.
    Must run inside a transaction. Returns (entered, exited, size).
    """
    lock_membership()  # before the query reads the customers (no foreign keys on PostgreSQL)
    if not hold_segment(segment_id):
        raise LookupError(f"segment {segment_id} was deleted")
    if is_postgres():
        return _apply_members_postgres(segment_id, query, at=bind(at), run_id=run_id)
    db = database
    p = param()
    at = bind(at)
    with temporary_table("seg_new", f"customer_id {key_type()} PRIMARY KEY, entering INTEGER NOT NULL"):
        sql, params = query.sql()
        size = db.execute_sql(
            # the CTE names the query's one column, whatever the query calls it
            f"INSERT INTO seg_new (customer_id, entering) WITH n(id) AS ({sql}) SELECT n.id, CASE WHEN EXISTS "
            f"(SELECT 1 FROM segment_member m WHERE m.segment_id = {p} AND m.customer_id = n.id) "
            f"THEN 0 ELSE 1 END FROM n",
            (*params, segment_id),
        ).rowcount
        exited = db.execute_sql(
            f'INSERT INTO segment_change (segment_id, customer_id, change, "at", run_id) '
            f"SELECT {p}, m.customer_id, 'exited', {p}, {p} FROM segment_member m "
            f"WHERE m.segment_id = {p} AND NOT EXISTS "
            f"(SELECT 1 FROM seg_new n WHERE n.customer_id = m.customer_id) ORDER BY m.customer_id",
            (segment_id, at, run_id, segment_id),
        ).rowcount
        if exited:
            db.execute_sql(
                f"DELETE FROM segment_member WHERE segment_id = {p} AND NOT EXISTS "
                f"(SELECT 1 FROM seg_new n WHERE n.customer_id = segment_member.customer_id)",
                (segment_id,),
            )
        entered = db.execute_sql(
            f'INSERT INTO segment_change (segment_id, customer_id, change, "at", run_id) '
            f"SELECT {p}, customer_id, 'entered', {p}, {p} FROM seg_new WHERE entering = 1 ORDER BY customer_id",
            (segment_id, at, run_id),
        ).rowcount
        if entered:
            db.execute_sql(
                f"INSERT INTO segment_member (segment_id, customer_id, since) "
                f"SELECT {p}, customer_id, {p} FROM seg_new WHERE entering = 1 ORDER BY customer_id",
                (segment_id, at),
            )
    return entered, exited, size


def _apply_members_postgres(segment_id, query, *, at, run_id):
    # Hashing 600,000 ids and sorting them for the indexes takes more than the
    # default 4 MB: spilled to disk it cost ~0.3 s on the 1M demo.
    database.execute_sql("SET LOCAL work_mem = '64MB'")
    sql, params = query.sql()
    with temporary_table("seg_new", f"customer_id {key_type()} NOT NULL"):
        # The new members in a table with a key, not a WITH: both anti-joins
        # then have an index on their inner side, so a plan made on a stale
        # estimate (a segment thought empty) stays a probe per row. Over an
        # unindexed WITH, the exits' anti-join of 585,000 members became a
        # nested loop over 585,000 rows (minutes). The key is built once the
        # rows are in (one sort): 0.43-0.46 s of CPU for the 586,000 of the 1M
        # demo, against 0.61-0.65 s with the key filled row by row.
        size = database.execute_sql(f"INSERT INTO seg_new (customer_id) {sql}", params).rowcount
        database.execute_sql("ALTER TABLE seg_new ADD PRIMARY KEY (customer_id)")
        database.execute_sql("ANALYZE seg_new")
        # One statement; every part reads the snapshot it began with: the exits'
        # anti-join and the entries' probe see the membership before the run, and
        # the two are disjoint (an entry is not a member; an exit is not new).
        entered, exited = database.execute_sql(
            "WITH came AS (INSERT INTO segment_member (segment_id, customer_id, since) "
            "SELECT %s, n.customer_id, %s FROM seg_new n WHERE NOT EXISTS "
            "(SELECT 1 FROM segment_member m WHERE m.segment_id = %s AND m.customer_id = n.customer_id) "
            "ORDER BY n.customer_id RETURNING customer_id), "
            "gone AS (DELETE FROM segment_member m WHERE m.segment_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM seg_new n WHERE n.customer_id = m.customer_id) RETURNING customer_id), "
            'logged AS (INSERT INTO segment_change (segment_id, customer_id, change, "at", run_id) '
            "SELECT %s, customer_id, change, %s, %s FROM "
            "(SELECT customer_id, 'exited' AS change FROM gone UNION ALL SELECT customer_id, 'entered' FROM came) c "
            "ORDER BY customer_id RETURNING change) "
            "SELECT COUNT(*) FILTER (WHERE change = 'entered'), COUNT(*) FILTER (WHERE change = 'exited') FROM logged",
            (segment_id, at, segment_id, segment_id, segment_id, at, run_id),
        ).fetchone()
    return entered, exited, size
