"""conf/identity.yaml is validated on load, without Spark: errors name the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from audiencelake.core.errors import ConfigError
from audiencelake.core.resources import resource_dir
from audiencelake.identity.config import load_identity_config


def _write(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load((resource_dir("conf") / "identity.yaml").read_text())
    change(raw)
    path = tmp_path / "identity.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_shipped_file_loads() -> None:
    config = load_identity_config()
    assert config.max_customers("device") == 1 and config.max_customers("customer") is None
    assert 0 < config.matching.threshold < 1


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda r: r["matching"]["blocking_rules"].append(["shoe_size"]), "matching", "unknown column 'shoe_size'"),
        (
            lambda r: r["matching"]["comparisons"].append({"kind": "forename_surname", "columns": ["first_name"]}),
            "matching.comparisons.5",
            "forename_surname compares 2 column(s)",
        ),
        (lambda r: r["identifiers"].update(fax={"max_customers": 1}), "identifiers.fax", "Input should be"),
        (lambda r: r["identifiers"]["device"].update(max_customers=0), "identifiers.device.max_customers", "greater"),
        (lambda r: r["matching"].update(threshold=1.5), "matching.threshold", "less than 1"),
        (lambda r: r["matching"].update(treshold=0.5), "matching.treshold", "Extra inputs"),
    ],
)
def test_a_wrong_setting_names_file_key_and_reason(tmp_path, change, key, reason) -> None:
    path = _write(tmp_path, change)
    with pytest.raises(ConfigError) as err:
        load_identity_config(path)
    assert err.value.file == str(path) and err.value.key == key and reason in err.value.reason, str(err.value)


def test_a_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="identity.yaml: <file>: file not found"):
        load_identity_config(tmp_path / "identity.yaml")
