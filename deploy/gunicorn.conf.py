"""gunicorn settings for `make serve` (webapp.serve); every value comes from
Segmento's settings (environment variables), see the README's Production section."""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Sync workers behind nginx, which buffers slow clients and big uploads; with
# WEB_THREADS above 1, threaded workers (gthread): each process answers that
# many requests at once, one waiting on the database while another runs.
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = 120
# SIGTERM/SIGHUP: requests in progress get this long to finish.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "120"))
keepalive = 5
# Restart each process now and then: memory stays flat over weeks.
max_requests = 5000
max_requests_jitter = 500
# One line per request comes from the app (webapp.ops), in LOG_FORMAT.
accesslog = None
errorlog = "-"
# Forwarded headers are read by the app alone (ProxyFix, TRUSTED_PROXIES): gunicorn believes none.
forwarded_allow_ips = ""
proc_name = "segmento-web"
# gunicorn 25+ opens a control socket in $HOME/.gunicorn by default: one path
# for every gunicorn of the user (tests, a second installation) and, for a
# system user without a home, an error at start. Segmento is driven by signals.
control_socket_disable = True


def child_exit(server, worker):
    # Prometheus multiprocess mode: a dead process's live gauges are dropped.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
