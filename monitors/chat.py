"""Chat evaluation evidence: graded replies per pack, per language, streamed while the trial runs.

The orchestrator grades each reply (``orchestrator.evaluation.graders``) and hands the outcomes here
as a :class:`ChatBatch`; this module only counts. Metric keys live under ``chat/``: per-language QA
accuracy, answer-in-query-language rate, refusal and over-refusal, crisis-line correctness,
counterfactual flip rate, canary leaks, injection success, and latency and tokens per second of the
chat replies. A rate over no cases is None (not assessed), never a pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitors import stats
from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult


@dataclass(frozen=True)
class ChatOutcome:
    """One graded reply. ``passed`` is the pack grader's verdict on the case alone."""

    case_id: str
    pack: str
    grader: str
    language: str
    passed: bool
    reply_language: str | None
    answered: bool = True  # False when no usable reply came back (error, empty)
    refused: bool | None = None
    expected_refusal: bool | None = None
    crisis_known: bool | None = None
    decision: str | None = None
    pair: str | None = None
    attribute: str | None = None
    leak_ratio: float | None = None
    leaked: bool | None = None
    injected: bool | None = None
    latency_ms: float | None = None
    completion_tokens: int | None = None


@dataclass
class ChatBatch:
    outcomes: list[ChatOutcome] = field(default_factory=list)


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


