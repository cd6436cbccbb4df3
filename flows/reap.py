"""Prefect flow ``reap-orphans``: remove sandboxes whose trial is no longer running.

Scheduled by ``regsandbox up`` (every few minutes) as the safety net behind the trial flow's
own teardown and hooks: an orchestrator killed outright runs no hook at all. Only objects
carrying the platform's labels, whose creating process is gone, are removed.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from orchestrator.backends import reap_all


@flow(name="reap-orphans", description="Remove sandboxes whose trial is no longer running.")
def reap_orphans(older_than_s: float = 60.0) -> list[str]:
    """Sweep every backend that answers; return the trial ids whose sandboxes were removed."""
    logger = get_run_logger()
    results = reap_all(older_than_s=older_than_s)
    for result in results:
        logger.info(
            "%s: removed %s%s",
            result.trial_id,
            ", ".join(result.removed) or "nothing",
            "" if result.verified else f"; still present: {result.remaining}",
        )
    return [result.trial_id for result in results]
