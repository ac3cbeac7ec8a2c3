"""Builder speed: the live preview count and the segment list, through the real HTTP endpoints.

    .venv/bin/python bench/preview.py                                   # SQLite 1M demo, if present
    .venv/bin/python bench/preview.py --sqlite bench/data/demo_1000000.db --repeat 15
    .venv/bin/python bench/preview.py --postgres postgresql://postgres:postgres@127.0.0.1:5432/segmento_bench
    .venv/bin/python bench/preview.py --list-only --segments 1000 --markdown

Preview: for each definition, the builder's own form is obtained the way the
page gets it (POST /segments/builder with the pasted JSON, then the inputs a
browser would submit from that HTML), and POST /segments/preview is timed
with the Flask test client, logged in through the login form and sending the
CSRF header as htmx does. Each count is checked against the engine's count
first. One warm-up request per definition, then --repeat timed requests; the
p50/p95 are over the timed requests of one definition and over all of a kind.

The bench logs in as bench-preview@example.com, an admin account it creates
for the run and deletes afterwards (the preview is for admins and marketers,
and the demo data has managers only).

List: a fresh SQLite database (and, with --postgres, a fresh PostgreSQL
database `<name>_list`) with --segments segments, each with 30 size points and
3 runs, and GET /segments/ timed in the ways people use it (first page, a
later page, sorted by size, searched, filtered).
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PASSWORD = "bench preview password"
USER = "bench-preview@example.com"


def _in(*values, exclude=False):
    return [{"value": v, "exclude": exclude} for v in values]


def customer(*filters, match="all"):
    return {"version": 1, "match": "all", "blocks": [{"entity": "customer", "match": match, "filters": list(filters)}]}


def orders(*having, filters=(), having_match="all"):
    return {
        "version": 1,
        "match": "all",
        "blocks": [
            {
                "entity": "order",
                "match": "all",
                "filters": list(filters),
                "having": list(having),
                "having_match": having_match,
            }
        ],
    }


# (kind, name, definition). "customer" and "aggregate" are the kinds the target is for
# (p95 < 1 s at 1M customers); "scoped" ones (record filters) are shown for reference.
DEFINITIONS = [
    ("customer", "men (8 March)", customer({"field": "gender", "op": "in", "values": _in("male")})),
    ("customer", "everyone but Москва", customer({"field": "city", "op": "in", "values": _in("Москва", exclude=True)})),
    (
        "customer",
        "birthday in 3 days",
        customer({"field": "birth_date", "op": "relative", "from_days": 3, "to_days": 3, "ignore_year": True}),
    ),
    (
        "customer",
        "women in Москва with email consent",
        customer(
            {"field": "gender", "op": "in", "values": _in("female")},
            {"field": "city", "op": "in", "values": _in("Москва")},
            {"field": "email_consent", "op": "is", "value": True},
        ),
    ),
    (
        "customer",
        "age 25-35 or source contains 'ya'",
        customer(
            {"field": "age", "op": "between", "from": 25, "to": 35},
            {"field": "source", "op": "contains", "value": "ya"},
            match="any",
        ),
    ),
    (
        "customer",
        "custom field: destination Vietnam, with pets",
        customer(
            {"field": "custom.favourite_destination", "op": "in", "values": _in("Vietnam")},
            {"field": "custom.pets", "op": "between", "from": 1},
        ),
    ),
    ("aggregate", "5 orders or more", orders({"agg": "count", "op": "between", "from": 5})),
    ("aggregate", "never ordered", orders({"agg": "count", "op": "between", "from": 0, "to": 0})),
    ("aggregate", "last order over a year ago", orders({"agg": "last_at", "op": "relative", "to_days": -366})),
    (
        "aggregate",
        "spent 50,000 or more, first order this year",
        orders(
            {"agg": "sum", "op": "between", "from": 50000},
            {"agg": "first_at", "op": "relative", "from_days": -365, "to_days": 0},
        ),
    ),
    (
        "scoped",
        "Chinese tea, last such order over 3 months ago",
        orders(
            {"agg": "last_at", "op": "relative", "to_days": -90},
            filters=[{"field": "product_group", "op": "in", "values": _in("Tea/Chinese tea")}],
        ),
    ),
    (
        "scoped",
        "won annual gym membership",
        {
            "version": 1,
            "match": "all",
            "blocks": [
                {
                    "entity": "deal",
                    "match": "all",
                    "having": [],
                    "having_match": "all",
                    "filters": [
                        {"field": "pipeline", "op": "in", "values": _in("Memberships")},
                        {"field": "stage_kind", "op": "in", "values": _in("won")},
                        {"field": "custom.membership_type", "op": "in", "values": _in("annual")},
                    ],
                }
            ],
        },
    ),
]


def percentile(values, p):
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def load_average():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def make_app(url):
    from webapp import create_app
    from webapp.db import database, init_database

    init_database(url)
    database.connect(reuse_if_open=True)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-" + uuid.uuid4().hex, "WTF_CSRF_ENABLED": True})
    return app


def bench_user():
    """The account the bench logs in with: created for the run (an admin, so the login
    page opens on a demo database without one), or None when it was there already."""
    from webapp.accounts.service import create_user, find_user

    if find_user(USER):
        return None
    return create_user(USER, PASSWORD, role="admin", name="Bench")


def logged_in_client(app):
    """A test client logged in through the login form; returns (client, CSRF headers)."""
    import re

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": USER, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, "login failed (is an admin set up in this database?)"
    page = client.get("/segments/new").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    return client, {"X-CSRFToken": token, "HX-Request": "true"}


def builder_form(client, headers, definition):
    """What the browser submits for this definition: the builder's own inputs."""
    from segments.formdata import form_fields
    from werkzeug.datastructures import MultiDict

    response = client.post(
        "/segments/builder",
        headers=headers,
        data={"action": "load_json", "definition_json": json.dumps(definition, ensure_ascii=False)},
    )
    assert response.status_code == 200 and "HX-Retarget" not in response.headers, response.get_data(as_text=True)
    return MultiDict(form_fields(response.get_data(as_text=True)))


