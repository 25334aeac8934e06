"""Typed settings from `conf/<env>.yaml` and `conf/sources.yaml`, with overrides from flags and environment variables.

Override precedence (last wins): the YAML file, environment variables `AUDIENCELAKE__<SECTION>__<KEY>=value`
(double underscores separate levels), then `--set section.key=value` flags. Every error names the file, the key
and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError

from audiencelake.core.contracts import Contract, Threshold, contract
from audiencelake.core.declarative import Override, Strict, config_error, read_yaml_mapping, set_path
from audiencelake.core.errors import ConfigError
from audiencelake.core.resources import project_root, resource_dir
from audiencelake.core.source_settings import QualitySettings, SourceSettings, StringMap

ENV_PREFIX = "AUDIENCELAKE__"
ENVIRONMENTS = ("local", "cluster", "databricks")
DELTA_RETENTION_HOURS = 168  # Delta's own default (delta.deletedFileRetentionDuration = 7 days)


class SparkSettings(Strict):
    """How the SparkSession is built."""

    master: str | None = None
    app_name: str = "audiencelake"
    delta_jars: Literal["local", "provided"] = "local"
    jars_dir: str = "jars"
    conf: StringMap = Field(default_factory=dict)


class LakeSettings(Strict):
    """Where the lake lives. Local: path-based Delta tables under `root`; with `catalog`: catalog tables."""

    root: str
    landing: str
    catalog: str | None = None
    schemas: dict[str, str] = Field(default_factory=dict, description="layer -> schema name in the catalog")
    # Delta table properties of every table the project creates (the one place they are set): the session makes
    # them Delta's defaults for new tables, and the optimize stage sets them on tables created before.
    table_properties: StringMap = Field(
        default_factory=lambda: {
            "delta.autoOptimize.optimizeWrite": "true",  # one file per partition and write, not one per task
            "delta.autoOptimize.autoCompact": "true",  # small files of a partition compacted after a write
        }
    )
    optimize_days: int = Field(default=3, ge=1, description="days of event partitions the optimize stage rewrites")
    vacuum_retention_hours: int = Field(
        default=DELTA_RETENTION_HOURS,
        ge=0,
        description="VACUUM retention after an erasure (`forget`): older unreferenced files go",
    )


class MlflowSettings(Strict):
    tracking_uri: str
    registry_uri: str | None = None


class PiiSettings(Strict):
    """PII hashing. The salt comes from the environment variable `salt_env` when set, else from `salt`."""

    salt: str | None = None
    salt_env: str = "AUDIENCELAKE_PII_SALT"


class IdentitySettings(Strict):
    config: str | None = Field(default=None, description="identity resolution file; default conf/identity.yaml")
    max_iterations: int = Field(default=30, ge=1, description="rounds of connected components (bounds the diameter)")
    rebuild: bool = Field(default=False, description="recompute the whole graph from all of silver (ids are kept)")
    retrain: bool = Field(default=False, description="train a new CRM matching model before scoring")


class ProfileSettings(Strict):
    tags: str | None = Field(default=None, description="tag catalogue file; default conf/tags.yaml")


class ModelSettings(Strict):
    config: str | None = Field(default=None, description="model settings file; default conf/models.yaml")


class ActivationSettings(Strict):
    audiences: str | None = Field(default=None, description="audience definitions file; default conf/audiences.yaml")
    exports: str | None = Field(default=None, description="root of the export folders; default <lake.root>/exports")
    rows_per_file: int = Field(default=1_000_000, ge=1, description="largest export data file, in rows")


class StreamSettings(Strict):
    """Structured Streaming ingest (`audiencelake stream`): JSON sources read as their files land."""

    sources: list[str] = Field(default_factory=lambda: ["clickstream", "campaign_touches"])
    checkpoint: str | None = Field(default=None, description="checkpoint folder; default <lake.root>/_checkpoints")
    trigger: Literal["available_now", "processing_time"] = "available_now"
    interval: str = Field(default="1 minute", description="processing_time trigger interval")
    max_files_per_trigger: int = Field(default=50, ge=1)


class PipelineSettings(Strict):
    """How `audiencelake run` and `demo` walk the stages."""

    parallel_stages: int = Field(
        default=1,
        ge=1,
        description="stages run at once (driver threads) once the stages they depend on are done; 1: one at a time",
    )


class Settings(Strict):
    env: str
    lake: LakeSettings
    spark: SparkSettings = Field(default_factory=SparkSettings)
    mlflow: MlflowSettings
    pii: PiiSettings = Field(default_factory=PiiSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    activation: ActivationSettings = Field(default_factory=ActivationSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    sources_file: str | None = Field(default=None, description="the sources' file; default conf/sources.yaml")
    # overrides of the domain files' keys (DOMAIN_FILES), applied when each file is loaded
    file_overrides: dict[str, tuple[tuple[str, str, str], ...]] = Field(default_factory=dict)
    # source names end up in table names and predicates: letters, digits and underscores only
    sources: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")], SourceSettings] = Field(default_factory=dict)

    def resolve(self, path: str) -> str:
        """Resolve a configured path: URIs and absolute paths stay, relative ones join the project root."""
        if "://" in path or path.startswith("/") or path.startswith("dbfs:"):
            return path
        return str(project_root() / path)

    @property
    def lake_root(self) -> str:
        return self.resolve(self.lake.root)

    @property
    def landing_root(self) -> str:
        return self.resolve(self.lake.landing)

    @property
    def exports_root(self) -> str:
        return self.resolve(self.activation.exports) if self.activation.exports else f"{self.lake_root}/exports"

    @property
    def checkpoint_root(self) -> str:
        return self.resolve(self.stream.checkpoint) if self.stream.checkpoint else f"{self.lake_root}/_checkpoints"

    def source_path(self, source: str) -> str:
        """The glob of a source's landing files, with `{landing}` expanded (a relative path is the project's)."""
        return self.resolve(self.sources[source].path.replace("{landing}", self.landing_root))

    def thresholds(self, table: str, source: str | None = None) -> dict[str, Threshold]:
        """The contract parameters of `table` these settings set: `quality.params.<table>`, over them the `params`
        of `source` (its rows), or with no source named those of the table's only source (the others keep their
        contract defaults; a table fed by several sources is checked whole by the environment's values)."""
        values = dict(self.quality.params.get(table, {}))
        feeding = [name for name, src in self.sources.items() if src.table == table]
        if source is None and len(feeding) == 1:
            source = feeding[0]
        if source is not None:
            values.update(self.sources[source].params)
        return values

    def contract(self, table: str, source: str | None = None) -> Contract:
        """The contract of `table` with the business thresholds in force for `source`'s rows (`thresholds`)."""
        return contract(table).with_params(self.thresholds(table, source))

    def overrides(self, domain: str) -> tuple[Override, ...]:
        """The --set and environment overrides of the keys of a domain file (`models`, `tags`, ...)."""
        return self.file_overrides.get(domain, ())

    def pii_salt(self) -> str:
        """The salt for PII hashing.

        Raises:
            ConfigError: neither the environment variable nor `pii.salt` gives one.
        """
        salt = os.environ.get(self.pii.salt_env) or self.pii.salt
        if not salt:
            raise ConfigError(f"conf/{self.env}.yaml", "pii.salt", f"no salt: set ${self.pii.salt_env} or pii.salt")
        return salt


