"""`make serve` (webapp.serve) as real processes: gunicorn, an RQ worker pool
and one cron scheduler; graceful reload and shutdown lose no job and cut no request."""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from procs import ROOT, alive, descendants, free_port, kill_tree, wait_for


def get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:  # no answer: the error stands in for the status, for the assertion's message
        return f"{type(exc).__name__}: {exc}", b""


class Stack:
    def __init__(self, tmp_path, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.log = tmp_path / "serve.log"
        full = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
        full.update(
            SEGMENTO_INSTANCE=str(tmp_path / "instance"),
            BIND=f"127.0.0.1:{self.port}",
            PYTHONUNBUFFERED="1",
            GRACEFUL_TIMEOUT="30",
        )
        full.update({k: str(v) for k, v in env.items()})
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "webapp.serve"],
                cwd=ROOT,
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self):
        return self.log.read_text()

    def wait_healthy(self, timeout=90):
        wait_for(
            lambda: get(self.url + "/healthz")[0] == 200,
            timeout=timeout,
            what=lambda: "a healthy stack:\n" + self.text()[-3000:],
        )

    def kill(self):
        if self.proc.poll() is None:
            kill_tree(self.proc.pid)
            self.proc.wait(10)


@pytest.fixture
def stacks():
    started = []
    yield lambda tmp_path, **env: started.append(Stack(tmp_path, **env)) or started[-1]
    for stack in started:
        stack.kill()


def cmdlines(pid):
    """Command lines of the supervisor's children and of gunicorn's processes
    (not RQ's work-horses, forked for one job each)."""
    out = []
    for child in descendants(pid):
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            line = Path(f"/proc/{child}/cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        if parent == pid or "gunicorn" in line:
            out.append(line)
    return out


def test_one_box_defaults_serve_with_an_embedded_queue_and_stop_cleanly_on_sigterm(stacks, tmp_path):
    stack = stacks(tmp_path, WEB_CONCURRENCY=2, WORKERS=2)
    stack.wait_healthy()
    _, body = get(stack.url + "/healthz")
    assert b'"live":2' in body.replace(b" ", b"")
    assert get(stack.url + "/login")[0] == 200
    procs = cmdlines(stack.proc.pid)
    assert sum("gunicorn" in c for c in procs) == 3  # the master and two processes
    assert sum("worker.py --no-cron" in c for c in procs) == 2
    assert sum("worker.py --cron-only" in c for c in procs) == 1
    assert "embedded queue server" in stack.text()
    children = descendants(stack.proc.pid)
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(60) == 0
    assert not [pid for pid in children if alive(pid)]
    assert "* stopped" in stack.text()


def test_graceful_reload_and_stop_finish_the_running_job_and_every_request(stacks, tmp_path, queue_server):
    from rq.job import Job

    from webapp.queue import connection, get_queue

    connection().flushdb()
    stack = stacks(tmp_path, REDIS_URL=queue_server, WEB_CONCURRENCY=2, WORKERS=1)
    stack.wait_healthy()

    answers, stop = [], threading.Event()

    def browse():
        while not stop.is_set():
            # A request that arrives while the reloaded processes load the app
            # waits in the listen backlog (seconds on a busy machine): slow, not cut.
            answers.append(get(stack.url + "/login", timeout=60)[0])

    browser = threading.Thread(target=browse)
    browser.start()
    try:
        # SIGHUP while a job runs: the job finishes, a new worker takes the next one.
        first = get_queue().enqueue("time.sleep", 4, job_id="slow-1")
        wait_for(
            lambda: first.get_status(refresh=True) == "started",
            timeout=30,
            what="job started",
        )
        stack.proc.send_signal(signal.SIGHUP)
        second = get_queue().enqueue("time.sleep", 0, job_id="after-reload")
        wait_for(
            lambda: second.get_status(refresh=True) == "finished",
            timeout=60,
            what=lambda: "job after reload:\n" + stack.text()[-3000:],
        )
        # The new worker took it while the old one was still finishing its job.
        assert Job.fetch("slow-1", connection=connection()).get_status() in (
            "started",
            "finished",
        )
        wait_for(
            lambda: first.get_status(refresh=True) == "finished",
            timeout=30,
            what="slow-1 finished",
        )
        assert "reloading" in stack.text()

        # SIGTERM while a job runs: it finishes before the worker exits.
        third = get_queue().enqueue("time.sleep", 4, job_id="slow-2")
        wait_for(
            lambda: third.get_status(refresh=True) == "started",
            timeout=30,
            what="job started",
        )
        time.sleep(0.5)
    finally:
        stop.set()
        browser.join()
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(60) == 0
    assert Job.fetch("slow-2", connection=connection()).get_status() == "finished"
    assert answers and set(answers) == {200}, sorted(set(map(str, answers)))


def test_only_one_cron_scheduler_runs_among_two_machines_and_a_killed_leader_is_replaced(
    stacks, tmp_path, queue_server
):
    from webapp.ops.scheduler import leader
    from webapp.queue import connection

    redis = connection()
    redis.flushdb()
    shared = {
        "REDIS_URL": queue_server,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "WEB_CONCURRENCY": 1,
        "WORKERS": 1,
    }
    a = stacks(tmp_path / "a", **shared)
    a.wait_healthy()
    b = stacks(tmp_path / "b", **shared)
    b.wait_healthy()
    from rq.cron import CronScheduler

    time.sleep(2)
    assert len(CronScheduler.all(redis)) == 1
    holder = leader(redis)
    holder_pid = int(holder.split(":")[1])
    os.kill(holder_pid, signal.SIGKILL)  # the leader's machine loses its scheduler
    wait_for(lambda: leader(redis) not in (None, holder), timeout=60, what="a new leader")
    assert int(leader(redis).split(":")[1]) != holder_pid
    wait_for(
        lambda: get(a.url + "/healthz")[0] == 200 and get(b.url + "/healthz")[0] == 200,
        timeout=60,
        what="healthy after the leader died",
    )
