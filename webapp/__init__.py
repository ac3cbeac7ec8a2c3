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

    from . import cli, db, errors, home, i18n, web
    from .accounts import auth, tokens
    from .customers import views as customers
    from .fields import views as fields
    from .notifications import views as notifications
    from .segments import views as segments
    from .imports import views as imports
    from .exports import views as exports
    from .activation import views as activation
    from .events import views as events
    from .rfm import views as rfm
    from .analytics import views as analytics
    from .predictions import views as predictions
    from . import api

    db.init_app(app)
    web.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(customers.bp)
    app.register_blueprint(fields.bp)
    for domain in (imports, segments, notifications, tokens, api, exports, activation, events, rfm, analytics,
                   predictions):
        domain.init_app(app)
    cli.init_app(app)
    return app
