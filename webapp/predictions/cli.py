"""`flask predict fit|score|show`: the purchase models from the command line.

`fit` fits without storing scores and prints the parameters and
log-likelihoods as JSON as its last line; `score` fits and stores every
customer's scores as if today were the calibration end; `show` prints one
customer's scores as JSON. Exit 1 with the reason on stderr when there is
too little data to fit.
"""

import json

import click
from flask.cli import AppGroup

from ..db import database
from ..i18n import _, ngettext
from ..models import Customer
from . import service

predict_cli = AppGroup("predict", help="Purchase predictions (BG/NBD and Gamma-Gamma).")


def _run(calibration_end, time_unit, store):
    try:
        cal = service.parse_calibration_end(calibration_end)
        unit = service.parse_time_unit(time_unit)
    except service.PredictionError as exc:
        raise click.BadParameter(str(exc)) from None
    shown = []

    def progress(step, label, done=None, total=None):
        # one line a step on stderr (stdout ends with the JSON line scripts read)
        if not shown or shown[-1] != label:
            shown.append(label)
            click.echo(
                _("Step %(step)s of %(steps)s: %(label)s…", step=step, steps=service.STEPS, label=label), err=True
            )

    with database.connection_context():
        fit = service.compute_now(trigger="cli", calibration_end=cal, time_unit=unit, store=store, on_progress=progress)
        summary = service.fit_summary(fit)
        if fit.status != "done":
            click.echo(service.fit_message(fit), err=True)
            click.echo(json.dumps(summary, ensure_ascii=False, sort_keys=True))
            raise SystemExit(1)
        if fit.error_code:
            click.echo(service.fit_message(fit), err=True)
    return fit, summary


@predict_cli.command("fit")
@click.option("--calibration-end", default=None, help="YYYY-MM-DD (default: today)")
@click.option("--time-unit", type=click.Choice(sorted(service.TIME_UNITS)), default=service.DEFAULT_TIME_UNIT)
def fit_command(calibration_end, time_unit):
    """Fit the models on the orders up to the calibration end; print the parameters as JSON."""
    _fit, summary = _run(calibration_end, time_unit, store=False)
    click.echo(json.dumps(summary, ensure_ascii=False, sort_keys=True))


@predict_cli.command("score")
@click.option("--calibration-end", default=None, help="YYYY-MM-DD (default: today)")
@click.option("--time-unit", type=click.Choice(sorted(service.TIME_UNITS)), default=service.DEFAULT_TIME_UNIT)
def score_command(calibration_end, time_unit):
    """Fit and store every customer's scores as if today were the calibration end."""
    fit, summary = _run(calibration_end, time_unit, store=True)
    click.echo(ngettext("scored: %(num)s customer", "scored: %(num)s customers", fit.scored))
    click.echo(json.dumps(summary, ensure_ascii=False, sort_keys=True))


@predict_cli.command("show")
@click.argument("external_id")
def show_command(external_id):
    """Print a customer's scores as JSON."""
    with database.connection_context():
        customer = Customer.get_or_none(Customer.external_id == external_id)
        if customer is None:
            raise click.ClickException(_("No customer with external id “%(id)s”.", id=external_id))
        scores = service.customer_scores(customer.id)
    click.echo(json.dumps({"external_id": external_id, **scores}, ensure_ascii=False, sort_keys=True))
