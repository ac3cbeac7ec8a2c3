"""The import job in a real worker process (worker.py) on the real queue
server: progress in the run row and job.meta, a predictable job id that is
never queued twice, and a worker killed mid-import leaving whole batches only,
after which running again completes the import idempotently."""

import datetime

import pytest
from procs import Workers, kill_tree, wait_for
from rq.job import Job

from webapp.db import database
from webapp.imports import jobs
from webapp.models import ChangedCustomer, Customer, ImportRun, utcnow
from webapp.queue import connection, get_queue


@pytest.fixture
def start_worker(db_url, queue_server, tmp_path):
    workers = Workers(tmp_path, DATABASE_URL=db_url, REDIS_URL=queue_server, SEGMENTO_INSTANCE=tmp_path / "instance")
    # without the cron scheduler: its real-time re-check would consume the
    # change marks the test counts while the import is still writing them
    yield lambda: workers.start("--no-cron")
    workers.stop()


@pytest.fixture(autouse=True)
def empty_queue(queue_server):
    connection().flushdb()


def make_run(imports_dir, rows, name="big.csv", options=None):
    path = imports_dir / name
    with open(path, "w") as f:
        f.write("external_id,first_name,city\n")
        for i in range(rows):
            f.write(f"w{i},Name {i},City {i % 50}\n")
    return ImportRun.create(
        kind="customers", file_name=name, file_path=str(path), origin="web", status="draft", options=options
    )


def test_worker_runs_the_import_and_reports_progress(db, imports_dir, start_worker, queue_server):
    run = make_run(imports_dir, 12000)
    job = jobs.enqueue(run)
    assert job.id == f"import-{run.id}"
    again = jobs.enqueue(ImportRun.get_by_id(run.id))  # never queued twice
    assert again.id == job.id and get_queue(url=queue_server).count == 1
    start_worker()
    wait_for(lambda: ImportRun.get_by_id(run.id).status == "done", what="the import")
    run = ImportRun.get_by_id(run.id)
    assert (run.rows_total, run.rows_imported, run.rows_new) == (12000, 12000, 12000)
    assert Customer.select().count() == 12000
    assert ChangedCustomer.select().count() == 12000
    meta = Job.fetch(job.id, connection=connection()).get_meta()
    assert meta["rows_done"] == 12000 and meta["status"] == "done"
    assert not jobs.worker_lost(run)


def test_killed_worker_leaves_whole_batches_and_running_again_completes(db, imports_dir, start_worker, queue_server):
    # The normal path (a file this size would take the bulk path, which commits all at once).
    run = make_run(imports_dir, 120000, options={"bulk": False})
    jobs.enqueue(run)
    worker = start_worker()
    wait_for(lambda: ImportRun.get_by_id(run.id).rows_done >= 10000, what="some batches", timeout=120)
    kill_tree(worker.pid)
    worker.wait(10)
    database.close()
    run = ImportRun.get_by_id(run.id)
    stored = Customer.select().count()
    assert run.status == "running"
    assert stored == run.rows_imported  # counters commit with their batch
    assert stored % 5000 == 0 and 0 < stored < 120000  # whole batches only
    # The page offers "Run again" once the worker's heartbeats are overdue.
    assert not jobs.worker_lost(run)
    assert jobs.worker_lost(run, now=utcnow() + datetime.timedelta(minutes=5))

    jobs.enqueue(run, force=True)
    start_worker()
    wait_for(lambda: ImportRun.get_by_id(run.id).status == "done", what="the second run", timeout=180)
    run = ImportRun.get_by_id(run.id)
    assert Customer.select().count() == 120000
    assert (run.rows_imported, run.rows_rejected) == (120000, 0)
    assert run.rows_new == 120000 - stored  # the first attempt's batches were already there, unchanged
    assert Customer.get(Customer.external_id == "w119999").city == "City 49"


def test_the_report_speaks_the_language_of_who_started_the_import(db, imports_dir, start_worker, make_user):
    # A job has no request: the reasons were English in a Vietnamese marketer's report.
    user = make_user(email="lan@example.com", role="marketer")
    user.language = "vi"
    user.save()
    path = imports_dir / "dates.csv"
    path.write_text("external_id,birth_date\nd1,01.02.1990\nd2,31.02.1990\n")
    run = ImportRun.create(
        kind="customers", file_name="dates.csv", file_path=str(path), origin="web", status="draft", user=user
    )
    jobs.enqueue(run)
    start_worker()
    wait_for(lambda: ImportRun.get_by_id(run.id).status == "done", what="the import")
    run = ImportRun.get_by_id(run.id)
    (rejection,) = run.report["rejections"]
    assert rejection["line"] == 3 and rejection["reason"].startswith("“31.02.1990” không phải là ngày")
    rejected = open(run.rejected_path, encoding="utf-8-sig").read()
    assert "dòng 3, cột birth_date: “31.02.1990” không phải là ngày" in rejected
