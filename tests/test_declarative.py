"""`core.declarative`: every declarative file is read one way and a mistake in any of them is the same one line,
`<file>: <key>: <reason>`, the reason without pydantic's prefixes and with how many more errors there are."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiencelake.audiences.loader import load_audiences
from audiencelake.core.contracts import load_contract
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.resources import resource_dir
from audiencelake.identity.config import load_identity_config
from audiencelake.models.config import load_models_config

LOADERS = {
    "identity": (resource_dir("conf") / "identity.yaml", load_identity_config),
    "models": (resource_dir("conf") / "models.yaml", load_models_config),
    "audiences": (resource_dir("conf") / "audiences.yaml", load_audiences),
    "contract": (resource_dir("schemas") / "gold" / "clv.yaml", load_contract),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_an_unknown_key_is_one_line_naming_file_and_key(name: str, tmp_path: Path) -> None:
    shipped, load = LOADERS[name]
    path = tmp_path / shipped.name
    path.write_text(shipped.read_text() + "\nbogus: 1\nalso_bogus: 2\n")
    with pytest.raises(AudiencelakeError) as caught:
        load(path)
    reason = "Extra inputs are not permitted (and 1 more)"  # pydantic's, the first extra key named
    if name == "audiences":  # the loader checks its sections itself
        assert str(caught.value) == (
            f"{path}: also_bogus: unknown section; expected destinations, audiences and opt_out_channels"
        )
    else:
        assert str(caught.value) == f"{path}: bogus: {reason}"


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_a_file_that_is_not_yaml_or_missing_is_one_line(name: str, tmp_path: Path) -> None:
    _, load = LOADERS[name]
    path = tmp_path / "broken.yaml"
    path.write_text("key: [unclosed\n  other: {\n")
    with pytest.raises(AudiencelakeError, match=rf"^{path}: <yaml>: not valid YAML: [^\n]+$"):
        load(path)
    with pytest.raises(AudiencelakeError, match=rf"^{tmp_path / 'absent.yaml'}: <file>: file not found$"):
        load(tmp_path / "absent.yaml")
