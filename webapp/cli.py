"""The `flask` command line: db, users, demo data, segments."""
import click
from flask.cli import AppGroup

from .db import upgrade
from .accounts.service import UserError, create_user

db_cli = AppGroup("db", help="Database schema.")
users_cli = AppGroup("users", help="User accounts.")


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


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "marketer", "manager"]), default="marketer")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
def users_create(email, role, password, name):
    """Create a user with a role."""
    try:
        user = create_user(email, password, role=role, name=name)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"created {user.email} ({user.role})")


def init_app(app):
    from .demo import demo_data_command
    from .segments.cli import segment_cli
    from .imports.cli import import_command

    app.cli.add_command(db_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_data_command)
    app.cli.add_command(segment_cli)
    app.cli.add_command(import_command)
    from .predictions.cli import predict_cli
    app.cli.add_command(predict_cli)
    from .accounts.tokens import token_cli
    app.cli.add_command(token_cli)
