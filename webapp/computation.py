"""Segment computation: full runs, real-time re-checks and the schedule.

A run is set work in SQL. The engine's query fills a temporary table with the
new members; entries and exits are the differences with `segment_member`,
logged to `segment_change`; membership, log, a size point and the run's
result are written in one transaction. A run that fails, or whose worker is
killed, commits nothing: the previous membership stays, and the run is marked
failed and retried.

One run per segment at a time: jobs have the predictable id `segment-<id>`,
and the segment row holds a guard (`lock_run_id`) taken in the database. A
running run beats a heartbeat in Redis; `reap_abandoned()` fails and re-queues
runs whose heartbeat stopped (their worker died).

Real-time: writers mark changed customers (webapp.changes); every few seconds
`recheck_changed()` re-checks them against every active dynamic segment, in
dependency order, with the same diff restricted to those customers.
"""
import datetime
import json
import logging
import threading
import time

import peewee as pw

from . import changes, settings
from .db import database, is_postgres
from .engine import DefinitionError, catalogue, customer_query, parse_definition
from .engine.compiler import today_at
from .i18n import _
from .models import (CustomField, Notification, Segment, SegmentChange, SegmentMember, SegmentRun,
                     SegmentSize, User, utcnow)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RETRY_DELAYS = (10, 60)  # seconds before the 2nd and 3rd attempt
REALTIME_BATCH = 500
QUEUE = "default"
REALTIME_QUEUE = "realtime"


class RunSkipped(Exception):
    pass


# --- requesting runs -------------------------------------------------------

def job_id(segment_id):
    return f"segment-{segment_id}"  # RQ 3 ids allow letters, digits, _ and - only


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
            raise RunSkipped(_("An RFM class is refreshed from the RFM scores: recompute them on the RFM page."))
        raise RunSkipped(_("A static segment is frozen: its members do not change."))
    with database.atomic():
        run = (SegmentRun.select()
               .where(SegmentRun.segment == segment, SegmentRun.status == "queued")
               .order_by(SegmentRun.id).first())
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
    from rq.job import Job, JobStatus
    from rq.exceptions import NoSuchJobError

    from .queue import get_queue

    queue = get_queue(QUEUE)
    try:
        job = Job.fetch(job_id(segment_id), connection=queue.connection)
        status = job.get_status()
    except NoSuchJobError:
        status = None
    # A queued job will see the run; a started one loops over queued runs
    # before it ends. Only a finished, failed or missing job needs a new one.
    if status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return
    kwargs = dict(job_id=job_id(segment_id), job_timeout=3 * 3600, result_ttl=600,
                  failure_ttl=7 * 86400, retry=Retry(max=1, interval=30))
    if delay:
        queue.enqueue_in(datetime.timedelta(seconds=delay), compute_segment_job, segment_id, **kwargs)
    else:
        queue.enqueue(compute_segment_job, segment_id, **kwargs)


# --- the run job -----------------------------------------------------------

def compute_segment_job(segment_id):
    """RQ job: run every queued run of the segment, oldest first. Idempotent."""
    from .jobs import setup_worker_database
    setup_worker_database()
    with database.connection_context():
        while True:
            run = (SegmentRun.select()
                   .where(SegmentRun.segment == segment_id, SegmentRun.status == "queued")
                   .order_by(SegmentRun.id).first())
            if run is None:
                return
            if not execute_run(run.id):
                return  # the guard is held by another run: the reaper sorts it out


def _acquire(segment_id, run_id):
    return (Segment.update(lock_run_id=run_id, locked_at=utcnow())
            .where(Segment.id == segment_id,
                   (Segment.lock_run_id.is_null()) | (Segment.lock_run_id == run_id))
            .execute()) == 1


def _release(segment_id, run_id):
    (Segment.update(lock_run_id=None, locked_at=None)
     .where(Segment.id == segment_id, Segment.lock_run_id == run_id).execute())


