"""Segment overlap and list figures at scale (issue 18, points 3 and 4).

    .venv/bin/python bench/overlap.py --database sqlite:////tmp/overlap_1m.db

Run it on a copy of a demo database (`flask demo-data --customers 1000000`,
see bench/demo_data.py), never the original: it applies the migrations and,
the first time, writes eight static segments `bench_overlap_0..7` whose
members are picked set-based from the customers (sizes 100,000 to 800,000,
about 3.6 million member rows, overlapping at random).

Times, best of --repeat, with the load average around each:
- overlap: `segments.overlap.overlap` of the eight (one pass over their
  memberships, counts per bit mask), against the same statement run by hand
  through the driver and against the textbook hand-written alternative of one
  `COUNT(*)` join per pair (28 statements);
- figures: `segments.figures.figures_of` of the eight with an empty cache (two
  statements for the segments, two for the base) and from the cache, against
  a hand-written per-segment query of the same figures (one statement per
  segment: COUNT and reach over members, SUM over their orders of 12 months).
Wall time; CPU of this process (SQLite runs in it).
"""

import argparse
import datetime
import itertools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.db import database, init_database, upgrade  # noqa: E402

SIZES = (800_000, 650_000, 500_000, 400_000, 400_000, 300_000, 200_000, 100_000)
# Multipliers to scatter each segment's members over the id range (so they overlap at random).
PRIMES = (7919, 104729, 1299709, 15485863, 32452843, 49979687, 67867967, 86028121)


def timed(func, repeat):
    best_wall = best_cpu = None
    result = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best_wall = wall if best_wall is None else min(best_wall, wall)
        best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
    return result, best_wall, best_cpu


def prepare(customers):
    from webapp.models import Segment, utcnow
    from webapp.segments.manual import self_definition

    segments = []
    for n, size in enumerate(SIZES):
        code = f"bench_overlap_{n}"
        segment = Segment.get_or_none(Segment.code == code)
        if segment is None:
            started = time.perf_counter()
            with database.atomic():
                segment = Segment.create(
                    code=code,
                    name=f"Bench overlap {n}",
                    type="static",
                    source="list",
                    definition=self_definition(code),
                    computed_at=utcnow(),
                )
                # a customer is in when its id, scattered by a prime, falls in the first `size` of the range
                database.execute_sql(
                    "INSERT INTO segment_member (segment_id, customer_id, since) "
                    "SELECT ?, id, ? FROM customer WHERE (id * ?) % ? < ?",
                    [segment.id, str(utcnow()), PRIMES[n], customers, size],
                )
                segment.size = database.execute_sql(
                    "SELECT COUNT(*) FROM segment_member WHERE segment_id = ?", [segment.id]
                ).fetchone()[0]
                segment.save()
            print(
                f"wrote {segment.code}: {segment.size:,} members in {time.perf_counter() - started:.1f} s", flush=True
            )
        segments.append(segment)
    database.execute_sql("ANALYZE segment_member")
    return segments


def overlap_bench(segments, repeat):
    from webapp.segments import overlap

    codes = [s.code for s in segments]
    ids = [s.id for s in segments]
    result, wall, cpu = timed(lambda: overlap.overlap(codes), repeat)
    print(f"overlap of {len(codes)} (app): {wall:.3f} s wall, {cpu:.3f} s CPU; load {os.getloadavg()[0]:.2f}")
    raw_sql = (
        "SELECT m, COUNT(*) FROM (SELECT customer_id, SUM(CASE segment_id "
        + " ".join(f"WHEN {sid} THEN {1 << i}" for i, sid in enumerate(ids))
        + f" END) AS m FROM segment_member WHERE segment_id IN ({', '.join(map(str, ids))}) "
        "GROUP BY customer_id) GROUP BY m"
    )
    conn = database.connection()
    raw, raw_wall, _ = timed(lambda: dict(conn.execute(raw_sql).fetchall()), repeat)
    assert raw == result.regions
    print(f"  the same statement by hand: {raw_wall:.3f} s; ratio app / hand {wall / raw_wall:.2f}")

    def pairwise():
        return {
            (a, b): conn.execute(
                "SELECT COUNT(*) FROM segment_member x JOIN segment_member y ON y.customer_id = x.customer_id "
                "AND y.segment_id = ? WHERE x.segment_id = ?",
                [b, a],
            ).fetchone()[0]
            for a, b in itertools.combinations(ids, 2)
        }

    pairs, pair_wall, _ = timed(pairwise, 1)
    for (a, b), n in pairs.items():
        assert n == result.count(ids.index(a), ids.index(b))
    print(f"  28 pairwise joins by hand: {pair_wall:.3f} s; ratio app / pairwise {wall / pair_wall:.2f}")
    print(f"  sizes {result.sizes}, union {result.union:,}, {len(result.regions)} regions")
    return wall, raw_wall, pair_wall


