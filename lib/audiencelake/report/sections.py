"""The report's sections: each reads the lake (or the MLflow champion run) and returns HTML with its charts.

A section whose tables do not exist yet says so instead of failing, so the report works after any stage.
"""

from __future__ import annotations

from collections.abc import Callable

from audiencelake.report.activation_sections import audiences, uplift
from audiencelake.report.blocks import Context
from audiencelake.report.data_sections import quality, rfm, segments, sources, tags
from audiencelake.report.model_sections import churn, clv, recommendations

SECTIONS: list[tuple[str, str, Callable[[Context], str]]] = [
    ("sources", "Sources and quarantine", sources),
    ("quality", "Quality results", quality),
    ("tags", "Tag coverage", tags),
    ("rfm", "RFM grid", rfm),
    ("segments", "Segments", segments),
    ("churn", "Churn model", churn),
    ("recommendations", "Recommendations", recommendations),
    ("clv", "Customer lifetime value", clv),
    ("audiences", "Audiences", audiences),
    ("uplift", "Uplift against the holdouts", uplift),
]
