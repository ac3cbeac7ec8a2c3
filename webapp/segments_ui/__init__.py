"""The segments UI: list, builder with live preview, segment page with history
and runs, value pickers. See views.py (routes), builder.py (form <-> definition),
options.py (picker values) and listing.py (list queries, charts, history)."""


def init_app(app):
    from . import views
    views.init_app(app)
