"""Load: marketers and integrations at once against a running Segmento (issue 21).

    .venv/bin/python bench/load.py --host http://127.0.0.1:8000 \\
        --email admin@example.com --password '...' --token TOKEN \\
        [--users 200] [--minutes 5] [--label "make serve, PostgreSQL 1M"] [--sign-in once|each]

Drives `--users` concurrent users with locust (4 marketers to 1 integration):
- a marketer, signed in (a session signed in through the login form before
  the run, by default; `--sign-in each`: every marketer signs in through the
  form as it starts, a storm of argon2 hashes), browses the home page,
  the segment list and segment pages, searches customers and opens their
  cards, opens analytics, RFM and events, and previews definitions (the API's
  preview, as the builder's live count does);
- an integration upserts customers and orders through the REST API
  (`PUT /api/v1/customers/{id}`, `PUT /api/v1/orders/{id}`) on ids of its own
  (`load-c-N`, `load-o-N`), as a shop's CRM feed would.

Start the stack to measure first (`make serve` against PostgreSQL, or
`make run`), on the demo data (`bench/demo_data.py` for 1,000,000
customers); make the user and token with `flask users create` and
`flask api-token create`. The report prints requests, failures and the
50th, 95th and 99th percentiles per request type and per group (pages,
previews, API writes, sign-in; exact, from every request's time), with the
load average before and after, as a block for bench/RESULTS.md. Run it
against both stacks in the same sitting and compare.

This file is also the locustfile: `locust -f bench/load.py` reads the
user classes below (settings through LOAD_EMAIL, LOAD_PASSWORD, LOAD_TOKEN).
"""

import argparse
import itertools
import json
import math
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from locust import HttpUser, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import cpu_by_part  # noqa: E402 - bench/cpu.py

SEARCHES = ["ivan", "nguyen", "olga", "moscow", "hà nội", "@gmail.com", "+79", "anna", "tran", "shop"]
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
_counter = itertools.count()


def sign_in(client, base="", **locust_kw):
    """Sign in through the login form, as a person does (CSRF token included)."""
    page = client.get(base + "/login", **locust_kw).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    client.post(
        base + "/login",
        data={
            "csrf_token": token.group(1) if token else "",
            "email": os.environ["LOAD_EMAIL"],
            "password": os.environ["LOAD_PASSWORD"],
        },
        **locust_kw,
    )


class Marketer(HttpUser):
    """Reads pages and previews definitions, signed in: with the session signed
    in once before the run (LOAD_COOKIES, `--sign-in once`: marketers at work
    keep their sessions for days), or each through the form (`--sign-in each`:
    every marketer signing in within the ramp-up, a storm of argon2 hashes)."""

    weight = 4
    wait_time = between(1, 3)

    def on_start(self):
        if os.environ.get("LOAD_COOKIES"):
            for name, value in json.loads(os.environ["LOAD_COOKIES"]).items():
                self.client.cookies.set(name, value)
        else:
            sign_in(self.client, name="login")
        listing = self.client.get("/segments/", name="segments").text
        self.segments = sorted(set(re.findall(r'href="/segments/([a-z0-9_]+)"', listing)) - {"new", "builder"})
        self.customer_ids = []

    @task(3)
    def home(self):
        self.client.get("/", name="home")

    @task(3)
    def segment_list(self):
        self.client.get("/segments/", name="segments")

    @task(4)
    def segment_page(self):
        if self.segments:
            self.client.get(f"/segments/{random.choice(self.segments)}", name="segment page")

    @task(4)
    def search(self):
        page = self.client.get("/customers/", params={"q": random.choice(SEARCHES)}, name="customer search").text
        self.customer_ids = re.findall(r'href="/customers/(\d+)"', page)[:20] or self.customer_ids

    @task(3)
    def card(self):
        if self.customer_ids:
            self.client.get(f"/customers/{random.choice(self.customer_ids)}", name="customer card")

    @task(1)
    def dashboards(self):
        self.client.get(random.choice(["/analytics/", "/rfm/", "/events/"]), name="analytics, RFM, events")

    @task(2)
    def preview(self):
        self.client.post(
            "/api/v1/segments/preview",
            json={"definition": random.choice(PREVIEWS)},
            headers={"Authorization": f"Bearer {os.environ['LOAD_TOKEN']}"},
            name="preview",
        )


class Integration(HttpUser):
    """A CRM feed: customer and order upserts through the REST API."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.client.headers["Authorization"] = f"Bearer {os.environ['LOAD_TOKEN']}"
        self.prefix = f"{os.getpid()}-{next(_counter)}"
        # An order names a customer this feed has sent before (the API answers
        # 422 for an unknown one, as it should): the first task sends one.
        self.sent = []
        self.customer()

    @task(2)
    def customer(self):
        n = random.randrange(1000)
        response = self.client.put(
            f"/api/v1/customers/load-c-{self.prefix}-{n}",
            json={"first_name": "Load", "last_name": f"Test {n}", "city": random.choice(["Москва", "Hà Nội"])},
            name="API customer upsert",
        )
        if response.ok:
            self.sent.append(n)

    @task(1)
    def order(self):
        if not self.sent:
            return self.customer()
        n = random.randrange(1000)
        self.client.put(
            f"/api/v1/orders/load-o-{self.prefix}-{n}",
            json={
                "customer_external_id": f"load-c-{self.prefix}-{random.choice(self.sent)}",
                "ordered_at": "2026-12-01T10:00:00",
                "status": "completed",
                "total": "1500.00",
                "items": [{"sku": "LOAD-1", "product_name": "Load", "quantity": 1, "price": "1500.00"}],
            },
            name="API order upsert",
        )


GROUPS = {
    "pages": {"home", "segments", "segment page", "customer search", "customer card", "analytics, RFM, events"},
    "previews": {"preview"},
    "API writes": {"API customer upsert", "API order upsert"},
    "sign-in": {"login"},
}


@events.request.add_listener
def _record(request_type, name, response_time, exception, **kwargs):
    """Every request's time into LOAD_LOG: exact percentiles per type and group."""
    path = os.environ.get("LOAD_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{request_type}\t{name}\t{response_time:.1f}\t{0 if exception is None else 1}\n")


