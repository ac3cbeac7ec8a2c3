"""The predictions page and the customer card's predictions: the empty state, the
too-little-data message, the parameters and both figures after a fit, "Recompute
now" queueing one real job (never two), managers read-only."""

import datetime

import pytest
from conftest import csrf_from
from redis import Redis
from rq.job import Job

from webapp.models import Customer, Order, PredictionFit, utcnow
from webapp.predictions import jobs, service

from .test_nightly import population


def test_empty_state_and_nav_link(auth_client):
    html = auth_client.get("/predictions/").get_data(as_text=True)
    assert "No predictions yet" in html and "Recompute now" in html
    assert 'href="/predictions/"' in html and "chart line-chart" not in html


def test_too_little_data_shows_the_reason_instead_of_a_fit(auth_client):
    c = Customer.create(external_id="c1", first_name="Ann")
    now = utcnow()
    for n in range(3):
        Order.create(
            external_id=f"o{n}", customer=c, total_cents=1000, ordered_at=now - datetime.timedelta(days=40 * n + 5)
        )
    fit = service.compute_now(trigger="user")
    assert fit.status == "no_fit" and fit.error_code == "too_few_repeat"
    html = auth_client.get("/predictions/").get_data(as_text=True)
    assert "Too little data to trust a fit: 1 of 1 customers" in html
    assert "No predictions yet" not in html and "Fitted parameters" not in html


def test_model_page_after_a_fit(auth_client):
    population()
    fit = service.compute_now(trigger="demo")
    html = auth_client.get("/predictions/").get_data(as_text=True)
    assert "Fitted parameters" in html
    assert f"r = {fit.bgnbd['r']:.4f}; α = {fit.bgnbd['alpha']:.4f}" in html
    assert f"{fit.bgnbd['log_likelihood']:,.2f}" in html
    assert f"p = {fit.gamma_gamma['p']:.4f}" in html
    # As the reader writes numbers: decimal commas in Russian, so the parameters are apart by ";".
    ru = auth_client.get("/predictions/", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    r, alpha = (f"{fit.bgnbd[k]:.4f}".replace(".", ",") for k in ("r", "alpha"))
    assert f"r = {r}; α = {alpha}" in ru
    assert f"{fit.bgnbd['log_likelihood']:,.2f}".replace(",", "\u00a0").replace(".", ",") in ru
    assert f"on the orders from {fit.first_order_date.isoformat()} to {fit.calibration_end.isoformat()}" in html
    assert 'class="predictions-tracking chart line-chart"' in html
    assert 'class="predictions-histogram chart bar-chart"' in html
    assert "Actual repeat orders" in html and "Model" in html
    # the card in plain words
    best = service.customer_scores(Customer.get(Customer.external_id == "P1").id)
    card = auth_client.get(f"/customers/{Customer.get(Customer.external_id == 'P1').id}").get_data(as_text=True)
    percent = round(best["p_alive"] * 100)
    assert (
        f"Likely to order again: {percent} %" in card
        or f"May order again: {percent} %" in card
        or f"Probably lost: {percent} % chance of ordering again" in card
    )
    assert "Expected orders in the next 30 days" in card and "Predicted value, next 12 months" in card
    nobody = Customer.create(external_id="none", first_name="Nobody")
    assert "No predictions: they need at least one order" in auth_client.get(f"/customers/{nobody.id}").get_data(
        as_text=True
    )


def test_recompute_queues_one_job_and_shows_progress(auth_client, queue_server):
    page = auth_client.get("/predictions/").get_data(as_text=True)
    token = csrf_from(page)
    html = auth_client.post(
        "/predictions/compute", data={"csrf_token": token}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "Waiting for the worker" in html and 'hx-trigger="every 1s"' in html
    auth_client.post("/predictions/compute", data={"csrf_token": token}, headers={"HX-Request": "true"})
    fit = PredictionFit.get()  # asking twice: the same fit
    job = Job.fetch(jobs.job_id(fit.id), connection=Redis.from_url(queue_server))
    assert job.args == (fit.id,)
    job.delete()
    population()
    jobs.fit_job(fit.id)  # the test is the worker
    assert PredictionFit.get_by_id(fit.id).status == "done"
    html = auth_client.get("/predictions/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "every 1s" not in html and "Fitted parameters" in html


def test_managers_read_but_cannot_recompute(client, login, make_user):
    make_user()  # the first user is set up as the admin
    login(email="m@example.com", role="manager")
    html = client.get("/predictions/").get_data(as_text=True)
    assert "Recompute now" not in html
    assert client.post("/predictions/compute", data={"csrf_token": csrf_from(html)}).status_code == 403


def test_analytics_shows_the_predicted_value_of_todays_members(auth_client):
    from webapp.models import CustomerPrediction, Segment, SegmentMember

    population()
    service.compute_now(trigger="demo")
    segment = Segment.create(
        code="half", name="Half", type="dynamic", in_analytics=True, definition={"version": 1, "blocks": []}
    )
    members = [c.id for c in Customer.select().order_by(Customer.id).limit(75)]
    SegmentMember.insert_many([{"segment": segment.id, "customer": c, "since": utcnow()} for c in members]).execute()
    rows = list(CustomerPrediction.select().where(CustomerPrediction.customer.in_(members)))
    got = service.segment_predictions([segment.id])[segment.id]
    assert got["scored"] == 75
    assert got["clv"] == pytest.approx(sum(r.clv for r in rows))
    assert got["p_alive"] == pytest.approx(sum(r.p_alive for r in rows) / 75)
    html = auth_client.get("/analytics/?period=12w&segment=half", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Predicted value of today’s members" in html
    cents = round(sum(r.clv for r in rows) * 100)
    assert f"{cents // 100:,}.{cents % 100:02d}" in html


def test_the_discount_rate_is_a_setting(auth_client, monkeypatch):
    from webapp import settings
    from webapp.models import CustomerPrediction

    population()
    service.compute_now(trigger="demo")
    plain = {r.customer_id: r.clv for r in CustomerPrediction.select()}
    monkeypatch.setattr(settings, "PREDICTIONS_ANNUAL_DISCOUNT_RATE", 0.5)
    fit = service.compute_now(trigger="demo")
    assert fit.annual_discount_rate == 0.5
    steep = {r.customer_id: r.clv for r in CustomerPrediction.select()}
    assert all(steep[c] < plain[c] for c in plain if plain[c] > 0)
    assert "discounted at 50% a year" in auth_client.get("/predictions/").get_data(as_text=True)


def test_the_page_does_not_count_the_customer_base(auth_client, queries):
    """A count of every customer (a scan of 1,000,000 rows) was made for every view
    of the page and shown nowhere (issue 21)."""
    queries.clear()
    assert auth_client.get("/predictions/").status_code == 200
    assert queries and not [q for q in queries if 'FROM "customer"' in q]
