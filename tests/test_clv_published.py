"""CLV as published: the project's summary and fit, run on the CDNOW sample the papers used, give the estimates the
papers print. BG/NBD: Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way", Marketing Science 24(2),
section 4 (r = 0.243, alpha = 4.414 in weeks, a = 0.793, b = 2.426). Gamma-Gamma: Fader and Hardie (2013), "The
Gamma-Gamma Model of Monetary Value" (p = 6.25, q = 3.74, gamma = 15.44, fitted on the mean value of the repeat
transactions of the 946 customers who made one). Both use the 39-week calibration period 1997-01-01..1997-09-30,
with a customer's purchases on one day counted as one transaction."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from audiencelake.models.clv import customer_summary, fit
from audiencelake.models.config import Clv

DATA = Path(__file__).parent / "data" / "cdnow_sample.txt"
CALIBRATION_END = date(1997, 9, 30)
BGNBD_PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA_PAPER = {"p": 6.25, "q": 3.74, "v": 15.44}  # the paper's gamma is v here
SAMPLE_CUSTOMERS, REPEAT_CUSTOMERS = 2357, 946  # as the papers count them


def significant(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"


@pytest.fixture(scope="module")
def cdnow_fit(spark):
    raw = pd.read_csv(DATA, sep=r"\s+", header=None, names=["master", "user_id", "day", "cds", "value"], dtype=str)
    orders = pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "order_id": raw.index.astype(str),
            "order_date": pd.to_datetime(raw["day"], format="%Y%m%d").dt.date,
            "value": raw["value"].astype(float),
        }
    )
    assert len(orders) == 6919 and (orders["value"] <= 0).sum() == 8  # the spendless lines are kept
    return fit(customer_summary(spark.createDataFrame(orders), CALIBRATION_END), Clv())


def test_bgnbd_matches_the_published_estimates_on_every_customer(cdnow_fit):
    bgnbd, _, stats = cdnow_fit
    assert stats["customers"] == SAMPLE_CUSTOMERS  # whatever they spent
    fitted = {"r": bgnbd.r, "alpha": bgnbd.alpha / 7, "a": bgnbd.a, "b": bgnbd.b}  # days -> the paper's weeks
    assert {k: significant(v) for k, v in fitted.items()} == {k: significant(v) for k, v in BGNBD_PAPER.items()}


def test_gamma_gamma_matches_the_published_estimates_on_repeat_transactions(cdnow_fit):
    _, gg, stats = cdnow_fit
    assert stats["gamma_gamma_customers"] == REPEAT_CUSTOMERS
    fitted = {"p": gg.p, "q": gg.q, "v": gg.v}
    assert {k: significant(v) for k, v in fitted.items()} == {k: significant(v) for k, v in GAMMA_GAMMA_PAPER.items()}
