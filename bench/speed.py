"""Issue 19, points 3 and 4, each figure beside its limit measured in the same run.

    .venv/bin/python bench/speed.py --database sqlite:////tmp/speed/demo_1m.db
    .venv/bin/python bench/speed.py --database postgresql://postgres:postgres@127.0.0.1:5432/segmento_bench

On a demo database (bench/demo_data.py):
1. count against list: "no order in 180 days" counted the way the compiler
   did before issue 19 (a bare COUNT(*) over the customer table), counted now,
   and listed (the engine's ids query walked to the end); EXPLAIN of each;
2. a first full run in which most of the base enters (email consent, about
   60 % of the demo customers): the engine's count, the engine's query alone
   into a bare temporary table, and `runs.execute_run`; the target is the
   count plus at most 2 s;
3. previews while a full run goes on: another process loops full runs
   (rolled back) of the consent segment; each customer-field and unscoped
   aggregate definition of bench/preview.py is counted through
   `previews.live` --repeat times (p50/p95), beside the same count run alone
   before the background run started;
4. how long a superseded preview takes to stop, with the same run looping:
   a slow count ("no order in 180 days") as one user's preview, and halfway
   through it a newer preview of that user; the time from the newer one's
   start to the moment the older one's thread sees its statement end. Only
   a statement the database interrupted counts: each attempt says how long
   the count had run and how it ended, so a count that finished first (or
   never started) is reported, never measured as a fast stop.

`--skip count previews` measures only point 4 (the full run still goes
first: the background loop runs its segment).

Creates a segment bench_speed_* and deletes it at the end.
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import peewee as pw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cpu import backend_pid, cpu_seconds  # noqa: E402 - bench/cpu.py

from webapp.db import database, init_database, is_postgres, upgrade  # noqa: E402

CONSENT = {
    "version": 1,
    "match": "all",
    "blocks": [
        {"entity": "customer", "match": "all", "filters": [{"field": "email_consent", "op": "is", "value": True}]}
    ],
}
NOT_RECENT = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "order",
            "match": "all",
            "filters": [{"field": "ordered_at", "op": "relative", "from_days": -180}],
            "having": [{"agg": "count", "op": "between", "from": 0, "to": 0}],
        }
    ],
}


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def percentile(values, p):
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def explain(sql, params):
    prefix = "EXPLAIN " if is_postgres() else "EXPLAIN QUERY PLAN "
    return [str(row[-1]) for row in database.execute_sql(prefix + sql, params).fetchall()]


def count_against_list():
    import peewee as pw

    from webapp import engine
    from webapp.engine.compiler import build_query, count_query, ids_query

    definition = engine.parse_definition(NOT_RECENT)
    # before issue 19: SELECT COUNT(*) FROM customer WHERE <the same condition>
    old = build_query(definition, columns=[pw.fn.COUNT(pw.SQL("*"))])
    new = count_query(definition)
    ids = ids_query(definition)
    # three rounds, alternating, the best of each: the first round also warms the cache
    rounds = [
        (
            timed(lambda: old.scalar()),
            timed(lambda: new.scalar()),
            timed(lambda: sum(1 for _ in engine.member_ids(definition))),
        )
        for _ in range(3)
    ]
    (_s, old_n), (_s, new_n), (_s, listed) = rounds[0]
    assert old_n == new_n == listed, (old_n, new_n, listed)
    old_s, new_s, list_s = (min(r[i][0] for r in rounds) for i in range(3))
    print(f"count against list, 'no order in 180 days' ({listed:,} members):")
    print(f"  count before {old_s:.2f} s, count now {new_s:.2f} s, list {list_s:.2f} s")
    for name, query in (("count before", old), ("count now", new), ("list", ids)):
        print(f"  plan, {name}:")
        for line in explain(*query.sql()):
            print(f"    {line}")


def backend_cpu():
    """CPU seconds of the work the database did on this connection so far: the
    PostgreSQL backend process (same machine, /proc), or this process for SQLite."""
    pid = backend_pid()
    return time.process_time() if pid is None else cpu_seconds(pid)


def full_run(tz):
    from webapp import engine
    from webapp.models import Segment, SegmentRun
    from webapp.segments import runs
    from webapp.sql import key_type, temporary_table

    definition = engine.parse_definition(CONSENT)
    count_s, size = timed(lambda: engine.count(definition, tz=tz))

    def alone():
        with database.atomic() as transaction, temporary_table("bench_bare", f"customer_id {key_type()} PRIMARY KEY"):
            sql, params = engine.customer_query(definition, tz=tz).sql()
            database.execute_sql(f"INSERT INTO bench_bare (customer_id) {sql}", params)
            transaction.rollback()

    count_cpu = backend_cpu()
    engine.count(definition, tz=tz)
    count_cpu = backend_cpu() - count_cpu
    alone_cpu = backend_cpu()
    alone_s, _ = timed(alone)
    alone_cpu = backend_cpu() - alone_cpu
    segment = Segment.create(code="bench_speed_consent", name="Bench: consent", type="dynamic", definition=CONSENT)
    run = SegmentRun.create(segment=segment, trigger="user")
    # after its commit (members, log, size and status visible) a run reads the list's
    # figures of the segment (members' revenue, reach) so that pages find them cached
    after = {}
    figures_of = runs.figures.figures_of

    def timed_figures(*args, **kwargs):
        start, start_cpu, start_db = time.perf_counter(), time.process_time(), backend_cpu()
        try:
            return figures_of(*args, **kwargs)
        finally:
            after.update(
                s=time.perf_counter() - start, cpu=time.process_time() - start_cpu, db=backend_cpu() - start_db
            )

    runs.figures.figures_of = timed_figures
    cpu, db_cpu = time.process_time(), backend_cpu()
    try:
        run_s, _ = timed(lambda: runs.execute_run(run.id))
    finally:
        runs.figures.figures_of = figures_of
    cpu, db_cpu = time.process_time() - cpu, backend_cpu() - db_cpu
    run = SegmentRun.get_by_id(run.id)
    assert run.status == "done", run.error
    where = (
        f"CPU of this process {cpu:.2f} s, of the database server {db_cpu:.2f} s"
        if is_postgres()
        else f"CPU {cpu:.2f} s; SQLite works in this process"
    )
    print(f"first full run, {run.entered:,} of the base entering:")
    print(
        f"  engine count {count_s:.2f} s, engine query into a bare table {alone_s:.2f} s, "
        f"full run {run_s:.2f} s ({where}): "
        f"count + {run_s - count_s:.2f} s (target count + 2 s), ratio to the query alone {run_s / alone_s:.2f}"
    )
    commit_s = run_s - after.get("s", 0)
    print(
        f"  of which the run to its commit {commit_s:.2f} s (count + {commit_s - count_s:.2f} s, ratio to the "
        f"query alone {commit_s / alone_s:.2f}), then the list's figures {after.get('s', 0):.2f} s"
    )
    if is_postgres():
        print(
            f"  CPU of the PostgreSQL backend (leader only: parallel workers not counted): count {count_cpu:.2f} s, "
            f"query alone {alone_cpu:.2f} s, full run {db_cpu:.2f} s, of which figures {after.get('db', 0):.2f} s "
            f"(+ this process {cpu:.2f} s)"
        )
    else:
        print(
            f"  CPU (this process): count {count_cpu:.2f} s, query alone {alone_cpu:.2f} s, full run {cpu:.2f} s, "
            f"to its commit {cpu - after.get('cpu', 0):.2f} s, figures {after.get('cpu', 0):.2f} s"
        )
    return segment


def background_runs(url, seconds):
    """Another process looping full runs of the consent segment, each rolled back."""
    code = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from webapp.db import database, init_database
from webapp import engine
from webapp.models import Segment, utcnow
from webapp.segments.runs import apply_members
init_database({url!r}); database.connect()
segment = Segment.get(Segment.code == "bench_speed_consent")
definition = engine.parse_definition(segment.definition)
end = time.time() + {seconds}
n = 0
while time.time() < end:
    try:
        with database.atomic() as t:
            apply_members(segment.id, engine.customer_query(definition), at=utcnow())
            t.rollback()
        n += 1
    except Exception as exc:  # another writer (the bench's own run) holds the lock: try again
        print("background run:", exc, flush=True)
        time.sleep(1)
print(n, "background runs", flush=True)
"""
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


