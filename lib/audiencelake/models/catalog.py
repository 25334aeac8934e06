"""The models, listed once: what each trains, the gold table its scores go to, and its `train` and `score`.

Each model module has `train(lake, run, config) -> Promotion` and `score(lake, run, config) -> rows`; its settings
are the section of conf/models.yaml named like the model. The model stages (`audiencelake.stages.models`), the
report and the benchmarks read this list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audiencelake.models import churn, clv, propensity, recommendations, segmentation


@dataclass(frozen=True)
class Model:
    name: str
    what: str  # how it is trained, in a few words
    table: str  # where scoring writes: "gold.<name>"
    train: Callable
    score: Callable
    needs: tuple[str, ...] = ()  # silver tables training cannot do without ("a|b": either; its profiles use any)
    trains_on: tuple[str, ...] = ()  # other tables training reads
    scores_from: tuple[str, ...] = ("gold.user_profile",)  # tables scoring cannot do without
    scores_with: tuple[str, ...] = ()  # other models' score tables scoring reads when they exist


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("segmentation", "KMeans on profile features, k by silhouette", "gold.segments",
              segmentation.train, segmentation.score, trains_on=("gold.user_profile",)),
        Model("churn", "logistic regression vs gradient-boosted trees by cross-validation", "gold.churn_scores",
              churn.train, churn.score, needs=("silver.orders",)),
        Model("clv", "BG/NBD and Gamma-Gamma by maximum likelihood", "gold.clv", clv.train, clv.score,
              needs=("silver.orders",), scores_from=("silver.orders",)),
        Model("recommendations", "implicit ALS, grid on held-out days", "gold.recommendations",
              recommendations.train, recommendations.score, needs=("silver.orders|silver.clickstream_events",),
              scores_with=("gold.segments",)),
        Model("propensity", "response to campaign touches, logistic regression", "gold.propensity",
              propensity.train, propensity.score, needs=("silver.campaign_touches", "silver.orders")),
    )
}  # fmt: skip
