"""The production stack under faults (issue 21's "done when"): `make serve`
(webapp.serve) on PostgreSQL and Debian's redis-server, 3 web processes and 3
workers; a mailing to 20,000 customers and scheduled segment runs go on while
one worker is SIGKILLed, Redis is restarted (empty: `--save ''`) and
PostgreSQL is restarted. Afterwards, without any manual action: every
recipient got exactly one message; every dynamic segment's membership equals
a fresh full evaluation by the engine and its entry/exit log replays to it;
every page answers 200.

Restarting PostgreSQL (`pg_ctlcluster 15 main restart`) disturbs every other
client of the cluster, hence `serial`: make test runs it alone, after the parallel part."""

import http.cookiejar
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from procs import kill_tree, wait_for

from webapp import engine
from webapp.activation import mailings
from webapp.db import database
from webapp.models import Customer, Mailing, Segment, SegmentChange, SegmentMember, SegmentRun, utcnow

from .test_serve import Stack, free_port

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.postgresql_only]

CUSTOMERS = 20_000
CITIES = ["москва", "тверь", "казань", "hà nội"]


def city_segment(city):
    return {
        "version": 1,
        "match": "all",
        "blocks": [
            {
                "entity": "customer",
                "match": "all",
                "filters": [{"field": "city", "op": "in", "values": [{"value": city}]}],
            }
        ],
    }


class RedisServer:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from redis import Redis

        wait_for(lambda: _pings(Redis.from_url(self.url)), timeout=20, what="redis-server")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _pings(redis):
    try:
        return redis.ping()
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture
def redis_server(tmp_path):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def restart_postgres():
    subprocess.run(["pg_ctlcluster", "15", "main", "restart"], check=True, timeout=120)


