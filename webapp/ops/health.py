"""The health of one Segmento installation as a load balancer sees it.

Flask-free: `check(redis)` answers from the database and the queue server.
Every check reports only a status and a number: nothing internal (no SQL,
error text or addresses) leaves this module.
"""

import time

from rq import Queue, Worker

from ..db import database
from ..queue import QUEUE_NAMES
from .scheduler import last_tick

# The scheduler enqueues the real-time re-check every few seconds: a tick
# older than this means no scheduler runs (or it cannot reach the queue).
SCHEDULER_STALE_SECONDS = 120
# A job waiting longer than this means the workers are gone or swamped.
QUEUE_STALE_SECONDS = 600


def _database_ok():
    try:
        database.execute_sql("SELECT 1").fetchone()
        return True
    except Exception:  # noqa: BLE001 - any failure is "down"; the reason stays in the server log
        return False


def oldest_queued_age(redis, now=None):
    """Seconds the oldest job waiting in any queue has waited (0 when none)."""
    now = now or time.time()
    oldest = 0.0
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=redis)
        job_id = queue.get_job_ids(0, 1)
        if not job_id:
            continue
        job = queue.fetch_job(job_id[0])
        if job is not None and job.enqueued_at is not None:
            oldest = max(oldest, now - job.enqueued_at.timestamp())
    return oldest


def check(redis, now=None):
    """(healthy, report): the report is a dict of checks, each with `ok`."""
    now = now or time.time()
    report = {"database": {"ok": _database_ok()}}
    try:
        redis.ping()
        workers = len(Worker.all(connection=redis))
        tick = last_tick(redis)
        tick_age = None if tick is None else round(max(0.0, now - tick), 1)
        queued_age = round(oldest_queued_age(redis, now), 1)
        report["redis"] = {"ok": True}
        report["workers"] = {"ok": workers > 0, "live": workers}
        report["scheduler"] = {
            "ok": tick_age is not None and tick_age < SCHEDULER_STALE_SECONDS,
            "last_tick_seconds_ago": tick_age,
        }
        report["queue"] = {
            "ok": queued_age < QUEUE_STALE_SECONDS,
            "oldest_queued_seconds": queued_age,
        }
    except Exception:  # noqa: BLE001 - the queue server is down or unreachable
        report["redis"] = {"ok": False}
        report["workers"] = {"ok": False, "live": None}
        report["scheduler"] = {"ok": False, "last_tick_seconds_ago": None}
        report["queue"] = {"ok": False, "oldest_queued_seconds": None}
    return all(item["ok"] for item in report.values()), report
