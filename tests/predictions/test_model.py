"""webapp.predictions.model against the published CDNOW figures and independent numbers.

The per-customer summaries are derived here in plain Python from the raw CDNOW sample
(tests/data/CDNOW_sample.txt, see tests/data/README.md), never by calling the model:
weeks as the time unit, purchases on the same day taken as one, calibration from the
first purchase to 1997-09-30 (day 272 of the period that starts on 1997-01-01).

Published figures reproduced:
* BG/NBD (Fader, Hardie & Lee 2005, section 4): r = 0.2426, alpha = 4.4136, a = 0.7929,
  b = 2.4259, log-likelihood -9582.4.
* Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value"), on the
  946 customers with repeat purchases in the calibration period: p = 6.25, q = 3.74,
  gamma = 15.44.

"lifetimes 0.11.3" numbers below were computed once with that library (an independent
implementation, which evaluates scipy.special.hyp2f1 on the textbook parameters) on
numpy 2.4.6 / pandas 3.1.1 / scipy 1.17.1, from its own CDNOW summary files, and are
written here as constants.
"""

import datetime as dt
import json
import math
import pathlib
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from webapp.predictions import model
from webapp.predictions.model import (
    BGNBDParams,
    FitError,
    GammaGammaParams,
    bgnbd_expected_frequency_histogram,
    bgnbd_expected_purchases,
    bgnbd_log_likelihood,
    bgnbd_probability_alive,
    bgnbd_purchase_count_probability,
    bgnbd_unconditional_expected_purchases,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_expected_order_value,
    gamma_gamma_log_likelihood,
    group_customers,
)

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "CDNOW_sample.txt"
START = dt.date(1997, 1, 1)
CAL_END = dt.date(1997, 9, 30)
HOLDOUT_END = dt.date(1998, 6, 30)

# lifetimes 0.11.3, BetaGeoFitter on its cdnow_customers_summary.csv (same summaries)
LT_BGNBD = BGNBDParams(r=0.242592928279822, alpha=4.413532265271825, a=0.7928859664406758, b=2.4257523826258134)
# lifetimes 0.11.3, GammaGammaFitter on cdnow_customers_summary_with_transactions.csv
LT_GG = GammaGammaParams(p=6.248802496075072, q=3.744588460923138, gamma=15.44774806492988)


# ----------------------------------------------------------------------------- data


def _read_purchases():
    """{sample id: {date: dollars summed over that day}} for all 6,919 lines."""
    days = defaultdict(lambda: defaultdict(float))
    lines = defaultdict(list)
    n = 0
    with open(DATA) as f:
        for line in f:
            _, sample_id, ymd, _units, dollars = line.split()
            day = dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
            days[int(sample_id)][day] += float(dollars)
            lines[int(sample_id)].append((day, float(dollars)))
            n += 1
    return days, lines, n


@pytest.fixture(scope="module")
def cdnow():
    days, lines, n_lines = _read_purchases()
    ids = sorted(days)
    x, t_x, T, m_rep, m_all, m_lines, holdout = [], [], [], [], [], [], []
    for cid in ids:
        cal = sorted(d for d in days[cid] if d <= CAL_END)
        first = cal[0]
        x.append(len(cal) - 1)
        t_x.append((cal[-1] - first).days / 7)
        T.append((CAL_END - first).days / 7)
        rep = [days[cid][d] for d in cal[1:]]
        m_rep.append(sum(rep) / len(rep) if rep else 0.0)
        m_all.append(sum(days[cid][d] for d in cal) / len(cal))
        rep_lines = [v for d, v in lines[cid] if first < d <= CAL_END]
        m_lines.append(sum(rep_lines) / len(rep_lines) if rep_lines else 0.0)
        holdout.append(sum(1 for d in days[cid] if CAL_END < d <= HOLDOUT_END))
    first_days = [(min(days[cid]) - START).days / 7 for cid in ids]
    repeat_days = sorted((d - START).days / 7 for cid in ids for d in sorted(days[cid])[1:])
    return {
        "ids": ids,
        "n_lines": n_lines,
        "x": np.array(x, float),
        "t_x": np.array(t_x),
        "T": np.array(T),
        "m_rep": np.array(m_rep),
        "m_all": np.array(m_all),
        "m_lines": np.array(m_lines),
        "holdout": np.array(holdout, float),
        "first": np.array(first_days),
        "repeat_days": np.array(repeat_days),
    }