def bench_preview(url, repeat):
    from webapp.db import upgrade

    app = make_app(url)
    upgrade()  # the demo database may predate the latest tables the pages read
    created = bench_user()
    try:
        return _bench_preview(app, repeat)
    finally:
        if created is not None:
            created.delete_instance()


def _bench_preview(app, repeat):
    import re

    from webapp import engine

    client, headers = logged_in_client(app)
    from webapp.models import Customer

    customers = Customer.select().count()
    results = []
    for kind, name, definition in DEFINITIONS:
        form = builder_form(client, headers, definition)
        expected = engine.count(engine.parse_definition(definition))
        times, cpu = [], []
        for n in range(repeat + 1):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.post("/segments/preview", headers=headers, data=form)
            elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
            assert response.status_code == 200
            got = re.search(r'data-count="(\d+)"', response.get_data(as_text=True))
            assert got and int(got.group(1)) == expected, (name, got and got.group(1), expected)
            if n:
                times.append(elapsed)
                cpu.append(elapsed_cpu)
        results.append((kind, name, expected, times, cpu))
        print(
            f"  {kind:9} {name:48} {expected:>9,}  p50 {percentile(times, 50) * 1000:7.0f} ms"
            f"  p95 {percentile(times, 95) * 1000:7.0f} ms  (CPU here p50 {percentile(cpu, 50) * 1000:6.0f} ms)",
            flush=True,
        )
    return customers, results


