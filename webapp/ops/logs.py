"""One log line per request (the web app) and per job (the worker), as text
or, with LOG_FORMAT=json, one JSON object a line for log collectors.

Flask-free: `web.py`'s hooks and the worker call `request_line`/`job_line`.
"""

import json
import logging
import sys
import time

REQUESTS = logging.getLogger("segmento.request")
JOBS = logging.getLogger("segmento.job")


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, logger, message and the
    record's `fields` (request or job details)."""

    def format(self, record):
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(log_format="text", level=logging.INFO):
    """Send the request and job lines (and, as JSON, every other log record
    of the process) to stderr in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.handlers[:] = [handler]
        # RQ and gunicorn set up their own handlers: one format for all.
        for name in ("rq.worker", "rq.cron", "rq.scheduler", "gunicorn.error"):
            logger = logging.getLogger(name)
            logger.handlers[:] = []
            logger.propagate = True
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for logger in (REQUESTS, JOBS):
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def request_line(method, path, status, seconds, remote_addr, user_id=None):
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        "remote_addr": remote_addr,
        "user_id": user_id,
    }
    # The client's address (behind a proxy: the one it forwarded, TRUSTED_PROXIES), as an access log has it.
    REQUESTS.info(
        "%s %s %s %.1fms from %s%s",
        method,
        path,
        status,
        seconds * 1000,
        remote_addr,
        f" user {user_id}" if user_id is not None else "",
        extra={"fields": fields},
    )


def job_line(job_id, func, queue, status, seconds):
    fields = {
        "job_id": job_id,
        "job": func,
        "queue": queue,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
    }
    level = logging.WARNING if status != "finished" else logging.INFO
    JOBS.log(
        level,
        "job %s %s on %s: %s in %.1fms",
        job_id,
        func,
        queue,
        status,
        seconds * 1000,
        extra={"fields": fields},
    )
