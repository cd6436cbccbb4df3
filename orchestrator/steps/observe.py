"""Observation and judgement: the evaluation workload, the monitors' final values, the verdicts."""

from __future__ import annotations

import datetime as dt
import time

from orchestrator.errors import TrialFailedError
from orchestrator.records import utcnow
from orchestrator.trial import Trial
from orchestrator.trial_records import Admission, Assessment, DataReady, Deployment, Observation, Workload

CLOSE_GRACE_S = 1.5


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
    deadline = trial.started_at.timestamp() + spec.resources.timeout_s

    def progress(done: int, total: int) -> None:
        trial.progress("workload", done, total, "requests")
        trial.check_cancelled()
        if time.time() > deadline:
            raise TrialFailedError(f"trial {trial.trial_id}: timeout of {spec.resources.timeout_s}s reached")

    channel = Channel(
        deployment.gateway_url, live.evaluation_token, live.sink, spec.workload.concurrency, progress
    )
    requests = evaluation.run(channel)
    window = spec.workload.developer_window_s
    if window:
        trial.log(f"endpoint open for developer traffic for {window:g}s: {deployment.gateway_url}")
        trial.publish(open_until=utcnow() + dt.timedelta(seconds=window))
        until = time.monotonic() + window
        while time.monotonic() < until:
            evaluation.absorb(live.sink.drain(wait_s=0.5))
            trial.check_cancelled()
    trial.publish(state="observed", open_until=None)  # the developer endpoint closes here
    if window:
        # The platform admits a call for up to a second after the close (it re-checks a token
        # once a second) and hands calls back in batches: those still on their way are recorded.
        until = time.monotonic() + CLOSE_GRACE_S
        while time.monotonic() < until:
            evaluation.absorb(live.sink.drain(wait_s=0.25))
    trial.event(
        "workload_done",
        requests=requests,
        steps=evaluation.steps,
        points=evaluation.points,
        developer_requests=evaluation.developer_requests,
    )
    return Workload(
        requests=requests,
        steps=evaluation.steps,
        points=evaluation.points,
        failure_cases=evaluation.failure_cases(),
    )


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
