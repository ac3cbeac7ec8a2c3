"""REST API v1 under /api/v1 (contract: shared/spec/api.md).

Token-authenticated (webapp.accounts.service), so its endpoints are outside the session
login wall and CSRF; rate-limited per token with Flask-Limiter; every answer,
errors included, is JSON (webapp.api.errors). The OpenAPI document is built in
webapp.api.openapi and served at /api/v1/openapi.json; /api/docs renders it
for people.
"""

from flask import current_app, request

from ..accounts.service import hash_secret
from .core import bearer_secret, bp
from .errors import http_error_response, register

register(bp)

# Importing the view modules adds their routes to `bp`.
from . import activation, customers, docs, openapi, segments  # noqa: E402,F401


def _rate_key():
    """Limits count per token (by its fingerprint), else per client address."""
    secret = bearer_secret()
    if secret:
        return "token:" + hash_secret(secret)[:32]
    return "addr:" + (request.remote_addr or "-")


def init_app(app):
    from ..accounts import auth
    from ..web import csrf, rate_limiter

    app.register_blueprint(bp)
    app.register_blueprint(docs.bp)
    csrf.exempt(bp)
    # Token auth replaces the session login wall for the API's own endpoints.
    auth.PUBLIC_ENDPOINTS.update(
        rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith(bp.name + ".")
    )

    limiter = rate_limiter(app)
    limiter.shared_limit(
        lambda: current_app.config.get("API_RATE_LIMIT") or "6000 per minute", scope="api-v1", key_func=_rate_key
    )(bp)

    prefix = bp.url_prefix

    @app.before_request
    def _api_routing_errors():
        # No rule matched (404) or not with this method (405): no blueprint
        # handler sees these, so answer them here, in JSON, for API paths.
        exc = request.routing_exception
        if getattr(exc, "code", None) in (404, 405) and (
            request.path == prefix or request.path.startswith(prefix + "/")
        ):
            return http_error_response(exc)
        return None
