"""The model stages: `train_<model>` and `score_<model>` for each model of `audiencelake.models.catalog`.

Training registers a version in MLflow (the champion only when it is at least as good) and is skipped when the
champion was trained on the same data, settings and date; scoring writes the champion's scores and keeps them when
the champion and its inputs are as they were written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from audiencelake.core.resources import resource_dir
from audiencelake.core.stage_inputs import kept_or_built, library_version
from audiencelake.models.catalog import MODELS, Model
from audiencelake.models.config import load_models_config
from audiencelake.models.registry import champion_run, champion_tag, tag_version
from audiencelake.stages.declaration import MODEL, SILVER, Stage, StageContext, stage

log = logging.getLogger("audiencelake.models")


def _section(ctx: StageContext, model: str):
    settings = ctx.lake.settings
    config = load_models_config(
        settings.models.config, settings.profile.tags, settings.overrides("models"), settings.overrides("tags")
    )
    return getattr(config, model)


def _state(ctx: StageContext, model: str, extra: tuple[str, ...] = ()) -> dict:
    """A model's settings, the tag catalogue, the run date and the Delta versions of the silver tables, the identity
    map (profiles are a function of these) and of the `extra` tables ("layer.name")."""
    lake, settings = ctx.lake, ctx.lake.settings
    tables = [*SILVER, "ops.identity_map", *extra]
    catalogue = Path(settings.profile.tags or resource_dir("conf") / "tags.yaml")
    return {
        "model": _section(ctx, model).model_dump(),
        "tags": hashlib.sha256(catalogue.read_bytes()).hexdigest(),
        "tag_overrides": [list(o[:2]) for o in settings.overrides("tags")],
        "as_of": ctx.run.as_of.isoformat(),
        "tables": {t: lake.version(lake.ref(*t.split("."))) for t in tables},
    }


def fingerprint(ctx: StageContext, model: str) -> str:
    """What a model's training depends on (`_state`)."""
    return hashlib.sha256(json.dumps(_state(ctx, model), sort_keys=True, default=str).encode()).hexdigest()


def score_inputs(ctx: StageContext, model: Model) -> dict:
    """What a model's scores depend on: the training's state, the profile, the score tables it reads, the champion
    (registered name, version and the MLflow run that logged it) and the library."""
    extra = ("gold.user_profile", *model.scores_with)
    return {
        **_state(ctx, model.name, extra),
        "champion": champion_run(ctx.lake, model.name),
        "library": library_version(),
    }


def _stages(model: Model) -> tuple[Stage, Stage]:
    def train(ctx: StageContext) -> dict:
        key = fingerprint(ctx, model.name)
        champion = champion_tag(ctx.lake, model.name, "fingerprint")
        if champion is not None and champion[1] == key:  # re-running the same training changes nothing
            log.info(
                "%s: champion v%d was trained on the same data, settings and date; not retraining",
                model.name, champion[0],
            )  # fmt: skip
            return {"version": champion[0], "promoted": 0, "unchanged": 1}
        promotion = model.train(ctx.lake, ctx.run, _section(ctx, model.name))
        tag_version(ctx.lake, model.name, promotion.version, "fingerprint", key)
        return {
            "version": promotion.version,
            "promoted": int(promotion.promoted),
            promotion.metric: round(promotion.value, 4),
        }

    def score(ctx: StageContext) -> dict:
        lake, run = ctx.lake, ctx.run
        name, key, output = f"score_{model.name}", run.as_of.isoformat(), lake.ref(*model.table.split("."))
        inputs = score_inputs(ctx, model)

        def build() -> dict:
            return {"rows": model.score(lake, run, _section(ctx, model.name))}

        counts = kept_or_built(lake, name, key, inputs, output, build, run)
        if "kept" in counts:
            log.info(
                "%s: champion %s and its inputs are as the scores were written; kept", model.name, inputs["champion"]
            )
        return counts

    train.__doc__ = f"Train the {model.name} model ({model.what}), log it to MLflow and register it."
    score.__doc__ = f"Score with the {model.name} model's registry champion into {model.table}."
    resource = f"{MODEL}{model.name}"
    return (
        stage(
            f"train_{model.name}",
            reads=(*model.needs, *model.trains_on),
            uses=(*SILVER, "ops.identity_map"),
            writes=(resource,),
        )(train),
        stage(
            f"score_{model.name}",
            reads=(resource, *model.scores_from),
            uses=("gold.user_profile", *model.scores_with, *SILVER, "ops.identity_map"),
            writes=(model.table,),
        )(score),
    )


STAGES: tuple[Stage, ...] = tuple(s for m in MODELS.values() for s in _stages(m))