# Sections whose keys themselves contain dots (Spark settings, reader options): the rest of the path is one key.
_FREE_FORM = {
    ("spark", "conf"): 2,
    ("lake", "table_properties"): 2,
    ("sources", "options"): 3,
    ("sources", "mapping"): 3,
}


def _split_dotted(dotted: str) -> list[str]:
    keys = dotted.split(".")
    for (section, field), depth in _FREE_FORM.items():
        if len(keys) > depth and keys[0] == section and keys[depth - 1] == field:
            return keys[:depth] + [".".join(keys[depth:])]
    return keys


# The domain files whose keys --set and $AUDIENCELAKE__... reach too, as `<file stem>.<key within the file>`
# (`models.recommendations.history_days=240`). A key the environment's section of the same name has
# (`models.config`, `identity.rebuild`) stays the environment's.
DOMAIN_FILES = ("models", "tags", "audiences", "identity")


def _domain(dotted: str) -> str | None:
    """The domain file an override's key lives in, or None for the environment's settings."""
    keys = dotted.split(".")
    if len(keys) < 2 or keys[0] not in DOMAIN_FILES:
        return None
    section = Settings.model_fields.get(keys[0])
    if section is not None and keys[1] in section.annotation.model_fields:
        return None
    return keys[0]


def _env_overrides(environ: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (name[len(ENV_PREFIX) :].lower().replace("__", "."), value)
        for name, value in sorted(environ.items())
        if name.startswith(ENV_PREFIX)
    ]


def load_settings(
    env: str = "local",
    overrides: list[str] | None = None,
    conf_dir: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Load and validate the settings of one environment.

    Args:
        env: `local`, `cluster` or `databricks`: reads `conf/<env>.yaml`.
        overrides: `section.key=value` strings (values are parsed as YAML scalars).
        conf_dir: the configuration folder; defaults to the project's `conf/`.
        environ: environment variables to read overrides from; defaults to `os.environ`.

    Returns:
        The validated settings, sources included (from `conf/sources.yaml`).

    Raises:
        ConfigError: a file is missing or malformed, or a key is unknown, missing or of the wrong type.
    """
    conf_dir = conf_dir or resource_dir("conf")
    env_file = conf_dir / f"{env}.yaml"
    if env not in ENVIRONMENTS and not env_file.exists():
        raise ConfigError(str(env_file), "env", f"unknown environment '{env}'; expected one of {ENVIRONMENTS}")
    data = read_yaml_mapping(env_file)
    data.setdefault("env", env)
    changes = [
        (dotted, value, f"${ENV_PREFIX}{dotted.upper().replace('.', '__')}")
        for dotted, value in _env_overrides(dict(os.environ if environ is None else environ))
    ]
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError("--set", item, "expected section.key=value")
        dotted, value = item.split("=", 1)
        changes.append((dotted.strip(), value, "--set"))
    named = [value for dotted, value, _ in changes if dotted == "sources_file"] or [data.get("sources_file")]
    sources_file = Path(project_root() / named[-1]) if named[-1] else conf_dir / "sources.yaml"
    if "sources" not in data and (named[-1] or sources_file.exists()):
        data["sources"] = read_yaml_mapping(sources_file).get("sources", {})
    origin = {"sources": str(sources_file)}
    domains: dict[str, list[Override]] = {}
    for dotted, value, where in changes:
        if domain := _domain(dotted):
            domains.setdefault(domain, []).append((dotted.split(".", 1)[1], value, f"{where} {dotted}"))
        else:
            set_path(data, _split_dotted(dotted), value, where)
    data["file_overrides"] = {domain: tuple(items) for domain, items in domains.items()}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise config_error(origin.get(str(exc.errors()[0]["loc"][0]), str(env_file)), exc) from None
