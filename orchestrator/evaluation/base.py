"""The interface an evaluation kind implements: its workload, its monitors, its criteria.

What a template serves (``kind`` in its template.yaml) decides how a trial evaluates it: which
requests are sent, which monitors read the answers, and which families of policy criteria can
be judged from what they measure. The lifecycle and the backends know only this interface, so a
new kind (chat, imaging ...) is a new module registered in :mod:`orchestrator.evaluation`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from monitors.base import EvalBatch, MetricPoint, Monitor
    from orchestrator.records import TrafficRecord
    from orchestrator.reports.sections import FailureCase
    from orchestrator.spec import TrialSpec
    from orchestrator.trial_records import DataReady
    from orchestrator.workload import Channel

# Families every kind is judged on: how the service behaved, whatever it serves.
COMMON_FAMILIES = ("ops/", "latency/", "resources/", "isolation/")


class Evaluation(abc.ABC):
    """One trial's evaluation while it runs: the monitors, fed by the traffic it sends.

    ``absorb`` is called with every batch of traffic records, evaluation and developer alike
    (developer traffic during the observation window is measured the same way).
    """

    monitors: list[Monitor]
    steps: int = 0
    points: int = 0
    developer_requests: int = 0
    # Set by each kind: the developer monitor (developer_monitor()) and where points go.
    _developer: Monitor
    _emit: Callable[[list[MetricPoint]], None]

    def evaluation_records(self, records: list[TrafficRecord]) -> list[TrafficRecord]:
        """Measure the developer's records apart; return the evaluation records that carry cases.

        Every kind measures developer traffic the same way (operational evidence only: no
        ground truth comes with it), so this half of ``absorb`` is shared.
        """
        developer = developer_batch(records)
        if developer is not None:
            self.developer_requests += developer.ok.size
            self._emit(self._developer.update(developer, self.developer_requests))
        return [r for r in records if r.origin == "evaluation" and r.case_ids]

    @abc.abstractmethod
    def run(self, channel: Channel) -> int:
        """Send every evaluation case through ``channel``; return the number of requests."""

    @abc.abstractmethod
    def absorb(self, records: list[TrafficRecord]) -> None:
        """Update the monitors with these records and emit their points."""

    @abc.abstractmethod
    def failure_cases(self, limit: int = 20) -> list[FailureCase]:
        """The worst answers, verbatim, for the report."""


DEVELOPER = "developer/"


def developer_monitor() -> Monitor:
    """How the endpoint served the developer's own traffic: measured like evaluation, kept apart."""
    from monitors.base import Prefixed
    from monitors.operational import OperationalMonitor

    return Prefixed(OperationalMonitor(), DEVELOPER)


def developer_batch(records: list[TrafficRecord]) -> EvalBatch | None:
    """The operational evidence of developer requests (no ground truth comes with them)."""
    import numpy as np

    from monitors.base import EvalBatch

    mine = [r for r in records if r.origin == "developer"]
    if not mine:
        return None
    return EvalBatch(
        y_true=np.zeros(0),
        y_score=np.zeros(0),
        attributes={},
        latency_ms=np.array([r.latency_ms for r in mine]),
        ok=np.array([r.status < 400 for r in mine]),
    )


class EvaluationKind(abc.ABC):
    """A kind of model a template can serve, and how a trial evaluates it."""

    name: ClassVar[str]
    # Metric-key prefixes this kind's monitors produce; criteria outside them (and outside
    # COMMON_FAMILIES) belong to another kind and are not applied to this trial.
    families: ClassVar[tuple[str, ...]]

    def applies(self, metric: str) -> bool:
        """Whether a policy criterion on ``metric`` can be judged for a trial of this kind."""
        return metric.startswith(self.families + COMMON_FAMILIES)

    @abc.abstractmethod
    def start(
        self, spec: TrialSpec, data: DataReady, emit: Callable[[list[MetricPoint]], None]
    ) -> Evaluation:
        """Set up the monitors for one trial's data and model; nothing is sent until ``run``."""
