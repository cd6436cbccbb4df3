"""Pure metric computations over batches of evaluation evidence (no Docker, HTTP or MLflow)."""

from __future__ import annotations

from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult
from monitors.fairness import SubgroupMonitor
from monitors.operational import OperationalMonitor
from monitors.performance import PerformanceMonitor

__all__ = [
    "EvalBatch",
    "MetricPoint",
    "Monitor",
    "MonitorResult",
    "OperationalMonitor",
    "PerformanceMonitor",
    "SubgroupMonitor",
    "default_monitors",
]


def default_monitors(attributes: list[str], min_group_size: int = 100) -> list[Monitor]:
    """The monitors a tabular trial runs: performance, subgroup fairness over ``attributes``, operations."""
    return [
        PerformanceMonitor(),
        SubgroupMonitor(attributes, min_group_size=min_group_size),
        OperationalMonitor(),
    ]
