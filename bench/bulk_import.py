"""Issue 19, point 1: the bulk import path beside the bare-table load of the same file.

    .venv/bin/python bench/bulk_import.py --customers 200000 --orders 1000000
    .venv/bin/python bench/bulk_import.py --backend postgresql --customers 200000 --orders 1000000 --replace
    .venv/bin/python bench/bulk_import.py --customers 50000 --orders 100000 --normal   # the normal path too

For each generated file (customers, then orders for them, then order items
for those orders; deterministic, kept in bench/data/, gitignored), in the same
run and on the same machine:
1. the limit: the file loaded into a bare table of text columns, no index,
   no check: `sqlite3 DB ".import --csv"` on SQLite, `COPY ... FROM STDIN
   (FORMAT csv, HEADER)` through psql on PostgreSQL;
2. `flask import --bulk KIND FILE` into the app's migrated database (the
   real command, in a subprocess), then the same file again (nothing
   changes: the idempotent path);
3. with --normal, the normal path (`--no-bulk`) into a second database.
Reports wall time, rows per second, the ratio to the limit, the import
process's CPU time and peak RSS (its own rusage, from wait4: its largest
process), the peak PSS of the import's processes together (the writer and
its parsers, IMPORT_PARSERS; sampled every 0.2 s from /proc), and the load
average before each step. Prints a Markdown block for bench/RESULTS.md.

Targets (quiet 2-core machine): 1,000,000 customers in 30 s; 10,000,000
orders in 5 min; 14,000,000 order items in 5 min; within 3x of the bare-table
load; peak RSS under 300 MB; PostgreSQL within 3x of COPY.
"""

import argparse
import datetime
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import pss_kb  # noqa: E402
from imports import DATA, FLASK, ROOT, customers_file, orders_file  # noqa: E402 - the same generated files


def items_file(orders):
    """About 1.4 items per order (14 M items for 10 M orders), grouped by order."""
    path = DATA / f"items_{orders}.csv"
    if path.exists():
        return path
    rnd = random.Random(3)
    groups = ["Tea/Chinese tea", "Tea/Green tea", "Tea/Black tea", "Dishes", "Dishes/Cups", "Sweets"]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("order_external_id,sku,product_name,product_group,quantity,price\n")
        for i in range(orders):
            for _ in range(1 if rnd.random() < 0.6 else 2):
                sku = rnd.randrange(2000)
                f.write(
                    f"O{i:09d},SKU-{sku:05d},Product {sku},{groups[sku % len(groups)]},{rnd.randrange(1, 4)},"
                    f"{rnd.randrange(100, 500_000) / 100:.2f}\n"
                )
    tmp.rename(path)
    return path


def rows_in(path):
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1


def run_measured(cmd, env=None):
    """(wall, cpu, peak RSS MB, peak PSS MB, stdout) of a subprocess: reaped with wait4 for its
    own rusage (the RSS of its largest process); the PSS of the process with its children (the
    import's parsers), sampled every 0.2 s."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            peak[0] = max(peak[0], pss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    done.set()
    sampler.join()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{out}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, peak[0] / 1024, out


def bare_sqlite(path, table, db):
    return run_measured(["sqlite3", str(db), f".import --csv {path} {table}"])


def bare_postgres(path, table, url):
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    cols = ", ".join(f'"{c}" text' for c in header)
    subprocess.run(["psql", url, "-qc", f'DROP TABLE IF EXISTS "{table}"; CREATE TABLE "{table}" ({cols})'], check=True)
    return run_measured(["psql", url, "-qc", f"\\copy \"{table}\" FROM '{path}' WITH (FORMAT csv, HEADER true)"])


def fresh_database(args, suffix):
    if args.backend == "sqlite":
        path = (DATA / f"bulk_bench{suffix}.db").resolve()
        for end in ("", "-wal", "-shm"):
            Path(str(path) + end).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    name = args.database + suffix
    with psycopg.connect(args.server, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            if not args.replace:
                sys.exit(f"database {name} exists; pass --replace to drop and recreate it")
            conn.execute(f'DROP DATABASE "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return args.server.rsplit("/", 1)[0] + "/" + name


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--no-items", action="store_true")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--server",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--database", default="segmento_bench_bulk")
    parser.add_argument("--replace", action="store_true")
    parser.add_argument("--normal", action="store_true", help="also run the normal path, into a second database")
    args = parser.parse_args()

    files = [("customers", customers_file(args.customers))]
    if args.orders:
        files.append(("orders", orders_file(args.orders, args.customers)))
        if not args.no_items:
            files.append(("order-items", items_file(args.orders)))
    counts = {kind: rows_in(path) for kind, path in files}

    url = fresh_database(args, "")
    bare = fresh_database(args, "_bare") if args.backend == "postgresql" else DATA / "bulk_bench_bare.db"
    if args.backend == "sqlite":
        Path(bare).unlink(missing_ok=True)
    paths = [("bulk", "--bulk", url)]
    if args.normal:
        paths.append(("normal", "--no-bulk", fresh_database(args, "_normal")))
    for _label, _flag, db_url in paths:
        env = dict(os.environ, DATABASE_URL=db_url, SEGMENTO_INSTANCE=str(DATA / "instance"))
        subprocess.run(FLASK + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)

    results = []
    for kind, path in files:
        table = "bare_" + kind.replace("-", "_")
        load = os.getloadavg()[0]
        if args.backend == "sqlite":
            limit = bare_sqlite(path, table, bare)
        else:
            limit = bare_postgres(path, table, bare)
        results.append((kind, "bare table (limit)", counts[kind], limit, load, limit[0]))
        for label, flag, db_url in paths:
            env = dict(os.environ, DATABASE_URL=db_url, SEGMENTO_INSTANCE=str(DATA / "instance"), PYTHONUNBUFFERED="1")
            for again in (False, True):
                load = os.getloadavg()[0]
                measured = run_measured(FLASK + ["import", flag, kind, str(path)], env=env)
                print(measured[-1], file=sys.stderr)
                name = f"{label} path" + (", again (unchanged)" if again else "")
                results.append((kind, name, counts[kind], measured, load, limit[0]))

    print(f"### {args.backend}: {args.customers:,} customers, {args.orders:,} orders, bulk path vs bare table\n")
    print(
        f"- {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.machine()}; `uptime` before: {os.getloadavg()}"
    )
    print("\n| file | load | rows | wall | rows/s | × bare | CPU | peak RSS | peak PSS, all | load avg before |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, name, rows, (wall, cpu, rss, pss, _out), load, limit in results:
        print(
            f"| {kind} | {name} | {rows:,} | {wall:,.1f} s | {rows / wall:,.0f} | {wall / limit:.2f} | "
            f"{cpu:,.1f} s | {rss:,.0f} MB | {pss:,.0f} MB | {load:.1f} |"
        )


if __name__ == "__main__":
    main()