def previews_under_load(url, repeat, tz, skip=()):
    from preview import DEFINITIONS

    from webapp import engine

    chosen = [(name, engine.parse_definition(d)) for kind, name, d in DEFINITIONS if kind in ("customer", "aggregate")]
    if "previews" in skip:
        chosen = []
    alone = {}
    for name, definition in chosen:
        engine.count(definition, tz=tz)  # warm
        alone[name] = min(timed(lambda d=definition: engine.count(d, tz=tz))[0] for _ in range(3))
    worker = background_runs(url, seconds=3600)
    time.sleep(2)
    try:
        if "previews" not in skip:
            previews_timed(chosen, alone, repeat, tz)
        if "stop" not in skip:
            report_stops(tz)
    finally:
        worker.terminate()
        worker.wait(30)


def previews_timed(chosen, alone, repeat, tz):
    from webapp import engine
    from webapp.segments import previews

    all_times = []
    print(f"previews with a full run looping in another process ({repeat} per definition):")
    for name, definition in chosen:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            with previews.live(1):
                engine.count(definition, tz=tz)
            times.append(time.perf_counter() - start)
        all_times += times
        print(
            f"  {name:48} alone {alone[name] * 1000:6.0f} ms  p50 {percentile(times, 50) * 1000:6.0f} ms"
            f"  p95 {percentile(times, 95) * 1000:6.0f} ms  ratio p95/alone {percentile(times, 95) / alone[name]:5.1f}"
        )
    print(f"  all: p95 {percentile(all_times, 95) * 1000:.0f} ms (target 1,000 ms)")


