"""Process helpers for tests that start and kill real processes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    own session, so killing the process group would miss it).

    The tree is stopped first, until no new process appears: a worker forks
    a work-horse every second or two, and one forked after the descendants
    were listed would outlive the kill, an orphan still working on the test's
    database and queue."""
    stopped = set()
    while True:
        found = [p for p in [pid] + descendants(pid) if p not in stopped]
        if not found:
            break
        for target in found:
            try:
                os.kill(target, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            stopped.add(target)
    for target in stopped:
        try:
            os.kill(target, sig)
            if sig != signal.SIGKILL:
                os.kill(target, signal.SIGCONT)  # a stopped process handles other signals once it runs
        except ProcessLookupError:
            pass


ROOT = Path(__file__).resolve().parents[1]


class Workers:
    """Real `worker.py` processes for one test, stopped (with their work-horses)
    by `stop()`. Each writes its output to a log file in `log_dir`; `tails()`
    gives the ends of those logs for failure messages.

    `start(*args, **env)` starts one more (`worker.py *args`) with the base
    environment plus `env`.
    """

    def __init__(self, log_dir, **env):
        self.log_dir = Path(log_dir)
        self.env = {k: str(v) for k, v in env.items()}
        self.procs = []

    def start(self, *args, **env):
        full = dict(os.environ, PYTHONUNBUFFERED="1", WORKER_LOG_LEVEL="INFO", **self.env)
        full.update({k: str(v) for k, v in env.items()})
        log = self.log_dir / f"worker-{len(self.procs)}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "worker.py", *args],
                cwd=ROOT,
                env=full,
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc.log = log
        self.procs.append(proc)
        return proc

    def tails(self, size=3000):
        return "\n".join(p.log.read_text()[-size:] for p in self.procs if p.log.exists())

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait(10)


def wait_for(predicate, timeout=60, what="condition", interval=0.1, logs=""):
    """Poll `predicate` until it returns something true (returned) or time out.

    The test's database connection, if it has one, is closed before each look
    so that other processes' commits are seen (a test of servers alone leaves
    the database unbound). `what` and `logs`: text (or a callable giving it,
    called at the timeout) for the timeout message.
    """
    from webapp.db import database

    deadline = time.time() + timeout
    while time.time() < deadline:
        if database.obj is not None:
            database.close()
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {_text(what)}\n{_text(logs)}")


def _text(text):
    return text() if callable(text) else text
