"""Load: marketers and integrations at once against a running Segmento (issue 21).

    .venv/bin/python bench/load.py --host http://127.0.0.1:8000 \\
        --email admin@example.com --password '...' --token TOKEN \\
        [--users 200] [--minutes 5] [--label "make serve, PostgreSQL 1M"]

Drives `--users` concurrent users with locust (4 marketers to 1 integration):
- a marketer signs in through the login form, then browses the home page,
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
median and 95th percentile per group (pages, previews, API writes), with the
load average, as a block for bench/RESULTS.md. Run it against both stacks in
the same sitting and compare.

This file is also the locustfile: `locust -f bench/load.py` reads the
user classes below (settings through LOAD_EMAIL, LOAD_PASSWORD, LOAD_TOKEN).
"""

import argparse
import csv
import itertools
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from locust import HttpUser, between, task

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


class Marketer(HttpUser):
    """Signs in with the form, then reads pages and previews definitions."""

    weight = 4
    wait_time = between(1, 3)

    def on_start(self):
        page = self.client.get("/login", name="login").text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        self.client.post(
            "/login",
            data={
                "csrf_token": token.group(1) if token else "",
                "email": os.environ["LOAD_EMAIL"],
                "password": os.environ["LOAD_PASSWORD"],
            },
            name="login",
        )
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

    @task(2)
    def customer(self):
        n = random.randrange(1000)
        self.client.put(
            f"/api/v1/customers/load-c-{self.prefix}-{n}",
            json={"first_name": "Load", "last_name": f"Test {n}", "city": random.choice(["Москва", "Hà Nội"])},
            name="API customer upsert",
        )

    @task(1)
    def order(self):
        n = random.randrange(1000)
        self.client.put(
            f"/api/v1/orders/load-o-{self.prefix}-{n}",
            json={
                "customer_external_id": f"load-c-{self.prefix}-{random.randrange(1000)}",
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
}


def report(stats_csv, users, minutes, label):
    rows = list(csv.DictReader(open(stats_csv, encoding="utf-8")))
    load = os.getloadavg()
    lines = [
        f"{label}: {users} users for {minutes} min, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "",
        "| group | requests | failures | median ms | p95 ms (worst of the group) |",
        "|---|---:|---:|---:|---:|",
    ]
    for group, names in GROUPS.items():
        mine = [r for r in rows if r["Name"] in names]
        if not mine:
            continue
        requests = sum(int(r["Request Count"]) for r in mine)
        failures = sum(int(r["Failure Count"]) for r in mine)
        median = max(float(r["Median Response Time"]) for r in mine)
        p95 = max(float(r["95%"]) for r in mine)
        lines.append(f"| {group} | {requests} | {failures} | {median:.0f} | {p95:.0f} |")
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    if total:
        lines.append(f"| all | {total['Request Count']} | {total['Failure Count']} | | {total['95%']} |")
    return "\n".join(lines)


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
    args = parser.parse_args()
    env = dict(os.environ, LOAD_EMAIL=args.email, LOAD_PASSWORD=args.password, LOAD_TOKEN=args.token)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "stats")
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
                "--csv",
                prefix,
                "--only-summary",
            ],
            env=env,
            check=False,
        )
        print(report(prefix + "_stats.csv", args.users, args.minutes, args.label))


if __name__ == "__main__":
    main()
