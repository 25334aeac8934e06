from __future__ import annotations

import gzip
import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest

from audiencelake.synth import WorldSpec, generate_world


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    spec = WorldSpec(users=60, days=21, seed=5, chunk_size=25)
    generate_world(tmp_path / "a", spec)
    generate_world(tmp_path / "b", spec)
    generate_world(tmp_path / "c", WorldSpec(users=60, days=21, seed=6, chunk_size=25))
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert len(a) > 20
    assert a != c


def test_manifest_counts_match_the_files(tmp_path: Path) -> None:
    generate_world(tmp_path, WorldSpec(users=120, days=28, seed=11, chunk_size=50))
    manifest = json.loads((tmp_path / "truth" / "manifest.json").read_text())
    click_lines = 0
    for path in (tmp_path / "landing" / "clickstream").iterdir():
        click_lines += sum(1 for line in gzip.open(path, "rt") if line.strip())
    bad = manifest["bad_records"]["clickstream"]
    planted_extra = sum(v for k, v in bad.items() if k != "late_arriving")
    assert click_lines == manifest["valid_rows"]["clickstream"] + planted_extra
    persons = [line.split(",") for line in (tmp_path / "truth" / "persons.csv").read_text().splitlines()[1:]]
    assert sum(kind == "customer" for _, _, kind, _ in persons) == 120
    assert manifest["valid_rows"]["crm_profiles"] == len(persons)  # customers, duplicates, test accounts
    users = (tmp_path / "truth" / "users.csv").read_text().splitlines()
    assert len(users) == 121
    segments = {line.split(",")[1] for line in users[1:]}
    assert segments == set(manifest["segments"])


def _peak(tmp: Path, users: int) -> int:
    tracemalloc.start()
    generate_world(tmp, WorldSpec(users=users, days=14, seed=3, chunk_size=100))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_does_not_grow_with_users(tmp_path: Path) -> None:
    small, large = _peak(tmp_path / "s", 100), _peak(tmp_path / "l", 600)
    assert large < small * 1.5, (small, large)


def test_a_world_too_short_for_its_plants_is_refused() -> None:
    from audiencelake.core.errors import ConfigError

    with pytest.raises(ConfigError, match="days: 10: a world needs at least 14 days"):
        WorldSpec(users=50, days=10)
