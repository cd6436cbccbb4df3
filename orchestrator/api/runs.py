"""The API's only contact with Prefect: start a trial's flow run, cancel it, annotate it.

Everything goes through a :class:`Runs` object held by the app (``app.state.runs``), so tests
and other deployments can put a different one in its place. :class:`PrefectRuns` talks to the
Prefect server named by ``PREFECT_API_URL`` (environment or Prefect profile), or else to the one
``regsandbox up`` serves from the platform's home. It never starts a temporary server: a web
process must not grow one on a request, so without a server the API answers 503.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from orchestrator.errors import ConflictError, UnavailableError
from orchestrator.settings import Settings

logger = logging.getLogger("regsandbox.api.runs")

DEPLOYMENT = "sandbox-trial/sandbox-trial"


class Runs(Protocol):
    def start(self, spec: dict[str, Any]) -> str:
        """Create a flow run of the trial deployment for ``spec``; return its id, without waiting."""
        ...

    def cancel(self, flow_run_id: str) -> str:
        """Ask the flow run to stop; return ``cancelling`` (its hooks tear the sandbox down and the
        run publishes its end) or ``cancelled`` (it had not started: nothing will publish)."""
        ...

    def annotate(self, flow_run_id: str, key: str, markdown: str, description: str) -> None:
        """Attach a markdown artifact to the flow run, shown in the Prefect UI."""
        ...


class PrefectRuns:
    """:class:`Runs` against a real Prefect server."""

    def __init__(self, settings: Settings, deployment: str = DEPLOYMENT, api_url: str | None = None) -> None:
        self.settings = settings
        self.deployment = deployment
        self.api_url = api_url

    def _api_url(self) -> str:
        if self.api_url:
            return self.api_url
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()  # the environment, or the active Prefect profile
        if url:
            return str(url)
        from orchestrator.stack import running_stack

        found = running_stack(self.settings)
        if found is None:
            raise UnavailableError(
                "no Prefect server: set PREFECT_API_URL, or start the platform with `regsandbox up`"
            )
        return found["prefect_api_url"]

    @contextmanager
    def _server(self, retries: int | None = None) -> Iterator[None]:
        from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

        updates: dict[Any, Any] = {PREFECT_API_URL: self._api_url()}
        if retries is not None:
            updates[PREFECT_CLIENT_MAX_RETRIES] = retries
        try:
            with temporary_settings(updates=updates):
                yield
        except (ConflictError, UnavailableError):
            raise
        except Exception as exc:
            # Whatever Prefect raised (unreachable, deployment missing), the caller sees one kind.
            raise UnavailableError(f"Prefect server refused or did not answer: {exc}") from exc

    def start(self, spec: dict[str, Any]) -> str:
        from prefect.deployments import run_deployment

        with self._server():
            run: Any = run_deployment(self.deployment, parameters={"spec": spec}, timeout=0, as_subflow=False)
        return str(run.id)  # called from sync code, so the run itself, not a coroutine

    def cancel(self, flow_run_id: str) -> str:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.objects import StateType
        from prefect.states import Cancelling

        with self._server(), get_client(sync_client=True) as client:
            result: Any = client.set_flow_run_state(flow_run_id, Cancelling())
        # Prefect turns Cancelling into Cancelled for a run no worker has picked up yet (it reports
        # that as a rejection), and answers a run cancelled before with its Cancelled state.
        state = result.state.type if result.state is not None else None
        if state in (StateType.CANCELLING, StateType.CANCELLED):
            return "cancelling" if state == StateType.CANCELLING else "cancelled"
        reason = getattr(result.details, "reason", None) or result.status.value
        raise ConflictError(f"flow run {flow_run_id} cannot be cancelled: {reason}")

    def annotate(self, flow_run_id: str, key: str, markdown: str, description: str) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import ArtifactCreate

        # One retry: an annotation is worth a moment, not a request held for a minute.
        with self._server(retries=1), get_client(sync_client=True) as client:
            client.create_artifact(
                ArtifactCreate(
                    key=key,
                    type="markdown",
                    data=markdown,
                    description=description,
                    flow_run_id=uuid.UUID(flow_run_id),
                )
            )