class Browser:
    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path):
        try:
            with self.opener.open(self.base + path, timeout=60) as response:
                return response.status, response.read().decode("utf-8", "replace"), response.url
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace"), exc.url

    def login(self, email, password):
        _, page, _ = self.get("/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token}).encode()
        with self.opener.open(self.base + "/login", data=data, timeout=60) as response:
            return response.status


def test_mailing_and_scheduled_runs_survive_a_killed_worker_and_restarted_redis_and_postgres(
    app, db_url, redis_server, smtp_server, make_user, tmp_path, monkeypatch
):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    make_user(email="admin@example.com", password="correct horse battery")
    now = utcnow()
    rows = [
        {
            "external_id": f"c{i:05d}",
            "email": f"c{i:05d}@example.com",
            "email_ci": f"c{i:05d}@example.com",
            "email_consent": True,
            "city": CITIES[i % 4],
            "city_ci": CITIES[i % 4],
            "created_at": now,
            "updated_at": now,
        }
        for i in range(CUSTOMERS)
    ]
    with database.atomic():
        for start in range(0, CUSTOMERS, 2000):
            Customer.insert_many(rows[start : start + 2000]).execute()
    everyone = Segment.create(
        code="all", name="All", type="static", source="list", definition={"version": 1, "match": "all", "blocks": []}
    )
    SegmentMember.insert_from(
        Customer.select(everyone.id, Customer.id, now),
        [SegmentMember.segment, SegmentMember.customer, SegmentMember.since],
    ).execute()
    dynamic = [
        Segment.create(
            code=f"city{i}", name=f"City {i}", type="dynamic", definition=city_segment(city), interval_minutes=1
        )
        for i, city in enumerate(CITIES[:3])
    ]
    mailing = mailings.create_campaign(
        {
            "name": "Big",
            "channel": "email",
            "segment_id": everyone.id,
            "subject": "Hi {{ external_id }}",
            "body": "<p>{{ external_id }}</p>",
        }
    )
    database.close()

    stack = Stack(
        tmp_path / "stack",
        DATABASE_URL=db_url,
        REDIS_URL=redis_server.url,
        SMTP_URL=smtp_server.url,
        SECRET_KEY=app.config["SECRET_KEY"],
        WEB_CONCURRENCY=3,
        WORKERS=3,
        TRIGGER_POLL_SECONDS=2,
        REALTIME_INTERVAL_SECONDS=1,
        MAILING_LEASE_SECONDS=5,
        RUN_HEARTBEAT_SECONDS=1,
        PUBLIC_URL="http://track.test",
    )
    try:
        stack.wait_healthy(timeout=120)
        mailings.send_now(mailing)

        def sent():
            return mailings.counts(mailing.id)["sent"]

        # 1. One worker SIGKILLed mid-mailing (with its work-horse).
        wait_for(lambda: sent() >= 2000, timeout=300, what="2,000 sent", logs=lambda: stack.text()[-3000:])
        victim = next(pid for pid, line in _children(stack.proc.pid) if "--no-cron" in line)
        kill_tree(victim)
        # Customers move between cities meanwhile: real-time and scheduled runs have work.
        from webapp.segments import changes

        moved = [c.id for c in Customer.select(Customer.id).order_by(Customer.id)][::50]
        with database.atomic():
            Customer.update(city="казань", city_ci="казань").where(Customer.id.in_(moved)).execute()
            changes.mark_changed(moved)
        database.close()

        # 2. Redis restarted empty.
        wait_for(lambda: sent() >= 6000, timeout=300, what="6,000 sent", logs=lambda: stack.text()[-3000:])
        redis_server.kill()
        time.sleep(3)
        redis_server.start()

        # 3. PostgreSQL restarted.
        wait_for(lambda: sent() >= 10000, timeout=300, what="10,000 sent", logs=lambda: stack.text()[-3000:])
        database.close()
        restart_postgres()
        after_faults = utcnow()

        wait_for(
            lambda: Mailing.get_by_id(mailing.id).status == "sent",
            timeout=900,
            interval=1,
            what="the mailing to finish",
            logs=lambda: stack.text()[-5000:],
        )
        final = mailings.counts(mailing.id)
        assert (final["sent"], final["failed"], final["total"]) == (CUSTOMERS, 0, CUSTOMERS), final
        assert len(smtp_server.count) == CUSTOMERS
        assert set(smtp_server.count.values()) == {1}, {a: c for a, c in smtp_server.count.items() if c != 1}

        # Scheduled runs after the faults: each dynamic segment equals a fresh full run, and its log replays to it.
        for segment in dynamic:
            wait_for(
                lambda s=segment: (
                    SegmentRun.select()
                    .where(SegmentRun.segment == s, SegmentRun.status == "done", SegmentRun.created_at > after_faults)
                    .exists()
                ),
                timeout=300,
                interval=1,
                what=f"a run of {segment.code} after the faults",
                logs=lambda: stack.text()[-3000:],
            )
            stored = {m.customer_id for m in SegmentMember.select().where(SegmentMember.segment == segment)}
            fresh = set(engine.member_ids(segment.definition))
            assert stored == fresh, segment.code
            state = set()
            for change in SegmentChange.select().where(SegmentChange.segment == segment).order_by(SegmentChange.id):
                (state.add if change.change == "entered" else state.remove)(change.customer_id)
            assert state == stored, segment.code

        # Every page answers 200, signed in, through the stack.
        browser = Browser(stack.url)
        assert browser.login("admin@example.com", "correct horse battery") == 200
        paths = _pages(app) + [f"/segments/{s.code}" for s in dynamic] + [f"/mailings/{mailing.id}"]
        failures = {}
        for path in paths:
            status, _, _ = browser.get(path)
            if status != 200:
                failures[path] = status
        assert not failures, failures
        assert stack.proc.poll() is None
    finally:
        if stack.proc.poll() is None:
            stack.proc.send_signal(signal.SIGTERM)
            try:
                stack.proc.wait(120)
            except subprocess.TimeoutExpired:
                stack.kill()


def _children(pid):
    from pathlib import Path

    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append((int(stat.parent.name), (stat.parent / "cmdline").read_text().replace("\0", " ")))
        except OSError:
            continue
    return out


def _pages(app):
    """Every page without parameters a signed-in user opens (not the API, files or sign-out)."""
    skip = ("static", "api", "ops.", "auth.logout", "track.", "tokens.")
    out = []
    for rule in app.url_map.iter_rules():
        if (
            "GET" in rule.methods
            and not rule.arguments
            and not rule.endpoint.startswith(skip)
            and not rule.rule.endswith((".csv", ".xlsx", ".json"))
        ):
            out.append(rule.rule)
    return sorted(set(out))
