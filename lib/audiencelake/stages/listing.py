"""The stage list as Markdown, from the registry: name, what it reads and writes, and what it runs after. The
README's stage list is this text (`audiencelake stages` prints it; a test keeps the README current)."""

from __future__ import annotations

from audiencelake.stages.declaration import SILVER, Stage, alternatives
from audiencelake.stages.registry import STAGES


def _cell(resources: tuple[str, ...]) -> str:
    """The resources, with the five silver tables as one entry where all are listed."""
    shown = [_one(r) for r in resources if r not in SILVER or not set(SILVER) <= set(resources)]
    if set(SILVER) <= set(resources):
        shown.insert(0, "every silver table")
    return ", ".join(shown) or "-"


def _one(resource: str) -> str:
    names = alternatives(resource)
    if len(names) > 1 and set(names) == set(SILVER):
        return "any silver table"
    return " or ".join(f"`{r}`" for r in names)


def stage_list(stages: dict[str, Stage] = STAGES) -> str:
    """One row per stage, in the order `audiencelake run` runs them."""
    rows = ["| stage | what it does | reads (skipped without) | also reads | writes | after |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for s in stages.values():
        after = ", ".join(s.depends_on) or "-"
        rows.append(
            f"| `{s.name}` | {s.description} | {_cell(s.reads)} | {_cell(s.uses)} | {_cell(s.writes)} | {after} |"
        )
    return "\n".join(rows) + "\n"
