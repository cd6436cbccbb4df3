"""Chat models: every pack case sent to ``/v1/chat/completions`` through the gateway, then graded.

Each case is one request (the OpenAI chat shape, temperature 0) carrying its case id, so every
answer is first a traffic record, like a developer's. The collector reads the reply back from the
record, grades it with its pack's grader, and feeds the chat monitor (per-language accuracy, refusal,
crisis lines, counterfactual flips, canary leaks, injection) and the operational monitor, whose
points stream to MLflow while the workload runs. Failure cases quote the reply verbatim, in the
language it was given in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from monitors.base import EvalBatch, MetricPoint
from monitors.chat import ChatBatch, ChatMonitor, ChatOutcome
from monitors.operational import OperationalMonitor
from orchestrator.evaluation.base import Evaluation, EvaluationKind, developer_monitor
from orchestrator.evaluation.graders import NO_JUDGE, Graded, JudgeModel, grade
from orchestrator.evaluation.packs import PackData, PackItem, PackManifest
from orchestrator.gateway import CASE_HEADER
from orchestrator.records import TrafficRecord
from orchestrator.reports.sections import FailureCase
from orchestrator.spec import TrialSpec
from orchestrator.trial_records import DataReady
from orchestrator.workload import Channel, Request, send_all

CHAT_PATH = "/v1/chat/completions"
REPLY_CHARS = 1200  # a failure case quotes at most this much of a reply


def reply_of(response: Any) -> tuple[str | None, int | None]:
    """(text, completion tokens) of an OpenAI chat completion; (None, None) when unusable."""
    if not isinstance(response, dict):
        return None, None
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None, None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    usage = response.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return (content if isinstance(content, str) else None), (tokens if isinstance(tokens, int) else None)


class ChatEvaluation(Evaluation):
    def __init__(
        self,
        packs: PackData,
        emit: Callable[[list[MetricPoint]], None],
        judge: JudgeModel | None = None,
    ) -> None:
        self._emit = emit
        self._judge = judge
        self._cases: dict[str, tuple[PackManifest, PackItem]] = {
            item.id: (pack.manifest, item) for pack in packs.packs for item in pack.items
        }
        self._graded: dict[str, Graded] = {}
        self.notes = [NO_JUDGE] if judge is None else [f"Judge model: {judge.name}."]
        self.chat = ChatMonitor(self.notes)
        self._operational = OperationalMonitor()
        self._developer = developer_monitor()
        self.monitors = [self.chat, self._operational, self._developer]

    def requests(self) -> list[Request]:
        return [
            Request(
                CHAT_PATH,
                json.dumps(
                    {"model": "candidate", "messages": item.messages(), "temperature": 0}, ensure_ascii=False
                ).encode(),
                {CASE_HEADER: case_id},
            )
            for case_id, (_, item) in self._cases.items()
        ]

    def run(self, channel: Channel) -> int:
        from orchestrator.evaluation.langid import warm_up

        warm_up()  # seconds on first use: paid before the clock of the first reply starts
        return send_all(channel, self.requests(), self.absorb)

    def absorb(self, records: list[TrafficRecord]) -> None:
        evaluation = self.evaluation_records(records)
        if not evaluation:
            return
        outcomes: list[ChatOutcome] = []
        for record in evaluation:
            for case_id in record.case_ids or []:
                if case_id not in self._cases:
                    continue
                manifest, item = self._cases[case_id]
                text, tokens = reply_of(record.response) if record.status == 200 else (None, None)
                graded = grade(manifest, item, text, record.latency_ms, tokens, self._judge)
                self._graded[case_id] = graded
                outcomes.append(graded.outcome)
        operations = EvalBatch(
            y_true=np.zeros(0),
            y_score=np.zeros(0),
            attributes={},
            latency_ms=np.array([r.latency_ms for r in evaluation]),
            ok=np.array([r.status == 200 for r in evaluation]),
        )
        self.steps += 1
        points = self.chat.update(ChatBatch(outcomes), self.steps)
        points += self._operational.update(operations, self.steps)
        self.points += len(points)
        self._emit(points)

    def failure_cases(self, limit: int = 60) -> list[FailureCase]:
        """Every failed case, verbatim, a round-robin over the packs so each kind of failure shows."""
        by_pack: dict[str, list[FailureCase]] = {}
        flipped = {o.case_id: (pair, attr) for pair, attr, members in self.chat.flips() for o in members}
        for case_id, graded in self._graded.items():
            manifest, item = self._cases[case_id]
            outcome = graded.outcome
            if outcome.passed:
                continue  # the other side of a flipped pair fails on its own and names the pair
            note = f"{manifest.id} ({'exact' if manifest.exact else 'heuristic'}): {graded.detail}"
            if case_id in flipped:
                note += f"; counterfactual pair {flipped[case_id][0]} flipped ({flipped[case_id][1]})"
            case = FailureCase(
                case_id=case_id,
                expected=graded.expected,
                predicted=graded.got[:REPLY_CHARS] if graded.got else "(no reply)",
                note=note + f" | prompt: {item.prompt[:300]}",
                language=item.language,
            )
            by_pack.setdefault(manifest.id, []).append(case)
        cases: list[FailureCase] = []
        queues = list(by_pack.values())
        while queues and len(cases) < limit:
            for queue in list(queues):
                if queue and len(cases) < limit:
                    cases.append(queue.pop(0))
                if not queue:
                    queues.remove(queue)
        return cases


class ChatKind(EvaluationKind):
    name: ClassVar[str] = "chat"
    families: ClassVar[tuple[str, ...]] = ("chat/",)

    def applies(self, metric: str) -> bool:
        # Generating a reply takes longer than scoring a row: chat latency is judged on
        # chat/latency_p95_ms (its own threshold), not on the tabular latency/ criteria.
        return super().applies(metric) and not metric.startswith("latency/")

    def start(
        self, spec: TrialSpec, data: DataReady, emit: Callable[[list[MetricPoint]], None]
    ) -> ChatEvaluation:
        if data.packs is None:
            raise RuntimeError("step order broken: no evaluation packs prepared before the workload")
        return ChatEvaluation(data.packs, emit)
