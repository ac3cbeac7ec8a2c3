"""Prometheus metrics.

Two sources, so that any number of web and worker machines report one truth:
- per process, in prometheus-client's multiprocess mode when
  PROMETHEUS_MULTIPROC_DIR is set (gunicorn's processes): HTTP requests;
- read at scrape time by `SegmentoCollector`: queue depths from Redis, job
  durations and failures (kept in Redis by `MeasuredWorker`, the one place
  every job passes through), and from the database segment runs, messages
  sent and failed by channel, and import rows.
"""

import os
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry

from ..db import database
from ..queue import QUEUE_NAMES, PromptStop
from . import logs

JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
JOB_STATS_KEY = "segmento:metrics:jobs"

# Not in the global registry: `exposition` builds one registry per scrape.
HTTP_REQUESTS = Counter(
    "segmento_http_requests",
    "HTTP requests answered",
    ["method", "status"],
    registry=None,
)
HTTP_SECONDS = Histogram(
    "segmento_http_request_duration_seconds",
    "Time to answer an HTTP request",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)


def observe_request(method, status, seconds):
    HTTP_REQUESTS.labels(method, str(status)).inc()
    HTTP_SECONDS.observe(seconds)


def record_job(redis, func, seconds, failed):
    """Add one finished job to the cluster-wide job statistics in Redis."""
    with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(JOB_STATS_KEY, f"count|{func}", 1)
        pipe.hincrbyfloat(JOB_STATS_KEY, f"sum|{func}", seconds)
        if failed:
            pipe.hincrby(JOB_STATS_KEY, f"failed|{func}", 1)
        for bound in JOB_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(JOB_STATS_KEY, f"le{bound}|{func}", 1)
        pipe.execute()


def job_name(job):
    """The job's function name without its module path."""
    return (job.func_name or "?").rsplit(".", 1)[-1]


class MeasuredWorker(PromptStop, Worker):
    """RQ's worker, timing each job in the worker process (not the forked
    work-horse, which lives for one job): a log line and the job statistics;
    its stop does not wait on its pubsub thread (`queue.PromptStop`)."""

    def execute_job(self, job, queue):
        started = time.monotonic()
        try:
            super().execute_job(job, queue)
        finally:
            seconds = time.monotonic() - started
            try:
                status = job.get_status(refresh=True)
                status = getattr(status, "value", status) or "unknown"
            except Exception:  # noqa: BLE001 - the job expired or the server went away
                status = "unknown"
            logs.job_line(job.id, job_name(job), queue.name, status, seconds)
            try:
                record_job(self.connection, job_name(job), seconds, failed=status == "failed")
            except Exception:  # noqa: BLE001 - statistics never fail a job
                logs.JOBS.warning("job statistics not recorded for %s", job.id)


class SegmentoCollector:
    """Metrics read when scraped, from Redis (`redis_factory()`) and the database."""

    def __init__(self, redis_factory):
        self.redis_factory = redis_factory

    def collect(self):
        yield from self._queue_metrics()
        yield from self._database_metrics()

    def _queue_metrics(self):
        try:
            redis = self.redis_factory()
            depth = GaugeMetricFamily(
                "segmento_queue_jobs",
                "Jobs in each queue by state",
                labels=["queue", "state"],
            )
            for name in QUEUE_NAMES:
                queue = Queue(name, connection=redis)
                depth.add_metric([name, "queued"], queue.count)
                depth.add_metric([name, "started"], StartedJobRegistry(name, connection=redis).count)
                depth.add_metric([name, "failed"], FailedJobRegistry(name, connection=redis).count)
            workers = GaugeMetricFamily("segmento_workers", "Live RQ workers")
            workers.add_metric([], len(Worker.all(connection=redis)))
            stats = {k.decode(): v.decode() for k, v in redis.hgetall(JOB_STATS_KEY).items()}
        except Exception:  # noqa: BLE001 - queue server down: no queue metrics, /healthz says why
            return
        yield depth
        yield workers
        funcs = sorted({key.split("|", 1)[1] for key in stats if key.startswith("count|")})
        durations = HistogramMetricFamily("segmento_job_duration_seconds", "Time each job took", labels=["job"])
        failures = CounterMetricFamily("segmento_job_failures", "Jobs that failed", labels=["job"])
        for func in funcs:
            buckets = [(str(b), float(stats.get(f"le{b}|{func}", 0))) for b in JOB_BUCKETS]
            buckets.append(("+Inf", float(stats[f"count|{func}"])))
            durations.add_metric([func], buckets, float(stats.get(f"sum|{func}", 0)))
            failures.add_metric([func], float(stats.get(f"failed|{func}", 0)))
        yield durations
        yield failures

    def _database_metrics(self):
        try:
            runs = database.execute_sql("SELECT status, COUNT(*) FROM segment_run GROUP BY status").fetchall()
            # Per mailing first, along the (mailing, status) index, then by channel.
            sends = database.execute_sql(
                "SELECT m.channel, r.status, SUM(r.n) FROM "
                "(SELECT mailing_id, status, COUNT(*) AS n FROM mailing_recipient "
                " WHERE status IN ('sent', 'failed') GROUP BY mailing_id, status) r "
                "JOIN mailing m ON m.id = r.mailing_id GROUP BY m.channel, r.status"
            ).fetchall()
            rows = database.execute_sql(
                "SELECT COALESCE(SUM(rows_imported), 0), COALESCE(SUM(rows_rejected), 0) FROM import_run"
            ).fetchone()
        except Exception:  # noqa: BLE001 - database down: /healthz says so
            return
        family = CounterMetricFamily("segmento_segment_runs", "Segment runs by status", labels=["status"])
        for status, count in runs:
            family.add_metric([status], count)
        yield family
        sent = CounterMetricFamily("segmento_messages_sent", "Messages sent by channel", labels=["channel"])
        failed = CounterMetricFamily(
            "segmento_messages_failed",
            "Messages that failed by channel",
            labels=["channel"],
        )
        for channel, status, count in sends:
            (sent if status == "sent" else failed).add_metric([channel], int(count))
        yield sent
        yield failed
        imported = CounterMetricFamily("segmento_import_rows", "Import rows by outcome", labels=["outcome"])
        imported.add_metric(["imported"], int(rows[0]))
        imported.add_metric(["rejected"], int(rows[1]))
        yield imported


def exposition(redis_factory):
    """The metrics page's text (Prometheus exposition format)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(HTTP_REQUESTS)
        registry.register(HTTP_SECONDS)
    registry.register(SegmentoCollector(redis_factory))
    return generate_latest(registry)
