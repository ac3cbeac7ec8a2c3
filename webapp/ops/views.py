"""/healthz and /metrics for load balancers and Prometheus, answered only to
addresses in MONITORING_NETWORKS (anyone else gets a plain 404), plus the
production plumbing of the web app: forwarded headers from trusted proxies,
one log line and metrics per request."""

import ipaddress
import time

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from ..accounts import auth
from ..queue import connection
from . import cli, health, logs, metrics

bp = Blueprint("ops", __name__)


def parse_networks(value):
    """MONITORING_NETWORKS ("127.0.0.0/8, 10.1.0.0/16") as ip_network objects."""
    if isinstance(value, list | tuple):
        return [ipaddress.ip_network(str(item), strict=False) for item in value]
    return [ipaddress.ip_network(item.strip(), strict=False) for item in value.split(",") if item.strip()]


def _from_monitoring_network():
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in current_app.extensions["monitoring_networks"])


@bp.before_request
def _monitoring_only():
    if not _from_monitoring_network():
        abort(404)


def _redis():
    return connection(current_app.config.get("REDIS_URL") or None)


@bp.get("/healthz")
def healthz():
    healthy, report = health.check(_redis())
    body = jsonify(status="ok" if healthy else "unavailable", checks=report)
    body.status_code = 200 if healthy else 503
    body.headers["Cache-Control"] = "no-store"
    return body


@bp.get("/metrics")
def metrics_page():
    return Response(metrics.exposition(_redis), mimetype="text/plain; version=0.0.4; charset=utf-8")


class _Clock:
    KEY = "segmento.started"

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ[self.KEY] = time.monotonic()
        return self.app(environ, start_response)


def init_app(app):
    app.register_blueprint(bp)
    cli.init_app(app)
    auth.PUBLIC_ENDPOINTS.update({"ops.healthz", "ops.metrics_page"})
    app.extensions["monitoring_networks"] = parse_networks(app.config.get("MONITORING_NETWORKS") or "127.0.0.0/8")
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies:
        # Each X-Forwarded-* header is believed for exactly this many hops:
        # a client cannot forge its address or scheme past our own proxies.
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=proxies,
            x_proto=proxies,
            x_host=proxies,
            x_port=proxies,
            x_prefix=proxies,
        )
    access_log = bool(app.config.get("ACCESS_LOG"))
    if access_log or app.config.get("LOG_FORMAT") == "json":
        logs.setup(app.config.get("LOG_FORMAT") or "text")

    # Timed from the WSGI call: before_request hooks that answer early (the
    # login wall's redirect) would skip one registered after theirs.
    app.wsgi_app = _Clock(app.wsgi_app)

    @app.after_request
    def _measure(response):
        started = request.environ.get(_Clock.KEY)
        if started is None:
            return response
        seconds = time.monotonic() - started
        metrics.observe_request(request.method, response.status_code, seconds)
        if access_log:
            user = g.get("user")
            logs.request_line(
                request.method,
                request.path,
                response.status_code,
                seconds,
                request.remote_addr,
                getattr(user, "id", None),
            )
        return response