def report_stops(tz):
    alone, attempts = superseded_stops(tz)
    print(
        f"superseded previews: 'no order in 180 days' counted ({alone * 1000:.0f} ms uninterrupted), "
        "a newer preview of the same user started halfway through:"
    )
    for ran, outcome, stop in attempts:
        if outcome == STOPPED:
            print(f"  the count had run {ran * 1000:.0f} ms, {outcome} {stop * 1000:.1f} ms after the newer start")
        else:
            print(f"  the count began {ran * 1000:.0f} ms before the newer start, {outcome}: not counted")
    stop_ms = [stop * 1000 for ran, outcome, stop in attempts if outcome == STOPPED]
    if not stop_ms:
        print("  no running statement was stopped: nothing measured")
        return
    print(
        f"  a superseded preview stopped {statistics.median(stop_ms):.1f} ms (median; max {max(stop_ms):.1f} ms) "
        f"after the newer one started (target 100 ms), {len(stop_ms)} of {len(attempts)} stopped while running"
    )


STOPPED = "stopped in the database"


def superseded_stops(tz, times=5):
    """The slow count's uninterrupted time, and per attempt: how long the older
    preview's count had run when a newer preview started, how it ended, and when
    (seconds from the newer one's start to the moment the older one's thread saw
    its statement end).

    Only STOPPED attempts measure a stop: the statement was running and the database
    interrupted it (SQLite "interrupted", PostgreSQL 57014). A count that finished first,
    or a preview superseded before its statement began, stopped nothing.
    """
    from webapp import engine

    slow = engine.parse_definition(NOT_RECENT)
    # timed as the older preview runs: in its own thread, on a fresh connection
    # (SQLite's page cache is the connection's: a warm one would be faster)
    alone = min(_older_preview(slow, tz, newer_after=None)[2] for _ in range(2))
    attempts = []
    for _ in range(times):
        ran, outcome, stop = _older_preview(slow, tz, newer_after=alone / 2)
        attempts.append((ran, outcome, stop))
    return alone, attempts


def _older_preview(definition, tz, newer_after):
    """Count `definition` as user 2's preview in a thread; `newer_after` seconds into
    the count, start a newer preview of user 2 (never, if None). Returns how long the
    count had run then, how it ended, and the seconds from the newer start to its end
    (without a newer one: how long the count ran)."""
    from webapp import engine
    from webapp.segments import previews

    seen = {}
    began = threading.Event()

    def older():
        try:
            with previews.live(2):
                seen["began"] = time.perf_counter()
                began.set()
                engine.count(definition, tz=tz)
            seen["outcome"] = "finished before the newer one started"
        except previews.Superseded as exc:
            # live() turns the statement's error into Superseded: it is the context
            stopped = isinstance(exc.__context__, pw.DatabaseError)
            seen["outcome"] = STOPPED if stopped else "superseded before its statement ran"
        finally:
            seen["ended"] = time.perf_counter()
            began.set()
            database.close()

    thread = threading.Thread(target=older)
    thread.start()
    began.wait()
    if newer_after is None:
        thread.join()
        return 0, seen["outcome"], seen["ended"] - seen["began"]
    time.sleep(newer_after)
    newer = time.perf_counter()
    with previews.live(2):
        pass
    thread.join()
    return newer - seen.get("began", newer), seen["outcome"], seen["ended"] - newer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--skip", nargs="*", default=[], choices=["count", "run", "previews", "stop"])
    args = parser.parse_args()
    init_database(args.database)
    database.connect()
    upgrade()
    from webapp.models import Customer, Segment

    for old in Segment.select().where(Segment.code.startswith("bench_speed_")):
        old.delete_instance(recursive=True)
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {'PostgreSQL' if is_postgres() else 'SQLite'}, "
        f"{Customer.select().count():,} customers",
        flush=True,
    )
    try:
        if "count" not in args.skip:
            count_against_list()
        wants_previews = "previews" not in args.skip or "stop" not in args.skip
        if "run" not in args.skip or wants_previews:
            full_run(args.tz)  # also makes the segment the background runs loop over
        if wants_previews:
            previews_under_load(args.database, args.repeat, args.tz, args.skip)
    finally:
        for segment in Segment.select().where(Segment.code.startswith("bench_speed_")):
            segment.delete_instance(recursive=True)
        print(f"load at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
