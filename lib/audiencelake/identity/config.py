"""`conf/identity.yaml`: guards of deterministic linking and the Splink settings of probabilistic CRM matching,
typed and validated on load. Every error names the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from audiencelake.core.declarative import Override, Strict, read_yaml_mapping, validate, with_overrides
from audiencelake.core.resources import resource_dir

# node type -> the one-letter prefix of its node key
NODE_TYPES = {"customer": "c", "anonymous": "a", "device": "d", "email": "e", "phone": "p"}
# the columns a CRM record offers the matcher (built by identity.matching.match_records)
MATCH_COLUMNS = ("first_name", "last_name", "email", "email_local", "email_domain", "birth_date", "city",
                 "phone_hash", "email_hash")  # fmt: skip
COMPARISON_ARITY = {"forename_surname": 2, "name": 1, "email": 1, "date_of_birth": 1, "exact": 1, "levenshtein": 1}


class Guard(Strict):
    max_customers: int = Field(ge=1)


def _check_columns(columns: list[str]) -> list[str]:
    if unknown := [c for c in columns if c not in MATCH_COLUMNS]:
        raise ValueError(f"unknown column {unknown[0]!r}; a CRM record offers {list(MATCH_COLUMNS)}")
    return columns


class Comparison(Strict):
    kind: Literal["forename_surname", "name", "email", "date_of_birth", "exact", "levenshtein"]
    columns: list[str] = Field(min_length=1)
    thresholds: list[int] = Field(default_factory=lambda: [1, 2])

    @model_validator(mode="after")
    def _arity(self) -> Comparison:
        _check_columns(self.columns)
        if len(self.columns) != COMPARISON_ARITY[self.kind]:
            raise ValueError(f"{self.kind} compares {COMPARISON_ARITY[self.kind]} column(s), got {self.columns}")
        return self


class Training(Strict):
    prior_rules: list[list[str]] = Field(min_length=1)
    prior_recall: float = Field(default=0.7, gt=0, le=1)
    u_max_pairs: int = Field(default=100_000, ge=100)
    max_records: int = Field(default=200_000, ge=2)
    em_blocking_rules: list[list[str]] = Field(min_length=1)
    max_iterations: int = Field(default=20, ge=1)
    seed: int = 42

    @model_validator(mode="after")
    def _columns(self) -> Training:
        for rule in [*self.prior_rules, *self.em_blocking_rules]:
            _check_columns(rule)
        return self


class Matching(Strict):
    enabled: bool = True
    threshold: float = Field(default=0.95, gt=0, lt=1)
    evidence_max_customers: int = Field(default=3, ge=1)
    blocking_rules: list[list[str]] = Field(min_length=1)
    comparisons: list[Comparison] = Field(min_length=1)
    training: Training

    @model_validator(mode="after")
    def _columns(self) -> Matching:
        for rule in self.blocking_rules:
            if not rule:
                raise ValueError("a blocking rule needs at least one column")
            _check_columns(rule)
        return self


class IdentityConfig(Strict):
    file: str = ""
    identifiers: dict[Literal["anonymous", "device", "email", "phone"], Guard]
    matching: Matching

    def max_customers(self, id_type: str) -> int | None:
        """The guard of an identifier type; None for customer nodes and unguarded types."""
        guard = self.identifiers.get(id_type)  # type: ignore[call-overload]
        return guard.max_customers if guard else None


def load_identity_config(path: Path | str | None = None, overrides: tuple[Override, ...] = ()) -> IdentityConfig:
    """Load and validate the identity settings (default `conf/identity.yaml`).

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown, mistyped or names an unknown column.
    """
    path = Path(path) if path else resource_dir("conf") / "identity.yaml"
    raw = with_overrides(read_yaml_mapping(path), overrides, str(path))
    return validate(IdentityConfig, {**raw, "file": str(path)}, str(path))
