"""Process helpers for tests that start and kill real processes."""
import os
import signal
from pathlib import Path


def descendants(pid):
    """Pids of every process below `pid` (read from /proc)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_tree(pid, sig=signal.SIGKILL):
    """Signal a process and all its descendants (RQ's work-horse runs in its
    own session, so killing the process group would miss it)."""
    for target in [pid] + descendants(pid):
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass
