"""The dashboard's figures computed by the RQ worker, and kept in Redis.

Big dashboards (a year of months over segments of hundreds of thousands of
members) take seconds to tens of seconds: the page queues this job and shows
its progress, then the figures. They are kept under `analytics.cache_key` (the
filters and a data version: the last order, the last logged change, the
segments' sizes) for CACHE_SECONDS, so the same dashboard comes at once the
next time while nothing changed; the expiry bounds how long an order changed
in place (same last id) goes unseen. The latest figures of the same filters
are kept a week longer, whatever their data version: while new ones are
computed (orders keep coming in), the page shows those, with their time.

The nightly job (ANALYTICS_NIGHTLY_CRON) computes the dashboards the page
opens with (no segment chosen; each preset period, both modes), so that
their first view of the day shows figures at once.

One job per key, with a predictable id (`analytics-<hash of the key>`), so a
dashboard is never computed twice at once. The job takes the filters as query
args and primitives; running it again recomputes and stores the same figures.
"""

import datetime
import hashlib
import zoneinfo

from werkzeug.datastructures import MultiDict

from .. import queue, settings
from ..db import database, init_from_settings
from ..localtime import zone
from . import service as analytics

CACHE_SECONDS = 3600
LATEST_SECONDS = 7 * 24 * 3600
JOB_TIMEOUT = 3600


def job_id(key):
    return queue.job_id("analytics", hashlib.sha1(key.encode()).hexdigest()[:24])


def cached(key):
    """The figures stored under `key`, or None (none, or no queue server)."""
    return queue.read_json(key)


def latest_key(key):
    """Where the latest figures of the same filters are kept, whatever their data version."""
    return "analytics-latest:" + key.removeprefix("analytics:").rsplit("|", 3)[0]


def latest(key):
    """{"figures", "at" (naive UTC, ISO)} last computed for the filters of `key`, or None: shown
    while the figures of the current data are computed."""
    return queue.read_json(latest_key(key))


def store(key, figures, now=None):
    """Keep `figures` under `key`, and as the latest of its filters (best effort: without a queue
    server, nothing is kept)."""
    from ..models import utcnow

    latest_figures = {"figures": figures, "at": (now or utcnow()).isoformat()}
    return queue.write_json(key, figures, CACHE_SECONDS) and queue.write_json(
        latest_key(key), latest_figures, LATEST_SECONDS
    )


def compute_job(args, tz_name, now, key):
    """The job: the figures of the dashboard of query `args` ([name, value] pairs) in time zone
    `tz_name` at `now` (naive UTC, ISO), stored under `key`. Progress in job.meta (steps)."""
    init_from_settings()
    with database.connection_context():
        filters = analytics.Filters.from_args(MultiDict([tuple(pair) for pair in args]))
        board = analytics.plan(filters, zoneinfo.ZoneInfo(tz_name), datetime.datetime.fromisoformat(now))
        if board is None or not board.chosen:
            return None
        store(key, analytics.compute(board, lambda done, total: queue.report_progress(done=done, total=total)))
        return key


def enqueue(args, tz_name, now, key):
    """Queue the figures of `key` (unless they are being computed already)."""
    return queue.enqueue_once(
        compute_job,
        [list(pair) for pair in args],
        tz_name,
        now.isoformat(),
        key,
        job_id=job_id(key),
        job_timeout=JOB_TIMEOUT,
        result_ttl=600,
        failure_ttl=24 * 3600,
        description="analytics figures",
    )


def status(key):
    """(status, steps done, steps in all) of the job computing `key`: status None when there is
    none, else an RQ JobStatus value; steps None until it has started."""
    state, meta = queue.job_state(job_id(key))
    return state, meta.get("done"), meta.get("total")


def forget_failed(key):
    """Delete the failed job of `key`, so the next request queues it again."""
    queue.forget(job_id(key), statuses=queue.FAILED)


def nightly_job():
    """RQ cron job (ANALYTICS_NIGHTLY_CRON): compute and keep the dashboards the page opens with
    (no segment chosen: the first segments in analytics), for each preset period in both modes.
    Every worker's cron scheduler queues it: the first to take the lock computes, the others
    return. Returns how many dashboards were computed."""
    from ..models import utcnow

    init_from_settings()
    with queue.Single("segmento:lock:analytics-nightly", 60) as lock:
        if not lock.held:
            return None
        with database.connection_context():
            tz, now, done = zone(settings.tz()), utcnow(), 0
            for period in analytics.PRESETS:
                for mode in analytics.MODES:
                    board = analytics.plan(
                        analytics.Filters.from_args(MultiDict({"period": period, "mode": mode})), tz, now
                    )
                    if board is None or not board.chosen:
                        continue
                    store(analytics.cache_key(board), analytics.compute(board), now=now)
                    done += 1
            return done