class _Heartbeat:
    """Refreshes `run-heartbeat:<run id>` in Redis while a run works."""

    def __init__(self, run_id):
        self.key = f"segmento:run-heartbeat:{run_id}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        try:
            from .queue import connection
            self.redis = connection()
        except RuntimeError:
            self.redis = None

    def _beat(self):
        while not self.stop.is_set():
            try:
                self.redis.set(self.key, "1", px=int(settings.RUN_HEARTBEAT_SECONDS * 3000))
            except Exception:  # noqa: BLE001 - a missed beat must not kill the run
                log.warning("run heartbeat failed", exc_info=True)
            self.stop.wait(settings.RUN_HEARTBEAT_SECONDS)

    def __enter__(self):
        if self.redis is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.redis is not None:
            self.thread.join(5)
            self.redis.delete(self.key)


def heartbeat_alive(run_id):
    from .queue import connection
    return bool(connection().exists(f"segmento:run-heartbeat:{run_id}"))


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
        with _Heartbeat(run.id), database.atomic():
            entered, exited, size = apply_members(
                segment.id, customer_query(definition, at=at, tz=settings.TZ), at=at, run_id=run.id)
            if settings.FAULT_PAUSE_BEFORE_COMMIT:
                time.sleep(settings.FAULT_PAUSE_BEFORE_COMMIT)
            finished = utcnow()
            SegmentSize.create(segment=segment.id, at=finished, size=size)
            (Segment.update(size=size, computed_at=finished, lock_run_id=None, locked_at=None)
             .where(Segment.id == segment.id).execute())
            (SegmentRun.update(status="done", at=at, size=size, entered=entered, exited=exited,
                               finished_at=finished, error=None)
             .where(SegmentRun.id == run.id).execute())
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the run
        message = str(exc) if isinstance(exc, DefinitionError) else f"{type(exc).__name__}: {exc}"
        log.exception("segment run %s failed", run.id)
        _fail(run.id, message, retry=not isinstance(exc, DefinitionError))
        return True
    run = SegmentRun.get_by_id(run.id)
    _notify(run)
    if entered or exited:
        _request_dependants(segment)
    return True


def _fail(run_id, message, *, retry, delay=True):
    run = SegmentRun.get_by_id(run_id)
    run.status, run.error, run.finished_at = "failed", message, utcnow()
    run.save()
    _release(run.segment_id, run.id)
    _notify(run)
    failures = _consecutive_failures(run.segment_id)
    if retry and failures < MAX_ATTEMPTS:
        segment = run.segment
        if is_computable(segment, "retry"):
            retry_run = SegmentRun.create(segment=segment, trigger="retry",
                                          requested_by=run.requested_by_id)
            try:
                enqueue(segment.id,
                        delay=RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1] if delay else None)
            except Exception:  # noqa: BLE001 - the scheduler re-queues queued runs
                log.warning("could not queue retry run %s", retry_run.id, exc_info=True)


def _consecutive_failures(segment_id):
    failures = 0
    for (status,) in (SegmentRun.select(SegmentRun.status)
                      .where(SegmentRun.segment == segment_id,
                             SegmentRun.status.in_(("done", "failed")))
                      .order_by(SegmentRun.id.desc()).limit(MAX_ATTEMPTS).tuples()):
        if status != "failed":
            break
        failures += 1
    return failures


def _notify(run):
    if run.requested_by_id is None or run.status not in ("done", "failed"):
        return
    segment = run.segment
    if run.status == "done":
        message = _("Segment “%(name)s” computed: %(size)s members, %(entered)s entered, %(exited)s exited.",
                    name=segment.name, size=run.size, entered=run.entered, exited=run.exited)
        level = "info"
    else:
        message = _("Segment “%(name)s” failed to compute: %(error)s", name=segment.name, error=run.error)
        level = "error"
    Notification.create(user=run.requested_by_id, message=message, level=level,
                        link=f"/segments/{segment.code}")
    user = User.get_by_id(run.requested_by_id)
    if user.notify_email:
        from .mailer import send_email
        send_email(user.email, message[:150], message)


def _request_dependants(segment):
    """Queue runs of the dynamic segments that read this one's membership."""
    # A list, not a live cursor: SQLite aborts open reads on ROLLBACK.
    for other in list(Segment.select().where(Segment.active == True, Segment.type == "dynamic",  # noqa: E712
                                             Segment.source == "definition", Segment.id != segment.id)):
        if segment.code in _segment_refs(other.definition):
            try:
                request_run(other, trigger="dependency")
            except RunSkipped:
                pass


