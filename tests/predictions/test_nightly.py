"""The nightly job end to end on both databases: it fits and scores as of today,
queues the segments that read predicted fields, and a customer whose scores now
cross the segment's thresholds enters it, so a trigger on entry fires."""

import datetime

import numpy as np
import pytest

from webapp.activation import triggers
from webapp.models import (
    Customer,
    CustomerPrediction,
    Notification,
    Order,
    PredictionFit,
    Segment,
    SegmentMember,
    SegmentRun,
    User,
    utcnow,
)
from webapp.predictions import jobs, service
from webapp.rollups import rebuild_order_stats, refresh_order_stats
from webapp.segments import runs
from webapp.segments.system import ensure_system_segments

LAPSED_VALUABLE = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "customer",
            "match": "all",
            "filters": [
                {"field": "predicted.p_alive", "op": "between", "to": 0.3},
                {"field": "predicted.clv", "op": "between", "from": 5000},
            ],
        }
    ],
}


def population(n=150, seed=3):
    """n customers drawn from the models themselves: purchase rate ~ Gamma(1, 20 days),
    drop-out after each purchase ~ Beta(1, 3); first purchases over the last two years."""
    rng = np.random.default_rng(seed)
    now = utcnow()
    Customer.insert_many([{"external_id": f"P{i}", "first_name": f"P{i}"} for i in range(1, n + 1)]).execute()
    ids = dict(Customer.select(Customer.external_id, Customer.id).tuples())
    orders = []
    for i in range(1, n + 1):
        rate, drop = rng.gamma(1.0, 1 / 20.0), rng.beta(1.0, 3.0)
        scale = 1 / rng.gamma(4.0, 1 / 2000.0)  # Gamma-Gamma: spend ~ Gamma(5, scale)
        day, k = float(rng.integers(60, 730)), 0
        while day > 0:
            k += 1
            orders.append(
                {
                    "external_id": f"P{i}-{k}",
                    "customer": ids[f"P{i}"],
                    "total_cents": int(rng.gamma(5.0, scale) * 100) + 100,
                    "ordered_at": now - datetime.timedelta(days=day),
                }
            )
            if rng.random() < drop:
                break
            day -= max(1.0, rng.exponential(1 / rate))
    Order.insert_many([Order.fill_folded(o) for o in orders]).execute()
    rebuild_order_stats()


@pytest.fixture
def scored(db, queue_server):
    population()
    fit = service.compute_now(trigger="demo")
    assert fit.status == "done", fit.error
    return fit


def test_scores_fields_and_the_page_figures(scored):
    assert scored.customers == 150 and scored.scored == 150
    rows = list(CustomerPrediction.select())
    assert len(rows) == 150
    for r in rows:
        assert 0 <= r.p_alive <= 1
        assert 0 <= r.orders_30d <= r.orders_90d <= r.orders_365d
        assert r.aov > 0 and r.clv >= 0
    tracking, histogram = service.charts_of(scored)
    # at least a day between orders: repeat purchases = orders - first purchases
    assert tracking and tracking[-1][1] == Order.select().count() - 150
    assert sum(a for _n, a, _e in histogram) == 150
    assert sum(e for _n, _a, e in histogram) == pytest.approx(150, rel=1e-6)
    # a customer without orders has no scores: null, so no filter on a predicted field takes them
    Customer.create(external_id="none", first_name="No orders")
    from webapp import engine

    everyone = {
        "version": 1,
        "match": "all",
        "blocks": [
            {
                "entity": "customer",
                "match": "all",
                "filters": [{"field": "predicted.p_alive", "op": "between", "from": 0}],
            }
        ],
    }
    assert engine.count(everyone) == 150


def test_nightly_job_moves_a_customer_into_a_predicted_segment_and_fires_its_trigger(scored):
    ensure_system_segments()
    boss = User.create(email="boss@example.com", email_ci="boss@example.com", password_hash="x", role="admin")
    segment = Segment.create(
        code="lapsed_valuable", name="Valuable, lapsed", type="dynamic", definition=LAPSED_VALUABLE
    )
    run = runs.request_run(segment, trigger="created")
    runs.execute_run(run.id)
    triggers.save(
        {
            "name": "Win back",
            "segment_id": segment.id,
            "event": "entered",
            "active": "1",
            "steps": [
                {
                    "action": "notify",
                    "delay_value": 0,
                    "delay_unit": "seconds",
                    "only_members": "1",
                    "text": "{{ name }} is valuable and probably lost",
                    "user_id": str(boss.id),
                }
            ],
        }
    )
    # six big orders three weeks apart, the last of them 200 days ago: no scores until the next fit
    vip = Customer.create(external_id="lapsed-vip", first_name="Lapsed", last_name="Vip")
    now = utcnow()
    for n in range(6):
        Order.create(
            external_id=f"lv-{n}",
            customer=vip,
            total_cents=200_000_00,
            ordered_at=now - datetime.timedelta(days=300 - 20 * n),
        )
    assert service.customer_scores(vip.id)["p_alive"] is None
    refresh_order_stats([vip.id])  # as every order writer does
    assert not SegmentMember.select().where(SegmentMember.customer == vip.id).exists()

    fit = PredictionFit.get_by_id(jobs.nightly_job())
    assert (fit.status, fit.trigger, fit.calibration_end) == ("done", "nightly", service.today())
    scores = service.customer_scores(vip.id)
    assert scores["p_alive"] < 0.3 and scores["clv"] > 5000
    queued = SegmentRun.get(SegmentRun.segment == segment.id, SegmentRun.status == "queued")
    assert queued.trigger == "predictions"
    # only the segments reading predicted fields are queued, the system ones on predictions among them
    assert {r.segment.code for r in SegmentRun.select().where(SegmentRun.status == "queued")} == {
        "lapsed_valuable",
        "system_likely_to_buy_soon",
        "system_valuable_probably_lost",
    }
    for run in list(SegmentRun.select().where(SegmentRun.status == "queued")):
        runs.execute_run(run.id)  # the test is the worker
    # the two system segments hold exactly the customers their scores put there
    soon = {
        c
        for (c,) in CustomerPrediction.select(CustomerPrediction.customer)
        .where((CustomerPrediction.p_alive >= 0.7) & (CustomerPrediction.orders_30d >= 0.5))
        .tuples()
    }
    lost = {
        c
        for (c,) in CustomerPrediction.select(CustomerPrediction.customer)
        .where((CustomerPrediction.p_alive <= 0.3) & (CustomerPrediction.aov >= 5000))
        .tuples()
    }
    for code, expected in (("system_likely_to_buy_soon", soon), ("system_valuable_probably_lost", lost)):
        system = Segment.get(Segment.code == code)
        assert {m.customer_id for m in SegmentMember.select().where(SegmentMember.segment == system.id)} == expected
    assert soon and vip.id in lost
    assert SegmentMember.select().where(SegmentMember.segment == segment.id, SegmentMember.customer == vip.id).exists()
    triggers.consume()
    triggers.run_due()
    assert [n.message for n in Notification.select().where(Notification.user == boss)] == [
        "Lapsed Vip is valuable and probably lost"
    ]


def test_nightly_job_runs_once_while_a_fit_is_under_way(scored):
    fit = service.create_fit(trigger="nightly")
    PredictionFit.update(status="running", started_at=utcnow()).where(PredictionFit.id == fit.id).execute()
    assert jobs.nightly_job() is None
