"""How much of the evaluation the model actually answered, and what went wrong with the rest.

A candidate that fails some requests still produces metrics over the cases it did answer; a
report that showed only those metrics would present a verdict on partial evidence as if it
were whole. :class:`ErrorTally` counts, from the evaluation's own traffic records, the cases
sent and answered and each distinct error with its count; :class:`EvidenceCoverage` is what the
report carries: evidence marked incomplete where cases are missing, and a note whenever the
verdicts rest on fewer answered cases than the trial's minimum.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.records import TrafficRecord

# Enough of an error to tell errors apart, short enough that a flood of distinct messages
# (a model echoing its input) cannot bloat the report.
MESSAGE_CHARS = 300
MAX_DISTINCT = 50


class ErrorCount(BaseModel):
    """One distinct error the evaluation met, quoted, with how often it happened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int = Field(description="HTTP status the caller received (502/504: the model did not answer).")
    message: str = Field(description="The error as the gateway or the model stated it, quoted verbatim.")
    requests: int = Field(ge=1, description="Evaluation requests that ended in this error.")
    cases: int = Field(ge=0, description="Evaluation cases those requests carried.")


class EvidenceCoverage(BaseModel):
    """Cases sent and answered, each distinct error, and what that means for the verdicts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: int = Field(ge=0, description="Evaluation requests sent.")
    failed_requests: int = Field(ge=0, description="Evaluation requests that did not get a usable answer.")
    cases_planned: int = Field(ge=0, description="Evaluation cases the trial meant to send.")
    cases_sent: int = Field(ge=0, description="Evaluation cases sent to the model.")
    cases_answered: int = Field(ge=0, description="Cases the model answered (HTTP 200).")
    min_cases: int = Field(ge=0, description="Answered cases below which a verdict rests on too little.")
    errors: list[ErrorCount] = Field(
        default_factory=list, description="Each distinct error, most frequent first."
    )
    other_errors: int = Field(
        default=0, ge=0, description=f"Failed requests whose error was not among the {MAX_DISTINCT} quoted."
    )
    complete: bool = Field(description="True when every case sent was answered.")
    notes: list[str] = Field(default_factory=list, description="What the coverage means, in words.")


def _message(record: TrafficRecord) -> str:
    if record.error:
        return record.error[:MESSAGE_CHARS]
    response: Any = record.response
    if isinstance(response, dict):
        for key in ("error", "message", "detail"):
            if key in response:
                response = response[key]
                break
    if not isinstance(response, str):
        response = json.dumps(response, sort_keys=True, default=str)
    return response[:MESSAGE_CHARS] or f"HTTP {record.status} with an empty body"


class ErrorTally:
    """Counts evaluation traffic as it is captured; safe to feed from the workload's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = self.failed = self.cases_sent = self.cases_answered = 0
        self._errors: Counter[tuple[int, str]] = Counter()
        self._error_cases: Counter[tuple[int, str]] = Counter()

    def add(self, records: list[TrafficRecord]) -> None:
        with self._lock:
            for record in records:
                if record.origin != "evaluation":
                    continue
                cases = len(record.case_ids or [])
                self.requests += 1
                self.cases_sent += cases
                if record.status == 200 and record.error is None:
                    self.cases_answered += cases
                    continue
                self.failed += 1
                key = (record.status, _message(record))
                self._errors[key] += 1
                self._error_cases[key] += cases

    def coverage(
        self, min_cases: int, planned: int | None = None, stopped: str | None = None
    ) -> EvidenceCoverage:
        """``planned``: the cases the evaluation meant to send (default: those it did send);
        ``stopped``: why the model stopped serving before the end, when it did."""
        with self._lock:
            planned = self.cases_sent if planned is None else max(planned, self.cases_sent)
            ranked = self._errors.most_common()
            quoted = ranked[:MAX_DISTINCT]
            errors = [
                ErrorCount(status=s, message=m, requests=n, cases=self._error_cases[(s, m)])
                for (s, m), n in quoted
            ]
            other = sum(n for _, n in ranked[MAX_DISTINCT:])
            return EvidenceCoverage(
                requests=self.requests,
                failed_requests=self.failed,
                cases_planned=planned,
                cases_sent=self.cases_sent,
                cases_answered=self.cases_answered,
                min_cases=min_cases,
                errors=errors,
                other_errors=other,
                complete=self.cases_answered == planned and self.failed == 0 and stopped is None,
                notes=([stopped] if stopped else [])
                + _notes(planned, self.cases_sent, self.cases_answered, self.failed, min_cases),
            )


def _notes(planned: int, sent: int, answered: int, failed: int, min_cases: int) -> list[str]:
    notes = []
    if failed or answered < planned:
        share = answered / planned if planned else 0.0
        unsent = f"; {planned - sent} case(s) were never sent" if sent < planned else ""
        notes.append(
            f"Evidence incomplete: the model answered {answered} of {planned} cases ({share:.0%}); "
            f"{failed} request(s) failed with the errors quoted{unsent}. "
            "Metrics describe the answered cases only."
        )
    if answered < min_cases:
        notes.append(
            f"The verdicts rest on {answered} answered case(s), fewer than the trial's minimum of "
            f"{min_cases}: treat them as insufficient evidence, not as a finding about the model."
        )
    return notes
