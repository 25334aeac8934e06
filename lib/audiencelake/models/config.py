"""`conf/models.yaml`: typed model settings, validated on load against the tag catalogue (feature expressions may
only read tags). Every error names the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from audiencelake.core.declarative import Override, Strict, read_yaml_mapping, validate, with_overrides
from audiencelake.core.errors import ConfigError
from audiencelake.core.expressions import ExpressionError, parse
from audiencelake.core.resources import resource_dir
from audiencelake.tags.loader import load_catalogue


class Feature(Strict):
    """One model input: a SQL expression over profile tags, with words describing high and low values."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    expr: str
    high: str | None = None
    low: str | None = None


class Segmentation(Strict):
    algorithm: Literal["kmeans", "bisecting_kmeans"] = "kmeans"
    k_min: int = Field(default=3, ge=2)
    k_max: int = Field(default=8, ge=2)
    max_iter: int = Field(default=50, ge=1)
    seed: int = 7
    among: str = "TRUE"
    features: list[Feature] = Field(min_length=1)
    parallelism: int = Field(default=2, ge=1)  # values of k fitted at once

    @model_validator(mode="after")
    def _range(self) -> Segmentation:
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) is below k_min ({self.k_min})")
        return self


class ChurnSmallData(Strict):
    below: int = Field(ge=1)  # training users
    grids: dict[Literal["logistic_regression", "gbt"], dict[str, list[float]]]


class Churn(Strict):
    label_days: int = Field(default=30, ge=1)
    among: str = "TRUE"
    folds: int = Field(default=3, ge=2)
    test_share: float = Field(default=0.25, gt=0, lt=1)
    seed: int = 7
    candidates: list[Literal["logistic_regression", "gbt"]] = Field(min_length=1)
    grids: dict[Literal["logistic_regression", "gbt"], dict[str, list[float]]] = Field(default_factory=dict)
    risk_bands: dict[Literal["high", "medium"], float]
    features: list[Feature] = Field(min_length=1)
    parallelism: int = Field(default=2, ge=1)  # models fitted at once
    small_data: ChurnSmallData | None = None

    def search(self, rows: int) -> tuple[str, dict[str, dict[str, list[float]]]]:
        """(tier, grids) of the search for `rows` training users: `small_data.grids` below `small_data.below`, else
        `grids`."""
        if self.small_data is not None and rows < self.small_data.below:
            return "small_data", self.small_data.grids
        return "full", self.grids


class Clv(Strict):
    holdout_days: int = Field(default=30, ge=1)
    horizon_days: int = Field(default=90, ge=1)
    value_round: float = Field(default=0.01, gt=0)


class Grid(Strict):
    rank: list[int] = Field(min_length=1)
    reg_param: list[float] = Field(min_length=1)
    alpha: list[float] = Field(min_length=1)


class RecommendationsSmallData(Strict):
    below: int = Field(ge=1)  # training interactions (user, item pairs)
    grid: Grid


class Recommendations(Strict):
    history_days: int = Field(default=120, ge=1)
    test_days: int = Field(default=14, ge=1)
    validation_days: int = Field(default=14, ge=1)
    k: int = Field(default=10, ge=1)
    exclude_purchased: bool = True
    weights: dict[Literal["product_view", "add_to_cart", "purchase"], Annotated[float, Field(gt=0)]]
    grid: Grid
    max_iter: int = Field(default=10, ge=1)
    seed: int = 7
    parallelism: int = Field(default=2, ge=1)  # grid points fitted at once
    small_data: RecommendationsSmallData | None = None

    @model_validator(mode="after")
    def _windows_fit(self) -> Recommendations:
        if self.history_days <= self.test_days + self.validation_days:
            raise ValueError(
                f"history_days ({self.history_days}) must exceed test_days + validation_days "
                f"({self.test_days} + {self.validation_days}): the grid is fitted on the days before both windows"
            )
        return self

    def search(self, rows: int) -> tuple[str, Grid]:
        """(tier, grid) of the search for `rows` training interactions: `small_data.grid` below `small_data.below`,
        else `grid`."""
        if self.small_data is not None and rows < self.small_data.below:
            return "small_data", self.small_data.grid
        return "full", self.grid


class Propensity(Strict):
    window_days: int = Field(default=7, ge=1)
    snapshot_every_days: int = Field(default=30, ge=1)
    snapshots: int = Field(default=2, ge=1)
    features_max_age_days: int = Field(default=45, ge=1)
    test_share: float = Field(default=0.25, gt=0, lt=1)
    min_positives: int = Field(default=30, ge=1)
    seed: int = 7
    features: list[Feature] = Field(min_length=1)
    parallelism: int = Field(default=2, ge=1)  # snapshot profiles computed at once


class ModelsConfig(Strict):
    file: str = ""
    segmentation: Segmentation
    churn: Churn
    clv: Clv
    recommendations: Recommendations
    propensity: Propensity


def _check_expressions(config: ModelsConfig, tags: set[str]) -> None:
    checks: list[tuple[str, str]] = [("segmentation.among", config.segmentation.among)]
    checks.append(("churn.among", config.churn.among))
    for model in ("segmentation", "churn", "propensity"):
        features = getattr(config, model).features
        names = [f.name for f in features]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ConfigError(config.file, f"{model}.features", f"feature {dupes[0]!r} is defined twice")
        checks += [(f"{model}.features.{f.name}.expr", f.expr) for f in features]
    for key, text in checks:
        try:
            parsed = parse(text)
        except ExpressionError as exc:
            raise ConfigError(config.file, key, str(exc)) from None
        if unknown := sorted(parsed.names - tags):
            raise ConfigError(config.file, key, f"unknown tag {unknown[0]!r} in {text!r} (see conf/tags.yaml)")
        if parsed.params:
            raise ConfigError(config.file, key, f"parameters are not allowed in model features: {text!r}")


def load_models_config(
    path: Path | str | None = None,
    tags_file: Path | str | None = None,
    overrides: tuple[Override, ...] = (),
    tag_overrides: tuple[Override, ...] = (),
) -> ModelsConfig:
    """Load and validate the model settings (default `conf/models.yaml`, with `overrides` of its keys) against the
    tag catalogue (`tags_file` with `tag_overrides`).

    Raises:
        ConfigError: the file is missing or malformed, a key is unknown or mistyped, or a feature expression does
            not parse or reads something that is not a tag.
    """
    path = Path(path) if path else resource_dir("conf") / "models.yaml"
    raw = with_overrides(read_yaml_mapping(path), overrides, str(path))
    config = validate(ModelsConfig, {**raw, "file": str(path)}, str(path))
    _check_expressions(config, {t.name for t in load_catalogue(tags_file, tag_overrides).tags})
    return config
