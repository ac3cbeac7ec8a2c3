"""Starts the RQ worker (with its scheduler for delayed jobs) and RQ's cron
scheduler for periodic work. Needs REDIS_URL."""

import logging
import multiprocessing
import sys

from webapp import settings
from webapp.cron import periodic
from webapp.db import init_from_settings
from webapp.ops import logs, scheduler
from webapp.ops.metrics import MeasuredWorker
from webapp.queue import QUEUE_NAMES, connection


def run_cron():
    # One scheduler among every worker of every machine: this one runs only
    # while it holds the leader lease (webapp.ops.scheduler).
    scheduler.run(scheduler.make_cron(periodic(), settings.WORKER_LOG_LEVEL), connection)


def main(argv=()):
    # --no-cron: a worker only; --cron-only: the scheduler candidate only (make serve)
    init_from_settings()
    logs.setup(settings.LOG_FORMAT, logging.INFO if settings.ACCESS_LOG else logging.WARNING)
    if "--cron-only" in argv:
        run_cron()
        return 0
    cron = None
    if "--no-cron" not in argv:
        cron = multiprocessing.Process(target=run_cron, name="segmento-cron", daemon=True)
        cron.start()
    try:
        MeasuredWorker(list(QUEUE_NAMES), connection=connection()).work(
            with_scheduler=True, logging_level=settings.WORKER_LOG_LEVEL
        )
    finally:
        if cron is not None and cron.is_alive():
            cron.terminate()
            cron.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