def _segment_refs(data):
    refs = set()
    for block in (data or {}).get("blocks") or ():
        if isinstance(block, dict) and block.get("entity") == "segment":
            for flt in block.get("filters") or ():
                for item in flt.get("values") or ():
                    if isinstance(item, dict):
                        refs.add(item.get("value"))
    return refs


# --- the set work ----------------------------------------------------------

def apply_members(segment_id, query, *, at, run_id=None):
    """Make `segment_member` equal the customers of `query`, logging the diff.

    Set work in the database: the new members go to a temporary table and
    entries, exits and membership are INSERT/DELETE ... SELECT statements.
    Must run inside a transaction. Returns (entered, exited, size).
    """
    db = database
    p = "%s" if is_postgres() else "?"
    bigint = "BIGINT" if is_postgres() else "INTEGER"
    db.execute_sql(f"CREATE TEMPORARY TABLE seg_new (customer_id {bigint} PRIMARY KEY)")
    try:
        sql, params = query.sql()
        db.execute_sql(f"INSERT INTO seg_new (customer_id) {sql}", params)
        entered = db.execute_sql(
            f"INSERT INTO segment_change (segment_id, customer_id, change, \"at\", run_id) "
            f"SELECT {p}, n.customer_id, 'entered', {p}, {p} FROM seg_new n WHERE NOT EXISTS "
            f"(SELECT 1 FROM segment_member m WHERE m.segment_id = {p} AND m.customer_id = n.customer_id)",
            (segment_id, at, run_id, segment_id)).rowcount
        exited = db.execute_sql(
            f"INSERT INTO segment_change (segment_id, customer_id, change, \"at\", run_id) "
            f"SELECT {p}, m.customer_id, 'exited', {p}, {p} FROM segment_member m "
            f"WHERE m.segment_id = {p} AND NOT EXISTS "
            f"(SELECT 1 FROM seg_new n WHERE n.customer_id = m.customer_id)",
            (segment_id, at, run_id, segment_id)).rowcount
        if exited:
            db.execute_sql(
                f"DELETE FROM segment_member WHERE segment_id = {p} AND NOT EXISTS "
                f"(SELECT 1 FROM seg_new n WHERE n.customer_id = segment_member.customer_id)",
                (segment_id,))
        if entered:
            db.execute_sql(
                f"INSERT INTO segment_member (segment_id, customer_id, since) "
                f"SELECT {p}, n.customer_id, {p} FROM seg_new n WHERE NOT EXISTS "
                f"(SELECT 1 FROM segment_member m WHERE m.segment_id = {p} AND m.customer_id = n.customer_id)",
                (segment_id, at, segment_id))
        size = db.execute_sql("SELECT COUNT(*) FROM seg_new").fetchone()[0]
    finally:
        db.execute_sql("DROP TABLE IF EXISTS seg_new")
    return entered, exited, size


def _log_batch_changes(segment_id, entered, exited, at):
    """Write a real-time batch's entries and exits for one segment: the log,
    membership, size and a size point. Inside the caller's transaction."""
    SegmentChange.insert_many(
        [(segment_id, i, "entered", at) for i in entered] + [(segment_id, i, "exited", at) for i in exited],
        fields=[SegmentChange.segment, SegmentChange.customer, SegmentChange.change, SegmentChange.at],
    ).execute()
    if exited:
        (SegmentMember.delete()
         .where(SegmentMember.segment == segment_id, SegmentMember.customer.in_(exited)).execute())
    if entered:
        SegmentMember.insert_many([(segment_id, i, at) for i in entered],
                                  fields=[SegmentMember.segment, SegmentMember.customer,
                                          SegmentMember.since]).execute()
    (Segment.update(size=pw.fn.COALESCE(Segment.size, 0) + len(entered) - len(exited))
     .where(Segment.id == segment_id).execute())
    size = Segment.select(Segment.size).where(Segment.id == segment_id).scalar()
    SegmentSize.create(segment=segment_id, at=at, size=size)


# --- real time -------------------------------------------------------------

