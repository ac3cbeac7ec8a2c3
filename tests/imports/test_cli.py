"""`flask import KIND FILE.csv`: same engine, a progress bar, the report, exit codes."""

import pytest

from webapp.models import Customer, ImportRun, Order

from .conftest import FIXTURES


@pytest.fixture
def cli(app, runner, imports_dir):
    app.config["IMPORTS_DIR"] = str(imports_dir)

    def invoke(*args):
        return runner.invoke(args=["import", *map(str, args)])

    return invoke


def test_import_prints_the_report_and_exits_0_with_rejected_rows(cli, imports_dir):
    result = cli("customers", FIXTURES / "broken" / "formulas.csv")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "imported: 2 (new 2, updated 0, unchanged 0)" in out
    assert "rejected: 1" in out
    assert "line 3, column birth_date: “not-a-date” is not a date" in out
    run = ImportRun.get()
    assert f"rejected rows: {run.rejected_path}" in out
    assert run.rejected_path.startswith(str(imports_dir))
    assert (run.origin, run.status, run.file_name) == ("cli", "done", "formulas.csv")
    assert "Importing" in result.stderr  # the progress bar
    assert Customer.select().count() == 2


def test_same_file_twice_reports_unchanged(cli):
    cli("customers", FIXTURES / "customers_cp1251.csv")
    result = cli("customers", FIXTURES / "customers_cp1251.csv")
    assert result.exit_code == 0
    assert "imported: 2 (new 0, updated 0, unchanged 2)" in result.stdout
    assert "created custom field" not in result.stdout


def test_new_custom_fields_are_reported(cli, make_user):
    make_user("manager@example.com", role="manager")  # customers.csv names this manager
    result = cli("customers", FIXTURES / "customers.csv")
    assert result.exit_code == 0, result.output
    assert "created custom field custom.age (integer)" in result.stdout
    assert "created custom field custom.vip (boolean)" in result.stdout


@pytest.mark.parametrize(
    "name, message",
    [
        ("broken/empty.csv", "The file is empty."),
        ("broken/header_only.csv", "no data rows"),
        ("broken/truncated_quote.csv", "Line 3, column first_name"),
        ("broken/wrong_encoding_latin1.csv", "Line 2, character 7"),
    ],
)
def test_unreadable_file_exits_1_with_the_reason_on_stderr(cli, name, message):
    Customer.create(external_id="keep")
    result = cli("customers", FIXTURES / name)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "imported:" not in result.stdout
    assert [c.external_id for c in Customer.select()] == ["keep"]
    assert ImportRun.get().status == "failed"


def test_missing_file_exits_1(cli, tmp_path):
    result = cli("orders", tmp_path / "nope.csv")
    assert result.exit_code == 1
    assert "Cannot read" in result.stderr
    assert ImportRun.select().count() == 0


def test_unknown_kind_is_a_usage_error(cli):
    result = cli("products", FIXTURES / "orders.csv")
    assert result.exit_code == 2


def test_orders_after_customers(cli, make_user):
    make_user("manager@example.com", role="manager")
    cli("customers", FIXTURES / "customers.csv")
    result = cli("orders", FIXTURES / "orders.csv")
    assert result.exit_code == 0
    assert "rejected: 3" in result.stdout and "no customer with the external id “nobody”" in result.stdout
    assert Order.select().count() == 3
