"""Segment computation benchmark (issue: segment computation).

    .venv/bin/python bench/compute.py --database sqlite:///bench/data/demo_1000000.db
    .venv/bin/python bench/compute.py --database postgresql://postgres:postgres@127.0.0.1:5432/segmento_bench

Measures, on a demo database (flask demo-data):
1. a full run with diff and log: first run (everyone enters) and a re-run
   after a small change, each against the engine's count time for the same
   definition (target: count time + at most 2 s), and the peak RSS of the
   process doing the run (target: under 300 MB);
2. re-checking one customer against 50 active dynamic segments (target:
   under 50 ms);
3. real time: from a committed change to the logged entry, through a real
   worker process on an embedded Valkey server, p95 over 20 changes with 50
   active dynamic segments (target: under 5 s).

It creates segments named bench_* in the database and deletes them at the end.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.db import database, init_database, upgrade  # noqa: E402

BIG = {
    "version": 1,
    "match": "all",
    "blocks": [
        {"entity": "customer", "match": "all", "filters": [{"field": "email_consent", "op": "is", "value": True}]}
    ],
}


def fifty_definitions():
    """50 realistic dynamic segments: customer fields, orders, deals, messages."""
    cities = ["Москва", "Санкт-Петербург", "Hà Nội", "London", "Казань"]
    defs = []
    for i in range(50):
        kind = i % 5
        if kind == 0:
            block = {
                "entity": "customer",
                "match": "all",
                "filters": [{"field": "city", "op": "in", "values": [{"value": cities[i % len(cities)]}]}],
            }
        elif kind == 1:
            block = {
                "entity": "order",
                "match": "all",
                "filters": [],
                "having": [{"agg": "count", "op": "between", "from": i % 7 + 1}],
            }
        elif kind == 2:
            block = {
                "entity": "order",
                "match": "all",
                "filters": [{"field": "product_group", "op": "in", "values": [{"value": "Bakery"}]}],
                "having": [{"agg": "last_at", "op": "relative", "from_days": -(30 + i)}],
            }
        elif kind == 3:
            block = {
                "entity": "customer",
                "match": "all",
                "filters": [
                    {"field": "gender", "op": "in", "values": [{"value": "female" if i % 2 else "male"}]},
                    {"field": "email_consent", "op": "is", "value": True},
                ],
            }
        else:
            block = {
                "entity": "message",
                "match": "all",
                "filters": [{"field": "kind", "op": "in", "values": [{"value": "opened"}]}],
                "having": [{"agg": "last_at", "op": "relative", "to_days": -(i + 10)}],
            }
        defs.append({"version": 1, "match": "all", "blocks": [block]})
    return defs


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def cleanup():
    from webapp.models import Segment

    for segment in list(Segment.select().where(Segment.code.startswith("bench_"))):
        segment.delete_instance(recursive=True)


def bench_full_run(tz):
    from webapp import engine
    from webapp.models import Customer, Segment, SegmentRun
    from webapp.segments import runs

    segment = Segment.create(code="bench_big", name="Bench: email consent", type="dynamic", definition=BIG)
    definition = engine.parse_definition(BIG)
    count_s, size = timed(lambda: engine.count(definition, tz=tz))
    run = SegmentRun.create(segment=segment, trigger="user")
    first_s, _ = timed(lambda: runs.execute_run(run.id))
    run = SegmentRun.get_by_id(run.id)
    assert run.status == "done", run.error
    # a small change: 1,000 customers lose consent
    ids = [
        i
        for (i,) in Customer.select(Customer.id)
        .where(Customer.email_consent == True)  # noqa: E712
        .order_by(Customer.id)
        .limit(1000)
        .tuples()
    ]
    Customer.update(email_consent=False).where(Customer.id.in_(ids)).execute()
    rerun = SegmentRun.create(segment=segment, trigger="user")
    second_s, _ = timed(lambda: runs.execute_run(rerun.id))
    rerun = SegmentRun.get_by_id(rerun.id)
    Customer.update(email_consent=True).where(Customer.id.in_(ids)).execute()
    return {
        "size": size,
        "count_s": count_s,
        "first_run_s": first_s,
        "first_entered": run.entered,
        "rerun_s": second_s,
        "rerun_exited": rerun.exited,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def bench_recheck(tz):
    from webapp.models import Customer, Segment, SegmentRun
    from webapp.segments import realtime, runs

    for n, definition in enumerate(fifty_definitions()):
        segment = Segment.create(code=f"bench_rt_{n}", name=f"Bench RT {n}", type="dynamic", definition=definition)
        run = SegmentRun.create(segment=segment, trigger="user")
        runs.execute_run(run.id)
    Segment.update(active=False).where(Segment.code == "bench_big").execute()
    customer_ids = [i for (i,) in Customer.select(Customer.id).order_by(Customer.id).limit(20).tuples()]
    times = []
    for customer_id in customer_ids:
        seconds, _ = timed(lambda: realtime.recheck_customers([customer_id]))
        times.append(seconds)
    return {
        "segments": len(realtime.dynamic_segments_in_order()),
        "recheck_one_median_ms": statistics.median(times) * 1000,
        "recheck_one_max_ms": max(times) * 1000,
    }


def bench_realtime(url):
    """Change a customer, mark it, and time until its entry is logged, through
    a real worker on an embedded Valkey."""
    from webapp.models import Customer, Segment, SegmentChange
    from webapp.queue import embedded_server
    from webapp.segments import changes

    server = embedded_server()
    redis_url = f"redis://127.0.0.1:{server.port}/0"
    env = dict(os.environ, DATABASE_URL=url, REDIS_URL=redis_url, REALTIME_INTERVAL_SECONDS="1")
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    segment = Segment.get(Segment.code == "bench_rt_0")  # city in Москва
    city = segment.definition["blocks"][0]["filters"][0]["values"][0]["value"]
    latencies = []
    try:
        time.sleep(3)  # worker and cron up
        candidates = [
            c for c in Customer.select().where(Customer.city_ci != city.casefold()).order_by(Customer.id).limit(20)
        ]
        for customer in candidates:
            old_city = customer.city
            customer.city = city
            customer.save()
            changes.mark_changed([customer.id])
            start = time.perf_counter()
            while True:
                database.close()
                if (
                    SegmentChange.select()
                    .where(SegmentChange.segment == segment, SegmentChange.customer == customer.id)
                    .exists()
                ):
                    break
                if time.perf_counter() - start > 60:
                    raise RuntimeError("no entry logged within 60 s")
                time.sleep(0.05)
            latencies.append(time.perf_counter() - start)
            customer.city = old_city
            customer.save()
            changes.mark_changed([customer.id])
    finally:
        worker.terminate()
        worker.wait(20)
        server.stop()
    latencies.sort()
    return {
        "changes": len(latencies),
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[int(len(latencies) * 0.95) - 1],
        "max_s": latencies[-1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--tz", default="UTC")
    args = parser.parse_args()
    init_database(args.database)
    database.connect()
    upgrade()
    cleanup()
    try:
        print("full run:", bench_full_run(args.tz), flush=True)
        print("re-check one customer:", bench_recheck(args.tz), flush=True)
        print("real time:", bench_realtime(args.database), flush=True)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
