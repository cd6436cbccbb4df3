"""SmolLM2-135M-Instruct as a chat candidate, end to end on the Docker backend.

One real trial of ``examples/trials/smollm2.yaml`` (the custom-image template serving the image
``make chat-image`` builds; nothing downloaded) runs in the background with a real MLflow store and
the platform served on a real port. While its endpoint is open, a developer drives it with the
official ``openai`` client, streamed and not, through ``/trials/<id>/v1`` with the endpoint token
the API issued; afterwards those exchanges are the trial's developer traffic records and metrics,
and the signed report lists, verbatim, what the model got wrong.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import openai
import pytest

from orchestrator.api.relay import relay
from orchestrator.lifecycle import run_lifecycle
from orchestrator.settings import Settings, get_settings
from orchestrator.spec import load_spec
from orchestrator.store import session_scope
from orchestrator.store.trials import find, publish
from orchestrator.trial_records import TrialOutcome
from tests.integration.chat_images import ROOT, smollm2_image
from tests.served_platform import endpoint_token, served_platform

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.smollm2]
TRIAL = "smollm2-health-chat-test0001"
QUESTION: Any = [{"role": "user", "content": "What is the usual adult dose of paracetamol?"}]


class LiveTrial:
    """The trial running in a thread; its outcome once it has ended."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        base = load_spec(ROOT / "examples" / "trials" / "smollm2.yaml")
        # A short window after the evaluation, so the developer's calls that queued behind the
        # last cases are still measured while the endpoint is open.
        workload = base.workload.model_copy(update={"developer_window_s": 5.0})
        self.spec = base.model_copy(update={"workload": workload})
        self.outcome: TrialOutcome | None = None
        self.failure: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            self.outcome = run_lifecycle(
                self.spec,
                TRIAL,
                self.settings,
                backend="docker",
                publish=partial(publish, self.settings, TRIAL, self.spec),
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the test that reads the outcome
            self.failure = exc
        self.seconds = time.monotonic() - started

    def start(self) -> LiveTrial:
        self._thread.start()
        return self

    def wait_open(self, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with session_scope(self.settings) as db:
                row = find(db, TRIAL)
                if row is not None and row.gateway_url and row.state in ("deployed", "observing"):
                    return
            assert self._thread.is_alive(), f"the trial ended before its endpoint opened: {self.failure}"
            time.sleep(0.5)
        raise TimeoutError("the trial's endpoint did not open")

    def ended(self, timeout_s: float = 3600) -> TrialOutcome:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the trial did not end in time"
        assert self.failure is None and self.outcome is not None, self.failure
        return self.outcome


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[tuple[LiveTrial, str]]:
    smollm2_image()
    home = tmp_path_factory.mktemp("smollm2-trial") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGSANDBOX_HOME", str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("REGSANDBOX_FAIL_AT", raising=False)
        get_settings.cache_clear()
        settings = get_settings()
        settings.ensure_dirs()
        with served_platform(settings) as base:
            trial = LiveTrial(settings).start()
            try:
                yield trial, base
            finally:
                trial.ended()
        get_settings.cache_clear()


def test_the_openai_client_drives_the_live_endpoint(live: tuple[LiveTrial, str]) -> None:
    trial, base = live
    trial.wait_open()
    token, url = endpoint_token(base, trial.settings, TRIAL, trial.spec.sponsor)
    client = openai.OpenAI(base_url=url + "v1", api_key=token, max_retries=0, timeout=120)
    assert [m.id for m in client.models.list()] == ["smollm2-135m-instruct"]
    whole = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, max_tokens=24)
    answer = whole.choices[0].message.content
    assert answer and whole.usage is not None and whole.usage.completion_tokens > 0
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="smollm2-135m-instruct", messages=QUESTION, max_tokens=24, stream=True
        )
        if chunk.choices
    ]
    streamed = "".join(pieces)
    assert len(pieces) > 3 and streamed == answer  # temperature 0, fixed seed: the same words, streamed

    outcome = trial.ended()
    relay.flush()
    records = [json.loads(line) for line in (trial.settings.trials_dir / TRIAL / "traffic.jsonl").open()]
    developer = [r for r in records if r["origin"] == "developer"]
    assert [(r["path"], r["status"]) for r in developer] == [
        ("/v1/models", 200),
        ("/v1/chat/completions", 200),
        ("/v1/chat/completions", 200),
    ]
    plain, stream = developer[1]["response"], developer[2]["response"]
    assert plain["choices"][0]["message"]["content"] == answer
    assert stream["choices"][0]["message"]["content"] == streamed  # one record, the events joined
    assert stream["stream"]["done"] is True and stream["stream"]["first_event_ms"] > 0
    # Measured like tabular developer traffic: the trial's metrics count the three calls.
    from mlflow import MlflowClient

    history = MlflowClient(trial.settings.tracking_uri).get_metric_history(
        outcome.mlflow_run_id, "developer/ops/requests"
    )
    assert history and history[-1].value == 3


def test_the_trial_runs_end_to_end_and_reports_what_the_model_got_wrong(live: tuple[LiveTrial, str]) -> None:
    trial, _ = live
    outcome = trial.ended()
    assert outcome.status == "completed", outcome.error
    assert outcome.teardown_verified
    assert set(outcome.verdicts) == {"SG", "MY", "TH", "ID", "PH", "VN"}
    assert outcome.report["json"] is not None
    report = json.loads(Path(outcome.report["json"]).read_text(encoding="utf-8"))
    assert report["model"]["template"] == "custom-image"
    assert report["model"]["image"] == "regsandbox/smollm2:0.1.2"
    assert report["model"]["digest"] == report["model"]["image_digest"].removeprefix("sha256:")
    failures = report["failure_cases"]
    assert failures, "SmolLM2 got nothing wrong: the packs no longer test anything"
    records = {
        case: json.loads(line)
        for line in (trial.settings.trials_dir / TRIAL / "traffic.jsonl").open()
        for case in (json.loads(line)["case_ids"] or [])
    }
    for failure in failures:
        answer = records[failure["case_id"]]["response"]
        if isinstance(answer, dict) and answer.get("choices") and failure["predicted"]:
            # Quoted verbatim (perhaps shortened), in the language it was written in.
            assert str(failure["predicted"]).rstrip("…") in answer["choices"][0]["message"]["content"]
    cases = report["data"]["rows"]
    events = {e["kind"]: e["at"] for e in report["events"]}
    observing, done = events["observing"], events["workload_done"]
    seconds = (_parse(done) - _parse(observing)).total_seconds()
    line = (
        f"SmolLM2 trial: {trial.seconds:.0f} s wall, {cases} cases evaluated in {seconds:.0f} s "
        f"({cases / seconds:.2f} cases/s), {len(failures)} failure cases listed"
    )
    print(line)
    Path(os.environ.get("REGSANDBOX_SMOLLM2_TIMES", trial.settings.home / "smollm2-times.txt")).write_text(
        line + "\n", encoding="utf-8"
    )


def _parse(at: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(at)
