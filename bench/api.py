"""API member listing speed: customers per second through cursor pagination.

    .venv/bin/python bench/api.py [--db sqlite|postgresql|both] [--rows 200000] [--limit 1000] [--reuse]

Builds the same database as bench/export.py (N customers, all members of the
segment `everyone`; --reuse keeps one already built), serves the real app
over HTTP on 127.0.0.1 (werkzeug's server, one thread, in a child process)
and walks GET /api/v1/segments/everyone/members page by page with a token,
as an integration would. Target: at least 20,000 customers per second.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cpu import cpu_seconds  # noqa: E402 - bench/cpu.py


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(url, port):
    """Child process: the app on 127.0.0.1:port."""
    from werkzeug.serving import make_server

    from webapp import create_app

    app = create_app({"DATABASE_URL": url, "REDIS_URL": "", "API_RATE_LIMIT": "1000000 per minute"})
    make_server("127.0.0.1", port, app, threaded=False).serve_forever()


def token(url):
    from webapp.accounts.service import create_token, create_user
    from webapp.db import database, init_database
    from webapp.models import User

    init_database(url)
    database.connect(reuse_if_open=True)
    user = User.get_or_none(User.email == "bench@example.com") or create_user(
        "bench@example.com", "bench password 1", role="manager"
    )
    secret = create_token(user, "bench")[1]
    database.close()
    return secret


def walk(port, secret, path, limit, max_pages=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {secret}"}
    cursor, total, pages = None, 0, 0
    started = time.perf_counter()
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        conn.request("GET", path + query, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{response.status}: {body[:300]!r}")
        data = json.loads(body)
        total += len(data["items"])
        pages += 1
        cursor = data["next_cursor"]
        if not cursor or pages == max_pages:
            break
    return total, pages, time.perf_counter() - started


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    import export as export_bench

    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--reuse", action="store_true", help="use the database bench/export.py built")
    parser.add_argument("--pages", type=int, default=None, help="stop after this many pages")
    args = parser.parse_args()
    for kind in ["sqlite", "postgresql"] if args.db == "both" else [args.db]:
        url = export_bench.database_url(kind)
        if not args.reuse:
            export_bench.build(url, args.rows)
        secret = token(url)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", url, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            for path in ("/api/v1/segments/everyone/members", "/api/v1/customers"):
                load = os.getloadavg()[0]
                cpu = cpu_seconds(server.pid)
                total, pages, seconds = walk(port, secret, path, args.limit, args.pages)
                cpu = cpu_seconds(server.pid) - cpu
                print(
                    f"[{kind}] GET {path}: {total:,} customers in {pages} pages of {args.limit}: {seconds:.1f} s "
                    f"= {total / seconds:,.0f} customers/s; the app's process used {cpu:.1f} s CPU "
                    f"({total / cpu:,.0f} customers per CPU second); load average {load:.1f} on "
                    f"{os.cpu_count()} cores",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
