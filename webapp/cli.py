"""The `flask` command line: db, users, API tokens, demo data, segments, import."""

import click
from flask.cli import AppGroup

from .db import upgrade

db_cli = AppGroup("db", help="Database schema.")


@db_cli.command("upgrade")
def db_upgrade():
    """Create or upgrade the schema of the database."""
    from .segments.system import ensure_system_segments

    applied = upgrade()
    if applied:
        for name in applied:
            click.echo(f"applied {name}")
    else:
        click.echo("schema is up to date")
    for code in ensure_system_segments():
        click.echo(f"created system segment {code}")


def init_app(app):
    from .accounts.cli import token_cli, users_cli
    from .demo import demo_data_command
    from .imports.cli import import_command
    from .segments.cli import segment_cli

    app.cli.add_command(db_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(token_cli)
    app.cli.add_command(demo_data_command)
    app.cli.add_command(segment_cli)
    app.cli.add_command(import_command)
    from .predictions.cli import predict_cli

    app.cli.add_command(predict_cli)