def dynamic_segments_in_order():
    """Active dynamic segments, each after the segments it reads."""
    segments = list(Segment.select().where(Segment.active == True, Segment.type == "dynamic",  # noqa: E712
                                           Segment.source == "definition").order_by(Segment.id))
    by_code = {s.code: s for s in segments}
    ordered, seen = [], set()

    def visit(segment, path=()):
        if segment.code in seen or segment.code in path:
            return
        for code in sorted(_segment_refs(segment.definition)):
            if code in by_code:
                visit(by_code[code], path + (segment.code,))
        seen.add(segment.code)
        ordered.append(segment)

    for segment in segments:
        visit(segment)
    return ordered


# The batch being re-checked, in a temporary table: each segment's scoped query
# reads its ids from there, so the query's SQL text does not depend on the
# batch and is compiled once per segment, definition, day and custom fields.
_SCOPE = pw.Table("rt_scope", ("customer_id",))
_compiled = {}
_COMPILED_MAX = 2000


def _custom_fields_version():
    """What of the custom fields a compiled query depends on (one small query)."""
    return repr(list(CustomField.select(CustomField.id, CustomField.entity, CustomField.code, CustomField.type,
                                        CustomField.options).order_by(CustomField.id).tuples()))


def _scoped_sql(segment, at, today, fields, load_catalogue):
    """(sql, params) of the segment's members among the batch in `rt_scope`;
    None when its definition is invalid (the scheduled run reports that)."""
    key = (segment.id, json.dumps(segment.definition, sort_keys=True), today, settings.TZ, is_postgres(), fields)
    if key not in _compiled:
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        try:
            definition = parse_definition(segment.definition, catalogue=load_catalogue())
            _compiled[key] = customer_query(definition, at=at, tz=settings.TZ,
                                            scope=_SCOPE.select(_SCOPE.customer_id)).sql()
        except DefinitionError:
            _compiled[key] = None
    return _compiled[key]


def recheck_customers(customer_ids, *, at=None):
    """Re-check these customers against every active dynamic segment now.

    One transaction for the batch: the ids go to a temporary table, current
    memberships are read in one query, each segment runs one query restricted
    to the batch (in dependency order, so a segment reading another sees its
    new members), and only differences are written. Returns the number of
    (entered, exited) changes logged, and whether every segment could be
    checked (a segment held by a full run is skipped: the caller keeps the
    marks and tries again).
    """
    at = at or utcnow()
    ids = sorted(set(customer_ids))
    if not ids:
        return 0, 0, True
    today = today_at(at, settings.TZ)
    fields = _custom_fields_version()
    loaded = []

    def load_catalogue():
        if not loaded:
            loaded.append(catalogue())
        return loaded[0]

    total_entered = total_exited = 0
    complete = True
    with database.atomic():
        key_type = "BIGINT" if is_postgres() else "INTEGER"
        database.execute_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS rt_scope (customer_id {key_type} PRIMARY KEY)")
        database.execute_sql("DELETE FROM rt_scope")
        for start in range(0, len(ids), 500):
            _SCOPE.insert([(i,) for i in ids[start:start + 500]], columns=[_SCOPE.customer_id]).execute(database)
        current = {}
        for segment_id, customer_id in (SegmentMember.select(SegmentMember.segment, SegmentMember.customer)
                                        .where(SegmentMember.customer.in_(_SCOPE.select(_SCOPE.customer_id)))
                                        .tuples()):
            current.setdefault(segment_id, set()).add(customer_id)
        for segment in dynamic_segments_in_order():
            if segment.lock_run_id is not None:
                complete = False
                continue
            compiled = _scoped_sql(segment, at, today, fields, load_catalogue)
            if compiled is None:
                continue
            matched = {row[0] for row in database.execute_sql(*compiled)}
            have = current.get(segment.id, set())
            entered, exited = sorted(matched - have), sorted(have - matched)
            if entered or exited:
                _log_batch_changes(segment.id, entered, exited, at)
            total_entered += len(entered)
            total_exited += len(exited)
    return total_entered, total_exited, complete


