"""Deterministic demo data (`flask demo-data --customers N [--seed S]`)."""
import click


@click.command("demo-data")
@click.option("--customers", type=int, default=5000)
@click.option("--seed", type=int, default=1)
def demo_data_command(customers, seed):
    """Load a realistic demo customer base."""
    raise click.ClickException("not implemented yet")