def figures_bench(segments, repeat):
    from webapp.models import SegmentFigures, utcnow
    from webapp.reach import reachable
    from webapp.segments import figures

    def cold():
        SegmentFigures.delete().execute()
        return figures.figures_of(segments)

    found, wall, cpu = timed(cold, repeat)
    print(
        f"figures of {len(segments)} + the base, cold (app): {wall:.3f} s wall, {cpu:.3f} s CPU; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    _, warm_wall, _ = timed(lambda: figures.figures_of(segments), repeat)
    print(f"  from the cache: {warm_wall:.4f} s")
    since = str(utcnow() - datetime.timedelta(days=figures.REVENUE_DAYS))
    conn = database.connection()

    def by_hand():
        out = {}
        for s in segments:
            members, email, sms = conn.execute(
                f"SELECT COUNT(*), SUM({reachable('email')}), SUM({reachable('sms')}) "
                "FROM segment_member sm JOIN customer c ON c.id = sm.customer_id WHERE sm.segment_id = ?",
                [s.id],
            ).fetchone()
            cents, orders = conn.execute(
                "SELECT SUM(o.total_cents), COUNT(*) FROM segment_member sm JOIN orders o "
                "ON o.customer_id = sm.customer_id WHERE sm.segment_id = ? AND o.ordered_at >= ?",
                [s.id, since],
            ).fetchone()
            out[s.id] = (members, email, sms, cents or 0, orders)
        conn.execute(f"SELECT COUNT(*), SUM({reachable('email')}), SUM({reachable('sms')}) FROM customer c").fetchone()
        conn.execute(
            "SELECT SUM(o.total_cents), COUNT(*) FROM customer c JOIN orders o ON o.customer_id = c.id "
            "AND o.ordered_at >= ?",
            [since],
        ).fetchone()
        return out

    hand, hand_wall, _ = timed(by_hand, 1)
    for sid, row in hand.items():
        f = found[sid]
        assert (f.members, f.email, f.sms, f.revenue_cents, f.orders) == row, (sid, f, row)
    print(f"  by hand, a statement per segment: {hand_wall:.3f} s; ratio app / hand {wall / hand_wall:.2f}")
    first = found[segments[0].id]
    print(
        f"  e.g. {segments[0].code}: {first.members:,} members, {first.email:,} by email, {first.sms:,} by SMS, "
        f"{first.base_share:.1%} of base, {first.revenue_share:.1%} of revenue, AOV {first.aov_cents / 100:.2f}"
    )
    return wall, warm_wall, hand_wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="sqlite:///path (a copy!)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    init_database(args.database)
    database.connect()  # no surrounding transaction: the prepared segments are committed
    for name in upgrade():
        print(f"applied migration {name}")
    customers = database.execute_sql("SELECT MAX(id) FROM customer").fetchone()[0]
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"{customers:,} customers; load average before {os.getloadavg()}",
        flush=True,
    )
    segments = prepare(customers)
    overlap_bench(segments, args.repeat)
    figures_bench(segments, args.repeat)
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
