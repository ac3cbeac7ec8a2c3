"""Time `flask import` on big generated CSV files, on a fresh SQLite or PostgreSQL database.

    .venv/bin/python bench/imports.py                      # 1,000,000 customers, then 10,000,000 orders
    .venv/bin/python bench/imports.py --customers 100000 --orders 0
    .venv/bin/python bench/imports.py --backend postgresql --database segmento_bench_imports --replace

Generates the files once into bench/data/ (gitignored; deterministic), creates
and migrates the database (not timed), then runs the real command in a
subprocess for each file: customers, the same customers file again (nothing
changes: the idempotent path), then orders for those customers. Reports wall
time, rows per second, and the peak memory (max RSS) of the import process.
Prints a Markdown block for bench/RESULTS.md.

Targets: 1,000,000 customers in under 60 s on SQLite; 10,000,000 order rows in
under 10 minutes; memory under 300 MB whatever the file size.
"""

import argparse
import datetime
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
FLASK = [sys.executable, "-m", "flask", "--app", "app"]

FIRST = ["Ирина", "Анна", "Олег", "Пётр", "Мария", "John", "Emma", "Lan", "Minh", "Sofia", "Ivan", "Olga"]
LAST = ["Петрова", "Иванов", "Smith", "Nguyen", "Kuznetsova", "Lee", "Brown", "Tran", "Sokolov", "Müller"]
CITIES = ["Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Hà Nội", "London", "Berlin", "Тверь"]
TAGS = ["VIP", "Опт", "Newsletter", "B2B", "Loyal"]


def customers_file(n):
    path = DATA / f"customers_{n}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(1)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(
            "external_id,type,first_name,last_name,email,phone,gender,birth_date,city,country,source,"
            "email_consent,sms_consent,created_at,tags,custom.age\n"
        )
        for i in range(n):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            birth = datetime.date(1950, 1, 1) + datetime.timedelta(days=rnd.randrange(20000))
            created = datetime.datetime(2020, 1, 1) + datetime.timedelta(minutes=rnd.randrange(2_500_000))
            tags = "|".join(rnd.sample(TAGS, rnd.randrange(3)))
            f.write(
                f"C{i:08d},contact,{first},{last},user{i}@example.com,+7 9{i:09d},"
                f"{rnd.choice(('male', 'female'))},{birth:%d.%m.%Y},{rnd.choice(CITIES)},RU,site,"
                f"{rnd.choice(('да', 'нет'))},{rnd.randrange(2)},{created:%Y-%m-%d %H:%M},{tags},"
                f"{rnd.randrange(18, 80)}\n"
            )
    tmp.rename(path)
    return path


def orders_file(n, customers):
    path = DATA / f"orders_{n}_{customers}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(2)
    tmp = path.with_suffix(".tmp")
    shops = ["Online", "Store 1", "Store 2", "Marketplace"]
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("external_id,customer_external_id,ordered_at,status,shop,total\n")
        for i in range(n):
            when = datetime.datetime(2021, 1, 1) + datetime.timedelta(minutes=rnd.randrange(2_000_000))
            f.write(
                f"O{i:09d},C{rnd.randrange(customers):08d},{when:%Y-%m-%d %H:%M},"
                f"{rnd.choice(('paid', 'paid', 'paid', 'cancelled'))},{rnd.choice(shops)},"
                f"{rnd.randrange(100, 5_000_000) / 100:.2f}\n"
            )
    tmp.rename(path)
    return path


def run_import(env, kind, path):
    """Run `flask import`; returns (wall seconds, max RSS in MB, CPU seconds, output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(FLASK + ["import", kind, str(path)], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"import {kind} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of children is the largest of any child so far; the import is the largest.
    return wall, after.ru_maxrss / 1024, cpu, proc.stdout


def setup_database(args):
    if args.backend == "sqlite":
        path = (args.sqlite_path or DATA / "imports_bench.db").resolve()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(args.server, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.database,)).fetchone():
            if not args.replace:
                sys.exit(f"database {args.database} exists; pass --replace to drop and recreate it")
            conn.execute(f'DROP DATABASE "{args.database}"')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    return args.server.rsplit("/", 1)[0] + "/" + args.database


def machine():
    return f"{os.cpu_count()} CPUs (nproc), Python {platform.python_version()}, {platform.machine()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sqlite-path", type=Path)
    parser.add_argument(
        "--server",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--database", default="segmento_bench_imports")
    parser.add_argument("--replace", action="store_true")
    parser.add_argument("--no-reimport", action="store_true", help="skip importing the customers file twice")
    args = parser.parse_args()

    t = time.monotonic()
    files = [("customers", customers_file(args.customers), args.customers)]
    if not args.no_reimport:
        files.append(("customers", files[0][1], args.customers))
    if args.orders:
        files.append(("orders", orders_file(args.orders, args.customers), args.orders))
    print(f"files ready in {time.monotonic() - t:.0f} s", file=sys.stderr)

    url = setup_database(args)
    env = dict(os.environ, DATABASE_URL=url, PYTHONUNBUFFERED="1", SEGMENTO_INSTANCE=str(DATA / "instance"))
    subprocess.run(FLASK + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)

    results = []
    for index, (kind, path, rows) in enumerate(files):
        load = os.getloadavg()[0]
        wall, rss, cpu, output = run_import(env, kind, path)
        label = f"{kind} again (unchanged)" if index == 1 and kind == "customers" else kind
        print(output, file=sys.stderr)
        results.append((label, rows, path.stat().st_size, wall, cpu, rss, load))

    print(f"### {args.backend}: {args.customers:,} customers, {args.orders:,} orders\n")
    print(f"- {datetime.date.today()}, {machine()}")
    print("\n| import | rows | file | wall | rows/s | CPU | peak RSS | load avg before |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, rows, size, wall, cpu, rss, load in results:
        print(
            f"| {label} | {rows:,} | {size / 2**20:,.0f} MB | {wall:,.1f} s | {rows / wall:,.0f} | "
            f"{cpu:,.0f} s | {rss:,.0f} MB | {load:.1f} |"
        )


if __name__ == "__main__":
    main()