def fill_segments(count):
    """`count` segments with 30 size points and 3 runs each, created by a few users."""
    from webapp.accounts.service import create_user
    from webapp.db import database
    from webapp.models import Segment, SegmentRun, SegmentSize, User, utcnow

    users = [create_user(f"bench{n}@example.com", PASSWORD, role="marketer", name=f"Marketer {n}") for n in range(5)]
    now = utcnow()
    words = [
        "Men",
        "Women",
        "Moscow",
        "Tea lovers",
        "Cat owners",
        "Gym",
        "Tours",
        "Bakery",
        "VIP",
        "Sleeping",
        "Новые",
        "Постоянные",
        "Khách hàng",
    ]
    definition = customer({"field": "gender", "op": "in", "values": _in("male")})
    with database.atomic():
        rows = []
        for n in range(count):
            rows.append(
                {
                    "code": f"bench_{n:05d}",
                    "name": f"{words[n % len(words)]} {n}",
                    "type": "static" if n % 7 == 0 else "dynamic",
                    "active": n % 5 != 0,
                    "in_analytics": n % 3 == 0,
                    "system": False,
                    "definition": definition,
                    "size": (n * 7919) % 100000,
                    "computed_at": now - datetime.timedelta(minutes=n),
                    "created_at": now - datetime.timedelta(hours=n),
                    "created_by": users[n % 5].id,
                    "updated_at": now,
                    "source": "definition",
                }
            )
        for start in range(0, len(rows), 500):
            Segment.insert_many(rows[start : start + 500]).execute()
        ids = [s for (s,) in Segment.select(Segment.id).tuples()]
        points, runs = [], []
        for sid in ids:
            for k in range(30):
                points.append(
                    {
                        "segment": sid,
                        "at": now - datetime.timedelta(hours=4 * (30 - k)),
                        "size": 1000 + (sid * 31 + k * 17) % 500,
                    }
                )
            for k in range(3):
                runs.append(
                    {
                        "segment": sid,
                        "status": "done",
                        "trigger": "schedule",
                        "size": 1000,
                        "entered": k,
                        "exited": 0,
                        "created_at": now - datetime.timedelta(hours=k),
                        "started_at": now - datetime.timedelta(hours=k),
                        "finished_at": now - datetime.timedelta(hours=k, seconds=-2),
                    }
                )
        for start in range(0, len(points), 2000):
            SegmentSize.insert_many(points[start : start + 2000]).execute()
        for start in range(0, len(runs), 2000):
            SegmentRun.insert_many(runs[start : start + 2000]).execute()
    database.execute_sql("ANALYZE")  # planner statistics, as a database in use has them
    return User


LIST_URLS = [
    ("first page (newest first)", "/segments/"),
    ("page 10", "/segments/?page=10"),
    ("sorted by size", "/segments/?sort=size&dir=desc"),
    ("search 'tea'", "/segments/?q=tea"),
    ("dynamic, active, 1k-50k customers", "/segments/?type=dynamic&active=yes&size_min=1000&size_max=50000"),
    ("htmx fragment, sorted by name", "/segments/?sort=name&dir=asc"),
]


def bench_list(url, count, repeat):
    from webapp.db import database, upgrade

    app = make_app(url)
    upgrade()
    fill_segments(count)
    bench_user()
    client, headers = logged_in_client(app)
    results = []
    for name, path in LIST_URLS:
        request_headers = {"HX-Request": "true", "HX-Target": "results"} if "htmx" in name else {}
        times, cpu = [], []
        for n in range(repeat + 1):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(path, headers=request_headers)
            elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
            assert response.status_code == 200
            if n:
                times.append(elapsed)
                cpu.append(elapsed_cpu)
        results.append((name, times, cpu))
        print(
            f"  {name:40} p50 {percentile(times, 50) * 1000:6.1f} ms  p95 {percentile(times, 95) * 1000:6.1f} ms"
            f"  (CPU of this process p50 {percentile(cpu, 50) * 1000:5.1f} ms)",
            flush=True,
        )
    database.close()
    return results