def recheck_changed_job(limit=REALTIME_BATCH):
    """RQ job (every few seconds): re-check the customers marked as changed."""
    from .jobs import setup_worker_database
    from .queue import Single
    setup_worker_database()
    # Every worker's cron scheduler queues this job: one at a time is enough
    # (two would re-check the same marks and one would fail on the other's rows).
    with Single("segmento:lock:realtime-recheck", 30) as lock:
        if not lock.held:
            return 0
        return _recheck_changed(limit)


def _recheck_changed(limit):
    with database.connection_context():
        handled = 0
        while True:
            marks = changes.pending(limit)
            if not marks:
                return handled
            ids = [customer_id for customer_id, _ in marks]
            from .events import record_for_customers  # order events first: segments read them
            record_for_customers(ids, tz=settings.TZ)
            _, _, complete = recheck_customers(ids)
            if not complete:
                return handled  # a full run holds a segment: try again next tick
            changes.clear(marks)
            handled += len(marks)


# --- schedule and reaper ---------------------------------------------------

def schedule_due_job():
    """RQ cron job: queue runs of dynamic segments whose interval has passed,
    and fail and re-queue runs abandoned by dead workers."""
    from .jobs import setup_worker_database
    setup_worker_database()
    with database.connection_context():
        reap_abandoned()
        return [run.id for run in schedule_due()]


def schedule_due(now=None):
    now = now or utcnow()
    busy = {s for (s,) in SegmentRun.select(SegmentRun.segment)
            .where(SegmentRun.status.in_(("queued", "running"))).tuples()}
    runs = []
    for segment in list(Segment.select().where(Segment.active == True, Segment.type == "dynamic",  # noqa: E712
                                               Segment.source == "definition")):
        if segment.id in busy:
            continue
        interval = datetime.timedelta(minutes=segment.interval_minutes or settings.SEGMENT_INTERVAL_MINUTES)
        if segment.computed_at is None or segment.computed_at + interval <= now:
            runs.append(request_run(segment, trigger="schedule"))
    return runs


def _forget_job(segment_id):
    """Drop the RQ job of a run whose worker died: it would otherwise stay
    "started" forever and block new jobs with the same id."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from .queue import connection
    try:
        Job.fetch(job_id(segment_id), connection=connection()).delete()
    except NoSuchJobError:
        pass


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
        _forget_job(run.segment_id)
        # Retried at once: the data was fine, the worker was not.
        _fail(run.id, _("The worker stopped during the run (killed or crashed); "
                        "the previous members are kept."), retry=True, delay=False)
        reaped.append(run.id)
    for run in list(SegmentRun.select().where(SegmentRun.status == "queued")):
        if utcnow() - run.created_at > datetime.timedelta(minutes=1):
            enqueue(run.segment_id)
    return reaped


# --- system segments -------------------------------------------------------

def _orders_block(*having):
    return {"version": 1, "match": "all", "blocks": [
        {"entity": "order", "match": "all", "filters": [], "having": list(having), "having_match": "all"}]}


SYSTEM_SEGMENTS = [
    ("system_new", "New customers (first order in the last 30 days)",
     _orders_block({"agg": "first_at", "op": "relative", "from_days": -30, "to_days": 0})),
    ("system_active", "Active customers (ordered in the last 90 days)",
     _orders_block({"agg": "last_at", "op": "relative", "from_days": -90, "to_days": 0})),
    ("system_sleeping", "Sleeping customers (last order 90 to 365 days ago)",
     _orders_block({"agg": "last_at", "op": "relative", "from_days": -365, "to_days": -91})),
    ("system_lost", "Lost customers (last order over 365 days ago)",
     _orders_block({"agg": "last_at", "op": "relative", "to_days": -366})),
    ("system_never_ordered", "Never ordered",
     _orders_block({"agg": "count", "op": "between", "from": 0, "to": 0})),
]


def ensure_system_segments():
    """Create the system segments that are missing; returns the codes created.

    They are dynamic, active and cannot be deleted; the scheduler computes
    them (never computed yet means due).
    """
    created = []
    existing = {code for (code,) in Segment.select(Segment.code).tuples()}
    for code, name, definition in SYSTEM_SEGMENTS:
        if code not in existing:
            Segment.create(code=code, name=name, type="dynamic", active=True, system=True,
                           in_analytics=True, definition=definition)
            created.append(code)
    return created
