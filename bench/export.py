"""Export speed and memory: a segment of N members to CSV (and XLSX).

    .venv/bin/python bench/export.py [--db sqlite|postgresql] [--rows 1000000] [--xlsx-rows 100000]

Builds a fresh database (SQLite file under /tmp, or the PostgreSQL database
`segmento_bench_export` next to TEST_POSTGRES_URL) with N customers, an order
rollup for half of them, a custom field, tags, and a segment whose members
are all of them; then runs the real export (webapp.export.execute, as the job
does) in a child process and reports wall time and the child's peak memory
(ru_maxrss). Target: 1,000,000 members to CSV under 30 s and 300 MB.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = [
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "city",
    "created_at",
    "tags",
    "custom.score",
    "orders_count",
    "orders_total",
    "last_order_at",
]


def database_url(kind):
    if kind == "sqlite":
        return f"sqlite:///{tempfile.gettempdir()}/segmento-bench-export.db"
    base = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
    return base.rsplit("/", 1)[0] + "/segmento_bench_export"


def build(url, rows):
    """A fresh database with `rows` customers in the segment `everyone`; returns its id."""
    from webapp.db import database, init_database, upgrade

    if url.startswith("sqlite"):
        path = Path(url[len("sqlite:///") :])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        import psycopg

        admin, name = url.rsplit("/", 1)
        with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    init_database(url)
    database.connect()
    upgrade()
    from webapp.fields.service import create_field
    from webapp.models import Segment, Tag

    pg = not url.startswith("sqlite")
    series = (
        "SELECT g AS i FROM generate_series(1, %d) g" % rows
        if pg
        else "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d) SELECT i FROM s" % rows
    )
    concat = lambda *parts: " || ".join(parts)

    def run(text):
        database.execute_sql(text.replace("%", "%%") if pg else text)  # psycopg reads % as a placeholder

    with database.atomic():
        run(
            "INSERT INTO customer (id, external_id, type, first_name, last_name, email, phone, city, email_consent, "
            "sms_consent, created_at, updated_at, first_name_ci, last_name_ci, email_ci, city_ci) "
            f"SELECT i, {concat(repr('c'), 'i')}, 'contact', {concat(repr('Name'), '(i % 1000)')}, "
            f"{concat(repr('=Family'), '(i % 5000)')}, {concat(repr('user'), 'i', repr('@example.com'))}, "
            f"{concat(repr('+7 900 '), 'i')}, 'Москва', TRUE, FALSE, '2024-01-01 10:00:00', '2024-01-01 10:00:00', "
            f"{concat(repr('name'), '(i % 1000)')}, {concat(repr('=family'), '(i % 5000)')}, "
            f"{concat(repr('user'), 'i', repr('@example.com'))}, 'москва' FROM ({series}) q".replace(
                "TRUE", "1" if not pg else "TRUE"
            ).replace("FALSE", "0" if not pg else "FALSE")
        )
        run(
            "INSERT INTO customer_order_stats (customer_id, orders_count, total_cents, quantity, first_at, last_at) "
            f"SELECT i, i % 7 + 1, i * 13 % 100000, i % 11, '2023-05-01 10:00:00', '2024-12-01 10:00:00' "
            f"FROM ({series}) q WHERE i % 2 = 0"
        )
        tag = Tag.create(name="vip")
        run(f"INSERT INTO customer_tag (customer_id, tag_id) SELECT i, {tag.id} FROM ({series}) q WHERE i % 10 = 0")
        field = create_field("customer", "score", "Score", "integer")
        run(
            f"INSERT INTO custom_value (field_id, record_id, value_num) SELECT {field.id}, i, i % 100 "
            f"FROM ({series}) q WHERE i % 3 = 0"
        )
        segment = Segment.create(code="everyone", name="Everyone", definition={"version": 1, "blocks": []}, size=rows)
        run(
            f"INSERT INTO segment_member (segment_id, customer_id, since) "
            f"SELECT {segment.id}, i, '2024-06-01 00:00:00' FROM ({series}) q"
        )
        if pg:
            database.execute_sql("SELECT setval('customer_id_seq', %d)" % rows)
    if pg:
        database.execute_sql("ANALYZE")
    database.close()
    return segment.id


def child(url, fmt, out_dir, limit):
    """Runs in the child process: one export, then print seconds and rows."""
    from webapp.db import database, init_database

    init_database(url)
    database.connect()
    from webapp.exports import service as export

    run = export.create_export({"segment": "everyone"}, COLUMNS, fmt, bom=True)
    if limit:  # XLSX: a smaller segment (a sheet holds 1,048,575 rows anyway)
        from webapp.models import Segment

        segment = Segment.create(code=f"first{limit}", name="First", definition={"version": 1, "blocks": []})
        database.execute_sql(
            f"INSERT INTO segment_member (segment_id, customer_id, since) SELECT {segment.id}, "
            f"customer_id, since FROM segment_member WHERE customer_id <= {int(limit)}"
        )
        run.source = {"segment": segment.code}
        run.save()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    run = export.execute(run.id, out_dir, tz="Europe/Moscow")
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    size = os.path.getsize(run.file_path)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # this process's peak, KiB on Linux
    print(f"{elapsed:.2f} {run.rows_done} {size} {peak_kb} {cpu_seconds:.2f}")


def measure(url, fmt, limit=0):
    with tempfile.TemporaryDirectory() as out_dir:
        result = subprocess.run(
            [sys.executable, __file__, "--child", url, fmt, out_dir, str(limit)],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, rows, size, peak_kb, cpu = result.stdout.strip().splitlines()[-1].split()
        return float(seconds), int(rows), int(size), int(peak_kb) / 1024, float(cpu)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="keep the database an earlier run built")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        url = database_url(kind)
        if not args.reuse:
            started = time.perf_counter()
            build(url, args.rows)
            print(f"[{kind}] built {args.rows:,} members in {time.perf_counter() - started:.1f} s", flush=True)
        load = os.getloadavg()[0]
        seconds, rows, size, peak, cpu = measure(url, "csv")
        print(
            f"[{kind}] CSV  {rows:,} rows, {len(COLUMNS)} columns: {seconds:.1f} s wall, {cpu:.1f} s CPU of the "
            f"exporting process ({rows / seconds:,.0f} rows/s), {size / 2**20:.0f} MB file, peak RSS {peak:.0f} MB "
            f"(load average {load:.1f} on {os.cpu_count()} cores)",
            flush=True,
        )
        if args.xlsx_rows:
            seconds, rows, size, peak, cpu = measure(url, "xlsx", args.xlsx_rows)
            print(
                f"[{kind}] XLSX {rows:,} rows: {seconds:.1f} s wall, {cpu:.1f} s CPU "
                f"({rows / seconds:,.0f} rows/s), {size / 2**20:.0f} MB file, peak RSS {peak:.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