@pytest.fixture(scope="module")
def fitted(cdnow):
    return fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


@pytest.fixture(scope="module")
def fitted_gg(cdnow):
    rep = cdnow["x"] > 0
    return fit_gamma_gamma(cdnow["x"][rep], cdnow["m_rep"][rep])


def test_cdnow_summaries(cdnow):
    assert cdnow["n_lines"] == 6919
    assert len(cdnow["ids"]) == 2357
    assert int((cdnow["x"] > 0).sum()) == 946
    assert int(cdnow["x"].sum()) == 2457  # repeat purchase days in the calibration period
    # customer 1 of the published summary: x = 2, t_x = 30.43, T = 38.86 weeks
    assert (cdnow["x"][0], round(cdnow["t_x"][0], 2), round(cdnow["T"][0], 2)) == (2, 30.43, 38.86)
    assert cdnow["T"].max() == pytest.approx(272 / 7)
    assert cdnow["T"].min() == pytest.approx(27.0)  # last first purchase: 1997-03-25


# --------------------------------------------------------------------------- BG/NBD


def test_bgnbd_reproduces_published_estimates(fitted):
    # FHL 2005: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    assert round(fitted.r, 4) == 0.2426
    assert round(fitted.alpha, 4) == 4.4136
    assert round(fitted.a, 4) == 0.7929
    assert round(fitted.b, 3) == 2.426  # 2.4259 published; lifetimes finds 2.42575
    assert fitted.log_likelihood == pytest.approx(-9582.43, abs=0.01)
    assert (fitted.n_customers, fitted.n_repeat_customers) == (2357, 946)
    d = json.loads(json.dumps(fitted.to_dict(), allow_nan=False))
    assert d == {
        "r": fitted.r,
        "alpha": fitted.alpha,
        "a": fitted.a,
        "b": fitted.b,
        "log_likelihood": fitted.log_likelihood,
        "n_customers": 2357,
        "n_repeat_customers": 946,
    }
    assert LT_BGNBD.to_dict()["log_likelihood"] is None  # not fitted here


def test_bgnbd_log_likelihood_is_the_sum(cdnow, fitted):
    ll = bgnbd_log_likelihood(fitted, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert ll.shape == (2357,)
    assert ll.sum() == pytest.approx(fitted.log_likelihood, abs=1e-6)
    # the published estimates are at least as good as any nearby point
    for dr in (0.99, 1.01):
        worse = BGNBDParams(fitted.r * dr, fitted.alpha, fitted.a, fitted.b)
        assert bgnbd_log_likelihood(worse, cdnow["x"], cdnow["t_x"], cdnow["T"]).sum() < ll.sum()


def test_bgnbd_log_likelihood_by_hand():
    # one customer, the textbook formula term by term in plain math
    r, al, a, b, x, tx, T = 0.5, 3.0, 1.2, 2.5, 3, 10.0, 20.0
    B = lambda u, v: math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))  # noqa: E731
    common = math.gamma(r + x) * al**r / math.gamma(r)
    lik = B(a, b + x) / B(a, b) * common / (al + T) ** (r + x) + B(a + 1, b + x - 1) / B(a, b) * common / (al + tx) ** (
        r + x
    )
    got = bgnbd_log_likelihood(BGNBDParams(r, al, a, b), [x, 0], [tx, 0], [T, T])
    assert got[0] == pytest.approx(math.log(lik), rel=1e-12)
    lik0 = B(a, b) / B(a, b) * al**r / (al + T) ** r
    assert got[1] == pytest.approx(math.log(lik0), rel=1e-12)


def test_bgnbd_log_likelihood_no_overflow():
    ll = bgnbd_log_likelihood(BGNBDParams(0.3, 5.0, 0.8, 2.0), [5000, 1, 0], [700.0, 0.5, 0.0], [730.0, 730.0, 730.0])
    assert np.all(np.isfinite(ll))


