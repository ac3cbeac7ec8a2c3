"""Settings, read once from environment variables (UPPER_CASE names only).

`create_app()` copies them into the app's config (`as_config()`), where
`create_app(test_config)` overrides them in tests.

The time zone and the queue server have one source, read through `tz()` and
`redis_url()` by every module, the web app's and the worker's alike: the app's
config where there is an app (a request, a CLI command, anything under an app
context), this module where there is none (the worker builds no app). The two
agree unless an app's config overrides the environment, and then everything
that app does (its previews and the runs it computes, the jobs it queues)
follows its config.
"""

import os
import secrets
from pathlib import Path

from flask import current_app, has_app_context

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_PATH = Path(os.environ.get("SEGMENTO_INSTANCE", ROOT / "instance"))


def _secret_key():
    """A stable secret: from SECRET_KEY, else generated once into instance/."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = INSTANCE_PATH / "secret_key"
    if not path.exists():
        INSTANCE_PATH.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _bool(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_PATH / 'segmento.db'}"
# Unset: the launcher starts an embedded Valkey server and sets it.
REDIS_URL = os.environ.get("REDIS_URL", "")
TZ = os.environ.get("TZ") or "UTC"
# The language pages are shown in when neither the user's choice (account page)
# nor the browser's Accept-Language names one Segmento speaks: en, ru or vi.
DEFAULT_LANGUAGE = os.environ.get("DEFAULT_LANGUAGE") or "en"
# The account's currency (an ISO 4217 code: RUB, VND, USD, EUR...): how money reads.
CURRENCY = (os.environ.get("CURRENCY") or "USD").upper()
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
PER_PAGE = int(os.environ.get("PER_PAGE", "50"))
MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(512 * 1024 * 1024)))
SMTP_URL = os.environ.get("SMTP_URL", "")
MAIL_FROM = os.environ.get("MAIL_FROM", "Segmento <segmento@localhost>")
# Dynamic segments are recomputed this often unless a segment sets its own.
SEGMENT_INTERVAL_MINUTES = int(os.environ.get("SEGMENT_INTERVAL_MINUTES", "15"))
# How often the worker re-checks changed customers against dynamic segments.
REALTIME_INTERVAL_SECONDS = int(os.environ.get("REALTIME_INTERVAL_SECONDS", "2"))
# A running segment run refreshes its heartbeat this often; a run whose
# heartbeat is older than three beats was abandoned by a dead worker.
RUN_HEARTBEAT_SECONDS = float(os.environ.get("RUN_HEARTBEAT_SECONDS", "5"))
# REST API: requests per token (Flask-Limiter syntax) and the largest JSON body.
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "6000 per minute")
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(1024 * 1024)))
# Sign-in: wrong passwords allowed per account and per client address (Flask-Limiter
# syntax); the next attempt is refused until the window passes.
LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
# Forgotten password: reset emails asked for per account and per client address;
# past it the page answers as always and sends nothing.
PASSWORD_RESET_RATE_LIMIT = os.environ.get("PASSWORD_RESET_RATE_LIMIT", "5 per hour")
# RFM scores and classes are recomputed at this time (a cron string; RQ reads
# it in the worker machine's local time).
RFM_NIGHTLY_CRON = os.environ.get("RFM_NIGHTLY_CRON", "30 2 * * *")
# The purchase models are refitted and every customer re-scored at this time
# (cron, the worker machine's local time); the segments reading predicted
# fields are queued right after.
PREDICTIONS_NIGHTLY_CRON = os.environ.get("PREDICTIONS_NIGHTLY_CRON", "30 3 * * *")
# The annual rate the predicted 12-month value (predicted.clv) is discounted at.
PREDICTIONS_ANNUAL_DISCOUNT_RATE = float(os.environ.get("PREDICTIONS_ANNUAL_DISCOUNT_RATE", "0.10"))
# Exports of at most this many customers are written at once and downloaded;
# larger ones run as a background job with a progress bar.
EXPORT_SYNC_ROWS = int(os.environ.get("EXPORT_SYNC_ROWS", "5000"))
# Days an export's file is kept for download; then it is deleted (the export can be run again).
EXPORT_KEEP_DAYS = int(os.environ.get("EXPORT_KEEP_DAYS", "7"))
# Child processes that parse a bulk import's file beside the process writing it
# (webapp.imports.bulk): unset, one per core up to four (none on one core); 0, none.
IMPORT_PARSERS = int(os.environ["IMPORT_PARSERS"]) if os.environ.get("IMPORT_PARSERS") else None
# Days the audit log keeps an entry; older ones are deleted by the hourly housekeeping
# job (0: kept forever).
AUDIT_KEEP_DAYS = int(os.environ.get("AUDIT_KEEP_DAYS") or "365")
# Analytics dashboards reading up to this many member-days (members of the chosen segments
# times days in the range; about 10 million a second on SQLite) are computed in the request;
# bigger ones by a background job, with a progress bar (webapp.analytics.jobs).
ANALYTICS_INLINE_WORK = int(os.environ.get("ANALYTICS_INLINE_WORK", "10000000"))
# The dashboards the analytics page opens with are computed ahead at this time (a cron string).
ANALYTICS_NIGHTLY_CRON = os.environ.get("ANALYTICS_NIGHTLY_CRON", "0 3 * * *")
# Activation (webapp.activation). SMS go to this HTTP gateway (POST, JSON body
# from SMS_BODY_TEMPLATE with {{ phone }} and {{ text }}, Bearer token); unset:
# to the SMS outbox page.
SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN", "")
SMS_BODY_TEMPLATE = os.environ.get("SMS_BODY_TEMPLATE", '{"phone": "{{ phone }}", "text": "{{ text }}"}')
# SMS requests a sender has under way at once, each on its own kept-alive
# connection (a mailing's SMS go out in groups of this size).
SMS_CONCURRENCY = int(os.environ.get("SMS_CONCURRENCY", "8"))
# Where `make run` serves the app (flask run --host/--port).
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "5000")


def _served_at():
    """http://HOST:PORT, the address `make run` serves at. Listening on every
    interface (0.0.0.0, ::) names no address: then this machine's loopback, which
    the mailing form warns about."""
    host = "127.0.0.1" if HOST.strip() in ("", "0.0.0.0", "::") else HOST.strip()
    return f"http://[{host}]:{PORT}" if ":" in host else f"http://{host}:{PORT}"


# Base of the tracking, click and unsubscribe links in messages; unset, where
# `make run` serves (HOST and PORT).
PUBLIC_URL = (os.environ.get("PUBLIC_URL") or _served_at()).rstrip("/")
# How often the worker starts due mailings, reads segment entries/exits for
# triggers and runs due trigger steps.
TRIGGER_POLL_SECONDS = int(os.environ.get("TRIGGER_POLL_SECONDS", "5"))
# A mailing is sent by this many jobs at once; a claimed batch whose sender
# stopped for this long is taken over by another sender.
MAILING_SENDERS = int(os.environ.get("MAILING_SENDERS", "2"))
# SMTP connections each sender keeps open (messages go out in groups of this size).
SMTP_CONNECTIONS = int(os.environ.get("SMTP_CONNECTIONS", "20"))
MAILING_LEASE_SECONDS = float(os.environ.get("MAILING_LEASE_SECONDS", "120"))
# Frequency caps per channel, "<messages>/<days>" ("2/7": at most 2 emails in
# 7 days); empty: no cap. Transactional mailings are never capped.
FREQUENCY_CAP_EMAIL = os.environ.get("FREQUENCY_CAP_EMAIL", "")
FREQUENCY_CAP_SMS = os.environ.get("FREQUENCY_CAP_SMS", "")
# Quiet hours per channel in the customer's time zone, "HH:MM-HH:MM"
# ("21:00-09:00"); a message due inside them waits for their end. Empty: none.
QUIET_HOURS_EMAIL = os.environ.get("QUIET_HOURS_EMAIL", "")
QUIET_HOURS_SMS = os.environ.get("QUIET_HOURS_SMS", "")
# The account-wide control group: this share (0-50 %) of the customers gets
# no campaign or trigger message; 0 (the default) is off.
GLOBAL_CONTROL_PERCENT = int(os.environ.get("GLOBAL_CONTROL_PERCENT", "0") or 0)
# Seconds between webhook attempts (the last number repeats no more: then it failed).
WEBHOOK_RETRY_SECONDS = os.environ.get("WEBHOOK_RETRY_SECONDS", "30,120,600,3600")
# Webhooks may call addresses on this machine or a private network (loopback,
# 10/8, 192.168/16, link-local such as cloud metadata...) only when this is on:
# off, a trigger cannot be used to reach internal services (SSRF).
WEBHOOK_ALLOW_PRIVATE = _bool("WEBHOOK_ALLOW_PRIVATE", False)
# The worker's log: WARNING shows problems only (the periodic jobs run every
# few seconds); INFO shows every job started and finished.
WORKER_LOG_LEVEL = os.environ.get("WORKER_LOG_LEVEL", "WARNING").upper()
# Fault injection for tests only: seconds a run waits before committing.
FAULT_PAUSE_BEFORE_COMMIT = float(os.environ.get("SEGMENTO_FAULT_PAUSE_BEFORE_COMMIT", "0"))
# Tests only: seconds a sender waits between counting a batch's customers'
# messages under a cap and recording its own (widens the race the lock closes).
FAULT_PAUSE_IN_CAP = float(os.environ.get("SEGMENTO_FAULT_PAUSE_IN_CAP", "0"))

# --- running for a team (webapp.serve, webapp.ops; README "Production") ---
# `make serve`: gunicorn processes, RQ worker processes (one cron scheduler among
# all of them, on every machine together) and the address gunicorn listens on.
WEB_CONCURRENCY = int(os.environ.get("WEB_CONCURRENCY", "3"))
WORKERS = int(os.environ.get("WORKERS", "2"))
BIND = os.environ.get("BIND", "127.0.0.1:8000")
# Seconds a stopping web process may finish its requests, and a stopping worker its job.
GRACEFUL_TIMEOUT = int(os.environ.get("GRACEFUL_TIMEOUT", "120"))
# Reverse proxies in front of the app (nginx: 1): X-Forwarded-For/-Proto/-Host
# are believed for this many hops, and never with 0 (the app faces clients).
TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES") or os.environ.get("PROXY_FIX") or "0")
# Session cookies only over HTTPS: on when PUBLIC_URL is https unless set.
if os.environ.get("SESSION_COOKIE_SECURE") is None and PUBLIC_URL.startswith("https://"):
    SESSION_COOKIE_SECURE = True
# /healthz and /metrics answer only these addresses (comma-separated networks).
MONITORING_NETWORKS = os.environ.get("MONITORING_NETWORKS", "127.0.0.0/8,::1/128")
# Logs: "text" or "json" (one object a line); ACCESS_LOG adds a line per
# request and per job (`make serve` turns it on).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").lower()
ACCESS_LOG = _bool("ACCESS_LOG", False)
# Where import uploads, rejected-row files and exports are kept for every
# machine: a directory (file:///path, or a plain path; default: the instance
# folder itself) or S3-compatible storage (s3://bucket/prefix, with
# S3_ENDPOINT_URL and the AWS_* credentials) (webapp.ops.storage).
STORAGE_URL = os.environ.get("STORAGE_URL") or f"file://{INSTANCE_PATH}"
S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL", "")


def as_config():
    """The settings as a dict for `app.config`."""
    return {
        "SECRET_KEY": _secret_key(),
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "TZ": TZ,
        "DEFAULT_LANGUAGE": DEFAULT_LANGUAGE,
        "CURRENCY": CURRENCY,
        "PER_PAGE": PER_PAGE,
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
        "SMTP_URL": SMTP_URL,
        "MAIL_FROM": MAIL_FROM,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": SESSION_COOKIE_SECURE,
        # The signed session cookie is sent back only when the session changed. With
        # Flask's default every response re-sends it, so a background poll answered
        # after a form's redirect put back the session it read (without the
        # redirect's flash message or sign-in): the message was lost. Sessions last
        # PERMANENT_SESSION_LIFETIME (31 days) from sign-in.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "API_RATE_LIMIT": API_RATE_LIMIT,
        "API_MAX_BODY_BYTES": API_MAX_BODY_BYTES,
        "LOGIN_RATE_LIMIT": LOGIN_RATE_LIMIT,
        "PASSWORD_RESET_RATE_LIMIT": PASSWORD_RESET_RATE_LIMIT,
        "EXPORT_SYNC_ROWS": EXPORT_SYNC_ROWS,
        "ANALYTICS_INLINE_WORK": ANALYTICS_INLINE_WORK,
        "TRUSTED_PROXIES": TRUSTED_PROXIES,
        "MONITORING_NETWORKS": MONITORING_NETWORKS,
        "ACCESS_LOG": ACCESS_LOG,
        "LOG_FORMAT": LOG_FORMAT,
        "STORAGE_URL": STORAGE_URL,
    }


def _current(name):
    # An app's own value wins; an app that has none (created before its queue
    # server was started, as `make run` and the tests do) follows the process.
    if has_app_context() and current_app.config.get(name):
        return current_app.config[name]
    return globals()[name]


def tz():
    """The account's time zone (an IANA name) that local days and dates are read in."""
    return _current("TZ") or "UTC"


def default_language():
    """The language code pages fall back to (DEFAULT_LANGUAGE; checked by `webapp.i18n`)."""
    return _current("DEFAULT_LANGUAGE") or "en"


def currency():
    """The account currency's ISO code (CURRENCY)."""
    return (_current("CURRENCY") or "USD").upper()


def redis_url():
    """The queue server's URL ("" when none is configured)."""
    return _current("REDIS_URL") or ""
