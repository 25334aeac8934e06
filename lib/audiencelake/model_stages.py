"""The model stages: `train_<model>` and `score_<model>` for each model of conf/models.yaml, after the profile.

Each model module has `train(lake, run, config) -> Promotion` and `score(lake, run, config) -> rows`; its settings
are the section of conf/models.yaml named like the model.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from pathlib import Path

from audiencelake import pipeline_stages  # noqa: F401  (registers the profile stage these depend on)
from audiencelake.core.contracts import contracts
from audiencelake.core.resources import resource_dir
from audiencelake.core.stage_inputs import library_version, record, unchanged
from audiencelake.models.config import load_models_config
from audiencelake.models.registry import champion_run, champion_tag, tag_version
from audiencelake.stages import StageContext, stage

log = logging.getLogger("audiencelake.models")

# model -> (what training does, what scoring writes, stages scoring needs besides its own training)
MODELS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "segmentation": ("KMeans on profile features, k by silhouette", "gold.segments", ()),
    "churn": ("logistic regression vs gradient-boosted trees by cross-validation", "gold.churn_scores", ()),
    "clv": ("BG/NBD and Gamma-Gamma by maximum likelihood", "gold.clv", ()),
    "recommendations": ("implicit ALS, grid on held-out days", "gold.recommendations", ("score_segmentation",)),
    "propensity": ("response to campaign touches, logistic regression", "gold.propensity", ()),
}


def _section(ctx: StageContext, model: str):
    settings = ctx.lake.settings
    return getattr(load_models_config(settings.models.config, settings.profile.tags), model)


def _state(ctx: StageContext, model: str, extra: tuple[str, ...] = ()) -> dict:
    """A model's settings, the tag catalogue, the run date and the Delta versions of the silver tables, the identity
    map (profiles are a function of these) and of the `extra` tables ("layer.name")."""
    lake, settings = ctx.lake, ctx.lake.settings
    tables = [f"silver.{c.table}" for c in contracts().values() if c.layer == "silver"] + ["ops.identity_map", *extra]
    catalogue = Path(settings.profile.tags or resource_dir("conf") / "tags.yaml")
    return {
        "model": _section(ctx, model).model_dump(),
        "tags": hashlib.sha256(catalogue.read_bytes()).hexdigest(),
        "as_of": ctx.run.as_of.isoformat(),
        "tables": {t: lake.version(lake.ref(*t.split("."))) for t in tables},
    }


def fingerprint(ctx: StageContext, model: str) -> str:
    """What a model's training depends on (`_state`)."""
    return hashlib.sha256(json.dumps(_state(ctx, model), sort_keys=True, default=str).encode()).hexdigest()


def score_inputs(ctx: StageContext, model: str, needs: tuple[str, ...]) -> dict:
    """What a model's scores depend on: the training's state, the profile, the outputs of the score stages it
    needs (`needs`), the champion (registered name, version and the MLflow run that logged it) and the library."""
    extra = ("gold.user_profile", *(MODELS[n.removeprefix("score_")][1] for n in needs))
    return {**_state(ctx, model, extra), "champion": champion_run(ctx.lake, model), "library": library_version()}


def _register(model: str, what: str, table: str, needs: tuple[str, ...]) -> None:
    module = f"audiencelake.models.{model}"

    def train(ctx: StageContext) -> dict:
        key = fingerprint(ctx, model)
        champion = champion_tag(ctx.lake, model, "fingerprint")
        if champion is not None and champion[1] == key:  # re-running the same training changes nothing
            log.info(
                "%s: champion v%d was trained on the same data, settings and date; not retraining", model, champion[0]
            )
            return {"version": champion[0], "promoted": 0, "unchanged": 1}
        promotion = importlib.import_module(module).train(ctx.lake, ctx.run, _section(ctx, model))
        tag_version(ctx.lake, model, promotion.version, "fingerprint", key)
        return {
            "version": promotion.version,
            "promoted": int(promotion.promoted),
            promotion.metric: round(promotion.value, 4),
        }

    def score(ctx: StageContext) -> dict:
        lake, run = ctx.lake, ctx.run
        name, key, output = f"score_{model}", run.as_of.isoformat(), lake.ref(*table.split("."))
        inputs = score_inputs(ctx, model, needs)  # read before scoring: what the scores are computed from
        if (counts := unchanged(lake, name, key, {**inputs, "output": lake.version(output)})) is not None:
            log.info("%s: champion %s and its inputs are as the scores were written; kept", model, inputs["champion"])
            return {**counts, "kept": 1}
        counts = {"rows": importlib.import_module(module).score(lake, run, _section(ctx, model))}
        record(lake, name, key, {**inputs, "output": lake.version(output)}, counts, run)
        return counts

    train.__doc__ = f"Train the {model} model ({what}), log it to MLflow and register it."
    score.__doc__ = f"Score with the {model} model's registry champion into {table}."
    stage(f"train_{model}", depends_on=("profile",))(train)
    stage(f"score_{model}", depends_on=(f"train_{model}", *needs))(score)


for _model, (_what, _table, _needs) in MODELS.items():
    _register(_model, _what, _table, _needs)
