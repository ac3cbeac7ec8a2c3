"""`flask import customers|orders|order-items|deals|messages FILE.csv`.

Runs the import engine in this process with a progress bar, prints the report
(imported, rejected with line, column and reason, the rejected-rows CSV), and
exits 0 when the file was read (even with rejected rows), 1 when it could not
be read (the reason on stderr).
"""

import getpass
import os
import signal
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..console import ProgressBar
from ..db import database
from ..i18n import _
from ..models import ImportRun
from .bulk import Importer
from .jobs import account_tz
from .kinds import FILE_KINDS


def imports_dir(app):
    return Path(app.config.get("IMPORTS_DIR") or Path(app.instance_path) / "imports")


class _Bars:
    """Two click progress bars on stderr: checking (bytes), then importing (rows)."""

    def __init__(self):
        self.bar, self.phase = ProgressBar(), None

    def __call__(self, run):
        if run.status != "running":
            self.close()
            return
        if run.phase != self.phase:
            self.phase = run.phase
            if run.phase == "checking":
                self.bar.open(
                    run.bytes_total, _("Checking the file"), file=sys.stderr, show_pos=False, show_percent=True
                )
            else:
                self.bar.open(run.rows_total or 0, _("Importing"), file=sys.stderr, show_pos=True, show_eta=True)
        self.bar.show(run.bytes_done if self.phase == "checking" else run.rows_done)

    def close(self):
        self.bar.close()


@click.command("import")
@click.argument("kind", type=click.Choice(FILE_KINDS))
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--bulk/--no-bulk",
    default=None,
    help=_(
        "Customers, orders and order items: load through staging tables and apply in one transaction "
        "(default: for files of 100,000 rows or more)."
    ),
)
@with_appcontext
def import_command(kind, path, bulk):
    """Import a CSV file of customers, orders, order items, deals or messages."""
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        click.echo(_("Cannot read %(path)s: no such file, or no permission.", path=path), err=True)
        sys.exit(1)
    database.connect(reuse_if_open=True)
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        user = ""
    run = ImportRun.create(
        kind=kind,
        file_name=os.path.basename(path)[:255],
        file_path=str(Path(path).resolve()),
        origin="cli",
        status="queued",
        options={"os_user": user},
    )
    bars = _Bars()
    # `kill` stops like Ctrl-C: the run is marked cancelled, committed batches stay.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        Importer(
            run,
            imports_dir(current_app),
            tz=account_tz(current_app.config.get("TZ")),
            on_progress=bars,
            bulk=bulk,
            bulk_rows=current_app.config.get("IMPORT_BULK_ROWS"),
        ).execute()
    except KeyboardInterrupt:
        bars.close()
        click.echo(
            _(
                "Cancelled. %(n)s rows imported before stopping stay imported; running the same file again is safe.",
                n=run.rows_imported,
            ),
            err=True,
        )
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the run is marked failed; say so without a traceback
        bars.close()
        click.echo(run.error or str(exc), err=True)
        sys.exit(1)
    finally:
        bars.close()
    _print_report(run)
    if run.status == "failed":
        click.echo(_("Import failed: %(error)s", error=run.error), err=True)
        sys.exit(1)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _print_report(run):
    report = run.report or {}
    for note in report.get("notes", []):
        click.echo(_("note: %(note)s", note=note))
    for field in report.get("new_fields", []):
        click.echo(_("created custom field custom.%(code)s (%(type)s)", code=field["code"], type=field["type"]))
    if run.status == "failed":
        return
    click.echo(
        _(
            "import #%(id)s %(kind)s from %(file)s: %(status)s",
            id=run.id,
            kind=run.kind,
            file=run.file_name,
            status=run.status,
        )
    )
    click.echo(_("rows read: %(total)s", total=run.rows_done))
    click.echo(
        _(
            "imported: %(n)s (new %(new)s, updated %(upd)s, unchanged %(same)s)",
            n=run.rows_imported,
            new=run.rows_new,
            upd=run.rows_updated,
            same=run.rows_imported - run.rows_new - run.rows_updated,
        )
    )
    click.echo(_("rejected: %(n)s", n=run.rows_rejected))
    rejections = report.get("rejections", [])
    for entry in rejections:
        if entry["column"]:
            click.echo(
                "  "
                + _(
                    "line %(line)s, column %(col)s: %(reason)s",
                    line=entry["line"],
                    col=entry["column"],
                    reason=entry["reason"],
                )
            )
        else:
            click.echo("  " + _("line %(line)s: %(reason)s", line=entry["line"], reason=entry["reason"]))
    if run.rows_rejected > len(rejections):
        click.echo("  " + _("… and %(n)s more", n=run.rows_rejected - len(rejections)))
    if run.rejected_path:
        click.echo(_("rejected rows: %(path)s", path=run.rejected_path))
