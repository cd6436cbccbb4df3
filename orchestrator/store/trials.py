"""A trial's row, kept current by the trial itself while it runs.

The lifecycle publishes each transition here (state, endpoint, verdicts, report), whether the
trial was submitted through the API or started from the Prefect UI's form: a run the platform has
not seen before gets its row on its first transition. Publishing never fails a trial: a database
that does not answer is logged and the trial goes on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

from orchestrator.settings import Settings
from orchestrator.spec import TrialSpec
from orchestrator.store.db import session_scope
from orchestrator.store.models import Trial

logger = logging.getLogger("regsandbox.store")
TERMINAL = ("completed", "failed", "cancelled")


def find(db: Any, trial_id: str) -> Trial | None:
    found: Trial | None = db.scalars(select(Trial).where(Trial.trial_id == trial_id)).first()
    return found


# How long the final publish of a trial (its terminal status) keeps trying while the platform
# database is away (SQLite locked past its busy timeout, PostgreSQL restarting). Intermediate
# states are tried once: the next one supersedes them, and the trial must not wait for them.
FINAL_PATIENCE_S = 180.0


def publish(settings: Settings, trial_id: str, spec: TrialSpec, **fields: Any) -> None:
    """Upsert the trial's row with ``fields`` (columns of :class:`Trial`).

    A terminal status is retried with back-off for up to ``FINAL_PATIENCE_S``; if the database
    is away longer than that, the sweep (orchestrator.abandoned.reconcile_rows) closes the row
    from the trial's outcome file later.
    """
    final = fields.get("status") in TERMINAL
    deadline, pause = time.monotonic() + FINAL_PATIENCE_S, 0.5
    while True:
        try:
            _upsert(settings, trial_id, spec, fields)
            return
        except Exception as exc:  # the platform database must never stop a trial
            if not final or time.monotonic() + pause > deadline:
                logger.warning(
                    "trial %s: could not publish %s to the platform database: %s", trial_id, fields, exc
                )
                return
            logger.info("trial %s: platform database away (%s); retrying in %.1fs", trial_id, exc, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _upsert(settings: Settings, trial_id: str, spec: TrialSpec, fields: dict[str, Any]) -> None:
    with session_scope(settings) as db:
        row = find(db, trial_id)
        if row is None and fields.get("flow_run_id"):
            # Submitted through the API: the row exists under its flow run, without a trial id yet.
            row = db.scalars(select(Trial).where(Trial.flow_run_id == fields["flow_run_id"])).first()
        if row is None:
            row = Trial(
                trial_id=trial_id,
                name=spec.name,
                sponsor=spec.sponsor,
                jurisdictions=list(spec.jurisdictions),
                spec=spec.model_dump(mode="json"),
            )
            db.add(row)
        row.trial_id = trial_id
        for key, value in fields.items():
            setattr(row, key, value)
