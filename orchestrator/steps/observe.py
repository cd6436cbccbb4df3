"""Observation and judgement: the evaluation workload, the monitors' final values, the verdicts."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from orchestrator.errors import TrialFailedError
from orchestrator.records import utcnow
from orchestrator.trial import Trial
from orchestrator.trial_records import Admission, Assessment, DataReady, Deployment, Observation, Workload

CLOSE_GRACE_S = 1.5
# Calls to the engine before a sandbox that cannot be inspected is taken for gone.
INSPECT_ATTEMPTS = 3


def run_workload(trial: Trial) -> Workload:
    """Send the evaluation cases through the gateway while the monitors stream to MLflow."""
    from orchestrator.evaluation import get_kind
    from orchestrator.workload import Channel

    admission: Admission = trial.records.need("admission")
    data: DataReady = trial.records.need("data")
    deployment: Deployment = trial.records.need("deployment")
    live, spec = trial.live, trial.spec
    assert live.streamer and live.sink and live.evaluation_token  # noqa: S101
    evaluation = get_kind(admission.kind).start(spec, data, live.streamer.put)
    live.evaluation = evaluation
    trial.enter("observing", cases=data.cases, batch_size=spec.workload.batch_size)
    # Time spent queued for a sandbox slot is not the model's time: a trial that waited behind
    # others (REGSANDBOX_MAX_SANDBOXES) must not then fail its own timeout for it.
    provisioned = trial.records.provisioned
    queued_s = provisioned.queued_s if provisioned else 0.0
    deadline = trial.started_at.timestamp() + queued_s + spec.resources.timeout_s

    def progress(done: int, total: int) -> None:
        trial.progress("workload", done, total, "requests")
        trial.check_cancelled()
        if time.time() > deadline:
            raise TrialFailedError(f"trial {trial.trial_id}: timeout of {spec.resources.timeout_s}s reached")

    channel = Channel(
        deployment.gateway_url,
        live.evaluation_token,
        live.sink,
        spec.workload.concurrency,
        progress,
        check=_sandbox_watch(trial),
    )
    window = spec.workload.developer_window_s
    stopped: str | None = None
    try:
        requests = evaluation.run(channel)
        if window:
            trial.log(f"endpoint open for developer traffic for {window:g}s: {deployment.gateway_url}")
            trial.publish(open_until=utcnow() + dt.timedelta(seconds=window))
            until = time.monotonic() + window
            watch = _sandbox_watch(trial)
            while time.monotonic() < until:
                evaluation.absorb(live.sink.drain(wait_s=0.5))
                trial.check_cancelled()
                watch()  # a model that stops while developers use it ends the window too
    except SandboxStoppedError as exc:
        # The model is gone: the cases it did answer are evidence, those after are missing, and
        # the report says which and why; sending the rest would only wait on timeouts.
        requests, stopped = live.sink.tally.requests, str(exc)
        trial.event("sandbox_stopped", reason=stopped)
        trial.log(stopped)
    trial.publish(state="observed", open_until=None)  # the developer endpoint closes here
    if window:
        # The platform admits a call for up to a second after the close (it re-checks a token
        # once a second) and hands calls back in batches: those still on their way are recorded.
        until = time.monotonic() + CLOSE_GRACE_S
        while time.monotonic() < until:
            evaluation.absorb(live.sink.drain(wait_s=0.25))
    evaluation.absorb(live.sink.drain())
    if stopped is None:
        stopped = _sandbox_stopped(trial)  # a stop in the last second, or after the last request
        if stopped:
            trial.event("sandbox_stopped", reason=stopped)
    coverage = live.sink.tally.coverage(spec.workload.min_group_size, data.cases, stopped)
    trial.event(
        "workload_done",
        requests=requests,
        steps=evaluation.steps,
        points=evaluation.points,
        developer_requests=evaluation.developer_requests,
        cases_sent=coverage.cases_sent,
        cases_answered=coverage.cases_answered,
        failed_requests=coverage.failed_requests,
    )
    return Workload(
        requests=requests,
        steps=evaluation.steps,
        points=evaluation.points,
        failure_cases=evaluation.failure_cases(),
        coverage=coverage,
    )


class SandboxStoppedError(TrialFailedError):
    """The model's sandbox stopped while the workload was sending it cases (ends the workload)."""


