"""Time `flask demo-data --customers N` on a fresh SQLite or PostgreSQL database.

    .venv/bin/python bench/demo_data.py --customers 1000000 --backend sqlite
    .venv/bin/python bench/demo_data.py --customers 1000000 --backend postgresql \\
        --database segmento_bench --replace

Creates and migrates the database (`flask db upgrade`, not timed), runs the
real command in a subprocess and timestamps its stage lines, then reports rows
per table, the time of each stage, CPU time (this command and, on PostgreSQL,
not the server's), the load average of the machine around the run, and the
database size. Prints a Markdown block for bench/RESULTS.md.

SQLite files go to bench/data/demo_<N>.db (gitignored) unless --sqlite-path.
"""

import argparse
import datetime
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLASK = [sys.executable, "-m", "flask", "--app", "app"]
TABLES = [
    "customer",
    "customer_tag",
    "custom_value",
    "orders",
    "order_item",
    "customer_order_stats",
    "deal",
    "message_event",
    "event_occurrence",
]
# The first words of each stage line the command prints, and the stage it starts.
STAGES = [
    ("Managers, shops", "catalogue"),
    ("Customers", "customers"),
    ("Rebuilding indexes", "indexes"),
    ("Updating planner statistics", "statistics"),
    ("Loaded in", "end"),
]


def run_load(env, customers, seed):
    """Run demo-data; returns (wall seconds, {stage: seconds}, CPU seconds, output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen(
        FLASK + ["demo-data", "--customers", str(customers), "--seed", str(seed)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    marks, lines = [], []
    for line in proc.stdout:
        lines.append(line)
        for prefix, stage in STAGES:
            if line.strip().startswith(prefix):
                marks.append((stage, time.monotonic()))
    code = proc.wait()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if code:
        sys.exit("demo-data failed:\n" + "".join(lines))
    stages = {stage: round(marks[i + 1][1] - at, 1) for i, (stage, at) in enumerate(marks[:-1])}
    return wall, stages, cpu, "".join(lines)


def sqlite_setup(path, replace):
    if path.exists():
        if not replace:
            sys.exit(f"{path} exists; pass --replace to start from an empty file")
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def sqlite_report(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        rows = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in TABLES}
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(Path(str(path) + s).stat().st_size for s in ("", "-wal") if Path(str(path) + s).exists())
    return rows, size


def postgres_setup(server_url, name, replace):
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            if not replace:
                sys.exit(f"database {name} exists; pass --replace to drop and recreate it")
            conn.execute(f'DROP DATABASE "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def postgres_report(url):
    import psycopg

    with psycopg.connect(url) as conn:
        rows = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in TABLES}
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return rows, size


def machine():
    mem = ""
    try:
        mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()[1]
        mem = " ".join(mem.split()[:2])
    except (OSError, IndexError):
        pass
    return f"{os.cpu_count()} CPUs (nproc), {mem or 'memory unknown'}, {platform.python_version()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sqlite-path", type=Path)
    parser.add_argument(
        "--server",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server URL (any database on it) used to create --database",
    )
    parser.add_argument("--database", help="PostgreSQL database name (default segmento_demo_<N>)")
    parser.add_argument("--replace", action="store_true", help="drop an existing target first")
    args = parser.parse_args()

    if args.backend == "sqlite":
        path = (args.sqlite_path or ROOT / "bench" / "data" / f"demo_{args.customers}.db").resolve()
        url = sqlite_setup(path, args.replace)
    else:
        url = postgres_setup(args.server, args.database or f"segmento_demo_{args.customers}", args.replace)
    env = dict(os.environ, DATABASE_URL=url, PYTHONUNBUFFERED="1")
    subprocess.run(FLASK + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)

    load_before = os.getloadavg()
    wall, stages, cpu, output = run_load(env, args.customers, args.seed)
    load_after = os.getloadavg()
    rows, size = sqlite_report(path) if args.backend == "sqlite" else postgres_report(url)

    print(output)
    total = sum(rows.values())
    print(f"### {args.backend}, {args.customers:,} customers (seed {args.seed})\n")
    print(f"- {datetime.date.today()}, {machine()}")
    print(f"- load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    print(
        f"- wall {wall:.0f} s (stages: {', '.join(f'{k} {v} s' for k, v in stages.items())}), "
        f"CPU of the command {cpu:.0f} s"
    )
    print(f"- {total:,} rows, {total / wall:,.0f} rows/s; database size {size / 2**30:.2f} GiB\n")
    print("| table | rows |\n|---|---:|")
    for table in TABLES:
        print(f"| {table} | {rows[table]:,} |")


if __name__ == "__main__":
    main()
