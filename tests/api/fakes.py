"""Test doubles for the API: a fake of the Prefect server the trials run on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeRuns:
    """Stands in for :class:`orchestrator.api.runs.PrefectRuns`: records what the API asked of it."""

    started: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    artifacts: list[dict[str, str]] = field(default_factory=list)
    failure: Exception | None = None  # raised by every call when set, like a server that is away
    cancel_outcome: str = "cancelling"  # a run a worker is executing; "cancelled": not started yet

    def start(self, spec: dict[str, Any]) -> str:
        if self.failure:
            raise self.failure
        run_id = str(uuid.uuid4())
        self.started.append((run_id, spec))
        return run_id

    def cancel(self, flow_run_id: str) -> str:
        if self.failure:
            raise self.failure
        self.cancelled.append(flow_run_id)
        return self.cancel_outcome

    def annotate(self, flow_run_id: str, key: str, markdown: str, description: str) -> None:
        if self.failure:
            raise self.failure
        self.artifacts.append(
            {"flow_run_id": flow_run_id, "key": key, "markdown": markdown, "description": description}
        )
