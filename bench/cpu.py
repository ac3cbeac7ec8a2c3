"""CPU time of processes, read from Linux /proc, for the benchmark scripts.

/proc counts in clock ticks (10 ms): read a figure as a mean over many
operations, not as the cost of one."""

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (utime is [11])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid, children=False):
    """User + system CPU seconds of a process so far; with `children`, plus
    those of its children that have ended (RQ's work-horses, PostgreSQL's
    parallel workers under the postmaster)."""
    fields = stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def backend_pid():
    """The PostgreSQL backend process of webapp's database connection, or None on SQLite."""
    from webapp.db import database, is_postgres

    if not is_postgres():
        return None
    return database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
