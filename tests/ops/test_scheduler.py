"""One cron scheduler among many candidates (webapp.ops.scheduler), as real
`worker.py --cron-only` processes on the real queue server."""

import os
import signal
import subprocess
import sys
import time

import pytest
from procs import ROOT, kill_tree


def wait_until(predicate, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def start_candidate(queue_server, tmp_path):
    from webapp.queue import connection

    connection().flushdb()
    env = dict(os.environ, REDIS_URL=queue_server, DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", PYTHONUNBUFFERED="1")
    procs = []

    def start():
        procs.append(
            subprocess.Popen(
                [sys.executable, "worker.py", "--cron-only"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            kill_tree(proc.pid)
            proc.wait(10)


def schedulers(redis):
    from rq.cron import CronScheduler

    return CronScheduler.all(redis)


def test_three_candidates_run_one_scheduler_and_hand_over_on_stop_and_after_an_emptied_server(start_candidate):
    from webapp.ops.scheduler import leader
    from webapp.queue import connection

    redis = connection()
    procs = [start_candidate() for _ in range(3)]
    wait_until(lambda: len(schedulers(redis)) == 1, what="one scheduler")
    time.sleep(3)
    assert len(schedulers(redis)) == 1  # the others stand by
    first = leader(redis)

    # A clean stop hands the lease over at once (no 30 s wait).
    holder = next(p for p in procs if str(p.pid) == first.split(":")[1])
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(20) == 0
    wait_until(lambda: leader(redis) not in (None, first), timeout=20, what="a new leader")
    wait_until(lambda: len(schedulers(redis)) == 1, timeout=20, what="its scheduler")

    # The queue server restarts empty: one candidate leads again, still only one.
    redis.flushdb()
    wait_until(
        lambda: leader(redis) is not None and len(schedulers(redis)) == 1,
        timeout=40,
        what="a leader after the server was emptied",
    )
    time.sleep(3)
    assert len(schedulers(redis)) == 1


def test_a_killed_leader_on_this_machine_is_replaced_without_waiting_for_its_lease(start_candidate):
    from webapp.ops.scheduler import leader
    from webapp.queue import connection

    redis = connection()
    first_proc = start_candidate()
    wait_until(lambda: leader(redis) is not None, what="a leader")
    first = leader(redis)
    second_proc = start_candidate()
    os.kill(first_proc.pid, signal.SIGKILL)  # not reaped yet: a zombie until wait()
    started = time.time()
    wait_until(lambda: leader(redis) not in (None, first), timeout=25, what="the second candidate leading")
    assert time.time() - started < 25  # well before the 30 s lease ran out
    assert leader(redis).split(":")[1] == str(second_proc.pid)
    first_proc.wait()
