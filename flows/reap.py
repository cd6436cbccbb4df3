"""Prefect flow ``reap-orphans``: remove sandboxes whose trial is no longer running.

Scheduled by ``regsandbox up`` (every few minutes) as the safety net behind the trial flow's
own teardown and hooks: an orchestrator killed outright runs no hook at all. Only objects
carrying the platform's labels, whose creating process is gone, are removed.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from orchestrator.abandoned import reconcile_rows, recover_abandoned
from orchestrator.backends import reap_all
from orchestrator.settings import get_settings


@flow(name="reap-orphans", description="Remove sandboxes whose trial is no longer running.")
def reap_orphans(older_than_s: float = 60.0) -> list[str]:
    """Sweep every backend that answers; return the trial ids whose sandboxes were removed."""
    logger = get_run_logger()
    for outcome in recover_abandoned(get_settings()):
        logger.warning(
            "%s: orchestrator gone; trial failed with report %s", outcome.trial_id, outcome.report["json"]
        )
    try:
        for trial_id in reconcile_rows(get_settings()):
            logger.warning("%s: ended during a platform database outage; row closed", trial_id)
    except Exception as exc:  # the database still away: sweep the sandboxes all the same
        logger.warning("platform database not reachable, rows not reconciled: %s", exc)
    results = reap_all(older_than_s=older_than_s)
    for result in results:
        logger.info(
            "%s: removed %s%s",
            result.trial_id,
            ", ".join(result.removed) or "nothing",
            "" if result.verified else f"; still present: {result.remaining}",
        )
    return [result.trial_id for result in results]
