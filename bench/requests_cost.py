"""Cost of each request type of bench/load.py, one request at a time (issue 21).

    REDIS_URL=redis://127.0.0.1:6399/0 \\
    .venv/bin/python bench/requests_cost.py \\
        --database postgresql://postgres:postgres@127.0.0.1/segmento_home \\
        --email loadadmin@example.com [--repeat 5] [--only home,segments] \\
        [--profile "customer search"] [--queries]

Builds the app in this process (as a gunicorn process does) and sends every
request type of bench/load.py through Flask's test client, signed in as
`--email` (a session made for that user, no password needed; an API token is
made for the API requests and revoked at the end). For each request type,
over every variant it has (each search word, each segment of the list, each
preview definition, ...), `--repeat` times after one warm-up round, it prints
the mean per request of:

- wall time;
- web CPU: this process's CPU time (time.process_time), i.e. what a gunicorn
  process spends on it;
- PostgreSQL CPU: the CPU time of this database's server processes (from
  /proc/<pid>/stat, 10 ms ticks, so read it as a mean over many requests);
  other clients of the same database add to it, so keep the stack stopped;
- PostgreSQL workers: the CPU time of server processes that exited meanwhile
  (parallel workers; also any other database's backends: an upper bound);
- queries: the statements peewee sent.

`--url http://127.0.0.1:8123 --server-pids PID[,PID]` sends the requests over
HTTP to a running server instead (gunicorn with one process, started with the
same SECRET_KEY and DATABASE_URL), and reads the web CPU of those processes
from /proc (10 ms ticks; the statements are not counted then).

`--profile NAME` prints the cProfile of that request type (top 40 by
cumulative time); `--queries` prints the statements of one request of each
type. The API writes create customers and orders `cost-c-N` / `cost-o-N`.
Run before and after a change in the same sitting (the machine is shared).
"""

import argparse
import cProfile
import logging
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cpu import cpu_seconds, stat_fields  # noqa: E402 - bench/cpu.py

SEARCHES = ["ivan", "nguyen", "olga", "moscow", "hà nội", "@gmail.com", "+79", "anna", "tran", "shop"]
# bench/load.py's PREVIEWS (not imported: importing locust patches the process with gevent)
PREVIEWS = [
    {
        "version": 1,
        "blocks": [{"entity": "customer", "filters": [{"field": "city", "op": "in", "values": [{"value": "Москва"}]}]}],
    },
    {
        "version": 1,
        "blocks": [{"entity": "customer", "filters": [{"field": "email_consent", "op": "is", "value": True}]}],
    },
    {
        "version": 1,
        "blocks": [
            {
                "entity": "order",
                "filters": [{"field": "ordered_at", "op": "relative", "from_days": -180, "to_days": 0}],
                "having": [{"agg": "count", "op": "between", "from": 2}],
            }
        ],
    },
]


class QueryCounter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.queries = []

    def emit(self, record):
        self.queries.append(record.getMessage())


def server_cpu(dbname):
    """(CPU seconds so far of the PostgreSQL backends connected to `dbname`
    (by process title), of the server's exited processes): the second is the
    postmaster's children time, where parallel workers (they live for one
    query) end up, and so does any other database's backend that exits
    meanwhile: read it as an upper bound, averaged over the repeats."""
    own, postmaster = 0, None
    marker = f" {dbname} ".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read()
            if not title.startswith(b"postgres: ") or marker not in title:
                continue
            own += cpu_seconds(pid)
            postmaster = stat_fields(pid)[1]
        except OSError:
            continue
    reaped = 0.0
    if postmaster:
        reaped = cpu_seconds(postmaster, children=True) - cpu_seconds(postmaster)
    return own, reaped


class HttpClient:
    """The test client's get/post/put over HTTP to a running server (`--url`)."""

    def __init__(self, url, cookie_name, cookie):
        import requests

        self.url, self.session = url.rstrip("/"), requests.Session()
        self.session.cookies.set(cookie_name, cookie)

    def _send(self, method, path, query_string=None, json=None, headers=None):
        response = self.session.request(
            method, self.url + path, params=query_string, json=json, headers=headers, allow_redirects=False
        )
        response.get_data = lambda as_text=True: response.text
        return response

    def get(self, path, **kw):
        return self._send("GET", path, **kw)

    def post(self, path, **kw):
        return self._send("POST", path, **kw)

    def put(self, path, **kw):
        return self._send("PUT", path, **kw)


def process_cpu(pids):
    """CPU seconds so far of these processes (the server's, with `--url`)."""
    return sum(cpu_seconds(pid) for pid in pids)


