"""Figures logged with training runs (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402


def log_line(name: str, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list, list]]) -> None:
    """Log a line chart (one line per series: label -> (xs, ys)) as `<name>.png` in the active MLflow run."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o" if len(xs) <= 20 else None, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    mlflow.log_figure(fig, f"{name}.png")
    plt.close(fig)


def log_bars(name: str, title: str, xlabel: str, ylabel: str, labels: list[str], series: dict[str, list]) -> None:
    """Log a grouped bar chart (one bar group per label) as `<name>.png`."""
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(labels))], values, width=width, label=label)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))], labels)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    fig.tight_layout()
    mlflow.log_figure(fig, f"{name}.png")
    plt.close(fig)
