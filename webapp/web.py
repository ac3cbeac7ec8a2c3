"""Small helpers every blueprint's views share."""
from flask import request


def wants_fragment():
    """Whether to answer with the fragment an htmx request swaps in, rather
    than the whole page (a boosted link or a history restore wants the page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request and not request.htmx.boosted


def init_app(app):
    @app.after_request
    def _vary_on_htmx(response):
        # One URL answers a page or, to htmx, a fragment: caches (and the
        # browser's Back) must keep the two apart.
        response.vary.add("HX-Request")
        return response
