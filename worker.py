"""Starts the RQ worker (with its scheduler for delayed jobs) and RQ's cron
scheduler for periodic work. Needs REDIS_URL."""

import multiprocessing
import sys

from rq import Worker
from rq.cron import CronScheduler

from webapp import settings
from webapp.cron import periodic
from webapp.db import init_from_settings
from webapp.queue import QUEUE_NAMES, connection


def run_cron():
    cron = CronScheduler(connection=connection(), logging_level=settings.WORKER_LOG_LEVEL)
    for func, every, queue in periodic():
        # every: seconds between runs, or a cron string ("30 2 * * *": nightly)
        when = {"cron": every} if isinstance(every, str) else {"interval": every}
        cron.register(func, queue_name=queue, **when)
    cron.start()


def main():
    init_from_settings()
    cron = multiprocessing.Process(target=run_cron, name="segmento-cron", daemon=True)
    cron.start()
    try:
        Worker(list(QUEUE_NAMES), connection=connection()).work(
            with_scheduler=True, logging_level=settings.WORKER_LOG_LEVEL
        )
    finally:
        if cron.is_alive():
            cron.terminate()
            cron.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
