"""`flask segment count|members DEFINITION.json [--at ISO-DATETIME]`.

A definition that cannot be read or is rejected exits with status 2 and its
message on stderr (spec, "Command line").
"""

import zoneinfo

import click
import peewee as pw
from flask.cli import AppGroup

from .. import settings
from ..db import database, is_postgres
from ..engine import DefinitionError, count, parse_definition, stream
from ..engine.compiler import build_query
from ..i18n import _
from ..models import Customer
from ..values import parse_datetime

segment_cli = AppGroup("segment", help="Evaluate segment definitions.")


def _fail(message):
    click.echo(message, err=True)
    raise SystemExit(2)


def _load(path, at):
    """(definition, at as naive UTC or None, tz name) or exit 2 with the reason."""
    tz = settings.tz()
    try:
        with click.open_file(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        _fail(_("Cannot read %(path)s: %(error)s", path=path, error=exc.strerror or str(exc)))
    when = None
    if at:
        try:
            when = parse_datetime(at, zoneinfo.ZoneInfo(tz))
        except ValueError as exc:
            _fail(_("--at: %(error)s", error=str(exc)))
    database.connect(reuse_if_open=True)
    try:
        definition = parse_definition(text)
    except DefinitionError as exc:
        _fail(str(exc))
    return definition, when, tz


_AT_HELP = "Evaluation time (ISO 8601; without an offset it is in the account time zone). Default: now."


@segment_cli.command("count")
@click.argument("definition_file", metavar="DEFINITION.json")
@click.option("--at", "at", metavar="ISO-DATETIME", help=_AT_HELP)
def count_command(definition_file, at):
    """Print the number of customers matching DEFINITION.json (`-` reads stdin)."""
    definition, when, tz = _load(definition_file, at)
    click.echo(count(definition, at=when, tz=tz))


@segment_cli.command("members")
@click.argument("definition_file", metavar="DEFINITION.json")
@click.option("--at", "at", metavar="ISO-DATETIME", help=_AT_HELP)
def members_command(definition_file, at):
    """Print the external_id of every matching customer, one a line, sorted."""
    definition, when, tz = _load(definition_file, at)
    # byte order on both databases (PostgreSQL's default collation is locale-aware)
    order = pw.NodeList((Customer.external_id, pw.SQL('COLLATE "C"'))) if is_postgres() else Customer.external_id
    query = build_query(definition, at=when, tz=tz, columns=[Customer.external_id]).order_by(order)
    for (external_id,) in stream(query):
        click.echo(external_id)
