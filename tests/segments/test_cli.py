"""`flask segment count|members DEFINITION.json [--at]` (webapp.segments.cli; spec, "Command line")."""

import datetime
import json

from engine.helpers import customer, one, order, values

from webapp.models import Customer

D = datetime.datetime

SPEC_FILTERS = [  # the spec's own examples, as one-filter definitions
    one("customer", {"field": "city", "op": "in", "values": [{"value": "Москва", "exclude": True}]}),
    one("customer", {"field": "birth_date", "op": "relative", "from_days": 0, "to_days": 3, "ignore_year": True}),
    one("order", having=[{"agg": "last_at", "op": "relative", "to_days": -90}]),
]


def write(tmp_path, data, name="definition.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_count_prints_the_number_as_its_last_line(runner, tmp_path):
    customer("moscow", city="МОСКВА")
    customer("london", city="London", birth_date=datetime.date(1990, 6, 17))
    customer("nowhere")
    result = runner.invoke(args=["segment", "count", write(tmp_path, SPEC_FILTERS[0]), "--at", "2025-06-15"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2"
    result = runner.invoke(args=["segment", "count", write(tmp_path, SPEC_FILTERS[1]), "--at", "2025-06-15"])
    assert result.stdout.splitlines()[-1] == "1"
    result = runner.invoke(args=["segment", "count", write(tmp_path, SPEC_FILTERS[1]), "--at", "2025-06-18"])
    assert result.stdout.splitlines()[-1] == "0"


def test_members_prints_external_ids_sorted_one_a_line(runner, tmp_path):
    for ext in ("b-2", "B-10", "a-1", "Ä-3", "a-10"):
        customer(ext)
    customer("excluded", city="Москва")
    result = runner.invoke(args=["segment", "members", write(tmp_path, SPEC_FILTERS[0])])
    assert result.exit_code == 0, result.output
    # sorted by code point, the same on SQLite and PostgreSQL whatever the server's collation
    assert result.stdout.splitlines() == ["B-10", "a-1", "a-10", "b-2", "Ä-3"]


def test_at_is_in_the_account_time_zone_unless_it_has_an_offset(app, runner, tmp_path):
    c = customer("lapsed")
    order(c, D(2025, 3, 16, 22, 0), "10")  # 17 March 01:00 in Moscow
    path = write(tmp_path, SPEC_FILTERS[2])  # last order 90 or more days ago
    app.config["TZ"] = "Europe/Moscow"
    # 2025-06-15 in Moscow: 90 days ago is March 17, the order's date there
    assert runner.invoke(args=["segment", "count", path, "--at", "2025-06-15 10:00"]).stdout.splitlines()[-1] == "1"
    assert runner.invoke(args=["segment", "count", path, "--at", "2025-06-14 10:00"]).stdout.splitlines()[-1] == "0"
    # 2025-06-14 22:30 UTC is already the 15th in Moscow
    assert (
        runner.invoke(args=["segment", "count", path, "--at", "2025-06-14T22:30:00+00:00"]).stdout.splitlines()[-1]
        == "1"
    )
    app.config["TZ"] = "UTC"
    # in UTC the order is on March 16: 90 days ago on June 14
    assert runner.invoke(args=["segment", "count", path, "--at", "2025-06-14 10:00"]).stdout.splitlines()[-1] == "1"


def test_a_rejected_definition_exits_2_with_its_message_on_stderr(runner, tmp_path):
    result = runner.invoke(args=["segment", "count", write(tmp_path, {"blocks": [{"entity": "deal"}]})])
    assert result.exit_code == 2
    assert result.stderr.strip() == "Block 1 (Deals): Deal pipeline filter is not set"
    assert result.stdout == ""
    result = runner.invoke(
        args=[
            "segment",
            "members",
            write(tmp_path, {"blocks": [{"entity": "customer", "filters": [{"field": "foo", "op": "is_empty"}]}]}),
        ]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "Block 1 (Customer), filter 1: Unknown field “foo”"


def test_unreadable_definitions_and_bad_at_exit_2(runner, tmp_path):
    result = runner.invoke(args=["segment", "count", write(tmp_path, "{not json")])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    result = runner.invoke(args=["segment", "count", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "Cannot read" in result.stderr
    result = runner.invoke(args=["segment", "count", write(tmp_path, {}), "--at", "yesterday"])
    assert result.exit_code == 2 and "--at" in result.stderr


def test_definition_from_stdin(runner):
    customer("a", city="Москва")
    result = runner.invoke(
        args=["segment", "count", "-"],
        input=json.dumps(one("customer", {"field": "city", "op": "in", "values": values("москва")})),
    )
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == "1"
    assert Customer.select().count() == 1