def request_types(client, token):
    """{name: [callable sending one request]} as bench/load.py's tasks send them."""
    listing = client.get("/segments/").get_data(as_text=True)
    codes = sorted(set(re.findall(r'href="/segments/([a-z0-9_]+)"', listing)) - {"new", "builder"})
    ids = []
    for word in SEARCHES:
        page = client.get("/customers/", query_string={"q": word}).get_data(as_text=True)
        ids += re.findall(r'href="/customers/(\d+)"', page)[:3]
    auth = {"Authorization": f"Bearer {token}"}
    counter = iter(range(10**9))

    def upsert_customer():
        n = next(counter) % 1000
        return client.put(
            f"/api/v1/customers/cost-c-{n}",
            json={"first_name": "Load", "last_name": f"Test {n}", "city": "Москва"},
            headers=auth,
        )

    def upsert_order():
        n = next(counter) % 1000
        return client.put(
            f"/api/v1/orders/cost-o-{n}",
            json={
                "customer_external_id": "cost-c-0",
                "ordered_at": "2026-12-01T10:00:00",
                "status": "completed",
                "total": "1500.00",
                "items": [{"sku": "LOAD-1", "product_name": "Load", "quantity": 1, "price": "1500.00"}],
            },
            headers=auth,
        )

    upsert_customer()  # the customer every order names
    return {
        "home": [lambda: client.get("/")],
        "segments": [lambda: client.get("/segments/")],
        "segment page": [lambda c=c: client.get(f"/segments/{c}") for c in codes],
        "customer search": [lambda w=w: client.get("/customers/", query_string={"q": w}) for w in SEARCHES],
        "customer card": [lambda i=i: client.get(f"/customers/{i}") for i in ids],
        "analytics": [lambda: client.get("/analytics/")],
        "rfm": [lambda: client.get("/rfm/")],
        "events": [lambda: client.get("/events/")],
        "preview": [
            lambda d=d: client.post("/api/v1/segments/preview", json={"definition": d}, headers=auth) for d in PREVIEWS
        ],
        "API customer upsert": [upsert_customer],
        "API order upsert": [upsert_order],
    }


def measure(calls, repeat, dbname, counter, web_cpu=time.process_time):
    walls, cpus, pgs, workers, queries = [], [], [], [], []
    for call in calls:  # warm-up: templates compiled, connection open
        response = call()
        assert response.status_code < 400, (response.status_code, response.get_data(as_text=True)[:500])
    for _ in range(repeat):
        for call in calls:
            counter.queries.clear()
            pg0, cpu0, wall0 = server_cpu(dbname), web_cpu(), time.perf_counter()
            response = call()
            wall, cpu = time.perf_counter() - wall0, web_cpu() - cpu0
            pg1 = server_cpu(dbname)
            pgs.append(pg1[0] - pg0[0])
            workers.append(pg1[1] - pg0[1])
            walls.append(wall)
            cpus.append(cpu)
            queries.append(len(counter.queries))
            assert response.status_code < 400, response.status_code
    # Means: the load sends every variant alike, and the 10 ms ticks of the server's CPU average out.
    ms = lambda values: statistics.mean(values) * 1000  # noqa: E731
    return ms(walls), ms(cpus), ms(pgs), ms(workers), statistics.mean(queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", help="comma-separated request types")
    parser.add_argument("--profile", help="a request type to profile")
    parser.add_argument("--queries", action="store_true", help="print the statements of one request of each type")
    parser.add_argument("--url", help="send the requests over HTTP to this running server instead (same SECRET_KEY)")
    parser.add_argument("--server-pids", help="with --url: comma-separated pids of the server's processes (web CPU)")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database
    dbname = args.database.rsplit("/", 1)[1].split("?")[0]

    from app import app
    from webapp.accounts.service import create_token, find_user, revoke, session_stamp
    from webapp.db import database

    counter = QueryCounter()
    peewee_log = logging.getLogger("peewee")
    peewee_log.addHandler(counter)
    peewee_log.setLevel(logging.DEBUG)
    peewee_log.propagate = False

    with app.app_context():
        with database.connection_context():
            user = find_user(args.email)
            token, secret = create_token(user, "bench/requests_cost.py")
            stamp = session_stamp(user)
    web_cpu = time.process_time
    if args.url:
        cookie = app.session_interface.get_signing_serializer(app).dumps({"user_id": user.id, "stamp": stamp})
        client = HttpClient(args.url, app.config["SESSION_COOKIE_NAME"], cookie)
        pids = args.server_pids.split(",")
        web_cpu = lambda: process_cpu(pids)  # noqa: E731
    else:
        client = app.test_client()
        with client.session_transaction() as session:
            session["user_id"] = user.id
            session["stamp"] = stamp
    try:
        types = request_types(client, secret)
        wanted = args.only.split(",") if args.only else list(types)
        load = os.getloadavg()
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load[0]:.2f} / {load[1]:.2f}")
        print("| request | variants | wall ms | web CPU ms | PG CPU ms | PG workers ms | queries |")
        print("|---|--:|--:|--:|--:|--:|--:|")
        for name in wanted:
            calls = types[name]
            wall, cpu, pg, workers, queries = measure(calls, args.repeat, dbname, counter, web_cpu)
            print(
                f"| {name} | {len(calls)} | {wall:.1f} | {cpu:.1f} | {pg:.1f} | {workers:.1f} | {queries:.1f} |",
                flush=True,
            )
        if args.queries:
            for name in wanted:
                counter.queries.clear()
                types[name][0]()
                print(f"\n## {name}: {len(counter.queries)} statements")
                for q in counter.queries:
                    print("  ", q[:400])
        if args.profile:
            calls = types[args.profile]
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.repeat):
                for call in calls:
                    call()
            profile.disable()
            pstats.Stats(profile).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(
                int(os.environ.get("PROFILE_LINES", "40"))
            )
    finally:
        with app.app_context():
            with database.connection_context():
                revoke(token)


if __name__ == "__main__":
    main()
