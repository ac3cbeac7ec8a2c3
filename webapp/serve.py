"""`make serve`: Segmento for a team on one machine, or one of many.

Applies migrations, then supervises gunicorn (WEB_CONCURRENCY processes on
BIND), WORKERS RQ worker processes and one cron scheduler candidate (only the
one holding the leader lease among every machine runs: webapp.ops.scheduler),
against DATABASE_URL and REDIS_URL, or an embedded Valkey server when
REDIS_URL is unset (one box).

Signals: SIGTERM or Ctrl-C stops gracefully (gunicorn lets requests in
progress finish, each RQ worker finishes its job: RQ's warm shutdown);
SIGHUP restarts gracefully with new code (gunicorn's own reload, and the RQ
workers one by one, each after its job). A worker that dies is started again.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

from . import settings

RESTART_PAUSE_SECONDS = 1.0


def prepare_database():
    from .db import database, init_database, upgrade
    from .segments.system import ensure_system_segments

    init_database(settings.DATABASE_URL)
    with database:
        for name in upgrade():
            print(f"* applied migration {name}", flush=True)
        ensure_system_segments()
    database.close()


class Supervisor:
    def __init__(self, env):
        self.env = env
        self.python = sys.executable
        self.web = None
        self.workers = []
        self.cron = None
        self.stopping = False
        self.reload_requested = False

    def _start(self, args):
        # Own session: a Ctrl-C reaches only us, and gunicorn gets SIGTERM (graceful), not SIGINT (quick).
        return subprocess.Popen(
            [self.python, *args],
            env=self.env,
            cwd=settings.ROOT,
            start_new_session=True,
        )

    def start_web(self):
        self.web = self._start(
            [
                "-m",
                "gunicorn",
                "-c",
                str(settings.ROOT / "deploy" / "gunicorn.conf.py"),
                "app:app",
            ]
        )

    def start_worker(self):
        return self._start([str(settings.ROOT / "worker.py"), "--no-cron"])

    def start_cron(self):
        self.cron = self._start([str(settings.ROOT / "worker.py"), "--cron-only"])

    def start(self):
        self.start_web()
        self.workers = [self.start_worker() for _ in range(settings.WORKERS)]
        self.start_cron()

    def children(self):
        return [p for p in [self.web, self.cron, *self.workers] if p is not None]

    def reload(self):
        """gunicorn replaces its processes itself; RQ workers one at a time,
        each finishing its job first, so the pool never stops taking jobs."""
        self.web.send_signal(signal.SIGHUP)
        for index, worker in enumerate(list(self.workers)):
            self.workers[index] = self.start_worker()
            worker.send_signal(signal.SIGTERM)
            worker.wait()
        old_cron = self.cron
        old_cron.send_signal(signal.SIGTERM)  # hands the lease over at once
        old_cron.wait()
        self.start_cron()

    def watch(self):
        while not self.stopping:
            if self.reload_requested:
                self.reload_requested = False
                print("* reloading: web processes, then workers one by one", flush=True)
                self.reload()
            if self.web.poll() is not None:
                print(f"* web server exited ({self.web.returncode}): stopping", flush=True)
                return 1
            for index, worker in enumerate(self.workers):
                if worker.poll() is not None and not self.stopping:
                    print(
                        f"* worker {worker.pid} exited ({worker.returncode}): starting another",
                        flush=True,
                    )
                    self.workers[index] = self.start_worker()
            if self.cron.poll() is not None and not self.stopping:
                self.start_cron()
            time.sleep(RESTART_PAUSE_SECONDS)
        return 0

    def stop(self):
        self.stopping = True
        for child in self.children():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.GRACEFUL_TIMEOUT + 10
        for child in self.children():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def main():
    supervisor = None

    def _stop(signum, frame):
        raise KeyboardInterrupt

    def _reload(signum, frame):
        if supervisor is not None:
            supervisor.reload_requested = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _reload)
    env = dict(os.environ)
    env.setdefault("ACCESS_LOG", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = settings.INSTANCE_PATH / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    server = None
    code = 0
    try:
        prepare_database()
        if not env.get("REDIS_URL"):
            from .queue import embedded_server

            server = embedded_server(data_dir=settings.INSTANCE_PATH / "valkey")
            env["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
            print(f"* embedded queue server on {env['REDIS_URL']}", flush=True)
        supervisor = Supervisor(env)
        supervisor.start()
        print(
            f"* Segmento serving on http://{settings.BIND}: {settings.WEB_CONCURRENCY} web processes, "
            f"{settings.WORKERS} workers (SIGTERM stops, SIGHUP reloads)",
            flush=True,
        )
        code = supervisor.watch()
    except KeyboardInterrupt:
        pass
    finally:
        if supervisor is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            supervisor.stop()
        if server is not None:
            server.stop()
        print("* stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