def _percentile(values, q):
    """Nearest-rank percentile of sorted `values`."""
    return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]


def _row(title, times, failures):
    times = sorted(times)
    p50, p95, p99 = (_percentile(times, q) for q in (50, 95, 99))
    return f"| {title} | {len(times)} | {failures} | {p50:.0f} | {p95:.0f} | {p99:.0f} | {times[-1]:.0f} |"


def report(log_path, users, minutes, label, load_before):
    by_type, failed = {}, {}
    for line in open(log_path, encoding="utf-8"):
        method, name, ms, failure = line.rstrip("\n").split("\t")
        key = (method, name)
        by_type.setdefault(key, []).append(float(ms))
        failed[key] = failed.get(key, 0) + int(failure)
    load = os.getloadavg()
    header = [
        "| request | requests | failures | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines = [
        f"{label}: {users} users for {minutes:g} min, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, load average before {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f}, after {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "",
        *header,
    ]
    for (method, name), times in sorted(by_type.items(), key=lambda kv: kv[0][1]):
        lines.append(_row(f"{method} {name}", times, failed[(method, name)]))
    lines += ["", *header]
    for group, names in GROUPS.items():
        keys = [k for k in by_type if k[1] in names]
        if keys:
            lines.append(_row(group, [t for k in keys for t in by_type[k]], sum(failed[k] for k in keys)))
    everything = [t for times in by_type.values() for t in times]
    if everything:
        lines.append(_row("all", everything, sum(failed.values())))
    return "\n".join(lines)


def stack_part(comm, cmdline):
    """Which part of the stack under test a process is (for `cpu_by_part`):
    `make serve` (webapp.serve, gunicorn, worker.py) or `make run` (flask run)."""
    if comm.startswith("postgres"):
        return "PostgreSQL"
    if comm in ("redis-server", "valkey-server"):
        return "Redis"
    if "worker.py" in cmdline:
        return "workers"
    if "gunicorn" in cmdline or "webapp.serve" in cmdline or "flask" in cmdline and " run" in cmdline:
        return "web"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--token", required=True, help="an API token of a marketer or admin")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--label", default="load")
    parser.add_argument(
        "--sign-in",
        choices=("once", "each"),
        default="once",
        help="once: the marketers share a session signed in before the run; each: every marketer signs in",
    )
    args = parser.parse_args()
    env = dict(os.environ, LOAD_EMAIL=args.email, LOAD_PASSWORD=args.password, LOAD_TOKEN=args.token)
    env.pop("LOAD_COOKIES", None)
    if args.sign_in == "once":
        import requests  # after locust's gevent patching (ssl before it recurses)

        with requests.Session() as session:
            os.environ.update(LOAD_EMAIL=args.email, LOAD_PASSWORD=args.password)
            sign_in(session, args.host.rstrip("/"))
            if "/login" in session.get(args.host.rstrip("/") + "/").url:
                sys.exit("sign-in refused: check --email and --password")
            env["LOAD_COOKIES"] = json.dumps(session.cookies.get_dict())
    load_before = os.getloadavg()
    cpu_before, wall_before = cpu_by_part(stack_part), time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = env["LOAD_LOG"] = str(Path(tmp) / "requests.tsv")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                __file__,
                "--headless",
                "--host",
                args.host,
                "-u",
                str(args.users),
                "-r",
                str(args.spawn_rate),
                "-t",
                f"{int(args.minutes * 60)}s",
                "--only-summary",
            ],
            env=env,
            check=False,
        )
        wall = time.monotonic() - wall_before
        cpu_after = cpu_by_part(stack_part)
        cpu = {part: cpu_after.get(part, 0.0) - cpu_before.get(part, 0.0) for part in cpu_after}
        cpu["locust (the load itself)"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + (
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
        )
        label = f"{args.label} (sign-in: {args.sign_in})"
        print(report(log_path, args.users, args.minutes, label, load_before))
        print()
        print(
            f"CPU seconds used in the {wall:.0f} s of the run ({os.cpu_count()} CPUs: {wall * os.cpu_count():.0f} in all):"
        )
        print()
        print("| part | CPU s | share of the machine |")
        print("|---|--:|--:|")
        for part, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
            print(f"| {part} | {seconds:.0f} | {seconds / (wall * os.cpu_count()):.0%} |")


if __name__ == "__main__":
    main()
