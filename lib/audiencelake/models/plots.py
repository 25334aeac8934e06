"""Figures logged with training runs, drawn by `audiencelake.core.charts`."""

from __future__ import annotations

import mlflow

from audiencelake.core import charts


def log_line(name: str, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list, list]]) -> None:
    """Log a line chart (one line per series: label -> (xs, ys)) as `<name>.png` in the active MLflow run."""
    fig = charts.line(title, xlabel, ylabel, series)
    mlflow.log_figure(fig, f"{name}.png")


def log_bars(name: str, title: str, xlabel: str, ylabel: str, labels: list[str], series: dict[str, list]) -> None:
    """Log a grouped bar chart (one bar group per label) as `<name>.png`."""
    fig = charts.bars(title, xlabel, ylabel, labels, series)
    mlflow.log_figure(fig, f"{name}.png")
