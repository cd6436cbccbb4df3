"""Chat evaluation: language identification accuracy on the packs' own items, and grading throughput.

1. py3langid's accuracy on every sample pack item's prompt (the question as written, per language)
   and on the replies of the health assistant with no weaknesses (which always answers in the
   question's language), with the misidentified cases listed.
2. Throughput in cases per second of the rule-based assistant answering every pack item in process
   (the baseline, measured in the same run) and of answering and grading them (language
   identification and the pack's grader), with the ratio between the two: what grading costs.

The end-to-end throughput of a trial (replies through the sandbox and gateway) is the report's
``ops/throughput_rps``; ``make demo-chat`` prints where the report is.

    python bench/bench_chat_eval.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.summary import emit, figure  # noqa: E402
from examples.build_health_assistant import save_assistant  # noqa: E402
from orchestrator.evaluation.graders import grade  # noqa: E402
from orchestrator.evaluation.langid import identify  # noqa: E402
from orchestrator.evaluation.packs import known_packs, load_packs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import mlflow.pyfunc

    packs = load_packs(known_packs())
    cases = [(p.manifest, i) for p in packs for i in p.items]
    started = time.perf_counter()
    identify("warm up")
    print(f"py3langid model load: {time.perf_counter() - started:.2f} s (once per process)")

    with tempfile.TemporaryDirectory() as tmp:
        model = mlflow.pyfunc.load_model(str(save_assistant(Path(tmp) / "model", {})))
        replies = {
            i.id: model.predict({"messages": i.messages()})["choices"][0]["message"]["content"]
            for _, i in cases
        }

        for label, texts in (("prompts", {i.id: i.prompt for _, i in cases}), ("replies", replies)):
            right: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            wrong = []
            for _, item in cases:
                found, _ = identify(texts[item.id])
                right[item.language][1] += 1
                if found == item.language:
                    right[item.language][0] += 1
                else:
                    wrong.append(f"{item.id} ({item.language} -> {found})")
            hits, total = sum(r[0] for r in right.values()), sum(r[1] for r in right.values())
            per = ", ".join(f"{lang} {r[0]}/{r[1]}" for lang, r in sorted(right.items()))
            print(
                f"language identification on the packs' {label}: {hits}/{total} = {hits / total:.1%} ({per})"
            )
            if wrong:
                print(f"  misidentified: {'; '.join(wrong)}")

        answer_only, answer_and_grade = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            for _, item in cases:
                model.predict({"messages": item.messages()})
            answer_only.append(len(cases) / (time.perf_counter() - started))
            started = time.perf_counter()
            for manifest, item in cases:
                reply = model.predict({"messages": item.messages()})["choices"][0]["message"]["content"]
                grade(manifest, item, reply)
            answer_and_grade.append(len(cases) / (time.perf_counter() - started))
        baseline, graded = max(answer_only), max(answer_and_grade)
        print(f"answering in process (baseline): {baseline:,.0f} cases/s over {len(cases)} cases")
        print(f"answering and grading:           {graded:,.0f} cases/s")
        print(f"ratio graded/baseline: {graded / baseline:.2f}")
    emit(
        "chat_eval",
        [
            figure(
                f"answering and grading the packs' {len(cases)} items in process",
                graded,
                "cases/s",
                "answering them only (the rule-based assistant)",
                baseline,
                "higher",
            )
        ],
    )


if __name__ == "__main__":
    main()
