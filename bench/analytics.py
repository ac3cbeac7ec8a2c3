"""Analytics benchmarks (issue 10: events, RFM, segment analytics).

    .venv/bin/python bench/analytics.py rfm --database sqlite:////tmp/rfm_1m.db
    .venv/bin/python bench/analytics.py dashboard --database sqlite:////tmp/analytics_1m.db
    .venv/bin/python bench/analytics.py backfill --database sqlite:////tmp/events_1m.db --condition croissant

Subcommands:
- rfm: RFM scores over every customer and order (target: 1,000,000 customers
  and 10,000,000 orders under 15 s on SQLite), then the eight class segments
  refreshed from them, first (everyone enters) and again (nothing moves).
  Wall and CPU time of this process (SQLite runs in it; for PostgreSQL the
  server's CPU is not counted), peak RSS.
- dashboard: the segment analytics dashboard (webapp.analytics.dashboard) over
  three segments in analytics of 100,000 to 500,000 customers with an
  entry/exit log over the last 400 days (written set-based on first run),
  last 30 days by day, 12 weeks, 12 months, members at the time and today's.

- backfill: an order event definition (croissant / bakery / total over 3,000)
  recorded for every past order (target: 10,000,000 orders under 60 s on
  SQLite), a re-run over the whole range, and the real-time re-evaluation
  for 500 customers; the previous bench definition is deleted first (timed).

Run it on a copy of a demo database (flask demo-data), never the original:
it applies the migrations and writes scores, memberships and the entry log.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.db import database, init_database, upgrade  # noqa: E402


def timed(label, func):
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    return result, wall, cpu


def rfm_bench(args):
    from webapp.models import Customer, Order, RfmCell
    from webapp.rfm import service as rfm

    init_database(args.database)
    with database:
        for name in upgrade():
            print(f"applied migration {name}")
        customers, orders = Customer.select().count(), Order.select().count()
        print(f"{customers:,} customers, {orders:,} orders; load average {os.getloadavg()[0]:.1f}", flush=True)
        config = rfm.config_from(rfm.get_settings(), args.tz)
        if args.as_of:
            config["as_of"] = args.as_of
        config["method"] = args.method
        print(f"settings: {config}")
        (scored, unscored), _w, _c = timed(
            "scores (quintiles)" if args.method == "quintiles" else "scores", lambda: rfm.compute(config, tz=args.tz)
        )
        cells = sum(c.customers for c in RfmCell.select())
        print(f"scored {scored:,}, without scores {unscored:,}; grid total {cells:,}")
        assert cells == scored
        if not args.skip_classes:
            result, _w, _c = timed("class and score segments, first refresh", rfm.refresh_segments)
            print({k: v for k, v in result.items()})
            result, _w, _c = timed("class and score segments, again (no change)", rfm.refresh_segments)
            print({k: v for k, v in result.items()})
        print(
            f"load average {os.getloadavg()[0]:.1f}; peak RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )


BENCH_SEGMENTS = [
    # code, name, members (customer id modulo), entered (days ago), exits (id modulo, days ago)
    ("bench_an_half", "Bench: half of the customers", "c.id % 2 = 0", "400", "c.id % 20 = 0", "c.id % 180"),
    (
        "bench_an_fifth",
        "Bench: a fifth, entering over a year",
        "c.id % 5 = 1",
        "c.id % 365",
        "c.id % 50 = 1",
        "c.id % 7",
    ),
    ("bench_an_tenth", "Bench: a tenth, half of it gone", "c.id % 10 = 3", "300", "c.id % 20 = 3", "c.id % 250"),
]


def prepare_history(now):
    """Segments in analytics with an entry/exit log over the last 400 days, written set-based."""
    from webapp.db import is_postgres
    from webapp.models import Segment

    def ago(days):
        if is_postgres():
            return f"(CAST({database.param} AS TIMESTAMP) - ({days}) * INTERVAL '1 day')"
        return f"datetime({database.param}, '-' || ({days}) || ' days')"

    stamp = now if is_postgres() else str(now)
    for code, name, members, entered, exits, exited in BENCH_SEGMENTS:
        if Segment.select().where(Segment.code == code).exists():
            continue
        with database.atomic():
            sid = Segment.create(
                code=code, name=name, in_analytics=True, definition={"version": 1, "blocks": []}, source="list"
            ).id
            database.execute_sql(
                f'INSERT INTO segment_change (segment_id, customer_id, change, "at") '
                f"SELECT {sid}, c.id, 'entered', {ago(entered)} FROM customer c WHERE {members}",
                (stamp,),
            )
            # an exit some days after the entry (days ago counted from the entry's side: never before it)
            database.execute_sql(
                f'INSERT INTO segment_change (segment_id, customer_id, change, "at") '
                f"SELECT {sid}, c.id, 'exited', {ago(exited)} FROM customer c WHERE {members} AND {exits} "
                f"AND ({exited}) < ({entered})",
                (stamp,),
            )
            database.execute_sql(
                f"INSERT INTO segment_member (segment_id, customer_id, since) "
                f"SELECT {sid}, c.id, {ago(entered)} FROM customer c WHERE {members} "
                f"AND NOT ({exits} AND ({exited}) < ({entered}))",
                (stamp,),
            )
        print(f"prepared {code}", flush=True)
    database.execute_sql("ANALYZE segment_change")
    database.execute_sql("ANALYZE segment_member")


def dashboard_bench(args):
    import zoneinfo

    from werkzeug.datastructures import MultiDict

    from webapp.analytics import service as analytics
    from webapp.models import SegmentChange, SegmentMember, utcnow

    init_database(args.database)
    tz = zoneinfo.ZoneInfo(args.tz)
    now = utcnow()
    with database:
        for name in upgrade():
            print(f"applied migration {name}")
        timed("prepare the entry/exit log", lambda: prepare_history(now))
        print(
            f"{SegmentChange.select().count():,} logged changes, {SegmentMember.select().count():,} memberships; "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        codes = [code for code, *_rest in BENCH_SEGMENTS][: args.segments]
        for period in ("30d", "12w", "12m"):
            for mode in ("history", "today"):
                filters = analytics.Filters.from_args(
                    MultiDict([("period", period), ("mode", mode)] + [("segment", c) for c in codes])
                )
                steps = []
                board, _w, _c = timed(
                    f"{period} {mode}, {len(codes)} segments",
                    lambda: analytics.dashboard(
                        filters, tz, now, progress=lambda *s: steps.append(time.perf_counter())
                    ),
                )
                total = [(s.segment.code, s.total.size, s.total.orders, s.total.revenue) for s in board.segments]
                print(f"  {len(board.periods)} periods; whole range (code, size, orders, revenue): {total}")
                print(f"  progress steps at (s after the first): {[round(t - steps[0], 1) for t in steps]}")

                def cached():  # what a page shows from the cache: the plan, the key, the figures filled in
                    again = analytics.plan(filters, tz, now)
                    analytics.cache_key(again)
                    analytics.fill(again, figures)
                    return again

                figures = analytics.compute(analytics.plan(filters, tz, now)) if args.cached else None
                if figures is not None:
                    timed("  the same from the cache (plan, data version, fill)", cached)
        print(
            f"load average {os.getloadavg()[0]:.1f}; peak RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )


BACKFILL_CONDITIONS = {
    "croissant": {
        "match": "all",
        "filters": [{"field": "product_group", "op": "in", "values": [{"value": "Bakery/Croissants"}]}],
    },
    "bakery": {"match": "all", "filters": [{"field": "product_group", "op": "in", "values": [{"value": "Bakery"}]}]},
    "total": {"match": "all", "filters": [{"field": "total", "op": "between", "from": 3000}]},
}


def backfill_bench(args):
    """One event definition's backfill over every order, then a re-run of the
    whole range (everything already there: conflicts ignored), then the
    real-time re-evaluation for 500 customers."""
    from webapp.events import service as events
    from webapp.models import Customer, EventDefinition, EventOccurrence, EventType, Order

    init_database(args.database)
    with database:
        for name in upgrade():
            print(f"applied migration {name}")
        code = f"bench_{args.condition}"
        old = EventDefinition.select().join(EventType).where(EventType.code == code).first()
        if old is not None:
            timed(
                f"delete the previous {code} ({events.derived_count(old.event_type_id):,} occurrences)",
                lambda: events.delete_definition(old),
            )
        orders = Order.select().count()
        print(
            f"{Customer.select().count():,} customers, {orders:,} orders, "
            f"{EventOccurrence.select().count():,} occurrences; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        definition = events.create_definition(f"Bench {args.condition}", code, BACKFILL_CONDITIONS[args.condition])
        done, _w, _c = timed(
            f"backfill {code} ({orders:,} orders, chunks of {args.chunk:,} ids)",
            lambda: events.backfill(definition.id, chunk=args.chunk),
        )
        print(f"  {done.recorded:,} occurrences; load average {os.getloadavg()[0]:.1f}", flush=True)
        EventDefinition.update(next_order_id=EventDefinition.first_order_id).where(
            EventDefinition.id == definition.id
        ).execute()
        again, _w, _c = timed(
            "backfill again over the whole range (nothing new)",
            lambda: events.backfill(definition.id, chunk=args.chunk),
        )
        assert again.recorded == done.recorded
        ids = [i for (i,) in Customer.select(Customer.id).order_by(Customer.id).limit(500).tuples()]
        timed(
            "real-time re-evaluation of every active definition for 500 customers",
            lambda: events.record_for_customers(ids),
        )
        if not args.keep:
            timed("delete it", lambda: events.delete_definition(EventDefinition.get_by_id(definition.id)))
        print(
            f"load average {os.getloadavg()[0]:.1f}; peak RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rfm", help="RFM scores and class segments")
    p.add_argument("--database", required=True, help="sqlite:///path or postgresql://... (a copy!)")
    p.add_argument("--method", choices=("quintiles", "thresholds"), default="quintiles")
    p.add_argument("--as-of", help="YYYY-MM-DD (default: the settings', else today)")
    p.add_argument("--tz", default="UTC")
    p.add_argument("--skip-classes", action="store_true")
    p.set_defaults(func=rfm_bench)
    p = sub.add_parser("dashboard", help="segment analytics dashboard over a few big segments")
    p.add_argument("--database", required=True, help="sqlite:///path or postgresql://... (a copy!)")
    p.add_argument("--segments", type=int, default=3)
    p.add_argument("--tz", default="Europe/Berlin")
    p.add_argument("--cached", action="store_true", help="also time a cache hit (computes each view twice)")
    p.set_defaults(func=dashboard_bench)
    p = sub.add_parser("backfill", help="an order event definition's backfill over every order")
    p.add_argument("--database", required=True, help="sqlite:///path or postgresql://... (a copy!)")
    p.add_argument("--condition", choices=sorted(BACKFILL_CONDITIONS), default="croissant")
    p.add_argument("--chunk", type=int, default=500_000, help="order ids per statement")
    p.add_argument("--keep", action="store_true", help="keep the definition and its occurrences")
    p.set_defaults(func=backfill_bench)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