def _sandbox_watch(trial: Trial, every_s: float = 1.0) -> Callable[[], None]:
    """A check for the workload loop: raises once the sandbox is seen stopped (at most once a second)."""
    last = [time.monotonic()]

    def check() -> None:
        now = time.monotonic()
        if now - last[0] < every_s:
            return
        last[0] = now
        found = _sandbox_stopped(trial)
        if found:
            raise SandboxStoppedError(found)

    return check


def _sandbox_stopped(trial: Trial) -> str | None:
    """Why the model's sandbox is no longer serving, or None while it runs.

    The gateway answers 502 for every request after a stop, so the workload itself would end
    normally; only the sandbox's state tells a crash from a model that answers with errors.
    """
    live = trial.live
    if live.backend is None or live.sandbox is None:
        return None
    stats_error: str | None = None
    for attempt in range(INSPECT_ATTEMPTS):
        try:
            stats = live.backend.stats(live.sandbox)
        except Exception as exc:  # an engine that does not answer cannot vouch for the sandbox either
            stats_error, running, oom = f"{type(exc).__name__}: {exc}", False, False
            if attempt + 1 < INSPECT_ATTEMPTS:
                time.sleep(1.0)  # a busy engine may miss one call; a gone one misses them all
        else:
            stats_error, running, oom = None, stats.running, stats.oom_killed
            break
    if running:
        return None
    answered = live.sink.tally.cases_answered if live.sink is not None else "an unknown number of"
    why = "was killed for exceeding its memory limit" if oom else "stopped"
    if stats_error:
        why = f"could not be inspected ({stats_error})"
    return f"The model's sandbox {why} during the workload, after the model had answered {answered} cases."


def monitor(trial: Trial) -> Observation:
    """Close the monitors, record resource use, and flush every point to MLflow."""
    from monitors.base import MetricPoint
    from orchestrator.reports.pdf import prewarm

    live = trial.live
    assert live.evaluation and live.streamer and live.sampler  # noqa: S101 - set by earlier steps
    prewarm()  # the report comes next: its PDF worker loads WeasyPrint and the fonts meanwhile
    results = [m.result() for m in live.evaluation.monitors]
    values: dict[str, float | None] = {}
    intervals: dict[str, tuple[float, float]] = {}
    for result in results:
        values.update(result.values)
        intervals.update(result.intervals)
    values.update(live.sampler.stop())
    final = [MetricPoint(f"final/{k}", float(v), step=0) for k, v in values.items() if v is not None]
    for key, (low, high) in intervals.items():
        final += [MetricPoint(f"final/{key}_ci_low", low, 0), MetricPoint(f"final/{key}_ci_high", high, 0)]
    live.streamer.put(final)
    stats = live.streamer.close(timeout_s=trial.settings.mlflow_flush_timeout_s)
    trial.event("monitored", **stats.model_dump())
    return Observation(results=results, values=values, intervals=intervals, streamed=stats.model_dump())


def assess(trial: Trial) -> Assessment:
    """Each jurisdiction's profile turns the evidence into criterion outcomes and a verdict."""
    from mlflow.entities import RunTag

    from monitors import findings
    from orchestrator.evaluation import get_kind
    from orchestrator.policy import assess as assess_profile

    admission: Admission = trial.records.need("admission")
    observation: Observation = trial.records.need("observation")
    kind = get_kind(admission.kind)
    # Findings let a failed rule name the subgroup or feature behind it, not only the number.
    explained = findings(observation.results)
    assessment = Assessment(
        assessments={
            code: assess_profile(
                profile, observation.values, observation.intervals, explained, applies=kind.applies
            )
            for code, profile in admission.profiles.items()
        }
    )
    client, run = trial.live.client, admission.mlflow
    if client is not None and run is not None:
        tags = [RunTag(f"regsandbox.verdict.{c}", v) for c, v in assessment.verdicts.items()]
        client.log_batch(run.run_id, tags=tags)
    trial.enter("assessed", verdicts=assessment.verdicts)
    return assessment
