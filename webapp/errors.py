"""Error pages: friendly HTML for people, never a stack trace."""

from flask import render_template
from flask_wtf.csrf import CSRFError
from playhouse.pool import MaxConnectionsExceeded

from .i18n import _

BUSY_RETRY_SECONDS = 5


def busy_message():
    return _("The server is answering too many requests at once. Nothing was changed; try again in a few seconds.")


def init_app(app):
    def page(code, title, message):
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return page(
            400,
            _("Form expired"),
            _("The form was open too long or came from another site. Reload the page and try again."),
        )

    @app.errorhandler(403)
    def forbidden(exc):
        return page(403, _("Not allowed"), _("Your role does not allow this action."))

    @app.errorhandler(404)
    def not_found(exc):
        return page(404, _("Not found"), _("There is nothing at this address."))

    @app.errorhandler(413)
    def too_large(exc):
        return page(413, _("File too large"), _("The upload is larger than this server accepts."))

    @app.errorhandler(MaxConnectionsExceeded)
    def busy(exc):
        # every database connection of this process stayed taken for the pool's
        # wait: more requests at once than the server takes (the threaded
        # development server of `make run` under load). Nothing was changed.
        body, code = page(503, _("Busy"), busy_message())
        return body, code, {"Retry-After": str(BUSY_RETRY_SECONDS)}

    @app.errorhandler(500)
    def server_error(exc):
        return page(
            500,
            _("Something went wrong"),
            _("The error has been logged. Try again, and tell your administrator if it keeps happening."),
        )
