"""Speed of the CLV models (webapp.predictions.model) on 1,000,000 synthetic customers.

    .venv/bin/python bench/predict_model.py [--customers 1000000] [--seed 1]

The customers are drawn from the models' own generative processes with known parameters
(numpy only, in whole days): each customer's first purchase on one of the 730 days
before the end of the period; purchase rate lambda ~ Gamma(r, alpha) per day and
drop-out probability p ~ Beta(a, b) (BG/NBD); after each repeat purchase the customer
drops out with probability p; order values ~ Gamma(p_gg, nu) with nu ~ Gamma(q, gamma)
(Gamma-Gamma). Times are rounded down to whole days, as the SQL summary will give them.

Printed: the number of orders, the fit times (grouping identical (x, t_x, T) rows,
BG/NBD on the groups, Gamma-Gamma; with --ungrouped also BG/NBD on the ungrouped rows),
the score time (P(alive), expected purchases in the next 90 days, expected order value
and 12-month CLV for every customer), the recovered parameters
next to the true ones, peak RSS (resource.getrusage) and the load average, as the box
is shared. The product target is fit + score of 1M customers / 10M orders in < 60 s
including SQL, with peak RSS < 500 MB: the model part must be a small fraction of that.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.predictions import model  # noqa: E402

TRUE_BGNBD = {"r": 1.5, "alpha": 40.0, "a": 0.5, "b": 8.0}  # alpha per day: ~14 purchases a year
TRUE_GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}
DAYS = 730


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def simulate(n, seed):
    """x, t_x, T (whole days) and mean repeat order value m, from the generative processes."""
    rng = np.random.default_rng(seed)
    T = rng.integers(0, DAYS, n).astype(float)  # days from first purchase to the end
    lam = rng.gamma(TRUE_BGNBD["r"], 1 / TRUE_BGNBD["alpha"], n)
    drop = rng.beta(TRUE_BGNBD["a"], TRUE_BGNBD["b"], n)
    x = np.zeros(n)
    t_last = np.zeros(n)
    now = np.zeros(n)
    active = np.arange(n)
    while active.size:  # one round = every still-active customer's next purchase
        now[active] += rng.exponential(1 / lam[active])
        inside = now[active] < T[active]
        active = active[inside]
        x[active] += 1
        t_last[active] = now[active]
        active = active[rng.random(active.size) >= drop[active]]
    t_x = np.floor(t_last)
    nu = rng.gamma(TRUE_GG["q"], 1 / TRUE_GG["gamma"], n)
    m = np.zeros(n)
    rep = x > 0
    # the mean of x Gamma(p, nu) values is Gamma(p x, rate nu x)
    m[rep] = rng.gamma(TRUE_GG["p"] * x[rep], 1 / (nu[rep] * x[rep]))
    return x, t_x, T, m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--ungrouped",
        action="store_true",
        help="also fit BG/NBD on the ungrouped rows, for comparison (raises the peak RSS)",
    )
    args = ap.parse_args()

    print(f"load average before: {os.getloadavg()}; peak RSS after the imports {rss_mb():.0f} MB")
    t0 = time.perf_counter()
    x, t_x, T, m = simulate(args.customers, args.seed)
    print(
        f"simulated {args.customers:,} customers, {int(x.sum() + x.size):,} orders "
        f"({int((x > 0).sum()):,} repeat customers) in {time.perf_counter() - t0:.2f} s; "
        f"peak RSS so far {rss_mb():.0f} MB"
    )
    rss_before = rss_mb()

    t0 = time.perf_counter()
    xu, tu, Tu, counts, inverse = model.group_customers(x, t_x, T)
    t_group = time.perf_counter() - t0
    t0 = time.perf_counter()
    bg = model.fit_bgnbd(xu, tu, Tu, weights=counts)
    t_bg = time.perf_counter() - t0
    t0 = time.perf_counter()
    gg = model.fit_gamma_gamma(x, m)
    t_gg = time.perf_counter() - t0
    fit = t_group + t_bg + t_gg
    print(
        f"fit: {fit:.2f} s  (grouping into {xu.size:,} distinct (x, t_x, T): {t_group:.2f} s, "
        f"BG/NBD: {t_bg:.2f} s, Gamma-Gamma on {gg.n_customers:,} repeat customers: {t_gg:.2f} s)"
    )
    if args.ungrouped:
        t0 = time.perf_counter()
        bg_rows = model.fit_bgnbd(x, t_x, T)
        same = np.allclose([bg.r, bg.alpha, bg.a, bg.b], [bg_rows.r, bg_rows.alpha, bg_rows.a, bg_rows.b], rtol=1e-4)
        print(
            f"  (for comparison, BG/NBD on the {x.size:,} rows without grouping: "
            f"{time.perf_counter() - t0:.2f} s, same estimates: {same})"
        )

    t0 = time.perf_counter()
    alive = model.bgnbd_probability_alive(bg, x, t_x, T)
    t_alive = time.perf_counter() - t0
    t1 = time.perf_counter()
    next90 = model.bgnbd_expected_purchases(bg, 90.0, x, t_x, T)
    t_next = time.perf_counter() - t1
    t1 = time.perf_counter()
    aov = model.gamma_gamma_expected_order_value(gg, x, m)
    t_aov = time.perf_counter() - t1
    t1 = time.perf_counter()
    clv = model.customer_lifetime_value(
        bg, gg, x, t_x, T, m, time_unit_days=1, horizon_months=12, annual_discount_rate=0.10
    )
    t_clv = time.perf_counter() - t1
    score = time.perf_counter() - t0
    print(
        f"score: {score:.2f} s  (P(alive) {t_alive:.2f} s, E[purchases next 90 days] {t_next:.2f} s, "
        f"E[order value] {t_aov:.2f} s, 12-month CLV {t_clv:.2f} s)"
    )
    assert np.all(np.isfinite(alive)) and np.all(np.isfinite(next90)) and np.all(np.isfinite(clv))

    print(
        "BG/NBD  true "
        + ", ".join(f"{k}={v:g}" for k, v in TRUE_BGNBD.items())
        + "  fitted "
        + ", ".join(f"{k}={getattr(bg, k):.4g}" for k in TRUE_BGNBD)
    )
    print(
        "Gamma-Gamma true "
        + ", ".join(f"{k}={v:g}" for k, v in TRUE_GG.items())
        + "  fitted "
        + ", ".join(f"{k}={getattr(gg, k):.4g}" for k in TRUE_GG)
    )
    print(
        f"mean P(alive) {alive.mean():.3f}, mean E[90 days] {next90.mean():.3f}, "
        f"mean E[order value] {aov.mean():.2f}, total 12-month CLV {clv.sum():,.0f}"
    )
    print(
        f"fit + score: {fit + score:.2f} s; peak RSS {rss_mb():.0f} MB (+{rss_mb() - rss_before:.0f} MB over the "
        f"simulated data); load average after: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
