"""What the executive summary and each jurisdiction's annex say, in that annex's language.

The sentences are composed here from catalogue templates and the report's facts, so the
template only lays them out, and a test can compare the PDF's text with exactly these strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.records import CriterionOutcome, JurisdictionAssessment
from orchestrator.reports.figures import PSI_FAIL, PSI_WARN
from orchestrator.reports.formatting import fmt_num
from orchestrator.reports.i18n import Catalogue, catalogue, jurisdiction, jurisdiction_name
from orchestrator.reports.model import ExitReport
from orchestrator.reports.sections import MonitoringItem

_NEGATED = {">=": "<", ">": "<=", "<=": ">", "<": ">="}


@dataclass(frozen=True)
class CriterionRow:
    """One criterion as an annex table shows it: codes verbatim, fixed words translated."""

    criterion_id: str
    metric: str
    comparator: str
    threshold: str
    observed: str
    interval: str
    outcome: str
    outcome_text: str
    severity_text: str
    provenance_text: str


@dataclass(frozen=True)
class Annex:
    """One jurisdiction's annex in one language."""

    code: str
    language: str
    t: Catalogue
    title: str
    verdict: str | None
    summary: list[str]
    rows: list[CriterionRow]
    risk: str
    monitoring: list[MonitoringItem]
    default_monitoring: bool
    post_market: list[str]


def model_name(report: ExitReport) -> str:
    if report.model:
        return report.model.resolved or report.model.uri
    spec_model = report.trial.spec.get("model")
    return str(spec_model.get("uri", "—")) if isinstance(spec_model, dict) else "—"


def _facts(report: ExitReport, t: Catalogue) -> list[str]:
    """Sentences every summary starts with: what ran, how it ended, on what, how isolated."""
    sentences = [
        t(
            "summary.trial",
            trial_id=report.trial_id,
            model=model_name(report),
            sponsor=report.trial.sponsor,
            intended_use=report.trial.intended_use,
        )
    ]
    if report.error:
        sentences.append(t("summary.failed", step=report.error.step, error=report.error.type))
    elif report.finished_at:
        sentences.append(t("summary.completed", date=report.finished_at.date().isoformat()))
    data = report.data
    if data and data.source == "synthetic":
        sentences.append(
            t("summary.data_synthetic", rows=fmt_num(data.rows), generator=data.generator or "—")
        )
    elif data:
        sentences.append(
            t("summary.data_approved", rows=fmt_num(data.rows), approval=data.approval_ref or "—")
        )
    if report.isolation:
        key = "isolation_verified" if report.isolation.verified else "isolation_unverified"
        sentences.append(t(f"summary.{key}"))
    sentences.append(
        t("summary.teardown_verified" if report.teardown.verified else "summary.teardown_unverified")
    )
    return sentences


def overview(report: ExitReport, t: Catalogue | None = None) -> list[str]:
    """The executive summary of the whole report (all jurisdictions)."""
    t = t or catalogue("en")
    sentences = _facts(report, t)
    verdicts = {a.jurisdiction: a.verdict for a in report.assessments}
    listed = ", ".join(f"{code} {t.verdict(verdicts.get(code))}" for code in _codes(report))
    if listed:
        sentences.append(t("summary.verdicts", verdicts=listed))
    return sentences


def _codes(report: ExitReport) -> list[str]:
    return list(dict.fromkeys([*report.trial.jurisdictions, *(a.jurisdiction for a in report.assessments)]))


