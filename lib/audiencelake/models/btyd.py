"""BG/NBD (purchase frequency and dropout) and Gamma-Gamma (spend per transaction), fitted by maximum likelihood.

The likelihoods take per-customer summaries with a weight (how many customers share that summary), so the fit
works on a compressed table whose size does not grow with the number of orders. Time is in days.

References: Fader, Hardie and Lee, "Counting your customers the easy way: an alternative to the Pareto/NBD model"
(Marketing Science, 2005), "RFM and CLV: using iso-value curves for customer base analysis" (JMR, 2005), and Fader
and Hardie, "The Gamma-Gamma model of monetary value" (2013): fitted on the mean value of each customer's repeat
transactions. `tests/test_clv_published.py` checks both fits against the papers' estimates on their CDNOW data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float


def bgnbd_log_likelihood(m: BgNbd, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Each customer's log-likelihood: `x` repeat purchases, the last `tx` days after the first, observed `T` days."""
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + tx), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def gamma_gamma_log_likelihood(m: GammaGamma, n: np.ndarray, mean_value: np.ndarray) -> np.ndarray:
    """Each customer's log-likelihood of the mean value `mean_value` of their `n` orders."""
    p, q, v = m.p, m.q, m.v
    return (
        gammaln(p * n + q)
        - gammaln(p * n)
        - gammaln(q)
        + q * np.log(v)
        + (p * n - 1) * np.log(mean_value)
        + p * n * np.log(n)
        - (p * n + q) * np.log(v + n * mean_value)
    )


# Parameters are optimised on the log scale within these bounds: a likelihood that keeps rising along a ridge (for
# example BG/NBD's b when almost nobody drops out) stops at a value where the predictions have converged, instead of
# running off to magnitudes where the hypergeometric function loses all precision.
LOG_BOUNDS = (-9.0, 8.0)


def _fit(neg_ll, dims: int, start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    start = np.zeros(dims) if start is None else start
    bounds = [LOG_BOUNDS] * dims
    options = {"maxiter": 20_000, "xatol": 1e-7, "fatol": 1e-9}
    best = minimize(neg_ll, start, method="Nelder-Mead", bounds=bounds, options=options)
    polished = minimize(neg_ll, best.x, method="L-BFGS-B", bounds=bounds)
    result = polished if polished.fun <= best.fun else best
    if not np.isfinite(result.fun):
        raise ValueError("the likelihood is not finite at the optimum; too few customers or degenerate data")
    return np.exp(result.x), -float(result.fun)


def fit_bgnbd(x: np.ndarray, tx: np.ndarray, T: np.ndarray, weight: np.ndarray) -> tuple[BgNbd, float]:
    """Maximum-likelihood BG/NBD parameters and the total log-likelihood (parameters optimised on the log scale)."""
    x, tx, T, weight = (np.asarray(v, dtype=float) for v in (x, tx, T, weight))

    def neg_ll(theta: np.ndarray) -> float:
        value = -float(np.sum(weight * bgnbd_log_likelihood(BgNbd(*np.exp(theta)), x, tx, T)))
        return value if np.isfinite(value) else 1e300

    params, ll = _fit(neg_ll, 4)
    return BgNbd(*params), ll


def fit_gamma_gamma(n: np.ndarray, mean_value: np.ndarray, weight: np.ndarray) -> tuple[GammaGamma, float]:
    """Maximum-likelihood Gamma-Gamma parameters and the total log-likelihood."""
    n, mean_value, weight = (np.asarray(v, dtype=float) for v in (n, mean_value, weight))

    def neg_ll(theta: np.ndarray) -> float:
        value = -float(np.sum(weight * gamma_gamma_log_likelihood(GammaGamma(*np.exp(theta)), n, mean_value)))
        return value if np.isfinite(value) else 1e300

    params, ll = _fit(neg_ll, 3, np.array([0.0, 1.0, 0.0]))
    return GammaGamma(*params), ll


def probability_alive(m: BgNbd, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    ratio = np.where(x > 0, m.a / np.maximum(m.b + x - 1, 1e-12) * ((m.alpha + T) / (m.alpha + tx)) ** (m.r + x), 0.0)
    return 1.0 / (1.0 + ratio)


def expected_purchases(m: BgNbd, t: float, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Expected purchases in the next `t` days of a customer with summary (x, tx, T)."""
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    if abs(a - 1) < 1e-9:  # the closed form divides by a - 1; it is continuous there
        a += 1e-6
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    ratio = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
    return head * tail / (1 + ratio)


def expected_order_value(m: GammaGamma, n: np.ndarray, mean_value: np.ndarray) -> np.ndarray:
    """Expected value of a future order given `n` orders averaging `mean_value` (needs q > 1)."""
    if m.q <= 1:
        raise ValueError(f"Gamma-Gamma q = {m.q:.4f} <= 1: the expected order value is undefined")
    return m.p * (m.v + n * mean_value) / (m.p * n + m.q - 1)


def params(*models) -> dict[str, float]:
    return {k: float(v) for m in models for k, v in asdict(m).items()}
