"""BG/NBD and Gamma-Gamma customer-lifetime-value models over numpy arrays.

Pure numpy/scipy: nothing here imports Flask, peewee or the rest of webapp, and every
function works on whole arrays of customers (no Python loop per customer).

Per-customer summary, in one time unit of the caller's choice (days or weeks; the fitted
alpha is in that unit and so are the horizons ``t`` passed to the scoring functions):

* ``x``   number of repeat purchases (distinct purchase periods after the first one),
* ``t_x`` recency: time of the last purchase, measured from the first purchase
  (0 when ``x == 0``),
* ``T``   age: time from the first purchase to the end of the observation period,
* ``m``   mean value of the repeat purchases (Gamma-Gamma; only used when ``x > 0``).

Identical rows may be grouped and passed once with a ``weights`` (count) array:
:func:`group_customers` does that.

References
----------
* P. S. Fader, B. G. S. Hardie, K. L. Lee (2005), "'Counting Your Customers' the Easy
  Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284.
  Equations (6) likelihood, (8) P(X(t)=x), (9) E[X(t)], (10) E[Y(t) | x, t_x, T],
  (13) P(alive | x, t_x, T).
* P. S. Fader, B. G. S. Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
  (note), after R. Colombo, W. Jiang (1999), "A stochastic RFM model", Journal of
  Interactive Marketing 13(3), 2-12.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import scipy  # its submodules load on first use (scipy's lazy loading): the app starts without them

__all__ = [
    "BGNBDParams",
    "GammaGammaParams",
    "FitError",
    "group_customers",
    "bgnbd_log_likelihood",
    "fit_bgnbd",
    "bgnbd_probability_alive",
    "bgnbd_expected_purchases",
    "bgnbd_unconditional_expected_purchases",
    "bgnbd_purchase_count_probability",
    "bgnbd_expected_frequency_histogram",
    "gamma_gamma_log_likelihood",
    "fit_gamma_gamma",
    "gamma_gamma_expected_order_value",
    "customer_lifetime_value",
    "DAYS_PER_MONTH",
]

#: Length of the CLV month, in days (a Julian year of 365.25 days over 12).
DAYS_PER_MONTH = 365.25 / 12

# Default minimum amounts of data below which a fit is refused.
MIN_REPEAT_CUSTOMERS = 50
MIN_GAMMA_GAMMA_CUSTOMERS = 50

# log-parameters are kept within these bounds; an optimum on a bound means the data do
# not identify the parameter (it wants to go to 0 or infinity).
_LOG_BOUND = 25.0
_SERIES_MAX_TERMS = 200_000_000  # about 35 (alpha+T+t)/(alpha+T) terms are needed


class FitError(ValueError):
    """The data are too few, or too degenerate, to trust a fit.

    ``reason`` is a sentence that can be shown to a user as it is."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters.

    Purchase rate lambda ~ Gamma(shape r, rate alpha) (alpha in the data's time unit),
    drop-out probability after each purchase p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan
    n_customers: int = 0
    n_repeat_customers: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values (nan, e.g. an unknown log-likelihood, as None)."""
        return _json_safe(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters: each transaction value ~ Gamma(shape p, rate nu),
    nu ~ Gamma(shape q, rate gamma) across customers (lifetimes calls gamma "v")."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = math.nan
    n_customers: int = 0

    @property
    def mean_order_value(self) -> float:
        """Population mean order value E[M] = p * gamma / (q - 1) (infinite if q <= 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else math.inf

    def to_dict(self) -> dict[str, Any]:
        """The fields and the mean order value as plain JSON values (nan or inf as None)."""
        return _json_safe({**dataclasses.asdict(self), "mean_order_value": self.mean_order_value})


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


# ---------------------------------------------------------------------------- helpers


def _count(n: float) -> str:
    """A (weighted) number of customers for a message: 1,234 or 12.5."""
    return f"{int(n):,}" if float(n).is_integer() else f"{n:,.1f}"


def _as_float(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def _check_summary(x, t_x, T):
    x, t_x, T = np.broadcast_arrays(_as_float(x), _as_float(t_x), _as_float(T))
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise ValueError("x, t_x and T must be finite")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("x (repeat purchases) must be whole numbers >= 0")
    if np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("recency t_x must satisfy 0 <= t_x <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("t_x must be 0 for customers without repeat purchases")
    return x, t_x, T


def _check_weights(weights, shape):
    if weights is None:
        return np.ones(shape)
    w = np.broadcast_to(_as_float(weights), shape)
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0")
    return w


def _unique_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of equally shaped 1-D columns: (unique columns, inverse index).

    Uses one 1-D ``np.unique`` per column and combines the integer codes pairwise, which is
    much faster than ``np.unique(axis=0)`` on a million rows."""
    key = None
    for col in columns:
        _, code = np.unique(col, return_inverse=True)
        code = code.astype(np.int64).ravel()
        if key is None:
            key = code
        else:
            key = key * (int(code.max(initial=0)) + 1) + code
            _, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64).ravel()
    assert key is not None
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return [c[first] for c in columns], inverse.ravel()


def group_customers(x, t_x, T):
    """Group identical (x, t_x, T) rows.

    Returns ``(x_u, t_x_u, T_u, counts, inverse)``: the distinct rows, how many customers
    each stands for (pass as ``weights``), and for every input row the index of its group
    (so that ``score_u[inverse]`` maps per-group results back to customers). How much this
    saves depends on the data: times in whole weeks or days over a short history coincide
    often (CDNOW: 2,357 customers, 1,016 distinct rows); two years of daily history for a
    million customers still leaves about 700,000 distinct rows (bench/predict_model.py)."""
    x, t_x, T = (a.ravel() for a in _check_summary(x, t_x, T))
    (xu, tu, Tu), inverse = _unique_rows(x, t_x, T)
    counts = np.bincount(inverse, minlength=xu.size).astype(float)
    return xu, tu, Tu, counts, inverse


# ----------------------------------------------------------------------------- BG/NBD


def _bgnbd_terms(r, alpha, a, b, x, t_x, T):
    """log(A1), log-terms L2 and L3 of the BG/NBD likelihood (L3 = -inf where x == 0)."""
    pos = x > 0
    a1 = scipy.special.gammaln(r + x) - scipy.special.gammaln(r) + r * math.log(alpha)
    lb = scipy.special.betaln(a, b)
    l2 = scipy.special.betaln(a, b + x) - lb - (r + x) * np.log(alpha + T)
    xs = np.where(pos, x, 1.0)
    l3 = np.where(pos, scipy.special.betaln(a + 1, b + xs - 1) - lb - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1, l2, l3


def bgnbd_log_likelihood(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6):

        L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
          + [x > 0] B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x))

    evaluated in logs with gammaln/betaln and the two terms combined by log-sum-exp
    (``np.logaddexp``), so that large x, T and alpha neither overflow nor underflow."""
    x, t_x, T = _check_summary(x, t_x, T)
    a1, l2, l3 = _bgnbd_terms(params.r, params.alpha, params.a, params.b, x, t_x, T)
    return a1 + np.logaddexp(l2, l3)


class _BGNBDObjective:
    """Mean negative log-likelihood over log(r, alpha, a, b), with its analytic gradient.

    Per customer, log L = A1(x) + L2 + softplus(L3 - L2) (the log-sum-exp of eq. 6), where
    A1 and the Beta-function parts of L2, L3 depend on x only: they are computed once per
    distinct x and summed with the weight of each x, so that per row there are only two
    logs and, for x > 0, a logistic function. d/dtheta of softplus(d) is expit(d)."""

    def __init__(self, x, t_x, T, w):
        self.xs, xi = np.unique(x, return_inverse=True)
        xi = xi.ravel()
        self.W = np.bincount(xi, weights=w, minlength=self.xs.size)  # weight per distinct x
        self.wsum = float(w.sum())
        self.w, self.x, self.T = w, x, T
        self.wx = w * x
        pos = x > 0
        self.p_xi, self.p_x, self.p_tx, self.p_T, self.p_w = xi[pos], x[pos], t_x[pos], T[pos], w[pos]

    def __call__(self, theta):
        r, alpha, a, b = np.exp(theta)
        xs, W = self.xs, self.W
        dg = scipy.special.digamma
        spos = xs > 0
        xs1 = np.where(spos, xs, 1.0)
        lb = scipy.special.betaln(a, b)
        # per distinct x
        a1_s = scipy.special.gammaln(r + xs) - scipy.special.gammaln(r)
        b2_s = scipy.special.betaln(a, b + xs) - lb
        b3_s = np.where(spos, scipy.special.betaln(a + 1, b + xs1 - 1) - lb, 0.0)
        d_ab, d_abx = dg(a + b), dg(a + b + xs)
        db2_da = d_ab - d_abx
        db3_da = 1.0 / a + d_ab - d_abx
        db2_db = dg(b + xs) - d_abx - dg(b) + d_ab
        db3_db = np.where(spos, dg(b + xs1 - 1) - d_abx - dg(b) + d_ab, 0.0)
        # every row: the L2 part
        lT = np.log(alpha + self.T)
        iT = 1.0 / (alpha + self.T)
        total = (
            float(np.dot(W, a1_s + b2_s))
            + self.wsum * r * math.log(alpha)
            - r * float(np.dot(self.w, lT))
            - float(np.dot(self.wx, lT))
        )
        g_r = float(np.dot(W, dg(r + xs))) - self.wsum * (dg(r) - math.log(alpha)) - float(np.dot(self.w, lT))
        g_alpha = self.wsum * r / alpha - r * float(np.dot(self.w, iT)) - float(np.dot(self.wx, iT))
        g_a = float(np.dot(W, db2_da))
        g_b = float(np.dot(W, db2_db))
        # rows with x > 0: + softplus(d), d = L3 - L2
        if self.p_x.size:
            xi, px, pw = self.p_xi, self.p_x, self.p_w
            rx = r + px
            plT = np.log(alpha + self.p_T)
            plt = np.log(alpha + self.p_tx)
            d = (b3_s - b2_s)[xi] - rx * (plt - plT)
            # softplus(d) = log(1 + e^d) and expit(d) = 1/(1 + e^-d) from e = exp(-|d|) <= 1
            # (numpy's own ufuncs: scipy's expit/log_expit are several times slower)
            e = np.exp(-np.abs(d))
            total += float(np.dot(pw, np.maximum(d, 0.0) + np.log1p(e)))
            w3 = np.where(d >= 0, 1.0, e) / (1.0 + e)
            ww3 = pw * w3
            g_r -= float(np.dot(ww3, plt - plT))
            g_alpha -= float(np.dot(ww3 * rx, 1.0 / (alpha + self.p_tx) - 1.0 / (alpha + self.p_T)))
            s3 = np.bincount(xi, weights=ww3, minlength=xs.size)  # sum of w * w3 per distinct x
            g_a += float(np.dot(s3, db3_da - db2_da))
            g_b += float(np.dot(s3, db3_db - db2_db))
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        if not np.isfinite(total) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros(4)
        return -total / self.wsum, -grad / self.wsum


def _minimize(objective, theta0, names, what):
    """L-BFGS-B with the analytic gradient; if it stalls, Nelder-Mead from where it
    stopped, then L-BFGS-B again. Returns the optimum; raises FitError when the optimum
    is on a bound (a parameter diverging to 0 or infinity) or was not reached."""
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(theta0)
    opts = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9}

    def lbfgs(start):
        return scipy.optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)

    def converged(res):
        g = objective(res.x)[1]
        return np.all(np.isfinite(res.x)) and float(np.max(np.abs(g))) < 1e-5

    res = lbfgs(np.asarray(theta0, dtype=float))
    if not converged(res):
        nm = scipy.optimize.minimize(
            lambda th: objective(np.clip(th, -_LOG_BOUND, _LOG_BOUND))[0],
            res.x,
            method="Nelder-Mead",
            options={"maxiter": 20000, "maxfev": 20000, "xatol": 1e-10, "fatol": 1e-15},
        )
        res = lbfgs(np.clip(nm.x, -_LOG_BOUND, _LOG_BOUND))
    at_bound = np.abs(res.x) > _LOG_BOUND - 1.0
    if np.any(at_bound):
        which = ", ".join(
            f"{n} -> {'infinity' if v > 0 else '0'}" for n, v, hit in zip(names, res.x, at_bound, strict=True) if hit
        )
        raise FitError(
            f"The fit did not settle ({which}): the {what} are too few or too uniform for the model to estimate."
        )
    if not converged(res):
        raise FitError(f"The fit did not converge: the {what} are too few or too irregular to trust it.")
    return res


def fit_bgnbd(x, t_x, T, weights=None, *, min_repeat_customers: int = MIN_REPEAT_CUSTOMERS) -> BGNBDParams:
    """Fit BG/NBD by maximum likelihood (FHL 2005, eq. 6) and return the parameters.

    Maximises sum_i w_i * log L(r, alpha, a, b | x_i, t_x_i, T_i) over the log-parameters
    with L-BFGS-B and the analytic gradient (Nelder-Mead as a fallback). ``weights`` are
    counts of identical rows (see :func:`group_customers`).

    Raises :class:`FitError` when fewer than ``min_repeat_customers`` customers (weighted)
    have a repeat purchase, or when the optimum is not found / lies at a parameter of 0 or
    infinity."""
    x, t_x, T = (a.ravel() for a in _check_summary(x, t_x, T))
    w = _check_weights(weights, x.shape).ravel()
    keep = w > 0
    if not keep.all():
        x, t_x, T, w = x[keep], t_x[keep], T[keep], w[keep]
    n = float(w.sum())
    n_rep = float(w[x > 0].sum())
    if n_rep < min_repeat_customers:
        raise FitError(
            f"Only {_count(n_rep)} of {_count(n)} customers have bought more than once; at least "
            f"{min_repeat_customers} repeat customers are needed to fit the purchase model."
        )
    if not np.any(T > 0):
        raise FitError("Every customer's first purchase is at the end of the period: there is no history to fit.")
    objective = _BGNBDObjective(x, t_x, T, w)
    # Start: r = 1 and alpha so that the mean purchase rate r/alpha matches x/T overall.
    rate = max(float(np.dot(w, x)) / max(float(np.dot(w, T)), 1e-12), 1e-12)
    theta0 = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    res = _minimize(objective, theta0, ("r", "alpha", "a", "b"), "purchase histories")
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    return BGNBDParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=-float(res.fun) * n,
        n_customers=int(round(n)),
        n_repeat_customers=int(round(n_rep)),
    )


def _log_alive_odds(params: BGNBDParams, x, t_x, T):
    """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) for x > 0, -inf for x == 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    pos = x > 0
    xs = np.where(pos, x, 1.0)
    lo = math.log(a) - np.log(b + xs - 1) + (r + xs) * (np.log(alpha + T) - np.log(alpha + np.where(pos, t_x, 0.0)))
    return np.where(pos, lo, -np.inf)


def bgnbd_probability_alive(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T) (FHL 2005, eq. 13):

        P = 1 / (1 + [x > 0] * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x))

    computed as expit(-log-odds) so that it neither overflows nor loses precision.
    A customer without repeat purchases is alive with probability 1 (in BG/NBD drop-out
    can only happen right after a purchase)."""
    x, t_x, T = _check_summary(x, t_x, T)
    return scipy.special.expit(-_log_alive_odds(params, x, t_x, T))


def _j_series(A, a, C, z):
    """J = sum_{k>=1} (A)_k (a)_{k-1} z^k / ((C+1)_{k-1} k!), for 0 <= z < 1 and C > -1.

    J = C (2F1(A, a-1; C; z) - 1) / (a-1): the hypergeometric series without its leading 1,
    with the factors (a-1) and C divided out, so that it stays finite at a = 1 and C = 0.
    term_1 = A z, term_{k+1} = term_k * (A+k)(a+k-1) / ((C+k)(k+1)) * z. The numerator
    parameters used here are small whatever x is, so the terms soon keep one sign (no
    cancellation); the series is summed until the remaining tail, bounded by a geometric
    series, is below 1e-16 of the sum. Element-wise on arrays: the loop is over blocks of
    series terms (cumulative products of the term ratios), on the elements that have not
    converged yet, so z close to 1 (thousands of terms) stays cheap."""
    A, a, C, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, a, C, z)))
    A, a, C, z = (v.ravel().copy() for v in (A, a, C, z))
    out = np.zeros(A.shape)
    idx = np.flatnonzero(z > 0)
    A, a, C, z = A[idx], a[idx], C[idx], z[idx]
    term = A * z
    total = term.copy()
    k = 1  # ratio k turns term k into term k+1
    while idx.size:
        # a block of terms at once (many when few elements remain, e.g. z close to 1)
        n_terms = int(min(65536, max(1, 2**16 // idx.size)))
        ks = k + np.arange(n_terms, dtype=float)
        ratios = ((A[:, None] + ks) * (a[:, None] + ks - 1) / ((C[:, None] + ks) * (ks + 1))) * z[:, None]
        terms = term[:, None] * np.cumprod(ratios, axis=1)
        total = total + terms.sum(axis=1)
        term, ratio = terms[:, -1], ratios[:, -1]
        k += n_terms
        rho = np.maximum(np.abs(ratio), z)
        tail = np.abs(term) * rho / np.maximum(1.0 - rho, 1e-300)
        done = ((rho < 1) & (tail <= 1e-16 * np.abs(total))) | (term == 0) | ~np.isfinite(total)
        if np.any(done):
            out[idx[done]] = total[done]
            keep = ~done
            idx, A, a, C, z, term, total = (v[keep] for v in (idx, A, a, C, z, term, total))
        if k > _SERIES_MAX_TERMS:
            raise FloatingPointError(
                "hypergeometric series did not converge: the horizon t is too long compared with alpha + T"
            )
    if not np.all(np.isfinite(out)):
        raise FloatingPointError("hypergeometric series overflowed; the parameters are extreme")
    return out


def _expected_if_alive(params: BGNBDParams, t, x, T):
    """E[Y(t) | x, T, alive] = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
    * 2F1(r+x, b+x; a+b+x-1; z)],  z = t/(alpha+T+t)   (FHL 2005, eq. 10 without P(alive)).

    Evaluated stably: by Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A,C-B;C;z),

        ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; C; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; C; z),

    C = a+b+x-1, a series whose numerator parameters are small whatever x is. Writing that
    2F1 as 1 + (a-1) J / C (J from :func:`_j_series`), the expectation is

        C (1 - (1-z)^(a-1)) / (a-1) - (1-z)^(a-1) J

    with (1 - (1-z)^(a-1))/(a-1) = -log1p(-z) exprel((a-1) log1p(-z)): finite at a = 1 and
    at C = 0 (a + b = 1 with x = 0), where the textbook form is 0/0.

    scipy.special.hyp2f1 is not used: on the original parameters it returns nan for large x
    (e.g. x = 300, z = 0.92) and on the transformed ones inf for large C (e.g. C = 101, z = 0.91).
    Distinct (t, x, T) are computed once."""
    t, x, T = np.broadcast_arrays(_as_float(t), _as_float(x), _as_float(T))
    shape = t.shape
    if np.any(t < 0):
        raise ValueError("the horizon t must be >= 0")
    (tu, xu, Tu), inv = _unique_rows(t.ravel(), x.ravel(), T.ravel())
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = tu / (alpha + Tu + tu)
    C = a + b + xu - 1
    J = _j_series(a + b - 1 - r, a, C, z)
    l1 = np.log1p(-z)
    val = C * (-l1) * scipy.special.exprel((a - 1) * l1) - np.exp((a - 1) * l1) * J
    return val[inv].reshape(shape)


def bgnbd_expected_purchases(params: BGNBDParams, t, x, t_x, T) -> np.ndarray:
    """Expected number of purchases in the next ``t`` periods, E[Y(t) | x, t_x, T]
    (FHL 2005, eq. 10):

        E = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
            / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))

    i.e. P(alive | x, t_x, T) times the expectation if alive; the Gaussian hypergeometric
    function is evaluated stably (see ``_expected_if_alive``). ``t`` broadcasts against
    the customers' arrays."""
    x, t_x, T = _check_summary(x, t_x, T)
    t, x, t_x, T = np.broadcast_arrays(_as_float(t), x, t_x, T)
    return bgnbd_probability_alive(params, x, t_x, T) * _expected_if_alive(params, t, x, T)


def bgnbd_unconditional_expected_purchases(params: BGNBDParams, t) -> np.ndarray:
    """Expected number of repeat purchases of a customer in the ``t`` periods after the
    first purchase, E[X(t)] (FHL 2005, eq. 9):

        E[X(t)] = (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]

    (the conditional expectation at x = t_x = T = 0, evaluated the same stable way). For
    the cumulative tracking chart of a cohort, sum E[X(tau - s_i)] over the customers'
    first-purchase times s_i < tau."""
    t = _as_float(t)
    return _expected_if_alive(params, t, np.zeros(t.shape), np.zeros(t.shape))


def bgnbd_purchase_count_probability(params: BGNBDParams, t, n) -> np.ndarray:
    """Probability that a customer makes exactly ``n`` repeat purchases in the ``t``
    periods after the first one, P(X(t) = n) (FHL 2005, eq. 8):

        P = B(a, b+n)/B(a, b) * Gamma(r+n)/(Gamma(r) n!) (alpha/(alpha+t))^r (t/(alpha+t))^n
          + [n > 0] B(a+1, b+n-1)/B(a, b) * [1 - (alpha/(alpha+t))^r
                        sum_{j<n} Gamma(r+j)/(Gamma(r) j!) (t/(alpha+t))^j]

    The bracket is the upper tail of a negative binomial, computed as the regularised
    incomplete beta function I_{t/(alpha+t)}(n, r) (``scipy.special.betainc``)."""
    t, n = np.broadcast_arrays(_as_float(t), _as_float(n))
    if np.any(n < 0) or np.any(n != np.floor(n)):
        raise ValueError("n must be whole numbers >= 0")
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    lb = scipy.special.betaln(a, b)
    q = t / (alpha + t)
    log_nb = (
        scipy.special.gammaln(r + n)
        - scipy.special.gammaln(r)
        - scipy.special.gammaln(n + 1)
        + r * (np.log(alpha) - np.log(alpha + t))
        + scipy.special.xlogy(n, q)
    )
    first = np.exp(scipy.special.betaln(a, b + n) - lb + log_nb)
    pos = n > 0
    ns = np.where(pos, n, 1.0)
    second = np.where(pos, np.exp(scipy.special.betaln(a + 1, b + ns - 1) - lb) * scipy.special.betainc(ns, r, q), 0.0)
    return first + second


def bgnbd_expected_frequency_histogram(params: BGNBDParams, T, max_n: int, weights=None) -> np.ndarray:
    """Expected number of customers with 0, 1, ..., max_n - 1 and >= max_n repeat
    purchases, given each customer's age ``T`` (FHL 2005, Figure 2): sum_i w_i P(X(T_i) = n)
    with :func:`bgnbd_purchase_count_probability`; the last element is the rest (>= max_n).
    Returns an array of length max_n + 1. Distinct T are computed once."""
    T = _as_float(T).ravel()
    w = _check_weights(weights, T.shape).ravel()
    Tu, inv = np.unique(T, return_inverse=True)
    wu = np.bincount(inv.ravel(), weights=w, minlength=Tu.size)
    n = np.arange(max_n, dtype=float)
    probs = bgnbd_purchase_count_probability(params, Tu[:, None], n[None, :])
    counts = wu @ probs
    return np.append(counts, max(float(w.sum()) - float(counts.sum()), 0.0))


# ------------------------------------------------------------------------- Gamma-Gamma


def _check_monetary(x, m):
    x, m = np.broadcast_arrays(_as_float(x), _as_float(m))
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("x (repeat purchases) must be whole numbers >= 0")
    return x, m


def gamma_gamma_log_likelihood(params: GammaGammaParams, x, m) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood of the mean transaction value ``m`` over
    ``x`` transactions (Fader & Hardie 2013, eq. 3; Colombo & Jiang 1999):

        f(m | x) = Gamma(p x + q) / (Gamma(p x) Gamma(q)) * gamma^q m^(p x - 1) x^(p x)
                   / (gamma + m x)^(p x + q)

    Only defined for x > 0 and m > 0 (nan elsewhere)."""
    x, m = _check_monetary(x, m)
    ok = (x > 0) & (m > 0)
    xs, ms = np.where(ok, x, 1.0), np.where(ok, m, 1.0)
    p, q, g = params.p, params.q, params.gamma
    px = p * xs
    ll = (
        scipy.special.gammaln(px + q)
        - scipy.special.gammaln(px)
        - scipy.special.gammaln(q)
        + q * math.log(g)
        + (px - 1) * np.log(ms)
        + px * np.log(xs)
        - (px + q) * np.log(g + xs * ms)
    )
    return np.where(ok, ll, np.nan)


class _GammaGammaObjective:
    """Mean negative log-likelihood over log(p, q, gamma), with its analytic gradient.

    The Gamma-function terms depend on x only (computed once per distinct x) and the
    terms linear in p are sums fixed by the data; per row there is only log(gamma + x m)."""

    def __init__(self, x, m, w):
        self.xs, xi = np.unique(x, return_inverse=True)
        xi = xi.ravel()
        self.W = np.bincount(xi, weights=w, minlength=self.xs.size)  # weight per distinct x
        self.xm = x * m
        self.w, self.wx = w, w * x
        lm = np.log(m)
        self.s_wx_lmx = float(np.dot(self.wx, lm + np.log(x)))  # sum w x (log m + log x)
        self.s_w_lm = float(np.dot(w, lm))
        self.wsum = float(w.sum())

    def __call__(self, theta):
        p, q, g = np.exp(theta)
        xs, W = self.xs, self.W
        pxs = p * xs
        y = g + self.xm
        L = np.log(y)
        R = 1.0 / y
        s_wx_L, s_w_L = float(np.dot(self.wx, L)), float(np.dot(self.w, L))
        s_wx_R, s_w_R = float(np.dot(self.wx, R)), float(np.dot(self.w, R))
        total = (
            float(np.dot(W, scipy.special.gammaln(pxs + q) - scipy.special.gammaln(pxs)))
            + self.wsum * (q * math.log(g) - scipy.special.gammaln(q))
            + p * self.s_wx_lmx
            - self.s_w_lm
            - p * s_wx_L
            - q * s_w_L
        )
        d_pxq = scipy.special.digamma(pxs + q)
        g_p = float(np.dot(W * xs, d_pxq - scipy.special.digamma(pxs))) + self.s_wx_lmx - s_wx_L
        g_q = float(np.dot(W, d_pxq)) - self.wsum * (scipy.special.digamma(q) - math.log(g)) - s_w_L
        g_g = self.wsum * q / g - p * s_wx_R - q * s_w_R
        grad = np.array([g_p * p, g_q * q, g_g * g])
        if not np.isfinite(total) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros(3)
        return -total / self.wsum, -grad / self.wsum


def fit_gamma_gamma(x, m, weights=None, *, min_customers: int = MIN_GAMMA_GAMMA_CUSTOMERS) -> GammaGammaParams:
    """Fit Gamma-Gamma by maximum likelihood on the customers with x > 0 and m > 0
    (Fader & Hardie 2013): maximises sum_i w_i log f(m_i | x_i; p, q, gamma) over the
    log-parameters (L-BFGS-B with the analytic gradient, Nelder-Mead as a fallback).
    Rows with x == 0 or m <= 0 are left out.

    ``x`` is the number of transactions whose mean is ``m`` (for the CLV model: the repeat
    transactions and their mean value). Raises :class:`FitError` when fewer than
    ``min_customers`` (weighted) rows remain, when the optimum is not found, or when
    q <= 1 (spend so dispersed that the mean order value is infinite)."""
    x, m = (a.ravel() for a in _check_monetary(x, m))
    w = _check_weights(weights, x.shape).ravel()
    if np.any(~np.isfinite(m[x > 0])):
        raise ValueError("m must be finite where x > 0")
    keep = (x > 0) & (m > 0) & (w > 0)
    x, m, w = x[keep], m[keep], w[keep]
    n = float(w.sum())
    if n < min_customers:
        raise FitError(
            f"Only {_count(n)} customers have repeat purchases with a positive value; at least "
            f"{min_customers} are needed to fit the order-value model."
        )
    objective = _GammaGammaObjective(x, m, w)
    # Start: p = 1, q = 3 and gamma so that the population mean p gamma / (q-1) is the mean m.
    mean_m = float(np.dot(w, m)) / n
    theta0 = np.log([1.0, 3.0, 2.0 * mean_m])
    res = _minimize(objective, theta0, ("p", "q", "gamma"), "order values")
    p, q, g = (float(v) for v in np.exp(res.x))
    if q <= 1:
        raise FitError(
            f"The order values are too dispersed (q = {q:.3g} <= 1): the model's mean order value would be infinite."
        )
    return GammaGammaParams(p=p, q=q, gamma=g, log_likelihood=-float(res.fun) * n, n_customers=int(round(n)))


def gamma_gamma_expected_order_value(params: GammaGammaParams, x, m) -> np.ndarray:
    """Expected average order value of a customer given x transactions of mean value m,
    E[M | p, q, gamma, x, m] (Fader & Hardie 2013, eq. 5):

        E = p (gamma + x m) / (p x + q - 1)
          = (q-1)/(p x + q - 1) * p gamma/(q-1) + p x/(p x + q - 1) * m

    a weighted mean of the population mean p gamma/(q-1) and the customer's own mean m.
    For x == 0 (or m not positive) it is the population mean. Needs q > 1."""
    x, m = _check_monetary(x, m)
    if params.q <= 1:
        raise ValueError("the expected order value needs q > 1")
    ok = (x > 0) & (m > 0)
    xs, ms = np.where(ok, x, 0.0), np.where(ok, m, 0.0)
    p, q, g = params.p, params.q, params.gamma
    return p * (g + xs * ms) / (p * xs + q - 1)


# --------------------------------------------------------------------------------- CLV


def customer_lifetime_value(
    bgnbd: BGNBDParams,
    gamma_gamma: GammaGammaParams,
    x,
    t_x,
    T,
    m,
    *,
    time_unit_days: float,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
) -> np.ndarray:
    """Discounted expected value of each customer's purchases over the next
    ``horizon_months`` months.

        CLV = E[M | x, m] * sum_{k=1..H} (E[Y(k w)] - E[Y((k-1) w)]) / (1 + d_m)^k

    where E[Y(t)] = E[Y(t) | x, t_x, T] is the BG/NBD conditional expectation
    (:func:`bgnbd_expected_purchases`), E[M | x, m] the Gamma-Gamma expected order value
    (:func:`gamma_gamma_expected_order_value`), w = 365.25/12 days expressed in the model's
    time unit (``time_unit_days`` is that unit's length in days: 1 for days, 7 for weeks),
    and d_m = (1 + annual_discount_rate)^(1/12) - 1 the equivalent monthly rate: the
    purchases expected in month k are discounted as if made at the end of that month.
    (This is the lifetimes library's customer_lifetime_value with a true month and a
    monthly rate derived from the annual one.) Customers without repeat purchases get the
    population mean order value p gamma / (q - 1); ``m`` is ignored for them."""
    if horizon_months < 1:
        raise ValueError("horizon_months must be >= 1")
    if time_unit_days <= 0:
        raise ValueError("time_unit_days must be > 0")
    if annual_discount_rate <= -1:
        raise ValueError("annual_discount_rate must be > -1")
    x, t_x, T = _check_summary(x, t_x, T)
    x, t_x, T, m = np.broadcast_arrays(x, t_x, T, _as_float(m))
    month = DAYS_PER_MONTH / time_unit_days
    d_m = (1.0 + annual_discount_rate) ** (1.0 / 12) - 1.0
    k = np.arange(1, horizon_months + 1, dtype=float)
    disc = (1.0 + d_m) ** -k
    # weights on the cumulative expectations: sum_k disc_k (E_k - E_{k-1})
    #   = sum_k E_k (disc_k - disc_{k+1}), with disc_{H+1} = 0
    coef = disc - np.append(disc[1:], 0.0)
    # the expectations if alive depend on (x, T) only: once per distinct pair and month
    (xu, Tu), inv = _unique_rows(x.ravel(), T.ravel())
    e = _expected_if_alive(bgnbd, (k * month)[None, :], xu[:, None], Tu[:, None])
    discounted_if_alive = (e @ coef)[inv]
    purchases = bgnbd_probability_alive(bgnbd, x, t_x, T).ravel() * discounted_if_alive
    aov = gamma_gamma_expected_order_value(gamma_gamma, x, m).ravel()
    return (purchases * aov).reshape(x.shape)
