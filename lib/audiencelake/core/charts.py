"""Charts drawn with matplotlib (headless): the figures MLflow runs log and the HTML report embeds as SVG.

Figures are made as `Figure` objects, not through pyplot, whose figure registry is global: stages that run at once
(driver threads, `pipeline.parallel_stages`) draw their training plots without sharing it, and nothing needs closing.
"""

from __future__ import annotations

import io

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

matplotlib.rcParams.update({"svg.fonttype": "none", "axes.spines.top": False, "axes.spines.right": False})


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def line(title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list, list]]) -> Figure:
    """One line per series: label -> (xs, ys)."""
    fig, ax = _figure(6, 4)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o" if len(xs) <= 20 else None, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    return fig


def bars(
    title: str, xlabel: str, ylabel: str, labels: list[str], series: dict[str, list], stacked: bool = False
) -> Figure:
    """Grouped (or stacked) bars: one group per label, one bar per series."""
    bars_per_group = 1 if stacked else max(1, len(series))
    fig, ax = _figure(max(6, 0.6 * len(labels) * bars_per_group), 4)
    width = 0.8 if stacked else 0.8 / max(1, len(series))
    bottom = [0.0] * len(labels)
    for i, (label, values) in enumerate(series.items()):
        xs = list(range(len(labels))) if stacked else [x + i * width for x in range(len(labels))]
        ax.bar(xs, values, width=width, label=label, bottom=bottom if stacked else None)
        if stacked:
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    offset = 0 if stacked else width * (len(series) - 1) / 2
    ax.set_xticks([x + offset for x in range(len(labels))], labels, rotation=30 if len(labels) > 4 else 0, ha="right")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    return fig


def hbars(title: str, xlabel: str, labels: list[str], values: list[float]) -> Figure:
    """Horizontal bars, first label on top (long label lists: tags, quarantine reasons)."""
    fig, ax = _figure(7, max(2.5, 0.22 * len(labels) + 1))
    ax.barh(range(len(labels)), values)
    ax.set_yticks(range(len(labels)), labels, fontsize=8 if len(labels) > 20 else 10)
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel)
    fig.tight_layout()
    return fig


def heatmap(title: str, xlabel: str, ylabel: str, xs: list, ys: list, cells: list[list[float]]) -> Figure:
    """A grid of values (rows `ys`, columns `xs`), each cell labelled with its value."""
    fig, ax = _figure(max(5, 0.9 * len(xs) + 2), max(4, 0.6 * len(ys) + 1.5))
    image = ax.imshow(cells, cmap="Blues", aspect="auto")
    crowded = len(xs) > 5 or max((len(str(x)) for x in xs), default=0) > 6
    ax.set_xticks(
        range(len(xs)), [str(x) for x in xs], rotation=30 if crowded else 0, ha="right" if crowded else "center"
    )
    ax.set_yticks(range(len(ys)), [str(y) for y in ys])
    top = max((v for row in cells for v in row), default=0) or 1
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:g}", ha="center", va="center", color="white" if value > top / 2 else "black")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def intervals(
    title: str, xlabel: str, labels: list[str], points: list[float], lows: list[float], highs: list[float]
) -> Figure:
    """Point estimates with their confidence intervals, one row per label, and a line at zero."""
    fig, ax = _figure(7, max(2.5, 0.45 * len(labels) + 1.2))
    ys = list(range(len(labels)))
    errors = [
        [p - lo for p, lo in zip(points, lows, strict=True)],
        [hi - p for p, hi in zip(points, highs, strict=True)],
    ]
    ax.errorbar(points, ys, xerr=errors, fmt="o", capsize=4)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel)
    fig.tight_layout()
    return fig


def svg(fig: Figure) -> str:
    """The figure as an inline `<svg>` element (no XML prolog)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]
