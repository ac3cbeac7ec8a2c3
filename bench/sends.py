"""Sends benchmark (issue 8: activation).

    .venv/bin/python bench/sends.py                       # a fresh SQLite file
    .venv/bin/python bench/sends.py --database postgresql://postgres:postgres@127.0.0.1:5432/postgres

Measures:
1. queueing a campaign to a segment of --queue-size members (default
   1,000,000, all with consent and an email): the start job's work
   (`mailings.materialise`, the set-based INSERT ... SELECT of the
   recipients), timed in-process. Target: under 30 s.
2. sending a campaign to --sends members through --workers real worker.py
   processes (default 2) to a local aiosmtpd server in its own process, whose
   handler only counts messages per recipient. Reports emails per second
   (first to last message the server accepted), messages per recipient (must
   all be 1), and the resident memory of each worker's process tree sampled
   every second while sending. Targets: at least 500 emails/s (issue 8),
   1,000 emails/s (issue 19); memory flat.
   The limit, measured just before and just after: the same SMTP server
   (its own process again) taking the same message from one smtplib
   connection that only sends (no database, no rendering); the ratio of the
   workers' rate to it says how close sending is to what the server takes.
   The server offers PIPELINING, as Postfix and Exim do.
3. the same send to another --sends members with a frequency cap and quiet
   hours checked (issue 17): FREQUENCY_CAP_EMAIL high enough never to stop
   anyone and QUIET_HOURS_EMAIL an hour that is not now in either of the
   customers' zones (half of them Asia/Ho_Chi_Minh, half the account's UTC),
   so every message goes through both checks and is sent. The rate is
   compared with part 2's, same run. Target: within 10 %.
4. the checks' own cost, in this process: claiming (and releasing nothing)
   every recipient of two campaigns to the same customers, in batches as the
   senders do, without and with the checks (wall and CPU seconds). Less
   sensitive to a busy machine than part 3.

With a PostgreSQL URL, a database `segmento_bench_sends` is (re)created on
that server. The embedded Valkey server is started here.
"""

import argparse
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cpu import backend_pid, cpu_seconds  # noqa: E402 - bench/cpu.py

from webapp.db import database, init_database, is_postgres, upgrade  # noqa: E402


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the SMTP server, in its own process -----------------------------------------


def smtp_server(port, conn):
    from aiosmtpd.controller import Controller

    class Counter:
        def __init__(self):
            self.count, self.first, self.last = {}, None, None

        async def handle_DATA(self, server, session, envelope):
            now = time.time()
            self.first = self.first or now
            self.last = now
            for rcpt in envelope.rcpt_tos:
                self.count[rcpt] = self.count.get(rcpt, 0) + 1
            return "250 OK"

        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            # Offered, as Postfix and Exim do; aiosmtpd answers pipelined commands in order.
            session.host_name = hostname
            responses.insert(-1, "250-PIPELINING")
            return responses

    handler = Counter()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "stats":
            conn.send(
                {
                    "total": sum(handler.count.values()),
                    "recipients": len(handler.count),
                    "repeats": sum(1 for c in handler.count.values() if c > 1),
                    "first": handler.first,
                    "last": handler.last,
                    "cpu": time.process_time(),
                }
            )
        elif command == "stop":
            controller.stop()
            conn.send("stopped")
            return


def sink_intake(count, raw):
    """The limit: emails/s the same SMTP server (a fresh one, in its own
    process) takes from one smtplib connection that only sends `raw` to
    `count` recipients, nothing else (no database, no rendering); and its CPU
    seconds per message."""
    import smtplib

    port = free_port()
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=smtp_server, args=(port, child), daemon=True)
    server.start()
    assert parent.recv() == "ready"
    try:
        parent.send("stats")
        cpu = parent.recv()["cpu"]
        client = smtplib.SMTP("127.0.0.1", port)
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.ehlo()
        start = time.perf_counter()
        for i in range(count):
            client.sendmail("bench@segmento.example", [f"raw{i}@example.com"], raw)
        seconds = time.perf_counter() - start
        client.quit()
        parent.send("stats")
        stats = parent.recv()
        assert stats["total"] == count
    finally:
        parent.send("stop")
        parent.recv()
    return count / seconds, (stats["cpu"] - cpu) / count


def sample_message():
    """One message of the bench campaign as the senders build it, as bytes."""
    from webapp.activation import delivery, mailings
    from webapp.activation.links import Links

    c = campaign_fields()
    rendered = mailings.preview("email", c["subject"], c["body"], 1, links=Links("bench", "https://segmento.example"))
    return delivery.build_email(
        "c1@example.com",
        rendered["subject"],
        rendered["html"],
        rendered["text"],
        msg_id=delivery.message_id(1, 1),
        unsubscribe=rendered["unsubscribe_url"],
        one_click=rendered["unsubscribe_url"] + "/one-click",
    )