def _fresh_postgres(url, suffix):
    import psycopg

    base, name = url.rsplit("/", 1)
    target = f"{name}{suffix}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}"')
        conn.execute(f'CREATE DATABASE "{target}"')
    return f"{base}/{target}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_db = ROOT / "bench" / "data" / "demo_1000000.db"
    parser.add_argument(
        "--sqlite",
        default=str(default_db) if default_db.exists() else None,
        help="SQLite demo database for the preview (default: bench/data/demo_1000000.db)",
    )
    parser.add_argument("--postgres", help="PostgreSQL demo database URL for the preview (and a fresh <name>_list)")
    parser.add_argument("--repeat", type=int, default=15, help="timed preview requests per definition")
    parser.add_argument("--segments", type=int, default=1000, help="segments in the list benchmark")
    parser.add_argument("--list-repeat", type=int, default=60, help="timed list requests per view")
    parser.add_argument("--list-only", action="store_true")
    parser.add_argument("--preview-only", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="print a block for bench/RESULTS.md")
    args = parser.parse_args()

    report = []
    print(f"load average before: {load_average()}")
    if not args.list_only:
        for label, url in (
            ("SQLite", f"sqlite:///{args.sqlite}" if args.sqlite else None),
            ("PostgreSQL", args.postgres),
        ):
            if not url:
                continue
            print(f"Preview on {label} ({url})")
            customers, results = bench_preview(url, args.repeat)
            report.append(("preview", label, customers, results))
    if not args.preview_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"List with {args.segments:,} segments on SQLite")
            report.append(
                (
                    "list",
                    "SQLite",
                    args.segments,
                    bench_list(f"sqlite:///{tmp}/list.db", args.segments, args.list_repeat),
                )
            )
        if args.postgres:
            url = _fresh_postgres(args.postgres, "_list")
            print(f"List with {args.segments:,} segments on PostgreSQL ({url})")
            report.append(("list", "PostgreSQL", args.segments, bench_list(url, args.segments, args.list_repeat)))
    print(f"load average after: {load_average()}")
    if args.markdown:
        print(markdown(report, args))


def markdown(report, args):
    lines = [
        f"Measured {datetime.date.today().isoformat()} with `bench/preview.py` "
        f"(Flask test client through the real endpoints, logged in, CSRF header as htmx sends it; "
        f"{args.repeat} timed requests per definition after one warm-up; load average at the end "
        f"{load_average()} on a shared 2-core box).",
        "",
    ]
    for what, label, size, results in report:
        if what == "preview":
            cpu_note = (
                "app + SQLite, in this process" if label == "SQLite" else "the app only; the server's work is not in it"
            )
            lines += [
                f"**Preview count, {label}, {size:,} customers** (target: p95 < 1 s for customer-field and "
                f"unscoped-aggregate definitions; CPU: {cpu_note})",
                "",
                "| kind | definition | matches | p50 | p95 | CPU p50 |",
                "|---|---|---:|---:|---:|---:|",
            ]
            for kind, name, expected, times, cpu in results:
                lines.append(
                    f"| {kind} | {name} | {expected:,} | {percentile(times, 50) * 1000:.0f} ms | "
                    f"{percentile(times, 95) * 1000:.0f} ms | {percentile(cpu, 50) * 1000:.0f} ms |"
                )
            for kind in ("customer", "aggregate"):
                pooled = [t for k, _n, _e, times, _c in results if k == kind for t in times]
                pooled_cpu = [t for k, _n, _e, _t, cpu in results if k == kind for t in cpu]
                if pooled:
                    lines.append(
                        f"| **{kind}, all** | | | {percentile(pooled, 50) * 1000:.0f} ms | "
                        f"**{percentile(pooled, 95) * 1000:.0f} ms** | "
                        f"{percentile(pooled_cpu, 50) * 1000:.0f} ms |"
                    )
            lines.append("")
        else:
            cpu_note = (
                "this process, i.e. app + SQLite, without the wait for a core"
                if label == "SQLite"
                else "the app only, without the server's work and the wait for a core"
            )
            lines += [
                f"**Segment list, {label}, {size:,} segments** (30 size points and 3 runs each; "
                f"target: p95 < 100 ms; CPU: {cpu_note})",
                "",
                "| view | p50 | p95 | CPU p50 | CPU p95 |",
                "|---|---:|---:|---:|---:|",
            ]
            for name, times, cpu in results:
                lines.append(
                    f"| {name} | {percentile(times, 50) * 1000:.1f} ms | {percentile(times, 95) * 1000:.1f} ms"
                    f" | {percentile(cpu, 50) * 1000:.1f} ms | {percentile(cpu, 95) * 1000:.1f} ms |"
                )
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
