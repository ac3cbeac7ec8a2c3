"""`make run`: migrate, load demo data into an empty database, start the
embedded queue server (when REDIS_URL is unset), the worker with its
scheduler, and the web app on http://127.0.0.1:5000. Ctrl-C stops them all.
"""

import os
import signal
import subprocess
import sys
import time

from . import settings

DEMO_CUSTOMERS = int(os.environ.get("DEMO_CUSTOMERS", "20000"))


def prepare_database():
    from .db import database, init_database, upgrade
    from .models import Customer

    init_database(settings.DATABASE_URL)
    with database:
        for name in upgrade():
            print(f"* applied migration {name}")
        from .segments.system import ensure_system_segments

        ensure_system_segments()
        empty = not Customer.select().exists()
    if empty:
        from .demo import generate

        print(f"* empty database: loading demo data ({DEMO_CUSTOMERS} customers)...")
        with database:
            generate(customers=DEMO_CUSTOMERS, seed=1)
        with database:
            from .events.service import backfill, seed_demo_definitions
            from .predictions import service as predictions
            from .rfm.service import compute_now

            print("* recording the demo's order events, computing RFM and the predictions...")
            for definition in seed_demo_definitions():
                backfill(definition.id, tz=settings.tz())
            compute_now()
            predictions.compute_now(trigger="demo", tz=settings.TZ)
    database.close()


def _stop_like_ctrl_c(signum, frame):
    raise KeyboardInterrupt


def main():
    # Ctrl-C, and also `kill` (SIGTERM) or a shell that started us in the
    # background (SIGINT then arrives ignored): every way of stopping the
    # launcher stops what it started, never leaves them orphaned.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    prepare_database()
    env = dict(os.environ)
    server = None
    if not settings.REDIS_URL:
        from .queue import embedded_server

        # Ctrl-C in a terminal reaches every process of the group at once, but the
        # queue server must outlive the worker's shutdown (a stopping worker
        # reports to it): it starts with SIGINT blocked, a mask it keeps through
        # exec, and is stopped last, below, with SIGTERM.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            server = embedded_server(data_dir=settings.INSTANCE_PATH / "valkey")
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        env["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
        print(f"* embedded queue server on {env['REDIS_URL']}")
    python = sys.executable
    children = [
        subprocess.Popen([python, str(settings.ROOT / "worker.py")], env=env, cwd=settings.ROOT),
        subprocess.Popen(
            [python, "-m", "flask", "--app", "app", "run", "--host", settings.HOST, "--port", settings.PORT],
            env=env,
            cwd=settings.ROOT,
        ),
    ]
    print(f"* Segmento is running at http://{settings.HOST}:{settings.PORT} (Ctrl-C stops everything)")
    code = 0
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        code = 1  # a child died on its own
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        if server is not None:
            server.stop()
        print("* stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