def machine():
    """CPU model, cores and memory, for the record."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {sys.version.split()[0]}"


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# --- data ----------------------------------------------------------------------------


def clean_up():
    """--reuse: forget the previous run's segments and mailings, keep the customers."""
    database.execute_sql("DELETE FROM mailing_recipient")
    database.execute_sql("DELETE FROM message_event")
    database.execute_sql("DELETE FROM mailing WHERE kind = 'campaign'")
    database.execute_sql("DELETE FROM segment_member")
    database.execute_sql("DELETE FROM segment WHERE code IN ('bench_queue', 'bench_send')")


def fresh_database(url):
    if url.startswith("postgres"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS segmento_bench_sends")
            conn.execute("CREATE DATABASE segmento_bench_sends")
        return url.rsplit("/", 1)[0] + "/segmento_bench_sends"
    return url


def make_customers(n):
    """n customers with email and consent, in one statement."""
    now = "2024-01-01 00:00:00"
    columns = (
        "external_id, type, email, email_ci, first_name, first_name_ci, email_consent, sms_consent, "
        "created_at, updated_at"
    )
    if is_postgres():
        database.execute_sql(
            f"INSERT INTO customer ({columns}) SELECT 'c' || i, 'contact', 'c' || i || '@example.com', "
            f"'c' || i || '@example.com', 'Name' || i, 'name' || i, TRUE, FALSE, %s, %s "
            f"FROM generate_series(1, %s) AS i",
            (now, now, n),
        )
    else:
        database.execute_sql(
            f"WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
            f"INSERT INTO customer ({columns}) SELECT 'c' || i, 'contact', 'c' || i || '@example.com', "
            f"'c' || i || '@example.com', 'Name' || i, 'name' || i, 1, 0, ?, ? FROM seq",
            (n, now, now),
        )


def make_segment(code, limit, after=0):
    from webapp.models import Segment

    segment = Segment.create(
        code=code, name=code, type="static", source="list", definition={"version": 1, "match": "all", "blocks": []}
    )
    p = database.obj.param
    database.execute_sql(
        f"INSERT INTO segment_member (segment_id, customer_id, since) SELECT {p}, id, {p} FROM customer "
        f"WHERE id > {p} AND id <= {p}",
        (segment.id, "2024-01-01 00:00:00", after, after + limit),
    )
    return segment


def campaign_fields():
    return {
        "subject": "Spring tea for {{ first_name }}",
        "body": "<html><body><p>Hello {{ first_name|default('friend') }},</p><p>Our spring teas are in: "
        '<a href="https://shop.example/spring?utm_source=mail">see them</a>. Your code: SPRING5.</p>'
        '<p><a href="https://shop.example/">shop.example</a></p></body></html>',
    }


def campaign(segment, name):
    from webapp.activation import mailings

    return mailings.create_campaign({"name": name, "channel": "email", "segment_id": segment.id, **campaign_fields()})


def bench_claims(size):
    """Seconds (wall, CPU) to claim `size` recipients in batches, without and with the checks."""
    import uuid

    from webapp import settings
    from webapp.activation import mailings
    from webapp.models import Mailing

    out = []
    for label, env in (("without", {"FREQUENCY_CAP_EMAIL": "", "QUIET_HOURS_EMAIL": ""}), ("with", limits_env())):
        for key, value in env.items():
            setattr(settings, key, value)
        segment = make_segment(f"bench_claims_{label}", size)
        mailing = campaign(segment, f"bench claims {label}")
        Mailing.update(status="queued").where(Mailing.id == mailing.id).execute()
        mailings.materialise(mailing.id)
        token, claimed = uuid.uuid4().hex, 0
        wall, cpu = time.perf_counter(), time.process_time()
        while rows := mailings.claim(mailing.id, token):
            claimed += len(rows)
        out.append((label, claimed, time.perf_counter() - wall, time.process_time() - cpu))
        mailings.cancel(Mailing.get_by_id(mailing.id))
    return out


# --- measuring -----------------------------------------------------------------------


def tree_rss_mb(pid):
    """Resident memory of a process and its descendants, in MB."""
    sys.path.insert(0, str(ROOT / "tests"))
    from procs import descendants

    total = 0
    for p in [pid] + descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def server_cpu():
    """CPU seconds of this connection's PostgreSQL backend (same machine), or None."""
    pid = backend_pid()
    return None if pid is None else cpu_seconds(pid)


def bench_queue(size):
    from webapp.activation import mailings
    from webapp.models import Mailing

    segment = make_segment("bench_queue", size)
    mailing = campaign(segment, "bench queue")
    Mailing.update(status="queued").where(Mailing.id == mailing.id).execute()
    start, cpu, backend = time.perf_counter(), time.process_time(), server_cpu()
    rows = mailings.materialise(mailing.id)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    backend = server_cpu() - backend if backend is not None else None
    print(
        f"  CPU: this process {cpu:.1f} s"
        + (f", PostgreSQL backend {backend:.1f} s" if backend is not None else " (SQLite works in this process)")
    )
    # The senders must not pick it up in the sending part: cancel it.
    mailings.cancel(Mailing.get_by_id(mailing.id))
    return rows, seconds


def limits_env():
    """A cap never reached and a quiet hour that is now in neither zone (UTC, UTC+7)."""
    import datetime

    hour = (datetime.datetime.now(datetime.UTC).hour + 12) % 24
    return {"FREQUENCY_CAP_EMAIL": "1000/7", "QUIET_HOURS_EMAIL": f"{hour:02d}:00-{hour:02d}:59", "TZ": "UTC"}


def bench_send(db_url, sends, workers, redis_url, *, after=0, extra_env=None):
    from webapp.activation import jobs, mailings
    from webapp.models import Mailing

    port = free_port()
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=smtp_server, args=(port, child), daemon=True)
    server.start()
    assert parent.recv() == "ready"
    segment = make_segment(f"bench_send_{after}", sends, after)
    mailing = campaign(segment, f"bench send {after}")
    database.close()
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        MAILING_SENDERS=str(workers),
        PUBLIC_URL="https://segmento.example",
        **(extra_env or {}),
    )
    logs = tempfile.mkdtemp(prefix="sends-")
    procs = [
        subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=open(f"{logs}/worker-{i}.log", "w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(workers)
    ]
    time.sleep(3)  # let the workers start
    samples = {p.pid: [] for p in procs}
    started = time.time()
    mailings.send_now(mailing)
    jobs.ensure_start(mailing.id)
    database.close()
    try:
        while True:
            for p in procs:
                samples[p.pid].append(tree_rss_mb(p.pid))
            status = Mailing.select(Mailing.status).where(Mailing.id == mailing.id).scalar()
            database.close()
            if status == "sent":
                break
            if time.time() - started > 3600:
                raise SystemExit("timed out")
            time.sleep(1)
        finished = time.time()
        parent.send("stats")
        stats = parent.recv()
        time.sleep(2)  # the last jobs end and their horses are reaped
        stats["worker_cpu"] = [cpu_seconds(p.pid, children=True) for p in procs]
    finally:
        sys.path.insert(0, str(ROOT / "tests"))
        from procs import kill_tree

        for p in procs:
            kill_tree(p.pid)
            p.wait(10)
        parent.send("stop")
        parent.recv()
    counts = mailings.counts(mailing.id)
    return stats, counts, finished - started, samples, logs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="sqlite:///... or postgresql://... (default: a fresh SQLite file)")
    parser.add_argument("--queue-size", type=int, default=1_000_000)
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the customers of the previous run (PostgreSQL: segmento_bench_sends; SQLite: give --database)",
    )
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp(prefix='sends-db-')}/sends.db"
    if args.reuse:
        url = url.rsplit("/", 1)[0] + "/segmento_bench_sends" if url.startswith("postgres") else url
    else:
        url = fresh_database(url)
    init_database(url)
    upgrade()
    customers = max(args.queue_size, 2 * args.sends)
    if args.reuse:
        clean_up()
        print(f"* reusing {database.execute_sql('SELECT COUNT(*) FROM customer').fetchone()[0]:,} customers")
    else:
        t = time.perf_counter()
        make_customers(customers)
        print(
            f"* {customers:,} customers made in {time.perf_counter() - t:.1f} s "
            f"({'PostgreSQL' if is_postgres() else 'SQLite'})"
        )

    rows, seconds = bench_queue(args.queue_size)
    print(
        f"* queueing a campaign to {args.queue_size:,} members: {rows:,} recipient rows in {seconds:.1f} s "
        f"(target: under 30 s)"
    )
    # Half the customers in another zone: quiet hours are decided per customer zone.
    database.execute_sql("UPDATE customer SET time_zone = 'Asia/Ho_Chi_Minh' WHERE id - (id / 2) * 2 = 0")
    if is_postgres():
        database.execute_sql("ANALYZE customer")  # half the rows rewritten: plans from fresh statistics
    database.close()

    from webapp import settings
    from webapp.queue import embedded_server

    valkey = embedded_server(data_dir=tempfile.mkdtemp(prefix="sends-valkey-"))
    settings.REDIS_URL = os.environ["REDIS_URL"] = f"redis://127.0.0.1:{valkey.port}/0"
    raw = sample_message()
    database.close()
    print(f"* machine: {machine()}; {uptime()}")
    try:
        before = sink_intake(args.sends, raw)
        stats, counts, wall, samples, logs = bench_send(url, args.sends, args.workers, os.environ["REDIS_URL"])
        load_after_send = uptime()
        after = sink_intake(args.sends, raw)
        database.close()
        checked = bench_send(
            url, args.sends, args.workers, os.environ["REDIS_URL"], after=args.sends, extra_env=limits_env()
        )
    finally:
        valkey.stop()
    rate = stats["total"] / (stats["last"] - stats["first"]) if stats["total"] > 1 else 0
    c_stats, c_counts, c_wall = checked[:3]
    c_rate = c_stats["total"] / (c_stats["last"] - c_stats["first"]) if c_stats["total"] > 1 else 0
    print(
        f"* sending to {args.sends:,} with {args.workers} workers: server got {stats['total']:,} messages for "
        f"{stats['recipients']:,} recipients, {stats['repeats']} repeated; {rate:,.0f} emails/s "
        f"(first to last accepted), {wall:.1f} s from 'send now' to 'sent'; recipient rows: {counts}"
    )
    limit = (before[0] + after[0]) / 2
    print(
        f"* the limit: the same SMTP server takes {before[0]:,.0f} (before) and {after[0]:,.0f} (after) emails/s "
        f"from one smtplib connection that only sends the same {len(raw):,}-byte message "
        f"({before[1] * 1e6:.0f} and {after[1] * 1e6:.0f} µs of server CPU a message)"
    )
    print(
        f"* ratio, 2 workers / the limit: {rate / limit:.2f} ({rate:,.0f} / {limit:,.0f}); "
        f"{uptime()} (after the sending part: {load_after_send})"
    )
    print(
        f"* CPU seconds: SMTP server {stats['cpu']:.1f}, workers "
        + ", ".join(f"{c:.1f}" for c in stats["worker_cpu"])
        + f" (whole runs, periodic jobs included): {stats['total'] / max(sum(stats['worker_cpu']), 0.001):,.0f} "
        f"emails per worker CPU second, {stats['total'] / max(stats['cpu'], 0.001):,.0f} per server CPU second"
    )
    load = os.getloadavg()
    print(f"* load average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    for pid, values in samples.items():
        values = [v for v in values if v] or [0]
        quarter = max(1, len(values) // 4)
        print(
            f"* worker {pid} tree RSS MB: min {min(values):.0f}, median {statistics.median(values):.0f}, "
            f"max {max(values):.0f}; first quarter avg {statistics.mean(values[:quarter]):.0f}, "
            f"last quarter avg {statistics.mean(values[-quarter:]):.0f} ({len(values)} samples)"
        )
    print(
        f"* with a frequency cap and quiet hours checked ({limits_env()}): server got {c_stats['total']:,} "
        f"messages for {c_stats['recipients']:,} recipients, {c_stats['repeats']} repeated; {c_rate:,.0f} emails/s, "
        f"{c_wall:.1f} s; recipient rows: {c_counts}"
    )
    per_cpu = stats["total"] / max(sum(stats["worker_cpu"]), 0.001)
    c_per_cpu = c_stats["total"] / max(sum(c_stats["worker_cpu"]), 0.001)
    print(
        f"* emails per worker CPU second (less sensitive to a busy machine): {per_cpu:,.0f} without the checks, "
        f"{c_per_cpu:,.0f} with them: {c_per_cpu / per_cpu:.3f}"
    )
    if rate:
        print(f"* rate with the checks / without: {c_rate / rate:.3f} (target: at least 0.9)")
    print(f"* worker logs: {logs}, {checked[4]}")
    database.close()
    for label, claimed, wall, cpu in bench_claims(min(args.sends, 5000)):
        print(
            f"* claiming {claimed:,} recipients in batches {label} the checks: {wall * 1000:.0f} ms wall, "
            f"{cpu * 1000:.0f} ms CPU in this process ({wall * 1e6 / max(claimed, 1):.0f} µs per message)"
        )


if __name__ == "__main__":
    main()
