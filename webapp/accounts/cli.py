"""`flask users create` and `flask api-token create`."""

import click
from flask.cli import AppGroup

from ..i18n import _
from ..models import ROLES
from .service import TokenError, UserError, create_token, create_user, find_user

users_cli = AppGroup("users", help="User accounts.")
token_cli = AppGroup("api-token", help="REST API tokens.")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="marketer")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
def users_create(email, role, password, name):
    """Create a user with a role."""
    try:
        user = create_user(email, password, role=role, name=name)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {user.email} ({user.role})")


@token_cli.command("create")
@click.option("--user", "email", required=True, help="The email of the user the token acts as.")
@click.option("--name", default="", help="What the token is for.")
def create_command(email, name):
    """Create an API token and print it (it is shown only this once)."""
    user = find_user(email)
    if user is None:
        raise click.ClickException(_("No user with the email %(email)s.", email=email))
    try:
        _token, secret = create_token(user, name or "cli")
    except TokenError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(secret)