def jurisdiction_summary(
    report: ExitReport, code: str, assessment: JurisdictionAssessment | None, t: Catalogue
) -> list[str]:
    """The executive summary for one jurisdiction, in ``t``'s language."""
    sentences = _facts(report, t)
    name = jurisdiction_name(code, t.language)
    if assessment is None:
        return [*sentences, t("summary.not_assessed", jurisdiction=name)]
    profile = f"{assessment.profile_id}@{assessment.profile_version}"
    sentences.append(
        t("summary.verdict", jurisdiction=name, profile=profile, verdict=t.verdict(assessment.verdict))
    )
    criteria = assessment.criteria
    failed = [c for c in criteria if c.outcome == "fail"]
    insufficient = [c for c in criteria if c.outcome.startswith("insufficient")]
    sentences.append(
        t(
            "summary.counts",
            passed=sum(c.outcome == "pass" for c in criteria),
            total=len(criteria),
            failed=len(failed),
            blocking=sum(c.severity == "blocking" for c in failed),
            insufficient=len(insufficient),
        )
    )
    unmet = [f"{c.criterion_id} ({t.outcome(c.outcome)})" for c in [*failed, *insufficient]]
    if unmet:
        sentences.append(t("summary.unmet", criteria=", ".join(unmet)))
    return sentences


def criterion_rows(criteria: Iterable[CriterionOutcome], t: Catalogue) -> list[CriterionRow]:
    return [
        CriterionRow(
            criterion_id=c.criterion_id,
            metric=c.metric,
            comparator=c.comparator,
            threshold=fmt_num(c.threshold),
            observed=fmt_num(c.observed),
            interval=fmt_num(c.interval),
            outcome=c.outcome,
            outcome_text=t.outcome(c.outcome),
            severity_text=t(f"severity.{c.severity}"),
            provenance_text=t(f"provenance.{c.provenance}"),
        )
        for c in criteria
    ]


def monitoring_plan(report: ExitReport, t: Catalogue) -> tuple[list[MonitoringItem], bool]:
    """The developer's monitoring commitments, or defaults derived from the criteria (flag True)."""
    if report.post_market and report.post_market.monitoring:
        return list(report.post_market.monitoring), False
    strictest: dict[str, tuple[str, float]] = {}
    for criterion in (c for a in report.assessments for c in a.criteria):
        if criterion.comparator not in _NEGATED or not isinstance(criterion.threshold, int | float):
            continue
        current = strictest.get(criterion.metric)
        value = float(criterion.threshold)
        tighter = current is None or (
            value > current[1] if ">" in criterion.comparator else value < current[1]
        )
        if tighter:
            strictest[criterion.metric] = (criterion.comparator, value)
    items = [
        MonitoringItem(
            metric=metric,
            trigger=f"{_NEGATED[comparator]} {value:g}",
            frequency=t("post_market.default_frequency"),
            action=t("post_market.default_action"),
        )
        for metric, (comparator, value) in sorted(strictest.items())
    ]
    return items, True


def post_market_text(report: ExitReport, t: Catalogue) -> list[str]:
    digest = report.model.digest if report.model and report.model.digest else "—"
    return [
        t("post_market.intro"),
        t("post_market.drift", warn=f"{PSI_WARN:g}", fail=f"{PSI_FAIL:g}"),
        t("post_market.change_control", digest=digest),
    ]


def annexes(report: ExitReport) -> list[Annex]:
    """One annex per jurisdiction and language, in the order the trial named the jurisdictions."""
    assessed = {a.jurisdiction: a for a in report.assessments}
    built = []
    for code in _codes(report):
        info = jurisdiction(code)
        for language in info.languages:
            t = catalogue(language)
            assessment = assessed.get(code)
            monitoring, default_monitoring = monitoring_plan(report, t)
            built.append(
                Annex(
                    code=code,
                    language=language,
                    t=t,
                    title=t("heading.annex", code=code, name=jurisdiction_name(code, language)),
                    verdict=assessment.verdict if assessment else None,
                    summary=jurisdiction_summary(report, code, assessment, t),
                    rows=criterion_rows(assessment.criteria if assessment else [], t),
                    risk=t(
                        "annex.risk",
                        risk_class=report.trial.risk_class,
                        local_class=info.local_class(report.trial.risk_class),
                    ),
                    monitoring=monitoring,
                    default_monitoring=default_monitoring,
                    post_market=post_market_text(report, t),
                )
            )
    return built
