"""Segmento: the application factory."""
from flask import Flask
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

from . import settings

csrf = CSRFProtect()
htmx = Htmx()


def create_app(test_config=None):
    app = Flask(
        __name__,
        template_folder=str(settings.ROOT / "templates"),
        static_folder=str(settings.ROOT / "static"),
        instance_path=str(settings.INSTANCE_PATH),
    )
    app.config.from_mapping(settings.as_config())
    if test_config:
        app.config.from_mapping(test_config)

    csrf.init_app(app)
    htmx.init_app(app)

    from . import db, i18n, auth, customers, fields, cli, views, errors, web
    db.init_app(app)
    web.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(customers.bp)
    app.register_blueprint(fields.bp)
    from .imports import views as imports_views
    imports_views.init_app(app)
    from . import notifications, segments_ui
    segments_ui.init_app(app)
    notifications.init_app(app)
    from . import api, tokens
    tokens.init_app(app)
    api.init_app(app)
    from .exports import views as exports_views
    exports_views.init_app(app)
    from .activation import views as activation_views
    activation_views.init_app(app)
    from .events import views as events_views
    events_views.init_app(app)
    from .rfm import views as rfm_views
    rfm_views.init_app(app)
    from .analytics import views as analytics_views
    analytics_views.init_app(app)
    cli.init_app(app)
    return app
