"""`flask backup FILE` and `flask restore FILE` (webapp.ops.backup)."""

import click
from flask import current_app
from flask.cli import with_appcontext

from ..i18n import _
from .backup import BackupError, backup, restore


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(file):
    """Back up the database to FILE (SQLite: online copy; PostgreSQL: pg_dump custom format)."""
    try:
        backup(current_app.config["DATABASE_URL"], file)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_("Backed up to %(file)s", file=file))


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Drop what the database holds first (default: only into an empty one).")
@with_appcontext
def restore_command(file, replace):
    """Restore the database from FILE, made by `flask backup`. Stop the web app and workers first."""
    from ..db import database

    if not database.is_closed():
        database.close()
    try:
        restore(current_app.config["DATABASE_URL"], file, replace=replace)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_("Restored from %(file)s", file=file))


def init_app(app):
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
