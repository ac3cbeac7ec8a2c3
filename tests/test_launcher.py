"""`make run`'s launcher, as a new user runs it: migrate, demo data, embedded
queue server, worker, web app; Ctrl-C stops everything; a second run reuses
the data."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from procs import alive, descendants, free_port

ROOT = Path(__file__).resolve().parent.parent


def _start(tmp_path, port):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(SEGMENTO_INSTANCE=str(tmp_path / "instance"), DEMO_CUSTOMERS="60", PORT=str(port), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "webapp.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal
    )


def _wait_http(port, proc, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                return response.status, response.geturl()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.url
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the web app did not come up")


def _stop(proc):
    # Ctrl-C in a terminal: SIGINT to every process of the foreground group at once
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=30)
    return output


def test_run_starts_everything_and_ctrl_c_stops_it(tmp_path):
    port = free_port()
    proc = _start(tmp_path, port)
    try:
        status, url = _wait_http(port, proc)
        assert status == 200 and url.endswith("/setup")  # no admin yet: first-run setup
        children = descendants(proc.pid)
        commands = [
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in children if alive(pid)
        ]
        assert any("worker.py" in c for c in commands), commands
        assert any("flask" in c for c in commands), commands
        assert any("valkey" in c for c in commands), commands
    finally:
        output = _stop(proc)
    assert "loading demo data" in output and "embedded queue server" in output, output
    # the queue server outlives the worker's shutdown: no traceback from a worker reporting to it
    assert "Traceback" not in output and "* stopped" in output, output
    # the demo is ready to look at: RFM computed, its classes filled
    import sqlite3

    with sqlite3.connect(tmp_path / "instance" / "segmento.db") as conn:
        scored = conn.execute("SELECT COUNT(*) FROM rfm_score").fetchone()[0]
        with_orders = conn.execute(
            "SELECT COUNT(DISTINCT customer_id) FROM orders WHERE status NOT IN ('cancelled', 'returned')"
        ).fetchone()[0]
        classified = conn.execute(
            "SELECT COUNT(*) FROM segment_member m JOIN segment s ON s.id = m.segment_id WHERE s.source = 'rfm'"
        ).fetchone()[0]
        croissants = conn.execute(
            "SELECT COUNT(*) FROM event_occurrence o JOIN event_type t ON t.id = o.event_type_id "
            "WHERE t.code = 'bought_croissant'"
        ).fetchone()[0]
        bought = conn.execute(
            "SELECT COUNT(DISTINCT i.order_id) FROM order_item i JOIN product p ON p.id = i.product_id "
            "JOIN product_group g ON g.id = p.group_id WHERE g.path_ci LIKE 'bakery/croissants%'"
        ).fetchone()[0]
    assert scored == with_orders > 0 and classified > 0
    assert croissants == bought > 0  # the demo's order event, backfilled
    time.sleep(1)
    assert not [pid for pid in children if alive(pid)], "processes outlived Ctrl-C"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    # a second run reuses the database: no migration, no demo data load; and
    # `kill` (SIGTERM) stops everything as Ctrl-C does
    proc = _start(tmp_path, port)
    try:
        _wait_http(port, proc)
        children = descendants(proc.pid)
        assert children
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "loading demo data" not in output and "applied migration" not in output, output
    assert "* stopped" in output, output
    time.sleep(1)
    assert not [pid for pid in children if alive(pid)], "processes outlived SIGTERM"
