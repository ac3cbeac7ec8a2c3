"""CPU time and memory of processes, read from Linux /proc, for the benchmark scripts.

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


def _command(pid):
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        fields = stat_fields(pid)
    except OSError:
        return None
    return comm, cmdline, fields


def cpu_by_part(classify):
    """CPU seconds so far of every process on the machine, summed by the part
    `classify(comm, cmdline)` names (None: not counted). Each process counts
    its own time plus that of its ended, waited-for children (the work-horses
    a worker forked, the backends the postmaster reaped), so a part's figure
    taken twice gives the CPU it used in between, short of processes that
    ended with a parent in another part."""
    parts = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = _command(int(entry.name))
        if found is None:
            continue
        comm, cmdline, fields = found
        part = classify(comm, cmdline)
        if part is not None:
            ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
            parts[part] = parts.get(part, 0.0) + ticks / TICK
    return parts


def pss_kb(pid):
    """Proportional set size of `pid` and its descendants (shared pages split between the
    processes sharing them, so the sum counts each page once), in kB; 0 once they are gone."""
    total = 0
    for proc in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{proc}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total


def _descendants(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]
