"""Runs in a real worker process on the real queue server: runs finish,
real-time entries appear within seconds, and a worker killed mid-run leaves
no half-written membership and its run is retried."""

import time

import pytest
from procs import Workers, descendants, kill_tree
from procs import wait_for as procs_wait_for

from webapp.db import database
from webapp.models import Customer, Segment, SegmentChange, SegmentRun
from webapp.segments import changes, runs, schedule

from .test_runs import make_segment, members, replayed


@pytest.fixture
def start_worker(db_url, queue_server, tmp_path):
    workers = Workers(
        tmp_path, DATABASE_URL=db_url, REDIS_URL=queue_server, REALTIME_INTERVAL_SECONDS=1, RUN_HEARTBEAT_SECONDS=0.5
    )
    yield workers.start
    workers.stop()


@pytest.fixture(autouse=True)
def empty_queues(queue_server):
    from webapp.queue import connection

    connection().flushdb()


def wait_for(predicate, timeout=30, what="condition"):
    return procs_wait_for(predicate, timeout=timeout, what=what, interval=0.2)


def run_status(run_id):
    return SegmentRun.get_by_id(run_id).status


def test_worker_runs_segment_and_follows_changes_in_real_time(db, start_worker):
    for ext, city in [("a", "Москва"), ("b", "Tver")]:
        Customer.create(external_id=ext, city=city)
    segment = make_segment()
    run = runs.request_run(segment)
    start_worker()
    wait_for(lambda: run_status(run.id) == "done", what="the run")
    assert members(segment) == {"a"}
    # a committed change shows up as a logged entry within seconds
    customer = Customer.get(Customer.external_id == "b")
    customer.city = "москва"
    customer.save()
    changes.mark_changed([customer.id])
    changed_at = time.time()
    wait_for(
        lambda: SegmentChange.select().where(SegmentChange.customer == customer).exists(),
        timeout=15,
        what="the real-time entry",
    )
    assert time.time() - changed_at < 10
    assert members(segment) == {"a", "b"} == replayed(segment)


def test_killed_worker_leaves_previous_membership_and_run_is_retried(db, start_worker, monkeypatch):
    from webapp import settings

    monkeypatch.setattr(settings, "RUN_HEARTBEAT_SECONDS", 0.5)  # as the worker's env says
    for ext, city in [("a", "Москва"), ("b", "Tver"), ("c", "Москва")]:
        Customer.create(external_id=ext, city=city)
    segment = make_segment()
    first = runs.request_run(segment)
    assert runs.execute_run(first.id)
    assert members(segment) == {"a", "c"}
    Customer.update(city="Москва", city_ci="москва").where(Customer.external_id == "b").execute()
    Customer.update(city="Tver", city_ci="tver").where(Customer.external_id == "a").execute()

    run = runs.request_run(segment, trigger="user")
    worker = start_worker(SEGMENTO_FAULT_PAUSE_BEFORE_COMMIT=60)
    wait_for(lambda: run_status(run.id) == "running", what="the run to start")
    time.sleep(1.5)  # the run has written its diff and waits before committing
    horses = descendants(worker.pid)
    assert horses, "the run should be in a work-horse process"
    kill_tree(worker.pid)
    worker.wait(10)

    database.close()
    assert members(segment) == {"a", "c"} == replayed(segment)  # nothing half-written
    assert run_status(run.id) == "running"
    time.sleep(2)  # heartbeat (3 x 0.5 s) has expired
    assert schedule.reap_abandoned() == [run.id]
    failed = SegmentRun.get_by_id(run.id)
    assert failed.status == "failed" and "worker stopped" in failed.error
    assert Segment.get_by_id(segment.id).lock_run_id is None
    retry = SegmentRun.get(SegmentRun.segment == segment, SegmentRun.trigger == "retry")

    start_worker()
    wait_for(lambda: run_status(retry.id) == "done", timeout=40, what="the retry run")
    assert members(segment) == {"b", "c"} == replayed(segment)
    done = SegmentRun.select().where(SegmentRun.segment == segment, SegmentRun.status == "done").count()
    assert done == 2  # the first run and the retry; the killed one never counted
