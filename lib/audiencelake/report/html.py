"""One self-contained HTML report of a lake: inline SVG charts and PNG plots as data URIs, inline CSS, no script
and no link, so it opens anywhere without a network."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from audiencelake.core.lake import Lake
from audiencelake.report.blocks import Context
from audiencelake.report.sections import SECTIONS

log = logging.getLogger(__name__)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1rem 2rem; color: #222; }
nav a { margin-right: 1rem; } section { border-top: 1px solid #ddd; padding: 1rem 0; }
figure.chart { margin: 1rem 0; } figure.chart svg, figure.chart img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9rem; } .missing { color: #a60; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; } th { background: #f4f4f4; }
"""


def render(lake: Lake, run_id: str | None = None) -> str:
    """The report as HTML text; `run_id` picks the audience run shown (default: the latest)."""
    ctx = Context(lake, run_id)
    nav = " ".join(f'<a href="#{key}">{escape(title)}</a>' for key, title, _ in SECTIONS)
    parts = []
    for key, title, build in SECTIONS:
        log.info("report: %s", title)
        parts.append(f'<section id="{key}"><h2>{escape(title)}</h2>{build(ctx)}</section>')
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>audiencelake report</title><style>{STYLE}</style></head><body>"
        f"<h1>audiencelake report</h1><p>Lake {escape(lake.settings.lake_root)}, written {now}.</p>"
        f"<nav>{nav}</nav>{''.join(parts)}</body></html>"
    )


def report_path(lake: Lake, run_id: str | None = None) -> Path:
    """Where the report of an audience run goes by default: `<lake>/reports/report-<run id or latest>.html`."""
    return Path(lake.settings.lake_root) / "reports" / f"report-{run_id or 'latest'}.html"


def write_report(lake: Lake, run_id: str | None = None, path: Path | None = None) -> Path:
    """Write the report (default: `<lake>/reports/report-<run id or latest>.html`) and return its path."""
    path = path or report_path(lake, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(lake, run_id), encoding="utf-8")
    return path
