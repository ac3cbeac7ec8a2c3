"""Segmento: the application factory."""

from flask import Flask

from . import settings


def create_app(test_config=None):
    """The web app: settings (then `test_config`), each subsystem's init_app, then every domain's pages."""
    app = Flask(
        __name__,
        template_folder=str(settings.ROOT / "templates"),
        static_folder=str(settings.ROOT / "static"),
        instance_path=str(settings.INSTANCE_PATH),
    )
    app.config.from_mapping(settings.as_config())
    if test_config:
        app.config.from_mapping(test_config)

    from . import cli, db, errors, home, i18n, web

    web.csrf.init_app(app)
    web.htmx.init_app(app)
    from .accounts import auth

    db.init_app(app)
    web.init_app(app)  # the app-wide Jinja filters and globals
    i18n.init_app(app)
    auth.init_app(app)  # the login wall
    errors.init_app(app)
    cli.init_app(app)

    # One views module per domain, each registering its blueprint(s).
    from . import api
    from .accounts import views as accounts
    from .activation import views as activation
    from .analytics import views as analytics
    from .audit import views as audit
    from .customers import views as customers
    from .events import views as events
    from .exports import views as exports
    from .fields import views as fields
    from .imports import views as imports
    from .notifications import views as notifications
    from .ops import views as ops
    from .predictions import views as predictions
    from .rfm import views as rfm
    from .segments import views as segments

    app.register_blueprint(home.bp)
    for domain in (
        accounts,
        customers,
        fields,
        imports,
        segments,
        notifications,
        api,
        exports,
        activation,
        events,
        rfm,
        analytics,
        ops,
        predictions,
        audit,
    ):
        domain.init_app(app)
    return app