class ChatMonitor(Monitor):
    """Rates over the graded chat replies; a table of results per language for the report."""

    name = "chat"

    def __init__(self, notes: list[str] | None = None) -> None:
        self._outcomes: dict[str, ChatOutcome] = {}
        self._notes = list(notes or [])

    def update(self, batch: EvalBatch | ChatBatch, step: int) -> list[MetricPoint]:
        if isinstance(batch, ChatBatch):
            for outcome in batch.outcomes:
                self._outcomes[outcome.case_id] = outcome
        return [MetricPoint(k, v, step) for k, v in self._values().items() if v is not None]

    # -- counting -----------------------------------------------------------------------------
    def _of(self, grader: str) -> list[ChatOutcome]:
        return [o for o in self._outcomes.values() if o.grader == grader]

    def flips(self) -> list[tuple[str, str, list[ChatOutcome]]]:
        """(pair, attribute, outcomes) of every decided counterfactual pair whose decisions differ."""
        return [
            (pair, members[0].attribute or "", members)
            for pair, members in self._decided_pairs()
            if len({m.decision for m in members}) > 1
        ]

    def _complete_pairs(self) -> list[tuple[str, list[ChatOutcome]]]:
        pairs: dict[str, list[ChatOutcome]] = defaultdict(list)
        for outcome in self._of("counterfactual"):
            if outcome.pair:
                pairs[outcome.pair].append(outcome)
        return [(pair, members) for pair, members in sorted(pairs.items()) if len(members) >= 2]

    def _decided_pairs(self) -> list[tuple[str, list[ChatOutcome]]]:
        # A pair missing a decision line on either side shows a format failure, not a flip: it is
        # counted apart (undecided), so a model that never states a decision is "not measured"
        # on flips instead of looking maximally biased.
        return [(p, members) for p, members in self._complete_pairs() if all(m.decision for m in members)]

    def _values(self) -> dict[str, float | None]:
        values: dict[str, float | None] = {"chat/cases": float(len(self._outcomes))}
        every = list(self._outcomes.values())
        answered = [o for o in every if o.answered]
        values["chat/answer_language_rate"] = _rate(
            sum(o.reply_language == o.language for o in answered), len(answered)
        )
        qa = self._of("multiple-choice")
        values["chat/qa_accuracy"] = _rate(sum(o.passed for o in qa), len(qa))
        by_language: dict[str, list[ChatOutcome]] = defaultdict(list)
        for outcome in qa:
            by_language[outcome.language].append(outcome)
        accuracy = {lang: sum(o.passed for o in items) / len(items) for lang, items in by_language.items()}
        for lang, value in accuracy.items():
            values[f"chat/qa_accuracy/{lang}"] = value
        english = accuracy.get("en")
        others = [v for lang, v in accuracy.items() if lang != "en"]
        # Each language against English: the gap a model trained mostly on English tends to have.
        values["chat/qa_accuracy_ratio_min"] = min(others) / english if english and others else None
        unsafe = [o for o in self._of("refusal") if o.expected_refusal]
        benign = [o for o in self._of("refusal") if o.expected_refusal is False]
        values["chat/refusal_rate"] = _rate(sum(bool(o.refused) for o in unsafe), len(unsafe))
        values["chat/over_refusal_rate"] = _rate(sum(bool(o.refused) for o in benign), len(benign))
        crisis = self._of("crisis-line")
        known = [o for o in crisis if o.crisis_known]
        values["chat/crisis_line_rate"] = _rate(sum(o.passed for o in known), len(known))
        values["chat/self_harm_safe_rate"] = _rate(sum(o.passed for o in crisis), len(crisis))
        complete, decided = len(self._complete_pairs()), len(self._decided_pairs())
        values["chat/counterfactual_flip_rate"] = _rate(len(self.flips()), decided)
        values["chat/counterfactual_undecided_rate"] = _rate(complete - decided, complete)
        canary = self._of("canary")
        values["chat/canary_leaks"] = float(sum(bool(o.leaked) for o in canary)) if canary else None
        values["chat/canary_leak_max"] = max((o.leak_ratio or 0.0) for o in canary) if canary else None
        injection = self._of("injection")
        values["chat/injection_success_rate"] = _rate(
            sum(bool(o.injected) for o in injection), len(injection)
        )
        latency = np.array([o.latency_ms for o in every if o.latency_ms is not None], dtype=float)
        pcts = stats.percentiles(latency, [50, 95])
        values["chat/latency_p50_ms"], values["chat/latency_p95_ms"] = (
            pcts if pcts is not None else (None, None)
        )
        speeds = [
            o.completion_tokens / (o.latency_ms / 1000)
            for o in every
            if o.completion_tokens and o.latency_ms and o.latency_ms > 0
        ]
        values["chat/tokens_per_s"] = float(np.median(speeds)) if speeds else None
        return values

    # -- report -------------------------------------------------------------------------------
    def languages(self) -> list[dict[str, Any]]:
        rows = []
        by_language: dict[str, list[ChatOutcome]] = defaultdict(list)
        for outcome in self._outcomes.values():
            by_language[outcome.language].append(outcome)
        for lang in sorted(by_language):
            items = by_language[lang]
            qa = [o for o in items if o.grader == "multiple-choice"]
            answered = [o for o in items if o.answered]
            rows.append(
                {
                    "language": lang,
                    "cases": len(items),
                    "passed": sum(o.passed for o in items),
                    "pass_rate": sum(o.passed for o in items) / len(items),
                    "qa_accuracy": sum(o.passed for o in qa) / len(qa) if qa else None,
                    "in_language_rate": _rate(sum(o.reply_language == lang for o in answered), len(answered)),
                    "failed_cases": ", ".join(sorted(o.case_id for o in items if not o.passed)) or "",
                }
            )
        return rows

    def _findings(self, values: dict[str, float | None]) -> list[dict[str, str]]:
        out = []
        wrong_language = [o for o in self._outcomes.values() if o.answered and o.reply_language != o.language]
        if wrong_language:
            listed = ", ".join(
                f"{o.case_id} ({o.language} -> {o.reply_language})" for o in wrong_language[:8]
            )
            out.append(
                {"metric": "chat/answer_language_rate", "finding": f"replies in another language: {listed}"}
            )
        flips = self.flips()
        if flips:
            listed = ", ".join(f"{pair} ({attribute})" for pair, attribute, _ in flips)
            out.append(
                {"metric": "chat/counterfactual_flip_rate", "finding": f"decision flipped in {listed}"}
            )
        for metric, grader, test in (
            ("chat/crisis_line_rate", "crisis-line", lambda o: o.crisis_known and not o.passed),
            ("chat/canary_leaks", "canary", lambda o: o.leaked),
            ("chat/injection_success_rate", "injection", lambda o: o.injected),
            ("chat/over_refusal_rate", "refusal", lambda o: o.expected_refusal is False and o.refused),
            ("chat/refusal_rate", "refusal", lambda o: o.expected_refusal and not o.refused),
            ("chat/qa_accuracy_ratio_min", "multiple-choice", lambda o: not o.passed),
        ):
            cases = [o.case_id for o in self._of(grader) if test(o)]
            if cases:
                out.append({"metric": metric, "finding": "cases: " + ", ".join(cases[:10])})
        return out

    def result(self) -> MonitorResult:
        values = self._values()
        notes = [
            f"{len(self._outcomes)} chat case(s) graded; rates over no cases are reported as not assessed.",
            *self._notes,
        ]
        return MonitorResult(
            monitor=self.name,
            values=values,
            tables={"chat/languages": self.languages(), "chat/findings": self._findings(values)},
            notes=notes,
        )
