"""The README's map of the package and its stage list match the tree and the registry."""

from __future__ import annotations

import re
from pathlib import Path

from audiencelake.stages.listing import stage_list

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lib" / "audiencelake"
README = (ROOT / "README.md").read_text()


def test_the_package_root_holds_only_packages_and_the_readme_maps_each() -> None:
    files = sorted(p.name for p in PACKAGE.iterdir() if p.is_file())
    assert files == ["__init__.py"], f"modules at the package root: {files}; move them into a package"
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    section = README.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    mapped = set(re.findall(r"^\| `([a-z_]+)/` \|", section, flags=re.M))
    assert mapped == packages, f"README 'Where things are': missing {packages - mapped}, stale {mapped - packages}"


def test_the_readme_stage_list_is_the_registry() -> None:
    block = re.search(r"<!-- stages: .*? -->\n(.*?)<!-- /stages -->", README, flags=re.S)
    assert block, "README: the stage list's markers are missing"
    assert block.group(1) == stage_list(), "README's stage list: paste the output of `audiencelake stages`"