def test_grouped_fit_equals_ungrouped(cdnow, fitted):
    # weeks rounded to whole days already: group identical rows and fit with counts
    xu, tu, Tu, counts, inverse = group_customers(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert counts.sum() == 2357 and len(xu) == 1016
    assert np.array_equal(xu[inverse], cdnow["x"]) and np.array_equal(Tu[inverse], cdnow["T"])
    assert np.array_equal(tu[inverse], cdnow["t_x"])
    g = fit_bgnbd(xu, tu, Tu, weights=counts)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(g, name) == pytest.approx(getattr(fitted, name), rel=1e-5)
    assert g.log_likelihood == pytest.approx(fitted.log_likelihood, abs=1e-6)
    assert g.n_customers == 2357


def test_bgnbd_gradient_matches_finite_differences(cdnow):
    obj = model._BGNBDObjective(cdnow["x"], cdnow["t_x"], cdnow["T"], np.ones(2357))
    for theta in (np.log([0.24, 4.4, 0.79, 2.4]), np.log([1.0, 10.0, 2.0, 0.5]), np.log([0.1, 1.0, 0.3, 8.0])):
        err = optimize.check_grad(lambda th: obj(th)[0], lambda th: obj(th)[1], theta, epsilon=1e-7)
        assert err < 1e-5 * max(1.0, float(np.abs(obj(theta)[1]).max()))


def test_fit_is_unit_free(cdnow, fitted):
    # the same data in days: r, a, b unchanged, alpha x 7, log-likelihood lower by
    # (number of repeat purchases) x log 7 (the density of times is per day instead of per week)
    d = fit_bgnbd(cdnow["x"], np.round(cdnow["t_x"] * 7), np.round(cdnow["T"] * 7))
    assert d.r == pytest.approx(fitted.r, rel=1e-4)
    assert d.alpha == pytest.approx(fitted.alpha * 7, rel=1e-4)
    assert d.a == pytest.approx(fitted.a, rel=1e-4)
    assert d.b == pytest.approx(fitted.b, rel=1e-4)
    assert d.log_likelihood == pytest.approx(fitted.log_likelihood - cdnow["x"].sum() * math.log(7), abs=1e-4)


def test_probability_alive():
    p = LT_BGNBD
    # no repeat purchase: alive for sure
    assert np.all(bgnbd_probability_alive(p, [0, 0, 0], [0, 0, 0], [0.0, 10.0, 500.0]) == 1.0)
    # by hand: 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
    x, tx, T = 2, 30.43, 38.86
    by_hand = 1 / (1 + p.a / (p.b + x - 1) * ((p.alpha + T) / (p.alpha + tx)) ** (p.r + x))
    got = bgnbd_probability_alive(p, x, tx, T)
    assert float(got) == pytest.approx(by_hand, rel=1e-12)
    assert float(got) == pytest.approx(0.72660914, abs=1e-8)  # lifetimes 0.11.3
    assert float(bgnbd_probability_alive(p, 26, 30.86, 31.0)) == pytest.approx(0.96891972, abs=1e-8)
    assert float(bgnbd_probability_alive(p, 5, 10, 38)) == pytest.approx(0.02749314, abs=1e-8)
    # the longer since the last purchase, the less likely alive; a purchase at T: the most
    pa = bgnbd_probability_alive(p, 3, [30.0, 20.0, 10.0, 1.0], 30.0)
    assert np.all(np.diff(pa) < 0)
    # huge x and a long silence: tiny but not nan
    assert 0 <= float(bgnbd_probability_alive(p, 400, 1.0, 700.0)) < 1e-100


def test_expected_purchases_match_lifetimes():
    p = LT_BGNBD
    got = bgnbd_expected_purchases(p, [39, 39, 52], [2, 26, 5], [30.43, 30.86, 10], [38.86, 31.0, 38])
    assert got == pytest.approx([1.2259104241744085, 20.75057049876324, 0.13413125216446464], rel=1e-9)
    assert float(bgnbd_expected_purchases(p, 10, 0, 0, 30)) == pytest.approx(0.06761597127609341, rel=1e-9)
    assert float(bgnbd_unconditional_expected_purchases(p, 39)) == pytest.approx(1.195016228446201, rel=1e-9)


def _expected_by_quadrature(p, t, x, tx, T):
    """P(alive) * E[(1 - exp(-lambda p t)) / p] with the posterior given alive:
    lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x); the lambda part in closed form,
    the p part by adaptive quadrature (no hypergeometric function involved)."""
    k, beta = p.r + x, p.alpha + T
    a, b = p.a, p.b + x
    log_norm = -special.betaln(a, b)

    def g(q):  # (1 - E[exp(-lambda q t)]) / q
        return -math.expm1(-k * math.log1p(q * t / beta)) / q if q > 0 else k * t / beta

    # the Beta density's end-point singularities go to quad's algebraic weights (QAWS)
    c = min(0.5, beta / t) if t > 0 else 0.5
    opts = dict(epsabs=0, epsrel=1e-12, limit=500)
    left = integrate.quad(
        lambda q: math.exp((b - 1) * math.log1p(-q) + log_norm) * g(q), 0, c, weight="alg", wvar=(a - 1, 0), **opts
    )[0]
    right = integrate.quad(
        lambda q: math.exp((a - 1) * math.log(q) + log_norm) * g(q), c, 1, weight="alg", wvar=(0, b - 1), **opts
    )[0]
    val = left + right
    return float(bgnbd_probability_alive(p, x, tx, T)) * val


@pytest.mark.parametrize(
    "t,x,tx,T",
    [
        (39, 2, 30.43, 38.86),
        (1, 0, 0, 5),
        (52, 0, 0, 0),
        (520, 1, 0.5, 1.0),
        (39, 300, 70.0, 78.0),  # large x: scipy.special.hyp2f1 on the textbook form gives nan
        (1000, 100, 1.0, 1.0),
        (3650, 0, 0, 0),
        (0.01, 10, 5.0, 40.0),
    ],
)
def test_expected_purchases_against_quadrature(t, x, tx, T):
    for p in (
        LT_BGNBD,
        BGNBDParams(0.5, 100.0, 1.5, 0.6),
        BGNBDParams(0.1, 1.0, 0.1, 0.2),
        BGNBDParams(2.0, 3.0, 1.0, 8.0),
    ):
        got = float(bgnbd_expected_purchases(p, t, x, tx, T))
        assert math.isfinite(got)
        assert got == pytest.approx(_expected_by_quadrature(p, t, x, tx, T), rel=1e-9)


def test_expected_purchases_shape():
    p = LT_BGNBD
    t = np.array([0.0, 0.001, 1, 5, 10, 39, 52, 104, 520, 5200])
    e = bgnbd_expected_purchases(p, t, 2, 30.43, 38.86)
    assert e[0] == 0.0
    assert np.all(np.diff(e) > 0)  # increasing in t
    # purchase rate now = P(alive) * E[lambda | data] = P(alive) (r+x)/(alpha+T)
    rate = float(bgnbd_probability_alive(p, 2, 30.43, 38.86)) * (p.r + 2) / (p.alpha + 38.86)
    assert e[1] / 0.001 == pytest.approx(rate, rel=1e-3)
    # a > 1: a new customer makes Geometric(p) repeat purchases in all, on average
    # E[1/p] = (a+b-1)/(a-1), the limit of E[Y(t)] (reached like t^-r: r = 2 here)
    p2 = BGNBDParams(2.0, p.alpha, 2.5, p.b)
    far = bgnbd_expected_purchases(p2, [1e4, 1e6], 0, 0, 0)
    assert far[1] == pytest.approx((p2.a + p2.b - 1) / (p2.a - 1), rel=1e-6)
    assert far[0] < far[1]
    # broadcasting over customers and horizons
    grid = bgnbd_expected_purchases(p, np.array([[10.0], [20.0]]), [0, 1, 2], [0, 5, 6], [30, 30, 30])
    assert grid.shape == (2, 3) and np.all(grid[1] > grid[0])


def test_a_equal_one_and_a_plus_b_one_are_finite():
    # the textbook form is 0/0 there; the limits from both sides agree
    for t, x, T in ((39, 0, 0), (39, 3, 30), (500, 0, 10)):
        at = float(bgnbd_expected_purchases(BGNBDParams(0.3, 5.0, 1.0, 2.0), t, x, 20.0 if x else 0, T))
        near = float(bgnbd_expected_purchases(BGNBDParams(0.3, 5.0, 1.0 + 1e-7, 2.0), t, x, 20.0 if x else 0, T))
        assert math.isfinite(at) and at == pytest.approx(near, rel=1e-6)
        at = float(bgnbd_expected_purchases(BGNBDParams(0.3, 5.0, 0.4, 0.6), t, x, 20.0 if x else 0, T))
        near = float(bgnbd_expected_purchases(BGNBDParams(0.3, 5.0, 0.4, 0.6 + 1e-7), t, x, 20.0 if x else 0, T))
        assert math.isfinite(at) and at == pytest.approx(near, rel=1e-6)


def test_purchase_count_probabilities(fitted):
    p = LT_BGNBD
    # lifetimes 0.11.3 probability_of_n_purchases_up_to_time(39, n)
    got = bgnbd_purchase_count_probability(p, 39, [0, 1, 2, 3])
    want = [0.574307283405423, 0.19919306128210307, 0.08532240876046462, 0.04579719172420953]
    assert got == pytest.approx(want, rel=1e-9)
    for params in (p, BGNBDParams(2.0, 3.0, 0.3, 8.0), BGNBDParams(0.5, 100.0, 1.5, 0.6)):
        for t in (1.0, 39.0, 78.0):
            n = np.arange(0, 20000)
            probs = bgnbd_purchase_count_probability(params, t, n)
            assert np.all(probs >= 0)
            assert probs.sum() == pytest.approx(1.0, abs=1e-9)
            # eq. 8 and eq. 9 agree: E[X(t)] = sum_n n P(X(t) = n)
            assert (n * probs).sum() == pytest.approx(
                float(bgnbd_unconditional_expected_purchases(params, t)), rel=1e-8
            )
    assert float(bgnbd_purchase_count_probability(p, 0.0, 0)) == 1.0


def test_unconditional_is_conditional_at_zero():
    p = LT_BGNBD
    t = np.array([1.0, 10.0, 78.0])
    assert bgnbd_unconditional_expected_purchases(p, t) == pytest.approx(
        bgnbd_expected_purchases(p, t, 0, 0, 0), rel=1e-14
    )


def test_fit_tracks_the_holdout_period(cdnow, fitted):
    """FHL 2005, figures 1-4: the model fitted on weeks 1-39 forecasts weeks 40-78."""
    # repeat-purchase histogram of the calibration period (figure 2): 0 .. 6, 7+
    hist = bgnbd_expected_frequency_histogram(fitted, cdnow["T"], 7)
    actual = np.bincount(np.minimum(cdnow["x"].astype(int), 7), minlength=8)
    assert hist.sum() == pytest.approx(2357)
    assert actual[0] == 1411
    assert np.all(np.abs(hist - actual) < 0.1 * actual + 15), (hist.round(1), actual)
    # cumulative repeat purchases by the end of week 78 (figure 1): each customer's
    # E[X(78 - first purchase week)]
    end = (HOLDOUT_END - START).days / 7  # 77.86 weeks: the end of 1998-06-30
    expected = bgnbd_unconditional_expected_purchases(fitted, end - cdnow["first"]).sum()
    actual78 = float(len(cdnow["repeat_days"]))
    assert actual78 == 4339
    assert expected == pytest.approx(4160.6, abs=0.1)  # 4.1% under the actual count

    # holdout purchases given the calibration history (figure 4), summed over the cohort:
    # lifetimes 0.11.3 gives 1653.4232833306896 with its estimates; the cohort actually
    # made 1882 repeat purchases in weeks 40-78 (the model forecasts 12% fewer)
    # (lifetimes' summary file has t_x and T rounded to 2 decimals)
    cond = bgnbd_expected_purchases(LT_BGNBD, 39, cdnow["x"], np.round(cdnow["t_x"], 2), np.round(cdnow["T"], 2))
    assert cond.sum() == pytest.approx(1653.4232833306896, rel=1e-12)
    assert cdnow["holdout"].sum() == 1882
    cond = bgnbd_expected_purchases(fitted, 39, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert cond.sum() == pytest.approx(1882, rel=0.15)


# ---------------------------------------------------------------------- Gamma-Gamma


def test_gamma_gamma_reproduces_published_estimates(fitted_gg):
    # Fader & Hardie 2013: p = 6.25, q = 3.74, gamma = 15.44, with m the mean value of the
    # repeat purchases, purchases on the same day summed (as in lifetimes' summaries)
    assert round(fitted_gg.p, 2) == 6.25
    assert round(fitted_gg.q, 2) == 3.74
    assert round(fitted_gg.gamma, 2) == 15.44
    assert fitted_gg.n_customers == 946
    # lifetimes 0.11.3 on the published summary (zbar rounded to cents): mean -LL 4.287445
    assert fitted_gg.log_likelihood == pytest.approx(-4.287445289115082 * 946, abs=0.5)
    d = json.loads(json.dumps(fitted_gg.to_dict(), allow_nan=False))
    assert d["mean_order_value"] == pytest.approx(fitted_gg.p * fitted_gg.gamma / (fitted_gg.q - 1))
    assert d["p"] == fitted_gg.p and d["n_customers"] == 946


def test_gamma_gamma_other_monetary_definitions_do_not_reproduce(cdnow):
    rep = cdnow["x"] > 0
    # mean over all purchase days including the first one
    g = fit_gamma_gamma(cdnow["x"][rep], cdnow["m_all"][rep])
    assert (round(g.p, 2), round(g.q, 2), round(g.gamma, 2)) != (6.25, 3.74, 15.44)
    # mean over the raw repeat lines, same-day lines not summed
    g = fit_gamma_gamma(cdnow["x"][rep], cdnow["m_lines"][rep])
    assert (round(g.p, 2), round(g.q, 2), round(g.gamma, 2)) != (6.25, 3.74, 15.44)


def test_gamma_gamma_log_likelihood_by_hand():
    p, q, g, x, m = 6.25, 3.74, 15.44, 3, 20.0
    by_hand = (
        math.lgamma(p * x + q)
        - math.lgamma(p * x)
        - math.lgamma(q)
        + q * math.log(g)
        + (p * x - 1) * math.log(m)
        + p * x * math.log(x)
        - (p * x + q) * math.log(g + m * x)
    )
    got = gamma_gamma_log_likelihood(GammaGammaParams(p, q, g), [x, 0], [m, 5.0])
    assert got[0] == pytest.approx(by_hand, rel=1e-12)
    assert math.isnan(got[1])

    # it is the density of the mean of x Gamma(p, nu) values, nu ~ Gamma(q, g): integrate over nu
    def joint(nu):
        return stats.gamma.pdf(m, p * x, scale=1 / (nu * x)) * stats.gamma.pdf(nu, q, scale=1 / g)

    dens = integrate.quad(joint, 0, np.inf, epsrel=1e-12)[0]
    assert got[0] == pytest.approx(math.log(dens), rel=1e-8)


def test_gamma_gamma_expected_order_value():
    # lifetimes 0.11.3 conditional_expected_average_profit
    got = gamma_gamma_expected_order_value(LT_GG, [2, 1, 0, 10], [22.35, 11.77, 0, 40.0])
    assert got == pytest.approx(
        [24.658616189236568, 18.91147986992935, 35.17100215250669, 39.79682537499488], rel=1e-12
    )
    assert got[2] == pytest.approx(LT_GG.mean_order_value, rel=1e-12)
    # posterior mean of p/nu by quadrature, nu | x, m ~ Gamma(p x + q, rate g + m x)
    p, q, g, x, m = LT_GG.p, LT_GG.q, LT_GG.gamma, 4, 50.0
    quad = integrate.quad(
        lambda nu: p / nu * stats.gamma.pdf(nu, p * x + q, scale=1 / (g + m * x)), 0, np.inf, epsrel=1e-12
    )[0]
    assert float(gamma_gamma_expected_order_value(LT_GG, x, m)) == pytest.approx(quad, rel=1e-8)
    # more purchases: closer to the customer's own mean
    e = gamma_gamma_expected_order_value(LT_GG, [1, 5, 50, 5000], 100.0)
    assert np.all(np.diff(e) > 0) and e[-1] == pytest.approx(100.0, rel=1e-2)


def test_gamma_gamma_grouped_weights(cdnow, fitted_gg):
    rep = cdnow["x"] > 0
    x, m = cdnow["x"][rep], cdnow["m_rep"][rep]
    g = fit_gamma_gamma(
        np.concatenate([x, x[:10]]),
        np.concatenate([m, m[:10]]),
        weights=np.concatenate([np.ones(len(x)), np.zeros(10)]),
    )
    assert g.p == pytest.approx(fitted_gg.p, rel=1e-6) and g.n_customers == 946
    doubled = fit_gamma_gamma(x, m, weights=np.full(len(x), 2.0))
    assert doubled.q == pytest.approx(fitted_gg.q, rel=1e-5)
    assert doubled.log_likelihood == pytest.approx(2 * fitted_gg.log_likelihood, rel=1e-8)


# ------------------------------------------------------------------------------ CLV


def test_customer_lifetime_value():
    bg, gg = LT_BGNBD, LT_GG
    x, tx, T, m = (
        np.array([2, 0, 26, 5]),
        np.array([30.43, 0, 30.86, 10]),
        np.array([38.86, 30, 31, 38]),
        np.array([22.35, 0, 30.0, 15.0]),
    )
    clv = customer_lifetime_value(bg, gg, x, tx, T, m, time_unit_days=7, horizon_months=12, annual_discount_rate=0.1)
    # by hand: month k's expected purchases discounted at the monthly rate, times the AOV
    w = 365.25 / 12 / 7
    d = 1.1 ** (1 / 12) - 1
    cum = [bgnbd_expected_purchases(bg, k * w, x, tx, T) for k in range(13)]
    aov = gamma_gamma_expected_order_value(gg, x, m)
    by_hand = sum((cum[k] - cum[k - 1]) / (1 + d) ** k for k in range(1, 13)) * aov
    assert clv == pytest.approx(by_hand, rel=1e-12)
    assert clv[2] > clv[0] > clv[3] > 0
    # no discount: AOV times the expected purchases over the year
    flat = customer_lifetime_value(bg, gg, x, tx, T, m, time_unit_days=7, horizon_months=12, annual_discount_rate=0)
    assert flat == pytest.approx(cum[12] * aov, rel=1e-12)
    assert np.all(flat > clv)
    # the same customers with times in days and the rate per day give the same values
    bg_days = BGNBDParams(bg.r, bg.alpha * 7, bg.a, bg.b)
    in_days = customer_lifetime_value(bg_days, gg, x, tx * 7, T * 7, m, time_unit_days=1, horizon_months=12)
    assert in_days == pytest.approx(clv, rel=1e-10)
    longer = customer_lifetime_value(bg, gg, x, tx, T, m, time_unit_days=7, horizon_months=36)
    assert np.all(longer > clv)


# ---------------------------------------------------------------------- refusals


def test_too_few_repeat_customers_is_refused(cdnow):
    x, tx, T = cdnow["x"][:200].copy(), cdnow["t_x"][:200].copy(), cdnow["T"][:200].copy()
    n_rep = int((x > 0).sum())
    assert n_rep < 100
    with pytest.raises(FitError) as e:
        fit_bgnbd(x, tx, T, min_repeat_customers=100)
    assert e.value.reason == str(e.value)
    assert f"Only {n_rep} of 200 customers have bought more than once" in e.value.reason
    assert "100 repeat customers" in e.value.reason
    with pytest.raises(FitError, match="customers have repeat purchases"):
        fit_gamma_gamma(x[x > 0], cdnow["m_rep"][:200][x > 0], min_customers=100)
    # nobody came back
    with pytest.raises(FitError, match="Only 0 of 3"):
        fit_bgnbd([0, 0, 0], [0, 0, 0], [5, 6, 7])


def test_degenerate_histories_are_refused():
    # 300 clockwork customers: one purchase a week, nobody ever drops out -> the rate's
    # spread goes to 0 (r, alpha -> infinity) and the drop-out probability to 0
    T = np.arange(10, 310, dtype=float) % 50 + 10
    with pytest.raises(FitError) as e:
        fit_bgnbd(T, T, T)
    assert "did not settle" in e.value.reason or "did not converge" in e.value.reason
    # every repeat customer spends exactly the same: no spread between customers -> q -> infinity
    with pytest.raises(FitError):
        fit_gamma_gamma(np.full(200, 3.0), np.full(200, 25.0))


def test_invalid_input_is_rejected():
    p = LT_BGNBD
    with pytest.raises(ValueError):
        bgnbd_probability_alive(p, 1, 5.0, 4.0)  # t_x > T
    with pytest.raises(ValueError):
        bgnbd_expected_purchases(p, 10, -1, 0, 4.0)
    with pytest.raises(ValueError):
        bgnbd_expected_purchases(p, 10, 1.5, 1, 4.0)
    with pytest.raises(ValueError):
        bgnbd_expected_purchases(p, -1, 1, 1, 4.0)
    with pytest.raises(ValueError):
        fit_bgnbd([1, 0], [1, 1], [2, 2])  # t_x must be 0 when x == 0


def test_model_module_needs_no_flask_peewee_or_webapp():
    code = (
        "import sys, importlib.util\n"
        "for name in ('flask', 'peewee', 'webapp', 'rq'):\n"
        "    sys.modules[name] = None\n"
        f"spec = importlib.util.spec_from_file_location('m', {str(pathlib.Path(model.__file__))!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['m'] = m; spec.loader.exec_module(m)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('flask', 'peewee', 'webapp', 'rq')"
        " and sys.modules[k] is not None))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
