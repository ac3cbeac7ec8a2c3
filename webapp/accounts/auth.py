"""The login wall: every endpoint needs a logged-in user unless it is listed in
PUBLIC_ENDPOINTS, so a new view is protected by default. The sign-in pages it
sends people to are `webapp.accounts.views`; roles are checked by
`webapp.web.role_required`.
"""

from flask import g, redirect, request, session, url_for

from ..audit import service as audit
from ..web import request_language
from .service import active_user, has_users, remember_language, session_stamp

PUBLIC_ENDPOINTS = {
    "auth.login",
    "auth.setup",
    # signed, expiring links by email (webapp.accounts.service)
    "auth.forgot_password",
    "auth.reset_password",
    "auth.accept_invite",
    "static",
    # links in mailings (webapp.activation): signed tokens, no session
    "track.open",
    "track.click",
    "track.unsubscribe",
    "track.one_click",
}


def init_app(app):
    @app.before_request
    def _login_wall():
        user_id = session.get("user_id")
        # A deactivated user's session ends here, on their next request.
        g.user = active_user(user_id) if user_id else None
        # ... and every session of a user whose password changed since it began.
        if g.user is not None and session.get("stamp") != session_stamp(g.user):
            g.user = None
        audit.acting(g.user, request.remote_addr)
        if g.user is not None:
            remember_language(g.user, request_language())
        if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
            if request.endpoint is None:
                return None  # a 404 stays a 404
            if not has_users():
                return redirect(url_for("auth.setup"))
            if request.headers.get("HX-Request"):
                # htmx cannot follow a redirect into a fragment: reload the page.
                return "", 401, {"HX-Redirect": url_for("auth.login")}
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return None

    @app.teardown_request
    def _nobody_acting(exc):
        # The thread serves other requests (and a test's next steps) after this one.
        audit.acting(None)

    @app.context_processor
    def _current_user():
        return {"current_user": g.get("user")}
