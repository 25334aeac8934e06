"""BG/NBD and Gamma-Gamma: parameters recovered from data simulated here from the models' own stories (not with
the code under test), and conditional expectations checked against Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest

from audiencelake.models import btyd


def simulate_bgnbd(rng, n, r, alpha, a, b, T):
    """Purchases at Poisson rate lambda ~ Gamma(r, 1/alpha); after each purchase the customer drops out with
    probability p ~ Beta(a, b). Returns (x repeat purchases, tx time of the last, T)."""
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    x, tx = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i], tx[i] = x[i] + 1, t
            if rng.random() < p[i]:
                break
    return x, tx, T


def compress(*cols):
    rows, counts = np.unique(np.column_stack(cols), axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], counts


def test_bgnbd_recovers_its_parameters_from_a_compressed_table():
    rng = np.random.default_rng(3)
    T = rng.integers(30, 200, 6000).astype(float)
    x, tx, T = simulate_bgnbd(rng, 6000, 0.6, 8.0, 0.9, 3.0, T)
    tx = np.round(tx)  # whole days, as the Spark summary gives them
    (cx, ctx, cT), counts = compress(x, tx, T)
    assert len(counts) < len(x)
    fitted, ll = btyd.fit_bgnbd(cx, ctx, cT, counts)
    assert fitted.r == pytest.approx(0.6, rel=0.15)
    assert fitted.alpha == pytest.approx(8.0, rel=0.2)
    assert fitted.a == pytest.approx(0.9, rel=0.35)
    assert fitted.b == pytest.approx(3.0, rel=0.35)
    # the weighted likelihood equals the likelihood of the uncompressed table
    assert ll == pytest.approx(float(np.sum(btyd.bgnbd_log_likelihood(fitted, x, tx, T))), rel=1e-9)


@pytest.mark.parametrize("params", [btyd.BgNbd(0.5, 10.0, 0.6, 2.5), btyd.BgNbd(2.0, 40.0, 1.5, 6.0)])
def test_conditional_expected_purchases_match_monte_carlo(params):
    """Draw (lambda, p) from the posterior by rejection: simulate many customers over T, keep those whose history
    matches (x, tx) closely, and count their purchases in the next t days."""
    rng = np.random.default_rng(11)
    n, T, t = 400_000, 60.0, 30.0
    lam, p = rng.gamma(params.r, 1 / params.alpha, n), rng.beta(params.a, params.b, n)
    # simulate in daily steps (Bernoulli ~ Poisson for small rates) over T + t days
    alive = np.ones(n, dtype=bool)
    x, last, future = np.zeros(n), np.zeros(n), np.zeros(n)
    for day in range(int(T + t)):
        buys = alive & (rng.random(n) < lam)
        if day < T:
            x += buys
            last = np.where(buys, day + 1, last)
        else:
            future += buys
        alive &= ~(buys & (rng.random(n) < p))
    for xi, txi in ((0, 0), (2, 50), (2, 15)):
        match = (x == xi) & (last == txi) if xi else (x == 0)
        assert match.sum() > 200
        expected = btyd.expected_purchases(params, t, np.array([xi]), np.array([txi]), np.array([T]))[0]
        assert future[match].mean() == pytest.approx(expected, rel=0.12, abs=0.02)


def test_gamma_gamma_recovers_its_parameters():
    rng = np.random.default_rng(5)
    p, q, v, n = 3.0, 4.0, 20.0, 8000
    nu = rng.gamma(q, 1 / v, n)
    orders = rng.integers(1, 8, n).astype(float)
    means = np.array([rng.gamma(p, 1 / nu[i], int(k)).mean() for i, k in enumerate(orders)])
    fitted, _ = btyd.fit_gamma_gamma(orders, means, np.ones(n))
    assert fitted.p == pytest.approx(p, rel=0.15)
    assert fitted.q == pytest.approx(q, rel=0.2)
    assert fitted.v == pytest.approx(v, rel=0.25)
    # the conditional mean shrinks a customer's average towards the population mean p v / (q - 1)
    population = p * v / (q - 1)
    shrunk = btyd.expected_order_value(fitted, np.array([1.0]), np.array([3 * population]))[0]
    assert population < shrunk < 3 * population
