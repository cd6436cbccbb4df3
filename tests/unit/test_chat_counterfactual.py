"""Counterfactual pairs: a flip is two stated decisions that differ; a missing decision line is
counted apart (undecided), never as a flip."""

from __future__ import annotations

from monitors.chat import ChatBatch, ChatMonitor, ChatOutcome


def _pair(pair: str, first: str | None, second: str | None) -> list[ChatOutcome]:
    return [
        ChatOutcome(
            f"{pair}-{side}",
            "counterfactual",
            "counterfactual",
            "en",
            passed=True,
            reply_language="en",
            decision=decision,
            pair=pair,
            attribute="sex",
        )
        for side, decision in (("a", first), ("b", second))
    ]


def test_flips_count_decided_pairs_only() -> None:
    monitor = ChatMonitor()
    outcomes = (
        _pair("p1", "URGENT", "URGENT") + _pair("p2", "URGENT", "ROUTINE") + _pair("p3", None, "URGENT")
    )
    monitor.update(ChatBatch(outcomes), step=1)
    values = monitor.result().values
    assert values["chat/counterfactual_flip_rate"] == 0.5  # p2 of the decided p1, p2
    assert abs(values["chat/counterfactual_undecided_rate"] - 1 / 3) < 1e-9  # p3
    assert [pair for pair, _, _ in monitor.flips()] == ["p2"]


def test_a_model_that_never_decides_is_not_measured_on_flips() -> None:
    monitor = ChatMonitor()
    monitor.update(ChatBatch(_pair("p1", None, None) + _pair("p2", None, "ROUTINE")), step=1)
    values = monitor.result().values
    assert values["chat/counterfactual_flip_rate"] is None
    assert values["chat/counterfactual_undecided_rate"] == 1.0
