"""The CDNOW sample through `flask import`, then `flask predict`: the published
estimates (FHL 2005; Fader & Hardie 2013) from the app's own SQL summaries,
on SQLite and PostgreSQL."""

import csv
import datetime
import json

import pytest

from webapp.models import Customer, CustomerPrediction, Order, PredictionFit
from webapp.predictions import service

from .test_model import DATA


@pytest.fixture
def cdnow_imported(app, runner, tmp_path):
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    customers, orders = tmp_path / "customers.csv", tmp_path / "orders.csv"
    ids = set()
    with open(DATA) as src, open(orders, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["external_id", "customer_external_id", "ordered_at", "total"])
        for n, line in enumerate(src, 1):
            _cust, sample_id, ymd, _units, dollars = line.split()
            ids.add(sample_id)
            w.writerow([f"L{n}", f"C{sample_id}", f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]} 12:00:00", dollars])
    with open(customers, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["external_id", "first_name"])
        for sample_id in sorted(ids):
            w.writerow([f"C{sample_id}", f"Customer {sample_id}"])
    for kind, path in (("customers", customers), ("orders", orders)):
        result = runner.invoke(args=["import", kind, str(path)])
        assert result.exit_code == 0, result.output
    assert (Customer.select().count(), Order.select().count()) == (2357, 6919)
    return runner


def _last_json(result):
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_flask_predict_fit_reproduces_published_figures(cdnow_imported):
    result = cdnow_imported.invoke(args=["predict", "fit", "--calibration-end", "1997-09-30", "--time-unit", "week"])
    assert result.exit_code == 0, result.output
    assert "Step 2 of 5: Fitting the purchase models…" in result.stderr  # progress, off stdout
    fit = _last_json(result)
    bg, gg = fit["bgnbd"], fit["gamma_gamma"]
    # three significant figures of r = 0.2426, alpha = 4.4136, a = 0.7929, b = 2.4259, LL -9582.43
    assert f"{bg['r']:.3g}" == "0.243"
    assert f"{bg['alpha']:.3g}" == "4.41"
    assert f"{bg['a']:.3g}" == "0.793"
    assert f"{bg['b']:.3g}" == "2.43"
    assert f"{bg['log_likelihood']:.3g}" == "-9.58e+03"
    assert bg["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert (bg["n_customers"], bg["n_repeat_customers"]) == (2357, 946)
    # Gamma-Gamma on the 946 repeat customers: p = 6.25, q = 3.74, gamma = 15.44
    assert (f"{gg['p']:.3g}", f"{gg['q']:.3g}", f"{gg['gamma']:.3g}") == ("6.25", "3.74", "15.4")
    assert gg["n_customers"] == 946
    assert (fit["first_order_date"], fit["calibration_end"], fit["last_order_date"]) == (
        "1997-01-01",
        "1997-09-30",
        "1998-06-30",
    )
    # fit stores no scores
    assert CustomerPrediction.select().count() == 0
    row = PredictionFit.get()
    assert row.status == "done" and row.scored is None


def test_flask_predict_score_and_show(cdnow_imported):
    result = cdnow_imported.invoke(args=["predict", "score", "--calibration-end", "1997-09-30"])
    assert result.exit_code == 0, result.output
    assert CustomerPrediction.select().count() == 2357
    # customer 1 of the published summary: x = 2, t_x = 30.43, T = 38.86 weeks
    shown = cdnow_imported.invoke(args=["predict", "show", "C0001"])
    assert shown.exit_code == 0, shown.output
    scores = _last_json(shown)
    assert scores["external_id"] == "C0001"
    assert 0.5 < scores["p_alive"] < 1
    assert 0 < scores["orders_30d"] < scores["orders_90d"] < scores["orders_365d"]
    assert scores["aov"] > 0 and scores["clv"] > 0
    missing = cdnow_imported.invoke(args=["predict", "show", "nobody"])
    assert missing.exit_code != 0 and "nobody" in missing.output


def test_too_little_data_is_a_message_not_a_fit(app, runner, tmp_path):
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    path = tmp_path / "orders.csv"
    path.write_text(
        "external_id,customer_external_id,ordered_at,total\nO1,C1,2024-01-05 10:00:00,10\n"
        "O2,C1,2024-02-05 10:00:00,12\nO3,C2,2024-01-07 10:00:00,5\n"
    )
    (tmp_path / "c.csv").write_text("external_id\nC1\nC2\n")
    assert runner.invoke(args=["import", "customers", str(tmp_path / "c.csv")]).exit_code == 0
    assert runner.invoke(args=["import", "orders", str(path)]).exit_code == 0
    result = runner.invoke(args=["predict", "fit", "--calibration-end", "2024-03-01"])
    assert result.exit_code == 1
    assert "Too little data to trust a fit: 1 of 2 customers" in result.stderr
    assert PredictionFit.get().status == "no_fit"


def test_tracking_chart_follows_the_published_cdnow_figure(cdnow_imported):
    result = cdnow_imported.invoke(args=["predict", "fit", "--calibration-end", "1997-09-30"])
    assert result.exit_code == 0, result.output
    tracking, histogram = service.charts_of(PredictionFit.get())
    by_week = {day: (actual, expected) for day, actual, expected in tracking}
    # the week ending with the calibration period (1997-09-24..30): 2,457 repeat purchase days
    actual, expected = by_week[datetime.date(1997, 9, 24)]
    assert actual == 2457
    assert expected == pytest.approx(actual, rel=0.02)
    # the end of the 39-week holdout (FHL 2005, figure 2: the model tracks the actual curve)
    last_day, actual, expected = tracking[-1]
    assert last_day == datetime.date(1998, 6, 24)
    assert expected == pytest.approx(actual, rel=0.05)
    # histogram of the calibration period: 1,411 customers without repeat purchases (FHL 2005, figure 3)
    assert histogram[0][1] == 1411 and sum(a for _n, a, _e in histogram) == 2357
    assert histogram[0][2] == pytest.approx(1411, rel=0.03)
