"""The data dictionary: one Markdown page describing every table from its contract."""

from __future__ import annotations

from audiencelake.core.config import Settings
from audiencelake.core.contracts import Contract, contracts
from audiencelake.quality.suites import contract_expectations


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(threshold: object) -> str:
    return "none" if threshold is None else _cell(threshold)


def table_doc(c: Contract, settings: Settings | None = None) -> str:
    """One table's section; with `settings`, its parameters' values in force there beside their defaults."""
    lines = [f"## {c.layer}.{c.table}", "", c.description.strip(), ""]
    facts = [("keys", ", ".join(c.keys) or "-"), ("latest version by", c.order_by or "-"),
             ("partitioned by", ", ".join(c.partition_by) or "-"), ("quality policy", c.policy)]  # fmt: skip
    if c.cluster_by:
        facts.insert(3, ("Z-ordered by (optimize stage)", ", ".join(c.cluster_by)))
    if c.source:
        facts.insert(0, ("source", c.source))
    if c.tag_columns:
        facts.append(("tag columns", "one more column per tag of `conf/tags.yaml`, typed as declared there"))
    if c.pii_columns:
        facts.append(("PII (restricted table only)", ", ".join(col.name for col in c.pii_columns)))
    if hidden := [col.name for col in c.all_columns if not col.stats]:
        facts.append(("no min/max in the Delta log (erasable)", ", ".join(hidden)))
    lines += [f"- **{k}**: {v}" for k, v in facts] + ["", "| column | type | required | PII | description |",
                                                       "|---|---|---|---|---|"]  # fmt: skip
    for col in c.all_columns:
        derived = f" (derived: `{col.expression}`)" if col.expression else (" (derived)" if col in c.derived else "")
        lines.append(
            f"| {col.name} | {col.type} | {'yes' if not col.nullable else ''} | {col.pii or ''} | "
            f"{_cell(col.description)}{_cell(derived)} |"
        )
    if c.layer == "silver":
        lines += ["", "| expectation | type | severity | arguments |", "|---|---|---|---|"]
        for exp in contract_expectations(c):
            lines.append(f"| {exp.name} | {exp.expectation} | {exp.severity} | {_cell(exp.kwargs)} |")
    if c.params:
        force = settings.thresholds(c.table) if settings else {}
        where = f" ({settings.env})" if settings else ""
        lines += ["", f"| parameter | default | in force{where} | description |", "|---|---|---|---|"]
        for name, p in c.params.items():
            value = force.get(name, p.default)
            lines.append(f"| {name} | {_value(p.default)} | {_value(value)} | {_cell(p.description)} |")
    return "\n".join(lines)


def data_dictionary(settings: Settings | None = None) -> str:
    """Markdown for every contract, silver first; with `settings`, the business thresholds in force there."""
    order = {"silver": 0, "bronze": 1, "identity": 2, "ops": 3, "gold": 4}
    found = sorted(contracts().values(), key=lambda c: (order[c.layer], c.table))
    head = ["# audiencelake data dictionary", "", "Generated from `schemas/` by `audiencelake contracts docs`.", ""]
    return "\n".join(head + [table_doc(c, settings) + "\n" for c in found])
