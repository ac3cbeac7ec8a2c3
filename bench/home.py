"""The home page's "changes today" on a day a full run logged most of the base (issue 21).

    .venv/bin/python bench/home.py --database postgresql://postgres:postgres@127.0.0.1:5432/segmento_bench
    .venv/bin/python bench/home.py --database sqlite:////tmp/speed/demo_1m.db

On a demo database (bench/demo_data.py), upgraded first: a dynamic segment of
the customers with email consent (about 60 % of the demo base) is computed
once, logging its entries today; then, --repeat times each:
- `changes_today()`, the query the home page runs (run totals plus the rows no
  run wrote, migration 0023);
- beside it the former query: today's rows of the log counted per segment on
  the (segment_id, at) index (what the page cost before, and what any count
  of the log itself costs).
Both must give the same figures. Creates a segment bench_home_* and deletes it.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.db import database, init_database, upgrade  # noqa: E402

CONSENT = {
    "version": 1,
    "match": "all",
    "blocks": [
        {"entity": "customer", "match": "all", "filters": [{"field": "email_consent", "op": "is", "value": True}]}
    ],
}


def timed(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, max(times) * 1000, value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database
    init_database(args.database)
    upgrade()

    import peewee as pw

    from webapp import localtime, settings
    from webapp.models import Segment, SegmentChange
    from webapp.segments import runs
    from webapp.segments.listing import changes_today, local_day_start

    def from_the_log():
        """The former query: per segment, today's rows counted on the (segment_id, at) index."""
        start = local_day_start(localtime.today(settings.tz()))

        def counted(change):
            sc = SegmentChange.alias()
            return sc.select(pw.fn.COUNT(pw.SQL("*"))).where(
                (sc.segment == Segment.id) & (sc.at >= start) & (sc.change == change)
            )

        rows = Segment.select(Segment.id, counted("entered"), counted("exited")).tuples()
        return {sid: (entered, exited) for sid, entered, exited in rows if entered or exited}

    segment = Segment.create(code=f"bench_home_{uuid.uuid4().hex[:6]}", name="bench home", definition=CONSENT)
    try:
        started = time.perf_counter()
        run = runs.SegmentRun.create(segment=segment.id, status="queued", trigger="user")
        runs.execute_run(run.id)
        print(
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}; {args.database.split('://')[0]}"
        )
        print(f"full run: {time.perf_counter() - started:.1f} s, {runs.SegmentRun.get_by_id(run.id).entered:,} entered")
        now_ms, now_max, shown = timed(changes_today, args.repeat)
        log_ms, log_max, counted = timed(from_the_log, args.repeat)
        shown = {s.id: (e, x) for s, e, x in shown}
        assert shown == counted, (shown, counted)
        print(f"changes_today (run totals + rows without a run): median {now_ms:.1f} ms, max {now_max:.1f} ms")
        print(f"today's log counted row by row (the former query): median {log_ms:.1f} ms, max {log_max:.1f} ms")
        print(f"rows logged today: {sum(e + x for e, x in counted.values()):,}; load {os.getloadavg()[0]:.1f}")
    finally:
        with database.atomic():
            Segment.delete().where(Segment.id == segment.id).execute()


if __name__ == "__main__":
    main()
