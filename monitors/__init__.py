"""Pure metric computations over batches of evaluation evidence (no Docker, HTTP or MLflow)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult
from monitors.drift import DriftMonitor
from monitors.fairness import SubgroupMonitor
from monitors.findings import findings
from monitors.operational import OperationalMonitor
from monitors.performance import PerformanceMonitor

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DriftMonitor",
    "EvalBatch",
    "MetricPoint",
    "Monitor",
    "MonitorResult",
    "OperationalMonitor",
    "PerformanceMonitor",
    "SubgroupMonitor",
    "default_monitors",
    "findings",
]


def default_monitors(
    attributes: list[str],
    min_group_size: int = 100,
    reference: pd.DataFrame | None = None,
    features: list[str] | None = None,
) -> list[Monitor]:
    """The monitors a tabular trial runs.

    Performance and calibration, subgroup fairness over ``attributes`` and operations; with a
    ``reference`` population also drift of ``features`` between it and the trial population.
    ``features`` is then required (normally the model's input columns): guessing which columns
    the model reads would compare the wrong things.
    """
    monitors: list[Monitor] = [
        PerformanceMonitor(),
        SubgroupMonitor(attributes, min_group_size=min_group_size),
        OperationalMonitor(),
    ]
    if reference is not None:
        if not features:
            raise ValueError("a drift reference needs the features to compare (the model's input columns)")
        monitors.append(DriftMonitor(reference, features))
    return monitors
