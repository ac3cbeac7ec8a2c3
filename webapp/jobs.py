"""Background jobs: setup for the worker process and the periodic schedule.

Jobs take ids and primitives, re-load rows inside the job, and are
idempotent: re-running one after a crash does no harm.
"""
from . import settings
from .db import database, init_database


def setup_worker_database():
    """Bind the database in the worker process (and in each job's work-horse)."""
    if database.obj is None:
        init_database(settings.DATABASE_URL)


# (function, interval in seconds) pairs run by the cron scheduler.
PERIODIC = []
